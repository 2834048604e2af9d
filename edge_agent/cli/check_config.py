"""``edge-agent check-config FILE``: validate a config and print every error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edge_agent.errors import ConfigError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``check-config`` subcommand."""
    parser = sub.add_parser(
        "check-config",
        parents=[common],
        help="validate a config file",
        description="Validate a config file; prints 'path.to.field: message' per error, exit 2.",
    )
    parser.add_argument("file", type=Path, help="agent config YAML")
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.config import load_config

    try:
        config = load_config(args.file)
    except ConfigError as err:
        for item in err.errors:
            print(str(item))
        print(f"{args.file}: {len(err.errors)} error(s)", file=sys.stderr)
        return 2
    print(f"{args.file}: ok (device_id={config.device_id}, cameras={len(config.cameras)})")
    return 0
