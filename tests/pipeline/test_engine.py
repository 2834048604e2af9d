"""Engine: real onnxruntime sessions on tiny models built in the tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_agent.clock import FakeClock, SystemClock
from edge_agent.config import ModelConfig
from edge_agent.errors import InferenceError
from edge_agent.pipeline.engine import Engine, provider_chain, tensorrt_options
from tests.fakes.models import (
    write_channel_classifier,
    write_flat_input,
    write_identity,
    write_row_sum,
)


def _engine(
    path: Path,
    tmp_path: Path,
    *,
    max_batch: int = 1,
    latency_scale: Callable[[], float] | None = None,
) -> Engine:
    config = ModelConfig(path=path, warmup_runs=1)
    clock = SystemClock()
    return Engine(path, config, tmp_path, clock, max_batch=max_batch, latency_scale=latency_scale)


def test_dynamic_batch_model_runs_on_cpu_and_reports_provider(tmp_path: Path) -> None:
    model = write_channel_classifier(tmp_path / "cls.onnx", channels=3, size=8)
    engine = _engine(model, tmp_path, max_batch=4)
    assert engine.state().name == "loading"
    engine.load()
    assert engine.state().name == "ready"
    assert engine.provider == "CPUExecutionProvider"
    assert engine.input.batch is None
    assert (engine.input.channels, engine.input.height, engine.input.width) == (3, 8, 8)
    batch = np.zeros((4, 3, 8, 8), np.float32)
    batch[0, 2] = 1.0  # sample 0: channel 2 brightest
    batch[1, 0] = 1.0  # sample 1: channel 0 brightest
    (probs,) = engine.run(batch, 2)
    assert probs.shape == (2, 3)
    assert list(np.argmax(probs, axis=1)) == [2, 0]
    assert engine.max_batch() == 4
    assert engine.batch_rows(3) == 3


def test_fixed_batch_model_pads_and_drops_padding(tmp_path: Path) -> None:
    model = write_row_sum(tmp_path / "sum.onnx", channels=1, size=4, batch=4)
    engine = _engine(model, tmp_path, max_batch=8)
    engine.load()
    assert engine.input.batch == 4
    assert engine.max_batch() == 4  # the model caps the pipeline's batch
    assert engine.batch_rows(1) == 4
    batch = np.full((4, 1, 4, 4), 7.0, np.float32)  # rows 2-3 are padding
    batch[0] = 1.0
    batch[1] = 2.0
    (total,) = engine.run(batch, 2)
    assert total.shape == (2, 1)
    assert total[:, 0].tolist() == [16.0, 32.0]


def test_missing_model_is_an_inference_error_with_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    engine = _engine(missing, tmp_path)
    with pytest.raises(InferenceError, match=r"nope\.onnx"):
        engine.load()
    state = engine.state()
    assert state.name == "failed"
    assert state.error is not None
    assert "nope.onnx" in state.error


def test_corrupt_model_is_an_inference_error_with_the_path(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07this is not a protobuf model" * 10)
    with pytest.raises(InferenceError, match=r"corrupt\.onnx: cannot load model"):
        _engine(corrupt, tmp_path).load()


def test_input_no_camera_can_feed_names_the_shape(tmp_path: Path) -> None:
    flat = write_flat_input(tmp_path / "flat.onnx", features=16)
    with pytest.raises(InferenceError, match=r"\['N', 16\].*no camera can feed"):
        _engine(flat, tmp_path).load()
    five = write_identity(tmp_path / "five.onnx", channels=5)
    with pytest.raises(InferenceError, match=r"\['N', 5, 8, 8\]"):
        _engine(five, tmp_path).load()


def test_provider_chain_keeps_available_ones_in_preference_order(tmp_path: Path) -> None:
    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    chain = provider_chain(["tensorrt", "cuda", "cpu"], available, "fp16", tmp_path)
    assert chain == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with_trt = provider_chain(
        ["tensorrt", "cpu"], ["TensorrtExecutionProvider", *available], "int8", tmp_path
    )
    assert with_trt[0] == ("TensorrtExecutionProvider", tensorrt_options("int8", tmp_path))
    assert with_trt[1] == "CPUExecutionProvider"


def test_tensorrt_options_set_precision_and_caches(tmp_path: Path) -> None:
    fp16 = tensorrt_options("fp16", tmp_path / "trt-cache")
    assert fp16["trt_fp16_enable"] is True
    assert fp16["trt_int8_enable"] is False
    assert fp16["trt_engine_cache_enable"] is True
    assert fp16["trt_engine_cache_path"] == str(tmp_path / "trt-cache")
    assert fp16["trt_timing_cache_path"] == str(tmp_path / "trt-cache")
    assert tensorrt_options("fp32", tmp_path)["trt_fp16_enable"] is False
    assert tensorrt_options("int8", tmp_path)["trt_int8_enable"] is True


def test_no_available_provider_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InferenceError, match="none of the configured providers"):
        provider_chain(["tensorrt"], ["CPUExecutionProvider"], "fp32", tmp_path)
    model = write_channel_classifier(tmp_path / "cls.onnx")
    config = ModelConfig(path=model, providers=["tensorrt", "cuda"])
    engine = Engine(model, config, tmp_path, SystemClock())
    with pytest.raises(InferenceError, match="available"):
        engine.load()
    assert engine.state().name == "failed"


def test_state_is_readable_from_another_thread(tmp_path: Path) -> None:
    clock = FakeClock()
    model = write_channel_classifier(tmp_path / "cls.onnx")
    engine = Engine(model, ModelConfig(path=model), tmp_path, clock)
    clock.advance(2.5)
    seen = []
    reader = threading.Thread(target=lambda: seen.append(engine.state()), name="reader")
    reader.start()
    reader.join(5)
    assert seen[0].name == "loading"
    assert seen[0].elapsed_s == pytest.approx(2.5)
    assert seen[0].provider is None


def test_latency_scale_hook_is_asked_once_per_run(tmp_path: Path) -> None:
    calls: list[int] = []

    def scale() -> float:
        calls.append(1)
        return 1.0

    model = write_channel_classifier(tmp_path / "cls.onnx")
    engine = _engine(model, tmp_path, latency_scale=scale)
    engine.load()
    batch = np.zeros((1, 3, 8, 8), np.float32)
    engine.run(batch, 1)
    engine.run(batch, 1)
    assert len(calls) == 2  # warm-up runs are not stretched
    engine.close()


def test_int8_calibration_table_is_passed_by_name(tmp_path: Path) -> None:
    options = tensorrt_options("int8", tmp_path, "model.calib")
    assert options["trt_int8_calibration_table_name"] == "model.calib"
    assert options["trt_int8_use_native_calibration_table"] is False
    assert "trt_int8_calibration_table_name" not in tensorrt_options("fp16", tmp_path, "x")
