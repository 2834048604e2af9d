"""``edge-agent run``: the daemon in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


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
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--state-dir", type=Path, help="override state_dir")
    parser.add_argument("--no-live", action="store_true", help="no live status view")
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    from edge_agent.agent.daemon import run_from_args

    return run_from_args(args)
