"""Documents waiting for their ``not_before``: one per source, kept across restarts.

A signed, otherwise valid document whose ``not_before`` is ahead (a maintenance window) is
kept here instead of being refused; at that time the agent decides it again (it may have
expired, or a newer version may have been applied meanwhile) and applies it through the
normal path. One document per source: a newer one replaces an older one, an older one
arriving after a newer one is stale. The store keeps the documents as signed, so a restart
verifies them again before trusting them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_agent.fleet.document import DocumentRejected, FleetDocument, validate_document

SCHEDULE_RECHECK_S = 30.0
"""The longest the worker waits without looking at the wall clock again: a Jetson without a
battery-backed clock may boot in the past and jump forward when NTP syncs."""


@dataclass
class Entry:
    """A scheduled document: the signed plain data and its parsed form."""

    data: dict[str, Any]
    doc: FleetDocument

    @property
    def due(self) -> float:
        return float(self.doc.not_before or 0.0)


@dataclass
class Schedule:
    """Per source (the document's ``target``), the document waiting for its time."""

    entries: dict[str, Entry] = field(default_factory=dict)

    def put(self, data: dict[str, Any], doc: FleetDocument) -> Entry | None:
        """Keep ``doc`` for its source; the older entry it replaces, if any.

        Raises:
            ValueError: a version at or below the one already scheduled for the source.
        """
        old = self.entries.get(doc.target)
        if old is not None and old.doc.version >= doc.version:
            raise ValueError(
                f"version {doc.version} <= version {old.doc.version} already scheduled"
            )
        self.entries[doc.target] = Entry(dict(data), doc)
        return old

    def holds(self, doc: FleetDocument) -> bool:
        """Whether this very version is the one scheduled (a retained re-delivery)."""
        entry = self.entries.get(doc.target)
        return entry is not None and entry.doc.version == doc.version

    def drop_below(self, source: str, version: int) -> Entry | None:
        """Remove the source's entry when its version is below ``version``; the removed one."""
        entry = self.entries.get(source)
        if entry is None or entry.doc.version >= version:
            return None
        return self.entries.pop(source)

    def pop_due(self, now_wall: float) -> list[Entry]:
        """Remove and return the entries whose time has come, earliest first."""
        due = sorted((e for e in self.entries.values() if e.due <= now_wall), key=lambda e: e.due)
        for entry in due:
            del self.entries[entry.doc.target]
        return due

    def move_due(
        self, now_wall: float, slot: dict[str, tuple[dict[str, Any], FleetDocument]]
    ) -> bool:
        """Move the entries whose time has come into ``slot`` (the apply queue, one per
        source, where a newer version waiting wins); whether any left the schedule."""
        due = self.pop_due(now_wall)
        for entry in due:
            waiting = slot.get(entry.doc.target)
            if waiting is None or waiting[1].version < entry.doc.version:
                slot[entry.doc.target] = (entry.data, entry.doc)
        return bool(due)

    def wait_s(self, now_wall: float) -> float | None:
        """Seconds until the next entry is due (capped), or None when nothing is scheduled."""
        if not self.entries:
            return None
        first = min(e.due for e in self.entries.values())
        return max(0.0, min(first - now_wall, SCHEDULE_RECHECK_S))

    def summary(self) -> dict[str, dict[str, Any]]:
        """``{source: {"version", "not_before"}}`` for the ``config/state`` report."""
        return {
            source: {"version": e.doc.version, "not_before": e.due}
            for source, e in sorted(dict(self.entries).items())  # a copy: read unlocked
        }

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {source: e.data for source, e in self.entries.items()}

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any] | None, verify: Callable[[dict[str, Any]], object]
    ) -> tuple[Schedule, list[str]]:
        """The saved entries that still validate and verify; and a line per one dropped."""
        schedule, dropped = cls(), []
        for source, raw in (data or {}).items():
            try:
                doc = validate_document(raw)
                verify(dict(raw))
            except (DocumentRejected, ValueError) as err:
                dropped.append(f"{source}: {err}")
                continue
            schedule.entries[doc.target] = Entry(dict(raw), doc)
        return schedule, dropped
