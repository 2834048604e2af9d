"""``edge-agent run``: config, optional simulated board, live view and the summary.

This is the CLI's ``--sim`` path, the one place outside tests and tools that imports
``edge_agent.sim``: it creates a simulated board, starts its power model and hands the
daemon the board's root plus the engine-time stretch for the current clocks.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_agent.agent_parts import PipelineHooks
from edge_agent.clock import SystemClock
from edge_agent.config import AgentConfig, parse_yaml, validate_config
from edge_agent.daemon import Agent
from edge_agent.errors import ConfigError, FieldError, InferenceError
from edge_agent.live_view import LiveView, print_summary

logger = logging.getLogger(__name__)

DEMO_BROKER_PORT = 1883


def demo_config() -> dict[str, Any]:
    """The config used when ``run`` gets no ``--config``: the demo on the embedded broker."""
    return {"mqtt": {"host": "embedded", "port": DEMO_BROKER_PORT}, "profile": {"initial": "maxq"}}


def sim_state_dir(board: str) -> Path:
    """``$XDG_STATE_HOME/edge-agent/sim-<board>`` (default ``~/.local/state/...``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge-agent" / f"sim-{board}"


def build_config(args: argparse.Namespace, sim_root: Path | None = None) -> AgentConfig:
    """The config from ``--config`` (or the demo), with ``--sim`` and ``--state-dir`` applied.

    Raises:
        ConfigError: the file or the result is invalid (the CLI exits 2).
    """
    if args.config is not None:
        try:
            text = args.config.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(
                [FieldError("(file)", f"cannot read {args.config}: {err.strerror}")]
            ) from err
        raw = parse_yaml(text, str(args.config))
        base: Path | None = args.config.parent.resolve()
        source = str(args.config)
    else:
        raw, base, source = demo_config(), None, "(demo config)"
    root_arg = getattr(args, "root", Path("/"))
    if sim_root is None and root_arg != Path("/"):
        raw["root"] = str(root_arg)  # --root wins over the file, as for every subcommand
    if sim_root is not None:
        raw["root"] = str(sim_root)
        if args.state_dir is None and raw.get("state_dir") is None:
            # The simulated board is thrown away at exit; its outbox must outlive it so a
            # crash or an undelivered backlog is replayed by the next run.
            raw["state_dir"] = str(sim_state_dir(args.sim))
        power = dict(raw.get("power") or {})
        if power.get("monitor", "auto") == "auto":
            power["monitor"] = "sim"
        raw["power"] = power
        if args.config is None:
            # The demo's maxq may change the GPU power-gating mask (Orin Nano: 25W -> 7W); the
            # throwaway simulated board reboots at once. A real board never gets this default.
            raw["profile"] = {**raw["profile"], "allow_reboot": True}
    if args.state_dir is not None:
        raw["state_dir"] = str(args.state_dir)
    return validate_config(raw, source=source, base_dir=base)


@contextlib.contextmanager
def simulated_board(board: str, clock: SystemClock) -> Iterator[tuple[Path, PipelineHooks]]:
    """Create a simulated board in a throwaway folder and run its power model."""
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
    config = build_config(args)  # validate before touching hardware or the simulator
    if args.sim:
        from edge_agent.sim import board_names

        if args.sim not in board_names():
            raise ConfigError(
                [
                    FieldError(
                        "--sim", f"unknown board {args.sim!r}; valid: {', '.join(board_names())}"
                    )
                ]
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
            finally:
                agent.shutdown()
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
