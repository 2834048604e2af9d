"""The composition root: build components from config, start, supervise, stop.

Start order: profiles -> power sampler -> MQTT (broker, link, outbox, publisher, commands)
-> pipeline -> reporter -> watchdog. Stop runs in reverse. The supervisor is
``threading.excepthook``: a component thread that raises is logged with its traceback, sets
``stop`` and makes the process exit non-zero so systemd's ``Restart=on-failure`` restarts it.
That hook is the project's only blanket exception handler.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from edge_agent import __version__
from edge_agent.agent.fleet_apply import FleetApplier
from edge_agent.agent.hooks import PipelineHooks
from edge_agent.agent.live_apply import (
    DEFAULT_PROBATION_S,
    START_FAILURES,
    Probation,
    health_failure,
)
from edge_agent.agent.parts import AgentParts
from edge_agent.agent.result_stats import ResultStats, StatsSnapshot
from edge_agent.agent.sdnotify import Notifier
from edge_agent.clock import Clock, SystemClock
from edge_agent.config import AgentConfig
from edge_agent.errors import ConfigError, FieldError
from edge_agent.fleet.health import HealthSample
from edge_agent.fleet.store import FleetStore
from edge_agent.hardware.state_files import prepare_state_dir
from edge_agent.pipeline.opencv_log import follow_python_logging

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
RELOADABLE = ("cameras", "model", "batching", "telemetry")
LIVE_PROFILE_FIELDS = ("initial", "policy", "governor")


@dataclass
class Supervisor:
    """Turns an exception in any component thread into an orderly non-zero stop."""

    stop: threading.Event
    failures: list[str] = field(default_factory=list)
    probation: Probation = field(default_factory=Probation)
    _previous: Callable[[threading.ExceptHookArgs], Any] | None = None

    def install(self) -> None:
        self._previous = threading.excepthook
        threading.excepthook = self._hook

    def uninstall(self) -> None:
        if self._previous is not None:
            threading.excepthook = self._previous
            self._previous = None

    def _hook(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        text = "".join(
            traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
        )
        if self.probation.divert(name, f"{args.exc_type.__name__}: {args.exc_value}"):
            logger.error("thread %s of the new config died; rolling back\n%s", name, text)
            return
        logger.critical("component thread %s died; stopping the agent\n%s", name, text)
        self.failures.append(f"{name}: {args.exc_type.__name__}: {args.exc_value}")
        self.stop.set()


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: the sections applied, or why it was rolled back."""

    status: str  # "applied" | "unchanged" | "rejected" | "rolled_back"
    changed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


