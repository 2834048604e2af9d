"""Which precisions a bench can honestly run, and the refusals when it cannot.

Only the TensorRT execution provider acts on the precision flag (``trt_fp16_enable``,
``trt_int8_enable``); the CUDA and CPU providers run the graph as stored. The simulated engine
of the reference networks has one calibrated precision: its timing and power are fitted to the
published Jetson TX2 tables (``shared/reference/seed_performance_tables.md``), which give no
FP16 or INT8 figures for Jetson. Neither can scale those figures by a documented factor, so a
bench refuses the precision rather than print one set of numbers under several titles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from edge_agent.errors import ConfigError, FieldError

PRECISIONS = ("fp32", "fp16", "int8")
TENSORRT = "TensorrtExecutionProvider"
SIMULATED_PRECISION = "fp32"
"""The label of the simulated engine's calibrated figures (the bench's default precision)."""


def parse_precisions(text: str) -> tuple[str, ...]:
    """``"fp32,fp16"`` -> ``("fp32", "fp16")``; repeats dropped, order kept.

    Raises:
        ConfigError: an unknown precision, or none given.
    """
    out: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if part not in PRECISIONS:
            raise ConfigError(
                [FieldError("--precision", f"{part!r} is not one of {', '.join(PRECISIONS)}")]
            )
        if part not in out:
            out.append(part)
    return tuple(out)


def precision_refusal(precision: str, provider: str) -> str:
    """Why ``precision`` cannot be benched on ``provider`` (only TensorRT honours the flag)."""
    return (
        f"{precision} needs the TensorRT execution provider; {provider} would run the same "
        f"FP32 graph and print its figures under an {precision} title. Make a reduced-precision "
        f"model (edge-agent optimize MODEL --precision {precision}) and bench that file, or "
        "bench on a board with TensorRT"
    )


def check_precisions(
    precisions: Iterable[str], *, simulated: bool, providers: Sequence[str]
) -> None:
    """Refuse, before anything runs, a precision that would only relabel FP32 figures.

    Args:
        precisions: what ``--precision`` asked for.
        simulated: the simulated engine of a reference network will run.
        providers: the execution providers onnxruntime offers on this machine.

    Raises:
        ConfigError: on ``--precision``, saying why and what to do instead.
    """
    other = [p for p in precisions if p != SIMULATED_PRECISION]
    if not other:
        return
    if simulated:
        raise ConfigError(
            [
                FieldError(
                    "--precision",
                    f"{', '.join(other)}: the simulated engine is calibrated to the published "
                    "TX2 tables only, which have no reduced-precision figures for Jetson, so "
                    f"it would print the {SIMULATED_PRECISION} figures under another title. "
                    f"Use --precision {SIMULATED_PRECISION}, or bench a real model (--model "
                    "FILE.onnx) with the TensorRT execution provider",
                )
            ]
        )
    if TENSORRT not in providers:
        fallback = providers[0] if providers else "CPUExecutionProvider"
        raise ConfigError([FieldError("--precision", precision_refusal(other[0], fallback))])
