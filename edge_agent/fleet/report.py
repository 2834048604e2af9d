"""The retained ``config/state`` payload a device publishes about fleet documents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

STATUSES = ("scheduled", "applying", "applied", "rejected", "rolled_back", "stale")


def config_state(
    *,
    ts: float,
    device: str,
    groups: Sequence[str],
    signed: bool,
    running: Mapping[str, int],
    version: int | None,
    status: str,
    reason: str = "",
    errors: Sequence[str] = (),
    key_id: str | None = None,
    target: str | None = None,
    health: Mapping[str, Any] | None = None,
    timings: Mapping[str, float] | None = None,
    scheduled: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """One report.

    Args:
        ts: wall time.
        device: this device.
        groups: the groups it is in (the operator finds a group's members by them).
        signed: whether this device requires signed documents.
        running: the committed version per source.
        version: the document's version (0: none applied yet; None: unreadable).
        status: one of :data:`STATUSES`.
        reason: one line for the operator.
        errors: ``field.path: message`` lines.
        key_id: the key the document was signed with.
        target: the document's target.
        health: the health gate's figures.
        timings: seconds per step (stage, switch, health, total).
        scheduled: per source, the document waiting for its time: ``{"version",
            "not_before"}`` (status ``scheduled``: accepted, applied at ``not_before``).
    """
    if status not in STATUSES:
        raise ValueError(f"unknown config status {status!r}")
    return {
        "schema": "config_state",
        "ts": round(ts, 3),
        "device": device,
        "groups": list(groups),
        "version": version,
        "status": status,
        "target": target,
        "errors": list(errors),
        "reason": reason,
        "health": dict(health or {}),
        "timings": dict(timings or {}),
        "key_id": key_id,
        "signed": signed,
        "running": dict(running),
        "scheduled": {k: dict(v) for k, v in (scheduled or {}).items()},
    }
