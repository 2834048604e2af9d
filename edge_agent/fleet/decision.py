"""Whether a verified document should be applied: target, validity window, version order.

Pure functions over a :class:`Ledger` (what was committed and what failed, per source); the
agent persists the ledger in its state directory.

Rules (Mender and AWS device shadows order by version; Azure IoT Edge's endless retries are the
trap avoided):

- a document for another device or a group this device is not in is ``rejected``;
- expired is ``rejected``;
- a version at or below the committed one of its source is ``stale``; the committed version
  itself, re-delivered (a retained message after a reconnect), is ignored quietly;
- a version that failed is not retried: re-delivered it is ignored; a lower one is ``stale``;
- otherwise, a ``not_before`` in the future is ``schedule`` (applied at that time, decided
  again then), unless it is more than :data:`MAX_SCHEDULE_AHEAD_S` ahead: ``rejected``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from edge_agent.fleet.document import FleetDocument

Action = Literal["apply", "schedule", "reject", "stale", "ignore"]
MAX_SCHEDULE_AHEAD_S = 30 * 86400.0  # a maintenance window is planned days ahead, not months


@dataclass(frozen=True)
class Ledger:
    """Per source (the document's ``target``): the committed and the last failed version."""

    committed: Mapping[str, int] = field(default_factory=dict)
    failed: Mapping[str, int] = field(default_factory=dict)

    def commit(self, source: str, version: int) -> Ledger:
        """After a successful apply."""
        return replace(self, committed={**self.committed, source: version})

    def fail(self, source: str, version: int) -> Ledger:
        """After a rollback or a rejection at staging."""
        return replace(self, failed={**self.failed, source: version})


@dataclass(frozen=True)
class Verdict:
    """What to do with a document, and why."""

    action: Action
    reason: str = ""


def targets_for(device_id: str, groups: Collection[str]) -> set[str]:
    """Every ``target`` this device accepts."""
    return {f"device:{device_id}", *(f"group:{g}" for g in groups)}


def decide(
    doc: FleetDocument,
    ledger: Ledger,
    *,
    device_id: str,
    groups: Collection[str],
    now_wall: float,
) -> Verdict:
    """The verdict on a document whose signature was already checked."""
    if doc.target not in targets_for(device_id, groups):
        return Verdict("reject", f"target {doc.target} is not this device or one of its groups")
    if doc.expires is not None and now_wall >= doc.expires:
        return Verdict("reject", f"expired at {doc.expires:.0f} (now {now_wall:.0f})")
    committed = ledger.committed.get(doc.target, 0)
    failed = ledger.failed.get(doc.target)
    if doc.version == committed:
        return Verdict("ignore", f"version {doc.version} is already applied")
    if failed is not None and doc.version == failed:
        return Verdict("ignore", f"version {doc.version} failed; waiting for a higher version")
    if doc.version < committed:
        return Verdict("stale", f"version {doc.version} <= applied version {committed}")
    if failed is not None and doc.version < failed:
        return Verdict("stale", f"version {doc.version} < failed version {failed}")
    if doc.not_before is not None and now_wall < doc.not_before:
        ahead = doc.not_before - now_wall
        if ahead > MAX_SCHEDULE_AHEAD_S:
            return Verdict(
                "reject",
                f"not_before {doc.not_before:.0f} is {ahead / 86400:.1f} days ahead "
                f"(at most {MAX_SCHEDULE_AHEAD_S / 86400:.0f}; now {now_wall:.0f})",
            )
        return Verdict("schedule", f"not valid before {doc.not_before:.0f} (now {now_wall:.0f})")
    return Verdict("apply")
