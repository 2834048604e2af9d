"""What the agent says about the outbox's backlog: at start (old rows) and at exit (the flush)."""

from __future__ import annotations

import logging
from pathlib import Path

from edge_agent.telemetry.outbox import Outbox
from edge_agent.telemetry.publisher import Publisher

logger = logging.getLogger(__name__)


def announce_old_rows(outbox: Outbox, path: Path, broker: str) -> None:
    """One WARNING when rows from a previous run are about to be sent."""
    if outbox.depth > 0:
        logger.warning(
            "%d undelivered messages from a previous run in %s are sent first, to broker %s",
            outbox.depth,
            path,
            broker,
        )


def flush_announced(publisher: Publisher, broker: str, timeout_s: float) -> None:
    """Wait for the PUBACKs of what is queued, saying what the wait is for.

    WARNING when the broker is unreachable (the wait is then the whole timeout), else INFO;
    a second line says how many messages stay in the outbox when the wait runs out.
    """
    stats = publisher.stats()
    queued = stats.depth + stats.buffered
    if queued == 0:
        return
    state = "connected" if stats.connected else "unreachable"
    level = logging.INFO if stats.connected else logging.WARNING
    logger.log(
        level,
        "flushing %d queued messages to broker %s (%s) for up to %g s",
        queued,
        broker,
        state,
        timeout_s,
    )
    if not publisher.flush(timeout_s=timeout_s):
        left = publisher.stats()
        logger.log(
            level, "%d messages stay in the outbox for the next run", left.depth + left.buffered
        )
