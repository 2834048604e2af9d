"""Batcher: pure decisions under a fake clock, the bounded queue, and the thread shell."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from edge_agent.clock import FakeClock, SystemClock
from edge_agent.config import BatchingConfig
from edge_agent.pipeline.batcher import (
    BatchPolicy,
    BatchWorker,
    Decision,
    EngineTimeModel,
    FrameQueue,
    QueuedFrame,
    decide,
)
from edge_agent.pipeline.capture import Frame


@dataclass(frozen=True)
class Item:
    captured_mono: float
    enqueued_mono: float
    camera: int = 0


def _arrivals(cameras: int, fps: float, seconds: float, jitter_s: float) -> list[float]:
    """Frame times of several unsynchronised cameras with deterministic jitter."""
    rng = np.random.default_rng(7)
    times: list[float] = []
    for cam in range(cameras):
        offset = cam / (cameras * fps)
        count = int(seconds * fps)
        times += [offset + i / fps + float(rng.uniform(0, jitter_s)) for i in range(count)]
    return sorted(times)


@dataclass
class SimResult:
    waits: list[float]
    latencies: list[float]
    sizes: list[int]


def simulate(
    clock: FakeClock, policy: BatchPolicy, arrivals: list[float], service: Callable[[int], float]
) -> SimResult:
    """One engine (a single server) driven by ``decide``, time moved by the fake clock."""
    timing = EngineTimeModel()
    queue: list[Item] = []
    out = SimResult([], [], [])
    start = clock.monotonic()
    times = [start + t for t in arrivals]
    next_index = 0
    engine_free = start
    while next_index < len(times) or queue:
        now = clock.monotonic()
        while next_index < len(times) and times[next_index] <= now:
            queue.append(Item(times[next_index], times[next_index]))
            next_index += 1
        upcoming = times[next_index] if next_index < len(times) else math.inf
        if now < engine_free:
            clock.advance(min(engine_free, upcoming) - now)
            continue
        decision = decide(now, queue, policy, timing)
        if decision.flush:
            batch, queue[:] = queue[: decision.flush], queue[decision.flush :]
            seconds = service(len(batch))
            timing.observe(len(batch), seconds)
            out.sizes.append(len(batch))
            for item in batch:
                out.waits.append(now - item.enqueued_mono)
                out.latencies.append(now + seconds - item.captured_mono)
            engine_free = now + seconds
            continue
        wake = decision.wake_at if decision.wake_at is not None else math.inf
        target = min(wake, upcoming)
        assert target < math.inf, "the batcher would wait forever with frames queued"
        clock.advance(max(0.0, target - now))
    return out


def test_decide_empty_queue_waits_for_frames() -> None:
    assert decide(5.0, [], BatchPolicy(4, 0.01), EngineTimeModel()) == Decision(0, None)


def test_decide_flushes_full_batch_at_once() -> None:
    items = [Item(1.0, 1.0)] * 5
    assert decide(1.0, items, BatchPolicy(4, 10.0), EngineTimeModel()) == Decision(4)


def test_decide_waits_until_oldest_reaches_max_delay() -> None:
    items = [Item(1.0, 1.0), Item(1.002, 1.002)]
    policy = BatchPolicy(8, 0.010)
    waiting = decide(1.004, items, policy, EngineTimeModel())
    assert waiting.flush == 0
    assert waiting.wake_at == pytest.approx(1.010)
    assert decide(1.010, items, policy, EngineTimeModel()) == Decision(2)


def test_decide_zero_delay_takes_what_is_there() -> None:
    items = [Item(1.0, 1.0), Item(1.0, 1.0)]
    assert decide(1.0, items, BatchPolicy(8, 0.0), EngineTimeModel()) == Decision(2)


def test_budget_mode_runs_at_once_until_it_has_learned() -> None:
    items = [Item(1.0, 1.0)]
    assert decide(1.0, items, BatchPolicy(8, 0.0, 0.1), EngineTimeModel()) == Decision(1)


def test_budget_mode_waits_as_long_as_the_budget_allows() -> None:
    timing = EngineTimeModel()
    timing.observe(1, 0.020)
    items = [Item(captured_mono=1.0, enqueued_mono=1.001)]
    decision = decide(1.001, items, BatchPolicy(8, 0.0, 0.100), timing)
    # Finish by capture + 95% of the budget: start by 1.0 + 0.095 - 0.020.
    assert decision.flush == 0
    assert decision.wake_at == pytest.approx(1.075)
    # An engine busy for 30 ms more moves the deadline earlier by as much.
    busy = decide(1.001, items, BatchPolicy(8, 0.0, 0.100), timing, engine_free_at=1.031)
    assert busy.wake_at == pytest.approx(1.045)


def test_budget_mode_late_runs_the_largest_batch_that_still_fits() -> None:
    timing = EngineTimeModel()
    for size in (1, 2, 3, 4):
        timing.observe(size, 0.010 * size)
    policy = BatchPolicy(8, 0.0, 0.100)
    # The oldest frame has waited 75 ms: 4 frames (40 ms) or 3 (30 ms) would end past the
    # 100 ms budget, 2 frames (20 ms) end at 95 ms.
    items = [Item(1.0, 1.0)] + [Item(1.05, 1.05)] * 3
    assert decide(1.075, items, policy, timing) == Decision(2)
    # Overloaded: not even one frame fits any more, so run them all rather than starve.
    assert decide(1.2, items, policy, timing) == Decision(4)


def test_engine_time_model_learns_and_extrapolates() -> None:
    timing = EngineTimeModel(alpha=0.5)
    assert timing.estimate(4) is None
    timing.observe(2, 0.010)
    timing.observe(2, 0.020)
    assert timing.estimate(2) == pytest.approx(0.015)
    assert timing.estimate(4) == pytest.approx(0.030)  # linear above the largest seen
    assert timing.estimate(1) == pytest.approx(0.015)  # never faster than a larger batch
    timing.observe(6, 0.035)
    assert timing.estimate(4) == pytest.approx(0.025)  # interpolated
    assert timing.snapshot() == {2: pytest.approx(0.015), 6: pytest.approx(0.035)}


def test_delay_mode_no_frame_waits_longer_than_max_delay(fake_clock: FakeClock) -> None:
    policy = BatchPolicy(max_batch=8, max_delay_s=0.010)
    arrivals = _arrivals(cameras=3, fps=30, seconds=5, jitter_s=0.004)
    result = simulate(fake_clock, policy, arrivals, service=lambda n: 0.0)
    assert len(result.waits) == len(arrivals)
    assert max(result.waits) <= 0.010 + 1e-9
    assert max(result.sizes) > 1  # it did batch across cameras


def test_delay_mode_wait_bounded_by_delay_plus_busy_engine(fake_clock: FakeClock) -> None:
    policy = BatchPolicy(max_batch=4, max_delay_s=0.010)
    arrivals = _arrivals(cameras=4, fps=30, seconds=5, jitter_s=0.004)
    result = simulate(fake_clock, policy, arrivals, service=lambda n: 0.002 + 0.001 * n)
    assert max(result.waits) <= 0.010 + 0.006 + 1e-9
    assert max(result.sizes) <= 4


def test_budget_mode_keeps_p99_within_budget_under_load(fake_clock: FakeClock) -> None:
    # 4 cameras x 60 fps = 240 frames/s; at batch 1 this engine manages 1/5 ms = 200/s,
    # so without batching the queue would grow without bound.
    def service(n: int) -> float:
        return 0.004 + 0.001 * n

    budget = 0.050
    policy = BatchPolicy(max_batch=16, max_delay_s=0.0, latency_budget_s=budget)
    arrivals = _arrivals(cameras=4, fps=60, seconds=10, jitter_s=0.005)
    result = simulate(fake_clock, policy, arrivals, service)
    assert len(result.latencies) == len(arrivals)
    assert float(np.percentile(result.latencies, 99)) <= budget
    assert float(np.mean(result.sizes)) > 2


def test_budget_mode_batches_more_with_a_looser_budget(fake_clock: FakeClock) -> None:
    arrivals = _arrivals(cameras=2, fps=30, seconds=5, jitter_s=0.002)

    def service(n: int) -> float:
        return 0.005 + 0.0005 * n

    tight = simulate(fake_clock, BatchPolicy(16, 0.0, 0.010), arrivals, service)
    loose = simulate(FakeClock(), BatchPolicy(16, 0.0, 0.100), arrivals, service)
    assert float(np.percentile(tight.latencies, 99)) <= 0.010
    assert float(np.percentile(loose.latencies, 99)) <= 0.100
    assert np.mean(loose.sizes) > np.mean(tight.sizes)


def test_policy_from_config_caps_batch_to_fixed_model() -> None:
    config = BatchingConfig(max_batch=16, max_delay_ms=5, latency_budget_ms=40)
    assert BatchPolicy.from_config(config, 4) == BatchPolicy(4, 0.005, 0.040)
    assert BatchPolicy.from_config(BatchingConfig()) == BatchPolicy(1, 0.0, None)


def _frame(camera: str, seq: int, t: float = 0.0) -> Frame:
    return Frame(camera, seq, t, t, np.zeros((2, 2, 3), np.uint8))


def test_queue_live_camera_keeps_its_newest_frames(fake_clock: FakeClock) -> None:
    queue = FrameQueue(capacity=10, per_camera=2, clock=fake_clock)
    for seq in range(5):
        assert queue.put(_frame("a", seq))
    queue.put(_frame("b", 0))
    assert [(q.camera, q.frame.seq) for q in queue.pending()] == [("a", 3), ("a", 4), ("b", 0)]
    assert queue.drops() == {"a": 3}
    assert queue.depth() == 3


def test_queue_full_drops_oldest_across_cameras(fake_clock: FakeClock) -> None:
    queue = FrameQueue(capacity=3, per_camera=3, clock=fake_clock)
    for cam, seq in [("a", 0), ("b", 0), ("c", 0), ("d", 0)]:
        queue.put(_frame(cam, seq))
    assert [q.camera for q in queue.pending()] == ["b", "c", "d"]
    assert queue.drops() == {"a": 1}
    taken = queue.take(2)
    assert [q.camera for q in taken] == ["b", "c"]
    assert taken[0].enqueued_mono == fake_clock.monotonic()


def test_queue_lossless_put_waits_for_room_instead_of_dropping(fake_clock: FakeClock) -> None:
    queue = FrameQueue(capacity=2, per_camera=2, clock=fake_clock)
    queue.put(_frame("f", 0), lossless=True)
    queue.put(_frame("f", 1), lossless=True)
    done = threading.Event()

    def producer() -> None:
        queue.put(_frame("f", 2), lossless=True)
        done.set()

    thread = threading.Thread(target=producer, name="producer")
    thread.start()
    assert not done.wait(0.2)  # blocked: the queue is full
    assert [q.frame.seq for q in queue.take(1)] == [0]
    assert done.wait(5)
    thread.join(5)
    assert [q.frame.seq for q in queue.pending()] == [1, 2]
    assert queue.drops() == {}


def test_queue_close_releases_a_blocked_producer(fake_clock: FakeClock) -> None:
    queue = FrameQueue(capacity=1, per_camera=1, clock=fake_clock)
    queue.put(_frame("f", 0), lossless=True)
    results: list[bool] = []
    thread = threading.Thread(
        target=lambda: results.append(queue.put(_frame("f", 1), lossless=True)), name="producer"
    )
    thread.start()
    queue.close()
    thread.join(5)
    assert results == [False]


def test_batch_worker_shell_flushes_batches_and_ends_when_finished() -> None:
    clock = SystemClock()
    queue = FrameQueue(capacity=64, per_camera=64, clock=clock)
    batches: list[list[QueuedFrame]] = []
    worker = BatchWorker(
        queue,
        BatchPolicy(max_batch=4, max_delay_s=0.0),
        EngineTimeModel(),
        clock,
        acquire=lambda: True,
        dispatch=batches.append,
        engine_free_at=lambda: None,
    )
    for seq in range(10):
        queue.put(_frame("a", seq, clock.monotonic()))
    queue.finish()
    thread = threading.Thread(target=worker.run, name="batcher")
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert [len(b) for b in batches] == [4, 4, 2]
    assert [q.frame.seq for b in batches for q in b] == list(range(10))


def test_batch_worker_waits_for_frames_then_stops_on_close() -> None:
    clock = SystemClock()
    queue = FrameQueue(capacity=8, per_camera=8, clock=clock)
    got = threading.Event()
    batches: list[list[QueuedFrame]] = []

    def dispatch(batch: list[QueuedFrame]) -> None:
        batches.append(batch)
        got.set()

    worker = BatchWorker(
        queue,
        BatchPolicy(max_batch=2, max_delay_s=0.001),
        EngineTimeModel(),
        clock,
        acquire=lambda: True,
        dispatch=dispatch,
        engine_free_at=lambda: None,
    )
    thread = threading.Thread(target=worker.run, name="batcher")
    thread.start()
    queue.put(_frame("a", 0, clock.monotonic()))
    assert got.wait(5)
    queue.close()
    thread.join(5)
    assert not thread.is_alive()
    assert [[q.frame.seq for q in b] for b in batches] == [[0]]
