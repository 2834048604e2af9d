"""The watchdog's decisions, over a real notify socket and a stand-in pipeline."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.sdnotify import Notifier
from edge_agent.agent.watchdog import Watchdog
from edge_agent.clock import FakeClock


class StandInPipeline:
    """The three things the watchdog reads from a pipeline, set by the test."""

    def __init__(self) -> None:
        self.state = "loading"
        self.elapsed_s = 0.0
        self.last_progress: float | None = None
        self.queue_depth = 0
        self.camera_state = "up"

    def engine_info(self) -> dict[str, Any]:
        return {"state": self.state, "state_elapsed_s": self.elapsed_s}

    def stats(self) -> dict[str, Any]:
        return {"queue_depth": self.queue_depth, "cameras": {"c": {"state": self.camera_state}}}

    def last_progress_mono(self) -> float | None:
        return self.last_progress


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[tuple[socket.socket, Notifier]]:
    path = str(tmp_path / "n.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
    yield sock, notifier
    notifier.close()
    sock.close()


def _drain(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_extend_while_building_then_ready_then_pings_only_while_progressing(
    notify: tuple[socket.socket, Notifier], fake_clock: FakeClock
) -> None:
    sock, notifier = notify
    pipeline = StandInPipeline()
    first = threading.Event()
    dog = Watchdog(
        lambda: pipeline, first, lambda: "profile maxq, 0.0 fps, n/a", notifier, fake_clock
    )
    assert dog.stall_s == 2.0

    pipeline.state, pipeline.elapsed_s = "building_engine", 42.0
    dog.step(fake_clock.monotonic())
    sent = _drain(sock)
    assert "EXTEND_TIMEOUT_USEC=120000000" in sent
    assert "STATUS=building TensorRT engine (42 s)" in sent
    assert not any("READY" in m or "WATCHDOG" in m for m in sent)

    pipeline.state = "ready"
    first.set()
    dog.step(fake_clock.monotonic())
    assert _drain(sock) == ["READY=1\nSTATUS=profile maxq, 0.0 fps, n/a"]

    pipeline.last_progress, pipeline.queue_depth = fake_clock.monotonic(), 3
    fake_clock.advance(1.0)
    dog.step(fake_clock.monotonic())
    assert _drain(sock) == ["WATCHDOG=1"]

    fake_clock.advance(5.0)  # frames waiting, no batch finished: a wedged engine
    dog.step(fake_clock.monotonic())
    assert _drain(sock) == []
    assert not dog.pinging

    pipeline.last_progress = fake_clock.monotonic()
    dog.step(fake_clock.monotonic())
    assert _drain(sock) == ["WATCHDOG=1"]


def test_outside_systemd_ready_is_logged_once_and_stalls_are_still_noticed(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = StandInPipeline()
    pipeline.state = "ready"
    first = threading.Event()
    first.set()
    notifier = Notifier({})  # no NOTIFY_SOCKET: not under systemd
    dog = Watchdog(lambda: pipeline, first, lambda: "", notifier, fake_clock)
    with caplog.at_level(logging.INFO, logger="edge_agent.agent.watchdog"):
        for _ in range(5):
            pipeline.last_progress = fake_clock.monotonic()
            dog.step(fake_clock.monotonic())
            fake_clock.advance(1.0)
        fake_clock.advance(dog.stall_s + 1.0)  # the camera says up, nothing arrives
        for _ in range(3):
            dog.step(fake_clock.monotonic())
            fake_clock.advance(1.0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("ready: first result produced") == 1
    assert sum("pipeline stalled" in m for m in messages) == 1
    assert dog.ready_sent
    assert not dog.pinging
