"""The pipeline: cameras -> batcher queue -> preprocess -> engine -> decoder -> results.

Threads: one per camera, one ``batcher`` (decides, then preprocesses into a free batch
buffer) and one ``engine`` (runs, decodes, calls ``on_result``). Two batch buffers let the
batcher prepare batch N+1 while the engine runs batch N, so the stages overlap and the
pipeline runs at the speed of its slowest stage. No thread catches exceptions: one that dies
reaches ``threading.excepthook``, the daemon's supervisor.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edge_agent.clock import Clock
from edge_agent.config import BatchingConfig, CameraConfig, ModelConfig
from edge_agent.errors import InferenceError
from edge_agent.pipeline.batcher import (
    BatchPolicy,
    BatchWorker,
    EngineTimeModel,
    FrameQueue,
    QueuedFrame,
)
from edge_agent.pipeline.capture import Frame, Source
from edge_agent.pipeline.decoders import Decoder, make_decoder
from edge_agent.pipeline.engine import Engine
from edge_agent.pipeline.model_meta import (
    LetterboxInfo,
    ModelMeta,
    bundled_demo_model,
    load_model_meta,
)
from edge_agent.pipeline.preprocess import Preprocessor
from edge_agent.pipeline.result import Result

logger = logging.getLogger(__name__)

_BUFFERS = 2  # one batch being prepared while the engine runs the other


@dataclass
class _Batch:
    pre: Preprocessor
    frames: list[QueuedFrame] = field(default_factory=list)
    geometry: list[LetterboxInfo] = field(default_factory=list)
    formed_mono: float = 0.0
    preprocess_s: float = 0.0


class Pipeline:
    """Runs cameras through one model with latency-bounded batching across cameras.

    Args:
        cameras: camera config sections.
        model: the model section (``path`` None = the bundled demo model).
        batching: the batching section.
        state_dir: the agent's state directory (TensorRT caches).
        clock: the injected clock; every timestamp comes from it.
        on_result: called in the engine thread with each result, in batch order.
        on_batch: called after each batch with (engine start, engine end, real frames),
            monotonic seconds; the energy ledger uses it.
        latency_scale: stretches engine time on a simulated board (see ``Engine``).
    """

    def __init__(
        self,
        cameras: list[CameraConfig],
        model: ModelConfig,
        batching: BatchingConfig,
        state_dir: Path,
        clock: Clock,
        on_result: Callable[[Result], None],
        *,
        on_batch: Callable[[float, float, int], None] | None = None,
        latency_scale: Callable[[], float] | None = None,
    ) -> None:
        self._model_config = model
        self._batching = batching
        self._clock = clock
        self._on_result = on_result
        self._on_batch = on_batch
        model_path = model.path if model.path is not None else bundled_demo_model()
        self.engine = Engine(
            model_path,
            model,
            state_dir,
            clock,
            max_batch=batching.max_batch,
            latency_scale=latency_scale,
        )
        self._timing = EngineTimeModel()
        self._queue = FrameQueue(batching.queue_size, batching.max_batch, clock)
        self._cond = threading.Condition()
        self._free: deque[_Batch] = deque()
        self._ready: deque[_Batch] = deque()
        self._running: _Batch | None = None
        self._running_since = 0.0
        self._stopping = False
        self._batcher_done = False
        self._live_sources = len(cameras)
        self._counts = {"batches": 0, "results": 0, "frames_in_batches": 0}
        self._last_progress: float | None = None
        self._meta: ModelMeta | None = None
        self._decoder: Decoder | None = None
        self._policy: BatchPolicy | None = None
        self.sources = [
            Source(cam, clock, self._sink, on_exit=self._source_exited) for cam in cameras
        ]
        self._threads: list[threading.Thread] = []

    # -- setup -------------------------------------------------------------------------------
    def load(self) -> None:
        """Load the model, metadata and decoder, and allocate the batch buffers.

        ``start`` calls it when needed; call it first to fail early.

        Raises:
            InferenceError: missing/corrupt model, unusable provider, or an input shape no
                camera can feed.
            ConfigError: invalid model metadata (sidecar YAML).
        """
        if self._meta is not None:
            return
        self.engine.load()
        meta = load_model_meta(self.engine.model_path)
        if self._model_config.labels is not None:
            labels = self._model_config.labels.read_text(encoding="utf-8").splitlines()
            meta = replace(meta, labels=tuple(line.strip() for line in labels if line.strip()))
        if self._model_config.name is not None:
            meta = replace(meta, name=self._model_config.name)
        cfg = self._model_config
        self._decoder = make_decoder(
            cfg.decoder, meta, cfg.top_k, cfg.conf_threshold, cfg.iou_threshold
        )
        max_batch = self.engine.max_batch()
        self._policy = BatchPolicy.from_config(self._batching, max_batch)
        rows = self.engine.batch_rows(max_batch)
        for _ in range(_BUFFERS):
            self._free.append(_Batch(Preprocessor(meta.preprocess, self.engine.input, rows)))
        self._meta = meta

    def start(self) -> None:
        """Load if needed, then start the engine, batcher and camera threads."""
        self.load()
        policy = self._policy
        assert policy is not None
        worker = BatchWorker(
            self._queue,
            policy,
            self._timing,
            self._clock,
            acquire=self._acquire,
            dispatch=self._dispatch,
            engine_free_at=self._engine_free_at,
        )
        self._last_progress = self._clock.monotonic()
        self._threads = [
            threading.Thread(target=self._engine_loop, name="engine"),
            threading.Thread(target=self._batcher_loop, args=(worker,), name="batcher"),
        ]
        for thread in self._threads:
            thread.start()
        for source in self.sources:
            source.start()
        if not self.sources:
            self._queue.finish()

    def thread_names(self) -> frozenset[str]:
        """The names of the threads this pipeline runs (engine, batcher, one per camera)."""
        return frozenset(
            [*(t.name for t in self._threads), *(f"capture-{s.name}" for s in self.sources)]
        )

    def source_states(self) -> dict[str, tuple[str, str | None]]:
        """Each camera's state and last error, by camera name."""
        out: dict[str, tuple[str, str | None]] = {}
        for source in self.sources:
            stats = source.stats()
            out[source.name] = (stats.state, stats.last_error)
        return out

    def stop(self) -> None:
        """Stop capture and batching (returns at once; then ``join``).

        Batches already formed still run, so their results are delivered: SIGTERM finishes
        in-flight work. The engine is closed by ``join`` once its thread has ended; closing
        it here could pull the session from under a batch that is running.
        """
        for source in self.sources:
            source.stop()
        self._queue.close()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for every thread; True when all have ended within ``timeout_s``.

        The engine is closed when every thread has ended; a wedged engine thread keeps it
        open (the process is exiting or being restarted then).
        """
        deadline = None if timeout_s is None else self._clock.monotonic() + timeout_s
        threads: list[Any] = [*self.sources, *self._threads]
        for thread in threads:
            left = None if deadline is None else max(0.0, deadline - self._clock.monotonic())
            thread.join(left)
        ended = not any(t.is_alive() for t in threads)
        if ended and self._stopping:
            self.engine.close()
        return ended

    # -- threads -----------------------------------------------------------------------------
    def _sink(self, frame: Frame, lossless: bool) -> bool:
        return self._queue.put(frame, lossless=lossless)

    def _source_exited(self) -> None:
        with self._cond:
            self._live_sources -= 1
            last = self._live_sources == 0
        if last:
            self._queue.finish()

    def _acquire(self) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._free) or self._stopping)
            return not self._stopping

    def _engine_free_at(self) -> float | None:
        with self._cond:
            running = self._running
            if running is None and not self._ready:
                return None
            start = self._running_since if running is not None else self._clock.monotonic()
            sizes = [len(b.frames) for b in ([running] if running else []) + list(self._ready)]
        return start + sum(self._timing.estimate(n) or 0.0 for n in sizes)

    def _batcher_loop(self, worker: BatchWorker) -> None:
        try:
            worker.run()
        finally:
            with self._cond:
                self._batcher_done = True
                self._cond.notify_all()

    def _dispatch(self, frames: list[QueuedFrame]) -> None:
        with self._cond:
            batch = self._free.popleft()
        batch.formed_mono = self._clock.monotonic()
        batch.frames = frames
        batch.geometry = [batch.pre.fill(i, q.frame.image) for i, q in enumerate(frames)]
        batch.preprocess_s = self._clock.monotonic() - batch.formed_mono
        with self._cond:
            self._ready.append(batch)
            self._cond.notify_all()

    def _engine_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopping or bool(self._ready) or self._batcher_done
                )
                if not self._ready:
                    return  # stopping or the batcher is done, and nothing formed is left
                batch = self._ready.popleft()
                self._running = batch
                self._running_since = self._clock.monotonic()
            self._run_batch(batch)
            with self._cond:
                self._running = None
                batch.frames = []
                self._free.append(batch)
                self._cond.notify_all()

    def _run_batch(self, batch: _Batch) -> None:
        decoder, meta = self._decoder, self._meta
        if decoder is None or meta is None:
            raise InferenceError("pipeline is not loaded")
        count = len(batch.frames)
        start = self._clock.monotonic()
        outputs = self.engine.run(batch.pre.buffer, count)
        end = self._clock.monotonic()
        decoded = decoder.decode(outputs, count, batch.geometry)
        if self._on_batch is not None:
            self._on_batch(start, end, count)
        done = self._clock.monotonic()
        self._timing.observe(count, batch.preprocess_s + (done - start))
        provider = self.engine.provider
        engine_ms = (end - start) * 1000
        preprocess_ms = batch.preprocess_s * 1000
        for queued, outputs_dict in zip(batch.frames, decoded, strict=True):
            frame = queued.frame
            now = self._clock.monotonic()
            self._on_result(
                Result(
                    camera=frame.camera,
                    frame=frame.seq,
                    captured_at=frame.captured_wall,
                    captured_mono=frame.captured_mono,
                    queue_ms=(batch.formed_mono - frame.captured_mono) * 1000,
                    preprocess_ms=preprocess_ms,
                    engine_ms=engine_ms,
                    latency_ms=(now - frame.captured_mono) * 1000,
                    batch_size=count,
                    model=meta.name,
                    precision=self._model_config.precision,
                    provider=provider,
                    outputs=outputs_dict,
                    truth=frame.truth,
                )
            )
        with self._cond:
            self._counts["batches"] += 1
            self._counts["results"] += count
            self._counts["frames_in_batches"] += count
            self._last_progress = self._clock.monotonic()

    # -- reporting ---------------------------------------------------------------------------
    def last_progress_mono(self) -> float | None:
        """When the last batch finished (start time before the first); None before start."""
        with self._cond:
            return self._last_progress

    def engine_info(self) -> dict[str, Any]:
        """Provider, precision, model name and engine state."""
        state = self.engine.state()
        return {
            "model": self._meta.name if self._meta else self.engine.model_path.stem,
            "precision": self._model_config.precision,
            "provider": state.provider,
            "state": state.name,
            "state_elapsed_s": round(state.elapsed_s, 3),
            "error": state.error,
        }

    def stats(self) -> dict[str, Any]:
        """Per-camera counters and state, queue depth and drops, batches, results, engine."""
        drops = self._queue.drops()
        cameras: dict[str, Any] = {}
        for source in self.sources:
            s = source.stats()
            cameras[source.name] = {
                "state": s.state,
                "captured": s.captured,
                "skipped": s.skipped,
                "dropped": drops.get(source.name, 0),
                "decode_errors": s.decode_errors,
                "reconnects": s.reconnects,
                "last_error": s.last_error,
            }
        with self._cond:
            counts = dict(self._counts)
        batches = counts["batches"]
        return {
            "cameras": cameras,
            "queue_depth": self._queue.depth(),
            "queue_capacity": self._batching.queue_size,
            "drops": sum(drops.values()),
            "batches": batches,
            "results": counts["results"],
            "mean_batch_size": counts["frames_in_batches"] / batches if batches else 0.0,
            "service_ms_by_batch": {k: v * 1000 for k, v in self._timing.snapshot().items()},
            "engine": self.engine_info(),
        }
