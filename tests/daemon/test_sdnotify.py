"""sd_notify over a real unix datagram socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.agent.result_stats import pipeline_healthy
from edge_agent.agent.sdnotify import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_messages_reach_the_socket(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
    assert notifier.enabled
    assert notifier.watchdog_interval_s == 4.0
    assert notifier.ready("profile maxq, 30.0 fps, 5.10 W")
    assert sock.recv(4096) == b"READY=1\nSTATUS=profile maxq, 30.0 fps, 5.10 W"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.extend_timeout(90)
    assert sock.recv(4096) == b"EXTEND_TIMEOUT_USEC=90000000"
    assert notifier.status("two\nlines")
    assert sock.recv(4096) == b"STATUS=two lines"
    notifier.close()


def test_abstract_namespace_address() -> None:
    name = f"edge-agent-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.stopping()
        assert sock.recv(100) == b"STOPPING=1"
        notifier.close()
    finally:
        sock.close()


def test_without_socket_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.watchdog_interval_s is None
    assert not notifier.ready()


def test_watchdog_for_another_pid_is_ignored() -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "100", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval_s is None


def test_vanished_socket_reports_false(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not notifier.watchdog()
    notifier.close()


@pytest.mark.parametrize(
    ("last", "pending", "up", "healthy"),
    [
        (99.5, 3, 1, True),  # a batch finished half a second ago
        (90.0, 3, 1, False),  # frames waiting, nothing finished for 10 s: stalled engine
        (90.0, 0, 1, False),  # camera claims up, no frames for 10 s: wedged capture
        (90.0, 0, 0, True),  # all cameras down and retrying: idle, not hung
        (None, 2, 1, False),
    ],
)
def test_pipeline_healthy(last: float | None, pending: int, up: int, healthy: bool) -> None:
    assert pipeline_healthy(100.0, last, 2.0, pending, up) is healthy
