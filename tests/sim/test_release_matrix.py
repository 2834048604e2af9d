"""Every simulated board in every release: it boots, its nvpmodel answers, a profile file matches
it and every profile applies and verifies (through a reboot where the masks differ)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.hardware.nvpmodel import Nvpmodel, parse_query
from edge_agent.hardware.root import Root
from edge_agent.sim.releases import matrix_rows, spec_at
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
