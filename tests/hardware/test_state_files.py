"""State files: a planted symlink is never followed; modes are private; unsafe dirs refused."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.errors import ProfileError
from edge_agent.hardware.state_files import StateDirError, prepare_state_dir, write_atomic
from edge_agent.power.profile_state import load_saved, profile_lock, save_record
from edge_agent.telemetry.outbox import Outbox
from tests.telemetry.test_outbox import items

OUTBOX = "outbox.sqlite3"
# Every name the agent opens in its state dir by a predictable name.
PREDICTABLE = [
    "profile.json",
    "profile.json.tmp",
    "profile.lock",
    OUTBOX,
    f"{OUTBOX}-wal",
    f"{OUTBOX}-shm",
    f"{OUTBOX}-journal",
    f"{OUTBOX}.counters",
    f"{OUTBOX}.reserve",
    "tmp",
]


@pytest.fixture
def restore_tmpdir() -> Iterator[None]:
    before = os.environ.get("TMPDIR")
    yield
    if before is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before
    tempfile.tempdir = None


def test_symlinks_at_every_predictable_name_are_never_followed(
    tmp_path: Path, restore_tmpdir: None
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victims = tmp_path / "victims"
    victims.mkdir()
    for name in PREDICTABLE:
        victim = victims / name
        victim.write_bytes(b"precious " + name.encode())
        victim.chmod(0o644)
        (state / name).symlink_to(victim)

    private = prepare_state_dir(state)
    with profile_lock(state):
        pass
    assert load_saved(state) is None  # profile.json was a link: refused, not read
    save_record(state, {"profile": "maxq"})
    box = Outbox(state / OUTBOX, max_mb=1)
    box.put_many(items(20))
    box.delete(r.rowid for r in box.fetch(0, 5))
    box.close()

    for name in PREDICTABLE:
        victim = victims / name
        assert victim.read_bytes() == b"precious " + name.encode(), name
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644, name
    assert load_saved(state) == {"profile": "maxq"}
    assert not (state / "profile.json").is_symlink()
    assert private == state / "tmp"
    assert private.is_dir()
    assert not private.is_symlink()
    assert os.environ["TMPDIR"] == str(private)
    assert tempfile.gettempdir() == str(private)
    for path in state.iterdir():
        if path.is_symlink():
            pytest.fail(f"{path} is still a symlink")
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path.name} is {mode:04o}"


def test_a_symlinked_directory_at_the_lock_name_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "profile.lock").mkdir()  # not a link, not a file: nothing to replace
    with pytest.raises(ProfileError, match="cannot open lock"), profile_lock(state):
        pass


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o1777])
def test_state_dir_writable_by_others_is_refused_naming_the_mode(
    tmp_path: Path, mode: int, restore_tmpdir: None
) -> None:
    state = tmp_path / "shared"
    state.mkdir()
    state.chmod(mode)
    with pytest.raises(StateDirError, match=f"writable by other users \\(mode {mode:04o}\\)"):
        prepare_state_dir(state)
    assert list(state.iterdir()) == []


def test_new_state_dir_and_files_are_private(tmp_path: Path, restore_tmpdir: None) -> None:
    state = tmp_path / "a" / "state"
    old = os.umask(0)
    try:
        prepare_state_dir(state)
        write_atomic(state / "f.json", b"{}")
        box = Outbox(state / OUTBOX, max_mb=1)
        box.put_many(items(2))
        box.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "f.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((state / f"{OUTBOX}.counters").stat().st_mode) == 0o600
    assert stat.S_IMODE((state / f"{OUTBOX}.reserve").stat().st_mode) == 0o600
    assert not (state / "f.json.tmp").exists()
