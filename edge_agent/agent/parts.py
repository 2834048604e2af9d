"""The agent's components, built from config sections and started in order.

Each component receives its own config section and collaborators. ``AgentParts`` owns
their lifetimes; ``daemon.Agent`` owns the stop event, signals and the supervisor. The DVFS
profiles live in :mod:`board_profiles`, the MQTT side (link, outbox, command handlers) in
:mod:`mqtt_parts` and the governor policy in force in :mod:`governor_control`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.agent.banner import subscribe_command
from edge_agent.agent.board_profiles import BoardProfiles
from edge_agent.agent.exporter import MetricsExporter
from edge_agent.agent.governor_control import GovernorControl
from edge_agent.agent.governor_setup import build_governor
from edge_agent.agent.governor_worker import GovernorWorker
from edge_agent.agent.hooks import PipelineHooks
from edge_agent.agent.mqtt_parts import BeforeConnect, MqttParts
from edge_agent.agent.reporting import Reporter, ReportInputs, build_summary
from edge_agent.agent.result_stats import ResultStats
from edge_agent.agent.sdnotify import Notifier
from edge_agent.agent.watchdog import Watchdog
from edge_agent.clock import Clock
from edge_agent.config import AgentConfig
from edge_agent.config_sections import ProfileConfig
from edge_agent.hardware.board import BoardInfo, detect_board
from edge_agent.hardware.root import Root
from edge_agent.pipeline.runner import Pipeline
from edge_agent.power.ledger import EnergyLedger
from edge_agent.power.monitor import open_monitor
from edge_agent.power.profile_apply import ProfileController
from edge_agent.power.sampler import Sampler
from edge_agent.telemetry.last_report import write_last_report
from edge_agent.telemetry.policy_command import PolicyOutcome

if TYPE_CHECKING:
    from edge_agent.pipeline.result import Result

logger = logging.getLogger(__name__)


class AgentParts:
    """Builds, starts and stops the agent's components."""

    def __init__(
        self,
        *,
        config: AgentConfig,
        clock: Clock,
        boot_id: str,
        version: str,
        stats: ResultStats,
        first_result: threading.Event,
        notifier: Notifier,
        stop: threading.Event,
    ) -> None:
        self.config = config
        self.clock = clock
        self.version = version
        self.stats = stats
        self.first_result = first_result
        self.notifier = notifier
        self.stop = stop
        self.root = Root(config.root)
        self.state_dir = config.state_dir or Path("/var/lib/edge-agent")
        self.board: BoardInfo | None = None
        self.board_profiles = BoardProfiles(
            self.root, config.profile, self.state_dir, clock, config.board.name
        )
        self.sampler: Sampler | None = None
        self.ledger: EnergyLedger | None = None
        self.monitor_reason = ""
        self.mqtt = MqttParts(
            config.mqtt,
            device_id=config.device_id,
            boot_id=boot_id,
            version=version,
            clock=clock,
            state_dir=self.state_dir,
        )
        self.pipeline: Pipeline | None = None
        self.reporter: Reporter | None = None
        self.governor_control = GovernorControl(
            config.profile, self._build_governor, self._hold_preset, clock
        )
        self._notes: list[str] = []  # agent events for the next report (a SIGHUP's outcome)
        self._notes_lock = threading.Lock()
        self.watchdog: Watchdog | None = None
        self.hooks: PipelineHooks = PipelineHooks()
        self.started_mono = clock.monotonic()
        self.exporter = None if config.metrics is None else MetricsExporter(config.metrics, version)
        # Called with the link before it connects, so fleet subscriptions precede `online`.
        self.before_connect: BeforeConnect | None = None
        self.config_version: Callable[[], dict[str, int] | None] = lambda: None

    # -- start -----------------------------------------------------------------------------
    def start(self, hooks: PipelineHooks) -> None:
        self.hooks = hooks
        self.started_mono = self.clock.monotonic()
        self.board = detect_board(self.root)
        self.board_profiles.start()
        self._start_power()
        model = self.board.model if self.board is not None else "Jetson"
        self.mqtt.start(
            self.board_profiles,
            self._switch_profile,
            self.governor_control,
            model,
            self.before_connect,
        )
        if self.exporter is not None:
            self.exporter.start()
        # The reporter prices results, so it exists before the first one can arrive.

        self.reporter = Reporter(
            self._report_inputs(), self.config.telemetry, self.clock, on_report=self._on_report
        )
        self.pipeline = self._build_pipeline(self.config)
        self.pipeline.start()
        self._start_reporting()
        self.governor_control.start()

    @property
    def governor(self) -> GovernorWorker | None:
        """The governor worker of the policy in force (None for ``fixed``)."""
        return self.governor_control.worker

    @property
    def profiles(self) -> ProfileController | None:
        """The board's profile controller (None when the board has no profile file)."""
        return self.board_profiles.controller

    @property
    def profile_error(self) -> str | None:
        """Why profiles are unavailable or the initial one failed; None when all is well."""
        return self.board_profiles.error

    def _build_governor(self, profile: ProfileConfig) -> GovernorWorker:
        return build_governor(
            profile,
            self.root,
            self.clock,
            self.stats,
            self.ledger,
            lambda: self.pipeline.stats() if self.pipeline is not None else {},
            lambda: str(self.pipeline.engine_info().get("model")) if self.pipeline else "",
            self.profiles,
        )

    def note(self, text: str) -> None:
        """An event for the next telemetry report (and the log line the caller writes)."""
        with self._notes_lock:
            self._notes.append(text)
            del self._notes[:-50]  # no reporter draining them (telemetry off): keep the last

    def drain_notes(self) -> list[str]:
        with self._notes_lock:
            out, self._notes = self._notes, []
        return out

    def set_policy(self, profile: ProfileConfig, source: str) -> PolicyOutcome:
        """Put a new ``profile`` section's policy in force (fleet pushes, reload)."""
        outcome = self.governor_control.set_policy(profile, source)
        if self.mqtt.policy_commands is not None:
            self.mqtt.policy_commands.report(outcome.error, profile.policy)
        return outcome

    def _start_power(self) -> None:
        cfg = self.config.power
        monitor, self.monitor_reason = open_monitor(cfg.monitor, self.root, self.clock)
        if not monitor.available:
            # Missing power hardware is a state: reported once, no sampler polling nothing.
            logger.warning("power monitor unavailable: %s", self.monitor_reason)
            return
        logger.info("power monitor: %s", self.monitor_reason)
        interval_s = cfg.interval_ms / 1000.0
        capacity = max(16, int(cfg.buffer_s / interval_s))
        self.sampler = Sampler(monitor, self.clock, interval_s=interval_s, capacity=capacity)
        self.ledger = EnergyLedger(self.sampler)
        self.sampler.start()
        if cfg.idle_baseline_s > 0 and monitor.available:
            # Idle power before the pipeline starts, subtracted later for dynamic energy.
            t0 = self.clock.monotonic()
            self.stop.wait(cfg.idle_baseline_s)
            baseline = self.ledger.measure_idle(t0, self.clock.monotonic())
            if baseline is None:
                logger.warning("idle baseline: no power samples in %.1f s", cfg.idle_baseline_s)
            else:
                logger.info(
                    "idle baseline %.3f W over %.1f s", baseline.total_w, baseline.duration_s
                )

    def _build_pipeline(self, config: AgentConfig) -> Pipeline:
        return Pipeline(
            config.cameras,
            config.model,
            config.batching,
            self.state_dir,
            self.clock,
            self._on_result,
            on_batch=self._on_batch,
            latency_scale=self.hooks.latency_scale,
        )

    def _start_reporting(self) -> None:
        assert self.reporter is not None
        self.reporter.start()
        self.watchdog = Watchdog(
            lambda: self.pipeline, self.first_result, self.status_line, self.notifier, self.clock
        )
        self.watchdog.start()

    # -- callbacks -------------------------------------------------------------------------
    def _on_batch(self, start: float, end: float, count: int) -> None:
        self.hooks.record_batch(start, end)
        if self.reporter is not None:
            self.reporter.record_batch(start, end, count)

    def _on_result(self, result: Result) -> None:
        correct = None if result.truth is None else _top1(result.outputs) == result.truth
        self.stats.record(result.latency_ms, result.engine_ms, correct)
        if self.exporter is not None:
            self.exporter.observe(result)
        publisher = self.mqtt.publisher
        if publisher is None or self.reporter is None:
            raise RuntimeError("a result arrived before the publisher was ready")
        publisher.publish_result(result.camera, self.reporter.result_payload(result))
        if not self.first_result.is_set():
            self.first_result.set()

    def apply_profile(self, name: str, live_fallback: bool = False) -> dict[str, Any]:
        """Switch the DVFS profile: ``{"profile", "applied", "error"}`` (fleet pushes, reload).

        ``live_fallback`` as at start (``policy: fixed`` holding its preset): a mode that needs
        a reboot gets its caps inside the current mode.
        """
        answer = self._switch_profile(name, live_fallback)
        if answer.get("applied") and self.mqtt.commands is not None:
            self.mqtt.commands.report(answer.get("profile"), None)
        return answer

    def _hold_preset(self, name: str) -> dict[str, Any]:
        return self.apply_profile(name, live_fallback=True)

    def _switch_profile(self, name: str, live_fallback: bool = False) -> dict[str, Any]:
        answer = self.board_profiles.apply(name, live_fallback)
        if answer["applied"] and self.reporter is not None:
            self.reporter.note_profile(answer["profile"])
        return answer

    def current_profile(self) -> str | None:
        """The profile the board is in (cached for a few seconds; see BoardProfiles)."""
        return self.board_profiles.current()

    # -- reload ----------------------------------------------------------------------------
    def replace_pipeline(self, config: AgentConfig, hooks: PipelineHooks) -> None:
        """Load and warm a pipeline from ``config`` while the old one runs, then switch.

        Raises:
            EdgeAgentError: the new pipeline failed to load (the old one still runs and
                ``self.config`` is unchanged) or to start (nothing runs then, and the caller
                restarts the previous config).
        """
        self.hooks = hooks
        staged = self._build_pipeline(config)
        staged.load()  # model load and warm-up happen before the old pipeline stops
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline.join(timeout_s=10.0)
        self.config = config
        self.board_profiles.section = config.profile
        self.pipeline = staged
        self.pipeline.start()
        if self.reporter is not None:
            self.reporter.set_interval(config.telemetry.interval_s)

    # -- stop ------------------------------------------------------------------------------
    def shutdown(self, flush_timeout_s: float) -> None:
        """Stop in reverse start order, each with a timeout; publish ``stopped`` last."""
        if self.watchdog is not None:
            self.watchdog.stop()
            self.watchdog.join(timeout_s=5.0)
        self.mqtt.stop_policy_commands()
        self.governor_control.stop()
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline.join(timeout_s=10.0)
        if self.reporter is not None:
            self.reporter.stop()
            self.reporter.join(timeout_s=5.0)
            self.reporter.publish_final()
            if self.reporter.last_telemetry is not None:
                last = self.reporter.last_telemetry
                write_last_report(self.state_dir, last, pid=os.getpid(), state="stopped")
        if self.exporter is not None:
            self.exporter.stop()
            self.exporter.join(timeout_s=5.0)
        self.mqtt.close(flush_timeout_s)
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler.join(timeout_s=5.0)
        self.board_profiles.restore()
        self.mqtt.stop_broker()

    # -- reports ---------------------------------------------------------------------------
    def outbox_stats(self) -> dict[str, Any] | None:
        """Publisher and outbox counters (the final ones once the outbox is closed)."""
        return self.mqtt.outbox_stats()

    def status_line(self) -> str:
        """One line for systemd's STATUS=: profile, fps, W."""
        snap = self.stats.snapshot()
        watts = "n/a"
        last = self.reporter.last_telemetry if self.reporter is not None else None
        total_w = (last.get("power") or {}).get("total_w") if last else None
        if total_w is not None:
            watts = f"{total_w:.2f} W"
        return f"profile {self.current_profile() or 'n/a'}, {snap.recent_fps:.1f} fps, {watts}"

    def summary(self) -> dict[str, Any]:
        return build_summary(self._report_inputs(), self.outbox_stats())

    def _report_inputs(self) -> ReportInputs:
        return ReportInputs(
            stats=self.stats,
            ledger=self.ledger,
            sampler=self.sampler,
            publisher=self.mqtt.publisher,
            root=self.root,
            busy_fraction_at=lambda now, span: self.hooks.busy_fraction_at(now, span),
            pipeline=lambda: self.pipeline,
            profile=self.current_profile,
            profile_error=self.profile_error,
            monitor_reason=self.monitor_reason,
            config_version=lambda: self.config_version(),
            extra_events=lambda: self.governor_control.drain_events() + self.drain_notes(),
            governor=self.governor_control.in_force,
        )

    def _on_report(self, payload: dict[str, Any]) -> None:
        write_last_report(self.state_dir, payload, pid=os.getpid())
        if self.exporter is not None:
            engine = self.pipeline.engine_info() if self.pipeline is not None else {}
            self.exporter.report(payload, self.board, self.board_profiles.nvpmodel_mode, engine)
        self.notifier.status(self.status_line())

    def banner(self) -> dict[str, str]:
        info = self.pipeline.engine_info() if self.pipeline is not None else {}
        host = "127.0.0.1" if self.config.mqtt.host == "embedded" else self.config.mqtt.host
        topics = self.mqtt.topics
        prefix = topics.status().rsplit("/", 1)[0] + "/#" if topics else "#"
        return {
            "version": self.version,
            "device_id": self.config.device_id,
            "model": str(info.get("model", "?")),
            "provider": str(info.get("provider", "?")),
            "profile": self.current_profile() or "n/a",
            "subscribe": subscribe_command(self.config.mqtt, host, self.mqtt.port, prefix),
        }


def _top1(outputs: dict[str, Any]) -> str | None:
    top = outputs.get("top_k")
    if isinstance(top, list) and top:
        label = top[0].get("label")
        return str(label) if label is not None else None
    return None
