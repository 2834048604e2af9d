"""Turn raw model outputs into result objects: top-k classes, detections, or tensor stats.

Every decoder takes the engine's outputs for one batch, the number of real frames in it
(rows beyond ``count`` are padding of a fixed-batch model and are dropped), and one
:class:`LetterboxInfo` per frame, and returns one dict per real frame:

- classification: ``{"top_k": [{"label", "index", "score"}, ...]}``. Softmax is applied when
  the model's metadata says ``output: logits``; not with ``output: probabilities``; with
  ``output: auto`` only when a row is not already a distribution (values outside [0, 1] or
  a sum more than 1e-3 from 1).
- detection: ``{"detections": [{"label", "index", "score", "box": [x1, y1, x2, y2]}]}`` with
  boxes in frame pixels. YOLOv5 layout is (batch, boxes, 5 + classes) holding
  ``cx, cy, w, h, objectness, class scores`` (score = objectness x class score); YOLOv8 layout
  is (batch, 4 + classes, boxes) without objectness. Then a confidence threshold and
  class-aware greedy NMS.
- raw: ``{"outputs": [{"index", "shape", "dtype", "min", "max", "mean", "std"}]}``.

A layout that does not fit raises :class:`InferenceError` naming the expected and actual shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from edge_agent.errors import InferenceError
from edge_agent.pipeline.model_meta import LetterboxInfo, ModelMeta

DECODER_KINDS = ("auto", "classification", "yolov5", "yolov8", "raw")
# Bounds that keep NMS cheap on a noisy or untrained detector.
MAX_CANDIDATES = 3000
MAX_DETECTIONS = 300
_PROBABILITY_TOLERANCE = 1e-3


class Decoder(Protocol):
    """Decodes one batch of engine outputs into one result dict per real frame."""

    def decode(
        self, outputs: list[np.ndarray], count: int, letterbox: list[LetterboxInfo]
    ) -> list[dict[str, Any]]:
        """Decode the first ``count`` rows of ``outputs``."""
        ...


def make_decoder(
    kind: str, meta: ModelMeta, top_k: int, conf_threshold: float, iou_threshold: float
) -> Decoder:
    """Build the decoder for ``kind``; ``auto`` follows ``meta.decoder``, then ``meta.task``.

    Raises:
        InferenceError: unknown kind.
    """
    if kind not in DECODER_KINDS:
        kinds = ", ".join(DECODER_KINDS)
        raise InferenceError(f"unknown decoder {kind!r}; expected one of {kinds}")
    if kind == "auto":
        kind = meta.decoder if meta.decoder in DECODER_KINDS else "auto"
    if kind == "auto":
        kind = {"classification": "classification", "detection": "detection"}.get(meta.task, "raw")
    if kind == "classification":
        return ClassificationDecoder(meta, top_k)
    if kind in ("yolov5", "yolov8", "detection"):
        layout: Literal["yolov5", "yolov8", "auto"] = (
            "auto" if kind == "detection" else "yolov5" if kind == "yolov5" else "yolov8"
        )
        return DetectionDecoder(meta, layout, conf_threshold, iou_threshold)
    return RawDecoder()


def _batch_rows(output: np.ndarray, count: int, what: str) -> np.ndarray:
    if output.ndim == 0 or output.shape[0] < count:
        raise InferenceError(
            f"{what} decoder expected an output with a batch dimension of at least {count}, "
            f"got shape {tuple(output.shape)}"
        )
    return output[:count]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a (N, C) array, numerically stable."""
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: np.ndarray = exp / np.sum(exp, axis=1, keepdims=True)
    return out


def _is_distribution(rows: np.ndarray) -> bool:
    if rows.size == 0:
        return True
    in_range = bool(np.all(rows >= 0.0)) and bool(np.all(rows <= 1.0))
    sums = np.sum(rows, axis=1)
    return in_range and bool(np.all(np.abs(sums - 1.0) <= _PROBABILITY_TOLERANCE))


