"""``edge-agent profile`` on every simulated board: switch, verify, show, reboot refusal."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.hardware.nvpmodel import Nvpmodel, needs_reboot
from edge_agent.hardware.root import Root
from edge_agent.power.profile_state import nearest
from edge_agent.power.profiles import ProfileSpec, load_profile_files, select_board_file
from edge_agent.sim.boards import board_names
from edge_agent.sim.tree import SimBoard, create_board


@pytest.fixture(autouse=True)
def _no_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


def cli(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--root", str(root), "profile", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def board_profiles(sim: SimBoard) -> dict[str, ProfileSpec]:
    conf = Nvpmodel(Root(sim.root)).load_conf()
    _, parsed = select_board_file(
        load_profile_files(),
        model=sim.spec.model,
        compatible=sim.spec.compatible,
        conf_modes={m.name for m in conf.modes},
    )
    return dict(parsed.profiles)


def board_clusters(sim: SimBoard) -> dict[str, list[int]]:
    conf = Nvpmodel(Root(sim.root)).load_conf()
    _, parsed = select_board_file(
        load_profile_files(),
        model=sim.spec.model,
        compatible=sim.spec.compatible,
        conf_modes={m.name for m in conf.modes},
    )
    return {name: list(cpus) for name, cpus in parsed.clusters.items()}


def read_int(path: Path) -> int:
    return int(path.read_text(encoding="utf-8").split()[0])


def assert_tree_holds(sim: SimBoard, spec: ProfileSpec, clusters: dict[str, list[int]]) -> None:
    """The clock files under the root hold the profile's caps."""
    caps = spec.clocks
    gpu_table = sorted(sim.spec.gpu.freqs_hz)
    if caps.gpu_max_hz is not None:
        want = gpu_table[-1] if caps.gpu_max_hz == "max" else nearest(caps.gpu_max_hz, gpu_table)
        assert read_int(sim.devfreq_dir / "max_freq") == want
    cpu_dir = sim.root / "sys/devices/system/cpu"
    if caps.cpus_online is not None:
        for cpu in range(sim.spec.cpu_count):
            online = read_int(cpu_dir / f"cpu{cpu}/online")
            assert online == (1 if cpu in caps.cpus_online else 0), f"cpu{cpu} online"
    for cluster, khz in caps.cpu_max_khz.items():
        for cpu in clusters[cluster]:
            if read_int(cpu_dir / f"cpu{cpu}/online") == 0:
                continue  # an offline CPU keeps whatever its policy held
            table = sorted(sim.spec.cluster_of(cpu).freqs_khz)
            got = read_int(cpu_dir / f"cpu{cpu}/cpufreq/scaling_max_freq")
            if khz == "max":
                assert got == table[-1], f"cpu{cpu}"
            else:
                assert got in (khz, nearest(khz, table)), f"cpu{cpu}: {got} for cap {khz}"
    if caps.emc_max_hz is not None:
        assert read_int(sim.path(sim.spec.emc.cap_path)) == caps.emc_max_hz


def switch_needs_reboot(sim: SimBoard, mode_name: str) -> bool:
    nvp = Nvpmodel(Root(sim.root))
    conf = nvp.load_conf()
    target = conf.mode_by_name(mode_name)
    assert target is not None
    current = nvp.read_status()
    assert current is not None
    return needs_reboot(conf, current, target.id)


