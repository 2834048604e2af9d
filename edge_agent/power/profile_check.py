"""Config checks that need the profile files: ``profile.initial``, ``board.name``, custom caps.

``check-config`` and ``run`` both pass :func:`profile_checks` to ``validate_config``, so both
refuse the same configs. The board comes from ``board.name`` when set, else from the device
tree under the config's root. On ``/`` without a Jetson device tree (an operator's workstation
checking a file for a device), the profile name is checked against every board's files; with
another root (``--root``, a simulated board) the board must be covered by a profile file.
"""

from __future__ import annotations

from pathlib import Path

from edge_agent.clock import SystemClock
from edge_agent.config import AgentConfig, ExtraCheck
from edge_agent.errors import ConfigError, FieldError, HardwareError, ProfileError
from edge_agent.hardware.board import detect_board
from edge_agent.hardware.root import Root
from edge_agent.power.profile_apply import ProfileController
from edge_agent.power.profiles import (
    ProfileFile,
    check_profile_name,
    load_profile_files,
    resolve_profiles,
)

__all__ = ["check_profile_config", "profile_checks"]


def profile_checks() -> tuple[ExtraCheck, ...]:
    """The checks to hand ``validate_config``/``load_config``."""
    return ((("root", "board", "profile"), check_profile_config),)


def check_profile_config(config: AgentConfig) -> list[FieldError]:
    """Problems with ``board.name``, ``profile.initial`` and ``profile.custom`` for this board."""
    profile = config.profile
    bad_names = []
    for name in profile.custom:
        try:
            check_profile_name(name)
        except ValueError as err:
            bad_names.append(FieldError(f"profile.custom.{name}", str(err)))
    if bad_names:
        return bad_names
    if profile.profiles_dir is not None and not profile.profiles_dir.is_dir():
        return []  # the file checks report the missing directory
    root = Root(config.root)
    forced = config.board.name
    try:
        if forced is None and not detect_board(root).is_jetson:
            # A workstation checking a device's file: any board's name will do.
            extra = [profile.profiles_dir] if profile.profiles_dir is not None else []
            return _check_against_all(config, load_profile_files(extra))
        # The controller only reads here (device tree, nvpmodel.conf); nothing is written.
        controller = ProfileController(
            root, profile, config.resolved_state_dir, SystemClock(), board=forced
        )
        source, parsed = controller.board_file()
    except ConfigError as err:
        return [FieldError("profile.profiles_dir", str(e)) for e in err.errors]
    except (ProfileError, HardwareError) as err:
        if forced is not None:
            return [FieldError("board.name", str(err))]
        if profile.initial is not None:
            return [FieldError("profile.initial", f"{err}; no profile can be applied")]
        return []
    try:
        names = [p.name for p in resolve_profiles(source, parsed, profile.custom)]
    except ProfileError as err:
        return [FieldError("profile.custom", str(err))]
    if profile.initial is not None and profile.initial not in names:
        return [
            FieldError(
                "profile.initial",
                f"unknown profile {profile.initial!r} for {parsed.board} "
                f"(valid: {', '.join(names)})",
            )
        ]
    return []


def _check_against_all(
    config: AgentConfig, files: list[tuple[str, ProfileFile]]
) -> list[FieldError]:
    """``profile.initial`` against every board's files; on a root other than ``/`` there
    is no board to apply it to."""
    initial = config.profile.initial
    if initial is None:
        return []
    if config.root != Path("/"):
        reason = f"no Jetson board found under {config.root} (no device-tree model or L4T release)"
        return [FieldError("profile.initial", f"{reason}; no profile can be applied")]
    names = set(config.profile.custom)
    for _, parsed in files:
        names.update(parsed.profiles)
    if initial in names:
        return []
    return [
        FieldError(
            "profile.initial",
            f"unknown profile {initial!r}: no board's profile file defines it "
            f"(known: {', '.join(sorted(names))})",
        )
    ]
