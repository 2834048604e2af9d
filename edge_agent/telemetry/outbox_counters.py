"""The outbox's loss counters, persisted apart from the outbox itself.

The counters must survive exactly the situation that makes the outbox fail (a full disk), so
they live in a small file of fixed size, ``<outbox>.counters``, allocated once and then
overwritten in place with ``pwrite``: an update needs no new disk block, no journal and no
rename. It is written whenever a counter changes (drops are rare events, not per-row work)
and not fsynced: the page cache survives ``kill -9`` of the agent.

Rules: ``size_bound`` (``outbox_max_mb``), ``disk_floor`` (the disk's free-space floor),
``disk_full`` (could not be stored at all), ``quarantined`` (cannot be published: moved to the
dead-letter table), ``refused`` (by the broker, for good). Rules (why a message was lost) and
kinds (``results``, ``other`` = telemetry and anything
else) are counted separately, so the counters say exactly how many results were dropped, by
which rule.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Literal

from edge_agent.hardware.state_files import clear_symlink, open_state_file

logger = logging.getLogger(__name__)

Rule = Literal["size_bound", "disk_floor", "disk_full", "quarantined", "refused"]
Kind = Literal["results", "other"]
RULES: tuple[Rule, ...] = ("size_bound", "disk_floor", "disk_full", "quarantined", "refused")
KINDS: tuple[Kind, ...] = ("results", "other")
FILE_BYTES = 4096


def row_kind(topic: str | bytes) -> Kind:
    """``results`` for a result topic (``<prefix>/<dev>/results/<camera>``), else ``other``."""
    text = topic.decode("utf-8", "replace") if isinstance(topic, bytes) else topic
    return "results" if "/results/" in text else "other"


class DropCounters:
    """Loss counters by rule and kind, persisted in a preallocated file.

    Args:
        path: the counters file (created 0600 with ``O_NOFOLLOW``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts: dict[Rule, dict[Kind, int]] = {r: dict.fromkeys(KINDS, 0) for r in RULES}
        self.fresh = True
        self._fd: int | None = None
        self._warned = False
        clear_symlink(path)  # a planted link is replaced, never followed
        self._load()
        self._open()

    def _load(self) -> None:
        try:
            fd = open_state_file(self.path, os.O_RDONLY)
            with os.fdopen(fd, "rb") as file:
                raw = file.read(FILE_BYTES)
        except FileNotFoundError:
            return
        except OSError as err:
            logger.warning("%s unreadable (%s); loss counters restart at zero", self.path, err)
            return
        self.fresh = False
        try:
            doc = json.loads(raw.decode("utf-8").strip() or "{}")
            for rule in RULES:
                for kind in KINDS:
                    value = doc.get(rule, {}).get(kind, 0)
                    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                        raise ValueError(f"{rule}.{kind} is {value!r}")
                    self.counts[rule][kind] = value
        except (ValueError, AttributeError, RecursionError) as err:
            logger.warning("%s is damaged (%s); loss counters restart at zero", self.path, err)
            self.counts = {r: dict.fromkeys(KINDS, 0) for r in RULES}

    def _open(self) -> None:
        try:
            fd = open_state_file(self.path, os.O_RDWR | os.O_CREAT)
            if os.fstat(fd).st_size < FILE_BYTES:
                os.posix_fallocate(fd, 0, FILE_BYTES)
        except OSError as err:
            if not self._warned:
                logger.error("%s: cannot open (%s); counters kept in memory", self.path, err)
                self._warned = True
            return
        self._fd = fd
        self._write()

    def add(self, rule: Rule, kind: Kind, count: int) -> None:
        """Count ``count`` messages of ``kind`` lost by ``rule`` and persist the counters."""
        self.add_many(rule, {kind: count})

    def add_many(self, rule: Rule, kinds: dict[Kind, int]) -> None:
        """Count losses of several kinds under ``rule``, with one write."""
        for kind, count in kinds.items():
            self.counts[rule][kind] += max(0, count)
        if any(kinds.values()):
            if self._fd is None:
                self._open()
            else:
                self._write()

    def _write(self) -> None:
        if self._fd is None:
            return
        data = json.dumps(self.counts, sort_keys=True).encode("utf-8")
        try:
            os.pwrite(self._fd, data.ljust(FILE_BYTES - 1) + b"\n", 0)
        except OSError as err:
            logger.error("%s: cannot update (%s)", self.path, err)

    def total(self, rule: Rule) -> int:
        """Messages of every kind lost by ``rule``."""
        return sum(self.counts[rule].values())

    def by_rule(self, kind: Kind | None = None) -> dict[str, int]:
        """Rule -> count (of ``kind``, or of every kind)."""
        return {rule: self.counts[rule][kind] if kind else self.total(rule) for rule in RULES}

    def close(self) -> None:
        """Close the file (the counters stay readable in memory)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
