"""Write the published benchmark's networks as ONNX graphs with random Gaussian weights.

``python tools/build_reference_models.py --out DIR [resnet50 googlenet vgg19 alexnet]`` writes
``DIR/<name>.onnx``: NCHW float32 input ``input`` [batch, 3, 224, 224] (227 for AlexNet, as the
paper ran it), output ``logits`` [batch, 1000]. Weights are random (He-scaled Gaussian), as
giexec/trtexec fed them: the graphs are for timing, their outputs mean nothing.

The architectures follow torchvision, so the parameter counts are the well-known ones:

- ResNet-50 (v1.5, stride on the 3x3 conv): 25,557,032;
- GoogLeNet, torchvision layout (batch norm, 3x3 convs in the "5x5" branch) without the
  auxiliary classifiers: 6,624,904 (the 2014 Caffe model with 5x5 convs is about 6.8M);
- VGG-19 (no batch norm): 143,667,240;
- AlexNet, torchvision's single-GPU variant (64/192/384/256/256 channels): 61,100,840
  (the original two-GPU model is 60,965,224).

Parameters are the learnable tensors; batch-norm running mean/variance are buffers, not
parameters, and are not counted. ``--count-only`` builds each graph with its weights as typed
graph inputs instead of data (no memory, shape inference still checks the graph) and prints
the counts. Last line: ``reference_models <name>=<params> ...``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_agent.pipeline.model_meta import (
    METADATA_KEY,
    ModelMeta,
    PreprocessSpec,
    metadata_document,
)

OPSET = 17
CLASSES = 1000
SEED = 0
EXPECTED_PARAMS = {
    "resnet50": 25_557_032,
    "googlenet": 6_624_904,
    "vgg19": 143_667_240,
    "alexnet": 61_100_840,
}
INPUT_SIZE = {"resnet50": 224, "googlenet": 224, "vgg19": 224, "alexnet": 227}
IMAGENET = PreprocessSpec(
    resize="stretch",
    color="rgb",
    scale=1 / 255,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)


class Builder:
    """Accumulates nodes and parameters; each layer method returns its output tensor name.

    With ``materialize=False`` parameters become typed graph inputs (no data), which is
    enough to count them and to run shape inference on the graph.
    """

    def __init__(self, materialize: bool, seed: int = SEED) -> None:
        self.materialize = materialize
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.param_inputs: list[onnx.ValueInfoProto] = []
        self.learnable = 0
        self.buffers = 0
        self._names: dict[str, int] = {}

    def _name(self, prefix: str) -> str:
        count = self._names.get(prefix, 0)
        self._names[prefix] = count + 1
        return f"{prefix}_{count}"

    def _param(self, name: str, values: Callable[[], np.ndarray], shape: tuple[int, ...]) -> str:
        if self.materialize:
            self.initializers.append(numpy_helper.from_array(values(), name))
        else:
            self.param_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        """A learnable He-scaled Gaussian tensor."""
        self.learnable += math.prod(shape)
        std = np.float32(math.sqrt(2.0 / fan_in))
        return self._param(
            name, lambda: self.rng.standard_normal(shape, dtype=np.float32) * std, shape
        )

    def const(self, name: str, shape: tuple[int, ...], value: float, learnable: bool) -> str:
        """A constant-filled tensor (biases, batch-norm scale/shift/statistics)."""
        if learnable:
            self.learnable += math.prod(shape)
        else:
            self.buffers += math.prod(shape)
        return self._param(name, lambda: np.full(shape, value, dtype=np.float32), shape)

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        """Append one node with a fresh output name; returns that name."""
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int,
        stride: int = 1,
        pad: int = 0,
        bn: bool = False,
        relu: bool = True,
        eps: float = 1e-5,
    ) -> str:
        """Conv (bias unless followed by batch norm), optional BN, optional ReLU."""
        base = self._name("conv")
        inputs = [x, self.weight(f"{base}.weight", (cout, cin, k, k), cin * k * k)]
        if not bn:
            inputs.append(self.const(f"{base}.bias", (cout,), 0.0, learnable=True))
        y = self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4)
        if bn:
            y = self.node(
                "BatchNormalization",
                [
                    y,
                    self.const(f"{base}.bn.weight", (cout,), 1.0, learnable=True),
                    self.const(f"{base}.bn.bias", (cout,), 0.0, learnable=True),
                    self.const(f"{base}.bn.running_mean", (cout,), 0.0, learnable=False),
                    self.const(f"{base}.bn.running_var", (cout,), 1.0, learnable=False),
                ],
                epsilon=eps,
            )
        return self.node("Relu", [y]) if relu else y

    def maxpool(self, x: str, k: int, stride: int, pad: int = 0, ceil: bool = False) -> str:
        """Max pooling (``ceil`` rounds the output size up, as torchvision's GoogLeNet does)."""
        return self.node(
            "MaxPool",
            [x],
            kernel_shape=[k, k],
            strides=[stride] * 2,
            pads=[pad] * 4,
            ceil_mode=int(ceil),
        )

    def linear(self, x: str, cin: int, cout: int, relu: bool) -> str:
        """Fully connected layer as Gemm with a (cout, cin) weight, optional ReLU."""
        base = self._name("fc")
        w = self.weight(f"{base}.weight", (cout, cin), cin)
        b = self.const(f"{base}.bias", (cout,), 0.0, learnable=True)
        y = self.node("Gemm", [x, w, b], transB=1)
        return self.node("Relu", [y]) if relu else y

    def flatten(self, x: str) -> str:
        """Flatten everything after the batch axis."""
        return self.node("Flatten", [x], axis=1)


def _resnet50(b: Builder, x: str) -> str:
    x = b.maxpool(b.conv(x, 3, 64, 7, stride=2, pad=3, bn=True), 3, 2, pad=1)
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            s = stride if i == 0 else 1
            y = b.conv(x, cin, width, 1, bn=True)
            y = b.conv(y, width, width, 3, stride=s, pad=1, bn=True)
            y = b.conv(y, width, width * 4, 1, bn=True, relu=False)
            short = x if i else b.conv(x, cin, width * 4, 1, stride=s, bn=True, relu=False)
            x = b.node("Relu", [b.node("Add", [y, short])])
            cin = width * 4
    return b.linear(b.flatten(b.node("GlobalAveragePool", [x])), 2048, CLASSES, relu=False)


_INCEPTION = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


def _googlenet(b: Builder, x: str) -> str:
    def basic(x: str, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0) -> str:
        return b.conv(x, cin, cout, k, stride=stride, pad=pad, bn=True, eps=1e-3)

    x = b.maxpool(basic(x, 3, 64, 7, stride=2, pad=3), 3, 2, ceil=True)
    x = basic(x, 64, 64, 1)
    x = b.maxpool(basic(x, 64, 192, 3, pad=1), 3, 2, ceil=True)
    for name, (cin, c1, c3r, c3, c5r, c5, proj) in _INCEPTION.items():
        branches = [
            basic(x, cin, c1, 1),
            basic(basic(x, cin, c3r, 1), c3r, c3, 3, pad=1),
            basic(basic(x, cin, c5r, 1), c5r, c5, 3, pad=1),  # torchvision: 3x3, not 5x5
            basic(b.maxpool(x, 3, 1, pad=1, ceil=True), cin, proj, 1),
        ]
        x = b.node("Concat", branches, axis=1)
        if name in ("3b", "4e"):
            x = b.maxpool(x, 3 if name == "3b" else 2, 2, ceil=True)
    return b.linear(b.flatten(b.node("GlobalAveragePool", [x])), 1024, CLASSES, relu=False)


def _vgg19(b: Builder, x: str) -> str:
    cin = 3
    for width, convs in ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)):
        for _ in range(convs):
            x = b.conv(x, cin, width, 3, pad=1)
            cin = width
        x = b.maxpool(x, 2, 2)
    x = b.linear(b.flatten(x), 512 * 7 * 7, 4096, relu=True)
    x = b.linear(x, 4096, 4096, relu=True)
    return b.linear(x, 4096, CLASSES, relu=False)


