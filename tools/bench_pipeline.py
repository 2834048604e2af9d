"""Pipeline efficiency: the full pipeline against each of its stages run alone, in one run.

For the bundled demo classifier and ResNet-50 (random weights), on the same video frames, model,
batch size and thread count: capture alone (the file ``Source`` decoding MJPG as fast as it
can), preprocess alone (``Preprocessor``), engine alone (a bare ``InferenceSession.run`` loop on
batches preprocessed from those frames) and the full ``Pipeline`` with a lossless file source
(``realtime: false``) and a long ``max_delay_ms``, so every batch is full even when capture is
the slowest stage (the demo); the mean batch is checked. Efficiency = full throughput /
throughput of the slowest stage alone (steady-state frames/s; 1.0: the stages overlap fully).

The machine is shared, so the four run in interleaved rounds (A B C D, A B C D, ...) and each
round compares runs made seconds apart. A round counts only if other processes used the same
CPU (within ``STEADY_CORES``, from ``/proc/stat``) while its slowest stage ran alone and while
the full pipeline ran; extra rounds run, within a time budget, to get enough of them. The
result is the median over those rounds. With too few steady rounds, an efficiency above 1.05
(impossible) or batches that were not full, the line says ``invalid`` instead of a number.

Then, at batch 1 with no batching delay and a real-time 60 fps camera, the added latency per
result, ``latency_ms - preprocess_ms - engine_ms`` (capture stamps a frame once decoded, so
capture work is outside ``latency_ms``); the median is reported.

    python tools/bench_pipeline.py [--quick] [--rounds N] [--models-dir DIR] [--keep]

ResNet-50 (98 MB) is built into a temporary folder, removed at the end unless ``--keep``; with
``--models-dir`` it is built there if missing, and kept. The last line is
``pipeline_efficiency_demo=<r> pipeline_efficiency_resnet50=<r> added_p50_ms=<ms>``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge_agent.clock import SystemClock  # noqa: E402
from edge_agent.config import BatchingConfig, CameraConfig, ModelConfig  # noqa: E402
from edge_agent.pipeline.capture import Frame, Source  # noqa: E402
from edge_agent.pipeline.engine import Engine  # noqa: E402
from edge_agent.pipeline.model_meta import bundled_demo_model, load_model_meta  # noqa: E402
from edge_agent.pipeline.preprocess import Preprocessor  # noqa: E402
from edge_agent.pipeline.result import Result  # noqa: E402
from edge_agent.pipeline.runner import Pipeline  # noqa: E402

CLOCK = SystemClock()
STAGES = ("capture", "preprocess", "engine")
MAX_VALID_EFFICIENCY = 1.05
# A round counts only when the other processes' CPU use differed by at most this much (in
# cores) between the slowest stage's run and the full pipeline's run.
STEADY_CORES = 0.15
MIN_STEADY_ROUNDS = 3
# Long enough that a capture-bound pipeline always fills its batch; the batch flushes when full.
FILL_DELAY_MS = 2000.0


@dataclass(frozen=True)
class Workload:
    name: str
    model: Path
    batch: int
    frames: int  # frames measured per run (after the skipped start); a multiple of ``batch``
    skip: int  # frames left out at the start; a multiple of ``batch``

    def config(self) -> ModelConfig:
        # One warm-up run: the skipped frames cover the rest of the warm-up anyway.
        return ModelConfig(path=self.model, warmup_runs=1)


Mark = tuple[float, float, float]  # monotonic s, busy CPU s of the machine, CPU s of this process


def mark() -> Mark:
    """A point in time, with the CPU the machine and this process had used by then.

    ``os.getloadavg`` is a one-minute average that counts this benchmark's threads too; two
    marks give the CPU only the other processes used (``/proc/stat`` busy time minus ours),
    over exactly the measured frames, so two runs can be checked for equal background load.
    """
    own = os.times()
    busy_s = own.user + own.system  # no /proc/stat: the others count as idle
    with contextlib.suppress(OSError):
        line = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0]
        # user nice system idle iowait irq softirq steal: all but idle and iowait is busy.
        ticks = [int(v) for v in line.split()[1:9]]
        busy_s = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return CLOCK.monotonic(), busy_s, own.user + own.system


@dataclass(frozen=True)
class Run:
    rate: float  # frames/s
    others: float  # other processes' CPU during the measured frames, in cores

    @classmethod
    def between(cls, frames: int, start: Mark, end: Mark) -> Run:
        seconds = end[0] - start[0]
        others_s = (end[1] - start[1]) - (end[2] - start[2])
        return cls(frames / seconds, max(0.0, others_s / seconds))


@dataclass
class Round:
    stages: dict[str, Run]
    full: Run
    mean_batch: float
    load: float

    @property
    def slowest(self) -> str:
        return min(self.stages, key=lambda s: self.stages[s].rate)

    @property
    def efficiency(self) -> float:
        return self.full.rate / self.stages[self.slowest].rate

    @property
    def steady(self) -> bool:
        """Whether the two compared runs saw the same background load."""
        return abs(self.full.others - self.stages[self.slowest].others) <= STEADY_CORES


def write_video(path: Path, count: int, fps: float, width: int = 640, height: int = 480) -> Path:
    """A textured MJPG video (noise over a moving gradient), like a camera's."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, width, dtype=np.float32)[np.newaxis, :, np.newaxis]
    for index in range(count):
        noise = rng.normal(0, 20, (height, width, 3)).astype(np.float32)
        image = np.clip(np.roll(ramp, index * 7, axis=1) + noise + 20, 0, 255).astype(np.uint8)
        writer.write(image)
    writer.release()
    return path


