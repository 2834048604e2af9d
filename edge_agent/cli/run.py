"""``edge-agent run``: config, optional simulated board, live view and the summary.

This is the CLI's ``--sim`` path, one of the places outside tests and tools that imports
``edge_agent.sim``: it creates a simulated board, starts its power model and hands the
daemon the board's root plus the engine-time stretch for the current clocks.

The agent, config and simulator modules are imported inside the functions that use them:
they pull in pydantic, numpy and rich, and ``edge-agent --help`` should not pay for them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.clock import SystemClock
from edge_agent.errors import ConfigError, FieldError, InferenceError

if TYPE_CHECKING:
    from edge_agent.agent.daemon import Agent
    from edge_agent.agent.hooks import PipelineHooks
    from edge_agent.config import AgentConfig

logger = logging.getLogger(__name__)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``run`` subcommand."""
    parser = sub.add_parser(
        "run",
        parents=[common],
        help="run the agent in the foreground",
        description="Run the agent: capture, infer, measure power, publish over MQTT.",
    )
    parser.add_argument("--config", type=Path, help="agent config YAML (default: the demo)")
    parser.add_argument("--sim", metavar="BOARD", help="run on a simulated board")
    parser.add_argument(
        "--duration", type=positive_seconds, metavar="S", help="stop after S (> 0) seconds"
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="power profile to apply at start (overrides profile.initial)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--state-dir", type=Path, help="override state_dir")
    parser.add_argument("--no-live", action="store_true", help="no live status view")
    parser.set_defaults(func=run_command)


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds above 0")
    return value


DEMO_BROKER_PORT = 1883


def demo_config() -> dict[str, Any]:
    """The config used when ``run`` gets no ``--config``: the demo on the embedded broker."""
    return {"mqtt": {"host": "embedded", "port": DEMO_BROKER_PORT}, "profile": {"initial": "maxq"}}


def sim_state_dir(board: str, device_id: str, host: str, port: int) -> Path:
    """``$XDG_STATE_HOME/edge-agent/sim-<board>/<device>@<host>-<port>``.

    Keyed by the device and the broker: rows one run queued for a broker are replayed only
    to that broker, never to the next run's different one. The default base is
    ``~/.local/state``.
    """
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    device, broker = (re.sub(r"[^A-Za-z0-9._-]", "_", text) for text in (device_id, host))
    return Path(base) / "edge-agent" / f"sim-{board}" / f"{device}@{broker}-{port}"


def build_config(
    args: argparse.Namespace, sim_root: Path | None = None, *, warn: bool = True
) -> AgentConfig:
    """The config from ``--config`` (or the demo), with ``--sim`` and ``--state-dir`` applied.

    Raises:
        ConfigError: the file or the result is invalid (the CLI exits 2).
    """
    # pydantic and the board tables: keeps --help fast.
    from edge_agent.config import read_config_file, validate_config
    from edge_agent.config_files import check_state_dir
    from edge_agent.power.profile_check import profile_checks

    if args.config is not None:
        raw = read_config_file(args.config)  # the bounded reader, as check-config and SIGHUP
        base: Path | None = args.config.parent.resolve()
        source = str(args.config)
    else:
        raw, base, source = demo_config(), None, "(demo config)"
    root_arg = getattr(args, "root", Path("/"))
    if sim_root is None and root_arg != Path("/"):
        raw["root"] = str(root_arg.absolute())  # --root wins over the file, as everywhere
    # The simulated board is thrown away at exit; its outbox must outlive it so a crash or
    # an undelivered backlog is replayed by the next run (to the same broker).
    sim_state = sim_root is not None and args.state_dir is None and raw.get("state_dir") is None
    if sim_root is not None:
        raw["root"] = str(sim_root)
        power = raw.get("power") or {}
        if isinstance(power, dict) and power.get("monitor", "auto") == "auto":
            raw["power"] = {**power, "monitor": "sim"}
    if args.state_dir is not None:
        raw["state_dir"] = str(args.state_dir.absolute())  # a flag is relative to the cwd
    if args.profile is not None:
        section = raw.get("profile")
        if section is None or isinstance(section, dict):
            raw["profile"] = {**(section or {}), "initial": args.profile}
    config = validate_config(
        raw, source=source, base_dir=base, extra_checks=profile_checks(), warn=warn
    )
    if sim_state:
        mqtt = config.mqtt
        state = sim_state_dir(args.sim, config.device_id, mqtt.host, mqtt.port)
        config = config.model_copy(update={"state_dir": state})
    problem = check_state_dir("state_dir", config.resolved_state_dir, writable=True)
    if problem is not None:
        raise ConfigError([problem], source)
    return config


