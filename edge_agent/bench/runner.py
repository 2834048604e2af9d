"""``edge-agent bench``: images/s, watts, images/s/W and latency per power profile and batch.

For each profile the bench applies it through :class:`ProfileController` (a reboot-requiring
mode is skipped with that reason, never answered), reads the clocks back, and for each batch
size warms up, then runs back-to-back batches for ``duration_s`` while the sampler reads the
power monitor. Power comes from the :class:`EnergyLedger` over exactly the measured window, so
images/s/W and mJ/image use the MLPerf formulas on the same samples: the board total (the
module input rail, the paper's "AP+DRAM upstream") and the GPU rail ("GPU downstream").

The engine is a :class:`BatchRunner`. By default it is :class:`OrtRunner` (onnxruntime, random
images as the paper's giexec fed), with an optional ``latency_scale`` hook that stretches engine
time (a simulated board's clock ratio). The CLI passes another factory for the simulated engine
of the reference networks; this module never imports the simulator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edge_agent.bench.precision import TENSORRT, precision_refusal
from edge_agent.bench.report import BenchResult, BenchRow, ProfileOutcome
from edge_agent.clock import Clock
from edge_agent.config import ModelConfig, ProfileConfig
from edge_agent.errors import (
    ConfigError,
    FieldError,
    HardwareError,
    InferenceError,
    ProfileError,
    RebootRequired,
)
from edge_agent.hardware.board import detect_board
from edge_agent.hardware.root import Root
from edge_agent.pipeline.engine import Engine
from edge_agent.power.ledger import EnergyLedger
from edge_agent.power.monitor import open_monitor
from edge_agent.power.profile_apply import ProfileController
from edge_agent.power.sampler import Sampler

logger = logging.getLogger(__name__)

CURRENT = "current"
"""The profile label when the bench runs on the clocks as they are (no ``profiles``)."""


class BatchRunner(Protocol):
    """An engine the bench drives, one batch at a time."""

    simulated: bool
    provider: str

    def prepare(self, batch: int) -> float:
        """Get ready for ``batch`` at the current clocks; returns the GPU activity while busy.

        Raises:
            InferenceError: this engine cannot run ``batch`` (the row says why).
        """
        ...

    def run(self, batch: int) -> None:
        """Run one batch of ``batch`` images; returns when it is done."""
        ...

    def close(self) -> None:
        """Release the engine."""
        ...


RunnerFactory = Callable[[int], BatchRunner]
"""Builds (and loads) the engine, given the largest batch it will run."""


class ActivityGauge:
    """The GPU activity the engine reports while it runs (0 when idle); thread-safe.

    A simulated board's power model reads it as its ``busy`` input.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0.0

    def set(self, value: float) -> None:
        """Report the current activity."""
        with self._lock:
            self._value = value

    def get(self) -> float:
        """The current activity."""
        with self._lock:
            return self._value


