"""The fleet state on disk: last-good documents, the version ledger, the pending attempt.

One JSON file in the state directory, replaced with write, fsync and rename (and a directory
fsync), so a ``kill -9`` at any step leaves either the old or the new file. ``scheduled``
keeps documents waiting for their ``not_before`` (see :mod:`edge_agent.fleet.schedule`).
``attempt`` is set before an apply and cleared after it: found at start-up, it means the
agent died mid-apply, and that version is marked failed instead of being retried (a broken
deployment must not wedge the next one).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.fleet.decision import Ledger

STATE_FILE = "fleet-state.json"


@dataclass
class FleetState:
    """What survives a restart."""

    last_good: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per source: ``{"version", "sections", "key_id"}`` of the committed document."""
    ledger: Ledger = field(default_factory=Ledger)
    attempt: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    scheduled: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per source: the signed document waiting for its ``not_before``, as received."""

    def to_json(self) -> dict[str, Any]:
        return {
            "last_good": self.last_good,
            "committed": dict(self.ledger.committed),
            "failed": dict(self.ledger.failed),
            "attempt": self.attempt,
            "report": self.report,
            "scheduled": self.scheduled,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FleetState:
        return cls(
            last_good=dict(data.get("last_good") or {}),
            ledger=Ledger(
                {str(k): int(v) for k, v in (data.get("committed") or {}).items()},
                {str(k): int(v) for k, v in (data.get("failed") or {}).items()},
            ),
            attempt=data.get("attempt"),
            report=data.get("report"),
            scheduled=dict(data.get("scheduled") or {}),
        )


class FleetStore:
    """Reads and atomically replaces ``<state_dir>/fleet-state.json``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STATE_FILE

    def load(self) -> FleetState:
        """The saved state; a fresh one when there is none or it is unreadable.

        An unreadable file can only come from outside tampering (writes are atomic); the
        agent then runs its local config, which is the safe last-good.
        """
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return FleetState()
        except (OSError, ValueError):
            return FleetState()
        if not isinstance(data, dict):
            return FleetState()
        try:
            return FleetState.from_json(data)
        except (TypeError, ValueError, AttributeError):
            return FleetState()

    def save(self, state: FleetState) -> None:
        """Write, fsync, rename, fsync the folder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        payload = json.dumps(state.to_json(), sort_keys=True, indent=1).encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
