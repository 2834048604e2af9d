"""The governor policy in force, and the worker that runs it, changed without a restart.

``profile.policy`` comes from the config file at start; an MQTT ``policy/set`` command, a
fleet push or a config reload can change it while the agent runs (:meth:`set_policy`):

- to ``fixed``: the governor thread stops and the profile the section names
  (``profile.initial``) is applied and verified; with none named the clocks stay where they
  are;
- from ``fixed`` to another policy: a governor worker is built on the tables of the nvpmodel
  mode in force and started;
- between two other policies: the running worker takes the new parameters at its next window
  and keeps what it learned.

Every change is an event in telemetry and the log: ``governor: policy <from> -> <to> by <who>``.
:meth:`GovernorControl.in_force` is the policy, who set it and the operating point the worker
holds, for the telemetry ``governor`` object, the status view and the metrics.
A change that cannot be made (no frequency tables, a profile that fails, a schedule naming a
profile the board does not have) is refused and the previous policy stays in force.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from edge_agent.agent.governor_worker import MAX_EVENTS, GovernorWorker
from edge_agent.clock import Clock
from edge_agent.config_sections import ProfileConfig
from edge_agent.errors import GovernorRefused, GovernorUnavailable
from edge_agent.governor.points import OperatingPoint
from edge_agent.governor.policy import params_from_config, unknown_schedule_profiles
from edge_agent.telemetry.policy_command import PolicyOutcome

logger = logging.getLogger(__name__)

BuildFn = Callable[[ProfileConfig], GovernorWorker]
HoldFn = Callable[[str], Mapping[str, Any]]  # apply a profile: {"profile", "applied", "error"}


def describe(config: ProfileConfig) -> str:
    """``slo``, or ``fixed (maxq)`` for a fixed policy holding a profile."""
    if config.policy == "fixed" and config.initial is not None:
        return f"fixed ({config.initial})"
    return config.policy


def point_fields(point: OperatingPoint) -> dict[str, Any]:
    """An operating point as telemetry carries it: its label and its caps."""
    return {
        "label": point.label(),
        "gpu_hz": point.gpu_hz,
        "emc_hz": point.emc_hz,
        "cpu_khz": point.cpu_khz,
    }


class GovernorControl:
    """Owns the ``profile`` section in force and the governor worker that runs it.

    Args:
        config: the ``profile`` section at start.
        build: builds a (not started) worker for a non-fixed section; raises
            GovernorUnavailable when the board cannot be governed.
        hold: applies a profile by name for ``fixed`` (the daemon's profile switch).
        clock: the injected clock (how long a change took).
    """

    def __init__(self, config: ProfileConfig, build: BuildFn, hold: HoldFn, clock: Clock) -> None:
        self.config = config
        self.set_by = "config"  # config, config reload, fleet or mqtt (see policy/state)
        self._build = build
        self._hold = hold
        self._clock = clock
        self.worker: GovernorWorker | None = None
        self.unavailable: str | None = None
        self._events: deque[str] = deque(maxlen=MAX_EVENTS)
        self._lock = threading.RLock()
        self._started = False
        self._stopped = False

    def start(self) -> None:
        """Start the worker for the policy in force (none for ``fixed``).

        A board that cannot be governed runs on its current clocks with one WARNING, as
        missing optional hardware does.
        """
        with self._lock:
            self._started = True
            if self.config.policy == "fixed" or self._stopped:
                return
            try:
                self.worker = self._build(self.config)
            except GovernorUnavailable as err:
                self.unavailable = str(err)
                level = logging.ERROR if isinstance(err, GovernorRefused) else logging.WARNING
                logger.log(level, "governor: %s; policy %s off", err, self.config.policy)
                return
            self.worker.start()

    def stop(self) -> None:
        """Stop the worker; no change is applied after this."""
        with self._lock:
            self._stopped = True
            self._retire_worker()

    def drain_events(self) -> list[str]:
        """Policy changes and the worker's point changes since the last call."""
        with self._lock:
            out = list(self._events)
            self._events.clear()
            if self.worker is not None:
                out.extend(self.worker.drain_events())
        return out

    def in_force(self) -> dict[str, Any]:
        """``{"policy", "set_by"}`` and, while a governor runs, its ``point``
        (:func:`point_fields`); ``preset`` is the profile ``fixed`` holds, when it holds one."""
        with self._lock:
            config, set_by, worker = self.config, self.set_by, self.worker
        doc: dict[str, Any] = {"policy": config.policy, "set_by": set_by}
        if config.policy == "fixed" and config.initial is not None:
            doc["preset"] = config.initial
        if worker is not None:
            doc["point"] = point_fields(worker.state.point)
        return doc

    def note_initial(self, new: ProfileConfig) -> None:
        """Take ``new.initial`` (already applied by the caller) as the profile ``fixed``
        holds, keeping the policy in force."""
        with self._lock:
            self.config = self.config.model_copy(update={"initial": new.initial})

    def set_policy(self, new: ProfileConfig, source: str) -> PolicyOutcome:
        """Put ``new`` (a validated ``profile`` section) in force; ``source`` asked for it
        (``mqtt``, ``fleet``, ``config reload``).

        Returns:
            The outcome: ``error`` None when ``new`` is in force, else why the previous
            policy stays.
        """
        with self._lock:
            if self._stopped:
                return PolicyOutcome("the agent is stopping")
            old = self.config
            if not self._started:  # before start: start() builds what the section needs
                self.config, self.set_by = new, source
                self._note(old, new, source, None)
                return PolicyOutcome()
            start = self._clock.monotonic()
            error = self._to_fixed(old, new) if new.policy == "fixed" else self._to_governed(new)
            if error is not None:
                logger.warning(
                    "governor: policy %s -> %s by %s refused: %s",
                    describe(old),
                    describe(new),
                    source,
                    error,
                )
                return PolicyOutcome(error)
            self.config, self.set_by = new, source
            self._note(old, new, source, self._clock.monotonic() - start)
            return PolicyOutcome()

    def _to_fixed(self, old: ProfileConfig, new: ProfileConfig) -> str | None:
        self._retire_worker()
        if new.initial is None:
            return None
        answer = self._hold(new.initial)
        if answer.get("applied"):
            return None
        error = f"profile.initial: {new.initial}: {answer.get('error') or 'not applied'}"
        if old.policy != "fixed":  # the previous policy stays in force
            self._to_governed(old)
        return error

    def _to_governed(self, new: ProfileConfig) -> str | None:
        params = params_from_config(new.policy, new.initial, new.governor)
        worker = self.worker
        if worker is None:
            try:
                worker = self._build(new)
            except GovernorRefused as err:
                return str(err)
            except GovernorUnavailable as err:
                return f"profile.policy: {new.policy} needs the governor, which is off: {err}"
        refusal = _schedule_refusal(new, worker)
        if refusal is not None:
            return refusal
        if worker is self.worker:
            worker.set_params(params, new.governor.window_s)
        else:
            self.worker = worker
            self.unavailable = None
            worker.start()
        return None

    def _retire_worker(self) -> None:
        worker, self.worker = self.worker, None
        if worker is None:
            return
        worker.stop()
        worker.join(timeout_s=5.0)
        self._events.extend(worker.drain_events())

    def _note(
        self, old: ProfileConfig, new: ProfileConfig, source: str, took: float | None
    ) -> None:
        if old == new:
            return
        text = f"governor: policy {describe(old)} -> {describe(new)} by {source}"
        if new.governor != old.governor and new.policy == old.policy:
            text += " (new parameters)"
        if took is not None:
            text += f"; applied in {took * 1000:.0f} ms"
        logger.info("%s", text)
        self._events.append(text)


def _schedule_refusal(config: ProfileConfig, worker: GovernorWorker) -> str | None:
    """Why ``config``'s schedule cannot run on this board (a profile it lacks), or None."""
    if config.policy != "schedule":
        return None
    known = [p.preset for p in worker.points if p.preset is not None]
    return unknown_schedule_profiles([e.profile for e in config.governor.schedule], known)
