"""``edge-agent optimize``: FP16 and INT8 conversions, TensorRT tables, accuracy deltas."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edge_agent.cli.main import main
from edge_agent.pipeline.model_meta import bundled_demo_model, load_holdout, load_model_meta
from edge_agent.pipeline.optimize import optimize_model, render_synthetic, top1


def _recorded_top1() -> float:
    accuracy = load_model_meta(bundled_demo_model()).accuracy
    assert accuracy is not None
    return float(accuracy["top1"])


def test_int8_demo_loses_at_most_one_point(tmp_path: Path) -> None:
    out = tmp_path / "digits.int8.onnx"
    report = optimize_model(bundled_demo_model(), "int8", out)
    assert report.top1_fp32 == pytest.approx(_recorded_top1())
    assert report.top1_optimized is not None
    assert report.top1_fp32 is not None
    assert report.delta_points is not None
    assert report.delta_points >= -1.0  # the acceptance bound
    expected_delta = (report.top1_optimized - report.top1_fp32) * 100
    assert report.delta_points == pytest.approx(expected_delta, abs=1e-4)
    assert (report.calib, report.calib_images, report.eval_images) == ("synthetic", 200, 360)
    assert report.top1_agreement is not None
    assert report.top1_agreement >= 0.98
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") >= 3
    assert ops.count("DequantizeLinear") >= 3
    int8_weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert {t.dims[0] for t in int8_weights if len(t.dims) == 2} == {64, 32}
    # The converted model carries its metadata and its own measured accuracy.
    meta = load_model_meta(out)
    assert (meta.name, meta.task, meta.output) == ("demo_digits", "classification", "probabilities")
    assert meta.accuracy is not None
    assert meta.accuracy["top1"] == pytest.approx(report.top1_optimized, abs=1e-6)
    assert meta.accuracy["precision"] == "int8"


def test_fp16_demo_keeps_accuracy_and_float_io(tmp_path: Path) -> None:
    out = tmp_path / "digits.fp16.onnx"
    report = optimize_model(bundled_demo_model(), "fp16", out, trt_calib_table=None)
    assert report.calib is None
    assert report.delta_points is not None
    assert abs(report.delta_points) <= 0.5
    assert report.top1_agreement == 1.0
    model = onnx.load(str(out))
    weights = {t.name: t.data_type for t in model.graph.initializer}
    assert weights["w1"] == onnx.TensorProto.FLOAT16
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert report.size_bytes_optimized < report.size_bytes_fp32


def test_tensorrt_calibration_table(tmp_path: Path) -> None:
    table = tmp_path / "tables" / "demo.calib"
    report = optimize_model(
        bundled_demo_model(), "int8", tmp_path / "q.onnx", trt_calib_table=table, eval_set=None
    )
    assert report.top1_fp32 is None
    assert report.trt_calib_table == str(table)
    assert table.stat().st_size > 0  # flatbuffers, read by onnxruntime's TensorRT provider
    ranges = json.loads(table.with_suffix(".json").read_text())
    assert {"input", "h1", "logits"} <= set(ranges)
    lines = dict(
        line.split(" ", 1) for line in table.with_suffix(".cache").read_text().splitlines()
    )
    # Inputs are pixel / 255, so the largest magnitude the calibrator saw is exactly 1.
    assert float(lines["input"]) == pytest.approx(1.0)
    assert float(lines["h1"]) > 0


def _write_labelled_folder(root: Path, count: int) -> tuple[Path, np.ndarray]:
    images, labels = load_holdout()
    for i, (frame, label) in enumerate(zip(render_synthetic(images[:count]), labels, strict=False)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    return root, labels[:count]


def test_folders_for_calibration_and_evaluation(tmp_path: Path) -> None:
    folder, labels = _write_labelled_folder(tmp_path / "set", 120)
    report = optimize_model(
        bundled_demo_model(), "int8", tmp_path / "q.onnx", calib=folder, eval_set=folder
    )
    assert (report.calib_images, report.eval_images) == (120, 120)
    images, _ = load_holdout()
    meta = load_model_meta(bundled_demo_model())
    # Folder order differs from holdout order; the score on the same 120 images is the same.
    direct = top1(bundled_demo_model(), meta, render_synthetic(images[:120]), labels)
    assert report.top1_fp32 == pytest.approx(direct)
    assert report.delta_points is not None
    assert report.delta_points >= -2.5  # 120 images: one image is 0.83 points


def test_cli_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.int8.onnx"
    argv = ["optimize", "demo", "--precision", "int8", "--out", str(out), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output"] == str(out)
    assert report["top1_fp32"] == pytest.approx(_recorded_top1())
    assert report["delta_points"] >= -1.0
    argv = ["optimize", str(out.with_name("x.onnx")), "--precision", "fp16"]
    assert main(argv) == 2  # missing model: usage error
    assert "model file not found" in capsys.readouterr().err
    copy = tmp_path / "digits.onnx"
    copy.write_bytes(bundled_demo_model().read_bytes())
    assert main(["optimize", str(copy), "--precision", "fp16", "--eval-limit", "50"]) == 0
    text = capsys.readouterr().out
    assert (tmp_path / "digits.fp16.onnx").is_file()
    assert "top-1 on 50 images from synthetic" in text
    assert "demo_digits" in text


def test_cli_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = bundled_demo_model()
    bad_eval = tmp_path / "eval" / "seven"
    bad_eval.mkdir(parents=True)
    cv2.imwrite(str(bad_eval / "a.png"), np.zeros((8, 8, 3), dtype=np.uint8))
    out = str(tmp_path / "o.onnx")
    argv = [
        "optimize",
        str(model),
        "--precision",
        "fp16",
        "--out",
        out,
        "--eval",
        str(bad_eval.parent),
    ]
    assert main(argv) == 2
    assert "folder name is not one of the model's labels" in capsys.readouterr().err
    assert main(["optimize", str(model), "--precision", "fp16", "--out", str(model)]) == 2
    assert "--out: must differ" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["optimize", str(model), "--precision", "int8", "--out", out, "--calib", str(empty)]
    assert main(argv) == 2
    assert "no images found for calibration" in capsys.readouterr().err


@pytest.mark.parametrize(("precision", "hidden"), [("int8", "sympy"), ("fp16", "onnx")])
def test_missing_tools_are_a_clear_error_before_any_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    precision: str,
    hidden: str,
) -> None:
    # A None entry in sys.modules makes "import <name>" fail, as if it were not installed.
    monkeypatch.setitem(sys.modules, hidden, None)
    out = tmp_path / "o.onnx"
    assert main(["optimize", "demo", "--precision", precision, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"--precision {precision} needs '{hidden}'" in err
    assert "pip install '.[tools]'" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_fp16_does_not_need_sympy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sympy", None)
    report = optimize_model(bundled_demo_model(), "fp16", tmp_path / "o.onnx", eval_limit=20)
    assert report.eval_images == 20
