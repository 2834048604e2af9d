"""Latency-bounded batching across cameras: pure decisions, a bounded queue, a thin thread shell.

Two modes, after Triton's dynamic batcher (``max_queue_delay``):

- **delay**: flush when ``max_batch`` frames wait, or when the oldest has waited
  ``max_delay_ms`` (0 = never wait: take what is there whenever the engine is free);
- **budget** (``latency_budget_ms`` set): learn the engine's time per batch size online and
  flush, as late as the budget allows, the largest batch whose oldest frame still finishes
  within the budget (capture to result).

``decide`` is a pure function of time and the queue, tested under a fake clock; ``BatchWorker``
only waits on events and calls it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from edge_agent.clock import Clock
from edge_agent.config import BatchingConfig

if TYPE_CHECKING:
    from edge_agent.pipeline.capture import Frame

logger = logging.getLogger(__name__)

BUDGET_HEADROOM = 0.05  # fraction of the latency budget kept free for engine-time jitter


class Pending(Protocol):
    """What ``decide`` needs to know about a queued frame."""

    @property
    def captured_mono(self) -> float: ...

    @property
    def enqueued_mono(self) -> float: ...


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """Batching limits, in seconds."""

    max_batch: int
    max_delay_s: float = 0.0
    latency_budget_s: float | None = None

    @classmethod
    def from_config(cls, config: BatchingConfig, batch_cap: int | None = None) -> BatchPolicy:
        """The policy for a config section; ``batch_cap`` is a fixed-batch model's size."""
        max_batch = config.max_batch if batch_cap is None else min(config.max_batch, batch_cap)
        budget = None if config.latency_budget_ms is None else config.latency_budget_ms / 1000
        return cls(max(1, max_batch), config.max_delay_ms / 1000, budget)


@dataclass(frozen=True, slots=True)
class Decision:
    """Flush ``flush`` frames now (> 0), or wait until ``wake_at`` (None: until a new frame)."""

    flush: int
    wake_at: float | None = None


class EngineTimeModel:
    """Per-batch-size service time learned online (EWMA), with pessimistic extrapolation."""

    def __init__(self, alpha: float = 0.2) -> None:
        self._alpha = alpha
        self._seconds: dict[int, float] = {}
        self._lock = threading.Lock()  # observed by the engine thread, read by the batcher

    def observe(self, batch_size: int, seconds: float) -> None:
        """Record one batch's service time."""
        with self._lock:
            old = self._seconds.get(batch_size)
            new = seconds if old is None else old + self._alpha * (seconds - old)
            self._seconds[batch_size] = new

    def estimate(self, batch_size: int) -> float | None:
        """Expected seconds for a batch of this size, or None before any observation.

        Unseen sizes are interpolated between seen neighbours; above the largest seen size
        time grows linearly with the batch, below the smallest it is that size's time.
        """
        seconds = self.snapshot()
        if batch_size in seconds:
            return seconds[batch_size]
        if not seconds:
            return None
        below = [k for k in seconds if k < batch_size]
        above = [k for k in seconds if k > batch_size]
        if below and above:
            lo, hi = max(below), min(above)
            return seconds[lo] + (seconds[hi] - seconds[lo]) * (batch_size - lo) / (hi - lo)
        if below:
            lo = max(below)
            return seconds[lo] * batch_size / lo
        return seconds[min(above)]

    def snapshot(self) -> dict[int, float]:
        """Learned seconds per batch size."""
        with self._lock:
            return dict(self._seconds)


def decide(
    now: float,
    pending: Sequence[Pending],
    policy: BatchPolicy,
    timing: EngineTimeModel,
    engine_free_at: float | None = None,
) -> Decision:
    """Whether to flush a batch now, and how many frames, or when to look again.

    Args:
        now: the current monotonic time.
        pending: queued frames, oldest first.
        policy: the batching limits.
        timing: learned service time per batch size (budget mode).
        engine_free_at: when the engine will have finished its current batch, if busy.
    """
    count = len(pending)
    if count == 0:
        return Decision(0)
    full = min(count, policy.max_batch)
    if count >= policy.max_batch:
        return Decision(policy.max_batch)
    oldest = pending[0]
    delay_deadline = oldest.enqueued_mono + policy.max_delay_s
    if policy.latency_budget_s is None:
        return Decision(full) if now >= delay_deadline else Decision(0, delay_deadline)
    service = timing.estimate(full)
    if service is None:
        return Decision(full)  # nothing learned yet: run now and learn
    start = now if engine_free_at is None else max(now, engine_free_at)
    # Aim a little inside the budget: engine times jitter around the learned mean.
    budget = policy.latency_budget_s * (1.0 - BUDGET_HEADROOM)
    # The latest moment the oldest frame can start and still finish inside the budget.
    budget_deadline = oldest.captured_mono + budget - service - (start - now)
    deadline = budget_deadline
    if policy.max_delay_s > 0:
        deadline = min(deadline, delay_deadline)
    if now < deadline:
        return Decision(0, deadline)
    # Frames that arrived since the deadline was set may make the whole queue too slow:
    # run the largest batch that still fits; if none fits we are overloaded, so run them all.
    for size in range(full, 0, -1):
        estimate = timing.estimate(size)
        if (
            estimate is not None
            and start - oldest.captured_mono + estimate <= policy.latency_budget_s
        ):
            return Decision(size)
    return Decision(full)


