"""Shared fixtures: leak checks, fake clock, a real mosquitto broker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock
from tests.fakes.broker import MosquittoBroker, broker_required, find_mosquitto


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail any test that leaves new threads running."""
    before = set(threading.enumerate())
    yield
    deadline_threads = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in deadline_threads:
        thread.join(timeout=5)
    leaked = [t.name for t in deadline_threads if t.is_alive() and not t.daemon]
    leaked += [
        t.name
        for t in deadline_threads
        if t.is_alive() and t.daemon and not t.name.startswith(("asyncio", "ThreadPoolExecutor"))
    ]
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A session-wide real mosquitto on 127.0.0.1 and a free port."""
    if find_mosquitto() is None:
        if broker_required():
            pytest.fail("mosquitto is not installed; .ci/run must apt-get install it")
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker for one test, which the test may stop and restart on the same port."""
    if find_mosquitto() is None:
        if broker_required():
            pytest.fail("mosquitto is not installed; .ci/run must apt-get install it")
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    broker = MosquittoBroker(tmp_path)
    broker.start()
    yield broker
    broker.stop()
