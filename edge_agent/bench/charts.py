"""PNG charts of a bench (matplotlib, the ``charts`` extra).

Two charts, each ``WIDTH_PX`` x ``HEIGHT_PX``:

- ``images_per_watt.png``: images/s/W against batch, one line per profile (and precision),
  board (module input) solid and GPU rail dashed: the paper's efficiency curves.
- ``throughput_latency.png``: images/s against p99 latency, one line per profile through its
  batch sizes, the latency budget as a vertical line, and each profile's best point (the most
  images/s within the budget, or overall without one) starred.

A third chart, ``dvfs_pareto_<board>.png``, comes from the governor's evaluation
(``tools/governor_eval.py --out DIR``): energy per inference against p99 latency for every
DVFS operating point of a trace segment, the Pareto front (no other point is both faster and
cheaper) as a line, the SLO as a vertical line.

Figures are drawn with matplotlib's object API on the Agg canvas: no pyplot state, no GUI
backend, safe from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from edge_agent.bench.report import BenchResult, BenchRow, best_batch

WIDTH_PX = 800
HEIGHT_PX = 500
DPI = 100
EFFICIENCY_PNG = "images_per_watt.png"
LATENCY_PNG = "throughput_latency.png"


@dataclass(frozen=True)
class DvfsPoint:
    """One operating point's outcome on a workload: its label, mJ/inference and p99 (ms)."""

    label: str
    energy_mj: float
    p99_ms: float
    meets_slo: bool


def pareto_front(points: Sequence[DvfsPoint]) -> list[DvfsPoint]:
    """The points no other point beats on both p99 latency and energy, by rising latency.

    A point is dominated when another has p99 and energy no higher and one of them lower; ties
    on both keep the first.
    """
    front: list[DvfsPoint] = []
    for point in sorted(points, key=lambda p: (p.p99_ms, p.energy_mj)):
        if not front or point.energy_mj < front[-1].energy_mj:
            front.append(point)
    return front


def _figure() -> Figure:
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _series(results: Sequence[BenchResult]) -> list[tuple[str, BenchResult, list[BenchRow]]]:
    """(label, result, measured rows by batch) per profile and precision."""
    several = len({r.precision for r in results}) > 1
    out = []
    for result in results:
        for outcome in result.profiles:
            rows = sorted(
                (
                    r
                    for r in result.rows
                    if r.profile == outcome.name and r.error is None and r.images_per_s
                ),
                key=lambda r: r.batch,
            )
            if rows:
                label = f"{outcome.name} {result.precision}" if several else outcome.name
                out.append((label, result, rows))
    return out


def _title(results: Sequence[BenchResult], what: str) -> str:
    first = results[0]
    sim = " (simulated engine)" if first.simulated else ""
    return f"{first.board} {first.model}{sim}: {what}"


def efficiency_chart(results: Sequence[BenchResult], path: Path) -> Path:
    """images/s/W against batch per profile; board solid, GPU rail dashed."""
    fig = _figure()
    ax = fig.add_subplot()
    for label, _result, rows in _series(results):
        batches = [r.batch for r in rows]
        board = [r.board_ips_per_w for r in rows if r.board_ips_per_w is not None]
        if len(board) == len(rows):
            (line,) = ax.plot(batches, board, marker="o", label=f"{label} board")
            gpu = [r.gpu_ips_per_w for r in rows if r.gpu_ips_per_w is not None]
            if len(gpu) == len(rows):
                ax.plot(
                    batches, gpu, marker="s", linestyle="--", color=line.get_color(),
                    label=f"{label} GPU rail",
                )  # fmt: skip
    ax.set_xscale("log", base=2)
    ticks = sorted({r.batch for _label, _result, rows in _series(results) for r in rows})
    ax.set_xticks(ticks, [str(b) for b in ticks])
    ax.set_xlabel("batch size")
    ax.set_ylabel("images/s/W")
    ax.set_title(_title(results, "efficiency by batch"))
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no power figures", ha="center", transform=ax.transAxes)
    fig.savefig(path, dpi=DPI)
    return path


def latency_chart(results: Sequence[BenchResult], path: Path) -> Path:
    """Throughput against p99 latency, the budget line and each profile's best point."""
    fig = _figure()
    ax = fig.add_subplot()
    budget = results[0].latency_budget_ms
    for label, result, rows in _series(results):
        p99 = [r.p99_ms or 0.0 for r in rows]
        ips = [r.images_per_s or 0.0 for r in rows]
        (line,) = ax.plot(p99, ips, marker="o", label=label)
        for row, x, y in zip(rows, p99, ips, strict=True):
            ax.annotate(f"b{row.batch}", (x, y), textcoords="offset points", xytext=(4, -10))
        best = (
            best_batch(result.rows, rows[0].profile, budget)
            if budget is not None
            else max(rows, key=lambda r: r.images_per_s or 0.0).batch
        )
        for row, x, y in zip(rows, p99, ips, strict=True):
            if row.batch == best:
                ax.plot(
                    [x], [y], marker="*", markersize=18, color=line.get_color(),
                    linestyle="none", label=f"{label} best (batch {best})",
                )  # fmt: skip
    if budget is not None:
        ax.axvline(budget, color="red", linestyle="--", label=f"budget {budget:g} ms")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("p99 latency (ms)")
    ax.set_ylabel("images/s")
    ax.set_title(_title(results, "throughput against p99 latency"))
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=DPI)
    return path


def pareto_chart(
    points: Sequence[DvfsPoint], path: Path, *, title: str, slo_ms: float | None
) -> Path:
    """Energy per inference against p99 latency per DVFS point, with the Pareto front."""
    fig = _figure()
    ax = fig.add_subplot()
    for meets, marker, label in ((True, "o", "meets the SLO"), (False, "x", "misses the SLO")):
        chosen = [p for p in points if p.meets_slo == meets]
        if chosen:
            ax.scatter(
                [p.p99_ms for p in chosen], [p.energy_mj for p in chosen], marker=marker,
                alpha=0.6, label=f"operating point, {label}",
            )  # fmt: skip
    front = pareto_front(points)
    ax.plot(
        [p.p99_ms for p in front], [p.energy_mj for p in front], color="black", linewidth=1.5,
        drawstyle="steps-post", label="Pareto front",
    )  # fmt: skip
    qualifying = [p for p in points if p.meets_slo]
    if qualifying:
        best = min(qualifying, key=lambda p: p.energy_mj)
        ax.plot(
            [best.p99_ms], [best.energy_mj], marker="*", markersize=18, linestyle="none",
            color="tab:green", label=f"least energy within the SLO: {best.label}",
        )  # fmt: skip
    if slo_ms is not None:
        ax.axvline(slo_ms, color="red", linestyle="--", label=f"SLO p99 {slo_ms:g} ms")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("p99 latency (ms)")
    ax.set_ylabel("energy per inference (mJ)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=DPI)
    return path


def write_charts(results: Sequence[BenchResult], out_dir: Path) -> list[Path]:
    """Both charts into ``out_dir``; their paths."""
    return [
        efficiency_chart(results, out_dir / EFFICIENCY_PNG),
        latency_chart(results, out_dir / LATENCY_PNG),
    ]
