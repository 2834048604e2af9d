"""Model metadata: sidecar YAML, ONNX metadata_props, defaults, and their errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge_agent.errors import ConfigError
from edge_agent.pipeline.model_meta import (
    METADATA_KEY,
    LetterboxInfo,
    PreprocessSpec,
    bundled_demo_model,
    load_model_meta,
    read_metadata_props,
)


def _identity_model(path: Path, props: dict[str, str] | None = None) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "identity",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, 4, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if props:
        helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


def test_bundled_demo_sidecar_is_loaded() -> None:
    meta = load_model_meta(bundled_demo_model())
    assert meta.name == "demo_digits"
    assert meta.task == "classification"
    assert meta.decoder == "classification"
    assert meta.output == "probabilities"
    assert meta.labels == tuple(str(i) for i in range(10))
    assert meta.preprocess == PreprocessSpec(color="gray", mean=(0.0,), std=(1.0,))
    assert meta.accuracy is not None
    assert meta.accuracy["holdout_size"] == 360
    assert meta.source.endswith("demo_digits.yaml")


def test_embedded_metadata_matches_sidecar(tmp_path: Path) -> None:
    copy = tmp_path / "digits.onnx"
    shutil.copyfile(bundled_demo_model(), copy)  # no sidecar next to the copy
    embedded = load_model_meta(copy)
    sidecar = load_model_meta(bundled_demo_model())
    assert embedded == sidecar
    assert embedded.source == f"{copy}[metadata_props.{METADATA_KEY}]"


def test_metadata_props_passed_by_caller(tmp_path: Path) -> None:
    model = _identity_model(tmp_path / "m.onnx")
    props = {METADATA_KEY: '{"task": "detection", "decoder": "yolov5", "labels": ["cat"]}'}
    meta = load_model_meta(model, metadata_props=props)
    assert (meta.task, meta.decoder, meta.labels, meta.name) == (
        "detection",
        "yolov5",
        ("cat",),
        "m",
    )


def test_onnxruntime_fallback_reads_the_same_props() -> None:
    from edge_agent.pipeline.model_meta import _read_metadata_props_ort

    path = bundled_demo_model()
    assert _read_metadata_props_ort(path) == read_metadata_props(path)


def test_ultralytics_metadata(tmp_path: Path) -> None:
    props = {"names": "{0: 'person', 1: 'bicycle', 2: 'car'}", "task": "detect", "stride": "32"}
    meta = load_model_meta(_identity_model(tmp_path / "yolov8n.onnx", props))
    assert meta.labels == ("person", "bicycle", "car")
    assert (meta.task, meta.decoder) == ("detection", "yolov8")
    assert meta.preprocess.resize == "letterbox"
    assert meta.preprocess.pad_value == 114


def test_defaults_without_metadata(tmp_path: Path) -> None:
    meta = load_model_meta(_identity_model(tmp_path / "plain.onnx"))
    assert (meta.name, meta.task, meta.decoder, meta.labels) == ("plain", "raw", "auto", ())
    assert meta.preprocess == PreprocessSpec()
    assert meta.accuracy is None


def test_sidecar_with_labels_file_and_defaults(tmp_path: Path) -> None:
    model = _identity_model(tmp_path / "net.onnx")
    (tmp_path / "labels.txt").write_text("tench\ngoldfish\n\nshark\n")
    (tmp_path / "net.yaml").write_text("labels: labels.txt\npreprocess: {color: bgr}\n")
    meta = load_model_meta(model)
    assert meta.labels == ("tench", "goldfish", "shark")
    assert meta.task == "classification"  # labels and nothing else imply a classifier
    assert meta.preprocess.color == "bgr"
    assert meta.preprocess.mean == (0.0, 0.0, 0.0)
    assert meta.label(2) == "shark"
    assert meta.label(7) == "7"


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("colour: rgb\n", "colour", "Extra inputs are not permitted"),
        ("preprocess: {scale: 0}\n", "preprocess.scale", "greater than 0"),
        (
            "preprocess: {color: gray, mean: [0.1, 0.2]}\n",
            "preprocess",
            "color 'gray' needs 1 value",
        ),
        ("task: classification\ndecoder: yolov8\n", "<root>", "does not fit task"),
        ("task: segmentation\n", "task", "Input should be"),
    ],
)
def test_invalid_sidecar_names_file_and_field(
    tmp_path: Path, text: str, field: str, fragment: str
) -> None:
    model = _identity_model(tmp_path / "bad.onnx")
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_model_meta(model)
    paths = [e.path for e in info.value.errors]
    assert f"{tmp_path / 'bad.yaml'}:{field}" in paths
    assert any(fragment in e.message for e in info.value.errors)


def test_malformed_yaml_and_missing_labels_file(tmp_path: Path) -> None:
    model = _identity_model(tmp_path / "m.onnx")
    (tmp_path / "m.yaml").write_text("labels: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_model_meta(model)
    (tmp_path / "m.yaml").write_text("labels: nowhere.txt\n")
    with pytest.raises(ConfigError, match=r"nowhere\.txt"):
        load_model_meta(model)


def test_missing_and_corrupt_models(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model file not found"):
        load_model_meta(tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\xff\xff\xff garbage")
    with pytest.raises(ConfigError, match="not a readable ONNX model"):
        load_model_meta(corrupt)


def test_preprocess_spec_coefficients_and_validation() -> None:
    spec = PreprocessSpec(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    alpha, beta = spec.coefficients()
    pixel = np.array([255.0, 0.0, 128.0])
    expected = (pixel / 255 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(pixel * alpha + beta, expected, rtol=1e-6)
    gray = PreprocessSpec(color="gray")  # the RGB default (0, 0, 0) broadcasts to one channel
    assert gray.channels == 1
    assert gray.coefficients()[0].shape == (1,)
    with pytest.raises(ValueError, match="needs 1 or 3"):
        PreprocessSpec(mean=(0.1, 0.2))
    with pytest.raises(ValueError, match="std must not contain 0"):
        PreprocessSpec(std=(1.0, 0.0, 1.0))


def test_letterbox_maps_boxes_back_to_frame_pixels() -> None:
    info = LetterboxInfo.for_letterbox(orig_w=640, orig_h=480, in_w=320, in_h=320)
    assert (info.scale, info.pad_x, info.pad_y) == (0.5, 0.0, 40.0)
    boxes = np.array([[10.0, 50.0, 110.0, 150.0], [-5.0, 0.0, 400.0, 330.0]])
    np.testing.assert_allclose(
        info.to_frame(boxes), [[20.0, 20.0, 220.0, 220.0], [0.0, 0.0, 640.0, 480.0]]
    )


def test_stretch_scales_axes_independently() -> None:
    info = LetterboxInfo.for_stretch(orig_w=640, orig_h=480, in_w=320, in_h=240 * 2)
    np.testing.assert_allclose(
        info.to_frame(np.array([[32.0, 48.0, 64.0, 96.0]])), [[64, 48, 128, 96]]
    )
