"""``edge-agent sim``: create simulated Jetson board trees for ``--root``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``sim`` subcommand with ``create`` and ``list``."""
    parser = sub.add_parser(
        "sim",
        parents=[common],
        help="create simulated Jetson boards",
        description="Create a simulated Jetson board tree to use with --root.",
    )
    actions = parser.add_subparsers(dest="sim_command", metavar="ACTION")
    create = actions.add_parser(
        "create",
        parents=[common],
        help="write a simulated board tree",
        description="Write a board tree (sysfs, nvpmodel, jetson_clocks) into DIR.",
    )
    create.add_argument("--board", required=True, metavar="B", help="board name (see 'sim list')")
    create.add_argument(
        "--release", metavar="R", help="L4T release, e.g. r36.4 (default: the board's own)"
    )
    create.add_argument("dir", type=Path, metavar="DIR", help="where to write the tree")
    create.set_defaults(func=_create)
    listing = actions.add_parser("list", parents=[common], help="list the simulated boards")
    listing.set_defaults(func=_list)
    parser.set_defaults(func=_usage, sim_parser=parser)


def _usage(args: argparse.Namespace) -> int:
    args.sim_parser.print_help(sys.stderr)
    return 2


def _list(args: argparse.Namespace) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.sim.releases import matrix_rows

    for name, release, spec, default in matrix_rows():
        mark = "*" if default else " "
        print(f"{name:18} {release + mark:7} {spec.model} ({spec.conf_name})")
    print("* = default release")
    return 0


def _create(args: argparse.Namespace) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.hardware.nvpmodel import parse_conf
    from edge_agent.sim.boards import BOARDS, board_names
    from edge_agent.sim.tree import create_board

    if args.board not in BOARDS:
        print(
            f"error: unknown board {args.board!r}; valid boards: {', '.join(board_names())}",
            file=sys.stderr,
        )
        return 2
    try:
        board = create_board(args.board, args.dir, args.release)
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    except FileExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    spec = board.spec
    mode = parse_conf(spec.conf_text).default_mode
    release, major, minor = spec.l4t
    print(f"created {spec.name} at {board.root}")
    print(f"  model:    {spec.model} (L4T R{release}.{major}.{minor})")
    print(f"  rails:    {', '.join(spec.rail_names)}")
    print(f"  nvpmodel: /etc/nvpmodel/{spec.conf_name}, mode {mode.name} ({mode.id})")
    print("  tools:    usr/sbin/nvpmodel, usr/bin/jetson_clocks, usr/bin/tegrastats")
    print(f"try: edge-agent power --root {board.root}")
    return 0
