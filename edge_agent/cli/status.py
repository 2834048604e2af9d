"""``edge-agent status``: profile, clocks, GPU load, temperatures, fan, rails and the agent.

``--json`` prints one object (see :func:`edge_agent.agent.status.read_status`); ``--watch``
redraws it every ``--interval-ms`` until Ctrl-C (or ``--count N`` screens). The running agent's
fps, latency, perf/W and outbox come from the report it writes to its state directory after
each telemetry message (``<state_dir>/last_telemetry.json``); pass ``--state-dir`` when the
agent runs with another one than this root's default.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.clock import SystemClock

if TYPE_CHECKING:
    from rich.console import Group

EXIT_OK = 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``status`` subcommand."""
    parser = sub.add_parser(
        "status",
        parents=[common],
        help="one screen: profile, clocks, GPU load, temperatures, fan, rails, the agent",
        description="Show the board's profile and nvpmodel mode, CPU/GPU/EMC clocks, GPU load, "
        "temperatures, fan and power rails, and the running agent's fps, latency, perf/W and "
        "outbox.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--watch", action="store_true", help="redraw live (Ctrl-C to stop)")
    parser.add_argument(
        "--interval-ms", type=float, default=1000.0, metavar="N", help="--watch refresh interval"
    )
    parser.add_argument(
        "--format",
        choices=["table", "tegrastats"],
        default="table",
        help="tegrastats: lines in the board's own tegrastats format (not with --json)",
    )
    parser.add_argument(
        "--count", type=int, default=None, metavar="N", help="stop --watch after N screens"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="the agent's state directory (default: this root's)"
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
    from rich.console import Console
    from rich.live import Live

    from edge_agent.agent.status import read_status
    from edge_agent.cli.profile import default_state_dir
    from edge_agent.hardware.root import Root

    if args.interval_ms <= 0 or (args.count is not None and args.count <= 0):
        raise SystemExit("error: --interval-ms and --count must be positive")
    root = Root(args.root)
    state_dir = args.state_dir or default_state_dir(root.path)
    clock = SystemClock()

    def snapshot() -> dict[str, Any]:
        return read_status(root, state_dir, clock, monitor_kind=args.monitor)

    if args.format == "tegrastats":
        if args.json:
            raise SystemExit("error: --format tegrastats prints text; drop --json")
        return _tegrastats(args, root, clock)
    if not args.watch:
        status = snapshot()
        if args.json:
            print(json.dumps(status))
        else:
            Console().print(render(status))
        return EXIT_OK
    stop = threading.Event()
    shown = [1]

    def more() -> bool:
        if args.count is not None and shown[0] >= args.count:
            return False
        shown[0] += 1
        return not stop.wait(args.interval_ms / 1000)

    try:
        if args.json:  # one object per line, for a pipe
            print(json.dumps(snapshot()), flush=True)
            while more():
                print(json.dumps(snapshot()), flush=True)
        else:
            with Live(render(snapshot()), auto_refresh=False) as live:
                while more():
                    live.update(render(snapshot()), refresh=True)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _tegrastats(args: argparse.Namespace, root: Any, clock: SystemClock) -> int:
    """One line (or one per interval with --watch) in the board's tegrastats format."""
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.power.monitor import open_monitor
    from edge_agent.power.tegrastats_view import TegrastatsView

    view = TegrastatsView(root)
    monitor, _why = open_monitor(args.monitor, root, clock)
    stop = threading.Event()
    lines = 0
    try:
        while True:
            reading = monitor.read() if monitor.available else None
            print(view.line(reading, clock.wall()), flush=True)
            lines += 1
            if not args.watch or (args.count is not None and lines >= args.count):
                break
            if stop.wait(args.interval_ms / 1000):
                break
    except KeyboardInterrupt:
        pass
    finally:
        monitor.close()
    return EXIT_OK


def _mhz(hz: float | None) -> str:
    return "-" if hz is None else f"{hz / 1e6:,.0f}"


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(status: dict[str, Any]) -> Group:
    """The human screen: a header line, clocks, temperatures and fan, rails, the agent."""
    from rich.console import Group
    from rich.table import Table

    board = status["board"]
    mode = status.get("nvpmodel_mode")
    header = (
        f"[bold]{board['model']}[/bold] {board.get('l4t') or ''}  profile "
        f"[bold]{status.get('profile') or 'n/a'}[/bold]" + (f" (nvpmodel {mode})" if mode else "")
    )
    if status.get("jetson_clocks"):
        header += ", jetson_clocks on"
    clocks = Table(title="clocks", title_justify="left")
    for name in ("unit", "online", "cur MHz", "max MHz", "load"):
        clocks.add_column(name, justify="left" if name in ("unit", "online") else "right")
    c = status["clocks"]
    for cluster in c["cpu"]:
        online = ",".join(str(i) for i in cluster["online"]) or "offline"
        cur = None if cluster["cur_khz"] is None else cluster["cur_khz"] * 1000
        top = None if cluster["max_khz"] is None else cluster["max_khz"] * 1000
        clocks.add_row(f"CPU {cluster['name']}", online, _mhz(cur), _mhz(top), "")
    if c["gpu"] is not None:
        load = "-" if c["gpu_load"] is None else f"{c['gpu_load'] * 100:.0f}%"
        clocks.add_row("GPU", "", _mhz(c["gpu"]["cur_hz"]), _mhz(c["gpu"]["max_hz"]), load)
    clocks.add_row("EMC", "", _mhz(c["emc"]["cur_hz"]), _mhz(c["emc"]["cap_hz"]), "")
    temps = "  ".join(f"{zone} {temp:.1f}C" for zone, temp in status["temperatures"].items())
    fan = status["fan"]
    thermal = f"temperatures: {temps or 'n/a'}\nfan: " + (
        "none" if fan is None else f"{fan['percent']:.0f}% (PWM {fan['pwm']})"
    )
    parts: list[Any] = [header, clocks, thermal, _rails(status["power"])]
    parts.append(_agent_line(status.get("agent")))
    return Group(*parts)


def _rails(power: dict[str, Any]) -> Any:
    from rich.table import Table

    if not power["available"]:
        return f"power: unavailable ({power['reason']})"
    table = Table(title=f"power ({power['total']['name']})", title_justify="left")
    for name in ("rail", "V", "A", "W"):
        table.add_column(name, justify="left" if name == "rail" else "right")
    for name, rail in power["rails"].items():
        table.add_row(name, _num(rail["v"], ".3f"), _num(rail["a"], ".3f"), _num(rail["w"], ".3f"))
    table.add_row("[bold]total[/bold]", "", "", f"[bold]{_num(power['total']['w'], '.3f')}[/bold]")
    return table


def _agent_line(agent: dict[str, Any] | None) -> str:
    if agent is None:
        return "agent: no report in the state directory"
    if not agent["running"]:
        return f"agent: not running (last report {agent['age_s']:.0f} s ago, {agent['state']})"
    lat = agent.get("latency_ms") or {}
    outbox = agent.get("outbox") or {}
    return (
        f"agent: {_num(agent['fps'], '.1f')} fps, latency p50 {_num(lat.get('p50'), '.1f')} ms "
        f"p99 {_num(lat.get('p99'), '.1f')} ms, {_num(agent['perf_per_watt'], '.2f')} inf/J, "
        f"board {_num(agent['board_w'], '.2f')} W, outbox {outbox.get('depth', '-')}"
        + _governor_text(agent.get("governor"))
    )


def _governor_text(governor: dict[str, Any] | None) -> str:
    """``, policy slo (set by mqtt) at gpu 624.75/emc 2133/cpu 1510``; empty without one."""
    if not governor:
        return ""
    text = f", policy {governor['policy']} (set by {governor['set_by']})"
    point = governor.get("point")
    return text + (f" at {point['label']}" if point else "")
