"""ProfileController on simulated boards: rollback, custom sysfs profiles, lock, jetson_clocks."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock
from edge_agent.config import CustomProfileConfig, ProfileConfig
from edge_agent.errors import CommandError, HardwareError, ProfileError
from edge_agent.hardware.jetson_clocks import is_active
from edge_agent.hardware.root import Root
from edge_agent.power.profile_apply import ProfileController, VerificationFailed
from edge_agent.power.profile_state import profile_lock
from edge_agent.sim.tree import SimBoard, create_board

CHATTR = shutil.which("chattr")


def controller(
    sim: SimBoard, config: ProfileConfig | None = None, **kwargs: object
) -> ProfileController:
    state = sim.root / "var/lib/edge-agent"
    return ProfileController(
        Root(sim.root),
        config or ProfileConfig(),
        state,
        FakeClock(),
        **kwargs,  # type: ignore[arg-type]
    )


def clock_files(sim: SimBoard) -> dict[str, str]:
    """Every control file a profile switch touches, by board path."""
    root = sim.root
    patterns = (
        "sys/devices/system/cpu/cpu*/online",
        "sys/devices/system/cpu/cpufreq/policy*/scaling_m*_freq",
        "var/lib/nvpmodel/status",
    )
    files = [p for pattern in patterns for p in root.glob(pattern)]
    files += [sim.devfreq_dir / "max_freq", sim.devfreq_dir / "min_freq"]
    files.append(sim.path(sim.spec.emc.cap_path))
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in sorted(files)}


@pytest.fixture
def tx2(tmp_path: Path) -> SimBoard:
    return create_board("jetson-tx2", tmp_path / "tx2")


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Files the test makes immutable with ``chattr +i``; always cleared again."""
    if CHATTR is None:
        pytest.skip("chattr is not installed")
    paths: list[Path] = []
    yield paths
    for path in paths:
        subprocess.run([CHATTR, "-i", str(path)], check=True, timeout=30)


def make_immutable(paths: list[Path], path: Path) -> None:
    assert CHATTR is not None
    result = subprocess.run(
        [CHATTR, "+i", str(path)], capture_output=True, text=True, check=False, timeout=30
    )
    if result.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {result.stderr.strip()}")
    paths.append(path)


def test_read_only_clock_file_fails_the_switch_and_rolls_back(
    tx2: SimBoard, immutable: list[Path]
) -> None:
    before = clock_files(tx2)
    max_freq = tx2.devfreq_dir / "max_freq"
    make_immutable(immutable, max_freq)
    ctl = controller(tx2)
    with pytest.raises(HardwareError) as caught:
        ctl.apply("maxq")
    text = str(caught.value)
    assert "switching to maxq failed" in text
    assert "max_freq" in text
    assert "rolled back to the previous state" in text
    # nvpmodel wrote the A57 cap before it hit the GPU file; the rollback undid it.
    assert clock_files(tx2) == before
    assert ctl.current().name == "maxp_arm"
    assert not (tx2.root / "var/lib/edge-agent/profile.json").exists()


def test_verification_mismatch_reports_both_values_and_rolls_back(
    tx2: SimBoard, tmp_path: Path
) -> None:
    bundled = Path(__file__).resolve().parents[2] / "power_profiles/jetson-tx2.yaml"
    extra = tmp_path / "profiles"
    extra.mkdir()
    text = bundled.read_text(encoding="utf-8").replace(
        "gpu_max_hz: 854250000", "gpu_max_hz: 930750000"
    )
    (extra / "jetson-tx2.yaml").write_text(text, encoding="utf-8")
    before = clock_files(tx2)
    ctl = controller(tx2, ProfileConfig(profiles_dir=extra))
    with pytest.raises(VerificationFailed) as caught:
        ctl.apply("maxq")
    assert [str(m) for m in caught.value.mismatches] == [
        "GPU max_freq (/sys/devices/17000000.gp10b/devfreq/17000000.gp10b/max_freq): "
        "expected 930750000 Hz (cap 930750000), read 854250000 Hz"
    ]
    assert caught.value.rollback_errors == []
    assert clock_files(tx2) == before


def test_custom_profile_applies_through_sysfs_within_the_tables(tx2: SimBoard) -> None:
    custom = {
        "eco": CustomProfileConfig(
            gpu_max_hz=600000000,
            cpu_max_khz={"a57": 900000},
            cpus_online=[0, 3, 4, 5],
            emc_max_hz=1331200000,
        )
    }
    ctl = controller(tx2, ProfileConfig(custom=custom))
    report = ctl.apply("eco")
    assert report.verified
    assert report.backend == "sysfs"
    assert report.mode is None
    assert (tx2.devfreq_dir / "max_freq").read_text().strip() == "624750000"
    policy = tx2.root / "sys/devices/system/cpu/cpufreq/policy0"
    assert (policy / "scaling_max_freq").read_text().strip() == "960000"
    cpu = tx2.root / "sys/devices/system/cpu"
    assert [(cpu / f"cpu{n}/online").read_text().strip() for n in range(6)] == list("100111")
    assert ctl.current().name == "eco"
    # The nvpmodel mode is left alone by a clocks-only profile.
    assert ctl.current().nvpmodel_mode == "MAXP_CORE_ARM"


