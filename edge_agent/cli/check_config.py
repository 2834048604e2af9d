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
        description="Validate a config file exactly as 'run' reads it; prints "
        "'path.to.field: message' per error, exit 2. With --root the board is detected there.",
    )
    parser.add_argument("file", type=Path, help="agent config YAML")
    parser.add_argument(
        "--deep", action="store_true", help="also load the model (an ONNX Runtime session)"
    )
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.config import load_config
    from edge_agent.pipeline.model_check import check_model
    from edge_agent.power.profile_check import profile_checks

    root: Path | None = getattr(args, "root", None)
    overrides = {"root": str(root.absolute())} if root is not None and root != Path("/") else {}
    try:
        config = load_config(args.file, overrides=overrides, extra_checks=profile_checks())
        if args.deep:
            problems = check_model(config)
            if problems:
                raise ConfigError(problems, str(args.file))
    except ConfigError as err:
        for item in err.errors:
            print(str(item))
        print(f"{args.file}: {len(err.errors)} error(s)", file=sys.stderr)
        return 2
    deep = ", model loaded" if args.deep else ""
    print(f"{args.file}: ok (device_id={config.device_id}, cameras={len(config.cameras)}{deep})")
    return 0
