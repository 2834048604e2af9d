"""The simulated boards print what the golden captures show, for the same state: the layout,
the field order and the values (tests/data/captures/<board>-<release>/)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from edge_agent.hardware.jetson_clocks import JetsonClocksShow, parse_show
from edge_agent.hardware.tegrastats import TegraStats, parse_line
from edge_agent.sim import jetson_clocks_cli, nvpmodel_cli
from edge_agent.sim.tegrastats_cli import RailAverages, format_line
from edge_agent.sim.tree import SimBoard, create_board
from tests.hardware.captures import CAPTURES
from tests.sim.conftest import run_tool

# capture folder -> (board, release) of the simulated board that stands for it
TEGRASTATS = {
    "jetson-tx2-r32": ("jetson-tx2", "r32.7"),
    "jetson-agx-xavier-r32": ("jetson-agx-xavier", "r32.7"),
    "jetson-agx-orin-r36": ("jetson-agx-orin", "r36.4"),
    "jetson-orin-nano-r39": ("jetson-orin-nano", "r39.0"),
}
_SECTIONS = ("RAM ", "SWAP ", "CPU [", "EMC_FREQ ", "GR3D_FREQ ", "APE ")


def _order(line: str, stats: TegraStats) -> list[str]:
    """The sections of a line in the order they appear (temperatures and rails by first one)."""
    marks = {s.strip(): line.index(s) for s in _SECTIONS if s in line}
    marks["temps"] = line.index(f" {next(iter(stats.temps_c))}@")
    marks["rails"] = line.index(f" {next(iter(stats.rails))} ")
    return sorted(marks, key=marks.__getitem__)


def _into_state(sim: SimBoard, real: TegraStats) -> None:
    """Put the simulated board in the captured state: mode (online CPUs), temperatures, rails."""
    if sum(c is not None for c in real.cpus) == sim.spec.cpu_count and sim.spec.cpu_count == 12:
        assert run_tool(sim, "nvpmodel", "-m", "0", stdin="YES\n")[0] == 0  # AGX Orin MAXN
    types = {z.type.split("-")[0].split("_")[0].lower(): z.type for z in sim.spec.thermal}
    for name, celsius in real.temps_c.items():
        assert celsius is not None
        sim.set_temperature(types[name.lower()], round(celsius * 1000))
    for name, (cur_mw, _avg) in real.rails.items():
        sim.set_rail(name, 1000, cur_mw)  # 1 V x cur mA = cur mW


@pytest.mark.parametrize("folder", sorted(TEGRASTATS))
def test_tegrastats_matches_the_capture(folder: str, tmp_path: Path) -> None:
    line = (CAPTURES / folder / "tegrastats.txt").read_text(encoding="utf-8").splitlines()[0]
    real = parse_line(line)
    board, release = TEGRASTATS[folder]
    sim = create_board(board, tmp_path / "b", release)
    _into_state(sim, real)
    ours = format_line(sim.root, sim.spec, dt.datetime(2026, 1, 2, 3, 4, 5), RailAverages())
    got = parse_line(ours)
    assert _order(ours, got) == _order(line, real)
    assert (got.timestamp is None) == (real.timestamp is None)
    assert got.temps_c == real.temps_c  # names, order and values
    assert got.rails == real.rails
    assert got.rail_extra_mw.keys() == real.rail_extra_mw.keys()
    assert ("mW/" in ours) == ("mW/" in line)
    assert (got.ram_used_mb, got.ram_total_mb) == (real.ram_used_mb, real.ram_total_mb)
    assert [c is None for c in got.cpus] == [c is None for c in real.cpus]
    assert got.gr3d is not None
    assert real.gr3d is not None
    if real.gr3d.freq_mhz:
        assert len(got.gr3d.freq_mhz) == len(real.gr3d.freq_mhz)
    assert list(got.engines) == list(real.engines)


def _kinds(text: str) -> list[str]:
    """The line kinds of a --show output, consecutive cpuN lines as one."""
    kinds: list[str] = []
    for line in text.splitlines():
        if line.startswith("Failed to retrieve unit state"):
            continue  # systemctl inside the snap, not jetson_clocks
        kind = "cpu" if re.match(r"cpu\d+:", line) else re.split(r"[:=]| [A-Z]", line)[0]
        if not kinds or kinds[-1] != kind:
            kinds.append(kind)
    return kinds


def _compare_show(real: JetsonClocksShow, got: JetsonClocksShow) -> None:
    assert (got.soc_family, got.machine) == (real.soc_family, real.machine)
    assert got.online_cpus == real.online_cpus
    cpu0, real0 = got.cpus[0], real.cpus[0]
    assert (cpu0.online, cpu0.min_khz, cpu0.max_khz) == (real0.online, real0.min_khz, real0.max_khz)
    assert got.gpu is not None
    assert real.gpu is not None
    assert got.gpu.min_hz == real.gpu.min_hz
    assert got.emc is not None
    assert real.emc is not None
    assert (got.emc.min_hz, got.emc.max_hz) == (real.emc.min_hz, real.emc.max_hz)
    assert got.active_gpu_tpcs == real.active_gpu_tpcs


@pytest.mark.parametrize(
    ("folder", "board", "release"),
    [
        ("jetson-tx2-r32", "jetson-tx2", "r32.7"),
        ("jetson-orin-nano-r36.3", "jetson-orin-nano", "r36.3"),
    ],
)
def test_jetson_clocks_show_matches_the_capture(
    folder: str, board: str, release: str, tmp_path: Path
) -> None:
    text = (CAPTURES / folder / "jetson_clocks_show.txt").read_text(encoding="utf-8")
    sim = create_board(board, tmp_path / "b", release)
    lines = jetson_clocks_cli.show(sim.root, sim.spec)
    ours = "\n".join(lines)
    assert _kinds(ours)[: len(_kinds(text))] == _kinds(text)
    separator = re.compile(r"^cpu0:(\s+)Online", re.MULTILINE)
    assert separator.findall(ours) == separator.findall(text)
    assert all(line.endswith(" ") for line in lines if line.startswith("cpu"))
    real, got = parse_show(text), parse_show(ours)
    _compare_show(real, got)
    if real.power_mode is not None:
        assert got.power_mode == real.power_mode
    if board == "jetson-tx2":
        assert got.cpus[0].governor == real.cpus[0].governor


def test_nvpmodel_verbose_query_matches_the_orin_nano_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (CAPTURES / "jetson-orin-nano-r36.4/nvpmodel_q_verbose.txt").read_text(encoding="utf-8")
    sim = create_board("jetson-orin-nano", tmp_path / "b", "r36.4")
    assert nvpmodel_cli.main(["-q", "--verbose"], sim.root) == 0
    ours = capsys.readouterr().out.splitlines()
    captured = text.splitlines()
    assert ours[:4] == captured[:4]
    # The capture has lines cut: ours must hold each of its lines, in the same order.
    positions = [ours.index(line) for line in captured[4:]]
    assert positions == sorted(positions)
