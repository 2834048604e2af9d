"""What a model needs around it: task, labels, preprocessing and decoder, plus the demo model.

Metadata is looked up in this order:

1. a sidecar YAML next to the model (``model.onnx`` -> ``model.yaml``, or ``model.yml``),
   validated strictly (unknown keys are errors naming the file and the field);
2. the ONNX file's ``metadata_props``: an ``edge_agent`` key holding the same document as the
   sidecar (YAML or JSON), or the keys Ultralytics writes on export (``names``, ``task``);
3. defaults: task ``raw``, stretch resize, RGB, ``x = pixel / 255``.

Sidecar format (every key optional)::

    name: demo_digits
    task: classification          # classification | detection | raw
    decoder: auto                 # auto | classification | yolov5 | yolov8 | raw
    output: probabilities         # auto | logits | probabilities (classification only)
    labels: ["0", "1", ...]       # or a file name next to the sidecar, one label per line
    preprocess: {resize: stretch, color: gray, scale: 0.00392156862745098, mean: [0], std: [1]}
    accuracy: {top1: 0.97, holdout_size: 360}

Preprocessing maps a pixel ``p`` (0..255) of channel ``c`` to ``(p * scale - mean[c]) / std[c]``.
Only the runtime dependencies are used here (numpy, pyyaml, pydantic, onnxruntime); ``onnx`` is
used only when it happens to be installed, because it reads metadata without building a session.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge_agent.errors import ConfigError, FieldError

# The demo model's files live in the models package; re-exported here as the public API.
from edge_agent.pipeline.models import bundled_demo_model as bundled_demo_model
from edge_agent.pipeline.models import load_calibration_images as load_calibration_images
from edge_agent.pipeline.models import load_holdout as load_holdout

logger = logging.getLogger(__name__)

Task = Literal["classification", "detection", "raw"]
DecoderKind = Literal["auto", "classification", "yolov5", "yolov8", "raw"]
OutputKind = Literal["auto", "logits", "probabilities"]

METADATA_KEY = "edge_agent"


@dataclass(frozen=True, slots=True)
class PreprocessSpec:
    """How a frame becomes the model's input tensor: ``x = (pixel * scale - mean) / std``.

    ``mean``/``std`` hold one value per channel, or one value for all channels. The input
    size comes from the model's input shape, not from here.
    """

    resize: Literal["stretch", "letterbox"] = "stretch"
    color: Literal["rgb", "bgr", "gray"] = "rgb"
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    layout: Literal["nchw"] = "nchw"
    pad_value: int = 114

    def __post_init__(self) -> None:
        for name, values in (("mean", self.mean), ("std", self.std)):
            if not _broadcastable(values, self.channels):
                raise ValueError(
                    f"preprocess.{name} has {len(values)} values; color {self.color!r} "
                    f"needs {_counts(self.channels)}"
                )
        if any(s == 0 for s in self.std):
            raise ValueError("preprocess.std must not contain 0")
        if self.scale <= 0:
            raise ValueError("preprocess.scale must be > 0")

    @property
    def channels(self) -> int:
        """Number of input channels: 1 for gray, else 3."""
        return 1 if self.color == "gray" else 3

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel float32 ``(alpha, beta)``, shape (C,) each, with ``x = p*alpha + beta``."""
        mean = _per_channel(self.mean, self.channels)
        std = _per_channel(self.std, self.channels)
        alpha = (self.scale / std).astype(np.float32)
        beta = (-mean / std).astype(np.float32)
        return alpha, beta


def _broadcastable(values: tuple[float, ...], channels: int) -> bool:
    # A gray model configured with the RGB default (0, 0, 0) is fine: all values agree.
    return len(values) in (1, channels) or (len(values) > 0 and len(set(values)) == 1)


def _counts(channels: int) -> str:
    return "1 value" if channels == 1 else f"1 or {channels} values"


