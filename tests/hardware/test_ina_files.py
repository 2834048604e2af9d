"""HeldFiles: descriptors held between passes, and files replaced under them by rename."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from edge_agent.hardware.ina_files import SETTLE_NS, HeldFiles
from tests.fakes.ina import write_atomic


def _values(tmp_path: Path, **files: str) -> list[str]:
    paths = []
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    return paths


def _settle(directory: Path, mtime_ns: int) -> None:
    os.utime(directory, ns=(mtime_ns, mtime_ns))


def test_read_all_reads_fresh_values_through_held_descriptors(tmp_path: Path) -> None:
    paths = _values(tmp_path, a="1\n", b="2 3\n")
    held = HeldFiles(paths)
    assert held.read_all() == [b"1\n", b"2 3\n"]
    fds = dict(held.fds)
    Path(paths[0]).write_text("10\n", encoding="utf-8")  # in place, as a driver's show()
    assert held.read_all() == [b"10\n", b"2 3\n"]
    assert held.fds == fds  # nothing reopened
    held.close()
    assert held.fds == {}


def test_a_replaced_file_is_reread_in_the_same_pass(tmp_path: Path) -> None:
    paths = _values(tmp_path, a="1\n", b="2\n")
    held = HeldFiles(paths)
    held.read_all()
    write_atomic(Path(paths[1]), "20\n")  # the simulator's way: a new inode renamed over
    assert held.read_all() == [b"1\n", b"20\n"]
    held.close()


def test_a_rename_within_one_timestamp_tick_is_still_caught(tmp_path: Path) -> None:
    # Two renames in one coarse clock tick leave the directory's mtime unchanged: a directory
    # that changed recently keeps having its descriptors checked on every pass.
    paths = _values(tmp_path, a="1\n")
    held = HeldFiles(paths)
    held.read_all()
    seen = tmp_path.stat().st_mtime_ns
    write_atomic(Path(paths[0]), "2\n")
    _settle(tmp_path, seen)
    assert time.time_ns() - seen < SETTLE_NS
    assert held.read_all() == [b"2\n"]
    held.close()


def test_a_settled_directory_costs_no_per_file_check(tmp_path: Path) -> None:
    # sysfs never renames: once a directory has been still for SETTLE_NS, a pass checks only
    # its mtime. A rename moves the mtime and is caught...
    paths = _values(tmp_path, a="1\n")
    old = time.time_ns() - 10 * SETTLE_NS
    _settle(tmp_path, old)
    held = HeldFiles(paths)
    assert held.read_all() == [b"1\n"]
    write_atomic(Path(paths[0]), "2\n")
    assert held.read_all() == [b"2\n"]
    # ...but a replacement that leaves a long-settled mtime exactly as it was is not looked
    # for: that is the saving (and no kernel interface does it).
    _settle(tmp_path, old)
    held.read_all()
    write_atomic(Path(paths[0]), "3\n")
    _settle(tmp_path, old)
    assert held.read_all() == [b"2\n"]
    held.close()


def test_a_vanished_file_raises_with_its_path_and_comes_back(tmp_path: Path) -> None:
    paths = _values(tmp_path, a="1\n", b="2\n")
    held = HeldFiles(paths)
    held.read_all()
    Path(paths[1]).unlink()
    with pytest.raises(FileNotFoundError) as err:
        held.read_all()
    with pytest.raises(FileNotFoundError) as err:
        held.read(paths[1])
    assert err.value.filename == paths[1]
    Path(paths[1]).write_text("5\n", encoding="utf-8")
    assert held.read_all() == [b"1\n", b"5\n"]
    held.close()


def test_a_directory_removed_and_made_again_is_looked_up_again(tmp_path: Path) -> None:
    # A driver unbound and bound again: sysfs removes the device directory and makes it anew.
    chip = tmp_path / "chip"
    chip.mkdir()
    paths = _values(chip, a="1\n")
    held = HeldFiles(paths)
    held.read_all()
    shutil.rmtree(chip)
    chip.mkdir()
    (chip / "a").write_text("7\n", encoding="utf-8")
    assert held.read_all() == [b"7\n"]
    held.close()


def test_second_granular_mtimes_are_watched_until_a_check_comes_after_the_tick(
    tmp_path: Path,
) -> None:
    # ext3, FAT, some NFS: mtimes are whole seconds, so a rename later in the same second
    # leaves the directory's mtime as the last pass saw it.
    paths = _values(tmp_path, a="1\n")
    second = (time.time_ns() // 1_000_000_000 - 1) * 1_000_000_000
    _settle(tmp_path, second)
    held = HeldFiles(paths)
    assert held.read_all() == [b"1\n"]
    write_atomic(Path(paths[0]), "2\n")
    _settle(tmp_path, second)  # truncated to the same second
    assert held.read_all() == [b"2\n"]
    write_atomic(Path(paths[0]), "3\n")
    _settle(tmp_path, second)
    assert held.read_all() == [b"3\n"]
    held.close()
