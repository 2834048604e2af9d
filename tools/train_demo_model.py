"""Train the bundled demo model: a 64-32-10 MLP on scikit-learn's handwritten digits.

Writes into ``edge_agent/pipeline/models/`` (or ``--out DIR``):

- ``demo_digits.onnx``: input ``input`` float32 [batch, 1, 8, 8] holding ``pixel / 255``,
  output ``probabilities`` float32 [batch, 10]; Flatten, MatMul/Add/Relu, MatMul/Add, Softmax;
- ``demo_digits.yaml``: the sidecar (labels, preprocessing, held-out accuracy);
- ``digits_holdout.npz``: the held-out images as uint8 (N, 8, 8) in 0..255 with int64 labels,
  plus ``calib_images``, a few training images for INT8 calibration (never the held-out set).

The digits are 8x8 with values 0..16; a pixel is ``round(v * 255 / 16)``. The split is
stratified, 20% held out, with a fixed seed, so rerunning the script gives the same files.
Needs the ``tools`` extra (onnx, scikit-learn). Last line: ``demo_model top1=<r> holdout=<n>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import yaml
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from edge_agent.pipeline.model_meta import (
    METADATA_KEY,
    ModelMeta,
    PreprocessSpec,
    metadata_dict,
    metadata_document,
)

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "edge_agent" / "pipeline" / "models"
SEED = 0
HOLDOUT_FRACTION = 0.2
HIDDEN_UNITS = 32
CALIB_IMAGES = 200
OPSET = 17


def digits_as_pixels() -> tuple[np.ndarray, np.ndarray]:
    """All digits as uint8 (N, 8, 8) images in 0..255 and int64 labels."""
    digits = load_digits()
    values = np.asarray(digits.images, dtype=np.float64)
    pixels = np.rint(values * 255.0 / 16.0).astype(np.uint8)
    return pixels, np.asarray(digits.target, dtype=np.int64)


def train(images: np.ndarray, labels: np.ndarray) -> MLPClassifier:
    """Fit the MLP on ``pixel / 255`` inputs."""
    inputs = images.reshape(len(images), -1).astype(np.float32) / 255.0
    clf = MLPClassifier(
        hidden_layer_sizes=(HIDDEN_UNITS,),
        alpha=1e-3,
        max_iter=600,
        random_state=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(inputs, labels)
    return clf


def export(clf: MLPClassifier, meta: ModelMeta) -> onnx.ModelProto:
    """The trained MLP as an ONNX graph built by hand with ``onnx.helper``."""
    w1, w2 = (np.asarray(w, dtype=np.float32) for w in clf.coefs_)
    b1, b2 = (np.asarray(b, dtype=np.float32) for b in clf.intercepts_)
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w1"], ["h1_mm"]),
        helper.make_node("Add", ["h1_mm", "b1"], ["h1_pre"]),
        helper.make_node("Relu", ["h1_pre"], ["h1"]),
        helper.make_node("MatMul", ["h1", "w2"], ["logits_mm"]),
        helper.make_node("Add", ["logits_mm", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "demo_digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="edge-agent tools/train_demo_model.py",
    )
    model.ir_version = 8  # readable by onnxruntime >= 1.10, as shipped in JetPack 5
    helper.set_model_props(model, {METADATA_KEY: metadata_document(meta)})
    onnx.checker.check_model(model, full_check=True)
    return model


def ort_top1(model_path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of the exported model through onnxruntime on CPU."""
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    inputs = images.reshape(len(images), 1, 8, 8).astype(np.float32) / 255.0
    (probs,) = session.run(None, {"input": inputs})
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def main(argv: list[str] | None = None) -> int:
    """Train, export, measure and write the three files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    images, labels = digits_as_pixels()
    train_x, hold_x, train_y, hold_y = train_test_split(
        images, labels, test_size=HOLDOUT_FRACTION, stratify=labels, random_state=SEED
    )
    clf = train(train_x, train_y)
    preprocess = PreprocessSpec(color="gray", scale=1 / 255, mean=(0.0,), std=(1.0,))
    base = ModelMeta(
        name="demo_digits",
        task="classification",
        labels=tuple(str(i) for i in range(10)),
        preprocess=preprocess,
        decoder="classification",
        accuracy=None,
        output="probabilities",
    )
    model_path = out / "demo_digits.onnx"
    # Measure through ORT first, then embed the measured accuracy in both metadata copies.
    onnx.save(export(clf, base), str(model_path))
    top1 = ort_top1(model_path, hold_x, hold_y)
    accuracy = {
        "top1": round(top1, 6),
        "holdout_size": len(hold_y),
        "dataset": "sklearn.datasets.load_digits",
        "split": f"stratified, {HOLDOUT_FRACTION:.0%} held out",
        "seed": SEED,
        "measured_with": f"onnxruntime {ort.__version__} CPUExecutionProvider",
    }
    meta = dataclasses.replace(base, accuracy=accuracy)
    onnx.save(export(clf, meta), str(model_path))

    sidecar = metadata_dict(meta)
    header = "# Written by tools/train_demo_model.py; rerun it instead of editing.\n"
    (out / "demo_digits.yaml").write_text(header + yaml.safe_dump(sidecar, sort_keys=False))

    rng = np.random.default_rng(SEED)
    calib = train_x[rng.choice(len(train_x), size=CALIB_IMAGES, replace=False)]
    np.savez_compressed(
        out / "digits_holdout.npz",
        images=hold_x.astype(np.uint8),
        labels=hold_y.astype(np.int64),
        calib_images=calib.astype(np.uint8),
    )
    size_kb = model_path.stat().st_size / 1024
    print(f"wrote {model_path} ({size_kb:.1f} KiB), sidecar and holdout to {out}")
    print(f"demo_model top1={top1:.4f} holdout={len(hold_y)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
