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
    from edge_agent.agent.result_stats import StatsSnapshot


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
        parts = agent.parts
        telemetry = parts.reporter.last_telemetry if parts.reporter is not None else None
        link = getattr(parts.mqtt.link, "state", "?") if parts.mqtt.link is not None else None
        table = Table(title=f"edge-agent · {agent.config.device_id}", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        for name, value in live_rows(
            parts.current_profile(), agent.snapshot(), telemetry or {}, link
        ):
            table.add_row(name, value)
        return table


def live_rows(
    profile: str | None,
    snap: StatsSnapshot,
    telemetry: dict[str, Any],
    mqtt_state: str | None,
) -> list[tuple[str, str]]:
    """The live view's rows.

    Throughput, power and efficiency come from one window, the latest telemetry message's,
    and inferences/J and mJ/inference are computed here from its fps and watts, so the three
    numbers on screen always agree (inf/J = fps / W). Before the first telemetry message
    only the fps since start is known.
    """
    power = telemetry.get("power") or {}
    watts = power.get("total_w")
    fps = telemetry.get("fps")
    window_s = telemetry.get("window_s")
    if fps is None or not window_s:
        throughput = f"{snap.recent_fps:.1f} fps (since start)"
        fps = watts = None
    else:
        throughput = f"{fps:.2f} fps (last {window_s:.0f} s)"
    per_j = fps / watts if fps is not None and watts else None
    mj = watts / fps * 1000.0 if fps and watts is not None else None
    lat = snap.latency_dict()
    rows = [
        ("profile", str(profile or "n/a")),
        ("results", str(snap.results)),
        ("throughput", throughput),
        ("latency ms", f"p50 {_fmt(lat['p50'])}  p95 {_fmt(lat['p95'])}  p99 {_fmt(lat['p99'])}"),
        ("board power", _fmt(watts, " W")),
        ("perf/W", _fmt(per_j, " inf/J")),
        ("energy", _fmt(mj, " mJ/inference")),
    ]
    if snap.accuracy is not None:
        rows.append(("top-1 vs truth", f"{snap.accuracy * 100:.1f}% of {snap.labelled}"))
    outbox = telemetry.get("outbox") or {}
    rows.append(("outbox depth", str(outbox.get("depth", "n/a"))))
    if mqtt_state is not None:
        rows.append(("mqtt", mqtt_state))
    return rows


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
        ("measured window", _fmt(summary.get("duration_s"), " s (first to last result)", 1)),
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
