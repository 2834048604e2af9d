"""Preprocessing: values checked through a real identity model where it matters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.clock import SystemClock
from edge_agent.config import ModelConfig
from edge_agent.errors import InferenceError
from edge_agent.pipeline.engine import Engine, InputSpec
from edge_agent.pipeline.model_meta import LetterboxInfo, PreprocessSpec
from edge_agent.pipeline.preprocess import Preprocessor
from tests.fakes.models import write_identity


def _spec_input(channels: int = 3, height: int = 4, width: int = 4) -> InputSpec:
    return InputSpec("images", None, channels, height, width, np.dtype(np.float32))


def _bgr(height: int, width: int, b: int, g: int, r: int) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = (b, g, r)
    return image


def test_rgb_model_gets_channels_reversed_and_scaled(tmp_path: Path) -> None:
    model = write_identity(tmp_path / "id.onnx", channels=3, height=4, width=4)
    engine = Engine(model, ModelConfig(path=model, warmup_runs=0), tmp_path, SystemClock())
    engine.load()
    pre = Preprocessor(PreprocessSpec(color="rgb"), engine.input, rows=2)
    pre.fill(0, _bgr(8, 8, b=255, g=51, r=0))
    pre.fill(1, _bgr(4, 4, b=0, g=0, r=255))
    (same,) = engine.run(pre.buffer, 2)
    assert same.shape == (2, 3, 4, 4)
    assert same[0, :, 0, 0] == pytest.approx([0.0, 0.2, 1.0])  # R, G, B
    assert same[1, :, 2, 3] == pytest.approx([1.0, 0.0, 0.0])


def test_bgr_model_keeps_order_and_applies_mean_std() -> None:
    spec = PreprocessSpec(color="bgr", scale=1.0, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0))
    pre = Preprocessor(spec, _spec_input(), rows=1)
    pre.fill(0, _bgr(4, 4, b=30, g=60, r=80))
    assert pre.buffer[0, :, 1, 1].tolist() == pytest.approx([10.0, 10.0, 10.0])


def test_gray_model_converts_color_and_downscales_exactly() -> None:
    spec = PreprocessSpec(color="gray", mean=(0.0,), std=(1.0,))
    pre = Preprocessor(spec, _spec_input(channels=1, height=2, width=2), rows=1)
    # 2x2 blocks of 4x4 pixels: INTER_AREA gives the block values back.
    image = np.kron(np.array([[0, 64], [128, 255]], np.uint8), np.ones((4, 4), np.uint8))
    info = pre.fill(0, np.dstack([image] * 3))
    assert pre.buffer[0, 0] == pytest.approx(np.array([[0, 64], [128, 255]]) / 255)
    assert info == LetterboxInfo.for_stretch(8, 8, 2, 2)


def test_letterbox_pads_with_pad_value_and_returns_geometry() -> None:
    spec = PreprocessSpec(resize="letterbox", color="bgr", scale=1.0, pad_value=114)
    pre = Preprocessor(spec, _spec_input(height=8, width=8), rows=1)
    info = pre.fill(0, _bgr(4, 8, b=200, g=200, r=200))  # wide frame: bars top and bottom
    assert info == LetterboxInfo(scale=1.0, pad_x=0.0, pad_y=2.0, orig_w=8, orig_h=4)
    column = pre.buffer[0, 0, :, 0].tolist()
    assert column == [114, 114, 200, 200, 200, 200, 114, 114]
    box = info.to_frame(np.array([[0.0, 2.0, 8.0, 6.0]]))
    assert box.tolist() == [[0.0, 0.0, 8.0, 4.0]]


def test_gray_frame_feeds_a_color_model() -> None:
    pre = Preprocessor(PreprocessSpec(color="rgb", scale=1.0), _spec_input(), rows=1)
    pre.fill(0, np.full((4, 4), 7, np.uint8))
    assert pre.buffer[0, :, 0, 0].tolist() == [7.0, 7.0, 7.0]


def test_fp16_and_uint8_inputs_get_their_element_type() -> None:
    half = InputSpec("x", None, 3, 4, 4, np.dtype(np.float16))
    pre = Preprocessor(PreprocessSpec(color="bgr"), half, rows=1)
    pre.fill(0, _bgr(4, 4, 255, 0, 0))
    assert pre.buffer.dtype == np.float16
    assert float(pre.buffer[0, 0, 0, 0]) == pytest.approx(1.0)
    raw = InputSpec("x", None, 3, 4, 4, np.dtype(np.uint8))
    pre = Preprocessor(PreprocessSpec(color="rgb"), raw, rows=1)
    pre.fill(0, _bgr(4, 4, 1, 2, 3))
    assert pre.buffer[0, :, 0, 0].tolist() == [3, 2, 1]


def test_buffer_is_preallocated_and_reused() -> None:
    pre = Preprocessor(PreprocessSpec(), _spec_input(), rows=4)
    buffer = pre.buffer
    for index in range(4):
        pre.fill(index, _bgr(16, 12, index, index, index))
    assert pre.buffer is buffer
    assert pre.rows == 4
    pre.clear(2)
    assert not pre.buffer[2:].any()


def test_channel_count_must_match_the_color_setting() -> None:
    with pytest.raises(InferenceError, match="1 channel"):
        Preprocessor(PreprocessSpec(color="rgb"), _spec_input(channels=1), rows=1)