def _per_channel(values: tuple[float, ...], channels: int) -> np.ndarray:
    if len(values) == channels:
        return np.asarray(values, dtype=np.float64)
    return np.full(channels, values[0], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class LetterboxInfo:
    """Geometry of one frame's resize, to map model-space boxes back to frame pixels.

    The resized image sits at ``(pad_x, pad_y)`` in the model input; a model-space x maps to
    ``(x - pad_x) / scale`` (``scale_y`` for y when a stretch resize scaled the axes apart).
    """

    scale: float
    pad_x: float
    pad_y: float
    orig_w: int
    orig_h: int
    scale_y: float | None = None

    @classmethod
    def for_letterbox(cls, orig_w: int, orig_h: int, in_w: int, in_h: int) -> LetterboxInfo:
        """Geometry of an aspect-preserving resize centred in ``in_w`` x ``in_h``.

        The resized image is ``round(orig * scale)`` pixels and is placed at the integer
        offsets ``pad_x``/``pad_y`` returned here; preprocessing must use the same values.
        """
        scale = min(in_w / orig_w, in_h / orig_h)
        new_w = min(in_w, round(orig_w * scale))
        new_h = min(in_h, round(orig_h * scale))
        return cls(scale, float((in_w - new_w) // 2), float((in_h - new_h) // 2), orig_w, orig_h)

    @classmethod
    def for_stretch(cls, orig_w: int, orig_h: int, in_w: int, in_h: int) -> LetterboxInfo:
        """Geometry of a plain resize to ``in_w`` x ``in_h`` (axes scaled independently)."""
        return cls(in_w / orig_w, 0.0, 0.0, orig_w, orig_h, scale_y=in_h / orig_h)

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N, 4) model-space ``x1, y1, x2, y2`` boxes to frame pixels, clipped to the frame."""
        out: np.ndarray = np.array(boxes, dtype=np.float64).reshape(-1, 4)
        scale_y = self.scale if self.scale_y is None else self.scale_y
        xs = (out[:, [0, 2]] - self.pad_x) / self.scale
        ys = (out[:, [1, 3]] - self.pad_y) / scale_y
        out[:, [0, 2]] = np.clip(xs, 0.0, float(self.orig_w))
        out[:, [1, 3]] = np.clip(ys, 0.0, float(self.orig_h))
        return out


@dataclass(frozen=True, slots=True)
class ModelMeta:
    """Everything the pipeline needs to know about a model besides its graph."""

    name: str
    task: Task
    labels: tuple[str, ...]
    preprocess: PreprocessSpec
    decoder: str
    accuracy: dict[str, Any] | None
    output: OutputKind = "auto"
    source: str = field(default="defaults", compare=False)

    def label(self, index: int) -> str:
        """The label of a class index, or the index itself when there is no label."""
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)


class _PreprocessDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    resize: Literal["stretch", "letterbox"] = "stretch"
    color: Literal["rgb", "bgr", "gray"] = "rgb"
    scale: float = Field(default=1 / 255, gt=0)
    mean: tuple[float, ...] | None = Field(default=None, min_length=1, max_length=3)
    std: tuple[float, ...] | None = Field(default=None, min_length=1, max_length=3)
    layout: Literal["nchw"] = "nchw"
    pad_value: int = Field(default=114, ge=0, le=255)

    @model_validator(mode="after")
    def _check_spec(self) -> _PreprocessDoc:
        self.to_spec()  # PreprocessSpec checks the channel counts and std
        return self

    def to_spec(self) -> PreprocessSpec:
        channels = 1 if self.color == "gray" else 3
        return PreprocessSpec(
            resize=self.resize,
            color=self.color,
            scale=self.scale,
            mean=self.mean if self.mean is not None else (0.0,) * channels,
            std=self.std if self.std is not None else (1.0,) * channels,
            layout=self.layout,
            pad_value=self.pad_value,
        )


class _MetaDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1)
    task: Task | None = None
    decoder: DecoderKind = "auto"
    output: OutputKind = "auto"
    labels: list[str] | str | None = None
    preprocess: _PreprocessDoc = Field(default_factory=_PreprocessDoc)
    accuracy: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check_task_decoder(self) -> _MetaDoc:
        implied = _task_of_decoder(self.decoder)
        if self.task is not None and implied is not None and implied != self.task:
            raise ValueError(f"decoder {self.decoder!r} does not fit task {self.task!r}")
        return self


def _task_of_decoder(decoder: str) -> Task | None:
    if decoder in ("yolov5", "yolov8"):
        return "detection"
    if decoder == "classification":
        return "classification"
    if decoder == "raw":
        return "raw"
    return None


def default_meta(model_path: Path) -> ModelMeta:
    """Metadata for a model nothing is known about: raw outputs, RGB, ``pixel / 255``."""
    return ModelMeta(
        name=model_path.stem,
        task="raw",
        labels=(),
        preprocess=PreprocessSpec(),
        decoder="auto",
        accuracy=None,
    )


def load_model_meta(model_path: Path, metadata_props: Mapping[str, str] | None = None) -> ModelMeta:
    """Load a model's metadata: sidecar YAML, else ONNX ``metadata_props``, else defaults.

    Args:
        model_path: the ONNX file.
        metadata_props: the model's custom metadata if the caller already has it (e.g.
            ``session.get_modelmeta().custom_metadata_map``); read from the file otherwise.

    Raises:
        ConfigError: the model is missing or unreadable, or its metadata is invalid; each
            error's path names the file and the field.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ConfigError([FieldError(str(model_path), "model file not found")])
    for suffix in (".yaml", ".yml"):
        sidecar = model_path.with_suffix(suffix)
        if sidecar.is_file():
            return _meta_from_sidecar(model_path, sidecar)
    props = dict(metadata_props) if metadata_props is not None else read_metadata_props(model_path)
    if METADATA_KEY in props:
        where = f"{model_path}[metadata_props.{METADATA_KEY}]"
        doc = _parse_document(props[METADATA_KEY], where)
        return _meta_from_doc(model_path, doc, where, base_dir=model_path.parent)
    if "names" in props:
        return _meta_from_ultralytics(model_path, props)
    return default_meta(model_path)


def read_metadata_props(model_path: Path) -> dict[str, str]:
    """The ONNX file's ``metadata_props`` (via ``onnx`` when installed, else onnxruntime)."""
    try:
        import onnx

        # protobuf ships no type stubs; the module is typed Any through import_module.
        decode_error = importlib.import_module("google.protobuf.message").DecodeError
    except ImportError:
        return _read_metadata_props_ort(model_path)
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except (decode_error, OSError) as err:
        raise ConfigError(
            [FieldError(str(model_path), f"not a readable ONNX model: {err}")]
        ) from err
    return {p.key: p.value for p in model.metadata_props}


def _read_metadata_props_ort(model_path: Path) -> dict[str, str]:
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    load_errors = (
        ort_state.Fail,
        ort_state.InvalidArgument,
        ort_state.InvalidGraph,
        ort_state.InvalidProtobuf,
        ort_state.NoSuchFile,
        ort_state.NotImplemented,
        ort_state.RuntimeException,
    )
    try:
        session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    except load_errors as err:
        raise ConfigError(
            [FieldError(str(model_path), f"not a loadable ONNX model: {err}")]
        ) from err
    return dict(session.get_modelmeta().custom_metadata_map)


def _meta_from_sidecar(model_path: Path, sidecar: Path) -> ModelMeta:
    try:
        text = sidecar.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([FieldError(str(sidecar), f"cannot read: {err}")]) from err
    doc = _parse_document(text, str(sidecar))
    return _meta_from_doc(model_path, doc, str(sidecar), base_dir=sidecar.parent)


def _parse_document(text: str, where: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)  # JSON is YAML, so this reads both
    except yaml.YAMLError as err:
        raise ConfigError([FieldError(where, f"not valid YAML: {err}")]) from err
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError([FieldError(where, "must be a mapping")])
    return doc


def _meta_from_doc(model_path: Path, doc: dict[str, Any], where: str, base_dir: Path) -> ModelMeta:
    try:
        parsed = _MetaDoc.model_validate(doc)
    except ValidationError as err:
        errors = [
            FieldError(f"{where}:{'.'.join(str(p) for p in e['loc']) or '<root>'}", e["msg"])
            for e in err.errors()
        ]
        raise ConfigError(errors) from err
    labels = _resolve_labels(parsed.labels, where, base_dir)
    task = (
        parsed.task or _task_of_decoder(parsed.decoder) or ("classification" if labels else "raw")
    )
    return ModelMeta(
        name=parsed.name or model_path.stem,
        task=task,
        labels=labels,
        preprocess=parsed.preprocess.to_spec(),
        decoder=parsed.decoder,
        accuracy=parsed.accuracy,
        output=parsed.output,
        source=where,
    )


def _resolve_labels(labels: list[str] | str | None, where: str, base_dir: Path) -> tuple[str, ...]:
    if labels is None:
        return ()
    if isinstance(labels, list):
        return tuple(labels)
    path = base_dir / labels
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConfigError([FieldError(f"{where}:labels", f"cannot read {path}: {err}")]) from err
    return tuple(line.strip() for line in lines if line.strip())


def _meta_from_ultralytics(model_path: Path, props: dict[str, str]) -> ModelMeta:
    # Ultralytics writes names as a Python dict literal: "{0: 'person', 1: 'bicycle'}".
    where = f"{model_path}[metadata_props.names]"
    try:
        names = ast.literal_eval(props["names"])
    except (ValueError, SyntaxError) as err:
        raise ConfigError([FieldError(where, f"cannot parse: {err}")]) from err
    if isinstance(names, dict):
        labels = tuple(str(names[k]) for k in sorted(names))
    elif isinstance(names, list | tuple):
        labels = tuple(str(n) for n in names)
    else:
        raise ConfigError([FieldError(where, "must be a dict or list of class names")])
    task_prop = props.get("task", "detect")
    detection = task_prop == "detect"
    return ModelMeta(
        name=model_path.stem,
        task="detection" if detection else "classification" if task_prop == "classify" else "raw",
        labels=labels,
        preprocess=PreprocessSpec(resize="letterbox" if detection else "stretch"),
        decoder="yolov8" if detection else "auto",
        accuracy=None,
        source=f"{model_path}[metadata_props]",
    )


def metadata_dict(meta: ModelMeta) -> dict[str, Any]:
    """Metadata as the sidecar document (plain types, ready for YAML or JSON)."""
    preprocess = {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in dataclasses.asdict(meta.preprocess).items()
    }
    doc: dict[str, Any] = {
        "name": meta.name,
        "task": meta.task,
        "decoder": meta.decoder,
        "output": meta.output,
        "labels": list(meta.labels),
        "preprocess": preprocess,
    }
    if meta.accuracy is not None:
        doc["accuracy"] = meta.accuracy
    return doc


def metadata_document(meta: ModelMeta) -> str:
    """Metadata as the JSON document stored under the ``edge_agent`` ONNX key."""
    return json.dumps(metadata_dict(meta))
