"""The ``edge-agent`` command line.

Each subcommand lives next to the code it drives, in a small ``cli_*.py`` module that only
imports argparse at import time and registers itself here; handlers import their
implementation lazily so ``edge-agent check-config`` does not load onnxruntime.
Exit codes: 0 ok, 1 runtime failure, 2 usage or invalid input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from edge_agent import __version__
from edge_agent.cli import (
    bench,
    check_config,
    clocks,
    fleet,
    optimize,
    power,
    profile,
    run,
    sim,
    status,
)
from edge_agent.errors import ConfigError, EdgeAgentError

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--root",
        type=Path,
        default=argparse.SUPPRESS,
        help="filesystem root of the board (default /; a simulated board's folder)",
    )
    common.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more logging"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""

    common = _common_parser()
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Power-aware inference agent for NVIDIA Jetson devices.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (
        run,
        profile,
        clocks,
        power,
        check_config,
        sim,
        optimize,
        bench,
        status,
        fleet,
    ):
        module.register(sub, common)
    return parser


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted.

    A handler bound to the stream at configuration time keeps writing to it after a caller
    (a test's capture, an embedding program) has swapped and closed it.
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


# Libraries whose INFO lines describe their own internals (amqtt's broker sessions, the
# `transitions` state machine it drives): shown from -vv on, not at -v.
CHATTY_LOGGERS = ("amqtt", "transitions")


def configure_logging(verbosity: int) -> None:
    """Configure logging once; journald adds timestamps under systemd."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(threadName)s] %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbosity >= 2 else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    configure_logging(int(getattr(args, "verbose", 0) or 0))
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_RUNTIME
    except ConfigError as err:
        for item in err.errors:
            print(str(item), file=sys.stderr)
        return EXIT_USAGE
    except EdgeAgentError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        return 130
    return code


def _silence_stdout() -> None:
    """After the reader went away (``edge-agent profile list | head -1``): no traceback.

    The Python docs' recipe (library/signal.html, "Note on SIGPIPE"): point stdout at
    /dev/null so the flush at interpreter exit has nowhere to fail, and exit 1.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # an in-process caller's replacement stream; nothing to redirect
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
