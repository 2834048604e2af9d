"""The agent's last telemetry report as a file in its state directory, for ``edge-agent status``.

The agent rewrites ``<state_dir>/last_telemetry.json`` atomically after each report and marks it
``stopped`` at shutdown, so the status view shows the running agent's fps, latency, perf/W and
outbox without a broker, credentials or a second MQTT client. A file whose agent stopped, died
(its pid is gone) or went quiet for several intervals is not shown as running.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LAST_REPORT_FILE = "last_telemetry.json"
STALE_INTERVALS = 3
MIN_STALE_S = 30.0


def write_last_report(
    state_dir: Path, telemetry: Mapping[str, Any], *, pid: int, state: str = "running"
) -> None:
    """Replace the file in one rename, so a reader never sees half of it.

    A failing disk is logged at DEBUG and skipped: the file is a convenience, the outbox is
    where a full disk is counted and reported.
    """
    path = state_dir / LAST_REPORT_FILE
    tmp = path.with_suffix(".tmp")
    doc = {"pid": pid, "state": state, "telemetry": dict(telemetry)}
    try:
        tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        logger.debug("could not write %s: %s", path, err)


@dataclass(frozen=True, slots=True)
class LastReport:
    """What the file says and whether its agent still runs."""

    telemetry: dict[str, Any]
    state: str
    pid: int
    age_s: float
    running: bool


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process (the service account): it exists
    return True


def read_last_report(state_dir: Path, now_wall: float) -> LastReport | None:
    """The last report, or None when there is no readable file."""
    path = state_dir / LAST_REPORT_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        telemetry, state, pid = dict(doc["telemetry"]), str(doc["state"]), int(doc["pid"])
        ts = float(telemetry["ts"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.debug("no last report in %s: %s", path, err)
        return None
    age = max(0.0, now_wall - ts)
    window = float(telemetry.get("window_s") or 0.0)
    fresh = age <= max(MIN_STALE_S, STALE_INTERVALS * window)
    return LastReport(telemetry, state, pid, age, state == "running" and fresh and _alive(pid))
