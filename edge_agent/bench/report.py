"""A bench's result: rows per (profile, batch), the pick within a latency budget, and its
rendering as one rich table per profile (the paper's layout), the JSON object, and the
``--out DIR`` files (``report.md``, ``results.csv``, ``results.json``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One (profile, batch) measurement; the figures are None where nothing was measured."""

    profile: str
    batch: int
    simulated: bool
    images_per_s: float | None = None
    board_w: float | None = None
    board_ips_per_w: float | None = None
    gpu_w: float | None = None
    gpu_ips_per_w: float | None = None
    latency_ms: float | None = None
    p99_ms: float | None = None
    mj_per_image: float | None = None
    batches_run: int = 0
    duration_s: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON row."""
        return {
            "profile": self.profile,
            "batch": self.batch,
            "images_per_s": self.images_per_s,
            "board_w": self.board_w,
            "board_ips_per_w": self.board_ips_per_w,
            "gpu_w": self.gpu_w,
            "gpu_ips_per_w": self.gpu_ips_per_w,
            "latency_ms": self.latency_ms,
            "p99_ms": self.p99_ms,
            "mj_per_image": self.mj_per_image,
            "batches_run": self.batches_run,
            "duration_s": self.duration_s,
            "simulated": self.simulated,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class ProfileOutcome:
    """How applying one profile went: ``measured``, ``skipped`` (reboot) or ``failed``."""

    name: str
    status: str
    error: str | None = None
    clocks: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchResult:
    """Everything one bench run measured."""

    board: str
    model: str
    simulated: bool
    precision: str
    provider: str
    power_source: str
    duration_s: float
    latency_budget_ms: float | None = None
    rows: list[BenchRow] = field(default_factory=list)
    profiles: list[ProfileOutcome] = field(default_factory=list)
    top1: float | None = None

    def best_within_budget(self) -> dict[str, int | None]:
        """Per profile, the batch with the most images/s whose p99 fits the budget."""
        budget = self.latency_budget_ms
        if budget is None:
            return {}
        return {p.name: best_batch(self.rows, p.name, budget) for p in self.profiles}

    @property
    def failed(self) -> bool:
        """True when a profile failed to apply or no row was measured."""
        measured = any(r.error is None for r in self.rows)
        return not measured or any(p.status == "failed" for p in self.profiles)


def best_batch(rows: Sequence[BenchRow], profile: str, budget_ms: float) -> int | None:
    """The batch with the best throughput among ``profile``'s rows with p99 within budget."""
    fits = [
        r
        for r in rows
        if r.profile == profile
        and r.error is None
        and r.p99_ms is not None
        and r.images_per_s is not None
        and r.p99_ms <= budget_ms
    ]
    if not fits:
        return None
    return max(fits, key=lambda r: (r.images_per_s or 0.0, -r.batch)).batch


COLUMNS = (
    "batch",
    "img/s",
    "board W",
    "board img/s/W",
    "GPU W",
    "GPU img/s/W",
    "latency ms",
    "p99 ms",
    "mJ/img",
)


def result_dict(result: BenchResult) -> dict[str, Any]:
    """The JSON object: board, model, simulated, precision, rows, best_within_budget, ..."""
    return {
        "board": result.board,
        "model": result.model,
        "simulated": result.simulated,
        "precision": result.precision,
        "provider": result.provider,
        "power_source": result.power_source,
        "duration_s": result.duration_s,
        "latency_budget_ms": result.latency_budget_ms,
        "rows": [row.to_dict() for row in result.rows],
        "profiles": {
            p.name: {"status": p.status, "error": p.error, "clocks": p.clocks}
            for p in result.profiles
        },
        "best_within_budget": result.best_within_budget(),
        "top1": result.top1,
    }


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if 0 < abs(value) < 1:
        return f"{value:.2g}"  # a tiny model's sub-millisecond latency
    if abs(value) >= 100 and digits <= 1:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _mhz(hz: Any) -> str:
    return f"{hz / 1e6:.0f} MHz" if isinstance(hz, int | float) and hz > 0 else "uncapped"


