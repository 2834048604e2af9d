"""Every simulated board in every release: it boots, its nvpmodel answers, a profile file matches
it and every profile applies and verifies (through a reboot where the masks differ)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.hardware.jetson_clocks import parse_show
from edge_agent.hardware.nvpmodel import Nvpmodel, parse_query
from edge_agent.hardware.root import Root
from edge_agent.hardware.tegrastats import parse_line
from edge_agent.sim import jetson_clocks_cli
from edge_agent.sim.releases import matrix_rows, spec_at
from edge_agent.sim.tegrastats_cli import RailAverages, format_line
from edge_agent.sim.tree import create_board
from tests.sim.conftest import run_tool

MATRIX = [(board, release) for board, release, _spec, _default in matrix_rows()]


@pytest.fixture(autouse=True)
def _no_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


@pytest.mark.parametrize(("board", "release"), MATRIX)
def test_every_profile_applies_and_verifies(
    board: str, release: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = create_board(board, tmp_path / "b", release)
    assert spec_at(sim.root) is sim.spec
    conf = Nvpmodel(Root(sim.root)).load_conf()
    code, out = run_tool(sim, "nvpmodel", "-q")
    assert code == 0
    assert parse_query(out).id == conf.default_id
    assert main(["--root", str(sim.root), "profile", "list", "--json"]) == 0
    names = [p["name"] for p in json.loads(capsys.readouterr().out)["profiles"]]
    assert {"maxq", "maxp", "maxn"} <= set(names)
    for name in names:
        code = main(["--root", str(sim.root), "profile", name, "--allow-reboot", "--json"])
        captured = capsys.readouterr()
        assert code == 0, (name, captured.err)
        assert json.loads(captured.out)["verified"] is True, name


@pytest.mark.parametrize(("board", "release"), MATRIX)
def test_our_parsers_read_every_release_layout(board: str, release: str, tmp_path: Path) -> None:
    sim = create_board(board, tmp_path / "b", release)
    show = parse_show("\n".join(jetson_clocks_cli.show(sim.root, sim.spec)))
    assert sorted(c.index for c in show.cpus) == list(range(sim.spec.cpu_count))
    assert show.gpu is not None
    assert show.gpu.max_hz == max(sim.spec.gpu.freqs_hz) or show.gpu.max_hz in sim.spec.gpu.freqs_hz
    assert show.emc is not None
    stats = parse_line(format_line(sim.root, sim.spec, dt.datetime(2026, 1, 2), RailAverages()))
    assert list(stats.rails) == list(sim.spec.tegrastats_rails or sim.spec.rail_names)
    assert len(stats.cpus) == sim.spec.cpu_count
    assert stats.temps_c
    assert all(t is None or t > 0 for t in stats.temps_c.values())