def reload_event(outcome: ReloadOutcome, limit: int = 600) -> str:
    """The telemetry event for a reload's outcome (bounded: errors can quote a whole file)."""
    text = f"config reload: {outcome.status}"
    if outcome.changed:
        text += f": {', '.join(outcome.changed)}"
    if outcome.errors:
        text += f": {'; '.join(outcome.errors)}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Agent:
    """One running agent: owns the stop event, the parts and the supervisor."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        reload_source: Callable[[], AgentConfig] | None = None,
        clock: Clock | None = None,
        hooks: PipelineHooks | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.reload_source = reload_source
        self.clock = clock or SystemClock()
        self.hooks = hooks or PipelineHooks()
        self.notifier = notifier or Notifier()
        self.stop = threading.Event()
        self.reload_requested = threading.Event()
        self.probation_s = DEFAULT_PROBATION_S
        self.supervisor = Supervisor(self.stop)
        self.boot_id = uuid.uuid4().hex[:12]
        self._tmpdir_before: str | None = None
        self.stats = ResultStats(self.clock)
        self.first_result = threading.Event()
        self._apply_lock = threading.Lock()
        self.fleet: FleetApplier | None = None
        if config.fleet.enabled:
            self.fleet = FleetApplier(
                config,
                clock=self.clock,
                apply=self.apply_config,
                probe=self.health_sample,
                store=FleetStore(config.resolved_state_dir),
            )
            config = self.fleet.startup_config()
            self.config = config
        self.parts = AgentParts(
            config=config,
            clock=self.clock,
            boot_id=self.boot_id,
            version=__version__,
            stats=self.stats,
            first_result=self.first_result,
            notifier=self.notifier,
            stop=self.stop,
        )
        if self.fleet is not None:
            self.parts.before_connect = self.fleet.attach
            self.parts.config_version = self.fleet.running_versions

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start every component in order; undo what started if one fails."""
        self._tmpdir_before = os.environ.get("TMPDIR")
        check_state_dir(self.config.state_dir or Path("/var/lib/edge-agent"))
        follow_python_logging()
        self.supervisor.install()
        try:
            self.parts.start(self.hooks)
        except BaseException:
            self.parts.shutdown(flush_timeout_s=2.0)
            self.supervisor.uninstall()
            self._restore_tmpdir()
            raise
        if self.fleet is not None:
            self.fleet.start()

    def _restore_tmpdir(self) -> None:
        # The private TMPDIR is the process's while the agent runs; an in-process agent (tests,
        # tools) gives it back, so nothing later writes into a removed state dir.
        if self._tmpdir_before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = self._tmpdir_before
        tempfile.tempdir = None

    def run(
        self, duration_s: float | None = None, on_tick: Callable[[], None] | None = None
    ) -> int:
        """Run until ``stop`` (signal, failure) or ``duration_s``; returns the exit code."""
        deadline = None if duration_s is None else self.clock.monotonic() + duration_s
        tick_s = 0.25
        while not self.stop.is_set():
            timeout = tick_s
            if deadline is not None:
                remaining = deadline - self.clock.monotonic()
                if remaining <= 0:
                    break
                timeout = min(tick_s, remaining)
            if self.stop.wait(timeout):
                break
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload_from_file()
            if on_tick is not None:
                on_tick()
        return EXIT_RUNTIME if self.supervisor.failures else EXIT_OK

    def shutdown(self, flush_timeout_s: float = 5.0) -> None:
        """SIGTERM path: stop capture, finish batches, flush, publish stopped, restore DVFS."""
        self.notifier.stopping()
        if self.fleet is not None:
            self.fleet.stop()
            self.fleet.join(timeout_s=30.0)
        self.parts.shutdown(flush_timeout_s=flush_timeout_s)
        self.supervisor.uninstall()
        self._restore_tmpdir()
        self.notifier.close()

    def summary(self) -> dict[str, Any]:
        return self.parts.summary()

    def snapshot(self) -> StatsSnapshot:
        return self.stats.snapshot()

    def health_sample(self, since_mono: float) -> HealthSample:
        """The fleet health gate's view: results and p95 since ``since_mono``, cameras, deaths."""
        results, p95 = self.stats.since(since_mono)
        pipeline = self.parts.pipeline
        cameras = {}
        if pipeline is not None:
            cameras = {name: cam["state"] for name, cam in pipeline.stats()["cameras"].items()}
        return HealthSample(results, cameras, p95, len(self.supervisor.failures))

    # -- reload (SIGHUP; fleet pushes reuse apply_config) -----------------------------------
    def reload_from_file(self) -> ReloadOutcome:
        """Re-read the config file and apply what changed; the outcome is a telemetry event
        (``config reload: applied: cameras``, ``... rejected: mqtt: changes need a restart``),
        so an operator sees from the broker what the SIGHUP did."""
        outcome = self._reload_from_file()
        self.parts.note(reload_event(outcome))
        return outcome

    def _reload_from_file(self) -> ReloadOutcome:
        if self.reload_source is None:
            logger.warning("SIGHUP ignored: the agent was started without --config")
            return ReloadOutcome("unchanged")
        try:
            new = self.reload_source()
        except ConfigError as err:
            logger.error("reload rejected, keeping the running config:\n%s", err)
            return ReloadOutcome("rejected", errors=tuple(str(e) for e in err.errors))
        except (OSError, ValueError, RecursionError) as err:
            # The bounded reader should turn every bad file into a ConfigError; if one slips
            # through, a running agent still must not die of an edited file.
            logger.error("reload rejected, keeping the running config: %r", err)
            return ReloadOutcome("rejected", errors=(repr(err),))
        if self.fleet is not None:
            # The fleet's committed documents stay on top, behind the same health gate.
            status, errors = self.fleet.reload_local(new)
            return ReloadOutcome(status, errors=errors)
        return self.apply_config(new)

    def apply_config(self, new: AgentConfig, source: str = "config reload") -> ReloadOutcome:
        """Apply a validated config to the running agent, rolling back if it fails to start.

        Cameras, model, batching and telemetry apply live (the pipeline is rebuilt), and so do
        ``profile.initial`` (a profile switch) and ``profile.policy`` with ``profile.governor``
        (the governor's policy, see GovernorControl); other changes need a restart and are
        reported as rejected. ``source`` (``config reload``, ``fleet``) is named in the policy
        change's event. One apply runs at a time (SIGHUP and fleet pushes share this).
        """
        with self._apply_lock:
            return self._apply_config(new, source)

    def _apply_config(self, new: AgentConfig, source: str) -> ReloadOutcome:
        old = self.config
        changed = tuple(name for name in RELOADABLE if getattr(new, name) != getattr(old, name))
        live_profile = new.profile != old.profile and new.profile == old.profile.model_copy(
            update={name: getattr(new.profile, name) for name in LIVE_PROFILE_FIELDS}
        )
        policy_changed = live_profile and (new.profile.policy, new.profile.governor) != (
            old.profile.policy,
            old.profile.governor,
        )
        # A new profile.initial is applied as at start, except that fixed applies it itself.
        fixed_holds_it = policy_changed and new.profile.policy == "fixed"
        profile = None
        if live_profile and new.profile.initial != old.profile.initial and not fixed_holds_it:
            profile = new.profile.initial
        frozen = [
            name
            for name in AgentConfig.model_fields
            if name not in RELOADABLE
            and getattr(new, name) != getattr(old, name)
            and not (name == "profile" and live_profile)
        ]
        if frozen:
            errors = tuple(f"{name}: changes need a restart" for name in frozen)
            logger.error("reload rejected: %s", "; ".join(errors))
            return ReloadOutcome("rejected", errors=errors)
        if not changed and not live_profile:
            return ReloadOutcome("unchanged")
        if changed:
            try:
                self.parts.replace_pipeline(new, self.hooks)
                assert self.parts.pipeline is not None
                failure = health_failure(
                    self.parts.pipeline, self.supervisor.probation, self.stop, self.probation_s
                )
            except START_FAILURES as err:
                failure = str(err) or type(err).__name__
            if failure is not None:
                logger.error("new config failed (%s); rolling back to the running one", failure)
                if self.parts.config is not old:
                    self.parts.replace_pipeline(old, self.hooks)
                return ReloadOutcome("rolled_back", changed, (failure,))
        rebuilt = bool(changed)
        if profile is not None:
            answer = self.parts.apply_profile(profile)
            if not answer.get("applied"):
                if rebuilt:
                    self.parts.replace_pipeline(old, self.hooks)
                error = f"profile {profile}: {answer.get('error')}"
                return ReloadOutcome("rolled_back", (*changed, "profile"), (error,))
        if policy_changed:
            # To fixed, this applies the profile the new section names.
            outcome = self.parts.set_policy(new.profile, source)
            if outcome.error is not None:
                if rebuilt:
                    self.parts.replace_pipeline(old, self.hooks)
                return ReloadOutcome("rolled_back", (*changed, "profile"), (outcome.error,))
        elif live_profile:  # only profile.initial changed: fixed holds it from now on
            self.parts.governor_control.note_initial(new.profile)
        if live_profile:
            changed = (*changed, "profile")
        self.config = new
        logger.info("config reloaded: %s", ", ".join(changed))
        return ReloadOutcome("applied", changed)

    # -- signals ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def signal_handlers(self) -> Iterator[None]:
        """SIGTERM/SIGINT set stop; SIGHUP requests a reload. Handlers only set events."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_stop(signum: int, frame: FrameType | None) -> None:
            self.stop.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.reload_requested.set()

        previous = {
            sig: signal.signal(sig, handler)
            for sig, handler in (
                (signal.SIGTERM, on_stop),
                (signal.SIGINT, on_stop),
                (signal.SIGHUP, on_hup),
            )
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def check_state_dir(path: Path) -> None:
    """Create and vet the state directory; give the process a private TMPDIR under it.

    No file is written to prove writability: on a full disk the agent must still start and
    drain its outbox.

    Raises:
        ConfigError: naming the path and why (writable by others, not writable), so the CLI
            exits 2 with a clear message.
    """
    try:
        prepare_state_dir(path)
    except OSError as err:
        raise ConfigError([FieldError("state_dir", err.strerror or str(err))]) from err
