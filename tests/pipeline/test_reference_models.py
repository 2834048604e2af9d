"""Reference networks: parameter counts, graph validity, and a real onnxruntime run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge_agent.pipeline.model_meta import load_model_meta


def _load_tool(name: str) -> ModuleType:
    """A script from tools/ as a module (tools/ is not a package, so load it by path)."""
    path = Path(__file__).resolve().parents[2] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"edge_agent_tools_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ref = _load_tool("build_reference_models")

# The standard architectures' published counts (torchvision), and the bound the issue sets.
STANDARD = {
    "resnet50": 25_557_032,
    "googlenet": 6_624_904,  # torchvision, without the auxiliary classifiers
    "vgg19": 143_667_240,
    "alexnet": 61_100_840,  # torchvision's single-GPU variant
}


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_parameter_counts_and_shapes(name: str) -> None:
    model, builder = ref.build(name, materialize=False)
    declared = {i.name: i for i in model.graph.input}
    shapes = [
        [d.dim_value for d in info.type.tensor_type.shape.dim]
        for param, info in declared.items()
        if param != "input"
    ]
    total = sum(int(np.prod(s)) for s in shapes)
    assert total == builder.learnable + builder.buffers
    assert abs(builder.learnable - STANDARD[name]) / STANDARD[name] <= 0.01
    assert builder.learnable == STANDARD[name]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, check_type=True)
    (logits,) = inferred.graph.output
    assert [d.dim_param or d.dim_value for d in logits.type.tensor_type.shape.dim] == [
        "batch",
        1000,
    ]
    size = 227 if name == "alexnet" else 224
    image = declared["input"].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in image] == ["batch", 3, size, size]


def test_count_only_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert ref.main(["--count-only", "googlenet", "alexnet"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == "reference_models googlenet=6624904 alexnet=61100840"
    with pytest.raises(SystemExit):
        ref.main(["--count-only", "lenet"])


def _run(path: Path, batch: int, size: int) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((batch, 3, size, size), dtype=np.float32)
    (logits,) = session.run(None, {"input": x})
    return np.asarray(logits)


def test_googlenet_writes_runs_and_carries_metadata(tmp_path: Path) -> None:
    path = ref.write("googlenet", tmp_path)
    model = onnx.load(str(path))
    stored = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    assert stored == STANDARD["googlenet"] + 14_560  # plus batch-norm running statistics
    logits = _run(path, batch=2, size=224)
    assert logits.shape == (2, 1000)
    assert np.all(np.isfinite(logits))
    meta = load_model_meta(path)
    assert (meta.name, meta.task, meta.output, meta.decoder) == (
        "googlenet",
        "classification",
        "logits",
        "classification",
    )
    assert meta.preprocess.mean == (0.485, 0.456, 0.406)


def test_resnet50_loads_and_runs_at_batch_one(tmp_path: Path) -> None:
    path = ref.write("resnet50", tmp_path)
    assert path.stat().st_size > 25_557_032 * 4
    logits = _run(path, batch=1, size=224)
    assert logits.shape == (1, 1000)
    assert np.all(np.isfinite(logits))
