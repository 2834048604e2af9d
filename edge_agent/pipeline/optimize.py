"""Reduced precision: FP16 conversion, static INT8 (QDQ) and TensorRT calibration tables.

Each run measures top-1 of the FP32 model and of the converted one on the same labelled set,
through the pipeline's own preprocessing, and reports both and the difference in percentage
points, as the published table does (GoogLeNet FP16 +0.02, INT8 -0.57).

Data sources, for calibration and for evaluation:

- ``synthetic``: the demo digits rendered as the synthetic camera renders them (8x8 upscaled
  with nearest-neighbour to 64x64 BGR). Evaluation uses the held-out set; calibration uses
  training images shipped beside it, so the model is never calibrated on what it is scored on.
- a folder: calibration reads every image under it; evaluation reads ``DIR/<label>/*``, where
  ``<label>`` is one of the model's labels (or a class index when it has none).

INT8 is symmetric signed int8 for weights (per channel) and activations in QDQ format, the form
TensorRT accepts; the TensorRT calibration table is computed on the FP32 model for TensorRT's
own INT8 calibration (``trt_int8_calibration_table_name``). Needs ``onnx`` (and ``sympy`` for
INT8): ``pip install '.[tools]' in the edge-agent checkout``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from edge_agent.errors import ConfigError, FieldError, InferenceError
from edge_agent.pipeline.engine import InputSpec
from edge_agent.pipeline.model_meta import (
    METADATA_KEY,
    ModelMeta,
    load_calibration_images,
    load_holdout,
    load_model_meta,
    metadata_document,
)
from edge_agent.pipeline.preprocess import Preprocessor

logger = logging.getLogger(__name__)

Precision = Literal["fp16", "int8"]
CalibMethod = Literal["minmax", "entropy", "percentile"]
SYNTHETIC = "synthetic"
SYNTHETIC_SIZE = 64
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".webp"})
EVAL_BATCH = 32


@dataclass(frozen=True, slots=True)
class OptimizeReport:
    """What ``optimize`` did and how accuracy moved.

    Top-1 values are fractions; ``delta_points`` is their difference in percentage points;
    ``top1_agreement`` is the fraction of images where both models pick the same class.
    """

    network: str
    model: str
    output: str
    precision: Precision
    calib: str | None
    calib_images: int
    calib_method: str | None
    eval_set: str | None
    eval_images: int
    top1_fp32: float | None
    top1_optimized: float | None
    delta_points: float | None
    top1_agreement: float | None
    size_bytes_fp32: int
    size_bytes_optimized: int
    trt_calib_table: str | None
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return dataclasses.asdict(self)


def render_synthetic(images: np.ndarray) -> list[np.ndarray]:
    """8x8 gray digits as the synthetic camera shows them: 64x64 BGR, nearest-neighbour."""
    size = (SYNTHETIC_SIZE, SYNTHETIC_SIZE)
    return [
        cv2.cvtColor(cv2.resize(img, size, interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
        for img in images
    ]


def read_image(path: Path) -> np.ndarray:
    """An image file as a BGR uint8 array."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError([FieldError(str(path), "not a readable image")])
    return np.asarray(image)


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, in sorted order."""
    if not folder.is_dir():
        raise ConfigError([FieldError(str(folder), "not a folder")])
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def calibration_images(source: str | Path, limit: int) -> list[np.ndarray]:
    """Up to ``limit`` BGR images from ``synthetic`` or a folder."""
    if str(source) == SYNTHETIC:
        return render_synthetic(load_calibration_images()[:limit])
    files = image_files(Path(source))[:limit]
    if not files:
        raise ConfigError([FieldError(str(source), "no images found for calibration")])
    return [read_image(p) for p in files]


def labelled_images(
    source: str | Path, meta: ModelMeta, limit: int | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """BGR images and int64 class indices from ``synthetic`` or ``DIR/<label>/*``."""
    if str(source) == SYNTHETIC:
        images, labels = load_holdout()
        return render_synthetic(images[:limit]), labels[:limit]
    folder = Path(source)
    pairs: list[tuple[Path, int]] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        pairs += [(f, _class_index(sub, meta)) for f in image_files(sub)]
    if not pairs:
        raise ConfigError([FieldError(str(folder), "expected labelled images in DIR/<label>/")])
    pairs = pairs[:limit]
    return [read_image(p) for p, _ in pairs], np.array([i for _, i in pairs], dtype=np.int64)


def _class_index(folder: Path, meta: ModelMeta) -> int:
    if folder.name in meta.labels:
        return meta.labels.index(folder.name)
    if not meta.labels and folder.name.isdigit():
        return int(folder.name)
    raise ConfigError([FieldError(str(folder), "folder name is not one of the model's labels")])


class _Runner:
    """One CPU session plus the pipeline's preprocessing for its input."""

    def __init__(self, model_path: Path, meta: ModelMeta) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        info = self.session.get_inputs()[0]
        shape = list(info.shape)
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
            raise InferenceError(f"{model_path}: input shape {shape} is not [N, C, H, W]")
        dtype = np.dtype(np.float16) if info.type == "tensor(float16)" else np.dtype(np.float32)
        self.fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self.input = InputSpec(info.name, self.fixed_batch, shape[1], shape[2], shape[3], dtype)
        self.rows = self.fixed_batch or EVAL_BATCH
        self.preprocessor = Preprocessor(meta.preprocess, self.input, self.rows)

    def batches(self, images: Sequence[np.ndarray]) -> Iterator[tuple[np.ndarray, int]]:
        """Preprocessed batches (padded to a fixed batch) and their real row counts."""
        for start in range(0, len(images), self.rows):
            chunk = images[start : start + self.rows]
            for row, image in enumerate(chunk):
                self.preprocessor.fill(row, image)
            self.preprocessor.clear(len(chunk))
            rows = self.rows if self.fixed_batch else len(chunk)
            yield self.preprocessor.buffer[:rows].copy(), len(chunk)

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Arg-max class of the first output for every image."""
        out: list[np.ndarray] = []
        for batch, count in self.batches(images):
            (first, *_) = self.session.run(None, {self.input.name: batch})
            out.append(np.argmax(np.asarray(first)[:count].reshape(count, -1), axis=1))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def top1(
    model_path: Path, meta: ModelMeta, images: Sequence[np.ndarray], labels: np.ndarray
) -> float:
    """Top-1 accuracy of a model on labelled BGR images, through the pipeline's preprocessing."""
    predictions = _Runner(model_path, meta).predict(images)
    return float(np.mean(predictions == labels)) if len(labels) else 0.0


class _Reader:
    """An onnxruntime ``CalibrationDataReader`` over preprocessed calibration images."""

    def __init__(self, model_path: Path, meta: ModelMeta, images: Sequence[np.ndarray]) -> None:
        runner = _Runner(model_path, meta)
        self._name = runner.input.name
        self._batches = [b for b, _ in runner.batches(images)]
        self._position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._position >= len(self._batches):
            return None
        self._position += 1
        return {self._name: self._batches[self._position - 1]}

    def rewind(self) -> None:
        self._position = 0


def require_tools(precision: Precision) -> None:
    """Check the optional packages ``precision`` needs before any slow work starts.

    Raises:
        InferenceError: a package is missing; the message names it and the install command.
    """
    missing = []
    for name in ("onnx", "sympy") if precision == "int8" else ("onnx",):
        try:
            importlib.import_module(name)  # sympy: INT8 preprocessing's shape inference
        except ImportError:
            missing.append(f"'{name}'")
    if missing:
        raise InferenceError(
            f"edge-agent optimize --precision {precision} needs {' and '.join(missing)}: "
            "pip install '.[tools]' in the edge-agent checkout"
        )


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as err:
        raise InferenceError(
            "edge-agent optimize needs the 'onnx' package: "
            "pip install '.[tools]' in the edge-agent checkout"
        ) from err
    return onnx


def convert_fp16(src: Path, dst: Path) -> None:
    """FP16 weights and compute, FP32 inputs and outputs (so callers feed the same tensors)."""
    onnx = _onnx()
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))


def _calibrate_method(method: CalibMethod) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]


def quantize_int8(src: Path, dst: Path, reader: _Reader, method: CalibMethod) -> None:
    """Static INT8, QDQ, symmetric, per-channel weights; calibrated with ``reader``."""
    _onnx()
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    with tempfile.TemporaryDirectory(prefix="edge-agent-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference + graph cleanup first, as onnxruntime's quantization guide asks.
        quant_pre_process(str(src), str(prepared))
        with _quiet():
            quantize_static(
                str(prepared),
                str(dst),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=_calibrate_method(method),
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
            )


def write_trt_calibration_table(src: Path, dst: Path, reader: _Reader, method: CalibMethod) -> None:
    """A TensorRT INT8 calibration table for the FP32 model.

    ``dst`` gets the flatbuffers table that onnxruntime's TensorRT provider reads
    (``trt_int8_calibration_table_name``); the same ranges go to ``dst`` with ``.json`` and
    ``.cache`` (TensorRT's plain-text format) suffixes.
    """
    _onnx()
    from onnxruntime.quantization import create_calibrator, write_calibration_table

    with tempfile.TemporaryDirectory(prefix="edge-agent-calib-") as tmp:
        calibrator = create_calibrator(
            str(src),
            [],
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_calibrate_method(method),
        )
        calibrator.set_execution_providers(["CPUExecutionProvider"])
        with _quiet():
            calibrator.collect_data(reader)
            write_calibration_table(calibrator.compute_data().data, dir=tmp)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "calibration.flatbuffers", dst)
        shutil.copyfile(Path(tmp) / "calibration.json", dst.with_suffix(".json"))
        shutil.copyfile(Path(tmp) / "calibration.cache", dst.with_suffix(".cache"))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # onnxruntime's calibrators print progress to stdout, which would corrupt --json output.
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        yield
    if captured.getvalue().strip():
        logger.debug("onnxruntime quantization: %s", captured.getvalue().strip())


def _write_metadata(path: Path, meta: ModelMeta) -> None:
    onnx = _onnx()
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props[METADATA_KEY] = metadata_document(meta)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))


def optimize_model(
    model_path: Path,
    precision: Precision,
    out_path: Path,
    *,
    calib: str | Path = SYNTHETIC,
    calib_limit: int = 256,
    calib_method: CalibMethod = "minmax",
    eval_set: str | Path | None = SYNTHETIC,
    eval_limit: int | None = None,
    trt_calib_table: Path | None = None,
) -> OptimizeReport:
    """Convert ``model_path`` to ``precision`` at ``out_path`` and measure top-1 before/after.

    The converted model carries the source's metadata (embedded, with its measured accuracy).

    Raises:
        ConfigError: bad model, folder or image.
        InferenceError: conversion or evaluation failed, or ``onnx``/``sympy`` is missing.
    """
    started = time.monotonic()
    require_tools(precision)
    meta = load_model_meta(model_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    needs_calib = precision == "int8" or trt_calib_table is not None
    calib_set = calibration_images(calib, calib_limit) if needs_calib else []
    if precision == "fp16":
        convert_fp16(model_path, out_path)
    else:
        quantize_int8(model_path, out_path, _Reader(model_path, meta, calib_set), calib_method)
    if trt_calib_table is not None:
        reader = _Reader(model_path, meta, calib_set)
        write_trt_calibration_table(model_path, trt_calib_table, reader, calib_method)

    top1_fp32 = top1_opt = delta = agreement = None
    eval_count = 0
    if eval_set is not None:
        images, labels = labelled_images(eval_set, meta, eval_limit)
        eval_count = len(labels)
        before = _Runner(model_path, meta).predict(images)
        after = _Runner(out_path, meta).predict(images)
        top1_fp32 = float(np.mean(before == labels))
        top1_opt = float(np.mean(after == labels))
        delta = round((top1_opt - top1_fp32) * 100.0, 4)
        # Agreement still means something for random-weight networks, where top-1 does not.
        agreement = float(np.mean(before == after))
    accuracy: dict[str, Any] | None = None
    if top1_opt is not None:
        accuracy = {
            "top1": round(top1_opt, 6),
            "top1_fp32": round(top1_fp32 or 0.0, 6),
            "precision": precision,
            "eval_set": str(eval_set),
            "eval_images": eval_count,
        }
    _write_metadata(out_path, dataclasses.replace(meta, accuracy=accuracy))
    return OptimizeReport(
        network=meta.name,
        model=str(model_path),
        output=str(out_path),
        precision=precision,
        calib=str(calib) if needs_calib else None,
        calib_images=len(calib_set),
        calib_method=calib_method if needs_calib else None,
        eval_set=None if eval_set is None else str(eval_set),
        eval_images=eval_count,
        top1_fp32=top1_fp32,
        top1_optimized=top1_opt,
        delta_points=delta,
        top1_agreement=agreement,
        size_bytes_fp32=model_path.stat().st_size,
        size_bytes_optimized=out_path.stat().st_size,
        trt_calib_table=None if trt_calib_table is None else str(trt_calib_table),
        duration_s=round(time.monotonic() - started, 3),
    )
