"""``edge-agent power``: rails and total once, sampled over a duration, or live (``--watch``).

``--json`` prints objects with one set of keys in every mode: ``{"board", "source",
"duration_s", "samples", "total": {"name", "w", "energy_j"}, "rails": {NAME: {"v", "a", "w",
"energy_j"}}}``. Once (no ``--duration``): ``w`` is the reading, ``duration_s`` and the
energies are null, ``samples`` is 1. With ``--duration S``: ``w`` is the average over the
window, with its energy; ``v``/``a`` are null. ``--watch --json`` prints one such object per
refresh (a JSON line, the one-shot form plus ``ts``). ``--interval-ms N`` is the sampling
interval; without ``--duration`` it streams a reading every N ms, as ``--watch`` does (where
it is the refresh period, default 500 ms, sampling at 20 ms or faster). A tree without a
monitor prints ``{"available": false, "reason": ...}`` and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from edge_agent.clock import SystemClock
from edge_agent.errors import EdgeAgentError, ProfileError

if TYPE_CHECKING:
    from edge_agent.clock import Clock
    from edge_agent.hardware.base import PowerMonitor, PowerReading
    from edge_agent.hardware.root import Root
    from edge_agent.power.ledger import EnergyLedger, WindowStats
    from edge_agent.power.sampler import Sampler

EXIT_OK = 0
EXIT_RUNTIME = 1
SAMPLE_MS = 20.0
WATCH_REFRESH_MS = 500.0
_MODE_REFRESH_S = 5.0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``power`` subcommand."""
    parser = sub.add_parser(
        "power",
        parents=[common],
        help="show power rails (V, A, W) and the board total",
        description="Read the board's power monitors once, sample them for a duration, or "
        "watch them live.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--watch", action="store_true", help="live table (Ctrl-C to stop)")
    parser.add_argument(
        "--format",
        choices=["table", "tegrastats"],
        default="table",
        help="with --watch: a live table, or one line a second in the board's tegrastats format",
    )
    parser.add_argument(
        "--interval-ms",
        type=float,
        default=None,
        metavar="N",
        help="sampling interval (default 20); without --duration, print every N ms as --watch",
    )
    parser.add_argument(
        "--duration", type=float, default=None, metavar="S", help="sample for S seconds"
    )
    parser.add_argument(
        "--monitor",
        default="auto",
        choices=["auto", "ina3221", "jtop", "nvml", "sim", "none"],
        help="power monitor backend (default: auto)",
    )
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.hardware.root import Root
    from edge_agent.power.monitor import open_monitor

    interval_ms = args.interval_ms
    if (interval_ms is not None and interval_ms <= 0) or (
        args.duration is not None and args.duration <= 0
    ):
        print("error: --interval-ms and --duration must be positive", file=sys.stderr)
        return 2
    root = Root(args.root)
    clock = SystemClock()
    monitor, why = open_monitor(args.monitor, root, clock)
    try:
        if not monitor.available:
            if args.json:
                print(json.dumps({"available": False, "reason": monitor.reason}))
            else:
                print(f"no power monitor: {monitor.reason}", file=sys.stderr)
            return EXIT_RUNTIME
        if args.watch or (interval_ms is not None and args.duration is None):
            return _watch(args, root, monitor, clock)
        if args.duration is not None:
            return _sampled(args, root, monitor, clock)
        return _one_shot(args, root, monitor, why)
    finally:
        monitor.close()


def board_name(root: Root) -> str:
    """The device-tree model, or ``"unknown"``."""
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.hardware.board import detect_board

    return detect_board(root).model or "unknown"


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def one_shot_json(board: str, source: str, reading: PowerReading) -> dict[str, Any]:
    """The JSON object for one reading: V, A, W; no window, so no energy."""
    rails = {
        r.name: {
            "v": _r(None if r.voltage_mv is None else r.voltage_mv / 1000.0),
            "a": _r(None if r.current_ma is None else r.current_ma / 1000.0),
            "w": _r(r.power_mw / 1000.0),
            "energy_j": None,
        }
        for r in reading.rails
    }
    out: dict[str, Any] = {
        "board": board,
        "source": source,
        "duration_s": None,
        "samples": 1,
        "total": {"name": reading.total_name, "w": _r(reading.total_w), "energy_j": None},
        "rails": rails,
    }
    if reading.offline:
        out["offline"] = list(reading.offline)
    return out


