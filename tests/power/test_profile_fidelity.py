"""Issue 14 acceptance: the simulated boards and profile files behave like real L4T releases.

Orin Nano super (7W needs a reboot, default 25W, MAXN_SUPER's -1 read-back), Xavier NX desktop,
3-mode super confs, and nvpmodel rounding caps to the frequency tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.clock import FakeClock
from edge_agent.hardware.nvpmodel import parse_conf
from edge_agent.hardware.root import Root
from edge_agent.hardware.thermal import read_thermal_zones
from edge_agent.sim import confs, jetson_clocks_cli
from edge_agent.sim.power_model import PowerModel
from edge_agent.sim.tree import SimBoard, create_board
from tests.power.test_profile_switch import tree_digest


@pytest.fixture(autouse=True)
def _no_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


def cli(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--root", str(root), "profile", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read(sim: SimBoard, rel: str) -> str:
    return sim.path(rel).read_text(encoding="utf-8").strip()


@pytest.fixture
def nano(tmp_path: Path) -> SimBoard:
    return create_board("jetson-orin-nano", tmp_path / "nano")


def test_orin_nano_super_boots_in_25w(nano: SimBoard) -> None:
    conf = parse_conf(nano.spec.conf_text)
    assert (conf.default_mode.id, conf.default_mode.name) == (1, "25W")
    assert read(nano, "/var/lib/nvpmodel/status").startswith("pmode:0001")
    assert read(nano, "/sys/devices/platform/gpu.0/tpc_pg_mask") == "240"
    masks = {m.name: m.value("TPC_POWER_GATING", "TPC_PG_MASK") for m in conf.modes}
    assert masks == {"15W": "240", "25W": "240", "MAXN_SUPER": "240", "7W": "252"}
    # One CPU clock per core, and MAXN_SUPER leaves EMC uncapped with -1 (not 0).
    assert [p for p in conf.params if p.startswith("CPU_A78")] == [f"CPU_A78_{n}" for n in range(6)]
    maxn = conf.mode_by_name("MAXN_SUPER")
    assert maxn is not None
    assert maxn.value("EMC", "MAX_FREQ") == "-1"


def test_orin_nano_super_tables_and_15w_caps(nano: SimBoard) -> None:
    assert nano.spec.gpu.freqs_hz == tuple(mhz * 1_000_000 for mhz in range(306, 1021, 102))
    fifteen = parse_conf(nano.spec.conf_text).mode_by_name("15W")
    assert fifteen is not None
    assert fifteen.value("CPU_A78_0", "MAX_FREQ") == "1497600"
    assert fifteen.value("GPU", "MAX_FREQ") == "612000000"


def test_orin_nano_maxq_from_default_needs_a_reboot_and_changes_nothing(
    nano: SimBoard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    before = tree_digest(nano.root)
    code, out, err = cli(nano.root, "maxq", "--state-dir", str(state), capsys=capsys)
    assert code == 1
    assert "reboot required" in err
    assert "25W (1)" in err
    assert "7W (3)" in err
    assert out == ""
    assert tree_digest(nano.root) == before
    assert nano.reboot_count == 0


def test_orin_nano_maxq_with_allow_reboot_reboots_once_and_verifies(
    nano: SimBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(nano.root, "maxq", "--allow-reboot", capsys=capsys)
    assert code == 0, err
    assert "maxq: applied and verified in" in out
    assert nano.reboot_count == 1
    assert read(nano, "/sys/devices/platform/gpu.0/tpc_pg_mask") == "252"
    assert read(nano, "/sys/devices/system/cpu/online") == "0-3"
    assert int(read(nano, f"{nano.spec.gpu.device_dir}/devfreq/17000000.gpu/max_freq")) == (
        408000000
    )


def test_orin_nano_maxn_verifies_against_the_no_cap_read_back(
    nano: SimBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(nano.root, "maxn", "--json", capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["verified"] is True
    # EMC MAX_FREQ -1 reads back as the board's maximum on R36.
    assert read(nano, "/sys/kernel/nvpmodel_clk_cap/emc") == "3199000000"
    assert int(read(nano, "/sys/devices/system/cpu/cpu5/cpufreq/scaling_max_freq")) == 1728000
    code, out, _ = cli(nano.root, "show", "--json", capsys=capsys)
    assert json.loads(out)["profile"] == "maxn"


def _three_mode_conf(sim: SimBoard) -> None:
    """Replace the board's conf by the 3-mode super conf (15W, 25W, MAXN_SUPER; no 7W)."""
    text = confs.orin_nano(confs.ORIN_NANO_SUPER_MODES[:3], default=1)
    sim.path(f"/etc/nvpmodel/{sim.spec.conf_name}").write_text(text, encoding="utf-8")


