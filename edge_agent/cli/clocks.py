"""``edge-agent clocks pin | unpin | show [--json]``: jetson_clocks, undoable.

``pin`` stores the clock state under the state directory, then runs jetson_clocks; ``unpin``
restores that state (``jetson_clocks --restore``); ``show`` prints the clocks and whether they
are pinned. Exit codes: 0 done (or already so), 1 runtime failure (no jetson_clocks, it failed,
the clocks do not read back as asked, nothing stored to unpin), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge_agent.cli.profile import default_state_dir
from edge_agent.errors import HardwareError, ProfileError

EXIT_OK = 0
EXIT_RUNTIME = 1


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``clocks`` subcommand."""
    parser = sub.add_parser(
        "clocks",
        parents=[common],
        help="pin clocks at their maximum (jetson_clocks), unpin them, or show them",
        description=(
            "pin: store the clock state, then run jetson_clocks; unpin: restore the stored "
            "state (jetson_clocks --restore); show: the clocks and whether they are pinned."
        ),
    )
    parser.add_argument("action", choices=["pin", "unpin", "show"], help="what to do")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where the stored state lives (default: $STATE_DIRECTORY, else "
        "<root>/var/lib/edge-agent)",
    )
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    # Lazy: the hardware and power modules; --help stays fast.
    from edge_agent.hardware.root import Root
    from edge_agent.power import clock_pin

    root = Root(Path(args.root))
    state_dir = args.state_dir or default_state_dir(Path(args.root))
    try:
        if args.action == "show":
            return _show(clock_pin.show(root, state_dir), as_json=args.json)
        action = clock_pin.pin if args.action == "pin" else clock_pin.unpin
        outcome = action(root, state_dir)
    except (HardwareError, ProfileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    if args.json:
        print(
            json.dumps(
                {
                    "pinned": outcome.pinned,
                    "changed": outcome.changed,
                    "stored": str(outcome.store) if outcome.store.is_file() else None,
                    "message": outcome.message,
                }
            )
        )
    else:
        print(outcome.message)
    return EXIT_OK


def _mhz(value: int | None, scale: float) -> str:
    return "n/a" if value is None else f"{value * scale / 1e6:g}"


def _show(data: dict[str, Any], *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(data))
        return EXIT_OK
    print(f"pinned:     {'yes' if data['pinned'] else 'no'} (read from {data['source']})")
    if data["stored"]:
        print(f"stored:     {data['stored']} (clocks unpin restores it)")
    if data["power_mode"]:
        print(f"power mode: {data['power_mode']}")
    print("clock       min MHz   max MHz   cur MHz")
    for cpu in data["cpus"]:
        if not cpu["online"]:
            print(f"cpu{cpu['cpu']:<8} offline")
            continue
        row = [_mhz(cpu[k], 1000) for k in ("min_khz", "max_khz", "cur_khz")]
        print(f"cpu{cpu['cpu']:<8} {row[0]:>7}   {row[1]:>7}   {row[2]:>7}")
    for name in ("gpu", "emc"):
        clock = data[name]
        if clock is not None:
            row = [_mhz(clock[k], 1) for k in ("min_hz", "max_hz", "cur_hz")]
            print(f"{name.upper():<11} {row[0]:>7}   {row[1]:>7}   {row[2]:>7}")
    return EXIT_OK
