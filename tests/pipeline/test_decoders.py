"""Decoders: classification top-k, YOLOv5/YOLOv8 detection with NMS, raw stats, bad layouts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_agent.errors import InferenceError
from edge_agent.pipeline.decoders import (
    ClassificationDecoder,
    DetectionDecoder,
    RawDecoder,
    make_decoder,
    nms,
    softmax,
)
from edge_agent.pipeline.model_meta import LetterboxInfo, ModelMeta, PreprocessSpec


def _meta(
    task: str = "classification",
    labels: tuple[str, ...] = ("cat", "dog", "bird"),
    decoder: str = "auto",
    output: str = "auto",
) -> ModelMeta:
    return ModelMeta(
        name="m",
        task=task,  # type: ignore[arg-type]
        labels=labels,
        preprocess=PreprocessSpec(),
        decoder=decoder,
        accuracy=None,
        output=output,  # type: ignore[arg-type]
    )


IDENTITY = LetterboxInfo(scale=1.0, pad_x=0.0, pad_y=0.0, orig_w=640, orig_h=640)


def test_make_decoder_follows_kind_then_metadata() -> None:
    assert isinstance(make_decoder("auto", _meta(), 3, 0.25, 0.45), ClassificationDecoder)
    det = make_decoder("auto", _meta(task="detection"), 3, 0.25, 0.45)
    assert isinstance(det, DetectionDecoder)
    assert det.layout == "auto"
    v5 = make_decoder("auto", _meta(task="detection", decoder="yolov5"), 3, 0.25, 0.45)
    assert isinstance(v5, DetectionDecoder)
    assert v5.layout == "yolov5"
    assert isinstance(make_decoder("auto", _meta(task="raw", labels=()), 3, 0.2, 0.4), RawDecoder)
    assert isinstance(make_decoder("raw", _meta(), 3, 0.25, 0.45), RawDecoder)
    with pytest.raises(InferenceError, match="unknown decoder 'ssd'"):
        make_decoder("ssd", _meta(), 3, 0.25, 0.45)


def test_classification_softmax_of_logits_and_top_k_order() -> None:
    logits = np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 5.0], [9.0, 9.0, 9.0]], dtype=np.float32)
    decoder = make_decoder("classification", _meta(output="logits"), 2, 0.25, 0.45)
    results = decoder.decode([logits], count=2, letterbox=[])  # third row is batch padding
    assert len(results) == 2
    expected = softmax(logits[:1].astype(np.float64))[0]
    top = results[0]["top_k"]
    assert [t["label"] for t in top] == ["dog", "bird"]
    assert [t["index"] for t in top] == [1, 2]
    assert top[0]["score"] == pytest.approx(expected[1])
    assert top[1]["score"] == pytest.approx(expected[2])
    assert results[1]["top_k"][0] == {
        "label": "bird",
        "index": 2,
        "score": pytest.approx(0.9867, abs=1e-4),
    }


def test_classification_keeps_probabilities_and_auto_detects_them() -> None:
    probs = np.array([[0.1, 0.7, 0.2]], dtype=np.float32)
    for output in ("probabilities", "auto"):
        decoder = make_decoder("classification", _meta(output=output), 5, 0.25, 0.45)
        top = decoder.decode([probs], 1, [])[0]["top_k"]
        assert [t["index"] for t in top] == [1, 2, 0]  # k is capped at the class count
        assert [t["score"] for t in top] == pytest.approx([0.7, 0.2, 0.1])
    # "auto" applies softmax to rows that are not a distribution.
    raw = np.array([[0.1, 0.7, 0.9]], dtype=np.float32)
    top = make_decoder("classification", _meta(), 1, 0.25, 0.45).decode([raw], 1, [])[0]["top_k"]
    assert top[0]["score"] == pytest.approx(softmax(raw.astype(np.float64))[0, 2])


def test_classification_accepts_conv_head_and_no_labels() -> None:
    head = np.zeros((1, 4, 1, 1), dtype=np.float32)
    head[0, 3, 0, 0] = 1.0
    decoder = make_decoder("classification", _meta(labels=(), output="probabilities"), 1, 0, 0)
    assert decoder.decode([head], 1, [])[0]["top_k"] == [{"label": "3", "index": 3, "score": 1.0}]


def test_classification_wrong_layout_names_both_shapes() -> None:
    decoder = make_decoder("classification", _meta(), 3, 0.25, 0.45)
    with pytest.raises(InferenceError, match=r"expected output shape \(batch, 3\), got \(1, 5\)"):
        decoder.decode([np.zeros((1, 5), dtype=np.float32)], 1, [])
    with pytest.raises(InferenceError, match=r"got \(1, 3, 7, 7\)"):
        decoder.decode([np.zeros((1, 3, 7, 7), dtype=np.float32)], 1, [])
    with pytest.raises(InferenceError, match="batch dimension of at least 2"):
        decoder.decode([np.zeros((1, 3), dtype=np.float32)], 2, [])


def _v5_rows() -> np.ndarray:
    """Four candidate boxes in (cx, cy, w, h, obj, cat, dog, bird) for a 320x320 input."""
    return np.array(
        [
            [60, 100, 100, 100, 0.9, 0.9, 0.1, 0.0],  # cat, score 0.81
            [65, 105, 100, 100, 0.8, 0.9, 0.1, 0.0],  # cat overlapping the first: suppressed
            [62, 102, 100, 100, 0.9, 0.1, 0.8, 0.0],  # dog on the same spot: kept (class-aware)
            [250, 250, 20, 20, 0.3, 0.5, 0.0, 0.5],  # score 0.15: below the threshold
        ],
        dtype=np.float32,
    )


def test_yolov5_threshold_class_aware_nms_and_letterbox() -> None:
    letterbox = LetterboxInfo.for_letterbox(orig_w=640, orig_h=480, in_w=320, in_h=320)
    batch = np.stack([_v5_rows(), np.zeros_like(_v5_rows())])  # second frame: nothing
    decoder = make_decoder("yolov5", _meta(task="detection"), 3, 0.25, 0.45)
    results = decoder.decode([batch], 2, [letterbox, letterbox])
    assert results[1] == {"detections": []}
    dets = results[0]["detections"]
    assert [(d["label"], d["index"]) for d in dets] == [("cat", 0), ("dog", 1)]
    assert dets[0]["score"] == pytest.approx(0.81)
    assert dets[1]["score"] == pytest.approx(0.72)
    # Model space (10, 50)-(110, 150) with scale 0.5 and 40 px of top padding.
    assert dets[0]["box"] == [20.0, 20.0, 220.0, 220.0]
    assert dets[1]["box"] == [24.0, 24.0, 224.0, 224.0]


def test_yolov8_layout_matches_yolov5_without_objectness() -> None:
    rows = _v5_rows()
    v8_rows = np.concatenate([rows[:, :4], rows[:, 5:] * rows[:, 4:5]], axis=1)
    v8 = np.transpose(v8_rows[None], (0, 2, 1))  # (1, 4 + 3, 4 boxes)
    decoder = make_decoder("yolov8", _meta(task="detection"), 3, 0.25, 0.45)
    dets = decoder.decode([v8], 1, [IDENTITY])[0]["detections"]
    assert [d["index"] for d in dets] == [0, 1]
    assert dets[0]["box"] == [10.0, 50.0, 110.0, 150.0]
    auto = make_decoder("auto", _meta(task="detection"), 3, 0.25, 0.45)
    assert auto.decode([v8], 1, [IDENTITY]) == decoder.decode([v8], 1, [IDENTITY])


def test_detection_auto_layout_without_labels_uses_box_count() -> None:
    v8 = np.zeros((1, 6, 100), dtype=np.float32)  # 2 classes, 100 boxes
    v8[0, :, 7] = [50, 50, 20, 20, 0.1, 0.9]
    decoder = make_decoder("auto", _meta(task="detection", labels=()), 3, 0.5, 0.45)
    dets = decoder.decode([v8], 1, [IDENTITY])[0]["detections"]
    assert dets == [
        {"label": "1", "index": 1, "score": pytest.approx(0.9), "box": [40, 40, 60, 60]}
    ]


def test_detection_wrong_layout_names_both_shapes() -> None:
    v8_shaped = np.zeros((1, 7, 8400), dtype=np.float32)
    decoder = make_decoder("yolov5", _meta(task="detection"), 3, 0.25, 0.45)
    with pytest.raises(
        InferenceError, match=r"expected yolov5 \(batch, boxes, 5 \+ 3\), got shape \(1, 7, 8400\)"
    ):
        decoder.decode([v8_shaped], 1, [IDENTITY])
    v8 = make_decoder("yolov8", _meta(task="detection"), 3, 0.25, 0.45)
    with pytest.raises(
        InferenceError, match=r"yolov8 \(batch, 4 \+ 3, boxes\), got shape \(1, 10\)"
    ):
        v8.decode([np.zeros((1, 10), dtype=np.float32)], 1, [IDENTITY])
    with pytest.raises(InferenceError, match="one letterbox per frame"):
        v8.decode([np.zeros((2, 7, 10), dtype=np.float32)], 2, [IDENTITY])


def test_nms_directly() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([0, 0, 0, 1])
    assert nms(boxes, scores, classes, iou_threshold=0.5) == [0, 2, 3]
    assert nms(boxes, scores, classes, iou_threshold=0.9) == [0, 1, 2, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int), 0.5) == []


def test_raw_decoder_reports_shapes_and_stats() -> None:
    first = np.arange(12, dtype=np.float32).reshape(3, 4)  # third row is padding
    shared = np.array([1, 2, 3], dtype=np.int64).reshape(3)  # no batch axis for count 4
    results = RawDecoder().decode([first, shared], count=2, letterbox=[])
    assert len(results) == 2
    out0 = results[1]["outputs"][0]
    assert out0 == {
        "index": 0,
        "shape": [4],
        "dtype": "float32",
        "min": 4.0,
        "max": 7.0,
        "mean": 5.5,
        "std": pytest.approx(np.std([4, 5, 6, 7])),
    }
    assert results[0]["outputs"][1]["shape"] == []  # row 0 of the batched int output
    wide = RawDecoder().decode([shared], count=4, letterbox=[])
    assert wide[3]["outputs"][0]["shape"] == [3]


def _two_cats(shift_x: float) -> np.ndarray:
    """Two 100x100 cat boxes (yolov5 rows), the second ``shift_x`` px right and weaker."""
    return np.array(
        [
            [
                [50, 50, 100, 100, 0.9, 0.9, 0.1, 0.0],
                [50 + shift_x, 50, 100, 100, 0.8, 0.9, 0.1, 0.0],
            ]
        ],
        dtype=np.float32,
    )


@pytest.mark.parametrize(
    ("shift_x", "iou_threshold", "kept"),
    [
        (25, 0.7, 2),  # IoU 0.6: the default 0.45 would suppress it, 0.7 keeps it
        (25, 0.45, 1),
        (55, 0.25, 1),  # IoU 0.29: the default 0.45 would keep it, 0.25 suppresses it
        (55, 0.45, 2),
    ],
)
def test_detection_uses_the_configured_iou_threshold(
    shift_x: float, iou_threshold: float, kept: int
) -> None:
    decoder = make_decoder("yolov5", _meta(task="detection"), 3, 0.25, iou_threshold)
    dets = decoder.decode([_two_cats(shift_x)], 1, [IDENTITY])[0]["detections"]
    assert len(dets) == kept
    assert dets[0]["score"] == pytest.approx(0.81)


def test_nms_keeps_a_box_whose_iou_equals_the_threshold() -> None:
    # IoU 50 / 100 = 0.5 and 7500 / 12500 = 0.6, both exact in floating point.
    half = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], float)
    shifted = np.array([[0, 0, 100, 100], [25, 0, 125, 100]], float)
    scores = np.array([0.9, 0.8])
    classes = np.array([0, 0])
    assert nms(half, scores, classes, iou_threshold=0.5) == [0, 1]
    assert nms(half, scores, classes, iou_threshold=math.nextafter(0.5, 0)) == [0]
    assert nms(shifted, scores, classes, iou_threshold=0.6) == [0, 1]
    assert nms(shifted, scores, classes, iou_threshold=math.nextafter(0.6, 0)) == [0]
