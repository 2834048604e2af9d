"""Applying power profiles: :class:`ProfileController`, the API the CLI, daemon and MQTT use.

Apply = plan, switch, verify. Everything refusable (unknown profile, a mode missing from the
board's conf, a reboot-requiring mode, caps outside the frequency tables) is refused before
anything changes. The switch runs under ``<state_dir>/profile.lock``. If jetson_clocks was
pinning the clocks, its state is stored under the state directory first and the clocks are
pinned again after the switch (jtop turns it off and on around a mode change the same way).
Any failure or mismatch after a change rolls back to the snapshot taken before it. A switch
that needed a reboot is verified like any other once the mode's GPU power-gating masks are
live (the board came back in it); until then it is reported as ``reboot_pending``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from edge_agent.clock import Clock
from edge_agent.config import ProfileConfig
from edge_agent.errors import CommandError, HardwareError, ProfileError, RebootRequired
from edge_agent.hardware import clocks
from edge_agent.hardware.board import detect_board
from edge_agent.hardware.clocks import GpuDevfreq
from edge_agent.hardware.jetson_clocks import JetsonClocks, is_active
from edge_agent.hardware.nvpmodel import NVPMODEL_BIN, Nvpmodel
from edge_agent.hardware.root import Root
from edge_agent.hardware.state_files import clear_symlink
from edge_agent.power.profile_backends import (
    JtopBackend,
    NvpmodelBackend,
    ProfileBackend,
    SwitchPlan,
    SysfsBackend,
    restore_state,
)
from edge_agent.power.profile_fallback import live_fallback as fallback_profile
from edge_agent.power.profile_state import (
    ApplyReport,
    ClockState,
    CurrentProfile,
    Mismatch,
    VerificationFailed,
    describe_changes,
    gating_live,
    load_saved,
    profile_lock,
    read_state,
    save_record,
    verify,
)
from edge_agent.power.profiles import (
    Profile,
    ProfileFile,
    load_profile_files,
    resolve_profiles,
    select_board_file,
)

__all__ = [
    "ApplyReport",
    "CurrentProfile",
    "ProfileController",
    "VerificationFailed",
]

logger = logging.getLogger(__name__)

JETSON_CLOCKS_FILE = "jetson_clocks.conf"
JTOP_SOCKET = "run/jtop.sock"
CUSTOM = "custom"


class ProfileController:
    """Lists, reads, applies and restores the power profiles of one board.

    Args:
        root: the filesystem root (``/`` on a device).
        config: the ``profile`` config section (backend, custom profiles, profiles_dir).
        state_dir: where ``profile.lock``, ``profile.json`` and the jetson_clocks store live.
        clock: the injected clock (switch durations, timestamps).
        board: force a profile file by its ``board`` id instead of device-tree matching.
        profiles_dirs: more directories of profile files (after ``config.profiles_dir``).
    """

    def __init__(
        self,
        root: Root,
        config: ProfileConfig,
        state_dir: Path,
        clock: Clock,
        *,
        board: str | None = None,
        profiles_dirs: Sequence[Path] = (),
    ) -> None:
        self.root = root
        self.config = config
        self.state_dir = state_dir
        self.clock = clock
        self._forced_board = board
        dirs = [config.profiles_dir] if config.profiles_dir is not None else []
        self._dirs = [*dirs, *profiles_dirs]
        self._nvp = Nvpmodel(root, timeout_s=config.switch_timeout_s)
        self._jc = JetsonClocks(root, timeout_s=config.switch_timeout_s)
        self._board: tuple[str, ProfileFile] | None = None
        self._conf_modes: set[str] | None = None
        self._gpu: GpuDevfreq | None = None
        self._gpu_found = False
        self._saved: ClockState | None = None

    # --- board and profiles -----------------------------------------------------------------

    def _nvpmodel(self) -> Nvpmodel | None:
        """The nvpmodel runner, None on boards without it.

        Raises:
            CommandError: the binary exists but cannot be executed (permission denied).
        """
        if self._nvp.available():
            return self._nvp
        if self.root.exists(NVPMODEL_BIN):
            path = self.root.display(NVPMODEL_BIN)
            raise CommandError([path], "permission denied (not executable by this user)")
        return None

    def _gpu_devfreq(self) -> GpuDevfreq | None:
        if not self._gpu_found:
            self._gpu = clocks.find_gpu_devfreq(self.root)
            self._gpu_found = True
        return self._gpu

    def board_file(self) -> tuple[str, ProfileFile]:
        """The profile file matching this board, as ``(source, file)``.

        Raises:
            ProfileError: no file matches (naming model and compatible). ConfigError: a profile
                file is malformed.
        """
        if self._board is None:
            files = load_profile_files(self._dirs)
            info = detect_board(self.root)
            conf_modes: set[str] | None = None
            # conf_path() follows the /etc/nvpmodel.conf link inside the root.
            if self._nvp.conf_path().is_file():
                conf_modes = {m.name for m in self._nvp.load_conf().modes}
            self._conf_modes = conf_modes
            self._board = select_board_file(
                files,
                model=info.model,
                compatible=info.compatible,
                conf_modes=conf_modes,
                forced_board=self._forced_board,
            )
            logger.debug("profile file %s for board %r", self._board[0], info.model)
        return self._board

    def profiles(self) -> list[Profile]:
        """This board's profiles, file order, then the config's custom profiles."""
        source, parsed = self.board_file()
        return resolve_profiles(source, parsed, self.config.custom, self._conf_modes)

    def profile(self, name: str) -> Profile:
        """One profile by name.

        Raises:
            ProfileError: unknown name; the message lists the valid ones.
        """
        found = self.profiles()
        for profile in found:
            if profile.name == name:
                return profile
        valid = ", ".join(p.name for p in found)
        raise ProfileError(f"unknown profile {name!r} for {self.board_file()[1].board}: {valid}")

    # --- reading ----------------------------------------------------------------------------

    def read_state(self, *, mode_from_status: bool = False) -> ClockState:
        """Read the mode (``nvpmodel -q``, or its status file) and the clocks now."""
        return read_state(
            self.root,
            self._nvpmodel(),
            self._gpu_devfreq(),
            is_active(self.root),
            mode_from_status=mode_from_status,
        )

    def _matches(self, profile: Profile, state: ClockState, *, live_in: str | None = None) -> bool:
        mode = profile.nvpmodel_mode if state.mode_name is not None else None
        if live_in is not None and live_in == state.mode_name:
            mode = None  # its caps were applied as a live fallback inside this mode
        return not verify(self.root, profile, profile.clocks, mode, state)

    def _match(self, state: ClockState) -> str:
        profiles = self.profiles()
        saved = load_saved(self.state_dir) or {}
        first = [p for p in profiles if p.name == saved.get("profile")]
        # A clocks-only profile matches too many states; it counts only when it was applied.
        rest = [p for p in profiles if p.nvpmodel_mode is not None and p not in first]
        live_in = saved.get("nvpmodel_mode") if saved.get("live_fallback_for") else None
        for profile in first:
            if self._matches(profile, state, live_in=live_in):
                return profile.name
        for profile in rest:
            if self._matches(profile, state):
                return profile.name
        return CUSTOM

    def current(self) -> CurrentProfile:
        """The current mode, clocks and jetson_clocks state, and the profile they match."""
        state = self.read_state()
        return CurrentProfile(self._match(state), self.board_file()[1].board, state)

    # --- switching --------------------------------------------------------------------------

    def _backend(self, profile: Profile, nvp: Nvpmodel | None) -> ProfileBackend:
        choice = self.config.backend
        if profile.nvpmodel_mode is None or choice == "sysfs":
            return SysfsBackend(self.root, self._gpu_devfreq())
        if choice == "jtop":
            if not self.root.exists(JTOP_SOCKET) or nvp is None:
                raise HardwareError(
                    f"profile.backend is jtop but {self.root.display(JTOP_SOCKET)} or nvpmodel "
                    "is missing (is jtop.service running?)"
                )
            return JtopBackend(nvp, self.clock, self.config.switch_timeout_s)
        if nvp is not None:
            return NvpmodelBackend(nvp)
        if choice == "nvpmodel":
            raise HardwareError(f"profile.backend is nvpmodel but {NVPMODEL_BIN} is missing")
        return SysfsBackend(self.root, self._gpu_devfreq())

    def _rollback(
        self,
        nvp: Nvpmodel | None,
        before: ClockState,
        jc_file: Path | None,
        *,
        why: Literal["rollback", "restore"],
    ) -> list[str]:
        errors = restore_state(self.root, nvp, self._gpu_devfreq(), before)
        if jc_file is not None:
            try:
                self._jc.restore(jc_file)
            except HardwareError as err:
                errors.append(f"jetson_clocks --restore: {err}")
        try:
            left = describe_changes(before, self.read_state(mode_from_status=True))
        except HardwareError as err:
            errors.append(f"cannot read back after rollback: {err}")
        else:
            errors.extend(f"still differs: {line}" for line in left)
        target = before.mode_name or "the previous clocks"
        if errors:
            logger.error("%s incomplete: %s", why, "; ".join(errors))
        elif why == "restore":  # the daemon's ordinary shutdown, not a failure
            logger.info("restored %s", target)
        else:
            logger.warning("rolled back to %s", target)
        return errors

    @staticmethod
    def _rollback_text(errors: list[str]) -> str:
        if not errors:
            return "rolled back to the previous state"
        return "ROLLBACK INCOMPLETE:\n  " + "\n  ".join(errors)

    def apply(
        self, name: str, *, allow_reboot: bool = False, live_fallback: bool = False
    ) -> ApplyReport:
        """Switch to a profile and verify it; roll back on any failure.

        With ``live_fallback``, a preset whose mode needs a reboot (and ``allow_reboot`` off)
        gets its clock caps applied through sysfs inside the current mode instead, when they
        are reachable there (see :mod:`edge_agent.power.profile_fallback`); the report's
        ``fallback_for`` names the mode it stood in for, and a WARNING names both.

        Raises:
            ProfileError: unknown profile, no file for this board, mode not in the conf, caps
                outside the tables; nothing changed.
            RebootRequired: the mode needs a reboot and ``allow_reboot`` is False (and no live
                fallback was asked for or reachable); nothing changed.
            HardwareError: the switch or the read-back failed (VerificationFailed for a
                mismatch); the previous state was restored.
        """
        profile = self.profile(name)
        try:
            return self._apply(profile, allow_reboot=allow_reboot)
        except RebootRequired as err:
            nvp = self._nvpmodel()
            if allow_reboot or not live_fallback or nvp is None:
                raise
            state = self.read_state(mode_from_status=True)
            fallback = fallback_profile(profile, nvp.load_conf(), state.mode_id, err)
        logger.warning(
            "profile %s: nvpmodel mode %s needs a reboot and allow_reboot is off; applying its "
            "clock caps live inside %s instead (the GPU power gating stays as in %s)",
            name,
            profile.nvpmodel_mode,
            state.mode_name,
            state.mode_name,
        )
        return self._apply(fallback, allow_reboot=False, fallback_for=profile.nvpmodel_mode)

    def _apply(
        self, profile: Profile, *, allow_reboot: bool, fallback_for: str | None = None
    ) -> ApplyReport:
        name = profile.name
        start = self.clock.monotonic()
        with profile_lock(self.state_dir):
            nvp = self._nvpmodel()
            backend = self._backend(profile, nvp)
            before = self.read_state(mode_from_status=True)
            previous = self._match(before)
            plan = backend.plan(profile, before, allow_reboot)
            jc_file = self._store_jetson_clocks(before)
            try:
                backend.switch(plan)
                # The masks change only at boot: live already means the board came back in it.
                if plan.reboot and not gating_live(nvp, plan.mode_id):
                    return self._reboot_report(plan, previous, start)
                if jc_file is not None:
                    self._jc.pin()
                after = self.read_state()
            except RebootRequired:
                self._rollback(nvp, before, jc_file, why="rollback")
                raise
            except HardwareError as err:
                text = self._rollback_text(self._rollback(nvp, before, jc_file, why="rollback"))
                raise HardwareError(f"switching to {name} failed: {err}\n{text}") from err
            mismatches = verify(self.root, profile, plan.caps, plan.mode_name, after)
            if before.jetson_clocks_active and not after.jetson_clocks_active:
                mismatches.append(Mismatch("jetson_clocks", "pinned", "active", "inactive"))
            if mismatches:
                errors = self._rollback(nvp, before, jc_file, why="rollback")
                lines = "\n  ".join(str(m) for m in mismatches)
                raise VerificationFailed(
                    f"profile {name} not verified:\n  {lines}\n{self._rollback_text(errors)}",
                    mismatches,
                    errors,
                )
            if self._saved is None:
                self._saved = before
            report = ApplyReport(
                profile=name,
                previous=previous,
                backend=backend.name,
                changes=describe_changes(before, after),
                duration_s=self.clock.monotonic() - start,
                verified=True,
                mode=plan.mode_name if fallback_for is None else after.mode_name,
                state=after.to_dict(),
                fallback_for=fallback_for,
            )
            self._persist(report)
        logger.info("profile %s applied and verified (%s)", name, ", ".join(report.changes))
        return report

    def _store_jetson_clocks(self, before: ClockState) -> Path | None:
        if not before.jetson_clocks_active or not self._jc.available():
            return None
        path = self.state_dir / JETSON_CLOCKS_FILE
        clear_symlink(path)  # jetson_clocks --store writes as root, following links
        self._jc.store(path, overwrite=True)
        return path

    def _reboot_report(self, plan: SwitchPlan, previous: str, start: float) -> ApplyReport:
        report = ApplyReport(
            profile=plan.profile.name,
            previous=previous,
            backend=plan.backend,
            changes=[f"nvpmodel mode {plan.mode_name} ({plan.mode_id}) takes effect after reboot"],
            duration_s=self.clock.monotonic() - start,
            verified=False,
            mode=plan.mode_name,
            reboot_pending=True,
        )
        self._persist(report)
        return report

    def _persist(self, report: ApplyReport) -> None:
        record = report.to_dict()
        record["board"] = self.board_file()[1].board
        record["applied_at"] = self.clock.wall()
        save_record(self.state_dir, record)

    def restore_saved(self) -> ApplyReport | None:
        """Put back the state from before this controller's first switch (daemon shutdown).

        Returns None when this controller never switched.

        Raises:
            HardwareError: part of the state could not be restored (listed).
        """
        if self._saved is None:
            return None
        saved = self._saved
        start = self.clock.monotonic()
        with profile_lock(self.state_dir):
            before = self.read_state()
            previous = self._match(before)
            errors = self._rollback(self._nvpmodel(), saved, None, why="restore")
            after = self.read_state()
        if errors:
            raise HardwareError("restoring the saved profile failed:\n  " + "\n  ".join(errors))
        self._saved = None
        name = self._match(after)
        report = ApplyReport(
            profile=name,
            previous=previous,
            backend="restore",
            changes=describe_changes(before, after),
            duration_s=self.clock.monotonic() - start,
            verified=True,
            mode=after.mode_name,
            state=after.to_dict(),
        )
        self._persist(report)
        return report
