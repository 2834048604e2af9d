"""Pipeline efficiency: the full pipeline against each of its stages run alone, in one run.

For each model (the bundled demo classifier and ResNet-50 with random weights), on the same
video frames, model, batch size and thread count:

- **capture alone**: the real file ``Source`` decoding an MJPG video as fast as it can;
- **preprocess alone**: the real ``Preprocessor`` filling batch rows from decoded frames;
- **engine alone**: a bare ``InferenceSession.run`` loop at the batch size;
- **full pipeline**: ``Pipeline`` (capture, preprocess, batch, engine, decode, results).

Throughputs are steady-state frames/s (the first frames, which include start-up and warm-up,
are left out). Pipeline efficiency = full throughput / throughput of the slowest stage alone;
1.0 means the stages overlap completely and the glue costs nothing.

Then, at batch 1 with no batching delay and a real-time 60 fps camera, the added latency:
per result, ``latency_ms - preprocess_ms - engine_ms`` (capture stamps a frame once it is
decoded, so capture work is outside ``latency_ms`` already); the median is reported.

    python tools/bench_pipeline.py [--quick] [--models-dir DIR]

ResNet-50 is built with ``tools/build_reference_models.py`` into ``--models-dir`` unless
already there. The last line is
``pipeline_efficiency_demo=<r> pipeline_efficiency_resnet50=<r> added_p50_ms=<ms>``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Workload:
    name: str
    model: Path
    batch: int
    frames: int  # frames measured per stage (after the skipped start)
    skip: int  # frames left out at the start


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
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


class Stamps:
    """Counts arrivals, keeps their monotonic times, signals when ``want`` arrived."""

    def __init__(self, want: int) -> None:
        self.times: list[float] = []
        self.items: list[Result] = []
        self.want = want
        self.done = threading.Event()
        self._lock = threading.Lock()

    def add(self, item: Result | None = None) -> None:
        with self._lock:
            self.times.append(CLOCK.monotonic())
            if item is not None:
                self.items.append(item)
            if len(self.times) >= self.want:
                self.done.set()

    def rate(self, skip: int) -> float:
        times = self.times[skip : self.want]
        return (len(times) - 1) / (times[-1] - times[0])


def capture_alone(video: Path, work: Workload) -> float:
    stamps = Stamps(work.skip + work.frames)

    def sink(frame: Frame, lossless: bool) -> bool:
        stamps.add()
        return not stamps.done.is_set()

    config = CameraConfig(name="bench", uri=f"file://{video}", realtime=False, loop=True)
    source = Source(config, CLOCK, sink)
    source.start()
    stamps.done.wait(600)
    source.stop()
    source.join(30)
    return stamps.rate(work.skip)


def preprocess_alone(frames: list[np.ndarray], engine: Engine, work: Workload) -> float:
    meta = load_model_meta(work.model)
    pre = Preprocessor(meta.preprocess, engine.input, engine.batch_rows(work.batch))
    total = work.skip + work.frames
    for index in range(work.skip):
        pre.fill(index % work.batch, frames[index % len(frames)])
    start = CLOCK.monotonic()
    for index in range(work.frames):
        pre.fill(index % work.batch, frames[index % len(frames)])
    return (total - work.skip) / (CLOCK.monotonic() - start)


def engine_alone(engine: Engine, config: ModelConfig, work: Workload) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = config.inter_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(work.model), options, providers=["CPUExecutionProvider"])
    spec = engine.input
    shape = (work.batch, spec.channels, spec.height, spec.width)
    feed = {spec.name: np.random.default_rng(0).random(shape).astype(spec.dtype)}
    runs = max(3, work.frames // work.batch)
    for _ in range(max(1, work.skip // work.batch)):
        session.run(None, feed)
    start = CLOCK.monotonic()
    for _ in range(runs):
        session.run(None, feed)
    return runs * work.batch / (CLOCK.monotonic() - start)


def run_pipeline(
    video: Path, work: Workload, batching: BatchingConfig, realtime: bool, state_dir: Path
) -> Stamps:
    stamps = Stamps(work.skip + work.frames)
    camera = CameraConfig(name="bench", uri=f"file://{video}", realtime=realtime, loop=True)
    pipeline = Pipeline(
        [camera], ModelConfig(path=work.model), batching, state_dir, CLOCK, stamps.add
    )
    pipeline.start()
    stamps.done.wait(600)
    pipeline.stop()
    pipeline.join(30)
    return stamps


def efficiency(work: Workload, video: Path, state_dir: Path) -> float:
    config = ModelConfig(path=work.model)
    engine = Engine(work.model, config, state_dir, CLOCK, max_batch=work.batch)
    engine.load()
    frames = decoded(video)
    stages = {
        "capture": capture_alone(video, work),
        "preprocess": preprocess_alone(frames, engine, work),
        "engine": engine_alone(engine, config, work),
    }
    engine.close()
    batching = BatchingConfig(max_batch=work.batch, max_delay_ms=0, queue_size=4 * work.batch)
    full = run_pipeline(video, work, batching, realtime=False, state_dir=state_dir)
    full_rate = full.rate(work.skip)
    sizes = [r.batch_size for r in full.items[work.skip :]]
    slowest = min(stages, key=lambda k: stages[k])
    ratio = full_rate / stages[slowest]
    print(
        f"{work.name}: batch {work.batch}: "
        + ", ".join(f"{k} {v:.1f}/s" for k, v in stages.items())
        + f"; full pipeline {full_rate:.1f}/s (mean batch {statistics.fmean(sizes):.1f}); "
        f"slowest stage {slowest}; efficiency {ratio:.3f}"
    )
    return ratio


def added_latency_ms(video: Path, work: Workload, state_dir: Path) -> float:
    batching = BatchingConfig(max_batch=1, max_delay_ms=0)
    results = run_pipeline(video, work, batching, realtime=True, state_dir=state_dir).items
    added = [r.latency_ms - r.preprocess_ms - r.engine_ms for r in results[work.skip :]]
    queue_p50 = statistics.median(r.queue_ms for r in results[work.skip :])
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
        )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames (under two minutes)")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "edge-agent-models",
        help="where ResNet-50 is built (kept between runs)",
    )
    args = parser.parse_args(argv)
    args.models_dir.mkdir(parents=True, exist_ok=True)
    scale = 1 if args.quick else 4
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        tmp_path = Path(tmp)
        video = write_video(tmp_path / "camera.avi", 120, fps=60.0)
        demo = Workload("demo", bundled_demo_model(), 8, frames=1500 * scale, skip=100)
        big = Workload("resnet50", resnet50(args.models_dir), 8, frames=48 * scale, skip=16)
        demo_ratio = efficiency(demo, video, tmp_path)
        resnet_ratio = efficiency(big, video, tmp_path)
        latency = Workload("demo", bundled_demo_model(), 1, frames=150 * scale, skip=30)
        added = added_latency_ms(video, latency, tmp_path)
    print(
        f"pipeline_efficiency_demo={demo_ratio:.3f} pipeline_efficiency_resnet50="
        f"{resnet_ratio:.3f} added_p50_ms={added:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
