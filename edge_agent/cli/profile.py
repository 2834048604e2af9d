"""``edge-agent profile list | show [--json] | <name> [--live]``: DVFS power profiles.

Exit codes: 0 listed/shown, or applied and verified (with ``--live``, also when a preset's
caps were applied and verified inside the current mode instead of a mode that needs a reboot;
a warning names both); 1 runtime failure (reboot required, nvpmodel or sysfs failure,
verification mismatch after rollback); 2 unknown profile or no profile file for this board.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.clock import SystemClock
from edge_agent.errors import HardwareError, ProfileError, RebootRequired

if TYPE_CHECKING:
    from edge_agent.hardware.root import Root
    from edge_agent.power.profile_apply import ApplyReport, CurrentProfile, ProfileController
    from edge_agent.power.profiles import ClockCaps, Profile

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``profile`` subcommand."""
    parser = sub.add_parser(
        "profile",
        parents=[common],
        help="list, show or apply a DVFS power profile",
        description=(
            "list: the board's profiles (* marks the current one); show: the current mode, "
            "clocks and jetson_clocks state; NAME: switch to a profile and verify it "
            "(exit 0 only when verified)."
        ),
    )
    parser.add_argument("action", metavar="list|show|NAME", help="what to do")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--allow-reboot",
        action="store_true",
        help="switch even when the mode needs a reboot (answers nvpmodel's prompt: reboots!)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="when the preset's mode needs a reboot, apply its clock caps inside the current "
        "mode instead (only where every cap is reachable there; a warning names both)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="lock and state (default: $STATE_DIRECTORY, else <root>/var/lib/edge-agent)",
    )
    parser.add_argument("--profiles-dir", type=Path, help="extra directory of <board>.yaml files")
    parser.add_argument("--config", type=Path, help="agent config (custom profiles, backend)")
    parser.set_defaults(func=_handle)


def default_state_dir(root: Path) -> Path:
    """``$STATE_DIRECTORY`` (systemd; first entry), else ``<root>/var/lib/edge-agent``."""
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.config import default_state_dir as from_env

    return from_env(root, os.environ)


def _controller(args: argparse.Namespace, root: Root) -> ProfileController:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.config import ProfileConfig, load_config
    from edge_agent.power.profile_apply import ProfileController

    config = ProfileConfig()
    board: str | None = None
    if args.config is not None:
        agent = load_config(args.config)
        config, board = agent.profile, agent.board.name
    state_dir = args.state_dir or default_state_dir(Path(args.root))
    extra = [args.profiles_dir] if args.profiles_dir is not None else []
    return ProfileController(
        root, config, state_dir, SystemClock(), board=board, profiles_dirs=extra
    )


def _handle(args: argparse.Namespace) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.hardware.root import Root

    root = Root(Path(args.root))
    try:
        controller = _controller(args, root)
        if args.action == "list":
            return _list(controller, as_json=args.json)
        if args.action == "show":
            return _show(controller.current(), as_json=args.json)
        report = controller.apply(
            args.action, allow_reboot=args.allow_reboot, live_fallback=args.live
        )
    except ProfileError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except RebootRequired as err:
        print(f"error: {err}", file=sys.stderr)
        if not args.live:
            print(
                "hint: --live applies the same clock caps inside the current mode, where they "
                "are reachable there",
                file=sys.stderr,
            )
        return EXIT_RUNTIME
    except HardwareError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    return _applied(report, as_json=args.json)


def _mhz(value: int | str) -> str:
    return value if isinstance(value, str) else f"{value / 1e6:g} MHz"


def _caps_text(caps: ClockCaps) -> str:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.hardware.clocks import format_cpu_range

    parts: list[str] = []
    if caps.gpu_max_hz is not None:
        parts.append(f"GPU {_mhz(caps.gpu_max_hz)}")
    for cluster, khz in caps.cpu_max_khz.items():
        parts.append(f"{cluster} {khz if isinstance(khz, str) else _mhz(khz * 1000)}")
    if caps.cpus_online is not None:
        parts.append(f"CPUs {format_cpu_range(caps.cpus_online)}")
    if caps.emc_max_hz is not None:
        parts.append("EMC uncapped" if caps.emc_max_hz == 0 else f"EMC {_mhz(caps.emc_max_hz)}")
    return ", ".join(parts)


def _list(controller: ProfileController, *, as_json: bool) -> int:
    profiles: list[Profile] = controller.profiles()
    current = controller.current()
    if as_json:
        data = {
            "board": current.board,
            "current": current.name,
            "profiles": [p.to_dict() for p in profiles],
        }
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(f"board: {current.board} (current: {current.name})")
    width = max(len(p.name) for p in profiles)
    for profile in profiles:
        mark = "*" if profile.name == current.name else " "
        mode = profile.nvpmodel_mode or "sysfs"
        print(f"{mark} {profile.name:<{width}}  {mode:<16} {profile.description}")
        print(f"  {'':<{width}}  {'':<16} {_caps_text(profile.clocks)}")
    return EXIT_OK


def _show(current: CurrentProfile, *, as_json: bool) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.hardware.clocks import format_cpu_range

    if as_json:
        print(json.dumps(current.to_dict(), indent=2))
        return EXIT_OK
    state = current.state
    mode = f"{state.mode_name} ({state.mode_id})" if state.mode_name is not None else "n/a"
    print(f"profile:        {current.name}")
    print(f"board:          {current.board}")
    print(f"nvpmodel mode:  {mode}")
    gpu = "n/a" if state.gpu_max_hz is None else _mhz(state.gpu_max_hz)
    print(f"GPU max_freq:   {gpu}")
    print(f"online CPUs:    {format_cpu_range(state.online_cpus())}")
    for cpu in state.cpus:
        if cpu.online and cpu.max_khz is not None:
            print(f"  cpu{cpu.index:<3} max:   {_mhz(cpu.max_khz * 1000)}")
    emc = state.emc_max_hz
    emc_text = "n/a" if emc is None else "uncapped" if emc == 0 else _mhz(emc)
    print(f"EMC cap:        {emc_text}")
    print(f"jetson_clocks:  {'active' if state.jetson_clocks_active else 'inactive'}")
    return EXIT_OK


def _applied(report: ApplyReport, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    elif report.reboot_pending:
        print(f"{report.profile}: {'; '.join(report.changes)}")
    else:
        took = f"{report.duration_s * 1000:.0f} ms"
        print(f"{report.profile}: applied and verified in {took} (was {report.previous})")
        if report.fallback_for is not None:
            print(
                f"  as clock caps inside {report.mode}: its mode {report.fallback_for} "
                "needs a reboot"
            )
        for line in report.changes or ["nothing to change"]:
            print(f"  {line}")
    if report.reboot_pending:
        print("not verified: the board reboots to apply the mode", file=sys.stderr)
        return EXIT_RUNTIME
    return EXIT_OK if report.verified else EXIT_RUNTIME