def test_three_mode_super_conf_resolves_maxq_to_15w(
    nano: SimBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    _three_mode_conf(nano)
    code, out, err = cli(nano.root, "list", "--json", capsys=capsys)
    assert code == 0, err
    listed = {p["name"]: p for p in json.loads(out)["profiles"]}
    assert listed["maxq"]["nvpmodel_mode"] == "15W"
    assert "no 7W mode" in listed["maxq"]["description"]
    code, out, err = cli(nano.root, "maxq", capsys=capsys)
    assert code == 0, err
    assert "nvpmodel: 25W (1) -> 15W (0)" in out
    assert nano.reboot_count == 0  # 15W and 25W share the TPC mask


def test_three_mode_conf_without_a_fallback_names_the_missing_mode(
    nano: SimBoard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _three_mode_conf(nano)
    bundled = Path(__file__).resolve().parents[2] / "power_profiles/jetson-orin-nano-super.yaml"
    own = tmp_path / "profiles"
    own.mkdir()
    text = bundled.read_text(encoding="utf-8").replace("    fallback: 15w\n", "")
    (own / "nano.yaml").write_text(text, encoding="utf-8")
    code, _, _ = cli(nano.root, "maxp", "--profiles-dir", str(own), capsys=capsys)
    assert code == 0  # the file still matches the board; other profiles work
    code, _, err = cli(nano.root, "maxq", "--profiles-dir", str(own), capsys=capsys)
    assert code == 2
    assert "nvpmodel mode '7W' is not in" in err
    assert "no power profile file matches" not in err


def test_xavier_nx_desktop_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim = create_board("jetson-xavier-nx", tmp_path / "xnx")
    conf = parse_conf(sim.spec.conf_text)
    caps = {m.name: m.value("CPU_DENVER_0", "MAX_FREQ") for m in conf.modes}
    assert caps["MODE_10W_DESKTOP"] == "1907200"
    assert caps["MODE_20W_4CORE"] == "1420800"
    assert len(sim.spec.gpu.freqs_hz) == 15
    assert {752250000, 956250000, 1058250000} <= set(sim.spec.gpu.freqs_hz)
    code, out, err = cli(sim.root, "desktop", capsys=capsys)
    assert code == 0, err
    assert "desktop: applied and verified in" in out
    assert read(sim, "/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq") == "1907200"


@pytest.mark.parametrize(
    ("board", "cpu", "mode", "want"),
    [
        ("jetson-tx2", 0, "3", 2035200),  # MAXP_CORE_ARM: conf 2000000
        ("jetson-agx-xavier", 0, "2", 1190400),  # MODE_15W: conf 1200000
    ],
)
def test_nvpmodel_rounds_caps_to_the_table(
    board: str, cpu: int, mode: str, want: int, tmp_path: Path
) -> None:
    sim = create_board(board, tmp_path / board)
    assert read(sim, f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_max_freq") == str(want)
    assert jetson_clocks_cli.main([], sim.root) == 0
    for line in jetson_clocks_cli.show(sim.root, sim.spec):
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "MaxFreq" in fields and "CurrentFreq" in fields:
            assert int(fields["CurrentFreq"]) <= int(fields["MaxFreq"]), line


def test_agx_orin_offline_sensors_are_no_reading(tmp_path: Path) -> None:
    sim = create_board("jetson-agx-orin", tmp_path / "agx")
    zones = {z.name: z for z in read_thermal_zones(Root(sim.root))}
    for name in ("cv0-thermal", "cv1-thermal", "cv2-thermal", "gpu-thermal"):
        assert read(sim, f"/sys/class/thermal/thermal_zone{zones[name].index}/temp") == "-256000"
        assert (zones[name].temp_c, zones[name].online) == (None, False)
    assert zones["cpu-thermal"].temp_c == pytest.approx(47.5)
    # Busy, the GPU sensor reads a temperature again.
    PowerModel(sim.root, FakeClock(), busy=lambda: 1.0).step(0.0)
    gpu = next(z for z in read_thermal_zones(Root(sim.root)) if z.name == "gpu-thermal")
    assert gpu.temp_c is not None
    assert gpu.temp_c > 45.8
