"""An ONNX classifier that answers dark frames at once and wedges on bright ones.

A ``Loop`` runs ``Greater(mean(input), 0.5) * 10**9`` empty iterations before a 10-class
output, so a video that starts black and turns white makes the engine stall mid-run: the
stand-in for a hung GPU or a wedged TensorRT engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build_wedge_model(path: Path, size: int = 8, spins: int = 10**9) -> Path:
    """Write the model: input ``input`` [N,1,size,size] float32, output ``probs`` [N,10]."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["acc_in"], ["acc_out"]),
        ],
        "spin",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, []),
        ],
    )
    inits = [
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array(np.array(spins, dtype=np.int64), "spins"),
        numpy_helper.from_array(np.array(True), "true"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        numpy_helper.from_array(np.zeros((size * size, 10), dtype=np.float32), "w"),
        numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], keepdims=0),
        helper.make_node("Greater", ["mean", "half"], ["bright"]),
        helper.make_node("Cast", ["bright"], ["bright_i"], to=TensorProto.INT64),
        helper.make_node("Mul", ["bright_i", "spins"], ["trips"]),
        helper.make_node("Loop", ["trips", "true", "zero"], ["acc"], body=body),
        helper.make_node("Reshape", ["input", "flat"], ["x"]),
        helper.make_node("MatMul", ["x", "w"], ["raw"]),
        helper.make_node("Add", ["raw", "acc"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "wedge",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
