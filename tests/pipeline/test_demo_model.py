"""The bundled demo model: files, recorded accuracy, and accuracy through the camera's path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge_agent.pipeline.decoders import make_decoder
from edge_agent.pipeline.engine import InputSpec
from edge_agent.pipeline.model_meta import (
    bundled_demo_model,
    load_calibration_images,
    load_holdout,
    load_model_meta,
)
from edge_agent.pipeline.optimize import render_synthetic
from edge_agent.pipeline.preprocess import Preprocessor


def _load_tool(name: str) -> ModuleType:
    """A script from tools/ as a module (tools/ is not a package, so load it by path)."""
    path = Path(__file__).resolve().parents[2] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"edge_agent_tools_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_files_are_small_and_well_formed() -> None:
    path = bundled_demo_model()
    assert path.stat().st_size < 2 * 2**20
    assert path.with_suffix(".yaml").is_file()
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == [
        "Flatten", "MatMul", "Add", "Relu", "MatMul", "Add", "Softmax",
    ]  # fmt: skip
    session = _session(path)
    (inp,) = session.get_inputs()
    (out,) = session.get_outputs()
    assert (inp.name, inp.shape[1:], inp.type) == ("input", [1, 8, 8], "tensor(float)")
    assert (out.name, out.shape[1:]) == ("probabilities", [10])


def test_holdout_is_a_stratified_fifth_of_the_digits() -> None:
    images, labels = load_holdout()
    assert images.shape == (360, 8, 8)
    assert images.dtype == np.uint8
    assert labels.dtype == np.int64
    # Digits are 0..16 scaled by 255/16: only 17 grey levels occur.
    levels = np.rint(np.arange(17) * 255 / 16).astype(np.uint8)
    assert set(np.unique(images)) <= set(levels.tolist())
    counts = np.bincount(labels, minlength=10)
    assert counts.min() >= 35
    assert counts.max() <= 37
    calib = load_calibration_images()
    assert calib.shape == (200, 8, 8)
    assert calib.dtype == np.uint8


def test_recorded_accuracy_is_what_onnxruntime_measures() -> None:
    meta = load_model_meta(bundled_demo_model())
    assert meta.accuracy is not None
    images, labels = load_holdout()
    (probs,) = _session(bundled_demo_model()).run(
        None, {"input": images[:, None].astype(np.float32) / 255.0}
    )
    top1 = float(np.mean(np.argmax(probs, axis=1) == labels))
    assert top1 == pytest.approx(meta.accuracy["top1"], abs=1e-6)
    assert top1 >= 0.95
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_synthetic_camera_path_reproduces_pixels_and_accuracy() -> None:
    """64x64 BGR (nearest-neighbour) -> preprocessing (INTER_AREA, gray) -> ORT -> decoder."""
    path = bundled_demo_model()
    meta = load_model_meta(path)
    assert meta.accuracy is not None
    images, labels = load_holdout()
    frames = render_synthetic(images)
    assert frames[0].shape == (64, 64, 3)
    rows = 32
    pre = Preprocessor(
        meta.preprocess, InputSpec("input", None, 1, 8, 8, np.dtype(np.float32)), rows
    )
    session = _session(path)
    decoder = make_decoder("auto", meta, top_k=3, conf_threshold=0.25, iou_threshold=0.45)
    predicted: list[int] = []
    for start in range(0, len(frames), rows):
        chunk = frames[start : start + rows]
        boxes = [pre.fill(i, frame) for i, frame in enumerate(chunk)]
        feed = pre.buffer[: len(chunk)]
        # The round trip is exact, so the pipeline sees the held-out pixels themselves.
        np.testing.assert_array_equal(np.rint(feed[:, 0] * 255), images[start : start + len(chunk)])
        (probs,) = session.run(None, {"input": feed})
        results = decoder.decode([probs], len(chunk), boxes)
        predicted += [int(r["top_k"][0]["label"]) for r in results]
    end_to_end = float(np.mean(np.array(predicted) == labels))
    assert abs(end_to_end - meta.accuracy["top1"]) <= 0.01


def test_nearest_upscale_then_area_downscale_is_exact() -> None:
    images, _ = load_holdout()
    for frame, image in zip(render_synthetic(images[:20]), images[:20], strict=True):
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        np.testing.assert_array_equal(cv2.resize(gray, (8, 8), interpolation=cv2.INTER_AREA), image)


def test_training_script_reproduces_split_and_accuracy(tmp_path: Path) -> None:
    train_demo_model = _load_tool("train_demo_model")
    assert train_demo_model.main(["--out", str(tmp_path)]) == 0
    committed = load_model_meta(bundled_demo_model())
    retrained = load_model_meta(tmp_path / "demo_digits.onnx")
    assert committed.accuracy is not None
    assert retrained.accuracy is not None
    assert retrained.accuracy["top1"] == pytest.approx(committed.accuracy["top1"], abs=0.01)
    images, labels = load_holdout()
    with np.load(tmp_path / "digits_holdout.npz") as fresh:
        np.testing.assert_array_equal(fresh["images"], images)
        np.testing.assert_array_equal(fresh["labels"], labels)