def _alexnet(b: Builder, x: str) -> str:
    x = b.maxpool(b.conv(x, 3, 64, 11, stride=4, pad=2), 3, 2)
    x = b.maxpool(b.conv(x, 64, 192, 5, pad=2), 3, 2)
    x = b.conv(x, 192, 384, 3, pad=1)
    x = b.conv(x, 384, 256, 3, pad=1)
    x = b.maxpool(b.conv(x, 256, 256, 3, pad=1), 3, 2)
    x = b.linear(b.flatten(x), 256 * 6 * 6, 4096, relu=True)
    x = b.linear(x, 4096, 4096, relu=True)
    return b.linear(x, 4096, CLASSES, relu=False)


NETWORKS: dict[str, Callable[[Builder, str], str]] = {
    "resnet50": _resnet50,
    "googlenet": _googlenet,
    "vgg19": _vgg19,
    "alexnet": _alexnet,
}


def build(name: str, materialize: bool = True) -> tuple[onnx.ModelProto, Builder]:
    """Build one network; returns the model and the builder (which holds the counts)."""
    builder = Builder(materialize)
    size = INPUT_SIZE[name]
    last = NETWORKS[name](builder, "input")
    builder.nodes.append(helper.make_node("Identity", [last], ["logits"], name="logits"))
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])
    graph = helper.make_graph(
        builder.nodes,
        name,
        [image, *builder.param_inputs],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])],
        initializer=builder.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="edge-agent tools/build_reference_models.py",
        doc_string=f"{name} with random Gaussian weights, for timing only; outputs are noise",
    )
    model.ir_version = 8
    meta = ModelMeta(
        name=name,
        task="classification",
        labels=(),
        preprocess=IMAGENET,
        decoder="classification",
        accuracy=None,
        output="logits",
    )
    helper.set_model_props(model, {METADATA_KEY: metadata_document(meta)})
    return model, builder


def write(name: str, out_dir: Path) -> Path:
    """Build ``name`` with random weights and save it as ``out_dir/<name>.onnx``."""
    model, _ = build(name)
    return _save(model, name, out_dir)


def _save(model: onnx.ModelProto, name: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    """Write (or just count) the requested networks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(NETWORKS)}")
    parser.add_argument("--out", type=Path, help="output folder")
    parser.add_argument("--count-only", action="store_true", help="count parameters only")
    args = parser.parse_args(argv)
    if args.out is None and not args.count_only:
        parser.error("--out is required unless --count-only")
    names: list[str] = args.names or list(NETWORKS)
    unknown = sorted(set(names) - set(NETWORKS))
    if unknown:
        parser.error(f"unknown network(s) {', '.join(unknown)}; choose from {', '.join(NETWORKS)}")
    counts = []
    for name in names:
        model, builder = build(name, materialize=not args.count_only)
        params = builder.learnable
        if not args.count_only:
            path = _save(model, name, args.out)
            print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
        del model
        error = (params - EXPECTED_PARAMS[name]) / EXPECTED_PARAMS[name]
        print(f"{name}: {params:,} parameters ({error:+.3%} vs {EXPECTED_PARAMS[name]:,})")
        counts.append(f"{name}={params}")
    print("reference_models " + " ".join(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