class OrtRunner:
    """The real engine: onnxruntime on random images, time stretched by ``latency_scale``."""

    simulated = False

    def __init__(
        self,
        model_path: Path,
        precision: str,
        state_dir: Path,
        clock: Clock,
        max_batch: int,
        latency_scale: Callable[[], float] | None = None,
    ) -> None:
        config = ModelConfig.model_validate({"path": model_path, "precision": precision})
        self._engine = Engine(
            model_path, config, state_dir, clock, max_batch=max_batch, latency_scale=latency_scale
        )
        self._engine.load()
        spec = self._engine.input
        self.provider = self._engine.provider
        if precision != "fp32" and self.provider != TENSORRT:
            self._engine.close()
            raise ConfigError(
                [FieldError("--precision", precision_refusal(precision, self.provider))]
            )
        rows = max(max_batch, spec.batch or 1)
        shape = (rows, spec.channels, spec.height, spec.width)
        rng = np.random.default_rng(0)
        if spec.dtype == np.uint8:
            self._buffer = rng.integers(0, 256, size=shape, dtype=np.uint8)
        else:
            self._buffer = rng.standard_normal(shape).astype(spec.dtype)

    @property
    def engine(self) -> Engine:
        """The loaded engine (``bench --accuracy`` runs the labelled set through it)."""
        return self._engine

    def prepare(self, batch: int) -> float:
        """Check the batch fits the model; a host engine counts as fully busy."""
        fixed = self._engine.input.batch
        if fixed is not None and fixed != batch:
            raise InferenceError(f"the model has a fixed batch size of {fixed}")
        return 1.0

    def run(self, batch: int) -> None:
        """One batch through the session."""
        self._engine.run(self._buffer, batch)

    def close(self) -> None:
        """Drop the session."""
        self._engine.close()


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What to measure and how long."""

    batches: tuple[int, ...]
    profiles: tuple[str, ...] | None = None
    precision: str = "fp32"
    duration_s: float = 5.0
    latency_budget_ms: float | None = None
    warmup_batches: int = 1
    settle_s: float = 0.3
    interval_s: float = 0.02
    monitor: str = "auto"
    restore: bool = True


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den <= 0 else num / den


class Bench:
    """Runs the measurement loop: profiles x batches on one engine, one sampler.

    Args:
        root: the board's filesystem root.
        options: what to measure.
        factory: builds the engine (see :class:`OrtRunner`).
        clock: the injected clock (windows, latencies, the sampler).
        state_dir: the profile lock and state.
        profile_config: the ``profile`` config section (backend, custom profiles).
        activity: where the engine's activity is reported (a simulated power model reads it).
        progress: called with (profile, batch) after each row, measured, skipped or failed.
        accuracy: top-1 of the engine, asked once after the measurements (``--accuracy``).
    """

    def __init__(
        self,
        root: Root,
        options: BenchOptions,
        factory: RunnerFactory,
        clock: Clock,
        state_dir: Path,
        *,
        profile_config: ProfileConfig | None = None,
        activity: ActivityGauge | None = None,
        progress: Callable[[str, int], None] | None = None,
        accuracy: Callable[[BatchRunner], float] | None = None,
    ) -> None:
        self.root = root
        self.options = options
        self.factory = factory
        self.clock = clock
        self.activity = activity or ActivityGauge()
        self.progress = progress
        self.accuracy = accuracy
        self.controller = ProfileController(
            root, profile_config or ProfileConfig(), state_dir, clock
        )

    def board_name(self) -> str:
        """The profile file's board id, else the detected slug or model."""
        try:
            return self.controller.board_file()[1].board
        except (ProfileError, ConfigError, HardwareError):
            info = detect_board(self.root)
            return info.slug or info.model or "unknown"

    def check_profiles(self) -> None:
        """Refuse unknown profiles before anything runs.

        Raises:
            ProfileError: a requested profile is unknown (the message lists the valid ones).
        """
        for name in self.options.profiles or ():
            self.controller.profile(name)

    def run(self, model: str) -> BenchResult:
        """Measure every profile and batch; the result says what failed and why.

        Raises:
            ProfileError: unknown profile or no profile file for this board.
            InferenceError: the engine cannot load.
        """
        self.check_profiles()
        opts = self.options
        monitor, why = open_monitor(opts.monitor, self.root, self.clock)
        runner: BatchRunner | None = None
        sampler: Sampler | None = None
        try:
            runner = self.factory(max(opts.batches))
            result = BenchResult(
                board=self.board_name(),
                model=model,
                simulated=runner.simulated,
                precision=opts.precision,
                provider=runner.provider,
                power_source=why,
                duration_s=opts.duration_s,
                latency_budget_ms=opts.latency_budget_ms,
            )
            if monitor.available:
                # Room for the longest window (a slow batch can run past the duration) and more.
                capacity = max(1000, int((opts.duration_s * 4 + 60.0) / opts.interval_s))
                sampler = Sampler(
                    monitor, self.clock, opts.interval_s, capacity, name="bench-power"
                )
                sampler.start()
            else:
                logger.warning("no power monitor, watts will be empty: %s", monitor.reason)
            ledger = EnergyLedger(sampler) if sampler is not None else None
            for name in opts.profiles or (None,):
                self._profile(name, runner, sampler, ledger, result)
            if self.accuracy is not None:
                result.top1 = self.accuracy(runner)
        finally:
            self.activity.set(0.0)
            if sampler is not None:
                sampler.stop()
                sampler.join(5.0)
            monitor.close()
            if runner is not None:
                runner.close()
            if opts.restore and opts.profiles:
                self._restore()
        return result

    def _restore(self) -> None:
        try:
            self.controller.restore_saved()
        except HardwareError as err:
            logger.warning("could not restore the profile from before the bench: %s", err)

    def _profile(
        self,
        name: str | None,
        runner: BatchRunner,
        sampler: Sampler | None,
        ledger: EnergyLedger | None,
        result: BenchResult,
    ) -> None:
        label = name or CURRENT
        try:
            if name is not None:
                self.controller.apply(name)
            current = self.controller.current()
            clocks = current.state.to_dict()
            label = name or current.name
        except RebootRequired as err:
            self._fail(result, label, "skipped", f"skipped: {err}", runner.simulated)
            return
        except (ProfileError, HardwareError) as err:
            if name is not None:
                self._fail(
                    result, label, "failed", f"profile {name} failed: {err}", runner.simulated
                )
                return
            clocks = {}  # no profile file: bench the board as it is, without clocks
        result.profiles.append(ProfileOutcome(label, "measured", None, clocks))
        for batch in self.options.batches:
            row = self._measure(label, batch, runner, sampler, ledger)
            logger.info("bench %s batch %d: %s", label, batch, row)
            result.rows.append(row)
            if self.progress is not None:
                self.progress(label, batch)

    def _fail(self, result: BenchResult, name: str, status: str, why: str, sim: bool) -> None:
        logger.warning("%s", why)
        result.profiles.append(ProfileOutcome(name, status, why))
        for batch in self.options.batches:
            result.rows.append(BenchRow(name, batch, sim, error=why))
            if self.progress is not None:
                self.progress(name, batch)

    def _measure(
        self,
        profile: str,
        batch: int,
        runner: BatchRunner,
        sampler: Sampler | None,
        ledger: EnergyLedger | None,
    ) -> BenchRow:
        opts, clock = self.options, self.clock
        try:
            activity = runner.prepare(batch)
        except InferenceError as err:
            return BenchRow(profile, batch, runner.simulated, error=str(err))
        self.activity.set(activity)
        try:
            # Warm up long enough for clocks to settle and for the power readings to follow the
            # new load: the rails lag the load by a sampling interval or two.
            start, done = clock.monotonic(), 0
            while done < opts.warmup_batches or clock.monotonic() - start < opts.settle_s:
                runner.run(batch)
                done += 1
            latencies: list[float] = []
            t0 = t1 = clock.monotonic()
            while not latencies or t1 - t0 < opts.duration_s:
                began = clock.monotonic()
                runner.run(batch)
                t1 = clock.monotonic()
                latencies.append(t1 - began)
            if sampler is not None:
                # The window's far edge needs a sample after it, taken under the same load.
                sampler.wait_for(sampler.stats().samples + 2, timeout_s=10 * opts.interval_s + 1)
        except InferenceError as err:
            return BenchRow(profile, batch, runner.simulated, error=str(err))
        finally:
            self.activity.set(0.0)
        images = batch * len(latencies)
        lat_ms = np.asarray(latencies) * 1000.0
        board_w = gpu_w = mj = None
        if ledger is not None:
            window = ledger.window(t0, t1)
            metrics = ledger.metrics(window, images)
            board_w, gpu_w, mj = metrics.avg_w, metrics.gpu_avg_w, metrics.mj_per_inference
        ips = images / (t1 - t0) if t1 > t0 else None
        return BenchRow(
            profile=profile,
            batch=batch,
            simulated=runner.simulated,
            images_per_s=ips,
            board_w=board_w,
            board_ips_per_w=_ratio(ips, board_w),
            gpu_w=gpu_w,
            gpu_ips_per_w=_ratio(ips, gpu_w),
            latency_ms=float(lat_ms.mean()),
            p99_ms=float(np.percentile(lat_ms, 99)),
            mj_per_image=mj,
            batches_run=len(latencies),
            duration_s=t1 - t0,
        )


__all__ = [
    "CURRENT",
    "ActivityGauge",
    "BatchRunner",
    "Bench",
    "BenchOptions",
    "OrtRunner",
    "RunnerFactory",
]