def sampled_json(board: str, source: str, stats: WindowStats) -> dict[str, Any]:
    """The ``--duration`` JSON object: the same keys, ``w`` the window's average."""
    return {
        "board": board,
        "source": source,
        "duration_s": _r(stats.duration_s),
        "samples": stats.samples,
        "total": {
            "name": stats.total_name,
            "w": _r(stats.avg_w),
            "energy_j": _r(stats.energy_j),
        },
        "rails": {
            name: {"v": None, "a": None, "w": _r(r.avg_w), "energy_j": _r(r.energy_j)}
            for name, r in stats.rails.items()
        },
    }


def _read_settled(monitor: PowerMonitor) -> PowerReading:
    # A file caught mid-rewrite leaves the total out of one pass; try again a few times.
    reading = monitor.read()
    for _ in range(4):
        if reading.total_mw is not None:
            break
        reading = monitor.read()
    return reading


def _one_shot(args: argparse.Namespace, root: Root, monitor: PowerMonitor, why: str) -> int:
    reading = _read_settled(monitor)
    board = board_name(root)
    if args.json:
        print(json.dumps(one_shot_json(board, monitor.source, reading)))
        return EXIT_OK
    from rich.console import Console

    console = Console()
    console.print(f"{board} - {why}")
    console.print(_reading_table(reading))
    return EXIT_OK


def _start(monitor: PowerMonitor, clock: Clock, interval_ms: float, span_s: float) -> Sampler:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.power.sampler import Sampler

    interval_s = interval_ms / 1000.0
    capacity = max(16, int(span_s / interval_s * 1.5) + 16)
    sampler = Sampler(monitor, clock, interval_s=interval_s, capacity=capacity)
    sampler.start()
    return sampler