def decoded(video: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while (got := capture.read())[0]:
        frames.append(got[1])
    capture.release()
    return frames


class Stamps:
    """Counts arrivals and marks the ``skip``-th and the last (``skip + frames``-th).

    Results come in bursts of one batch; with ``skip`` and ``frames`` multiples of the batch
    size, both marks are batch completions, so exactly ``frames`` results lie between them.
    """

    def __init__(self, skip: int, frames: int) -> None:
        self.items: list[Result] = []
        self.skip = skip
        self.want = skip + frames
        self.marks: list[Mark] = []
        self.done = threading.Event()
        self._count = 0
        self._lock = threading.Lock()

    def add(self, item: Result | None = None) -> None:
        with self._lock:
            self._count += 1
            if item is not None:
                self.items.append(item)
            if self._count in (self.skip, self.want):
                self.marks.append(mark())
            if self._count == self.want:
                self.done.set()

    def run(self) -> Run:
        if not self.done.is_set():
            raise RuntimeError(f"only {self._count} of {self.want} arrivals")
        return Run.between(self.want - self.skip, *self.marks)


def capture_alone(video: Path, work: Workload) -> Run:
    stamps = Stamps(work.skip, work.frames)

    def sink(frame: Frame, lossless: bool) -> bool:
        stamps.add()
        return not stamps.done.is_set()

    config = CameraConfig(name="bench", uri=f"file://{video}", realtime=False, loop=True)
    source = Source(config, CLOCK, sink)
    source.start()
    stamps.done.wait(600)
    source.stop()
    source.join(30)
    return stamps.run()


def preprocess_alone(frames: list[np.ndarray], pre: Preprocessor, work: Workload) -> Run:
    for index in range(work.skip):
        pre.fill(index % work.batch, frames[index % len(frames)])
    start = mark()
    for index in range(work.frames):
        pre.fill(index % work.batch, frames[(work.skip + index) % len(frames)])
    return Run.between(work.frames, start, mark())


def engine_alone(session: Any, feeds: list[dict[str, np.ndarray]], work: Workload) -> Run:
    for index in range(work.skip // work.batch):
        session.run(None, feeds[index % len(feeds)])
    start = mark()
    for index in range(work.frames // work.batch):
        session.run(None, feeds[index % len(feeds)])
    return Run.between(work.frames, start, mark())


def run_pipeline(
    video: Path, work: Workload, batching: BatchingConfig, realtime: bool, state_dir: Path
) -> Stamps:
    stamps = Stamps(work.skip, work.frames)
    camera = CameraConfig(name="bench", uri=f"file://{video}", realtime=realtime, loop=True)
    pipeline = Pipeline([camera], work.config(), batching, state_dir, CLOCK, stamps.add)
    pipeline.start()
    stamps.done.wait(600)
    pipeline.stop()
    pipeline.join(30)
    return stamps


def full_pipeline(video: Path, work: Workload, state_dir: Path) -> tuple[Run, float]:
    """Full-pipeline throughput and mean batch size over the measured results."""
    # Lossless file source + long max_delay: the batcher flushes only full batches.
    batching = BatchingConfig(
        max_batch=work.batch, max_delay_ms=FILL_DELAY_MS, queue_size=4 * work.batch
    )
    stamps = run_pipeline(video, work, batching, realtime=False, state_dir=state_dir)
    sizes = [r.batch_size for r in stamps.items[work.skip : stamps.want]]
    return stamps.run(), statistics.fmean(sizes)


def measure(
    work: Workload, video: Path, state_dir: Path, rounds: int, budget_s: float
) -> list[Round]:
    """Interleaved rounds (capture, preprocess, engine alone, full pipeline).

    At least ``rounds`` rounds; more, within ``budget_s``, until ``rounds`` of them were
    steady (the same background load during the two runs that are compared).
    """
    engine = Engine(work.model, work.config(), state_dir, CLOCK, max_batch=work.batch)
    engine.load()
    frames = decoded(video)
    pre = Preprocessor(load_model_meta(work.model).preprocess, engine.input, work.batch)
    feeds = []
    for first in range(0, len(frames) - work.batch + 1, work.batch):
        for row in range(work.batch):
            pre.fill(row, frames[first + row])
        feeds.append({engine.input.name: pre.buffer[: work.batch].copy()})
    engine.close()
    import onnxruntime as ort

    config, options = work.config(), ort.SessionOptions()  # as the pipeline's Engine sets them
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = config.inter_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(work.model), options, providers=["CPUExecutionProvider"])
    deadline = CLOCK.monotonic() + budget_s
    done: list[Round] = []
    while len(done) < rounds or (
        sum(r.steady for r in done) < rounds
        and CLOCK.monotonic() < deadline
        and len(done) < 3 * rounds
    ):
        # The last round's pipeline (its ORT session, in reference cycles with its threads)
        # goes now, not in a collection during the next measurement.
        gc.collect()
        load = os.getloadavg()[0]
        stages = {
            "capture": capture_alone(video, work),
            "preprocess": preprocess_alone(frames, pre, work),
            "engine": engine_alone(session, feeds, work),
        }
        full, mean_batch = full_pipeline(video, work, state_dir)
        done.append(Round(stages, full, mean_batch, load))
        print(f"  {work.name} round {len(done)}: {describe(done[-1])}", flush=True)
    return done


def describe(one: Round) -> str:
    alone = ", ".join(f"{s} {one.stages[s].rate:.1f}" for s in STAGES)
    slowest = one.stages[one.slowest]
    tag = "steady" if one.steady else "UNSTEADY, left out"
    flag = " (impossible)" if one.efficiency > MAX_VALID_EFFICIENCY else ""
    return (
        f"{alone}, full {one.full.rate:.1f} frames/s (mean batch {one.mean_batch:.2f}); "
        f"efficiency {one.efficiency:.3f}{flag}; other processes {slowest.others:.2f} cores "
        f"during {one.slowest} alone, {one.full.others:.2f} during full: {tag}"
    )


def spread(values: list[float]) -> str:
    mid = statistics.median(values)
    rel = (max(values) - min(values)) / mid * 100 if mid else 0.0
    return f"{mid:.1f}/s [{min(values):.1f}..{max(values):.1f}, spread {rel:.0f}%]"


def report(work: Workload, rounds: list[Round]) -> str:
    """Print medians and spreads over the steady rounds; the efficiency, or ``invalid``."""
    steady = [r for r in rounds if r.steady]
    loads = [r.load for r in rounds]
    print(
        f"{work.name}: batch {work.batch}; {len(steady)} of {len(rounds)} interleaved rounds "
        f"steady; load avg {min(loads):.2f}..{max(loads):.2f}"
    )
    problems = []
    if len(steady) < min(MIN_STEADY_ROUNDS, len(rounds)):
        problems.append(f"only {len(steady)} rounds under steady background load")
        steady = rounds  # printed for the record
    for stage in STAGES:
        print(f"  {stage:<10} alone {spread([r.stages[stage].rate for r in steady])}")
    batch = statistics.median(r.mean_batch for r in steady)
    print(f"  full pipeline    {spread([r.full.rate for r in steady])}, mean batch {batch:.2f}")
    ratio = statistics.median(r.efficiency for r in steady)
    others = statistics.median(r.full.others for r in steady)
    print(
        f"  slowest stage {'/'.join(sorted({r.slowest for r in steady}))}; efficiency per "
        f"round {' '.join(f'{r.efficiency:.3f}' for r in steady)}, median {ratio:.3f}; "
        f"other processes used {others:.2f} cores (median)"
    )
    if ratio > MAX_VALID_EFFICIENCY:
        problems.append(f"efficiency {ratio:.3f} > {MAX_VALID_EFFICIENCY} is impossible")
    if batch < work.batch * 0.95:
        problems.append(f"mean batch {batch:.2f}, not {work.batch}")
    if problems:
        print(
            f"  {work.name}: measurement INVALID ({'; '.join(problems)}): the background load "
            "changed between runs; rerun on a quieter machine"
        )
        return "invalid"
    # Other processes' CPU is CPU the pipeline's overlapping stages cannot use.
    note = f" (lowered: other processes used {others:.2f} cores)" if others > 0.25 else ""
    print(f"  {work.name}: pipeline efficiency {ratio:.3f}{note}")
    return f"{ratio:.3f}"


def added_latency_ms(video: Path, work: Workload, state_dir: Path) -> float:
    batching = BatchingConfig(max_batch=1, max_delay_ms=0)
    stamps = run_pipeline(video, work, batching, realtime=True, state_dir=state_dir)
    results = stamps.items[work.skip : stamps.want]
    added = [r.latency_ms - r.preprocess_ms - r.engine_ms for r in results]
    queue_p50 = statistics.median(r.queue_ms for r in results)
    p50 = statistics.median(added)
    p95 = float(np.percentile(added, 95))
    print(
        f"{work.name}: batch 1, real-time 60 fps: added latency p50 {p50:.3f} ms, "
        f"p95 {p95:.3f} ms, queue p50 {queue_p50:.3f} ms ({len(added)} results)"
    )
    return p50


def resnet50(models_dir: Path) -> Path:
    path = models_dir / "resnet50.onnx"
    if not path.is_file():
        script = REPO / "tools" / "build_reference_models.py"
        subprocess.run(
            [sys.executable, str(script), "--out", str(models_dir), "resnet50"],
            check=True,
            timeout=600,
            stdout=subprocess.DEVNULL,
        )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames (under two minutes)")
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds (default 5, 7 without --quick)"
    )
    parser.add_argument(
        "--models-dir", type=Path, help="build ResNet-50 here, or reuse it (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary models folder")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 7)
    if rounds < 1:
        parser.error("--rounds must be >= 1")
    scale = 1 if args.quick else 3
    started = time.monotonic()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    own_models = args.models_dir is None
    models_dir = Path(tempfile.mkdtemp(prefix="bench-models-")) if own_models else args.models_dir
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            tmp_path = Path(tmp)
            video = write_video(tmp_path / "camera.avi", 120, fps=60.0)
            # Short runs: a round's runs stay seconds apart, under nearly the same load.
            demo = Workload("demo", bundled_demo_model(), 8, frames=800 * scale, skip=96)
            big = Workload("resnet50", resnet50(models_dir), 8, frames=32 * scale, skip=16)
            # Time for extra rounds when some were unsteady (--quick: under two minutes).
            demo_rounds = measure(demo, video, tmp_path, rounds, rounds * scale * 6.0)
            resnet_rounds = measure(big, video, tmp_path, rounds, rounds * scale * 8.0)
            latency = Workload("demo", bundled_demo_model(), 1, frames=150 * scale, skip=30)
            added = added_latency_ms(video, latency, tmp_path)
            demo_ratio = report(demo, demo_rounds)
            resnet_ratio = report(big, resnet_rounds)
    finally:
        if own_models and not args.keep:
            shutil.rmtree(models_dir, ignore_errors=True)
        elif own_models:
            print(f"kept {models_dir}")
    print(
        f"took {time.monotonic() - started:.0f} s; load average now "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    print(
        f"pipeline_efficiency_demo={demo_ratio} pipeline_efficiency_resnet50="
        f"{resnet_ratio} added_p50_ms={added:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
