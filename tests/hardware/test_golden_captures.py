"""Every golden capture in tests/data/captures/<board>-<release>/ parses."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.hardware.jetson_clocks import parse_show
from edge_agent.hardware.nvpmodel import parse_conf, parse_query_verbose
from edge_agent.hardware.tegrastats import parse_line
from tests.hardware.captures import CAPTURES

FOLDERS = sorted(p for p in CAPTURES.iterdir() if p.is_dir())
FILES = sorted(f for folder in FOLDERS for f in folder.iterdir() if f.name != "README.md")


def test_every_folder_names_its_sources() -> None:
    assert len(FOLDERS) >= 6
    for folder in FOLDERS:
        readme = (folder / "README.md").read_text(encoding="utf-8")
        for path in folder.iterdir():
            if path.name != "README.md":
                assert path.name in readme, f"{folder.name}/README.md does not name {path.name}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_capture_parses(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.name.startswith("tegrastats"):
        for line in text.splitlines():
            stats = parse_line(line)
            assert stats.rails
            assert stats.ram_total_mb is not None
            assert stats.gr3d is not None
            assert stats.gr3d.load_pct is not None
    elif path.name == "jetson_clocks_show.txt":
        show = parse_show(text)
        assert show.cpus
        assert show.gpu is not None
        assert show.emc is not None
    elif path.name == "nvpmodel_q_verbose.txt":
        query, params = parse_query_verbose(text)
        assert query.name
        assert params
    elif path.suffix == ".conf":
        assert parse_conf(text).modes
    else:
        pytest.fail(f"no parser for {path.name}")


def test_agx_xavier_keeps_its_cpu_rail_and_idle_gpu_load() -> None:
    stats = parse_line((CAPTURES / "jetson-agx-xavier-r32/tegrastats.txt").read_text())
    assert stats.rails["CPU"] == (618, 618)
    assert list(stats.rails) == ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"]
    assert stats.gr3d is not None
    assert (stats.gr3d.load_pct, stats.gr3d.freq_mhz) == (0, ())


def test_r39_temperatures_and_three_value_rails() -> None:
    stats = parse_line((CAPTURES / "jetson-orin-nano-r39/tegrastats.txt").read_text())
    assert stats.temps_c["cpu"] == 45.812
    assert len(stats.temps_c) == 6
    assert stats.rails["VDD_IN"] == (3582, 3582)
    assert stats.rail_extra_mw["VDD_IN"] == (3582,)


def test_orin_nano_verbose_query() -> None:
    text = (CAPTURES / "jetson-orin-nano-r36.4/nvpmodel_q_verbose.txt").read_text()
    query, params = parse_query_verbose(text)
    assert (query.name, query.id) == ("25W", 1)
    emc = next(p for p in params if p.param == "EMC")
    assert emc.real_value == "3199000000"
