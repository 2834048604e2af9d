"""The hostile-config corpus: each file is refused by ``check-config`` and by ``run``.

``tests/data/bad_configs/index.txt`` names every file, the output fragment it must produce
(its field path first) and options; each file's first line says what it attacks. Both
commands run in-process through ``main(argv)`` against a simulated board (``--root``), must
exit 2, name the field, print no traceback, and finish well inside 2 s.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.sim import create_board

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_configs"
DEADLINE_S = 2.0


@dataclass(frozen=True)
class Case:
    file: str
    expect: str
    use_root: bool
    state_flag: bool = True


def _cases() -> list[Case]:
    cases = []
    for line in (CORPUS / "index.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split(" | ")]
        options = parts[2].split(",") if len(parts) > 2 else []
        cases.append(
            Case(parts[0], parts[1], "noroot" not in options, "configstate" not in options)
        )
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("orin")
    create_board("jetson-orin-nano", root)
    return root


def test_corpus_is_large_and_indexed() -> None:
    files = sorted(p.name for p in CORPUS.glob("*.yaml"))
    assert len(files) >= 40
    assert files == sorted(c.file for c in CASES), "every file is in index.txt, and only those"
    for name in files:
        first = (CORPUS / name).read_bytes().split(b"\n", 1)[0]
        if not first.startswith(b"\xff\xfe"):  # the UTF-16 file's comment is UTF-16
            assert first.startswith(b"# attacks: "), name


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    start = time.monotonic()
    code = main(argv)
    elapsed = time.monotonic() - start
    captured = capsys.readouterr()
    return code, captured.out + captured.err, elapsed


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_refused_by_check_config_and_run(
    case: Case, board: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = CORPUS / case.file
    root = ["--root", str(board)] if case.use_root else []
    check = _run_cli(["check-config", *root, str(path)], capsys)
    state = ["--state-dir", str(tmp_path / "state")] if case.state_flag else []
    run = _run_cli(
        ["run", *root, "--config", str(path), *state, "--duration", "1", "--no-live"],
        capsys,
    )
    for command, (code, output, elapsed) in (("check-config", check), ("run", run)):
        assert code == 2, f"{command}: exit {code}\n{output}"
        assert case.expect in output, f"{command}: {case.expect!r} not in\n{output}"
        assert "Traceback" not in output, f"{command}:\n{output}"
        assert elapsed < DEADLINE_S, f"{command} took {elapsed:.2f} s"
    assert not (tmp_path / "state").exists(), "run refused before creating any state"


def test_many_errors_are_reported_in_one_pass(
    board: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check-config", "--root", str(board), str(CORPUS / "many_errors.yaml")])
    out = capsys.readouterr().out.splitlines()
    assert code == 2
    assert sorted(line.split(":", 1)[0] for line in out) == [
        "cameras[0].uri",
        "mqtt.host",
        "mqtt.topic_prefix",
        "profile.initial",
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (lambda p: os.mkfifo(p), "is not a regular file (a FIFO)"),
        (lambda p: p.symlink_to("/dev/zero"), "is not a regular file (a character device)"),
        (lambda p: p.mkdir(), "is not a regular file (a directory)"),
    ],
    ids=["fifo", "dev-zero", "directory"],
)
def test_special_files_are_refused_at_once(
    make: object, expect: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.yaml"
    assert callable(make)
    make(path)
    for argv in (
        ["check-config", str(path)],
        ["run", "--config", str(path), "--duration", "1", "--no-live"],
    ):
        code, output, elapsed = _run_cli(argv, capsys)
        assert code == 2, output
        assert f"(file): {path} {expect}" in output
        assert elapsed < DEADLINE_S
