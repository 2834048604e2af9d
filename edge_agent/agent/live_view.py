"""The live terminal view of ``edge-agent run`` and the end-of-run summary table."""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from types import TracebackType

    from edge_agent.agent.daemon import Agent


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


class LiveView:
    """A rich table refreshed from the agent's stats while it runs in a terminal."""

    def __init__(self, agent: Agent, console: Console | None = None) -> None:
        self._agent = agent
        self._console = console or Console(stderr=True)
        self._live = Live(self._render(), console=self._console, refresh_per_second=4)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.__exit__(exc_type, exc, tb)

    def refresh(self) -> None:
        self._live.update(self._render())

    def _render(self) -> Table:
        agent = self._agent
        snap = agent.snapshot()
        parts = agent.parts
        telemetry = parts.reporter.last_telemetry if parts.reporter is not None else None
        telemetry = telemetry or {}
        power = telemetry.get("power") or {}
        table = Table(title=f"edge-agent · {agent.config.device_id}", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        table.add_row("profile", str(parts.current_profile() or "n/a"))
        table.add_row("results", f"{snap.results} ({snap.recent_fps:.1f} fps)")
        lat = snap.latency_dict()
        table.add_row(
            "latency ms", f"p50 {_fmt(lat['p50'])}  p95 {_fmt(lat['p95'])}  p99 {_fmt(lat['p99'])}"
        )
        table.add_row("board power", _fmt(power.get("total_w"), " W"))
        table.add_row("perf/W", _fmt(telemetry.get("perf_per_watt"), " inf/J"))
        table.add_row("energy", _fmt(telemetry.get("mj_per_inference"), " mJ/inference"))
        if snap.accuracy is not None:
            table.add_row("top-1 vs truth", f"{snap.accuracy * 100:.1f}% of {snap.labelled}")
        outbox = telemetry.get("outbox") or {}
        table.add_row("outbox depth", str(outbox.get("depth", "n/a")))
        if parts.link is not None:
            table.add_row("mqtt", str(getattr(parts.link, "state", "?")))
        return table


def print_summary(summary: dict[str, Any], *, as_json: bool, file: IO[str]) -> None:
    """Print the run summary as a table (or JSON)."""
    if as_json:
        file.write(json.dumps(summary, sort_keys=True) + "\n")
        return
    console = Console(file=file)
    table = Table(title="edge-agent run summary", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value")
    lat = summary.get("latency_ms") or {}
    rows = [
        ("results", str(summary.get("results"))),
        ("fps", _fmt(summary.get("fps"))),
        ("latency p50/p95/p99 ms", " / ".join(_fmt(lat.get(k)) for k in ("p50", "p95", "p99"))),
        ("average power", _fmt(summary.get("avg_w"), " W")),
        ("perf/W", _fmt(summary.get("perf_per_watt"), " inferences/J")),
        ("energy per inference", _fmt(summary.get("mj_per_inference"), " mJ")),
        ("dropped frames", str(summary.get("dropped"))),
        ("profile", _fmt(summary.get("profile"))),
        ("provider", _fmt(summary.get("provider"))),
        ("power source", _fmt(summary.get("power_source"))),
    ]
    if summary.get("accuracy") is not None:
        rows.append(("top-1 vs truth", f"{summary['accuracy'] * 100:.1f}%"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