def test_custom_cap_outside_the_table_is_refused_before_any_change(tx2: SimBoard) -> None:
    before = clock_files(tx2)
    custom = {"oc": CustomProfileConfig(gpu_max_hz=2_000_000_000)}
    ctl = controller(tx2, ProfileConfig(custom=custom))
    with pytest.raises(ProfileError, match=r"outside the available frequencies 114750000\.\."):
        ctl.apply("oc")
    assert clock_files(tx2) == before


def test_custom_profile_on_read_only_file_names_it_and_rolls_back(
    tx2: SimBoard, immutable: list[Path]
) -> None:
    before = clock_files(tx2)
    emc = tx2.path(tx2.spec.emc.cap_path)
    make_immutable(immutable, emc)
    custom = {"eco": CustomProfileConfig(gpu_max_hz=522750000, emc_max_hz=1331200000)}
    ctl = controller(tx2, ProfileConfig(custom=custom))
    with pytest.raises(HardwareError) as caught:
        ctl.apply("eco")
    assert str(emc) in str(caught.value)
    assert "rolled back" in str(caught.value)
    assert clock_files(tx2) == before


def test_board_without_nvpmodel_uses_sysfs_for_presets(tx2: SimBoard) -> None:
    tx2.nvpmodel.unlink()
    ctl = controller(tx2)
    report = ctl.apply("maxq")
    assert report.backend == "sysfs"
    assert (tx2.devfreq_dir / "max_freq").read_text().strip() == "854250000"
    assert ctl.current().name == "maxq"


def test_nvpmodel_not_executable_is_reported_with_its_path(tx2: SimBoard) -> None:
    tx2.nvpmodel.chmod(0o644)
    before = clock_files(tx2)
    with pytest.raises(CommandError, match="permission denied") as caught:
        controller(tx2).apply("maxq")
    assert str(tx2.nvpmodel) in str(caught.value)
    assert clock_files(tx2) == before


def _wrap_nvpmodel(sim: SimBoard, query_body: str, mode_body: str) -> None:
    real = sim.nvpmodel.with_name("nvpmodel.real")
    sim.nvpmodel.rename(real)
    sim.nvpmodel.write_text(
        "#!/bin/sh\n"
        f'case "$1" in\n  -q) {query_body} ;;\n  -m) {mode_body} ;;\n'
        f'  *) exec "{real}" "$@" ;;\nesac\n',
        encoding="utf-8",
    )
    sim.nvpmodel.chmod(0o755)


def test_nvpmodel_garbage_is_quoted_and_nothing_stays_changed(tx2: SimBoard) -> None:
    real = tx2.nvpmodel.with_name("nvpmodel.real")
    _wrap_nvpmodel(tx2, "echo 'NVPM ERROR: something odd'", f'exec "{real}" "$@"')
    before = clock_files(tx2)
    with pytest.raises(HardwareError) as caught:
        controller(tx2).apply("maxq")
    text = str(caught.value)
    assert "no 'NV Power Mode' line" in text
    assert "NVPM ERROR: something odd" in text
    assert clock_files(tx2) == before


def test_nvpmodel_timeout_is_reported_and_nothing_changes(tx2: SimBoard) -> None:
    real = tx2.nvpmodel.with_name("nvpmodel.real")
    _wrap_nvpmodel(tx2, f'exec "{real}" "$@"', "exec sleep 30")
    before = clock_files(tx2)
    ctl = controller(tx2, ProfileConfig(switch_timeout_s=0.5))
    with pytest.raises(HardwareError, match=r"timed out after 0\.5 s"):
        ctl.apply("maxq")
    assert clock_files(tx2) == before


def test_jetson_clocks_stays_pinned_across_a_switch(tx2: SimBoard) -> None:
    subprocess.run([str(tx2.jetson_clocks)], check=True, capture_output=True, timeout=30)
    root = Root(tx2.root)
    assert is_active(root)
    ctl = controller(tx2)
    report = ctl.apply("maxq")
    assert report.verified
    assert is_active(root)
    assert (tx2.root / "var/lib/edge-agent/jetson_clocks.conf").is_file()
    assert (tx2.devfreq_dir / "min_freq").read_text().strip() == "854250000"
    current = ctl.current()
    assert current.name == "maxq"
    assert current.jetson_clocks_active