def clocks_text(clocks: dict[str, Any]) -> str:
    """``mode MAXQ, GPU 854 MHz, CPUs 0,3,4,5 at 1200 MHz, EMC 1331 MHz``."""
    if not clocks:
        return "clocks unknown"
    parts: list[str] = []
    if clocks.get("nvpmodel_mode"):
        parts.append(f"mode {clocks['nvpmodel_mode']}")
    if clocks.get("gpu_max_hz") is not None:
        parts.append(f"GPU {_mhz(clocks['gpu_max_hz'])}")
    online = clocks.get("cpus_online") or []
    cpu_khz = sorted({int(k) for k in (clocks.get("cpu_max_khz") or {}).values() if k})
    if online:
        speeds = "/".join(f"{k / 1000:.0f}" for k in cpu_khz)
        at = f" at {speeds} MHz" if speeds else ""
        parts.append(f"CPUs {','.join(str(c) for c in online)}{at}")
    if "emc_max_hz" in clocks and clocks["emc_max_hz"] is not None:
        parts.append(f"EMC {_mhz(clocks['emc_max_hz'])}")
    if clocks.get("jetson_clocks_active"):
        parts.append("jetson_clocks on")
    return ", ".join(parts)


def row_cells(row: BenchRow, best: bool) -> list[str]:
    mark = " *" if best else ""
    return [
        f"{row.batch}{mark}",
        _num(row.images_per_s),
        _num(row.board_w, 2),
        _num(row.board_ips_per_w),
        _num(row.gpu_w, 2),
        _num(row.gpu_ips_per_w),
        _num(row.latency_ms),
        _num(row.p99_ms),
        _num(row.mj_per_image),
    ]


def profile_table(result: BenchResult, outcome: ProfileOutcome) -> Table:
    """The paper's table for one profile; ``*`` marks the best batch within the budget."""
    from rich.table import Table

    sim = " (simulated engine)" if result.simulated else ""
    title = f"{result.board} {outcome.name.upper()}: {result.model} {result.precision}{sim}"
    table = Table(title=title, caption=clocks_text(outcome.clocks))
    for name in COLUMNS:
        table.add_column(name, justify="right")
    best = result.best_within_budget().get(outcome.name)
    for row in result.rows:
        if row.profile != outcome.name:
            continue
        if row.error is not None:
            table.add_row(str(row.batch), f"[red]{row.error}[/red]", *[""] * (len(COLUMNS) - 2))
        else:
            table.add_row(*row_cells(row, best == row.batch))
    return table


def print_report(result: BenchResult, file: IO[str]) -> None:
    """Print a table per profile (a line for a skipped or failed one) and the footer."""
    from rich.console import Console

    console = Console(file=file, width=max(120, Console(file=file).width))
    for outcome in result.profiles:
        if outcome.status != "measured":
            console.print(f"[bold]{outcome.name}[/bold]: {outcome.error}")
            continue
        console.print(profile_table(result, outcome))
    budget = result.latency_budget_ms
    if budget is not None:
        picks = result.best_within_budget()
        text = ", ".join(f"{p}: {'none' if b is None else f'batch {b}'}" for p, b in picks.items())
        console.print(f"best throughput with p99 <= {budget:g} ms (*): {text}")
    if result.top1 is not None:
        console.print(f"top-1 {result.precision} on the demo holdout: {result.top1:.2%}")
    note = "simulated engine (board model timing, no compute); " if result.simulated else ""
    console.print(
        f"{note}provider {result.provider}; power from {result.power_source}; "
        "board W = module input rail (AP+DRAM upstream), GPU W = GPU rail"
    )