def tree_digest(root: Path) -> dict[str, str]:
    digest = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            digest[str(path.relative_to(root))] = "-> " + str(path.readlink())
        elif path.is_file():
            digest[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


@pytest.mark.parametrize("board", board_names())
def test_presets_switch_verify_and_show(
    board: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board(board, tmp_path / board)
    profiles = board_profiles(sim)
    _, parsed = select_board_file(
        load_profile_files(), model=sim.spec.model, compatible=sim.spec.compatible,
        conf_modes={m.name for m in Nvpmodel(Root(sim.root)).load_conf().modes},
    )  # fmt: skip
    clusters = {name: list(cpus) for name, cpus in parsed.clusters.items()}
    if board == "jetson-agx-orin":
        # The default MODE_30W has its own TPC mask: reach MAXN once through the reboot path
        # (the simulated nvpmodel reboots at once, so the mode is live and verified).
        code, _, err = cli(sim.root, "maxn", "--allow-reboot", capsys=capsys)
        assert code == 0, err
        assert sim.reboot_count == 1
    done = []
    for name in ("maxq", "maxp", "maxn", "maxq", "maxp"):
        spec = profiles[name]
        assert spec.nvpmodel is not None
        if switch_needs_reboot(sim, spec.nvpmodel):
            code, _, err = cli(sim.root, name, capsys=capsys)
            assert code == 1
            assert "reboot required" in err
            continue
        code, out, err = cli(sim.root, name, capsys=capsys)
        assert code == 0, err
        assert f"{name}: applied and verified in" in out
        code, out, _ = cli(sim.root, "show", "--json", capsys=capsys)
        assert code == 0
        shown = json.loads(out)
        assert shown["profile"] == name
        assert shown["nvpmodel_mode"] == spec.nvpmodel
        assert shown["jetson_clocks_active"] is False
        assert_tree_holds(sim, spec, clusters)
        code, out, _ = cli(sim.root, "list", capsys=capsys)
        assert f"* {name} " in out
        done.append(name)
    # Every board switches live between at least maxp and maxn.
    assert {"maxp", "maxn"} <= set(done)
    record = json.loads((sim.root / "var/lib/edge-agent/profile.json").read_text())
    assert record["profile"] == done[-1]
    assert record["verified"] is True


def test_tx2_maxq_holds_the_published_clocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-tx2", tmp_path / "tx2")
    code, out, _ = cli(sim.root, "maxq", capsys=capsys)
    assert code == 0
    assert "nvpmodel: MAXP_CORE_ARM (3) -> MAXQ (1)" in out
    cpu = sim.root / "sys/devices/system/cpu"
    assert read_int(sim.devfreq_dir / "max_freq") == 854250000
    assert read_int(cpu / "cpu0/cpufreq/scaling_max_freq") == 1267200  # 1200000, rounded
    assert [read_int(cpu / f"cpu{n}/online") for n in range(6)] == [1, 0, 0, 1, 1, 1]
    assert read_int(sim.root / "sys/kernel/nvpmodel_emc_cap/emc_iso_cap") == 1331200000


def test_agx_orin_mask_change_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-agx-orin", tmp_path / "orin")
    state = tmp_path / "state"
    before = tree_digest(sim.root)
    code, out, err = cli(sim.root, "maxq", "--state-dir", str(state), capsys=capsys)
    assert code == 1
    assert "reboot required" in err
    assert "MODE_30W (2)" in err
    assert "MODE_15W (1)" in err
    assert out == ""
    assert tree_digest(sim.root) == before
    assert sim.reboot_count == 0
    assert not (state / "profile.json").exists()


def test_agx_orin_maxq_with_allow_reboot_reboots_once_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # MODE_15W has its own TPC and FBP masks, so every switch to it reboots.
    sim = create_board("jetson-agx-orin", tmp_path / "orin")
    profiles = board_profiles(sim)
    spec = profiles["maxq"]
    assert spec.nvpmodel == "MODE_15W"
    assert switch_needs_reboot(sim, "MODE_15W")
    code, out, err = cli(sim.root, "maxq", "--allow-reboot", capsys=capsys)
    assert code == 0, err
    assert "maxq: applied and verified in" in out
    assert "nvpmodel: MODE_30W (2) -> MODE_15W (1)" in out
    assert sim.reboot_count == 1
    code, out, _ = cli(sim.root, "show", "--json", capsys=capsys)
    assert code == 0
    shown = json.loads(out)
    assert shown["profile"] == "maxq"
    assert shown["nvpmodel_mode"] == "MODE_15W"
    assert shown["nvpmodel_id"] == 1
    assert_tree_holds(sim, spec, board_clusters(sim))
    record = json.loads((sim.root / "var/lib/edge-agent/profile.json").read_text())
    assert [record[k] for k in ("profile", "verified", "reboot_pending")] == ["maxq", True, False]


def test_agx_orin_reboot_not_yet_taken_is_reported_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-agx-orin", tmp_path / "orin")
    # A real board: nvpmodel takes the YES and reboots later; the masks are still the old ones.
    real = sim.nvpmodel.with_name("nvpmodel.real")
    sim.nvpmodel.rename(real)
    sim.nvpmodel.write_text(
        f'#!/bin/sh\ncase "$1" in\n  -m) cat >/dev/null; echo "NVPM WARN: rebooting" ;;\n'
        f'  *) exec "{real}" "$@" ;;\nesac\n',
        encoding="utf-8",
    )
    sim.nvpmodel.chmod(0o755)
    code, out, err = cli(sim.root, "maxq", "--allow-reboot", capsys=capsys)
    assert code == 1
    assert "MODE_15W (1) takes effect after reboot" in out
    assert "not verified: the board reboots to apply the mode" in err
    record = json.loads((sim.root / "var/lib/edge-agent/profile.json").read_text())
    assert [record[k] for k in ("profile", "verified", "reboot_pending")] == ["maxq", False, True]


def test_unknown_profile_exits_2_listing_valid_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-xavier-nx", tmp_path / "nx")
    code, _, err = cli(sim.root, "turbo", capsys=capsys)
    assert code == 2
    assert "unknown profile 'turbo'" in err
    assert "maxq, maxp, maxn" in err


def test_unmatched_board_exits_2_naming_model_and_compatible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-tx2", tmp_path / "tx2")
    dt = sim.root / "proc/device-tree"
    (dt / "model").write_bytes(b"Acme Widget Board\0")
    (dt / "compatible").write_bytes(b"acme,widget\0acme,soc\0")
    code, _, err = cli(sim.root, "maxq", capsys=capsys)
    assert code == 2
    assert "Acme Widget Board" in err
    assert "acme,widget, acme,soc" in err
    code, _, err = cli(sim.root, "list", capsys=capsys)
    assert code == 2


def test_show_reports_custom_when_no_profile_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-tx2", tmp_path / "tx2")
    # MAXP_CORE_ARM (the TX2 default) has a profile; move the GPU cap off it by hand.
    (sim.devfreq_dir / "max_freq").write_text("522750000\n", encoding="utf-8")
    code, out, _ = cli(sim.root, "show", "--json", capsys=capsys)
    assert code == 0
    shown = json.loads(out)
    assert shown["profile"] == "custom"
    assert shown["nvpmodel_mode"] == "MAXP_CORE_ARM"
    assert shown["gpu_max_hz"] == 522750000


def test_malformed_profiles_dir_file_exits_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-tx2", tmp_path / "tx2")
    extra = tmp_path / "profiles"
    extra.mkdir()
    bad = extra / "mine.yaml"
    bad.write_text(
        "board: mine\nmatch: {model: [x]}\nprofiles:\n  eco:\n    description: e\n"
        "    clocks: {gpu_max_hz: lots}\n",
        encoding="utf-8",
    )
    code, _, err = cli(sim.root, "list", "--profiles-dir", str(extra), capsys=capsys)
    assert code == 2
    assert f"{bad}: profiles.eco.clocks.gpu_max_hz" in err


def test_caps_at_the_floor_show_jetson_clocks_inactive_and_are_not_repinned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-tx2", tmp_path / "tx2")
    config = tmp_path / "agent.yaml"
    config.write_text(
        "profile:\n  custom:\n    floor:\n      gpu_max_hz: 114750000\n"
        "      cpu_max_khz: {a57: 345600}\n",
        encoding="utf-8",
    )
    assert cli(sim.root, "floor", "--config", str(config), capsys=capsys)[0] == 0
    code, out, _ = cli(sim.root, "show", "--config", str(config), capsys=capsys)
    assert code == 0
    assert "jetson_clocks:  inactive" in out
    assert cli(sim.root, "maxq", "--config", str(config), capsys=capsys)[0] == 0
    assert read_int(sim.devfreq_dir / "min_freq") != read_int(sim.devfreq_dir / "max_freq")
    assert read_int(sim.devfreq_dir / "max_freq") == 854250000


def test_agx_orin_maxq_live_applies_its_caps_inside_the_current_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-agx-orin", tmp_path / "orin")
    spec = board_profiles(sim)["maxq"]
    code, out, err = cli(sim.root, "maxq", "--live", capsys=capsys)
    assert code == 0, err
    assert "maxq: applied and verified in" in out
    assert "as clock caps inside MODE_30W: its mode MODE_15W needs a reboot" in out
    assert "WARNING" in err
    assert "MODE_15W needs a reboot" in err
    assert "live inside MODE_30W" in err
    assert sim.reboot_count == 0
    # The caps of MODE_15W hold; the mode (and its TPC mask) stays MODE_30W.
    assert_tree_holds(sim, spec.model_copy(update={"nvpmodel": None}), board_clusters(sim))
    code, out, _ = cli(sim.root, "show", "--json", capsys=capsys)
    shown = json.loads(out)
    assert (shown["profile"], shown["nvpmodel_mode"]) == ("maxq", "MODE_30W")
    record = json.loads((sim.root / "var/lib/edge-agent/profile.json").read_text())
    assert record["live_fallback_for"] == "MODE_15W"
    assert record["nvpmodel_mode"] == "MODE_30W"


def test_live_fallback_is_refused_when_a_cap_is_above_the_current_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-agx-orin", tmp_path / "orin")
    before = tree_digest(sim.root)
    state = ["--state-dir", str(tmp_path / "state")]
    code, out, err = cli(sim.root, "maxn", "--live", *state, capsys=capsys)
    assert code == 1
    assert out == ""
    assert "reboot required" in err
    assert "no live fallback inside MODE_30W" in err
    assert "GPU cap max is above the mode's 612000000 Hz" in err
    assert "cpu8 is offline in MODE_30W" in err
    assert tree_digest(sim.root) == before


def test_without_live_a_reboot_preset_hints_at_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-agx-orin", tmp_path / "orin")
    code, _, err = cli(sim.root, "maxq", capsys=capsys)
    assert code == 1
    assert "hint: --live applies the same clock caps inside the current mode" in err


def test_profile_list_json_names_every_profile_and_the_current_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-tx2", tmp_path / "tx2")
    code, out, _ = cli(sim.root, "list", "--json", capsys=capsys)
    assert code == 0
    listed = json.loads(out)
    assert (listed["board"], listed["current"]) == ("jetson-tx2", "maxp_arm")
    names = [p["name"] for p in listed["profiles"]]
    assert {"maxq", "maxp", "maxn", "maxp_arm"} <= set(names)
    assert len(names) == len(set(names))
    maxq = next(p for p in listed["profiles"] if p["name"] == "maxq")
    assert maxq == {
        "name": "maxq",
        "description": maxq["description"],
        "board": "jetson-tx2",
        "nvpmodel_mode": "MAXQ",
        "clocks": {
            "gpu_max_hz": 854250000,
            "cpu_max_khz": {"a57": 1200000},
            "cpus_online": [0, 3, 4, 5],
            "emc_max_hz": 1331200000,
        },
        "source": "power_profiles/jetson-tx2.yaml",
    }
    assert maxq["description"].startswith("Max-Q")
    # The human list shows the same profiles in the same order.
    code, human, _ = cli(sim.root, "list", capsys=capsys)
    shown = [line[2:].split()[0] for line in human.splitlines()[1::2]]
    assert shown == names
    assert cli(sim.root, "maxq", capsys=capsys)[0] == 0
    code, out, _ = cli(sim.root, "list", "--json", capsys=capsys)
    assert json.loads(out)["current"] == "maxq"
