"""The queue and thread behind an MQTT command: the network thread validates a command and
queues it; one worker applies commands in order. Rate-limited, bounded and stoppable, so a
flood of commands neither blocks paho's thread nor piles up work."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from edge_agent.clock import Clock
from edge_agent.telemetry.inbound import InboundRejected, RateLimiter

T = TypeVar("T")


class CommandQueue(Generic[T]):
    """Commands waiting for one worker thread.

    Args:
        thread_name: the worker thread's name.
        clock: the injected clock (the rate limit).
        changes: what the rate limit counts, for its refusal (``profile switches``).
        commands: what waits in the queue, for its refusal (``profile commands``).
        queue_size: commands waiting before new ones are refused.
        burst, every_s: commands accepted at once, then one per ``every_s`` seconds.
    """

    def __init__(
        self,
        thread_name: str,
        clock: Clock,
        changes: str,
        commands: str,
        queue_size: int,
        burst: int,
        every_s: float,
    ) -> None:
        self.thread_name = thread_name
        self.changes, self.commands = changes, commands
        self._queue: queue.Queue[T | None] = queue.Queue(maxsize=queue_size)
        self._limit = RateLimiter(clock, burst, every_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, handle: Callable[[T], None]) -> None:
        """Run ``handle`` on each queued command, in order, on the worker thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(handle,), name=self.thread_name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to stop after the command it is applying."""
        self._stop.set()
        # A full queue is fine: the worker checks the stop flag after each command.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    def join(self, timeout_s: float = 5.0) -> None:
        """Wait for the worker to end."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            if not self._thread.is_alive():
                self._thread = None

    def submit(self, command: T, subject: str | None) -> None:
        """Queue ``command`` (called on the network thread).

        Raises:
            InboundRejected: rate limited, or the queue is full; ``subject`` is echoed back.
        """
        if not self._limit.allow():
            raise InboundRejected(
                f"rate limited: at most {self._limit.burst} {self.changes} at once, "
                f"then one per {self._limit.every_s:g} s",
                subject=subject,
            )
        try:
            self._queue.put_nowait(command)
        except queue.Full:
            raise InboundRejected(
                f"busy: {self._queue.maxsize} {self.commands} pending", subject=subject
            ) from None

    def _run(self, handle: Callable[[T], None]) -> None:
        while not self._stop.is_set():
            command = self._queue.get()
            if command is not None:
                handle(command)