REPORT_MD = "report.md"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
CSV_FIELDS = (
    "profile",
    "precision",
    "batch",
    "images_per_s",
    "board_w",
    "board_ips_per_w",
    "gpu_w",
    "gpu_ips_per_w",
    "latency_ms",
    "p99_ms",
    "mj_per_image",
    "batches_run",
    "duration_s",
    "simulated",
    "error",
)


def results_doc(results: Sequence[BenchResult]) -> dict[str, Any]:
    """One bench's JSON: a precision's object, or ``{"runs": [...]}`` for several."""
    if len(results) == 1:
        return result_dict(results[0])
    return {"runs": [result_dict(r) for r in results]}


def write_csv(results: Sequence[BenchResult], path: Path) -> Path:
    """One row per (precision, profile, batch), full-precision numbers, in table order."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for result in results:
            for outcome in result.profiles:
                for row in result.rows:
                    if row.profile == outcome.name:
                        doc = row.to_dict()
                        doc["precision"] = result.precision
                        writer.writerow({k: "" if doc[k] is None else doc[k] for k in CSV_FIELDS})
    return path


def _md_table(result: BenchResult, outcome: ProfileOutcome) -> list[str]:
    best = result.best_within_budget().get(outcome.name)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---:|" * len(COLUMNS)]
    for row in result.rows:
        if row.profile != outcome.name:
            continue
        if row.error is not None:
            cells = [str(row.batch), row.error.replace("|", "/")] + [""] * (len(COLUMNS) - 2)
        else:
            cells = row_cells(row, best == row.batch)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(results: Sequence[BenchResult], charts: Sequence[str] = ()) -> str:
    """``report.md``: what ran, a table per precision and profile, the picks, the charts."""
    first = results[0]
    sim = " on the simulated engine (board model timing, no compute)" if first.simulated else ""
    lines = [
        f"# Bench: {first.model} on {first.board}",
        "",
        f"- precision: {', '.join(r.precision for r in results)}{sim}",
        f"- provider: {first.provider}; power from {first.power_source}",
        f"- {first.duration_s:g} s per batch size; board W = module input rail, GPU W = GPU rail",
    ]
    if first.latency_budget_ms is not None:
        lines.append(
            f"- latency budget: p99 <= {first.latency_budget_ms:g} ms (`*` marks the best)"
        )
    for result in results:
        for outcome in result.profiles:
            lines += ["", f"## {outcome.name.upper()} {result.precision}", ""]
            if outcome.status != "measured":
                lines.append(f"{outcome.status}: {outcome.error}")
                continue
            lines += [clocks_text(outcome.clocks), "", *_md_table(result, outcome)]
        if result.top1 is not None:
            lines += ["", f"Top-1 ({result.precision}, demo holdout): {result.top1:.2%}"]
        picks = result.best_within_budget()
        if picks:
            text = ", ".join(
                f"{p}: {'none' if b is None else f'batch {b}'}" for p, b in picks.items()
            )
            lines += ["", f"Best throughput within the budget ({result.precision}): {text}"]
    if charts:
        lines += ["", "## Charts", ""] + [f"![{Path(c).stem}]({c})" for c in charts]
    return "\n".join(lines) + "\n"


def write_files(
    results: Sequence[BenchResult], out_dir: Path, charts: Sequence[Path] = ()
) -> list[Path]:
    """``report.md``, ``results.csv`` and ``results.json`` in ``out_dir`` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = json.dumps(results_doc(results), indent=2, sort_keys=True) + "\n"
    (out_dir / RESULTS_JSON).write_text(doc, encoding="utf-8")
    write_csv(results, out_dir / RESULTS_CSV)
    names = [c.relative_to(out_dir).as_posix() for c in charts]
    (out_dir / REPORT_MD).write_text(markdown(results, names), encoding="utf-8")
    return [out_dir / REPORT_MD, out_dir / RESULTS_CSV, out_dir / RESULTS_JSON, *charts]
