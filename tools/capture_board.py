"""Capture a Jetson's board files into a folder that every edge-agent command takes as --root.

Run on the customer's board (as root, so that root-only files and ``jetson_clocks --show``
are captured too), then send the folder or the tarball to support:

    sudo python tools/capture_board.py --root / --out /tmp/board-capture --tar /tmp/board.tar.gz
    edge-agent power --root /tmp/board-capture          # on the support machine

Only the files edge-agent reads are copied (see edge_agent/hardware/capture.py); nothing is
written under --root. ``DIR/captured/manifest.json`` lists what was copied, what could not be
read (with its errno) and the CLI outputs. The last line printed is a one-line summary.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge_agent.errors import EdgeAgentError  # noqa: E402
from edge_agent.hardware.capture import (  # noqa: E402
    COMMAND_TIMEOUT_S,
    MANIFEST_REL,
    capture_board,
    write_tar,
)
from edge_agent.hardware.root import Root  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path("/"), help="board root (default /)")
    parser.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    parser.add_argument("--tar", type=Path, help="also pack the capture into this .tar.gz")
    parser.add_argument(
        "--no-commands",
        action="store_true",
        help="do not run nvpmodel -q / jetson_clocks --show",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=COMMAND_TIMEOUT_S,
        help=f"seconds per CLI run (default {COMMAND_TIMEOUT_S:g})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the capture; exit 0 on success, 1 on a refused or failed capture."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s %(message)s",
    )
    try:
        report = capture_board(
            Root(args.root),
            args.out,
            run_cli=not args.no_commands,
            command_timeout_s=args.timeout,
        )
        if args.tar is not None:
            write_tar(args.out, args.tar)
    except (EdgeAgentError, OSError) as err:
        print(f"capture failed: {err}", file=sys.stderr)
        return 1
    for item in report.unreadable:
        print(f"unreadable: {item.path} ({item.errno}: {item.message})")
    for cmd in report.commands:
        state = "ok" if cmd.error is None else cmd.error
        print(f"command: {' '.join(cmd.argv)}: {state}")
    tar_note = f" tar={args.tar}" if args.tar is not None else ""
    print(
        f"captured={len(report.copied)} links={len(report.links)} "
        f"unreadable={len(report.unreadable)} commands={len(report.commands)} "
        f"out={args.out} manifest={args.out / MANIFEST_REL}{tar_note}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