@dataclass(slots=True)
class ClassificationDecoder:
    """Top-k classes with labels from a (batch, classes) output."""

    meta: ModelMeta
    top_k: int

    def decode(
        self, outputs: list[np.ndarray], count: int, letterbox: list[LetterboxInfo]
    ) -> list[dict[str, Any]]:
        """Top-k per frame; see the module docstring for when softmax applies."""
        rows = self._scores(outputs, count)
        if self.meta.output == "logits" or (
            self.meta.output == "auto" and not _is_distribution(rows)
        ):
            rows = softmax(rows)
        k = max(1, min(self.top_k, rows.shape[1]))
        results: list[dict[str, Any]] = []
        for row in rows:
            top = np.argpartition(-row, k - 1)[:k]
            top = top[np.argsort(-row[top], kind="stable")]
            results.append(
                {
                    "top_k": [
                        {"label": self.meta.label(int(i)), "index": int(i), "score": float(row[i])}
                        for i in top
                    ]
                }
            )
        return results

    def _scores(self, outputs: list[np.ndarray], count: int) -> np.ndarray:
        if not outputs:
            raise InferenceError("classification decoder got no outputs")
        output = np.asarray(outputs[0])
        classes = len(self.meta.labels)
        expected = f"(batch, {classes or 'classes'})"
        # (N, C, 1, 1) from a conv head is the same thing as (N, C).
        squeezed = (
            output.reshape(output.shape[:2])
            if output.ndim > 2 and all(d == 1 for d in output.shape[2:])
            else output
        )
        if squeezed.ndim != 2 or (classes and squeezed.shape[1] != classes):
            raise InferenceError(
                f"classification decoder expected output shape {expected}, "
                f"got {tuple(output.shape)}"
            )
        return _batch_rows(squeezed, count, "classification").astype(np.float64)


@dataclass(slots=True)
class DetectionDecoder:
    """YOLOv5/YOLOv8 boxes: threshold, class-aware NMS, boxes mapped to frame pixels."""

    meta: ModelMeta
    layout: Literal["yolov5", "yolov8", "auto"]
    conf_threshold: float
    iou_threshold: float

    def decode(
        self, outputs: list[np.ndarray], count: int, letterbox: list[LetterboxInfo]
    ) -> list[dict[str, Any]]:
        """Detections per frame, strongest first."""
        if not outputs:
            raise InferenceError("detection decoder got no outputs")
        if len(letterbox) < count:
            raise InferenceError(
                f"detection decoder needs one letterbox per frame: {count} frames, "
                f"{len(letterbox)} letterboxes"
            )
        output = np.asarray(outputs[0])
        layout = self._resolve_layout(output)
        rows = _batch_rows(output, count, layout).astype(np.float32)
        if layout == "yolov8":
            rows = np.transpose(rows, (0, 2, 1))
        return [self._frame(row, layout, box) for row, box in zip(rows, letterbox, strict=False)]

    def _resolve_layout(self, output: np.ndarray) -> Literal["yolov5", "yolov8"]:
        classes = len(self.meta.labels)
        shape = tuple(output.shape)
        v5 = f"yolov5 (batch, boxes, 5 + {classes or 'classes'})"
        v8 = f"yolov8 (batch, 4 + {classes or 'classes'}, boxes)"
        if output.ndim != 3:
            expected = {"yolov5": v5, "yolov8": v8}.get(self.layout, f"{v5} or {v8}")
            raise InferenceError(f"detection decoder expected {expected}, got shape {shape}")
        fits_v5 = shape[2] == 5 + classes if classes else shape[2] >= 6
        fits_v8 = shape[1] == 4 + classes if classes else shape[1] >= 5
        if self.layout == "auto":
            if fits_v5 and fits_v8 and not classes:
                # Without labels both can fit; detectors have far more boxes than attributes.
                return "yolov8" if shape[1] < shape[2] else "yolov5"
            if fits_v5 != fits_v8:
                return "yolov5" if fits_v5 else "yolov8"
            if fits_v5:
                return "yolov8" if shape[1] < shape[2] else "yolov5"
            raise InferenceError(f"detection decoder expected {v5} or {v8}, got shape {shape}")
        if self.layout == "yolov5" and not fits_v5:
            raise InferenceError(f"detection decoder expected {v5}, got shape {shape}")
        if self.layout == "yolov8" and not fits_v8:
            raise InferenceError(f"detection decoder expected {v8}, got shape {shape}")
        return self.layout

    def _frame(self, rows: np.ndarray, layout: str, box: LetterboxInfo) -> dict[str, Any]:
        # YOLOv5 scores are objectness x class probability; YOLOv8 has no objectness.
        class_scores = rows[:, 5:] * rows[:, 4:5] if layout == "yolov5" else rows[:, 4:]
        index = np.argmax(class_scores, axis=1)
        score = class_scores[np.arange(len(rows)), index]
        keep = np.flatnonzero(score >= self.conf_threshold)
        if keep.size > MAX_CANDIDATES:
            keep = keep[np.argsort(-score[keep], kind="stable")[:MAX_CANDIDATES]]
        xyxy = _xywh_to_xyxy(rows[keep, :4].astype(np.float64))
        chosen = nms(xyxy, score[keep], index[keep], self.iou_threshold)[:MAX_DETECTIONS]
        frame_boxes = box.to_frame(xyxy[chosen])
        detections = [
            {
                "label": self.meta.label(int(index[keep[c]])),
                "index": int(index[keep[c]]),
                "score": float(score[keep[c]]),
                "box": [round(float(v), 2) for v in frame_boxes[j]],
            }
            for j, c in enumerate(chosen)
        ]
        return {"detections": detections}


