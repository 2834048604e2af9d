"""``edge-agent optimize MODEL --precision fp16|int8``: reduced-precision model + accuracy delta."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edge_agent.errors import ConfigError, FieldError

DEMO = "demo"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``optimize`` subcommand."""
    parser = sub.add_parser(
        "optimize",
        parents=[common],
        help="convert a model to FP16 or INT8 and report top-1 against FP32",
        description="Convert a model to FP16, or to static INT8 (QDQ) calibrated on a folder "
        "of images or the synthetic digits, and report top-1 of FP32 and the converted model "
        "on a labelled set. Needs the 'onnx' package (the tools extra: pip install '.[tools]').",
    )
    parser.add_argument("model", help=f"FP32 ONNX model, or '{DEMO}' for the bundled demo model")
    parser.add_argument("--precision", choices=["fp16", "int8"], required=True)
    parser.add_argument(
        "--out",
        type=Path,
        help="output model (default: MODEL.<precision>.onnx beside it; for 'demo', in the "
        "current directory)",
    )
    parser.add_argument(
        "--calib", default="synthetic", help="calibration images: a folder or 'synthetic'"
    )
    parser.add_argument("--calib-limit", type=int, default=256, help="most calibration images")
    parser.add_argument(
        "--calib-method", choices=["minmax", "entropy", "percentile"], default="minmax"
    )
    parser.add_argument(
        "--eval",
        default="synthetic",
        help="labelled set: DIR/<label>/*, 'synthetic' (digits held-out set) or 'none'",
    )
    parser.add_argument("--eval-limit", type=int, help="score at most this many images")
    parser.add_argument(
        "--trt-calib-table", type=Path, help="also write a TensorRT INT8 calibration table here"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.pipeline.model_meta import bundled_demo_model
    from edge_agent.pipeline.optimize import optimize_model

    if args.model == DEMO:
        model = bundled_demo_model()
        out = args.out or Path.cwd() / f"{model.stem}.{args.precision}.onnx"
    else:
        model = Path(args.model)
        out = args.out or model.with_name(f"{model.stem}.{args.precision}.onnx")
    if out.resolve() == model.resolve():
        raise ConfigError([FieldError("--out", "must differ from the input model")])
    for name in ("calib_limit", "eval_limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError([FieldError(f"--{name.replace('_', '-')}", "must be >= 1")])
    report = optimize_model(
        model,
        args.precision,
        out,
        calib=args.calib,
        calib_limit=args.calib_limit,
        calib_method=args.calib_method,
        eval_set=None if args.eval == "none" else args.eval,
        eval_limit=args.eval_limit,
        trt_calib_table=args.trt_calib_table,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(
        f"wrote {report.output} ({report.size_bytes_optimized / 1024:.1f} KiB, "
        f"FP32 {report.size_bytes_fp32 / 1024:.1f} KiB) in {report.duration_s:.1f} s"
    )
    if report.calib is not None:
        print(
            f"calibration: {report.calib_images} images from {report.calib} ({report.calib_method})"
        )
    if report.trt_calib_table is not None:
        print(f"TensorRT calibration table: {report.trt_calib_table}")
    if report.top1_fp32 is None or report.top1_optimized is None:
        print("accuracy: not evaluated (--eval none)")
        return 0
    name = report.network
    print(f"top-1 on {report.eval_images} images from {report.eval_set}:")
    print(f"  {'network':<16}{'FP32':>10}{report.precision.upper():>10}{'delta':>10}")
    print(
        f"  {name:<16}{report.top1_fp32 * 100:>9.2f}%{report.top1_optimized * 100:>9.2f}%"
        f"{report.delta_points:>+9.2f}%"
    )
    print(f"  same top-1 class as FP32 on {report.top1_agreement or 0.0:.2%} of the images")
    return 0