def test_restore_saved_puts_back_the_state_before_the_first_switch(tx2: SimBoard) -> None:
    before = clock_files(tx2)
    ctl = controller(tx2)
    assert ctl.restore_saved() is None
    ctl.apply("maxq")
    ctl.apply("maxn")
    report = ctl.restore_saved()
    assert report is not None
    assert report.profile == "maxp_arm"
    assert report.previous == "maxn"
    assert clock_files(tx2) == before
    assert ctl.restore_saved() is None


def test_ordinary_restore_logs_info_and_a_real_rollback_warns(
    tx2: SimBoard, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logger = "edge_agent.power.profile_apply"
    ctl = controller(tx2)
    ctl.apply("maxq")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=logger):
        assert ctl.restore_saved() is not None
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == logger]
    assert records == [("INFO", "restored MAXP_CORE_ARM")]
    # A failed verification is a real rollback: that one warns.
    bundled = Path(__file__).resolve().parents[2] / "power_profiles/jetson-tx2.yaml"
    extra = tmp_path / "profiles"
    extra.mkdir()
    text = bundled.read_text(encoding="utf-8")
    (extra / "jetson-tx2.yaml").write_text(
        text.replace("gpu_max_hz: 854250000", "gpu_max_hz: 930750000"), encoding="utf-8"
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=logger), pytest.raises(VerificationFailed):
        controller(tx2, ProfileConfig(profiles_dir=extra)).apply("maxq")
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == logger]
    assert records == [("WARNING", "rolled back to MAXP_CORE_ARM")]


def test_switches_are_serialised_by_the_lock(tx2: SimBoard) -> None:
    ctl = controller(tx2)
    state_dir = tx2.root / "var/lib/edge-agent"
    started, finished = threading.Event(), threading.Event()
    results: list[str] = []

    def switch() -> None:
        started.set()
        results.append(ctl.apply("maxq").profile)
        finished.set()

    with profile_lock(state_dir):
        worker = threading.Thread(target=switch, name="profile-switch")
        worker.start()
        assert started.wait(5)
        # While another holder (the daemon, another CLI) has the lock, the switch waits.
        assert not finished.wait(0.3)
        assert (tx2.root / "var/lib/nvpmodel/status").read_text().startswith("pmode:0003")
    worker.join(timeout=30)
    assert finished.is_set()
    assert results == ["maxq"]


def test_caps_at_the_board_minimum_are_not_taken_for_jetson_clocks(tx2: SimBoard) -> None:
    # Caps equal to the lowest table entries make min == max on every CPU and the GPU, which is
    # jtop's rule for jetson_clocks; the CPU idle states and the EMC override say it was not.
    floor = {"floor": CustomProfileConfig(gpu_max_hz=114750000, cpu_max_khz={"a57": 345600})}
    ctl = controller(tx2, ProfileConfig(custom=floor))
    assert ctl.apply("floor").verified
    root = Root(tx2.root)
    gpu = tx2.devfreq_dir
    assert (gpu / "min_freq").read_text().strip() == (gpu / "max_freq").read_text().strip()
    assert not is_active(root)
    assert not ctl.current().jetson_clocks_active
    report = ctl.apply("maxq")
    assert report.verified
    assert not (tx2.root / "var/lib/edge-agent/jetson_clocks.conf").exists()
    assert (gpu / "min_freq").read_text().strip() == "114750000"
    assert (gpu / "max_freq").read_text().strip() == "854250000"
    policy0 = tx2.root / "sys/devices/system/cpu/cpufreq/policy0"
    assert (policy0 / "scaling_min_freq").read_text() != (policy0 / "scaling_max_freq").read_text()
    assert not ctl.current().jetson_clocks_active


def test_mode_name_read_back_by_query_must_match(tx2: SimBoard) -> None:
    # The switch itself succeeds and every clock lands, but `nvpmodel -q` reports another
    # mode: verification must read the name back, refuse, name both and roll back.
    real = tx2.nvpmodel.with_name("nvpmodel.real")
    _wrap_nvpmodel(
        tx2,
        f'"{real}" "$@" | sed "s/^NV Power Mode: .*/NV Power Mode: MAXP_CORE_DENVER/"',
        f'exec "{real}" "$@"',
    )
    before = clock_files(tx2)
    with pytest.raises(VerificationFailed) as caught:
        controller(tx2).apply("maxq")
    assert [str(m) for m in caught.value.mismatches] == [
        "nvpmodel mode (nvpmodel -q): expected MAXQ, read MAXP_CORE_DENVER"
    ]
    assert clock_files(tx2) == before
