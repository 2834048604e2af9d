"""The package map (DESIGN.md section 3) is enforced: ``lint-imports`` keeps the contracts in
pyproject.toml, and a deliberately added upward import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    shutil.copytree(
        REPO / "edge_agent", tmp_path / "edge_agent", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract(tree_copy: Path) -> None:
    result = _lint(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward", "broken"),
    [
        (
            "hardware/root.py",
            "edge_agent.agent.daemon",
            "edge_agent.hardware is not allowed to import edge_agent.agent",
        ),
        (
            "power/ledger.py",
            "edge_agent.sim.marker",
            "edge_agent.power is not allowed to import edge_agent.sim",
        ),
        (
            "agent/periodic.py",
            "edge_agent.cli.main",
            "edge_agent.agent is not allowed to import edge_agent.cli",
        ),
        (
            "pipeline/source_error.py",
            "edge_agent.pipeline.capture",
            "No cycles are allowed in edge_agent.pipeline",
        ),
    ],
)
def test_an_upward_import_breaks_a_contract(
    tree_copy: Path, module: str, upward: str, broken: str
) -> None:
    target = tree_copy / "edge_agent" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\nimport {upward}  # noqa\n")
    result = _lint(tree_copy)
    assert result.returncode != 0
    assert broken in result.stdout
