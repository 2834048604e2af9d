"""Fleet test helpers: signing keys, a config/state watcher and an in-process agent config."""

from __future__ import annotations

import json
import queue
import time
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig, validate_config
from edge_agent.fleet.signing import generate_key, load_private_key, sign_document
from edge_agent.sim import create_board
from tests.fakes.broker import MosquittoBroker
from tests.telemetry.mqtt_helpers import Subscriber


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


class Signer:
    """A key pair in ``folder``; signs documents as ``key_id``."""

    def __init__(self, folder: Path, key_id: str) -> None:
        private, self.public = generate_key(folder, key_id)
        self.key = load_private_key(private)
        self.key_id = key_id

    def sign(self, doc: dict[str, Any]) -> dict[str, Any]:
        return sign_document(doc, self.key, self.key_id)


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


class StateWatcher(Subscriber):
    """Subscribed to one device's retained ``config/state``."""

    def __init__(self, broker: MosquittoBroker, prefix: str, device: str) -> None:
        self.topic = f"{prefix}/{device}/config/state"
        super().__init__(broker.host, broker.port, self.topic)

    def __enter__(self) -> StateWatcher:
        super().__enter__()
        return self

    def wait_for(
        self, version: int | None, statuses: Collection[str], timeout: float = 30.0
    ) -> dict[str, Any]:
        """The first report for ``version`` with a status in ``statuses``."""
        deadline = time.monotonic() + timeout
        seen: list[Any] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {statuses} for version {version}; saw {seen}")
            try:
                _topic, payload, _retain = self.get(left)
            except queue.Empty:
                continue
            report: dict[str, Any] = json.loads(payload)
            seen.append((report["version"], report["status"], report["reason"]))
            if report["version"] == version and report["status"] in statuses:
                return report


class WallShiftClock:
    """Real monotonic time (the pipeline and the health gate run on it) and a wall clock the
    test moves forward by hand, as with ``FakeClock.advance``: a maintenance window hours
    ahead comes without waiting for it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        self.offset += seconds


def agent_config(
    tmp_path: Path, broker: MosquittoBroker, device: str, prefix: str, **fleet: Any
) -> AgentConfig:
    """An in-process agent on a simulated Orin Nano with fleet pushes on."""
    root = tmp_path / "board"
    if not root.exists():
        create_board("jetson-orin-nano", root)
    data: dict[str, Any] = {
        "device_id": device,
        "root": str(root),
        "state_dir": str(tmp_path / "state"),
        "power": {"monitor": "sim"},
        "mqtt": {"host": broker.host, "port": broker.port, "topic_prefix": prefix},
        "telemetry": {"interval_s": 0.5},
        "cameras": [{"name": "demo", "uri": "synthetic://digits", "fps": 50}],
        "fleet": {"enabled": True, "health_window_s": 5.0, "health_min_results": 5, **fleet},
    }
    return validate_config(data, env={})
