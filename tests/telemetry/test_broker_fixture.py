"""The test broker itself: it must be our mosquitto on the port, and survive a taken port."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.broker import (
    MosquittoBroker,
    broker_required,
    find_mosquitto,
    owns_listener,
)


@pytest.fixture
def squatter() -> Iterator[socket.socket]:
    """Another listener on 127.0.0.1, standing on a port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture(autouse=True)
def _needs_mosquitto() -> None:
    if find_mosquitto() is None:
        if broker_required():
            pytest.fail("mosquitto is not installed; .ci/run must apt-get install it")
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")


def test_a_listener_that_is_not_our_mosquitto_is_refused(
    tmp_path: Path, squatter: socket.socket
) -> None:
    taken = int(squatter.getsockname()[1])
    assert owns_listener(os.getpid(), taken)  # the check sees whose socket it is
    broker = MosquittoBroker(tmp_path, port=taken)
    with pytest.raises(RuntimeError, match=rf"port {taken} exited: .*Address already in use"):
        broker.start()
    assert not broker.running()


def test_a_port_taken_before_start_moves_to_another(
    tmp_path: Path, squatter: socket.socket
) -> None:
    broker = MosquittoBroker(tmp_path)
    # Someone takes the picked port between the pick and mosquitto's bind (read privately:
    # reading ``port`` would pin it).
    planned = broker._port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as thief:
        thief.bind(("127.0.0.1", planned))
        thief.listen()
        broker.start()
        try:
            assert broker.port != planned
            assert broker.proc is not None
            assert owns_listener(broker.proc.pid, broker.port)
            assert not owns_listener(broker.proc.pid, planned)
            with socket.create_connection((broker.host, broker.port), timeout=2):
                pass
        finally:
            broker.stop()
    assert f"listener {broker.port} " in broker.conf.read_text(encoding="utf-8")


def test_restart_keeps_the_port(own_mosquitto: MosquittoBroker) -> None:
    port = own_mosquitto.port
    own_mosquitto.stop()
    own_mosquitto.start()
    assert own_mosquitto.port == port
    assert own_mosquitto.proc is not None
    assert owns_listener(own_mosquitto.proc.pid, port)