def _xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    out = np.empty_like(xywh)
    out[:, 0] = xywh[:, 0] - xywh[:, 2] / 2
    out[:, 1] = xywh[:, 1] - xywh[:, 3] / 2
    out[:, 2] = xywh[:, 0] + xywh[:, 2] / 2
    out[:, 3] = xywh[:, 1] + xywh[:, 3] / 2
    return out


def nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float
) -> list[int]:
    """Class-aware greedy non-maximum suppression.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2``.
        scores: (N,) confidences.
        classes: (N,) class indices; boxes of different classes never suppress each other.
        iou_threshold: a box is dropped when its IoU with a kept, stronger box of the same
            class is strictly above this; at exactly the threshold it is kept (torchvision's
            ``nms`` and Ultralytics draw the same line).

    Returns:
        Indices of the kept boxes, strongest first.
    """
    if len(boxes) == 0:
        return []
    # Shifting each class into its own region makes one pass class-aware (the torchvision trick).
    span = float(np.max(boxes)) - float(np.min(boxes)) + 1.0
    shifted = boxes + (classes.astype(np.float64) * span)[:, None]
    x1, y1, x2, y2 = shifted.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = w * h
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return keep


@dataclass(slots=True)
class RawDecoder:
    """Shapes and summary statistics of every output, per frame, for models we don't decode."""

    def decode(
        self, outputs: list[np.ndarray], count: int, letterbox: list[LetterboxInfo]
    ) -> list[dict[str, Any]]:
        """One stats entry per output per frame; outputs without a batch axis are shared."""
        frames: list[dict[str, Any]] = [{"outputs": []} for _ in range(count)]
        for position, output in enumerate(outputs):
            array = np.asarray(output)
            batched = array.ndim > 0 and array.shape[0] >= count
            for frame in range(count):
                part = array[frame] if batched else array
                frames[frame]["outputs"].append(_stats(position, part))
        return frames


def _stats(position: int, array: np.ndarray) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "index": position,
        "shape": [int(d) for d in array.shape],
        "dtype": str(array.dtype),
    }
    if array.size and np.issubdtype(array.dtype, np.number):
        values = array.astype(np.float64)
        entry.update(
            min=float(values.min()),
            max=float(values.max()),
            mean=float(values.mean()),
            std=float(values.std()),
        )
    return entry
