"""Lines in tegrastats format: our own parser reads them, and they match the golden captures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.hardware.tegrastats import TegraStats, parse_line
from edge_agent.hardware.tegrastats_format import TegraSample, format_line, sensor_name
from edge_agent.power.tegrastats_view import l4t_major
from edge_agent.sim import board_names, create_board
from edge_agent.sim.rails import read_rail
from tests.hardware.captures import capture

WALL = 1_764_900_000.0
_TOKEN = re.compile(
    r"RAM \S+|CPU \[[^\]]*\]|(?:EMC|GR3D)_FREQ \S+|\S+@-?[\d.]+C|\w+ \d+(?:mW)?/\d+(?:mW)?"
)


def _from_stats(stats: TegraStats, gpcs: int = 1) -> TegraSample:
    """The sample a golden line describes (what our formatter can print of it)."""
    assert stats.ram_used_mb is not None
    assert stats.ram_total_mb is not None
    assert stats.emc is not None
    assert stats.gr3d is not None
    return TegraSample(
        wall_s=WALL,
        ram_mb=(stats.ram_used_mb, stats.ram_total_mb),
        cpus=[None if c is None else (c.load_pct, c.freq_mhz or 0) for c in stats.cpus],
        emc_mhz=stats.emc.mhz,
        emc_load_pct=stats.emc.load_pct,
        gpu_mhz=stats.gr3d.mhz,
        gpu_load_pct=stats.gr3d.load_pct,
        gpcs=gpcs,
        temps_c={k: v for k, v in stats.temps_c.items() if v is not None},
        rails_mw=stats.rails,
    )


@pytest.mark.parametrize(
    ("name", "release", "gpcs"),
    [("tegrastats_tx2_l4t32.txt", 32, 1), ("tegrastats_agx_orin_r36.txt", 36, 2)],
)
def test_every_token_is_the_golden_captures_own(name: str, release: int, gpcs: int) -> None:
    golden = capture(name).strip()
    ours = format_line(_from_stats(parse_line(golden), gpcs), release)
    body = ours.split(" ", 2)[2] if release >= 35 else ours  # the capture has no timestamp
    tokens = _TOKEN.findall(body)
    assert " ".join(tokens) == body, "the token pattern covers the whole line"
    position = -1
    for token in tokens:
        found = golden.find(token, position + 1)
        assert found > position, f"{token!r} is not in the capture after the previous token"
        position = found
    assert parse_line(ours).rails == parse_line(golden).rails


@pytest.mark.parametrize("release", [32, 35, 36])
def test_our_parser_reads_back_every_release(release: int) -> None:
    sample = TegraSample(
        wall_s=WALL,
        ram_mb=(2344, 7852),
        cpus=[(5, 1190), None, (100, 2035)],
        emc_mhz=1600,
        emc_load_pct=4,
        gpu_mhz=624,
        gpu_load_pct=37,
        gpcs=2,
        temps_c={"BCPU-therm": 37.5, "Tboard_tegra": 32.0, "cpu-thermal": 53.062},
        rails_mw={"VDD_IN": (3056, 3001), "VDD_SYS_GPU": (152, 150)},
    )
    line = format_line(sample, release)
    stats = parse_line(line)
    assert (stats.timestamp is not None) == (release >= 35)
    assert (stats.ram_used_mb, stats.ram_total_mb) == (2344, 7852)
    assert [None if c is None else (c.load_pct, c.freq_mhz) for c in stats.cpus] == [
        (5, 1190),
        None,
        (100, 2035),
    ]
    assert stats.emc is not None
    assert (stats.emc.load_pct, stats.emc.freq_mhz) == (4, (1600,))
    assert stats.gr3d is not None
    assert stats.gr3d.freq_mhz == ((624, 624) if release >= 36 else (624,))
    assert stats.temps_c == {"BCPU": 37.5, "Tboard": 32.0, "cpu": 53.062}
    assert stats.rails == {"VDD_IN": (3056, 3001), "VDD_SYS_GPU": (152, 150)}
    assert ("mW/" in line) == (release >= 35)


def test_unknown_figures_are_left_out_not_zeroed() -> None:
    line = format_line(TegraSample(wall_s=WALL, emc_mhz=1600, rails_mw={"VDD_IN": (1, 1)}), 32)
    assert line == "VDD_IN 1/1"


@pytest.mark.parametrize("board", board_names())
def test_status_watch_lines_carry_the_board_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], board: str
) -> None:
    sim = create_board(board, tmp_path / board)
    root = str(sim.root)
    assert main(["--root", root, "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    watch = ["--watch", "--format", "tegrastats", "--count", "2", "--interval-ms", "10"]
    assert main(["--root", root, "status", *watch]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    release = l4t_major(status["board"]["l4t"])
    for line in lines:
        stats = parse_line(line)
        assert (stats.timestamp is not None) == (release >= 35)
        assert ("mW/" in line) == (release >= 35)
        # AGX Xavier has a rail called CPU (tegrastats prints "CPU 155/155"); the parser keeps
        # it apart from the CPU-load token.
        assert set(stats.rails) == set(status["power"]["rails"])
        if "CPU" in status["power"]["rails"]:
            assert re.search(r" CPU \d+/\d+ ", line)
        for rail, (cur_mw, avg_mw) in stats.rails.items():
            mv, ma = read_rail(sim.root, sim.spec, rail)
            assert cur_mw == pytest.approx(mv * ma / 1000, abs=1), rail
            assert avg_mw == cur_mw  # the files do not change without a load
        assert stats.temps_c == {sensor_name(z): t for z, t in status["temperatures"].items()}
        assert stats.gr3d is not None
        assert stats.gr3d.mhz == round(status["clocks"]["gpu"]["cur_hz"] / 1e6)
        assert stats.gr3d.load_pct == round(status["clocks"]["gpu_load"] * 100)


def test_power_watch_prints_tegrastats_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board("jetson-tx2", tmp_path / "tx2")
    args = ["power", "--watch", "--format", "tegrastats", "--duration", "0.1"]
    assert main(["--root", str(sim.root), *args]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines
    golden = parse_line(capture("tegrastats_tx2_l4t32.txt"))
    for line in lines:
        stats = parse_line(line)
        assert set(stats.rails) == set(golden.rails)  # the TX2's own rail names
        assert set(golden.temps_c) <= set(stats.temps_c)
