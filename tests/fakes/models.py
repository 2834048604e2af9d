"""Tiny ONNX models built with ``onnx.helper`` for pipeline tests.

Every builder writes a real ``.onnx`` file that onnxruntime loads on CPU. ``batch=None`` gives a
dynamic batch dimension (``"N"``); an int gives a fixed one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

OPSET = 18


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _dim(batch: int | None) -> int | str:
    return "N" if batch is None else batch


def write_channel_classifier(
    path: Path, *, channels: int = 3, size: int = 8, batch: int | None = None
) -> Path:
    """A classifier whose class ``c`` scores the mean of input channel ``c`` (softmaxed).

    The brightest channel wins, which makes colour order and normalisation visible in the
    top-1 label. Output ``probs``: (N, channels).
    """
    x = helper.make_tensor_value_info(
        "images", TensorProto.FLOAT, [_dim(batch), channels, size, size]
    )
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [_dim(batch), channels])
    axes = numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("ReduceMean", ["images", "axes"], ["means"], keepdims=0),
        # x10 so a clear colour gives a confident softmax.
        helper.make_node("Mul", ["means", "ten"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    ten = numpy_helper.from_array(np.array(10.0, dtype=np.float32), "ten")
    graph = helper.make_graph(nodes, "channel_classifier", [x], [y], initializer=[axes, ten])
    return _save(graph, path)


def write_identity(
    path: Path, *, channels: int = 3, height: int = 8, width: int = 8, batch: int | None = None
) -> Path:
    """A model that returns its input unchanged (output ``same``), to inspect preprocessing."""
    shape: list[int | str] = [_dim(batch), channels, height, width]
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("same", TensorProto.FLOAT, shape)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["same"])], "ident", [x], [y]
    )
    return _save(graph, path)


def write_row_sum(
    path: Path, *, channels: int = 1, size: int = 4, batch: int | None = None
) -> Path:
    """Output ``total`` (N, 1): the sum of each sample, so padding rows are recognisable."""
    x = helper.make_tensor_value_info(
        "images", TensorProto.FLOAT, [_dim(batch), channels, size, size]
    )
    y = helper.make_tensor_value_info("total", TensorProto.FLOAT, [_dim(batch), 1])
    axes = numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "axes")
    node = helper.make_node("ReduceSum", ["images", "axes"], ["flat"], keepdims=0)
    unsq = numpy_helper.from_array(np.array([1], dtype=np.int64), "one")
    node2 = helper.make_node("Unsqueeze", ["flat", "one"], ["total"])
    graph = helper.make_graph([node, node2], "row_sum", [x], [y], initializer=[axes, unsq])
    return _save(graph, path)


def write_slow_model(
    path: Path, *, size: int = 32, width: int = 512, repeats: int = 40, batch: int | None = None
) -> Path:
    """A classifier that burns CPU: ``repeats`` chained (width x width) MatMuls per sample.

    Output ``probs``: (N, 10). Engine time grows with the batch, like a real network.
    """
    features = 3 * size * size
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [_dim(batch), 3, size, size])
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [_dim(batch), 10])
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array([-1, features], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(
            (rng.standard_normal((features, width)) / np.sqrt(features)).astype(np.float32), "w_in"
        ),
        numpy_helper.from_array(
            (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32), "w_mid"
        ),
        numpy_helper.from_array(
            (rng.standard_normal((width, 10)) / np.sqrt(width)).astype(np.float32), "w_out"
        ),
    ]
    nodes = [
        helper.make_node("Reshape", ["images", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w_in"], ["h0"]),
    ]
    for i in range(repeats):
        nodes.append(helper.make_node("MatMul", [f"h{i}", "w_mid"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"h{i + 1}"]))
    nodes.append(helper.make_node("MatMul", [f"h{repeats}", "w_out"], ["logits"]))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    graph = helper.make_graph(nodes, "slow", [x], [y], initializer=inits)
    return _save(graph, path)


def write_flat_input(path: Path, *, features: int = 16) -> Path:
    """A model with a 2-D input (N, features) that no camera frame can feed."""
    x = helper.make_tensor_value_info("vector", TensorProto.FLOAT, ["N", features])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", features])
    graph = helper.make_graph([helper.make_node("Identity", ["vector"], ["out"])], "flat", [x], [y])
    return _save(graph, path)


def write_sidecar(model_path: Path, doc: dict[str, Any]) -> Path:
    """Write ``<model>.yaml`` next to a model, in the format ``model_meta`` reads."""
    sidecar = model_path.with_suffix(".yaml")
    sidecar.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return sidecar