def _sampled(args: argparse.Namespace, root: Root, monitor: PowerMonitor, clock: Clock) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.power.ledger import EnergyLedger

    interval_ms = SAMPLE_MS if args.interval_ms is None else args.interval_ms
    sampler = _start(monitor, clock, interval_ms, args.duration)
    try:
        threading.Event().wait(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        sampler.stop()
        sampler.join(5.0)
    samples = sampler.samples()
    if len(samples) < 2:
        reason = f"only {len(samples)} sample(s) in {args.duration} s"
        if args.json:
            print(json.dumps({"available": True, "no_data": True, "reason": reason}))
        else:
            print(f"no data: {reason}", file=sys.stderr)
        return EXIT_RUNTIME
    stats = EnergyLedger(sampler).window(samples[0].t_s, samples[-1].t_s)
    if args.json:
        print(json.dumps(sampled_json(board_name(root), monitor.source, stats)))
        return EXIT_OK
    from rich.console import Console

    Console().print(_window_table(stats, monitor.source))
    return EXIT_OK


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _reading_table(
    reading: PowerReading,
    avg_1s: WindowStats | None = None,
    avg_10s: WindowStats | None = None,
    title: str | None = None,
) -> Any:
    from rich.table import Table

    averages = avg_1s is not None and avg_10s is not None
    table = Table(title=title)
    for column in ("rail", "V", "A", "W"):
        table.add_column(column, justify="left" if column == "rail" else "right")
    if averages:
        table.add_column("avg 1 s W", justify="right")
        table.add_column("avg 10 s W", justify="right")
    for r in reading.rails:
        row = [
            r.name + (" (total)" if r.name == reading.total_name else ""),
            _fmt(None if r.voltage_mv is None else r.voltage_mv / 1000.0),
            _fmt(None if r.current_ma is None else r.current_ma / 1000.0),
            _fmt(r.power_mw / 1000.0),
        ]
        if avg_1s is not None and avg_10s is not None:
            row += [_fmt(_rail_avg(avg_1s, r.name)), _fmt(_rail_avg(avg_10s, r.name))]
        table.add_row(*row)
    for name in reading.offline:
        table.add_row(name, "offline", "", "", *([""] * (2 if averages else 0)))
    total = [f"total: {reading.total_name}", "", "", _fmt(reading.total_w)]
    if avg_1s is not None and avg_10s is not None:
        total += [_fmt(avg_1s.avg_w), _fmt(avg_10s.avg_w)]
    table.add_row(*total, style="bold")
    return table


def _rail_avg(stats: WindowStats, name: str) -> float | None:
    rail = stats.rails.get(name)
    return None if rail is None else rail.avg_w


def _window_table(stats: WindowStats, source: str) -> Any:
    from rich.table import Table

    table = Table(title=f"{source}: {stats.duration_s:.2f} s, {stats.samples} samples")
    table.add_column("rail")
    table.add_column("avg W", justify="right")
    table.add_column("energy J", justify="right")
    for name, rail in stats.rails.items():
        table.add_row(name, _fmt(rail.avg_w), _fmt(rail.energy_j))
    table.add_row(
        f"total: {stats.total_name}", _fmt(stats.avg_w), _fmt(stats.energy_j), style="bold"
    )
    return table


class _ModeReader:
    """The current profile and nvpmodel mode, re-read every few seconds (nvpmodel is a process).

    The profile name comes from the board's profile file; a board no file matches shows the
    nvpmodel mode alone.
    """

    def __init__(self, root: Root, clock: Clock) -> None:
        # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
        from edge_agent.hardware.nvpmodel import Nvpmodel

        self._root = root
        self._nvp = Nvpmodel(root, timeout_s=4.0)
        self._clock = clock
        self._at: float | None = None
        self._name = "n/a"

    def name(self) -> str:
        now = self._clock.monotonic()
        if self._at is not None and now - self._at < _MODE_REFRESH_S:
            return self._name
        self._at = now
        try:
            self._name = self._profile()
        except EdgeAgentError:
            self._name = "n/a"
        return self._name

    def _profile(self) -> str:
        # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
        from edge_agent.config import ProfileConfig, default_state_dir
        from edge_agent.power.profile_apply import ProfileController

        mode = self._nvp.query().name if self._nvp.available() else None
        try:
            controller = ProfileController(
                self._root,
                ProfileConfig(),
                default_state_dir(self._root.path, os.environ),
                self._clock,
            )
            profile = controller.current().name
        except ProfileError:
            return f"mode {mode}" if mode else "n/a"
        return f"profile {profile} (mode {mode})" if mode else f"profile {profile}"


def _watch(args: argparse.Namespace, root: Root, monitor: PowerMonitor, clock: Clock) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.power.ledger import EnergyLedger

    refresh_ms = WATCH_REFRESH_MS if args.interval_ms is None else args.interval_ms
    sampler = _start(monitor, clock, min(refresh_ms, SAMPLE_MS), 12.0)
    ledger = EnergyLedger(sampler)
    board = board_name(root)
    deadline = None if args.duration is None else clock.monotonic() + args.duration
    try:
        sampler.wait_for(1, 2.0)
        if args.format == "tegrastats":
            _watch_tegrastats(root, sampler, clock, deadline)
        elif args.json:
            _watch_json(sampler, board, monitor.source, clock, refresh_ms / 1000.0, deadline)
        else:
            mode = _ModeReader(root, clock)
            _watch_table(sampler, ledger, lambda: f"{board} | {mode.name()}", clock,
                         refresh_ms / 1000.0, deadline)  # fmt: skip
    except KeyboardInterrupt:
        pass
    finally:
        sampler.stop()
        sampler.join(5.0)
    return EXIT_OK


def _ticks(clock: Clock, period_s: float, deadline: float | None) -> Iterator[None]:
    """Yield once per period until the deadline (forever without one)."""
    ticker = threading.Event()
    while True:
        yield
        if deadline is not None and clock.monotonic() >= deadline:
            return
        ticker.wait(period_s)


def _watch_json(
    sampler: Sampler,
    board: str,
    source: str,
    clock: Clock,
    period_s: float,
    deadline: float | None,
) -> None:
    for _ in _ticks(clock, period_s, deadline):
        reading = sampler.latest()
        if reading is None:
            continue
        line = {**one_shot_json(board, source, reading), "ts": round(clock.wall(), 3)}
        print(json.dumps(line), flush=True)


def _watch_table(
    sampler: Sampler,
    ledger: EnergyLedger,
    title: Callable[[], str],
    clock: Clock,
    period_s: float,
    deadline: float | None,
) -> None:
    from rich.console import Console
    from rich.live import Live

    with Live(console=Console(), auto_refresh=False) as live:
        for _ in _ticks(clock, period_s, deadline):
            _render(live, sampler, ledger, title())


def _watch_tegrastats(root: Root, sampler: Sampler, clock: Clock, deadline: float | None) -> None:
    """A line a second, as the board's tegrastats prints it (rails from the sampler)."""
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.power.tegrastats_view import TegrastatsView

    view = TegrastatsView(root)
    for _ in _ticks(clock, 1.0, deadline):
        print(view.line(sampler.latest(), clock.wall()), flush=True)


def _render(live: Any, sampler: Sampler, ledger: EnergyLedger, title: str) -> None:
    reading = sampler.latest()
    if reading is None:
        return
    now = reading.t_s
    table = _reading_table(
        reading, ledger.window(now - 1.0, now), ledger.window(now - 10.0, now), title
    )
    live.update(table, refresh=True)