@contextlib.contextmanager
def simulated_board(board: str, clock: SystemClock) -> Iterator[tuple[Path, PipelineHooks]]:
    """Create a simulated board in a throwaway folder and run its power model."""
    # The simulator and the agent (pydantic, numpy): only a --sim run pays for them.
    from edge_agent.agent.hooks import PipelineHooks
    from edge_agent.sim import create_board
    from edge_agent.sim.perf_model import time_scale
    from edge_agent.sim.power_model import PowerModel
    from edge_agent.sim.scratch import board_folder

    with board_folder(board) as folder:
        sim = create_board(board, folder)
        hooks = PipelineHooks(latency_scale=lambda: time_scale(sim.root), clock=clock)
        model = PowerModel(sim.root, clock, busy=hooks.busy_fraction)
        model.start()
        try:
            yield sim.root, hooks
        finally:
            model.stop()
            model.join(timeout_s=5.0)


def run_command(args: argparse.Namespace) -> int:
    """Run the agent in the foreground; returns the exit code."""
    # The agent pulls in pydantic, numpy and rich: keeps --help fast.
    from edge_agent.agent.daemon import Agent
    from edge_agent.agent.hooks import PipelineHooks
    from edge_agent.agent.live_view import LiveView, print_summary
    from edge_agent.sim import board_names

    # Validate before touching hardware or the simulator; --sim loads again on its board.
    config = build_config(args, warn=not args.sim)
    if args.sim and args.sim not in board_names():
        raise ConfigError(
            [FieldError("--sim", f"unknown board {args.sim!r}; valid: {', '.join(board_names())}")]
        )
    clock = SystemClock()
    with contextlib.ExitStack() as stack:
        hooks = PipelineHooks()
        if args.sim:
            root, hooks = stack.enter_context(simulated_board(args.sim, clock))
            config = build_config(args, sim_root=root)
        sim_root = config.root if args.sim else None
        reload_source = None
        if args.config is not None:

            def reload_source() -> AgentConfig:
                return build_config(args, sim_root=sim_root)

        agent = Agent(config, reload_source=reload_source, clock=clock, hooks=hooks)
        live = LiveView(agent) if _want_live(args) else None
        with agent.signal_handlers():
            try:
                agent.start()
            except InferenceError as err:
                # A missing or corrupt model, or an input no camera can feed, is invalid input.
                raise ConfigError([FieldError("model", str(err))], "(start)") from err
            _print_banner(agent, args)
            try:
                if live is not None:
                    with live:
                        code = agent.run(args.duration, on_tick=live.refresh)
                else:
                    code = agent.run(args.duration)
                # The duration ended it, not a signal or a failure.
                ran_out = args.duration is not None and not agent.stop.is_set()
            finally:
                agent.shutdown()
        if code == 0 and ran_out and agent.snapshot().results == 0:
            # A timed run without a single result did not do its job. A SIGTERM before the
            # first result (systemd stopping a starting agent) is still a clean stop.
            print(f"error: no results in {args.duration:g} s", file=sys.stderr)
            code = 1
        summary = agent.summary()
        if args.json:
            print_summary(summary, as_json=False, file=sys.stderr)
            print_summary(summary, as_json=True, file=sys.stdout)
        else:
            print_summary(summary, as_json=False, file=sys.stdout)
        return code


def _want_live(args: argparse.Namespace) -> bool:
    return sys.stdout.isatty() and not args.json and not args.no_live


def _print_banner(agent: Agent, args: argparse.Namespace) -> None:
    info = agent.parts.banner()
    out = sys.stderr
    board = f" on simulated {args.sim}" if args.sim else ""
    out.write(f"edge-agent {info['version']} running{board}: device {info['device_id']}\n")
    out.write(f"  model {info['model']} via {info['provider']}, profile {info['profile']}\n")
    out.write(f"  subscribe: {info['subscribe']}\n")
    out.flush()
