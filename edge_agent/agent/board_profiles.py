"""The board's DVFS profiles as the agent sees them: the initial one, switches, the one in force.

A board without a profile file (a dGPU host, an unknown Jetson) is a state, not a crash:
``error`` says why and the agent runs on whatever clocks the board has.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from edge_agent.clock import Clock
from edge_agent.config_sections import ProfileConfig
from edge_agent.errors import ConfigError, EdgeAgentError, HardwareError, ProfileError
from edge_agent.hardware.root import Root
from edge_agent.power.profile_apply import ProfileController

logger = logging.getLogger(__name__)

PROFILE_REFRESH_S = 5.0


class BoardProfiles:
    """Opens the board's profiles, applies the initial one, switches, and caches the current one.

    Args:
        root: the filesystem root the board lives under.
        section: the ``profile`` config section (``allow_reboot`` follows reloads through
            :attr:`section`).
        state_dir: where the DVFS state saved before the first switch lives.
        clock: the injected clock (the current-profile cache's age).
        board: the configured board name, or None to detect it.
    """

    def __init__(
        self,
        root: Root,
        section: ProfileConfig,
        state_dir: Path,
        clock: Clock,
        board: str | None,
    ) -> None:
        self.root = root
        self.section = section
        self.state_dir = state_dir
        self.clock = clock
        self.board = board
        self.controller: ProfileController | None = None
        self.error: str | None = None
        self.nvpmodel_mode: str | None = None
        self._names: list[str] = []
        self._lock = threading.Lock()
        self._cache: tuple[float, str | None] | None = None

    def start(self) -> None:
        """Open the profiles and apply ``section.initial``; a failure is kept in ``error``."""
        try:
            controller = ProfileController(
                self.root, self.section, self.state_dir, self.clock, board=self.board
            )
            self._names = [p.name for p in controller.profiles()]
        except (ProfileError, HardwareError, ConfigError) as err:
            # No profile file for this board (a dGPU host, an unknown Jetson): a state, not a
            # crash. The agent runs on whatever clocks the board has.
            self.error = f"power profiles unavailable: {err}"
            logger.warning("%s", self.error)
            return
        self.controller = controller
        initial = self.section.initial
        if initial is None:
            return
        try:
            # Unattended start: a preset that needs a reboot gets its caps inside the current
            # mode (a WARNING names both) rather than no profile at all.
            report = self.controller.apply(
                initial, allow_reboot=self.section.allow_reboot, live_fallback=True
            )
            logger.info("profile %s applied in %.0f ms", initial, report.duration_s * 1000)
            self._remember(report.profile)
            self.nvpmodel_mode = report.mode
        except (ProfileError, HardwareError) as err:
            # Run on the current profile rather than crash-looping under systemd.
            self.error = f"initial profile {initial!r} failed: {err}"
            logger.error("%s; running on the current profile", self.error)

    def names(self) -> list[str]:
        """The profiles this board has (empty when none could be opened)."""
        return list(self._names)

    def apply(self, name: str, live_fallback: bool = False) -> dict[str, Any]:
        """Switch to ``name``: ``{"profile", "applied", "error"}``."""
        if self.controller is None:
            return {"profile": None, "applied": False, "error": self.error or "no profiles"}
        try:
            report = self.controller.apply(
                name, allow_reboot=self.section.allow_reboot, live_fallback=live_fallback
            )
        except (EdgeAgentError, ValueError) as err:
            self._forget()  # a failed switch rolled back; read what the board has
            return {"profile": self.current(), "applied": False, "error": str(err)}
        self._remember(report.profile)
        self.nvpmodel_mode = report.mode
        return {"profile": report.profile, "applied": True, "error": None}

    def current(self) -> str | None:
        """The profile the board is in, re-read at most every few seconds.

        Reading it runs ``nvpmodel -q``, which can take seconds under GPU load; the live view,
        STATUS= and telemetry all ask, so the answer is cached and a switch updates it.
        """
        if self.controller is None:
            return None
        now = self.clock.monotonic()
        with self._lock:
            cached = self._cache
        if cached is not None and now - cached[0] < PROFILE_REFRESH_S:
            return cached[1]
        try:
            current = self.controller.current()
            name: str | None = current.name
            self.nvpmodel_mode = current.nvpmodel_mode
        except (HardwareError, ProfileError) as err:
            logger.debug("current profile unreadable: %s", err)
            name = None
        self._remember(name)
        return name

    def restore(self) -> None:
        """Put back the DVFS state saved before the first switch, if the section says so."""
        if self.controller is None or not self.section.restore_on_exit:
            return
        try:
            self.controller.restore_saved()
        except (ProfileError, HardwareError) as err:
            logger.error("could not restore the DVFS state: %s", err)
        self._forget()

    def _forget(self) -> None:
        with self._lock:
            self._cache = None

    def _remember(self, name: str | None) -> None:
        with self._lock:
            self._cache = (self.clock.monotonic(), name)
