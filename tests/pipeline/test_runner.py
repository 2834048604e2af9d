"""The whole pipeline: real sources, real onnxruntime, real decoders."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.clock import SystemClock
from edge_agent.config import BatchingConfig, CameraConfig, ModelConfig
from edge_agent.errors import InferenceError
from edge_agent.pipeline.model_meta import bundled_demo_model, load_model_meta
from edge_agent.pipeline.result import Result
from edge_agent.pipeline.runner import Pipeline
from tests.fakes.models import write_channel_classifier, write_flat_input, write_sidecar
from tests.pipeline.test_capture import write_video


class Results:
    """Collects results; signals after ``want`` of them."""

    def __init__(self, want: int = 0) -> None:
        self.items: list[Result] = []
        self.batches: list[tuple[float, float, int]] = []
        self.enough = threading.Event()
        self.want = want
        self._lock = threading.Lock()

    def __call__(self, result: Result) -> None:
        with self._lock:
            self.items.append(result)
            if self.want and len(self.items) >= self.want:
                self.enough.set()

    def on_batch(self, start: float, end: float, count: int) -> None:
        self.batches.append((start, end, count))


@pytest.fixture
def pipelines() -> Iterator[list[Pipeline]]:
    made: list[Pipeline] = []
    yield made
    for pipeline in made:
        pipeline.stop()
        assert pipeline.join(10)


def _classifier(tmp_path: Path, batch: int | None = None) -> Path:
    model = write_channel_classifier(tmp_path / "colors.onnx", channels=3, size=8, batch=batch)
    write_sidecar(
        model,
        {
            "name": "colors",
            "task": "classification",
            "labels": ["blue", "green", "red"],
            "preprocess": {"color": "bgr"},
        },
    )
    return model


def test_synthetic_digits_accuracy_matches_the_model(
    tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    results = Results()
    camera = CameraConfig(name="digits", uri="synthetic://digits", realtime=False, loop=False)
    pipeline = Pipeline(
        [camera],
        ModelConfig(top_k=1),
        BatchingConfig(max_batch=8, max_delay_ms=2),
        tmp_path,
        SystemClock(),
        results,
    )
    pipelines.append(pipeline)
    pipeline.start()
    assert pipeline.join(60)
    meta = load_model_meta(bundled_demo_model())
    assert meta.accuracy is not None
    correct = sum(r.outputs["top_k"][0]["label"] == r.truth for r in results.items)
    accuracy = correct / len(results.items)
    assert len(results.items) == meta.accuracy["holdout_size"]
    assert abs(accuracy - meta.accuracy["top1"]) <= 0.01
    stats = pipeline.stats()
    assert stats["results"] == len(results.items)
    assert stats["cameras"]["digits"]["state"] == "ended"
    assert stats["engine"]["provider"] == "CPUExecutionProvider"


def test_video_file_results_carry_their_frame_and_timing(
    tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    model = _classifier(tmp_path)
    video = write_video(tmp_path / "clip.avi", 10)
    results = Results()
    camera = CameraConfig(name="gate", uri=f"file://{video}", realtime=False, loop=False)
    pipeline = Pipeline(
        [camera],
        ModelConfig(path=model, top_k=2, precision="fp32"),
        BatchingConfig(max_batch=4),
        tmp_path,
        SystemClock(),
        results,
        on_batch=results.on_batch,
    )
    pipelines.append(pipeline)
    assert pipeline.last_progress_mono() is None
    pipeline.start()
    assert pipeline.join(30)
    assert [r.frame for r in results.items] == list(range(10))
    first = results.items[0]
    assert (first.camera, first.model, first.precision) == ("gate", "colors", "fp32")
    assert first.provider == "CPUExecutionProvider"
    # Gray frames light every channel alike: the colour classifier cannot choose.
    assert [e["score"] for e in first.outputs["top_k"]] == pytest.approx([1 / 3] * 2, abs=1e-3)
    assert {e["label"] for e in first.outputs["top_k"]} <= {"blue", "green", "red"}
    for result in results.items:
        assert result.queue_ms >= 0
        assert result.latency_ms >= result.engine_ms + result.queue_ms
        assert 1 <= result.batch_size <= 4
    assert sum(count for _, _, count in results.batches) == 10
    assert all(end >= start for start, end, _ in results.batches)
    assert pipeline.last_progress_mono() == pytest.approx(results.batches[-1][1], abs=1.0)
    payload: dict[str, Any] = first.to_dict()
    assert "truth" not in payload
    assert payload["frame"] == 0


def test_fixed_batch_model_batches_across_cameras(
    tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    model = _classifier(tmp_path, batch=4)
    results = Results(want=60)
    cameras = [
        CameraConfig(name=f"cam{i}", uri="synthetic://pattern?w=32&h=24", fps=200.0)
        for i in range(3)
    ]
    pipeline = Pipeline(
        cameras,
        ModelConfig(path=model, top_k=1),
        BatchingConfig(max_batch=8, max_delay_ms=20, queue_size=16),
        tmp_path,
        SystemClock(),
        results,
    )
    pipelines.append(pipeline)
    pipeline.start()
    assert results.enough.wait(30)
    pipeline.stop()
    assert pipeline.join(10)
    assert {r.camera for r in results.items} == {"cam0", "cam1", "cam2"}
    assert max(r.batch_size for r in results.items) <= 4  # capped by the model
    mixed: dict[tuple[int, float], set[str]] = {}
    for result in results.items:
        mixed.setdefault((result.batch_size, result.engine_ms), set()).add(result.camera)
    assert any(len(cams) > 1 for cams in mixed.values())  # one batch held several cameras
    stats = pipeline.stats()
    for name in ("cam0", "cam1", "cam2"):
        assert stats["cameras"][name]["captured"] > 0
        assert stats["cameras"][name]["state"] == "stopped"
    assert stats["results"] >= 60
    assert stats["engine"]["state"] == "ready"


def test_missing_model_fails_at_load_with_the_path(tmp_path: Path) -> None:
    pipeline = Pipeline(
        [],
        ModelConfig(path=tmp_path / "gone.onnx"),
        BatchingConfig(),
        tmp_path,
        SystemClock(),
        Results(),
    )
    with pytest.raises(InferenceError, match=r"gone\.onnx"):
        pipeline.load()
    assert pipeline.engine_info()["state"] == "failed"


def test_model_no_camera_can_feed_fails_at_load(tmp_path: Path) -> None:
    model = write_flat_input(tmp_path / "flat.onnx")
    pipeline = Pipeline(
        [], ModelConfig(path=model), BatchingConfig(), tmp_path, SystemClock(), Results()
    )
    with pytest.raises(InferenceError, match="no camera can feed"):
        pipeline.start()


def test_exception_in_a_pipeline_thread_reaches_excepthook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[threading.ExceptHookArgs] = []
    died = threading.Event()

    def hook(args: threading.ExceptHookArgs) -> None:
        seen.append(args)
        died.set()

    monkeypatch.setattr(threading, "excepthook", hook)

    def broken(result: Result) -> None:
        raise RuntimeError("results consumer broke")

    camera = CameraConfig(name="digits", uri="synthetic://digits", realtime=False)
    pipeline = Pipeline([camera], ModelConfig(), BatchingConfig(), tmp_path, SystemClock(), broken)
    pipeline.start()
    try:
        assert died.wait(30)
    finally:
        pipeline.stop()
        assert pipeline.join(10)
    assert seen[0].thread is not None
    assert seen[0].thread.name == "engine"
    assert str(seen[0].exc_value) == "results consumer broke"


def test_budget_mode_runs_live_cameras_end_to_end(
    tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    results = Results(want=40)
    cameras = [
        CameraConfig(name=f"live{i}", uri="synthetic://pattern?w=48&h=32", fps=100.0)
        for i in range(2)
    ]
    pipeline = Pipeline(
        cameras,
        ModelConfig(path=_classifier(tmp_path), top_k=1),
        BatchingConfig(max_batch=4, latency_budget_ms=200),
        tmp_path,
        SystemClock(),
        results,
    )
    pipelines.append(pipeline)
    pipeline.start()
    assert results.enough.wait(30)
    assert {r.camera for r in results.items} == {"live0", "live1"}
    assert all(1 <= r.batch_size <= 4 for r in results.items)
    assert pipeline.stats()["service_ms_by_batch"]  # it learned engine times
