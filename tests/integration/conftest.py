"""Fixtures shared by the whole-agent tests."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.broker import MosquittoBroker
from tests.integration.agent_helpers import persistent_mosquitto


@pytest.fixture
def restartable_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A started mosquitto whose subscriber sessions survive its restart (see
    ``persistent_mosquitto``); thawed if a test froze it with SIGSTOP, then stopped."""
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = persistent_mosquitto(folder)
    broker.start()
    yield broker
    if broker.proc is not None and broker.proc.poll() is None:
        os.kill(broker.proc.pid, signal.SIGCONT)
    broker.stop()