@dataclass(frozen=True, slots=True)
class QueuedFrame:
    """A frame in the batcher queue, stamped when it entered."""

    frame: Frame
    enqueued_mono: float

    @property
    def captured_mono(self) -> float:
        """The frame's capture time."""
        return self.frame.captured_mono

    @property
    def camera(self) -> str:
        """The frame's camera."""
        return self.frame.camera


class FrameQueue:
    """Bounded frame queue shared by all cameras, with an explicit, counted drop policy.

    Live sources never block: when their camera already has ``per_camera`` frames queued, or
    the queue holds ``capacity`` frames, the oldest such frame is dropped and counted against
    its camera; so a slow engine always works on the newest frames. Lossless sources (a
    file replayed as fast as possible) wait for room instead.
    """

    def __init__(self, capacity: int, per_camera: int, clock: Clock) -> None:
        self._capacity = capacity
        self._per_camera = max(1, min(per_camera, capacity))
        self._clock = clock
        self._items: deque[QueuedFrame] = deque()
        self._per_cam_count: dict[str, int] = {}
        self._drops: dict[str, int] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._finished = False

    def put(self, frame: Frame, *, lossless: bool = False) -> bool:
        """Queue a frame; returns False when it was refused because the queue is closed."""
        with self._cond:
            if lossless:
                while not self._closed and (
                    len(self._items) >= self._capacity
                    or self._per_cam_count.get(frame.camera, 0) >= self._per_camera
                ):
                    self._cond.wait()
            else:
                if self._per_cam_count.get(frame.camera, 0) >= self._per_camera:
                    self._drop_oldest(frame.camera)
                if len(self._items) >= self._capacity:
                    self._drop_oldest(None)
            if self._closed:
                return False
            self._items.append(QueuedFrame(frame, self._clock.monotonic()))
            self._per_cam_count[frame.camera] = self._per_cam_count.get(frame.camera, 0) + 1
            self._cond.notify_all()
            return True

    def _drop_oldest(self, camera: str | None) -> None:
        for index, item in enumerate(self._items):
            if camera is None or item.camera == camera:
                del self._items[index]
                self._per_cam_count[item.camera] -= 1
                self._drops[item.camera] = self._drops.get(item.camera, 0) + 1
                logger.debug("queue full: dropped %s frame %d", item.camera, item.frame.seq)
                return

    def pending(self) -> list[QueuedFrame]:
        """A copy of the queued frames, oldest first."""
        with self._cond:
            return list(self._items)

    def take(self, count: int) -> list[QueuedFrame]:
        """Remove and return up to ``count`` oldest frames."""
        with self._cond:
            taken = [self._items.popleft() for _ in range(min(count, len(self._items)))]
            for item in taken:
                self._per_cam_count[item.camera] -= 1
            self._cond.notify_all()
            return taken

    def wait_for_change(self, timeout_s: float | None, seen: int) -> None:
        """Block until the queue length differs from ``seen``, the timeout, or ``close``."""
        with self._cond:
            if not self._closed and not self._finished and len(self._items) == seen:
                self._cond.wait(timeout_s)

    def close(self) -> None:
        """Wake every waiter; later puts are refused."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def finish(self) -> None:
        """No more frames will come (every source ended): flush what is left and stop."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True after ``close``."""
        return self._closed

    @property
    def finished(self) -> bool:
        """True after ``finish``."""
        return self._finished

    def depth(self) -> int:
        """Frames queued now."""
        with self._cond:
            return len(self._items)

    def drops(self) -> dict[str, int]:
        """Frames dropped per camera because the queue was full."""
        with self._cond:
            return dict(self._drops)


class BatchWorker:
    """The thin shell: when a batch slot is free, ask ``decide`` until it flushes.

    Args:
        queue: the shared frame queue.
        policy: batching limits.
        timing: learned service times (updated by whoever runs the batches).
        clock: the injected clock.
        acquire: blocks until a batch slot is free; returns False when stopping.
        dispatch: receives each batch's frames (oldest first) in this thread.
        engine_free_at: when the engine finishes its current batch, or None if idle.
    """

    def __init__(
        self,
        queue: FrameQueue,
        policy: BatchPolicy,
        timing: EngineTimeModel,
        clock: Clock,
        *,
        acquire: Callable[[], bool],
        dispatch: Callable[[list[QueuedFrame]], None],
        engine_free_at: Callable[[], float | None],
    ) -> None:
        self._queue = queue
        self._policy = policy
        self._timing = timing
        self._clock = clock
        self._acquire = acquire
        self._dispatch = dispatch
        self._engine_free_at = engine_free_at

    def run(self) -> None:
        """Loop until the queue is closed or ``acquire`` says stop."""
        while not self._queue.closed:
            if not self._acquire():
                return
            batch = self._next_batch()
            if not batch:
                return
            self._dispatch(batch)

    def _next_batch(self) -> list[QueuedFrame]:
        while not self._queue.closed:
            pending = self._queue.pending()
            if self._queue.finished:
                # No frame will arrive any more: waiting cannot grow a batch.
                return self._queue.take(self._policy.max_batch)
            now = self._clock.monotonic()
            decision = decide(now, pending, self._policy, self._timing, self._engine_free_at())
            if decision.flush:
                return self._queue.take(decision.flush)
            timeout = None if decision.wake_at is None else max(0.0, decision.wake_at - now)
            self._queue.wait_for_change(timeout, len(pending))
        return []
