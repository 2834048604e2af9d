"""The agent's components, built from config sections and started in order.

Each component receives its own config section and collaborators. ``AgentParts`` owns
their lifetimes; ``daemon.Agent`` owns the stop event, signals and the supervisor.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.agent.backlog import announce_old_rows, flush_announced
from edge_agent.agent.banner import subscribe_command
from edge_agent.agent.exporter import MetricsExporter
from edge_agent.agent.governor_control import GovernorControl
from edge_agent.agent.governor_setup import build_governor
from edge_agent.agent.governor_worker import GovernorWorker
from edge_agent.agent.hooks import PipelineHooks
from edge_agent.agent.reporting import Reporter, ReportInputs, build_summary
from edge_agent.agent.result_stats import ResultStats
from edge_agent.agent.sdnotify import Notifier
from edge_agent.agent.watchdog import Watchdog
from edge_agent.clock import Clock
from edge_agent.config import AgentConfig
from edge_agent.config_sections import ProfileConfig
from edge_agent.errors import (
    ConfigError,
    EdgeAgentError,
    HardwareError,
    ProfileError,
    TelemetryError,
)
from edge_agent.hardware.board import BoardInfo, detect_board
from edge_agent.hardware.root import Root
from edge_agent.pipeline.runner import Pipeline
from edge_agent.power.ledger import EnergyLedger
from edge_agent.power.monitor import open_monitor
from edge_agent.power.profile_apply import ProfileController
from edge_agent.power.sampler import Sampler
from edge_agent.telemetry.broker import EmbeddedBroker
from edge_agent.telemetry.commands import ProfileCommandHandler
from edge_agent.telemetry.ha_discovery import HaDiscovery
from edge_agent.telemetry.last_report import write_last_report
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.outbox import Outbox
from edge_agent.telemetry.policy_command import PolicyCommandHandler, PolicyOutcome
from edge_agent.telemetry.publisher import Publisher
from edge_agent.telemetry.topics import Topics

if TYPE_CHECKING:
    from edge_agent.pipeline.result import Result

logger = logging.getLogger(__name__)

PROFILE_REFRESH_S = 5.0


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
        self.boot_id = boot_id
        self.version = version
        self.stats = stats
        self.first_result = first_result
        self.notifier = notifier
        self.stop = stop
        self.root = Root(config.root)
        self.state_dir = config.state_dir or Path("/var/lib/edge-agent")
        self.board: BoardInfo | None = None
        self.profiles: ProfileController | None = None
        self.profile_error: str | None = None
        self._profile_list: list[str] = []
        self._final_outbox: dict[str, Any] | None = None
        self._profile_lock = threading.Lock()
        self._profile_cache: tuple[float, str | None] | None = None
        self.sampler: Sampler | None = None
        self.ledger: EnergyLedger | None = None
        self.monitor_reason = ""
        self.broker: EmbeddedBroker | None = None
        self.topics: Topics | None = None
        self.link: MqttLink | None = None
        self.publisher: Publisher | None = None
        self.commands: ProfileCommandHandler | None = None
        self.pipeline: Pipeline | None = None
        self.reporter: Reporter | None = None
        self.governor_control = GovernorControl(
            config.profile, self._build_governor, self._hold_preset, clock
        )
        self.policy_commands: PolicyCommandHandler | None = None
        self.watchdog: Watchdog | None = None
        self.hooks: PipelineHooks = PipelineHooks()
        self.broker_port = config.mqtt.port
        self.started_mono = clock.monotonic()
        self._dropped_results = 0
        self.nvpmodel_mode: str | None = None
        self.exporter = None if config.metrics is None else MetricsExporter(config.metrics, version)
        # Called with the link before it connects, so fleet subscriptions precede `online`.
        self.before_connect: Callable[[MqttLink, Topics], None] | None = None
        self.config_version: Callable[[], dict[str, int] | None] = lambda: None

    # -- start -----------------------------------------------------------------------------
    def start(self, hooks: PipelineHooks) -> None:
        self.hooks = hooks
        self.started_mono = self.clock.monotonic()
        self.board = detect_board(self.root)
        self._start_profiles()
        self._start_power()
        self._start_mqtt()
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

    def set_policy(self, profile: ProfileConfig, source: str) -> PolicyOutcome:
        """Put a new ``profile`` section's policy in force (fleet pushes, reload)."""
        outcome = self.governor_control.set_policy(profile, source)
        if self.policy_commands is not None:
            self.policy_commands.report(source, outcome.error, profile.policy)
        return outcome

    def _start_profiles(self) -> None:
        try:
            controller = ProfileController(
                self.root,
                self.config.profile,
                self.state_dir,
                self.clock,
                board=self.config.board.name,
            )
            self._profile_list = [p.name for p in controller.profiles()]
        except (ProfileError, HardwareError, ConfigError) as err:
            # No profile file for this board (a dGPU host, an unknown Jetson): a state, not a
            # crash. The agent runs on whatever clocks the board has.
            self.profile_error = f"power profiles unavailable: {err}"
            logger.warning("%s", self.profile_error)
            return
        self.profiles = controller
        initial = self.config.profile.initial
        if initial is None:
            return
        try:
            # Unattended start: a preset that needs a reboot gets its caps inside the current
            # mode (a WARNING names both) rather than no profile at all.
            report = self.profiles.apply(
                initial, allow_reboot=self.config.profile.allow_reboot, live_fallback=True
            )
            logger.info("profile %s applied in %.0f ms", initial, report.duration_s * 1000)
            self._remember_profile(report.profile)
            self.nvpmodel_mode = report.mode
        except (ProfileError, HardwareError) as err:
            # Run on the current profile rather than crash-looping under systemd.
            self.profile_error = f"initial profile {initial!r} failed: {err}"
            logger.error("%s; running on the current profile", self.profile_error)

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

    def _start_mqtt(self) -> None:
        mqtt = self.config.mqtt
        if mqtt.host == "embedded":
            mqtt = self._start_embedded_broker()
        self.topics = Topics(mqtt.topic_prefix, self.config.device_id)
        self.link = MqttLink(
            mqtt,
            self.config.device_id,
            self.boot_id,
            self.version,
            self.clock,
            reconnect_max_s=mqtt.reconnect_max_s,
        )
        outbox = Outbox(self.state_dir / "outbox.sqlite3", mqtt.outbox_max_mb)
        announce_old_rows(
            outbox, self.state_dir / "outbox.sqlite3", f"{self.link.host}:{mqtt.port}"
        )
        self.publisher = Publisher(
            self.link, outbox, self.topics, self.clock, mqtt.inflight_window, self.boot_id
        )
        self.commands = ProfileCommandHandler(
            self.topics,
            self.link,
            self._apply_profile_command,
            profiles=self._profile_names() or None,
            clock=self.clock,
            current=self.current_profile(),
        )
        self.commands.start()
        self.commands.report(self.current_profile(), self.profile_error)
        control = self.governor_control
        self.policy_commands = PolicyCommandHandler(
            self.topics,
            self.link,
            lambda: control.config,
            lambda profile: control.set_policy(profile, "mqtt"),
            clock=self.clock,
        )
        self.policy_commands.start()
        self.policy_commands.report("config")
        if mqtt.ha_discovery:
            model = self.board.model if self.board is not None else "Jetson"
            HaDiscovery(
                self.topics,
                self.link,
                mqtt.ha_prefix,
                self.version,
                self._profile_names(),
                model,
                clock=self.clock,
            ).start()
        if self.before_connect is not None:
            self.before_connect(self.link, self.topics)
        self.link.start()
        self.publisher.start()

    def _start_embedded_broker(self) -> Any:
        port = self.config.mqtt.port
        self.broker = EmbeddedBroker(host="127.0.0.1", port=port)
        try:
            self.broker.start()
        except TelemetryError as err:
            logger.warning("%s; using a free port instead (the banner shows it)", err)
            self.broker = EmbeddedBroker(host="127.0.0.1", port=0)
            self.broker.start()
        self.broker_port = self.broker.port
        return self.config.mqtt.model_copy(update={"host": "127.0.0.1", "port": self.broker.port})

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
        if self.publisher is None or self.reporter is None:
            raise RuntimeError("a result arrived before the publisher was ready")
        self.publisher.publish_result(result.camera, self.reporter.result_payload(result))
        if not self.first_result.is_set():
            self.first_result.set()

    def apply_profile(self, name: str, live_fallback: bool = False) -> dict[str, Any]:
        """Switch the DVFS profile: ``{"profile", "applied", "error"}`` (fleet pushes, reload).

        ``live_fallback`` as at start (``policy: fixed`` holding its preset): a mode that needs
        a reboot gets its caps inside the current mode.
        """
        answer = self._apply_profile_command(name, live_fallback)
        if answer.get("applied") and self.commands is not None:
            self.commands.report(answer.get("profile"), None)
        return answer

    def _hold_preset(self, name: str) -> dict[str, Any]:
        return self.apply_profile(name, live_fallback=True)

    def _apply_profile_command(self, name: str, live_fallback: bool = False) -> dict[str, Any]:
        if self.profiles is None:
            return {"profile": None, "applied": False, "error": self.profile_error or "no profiles"}
        try:
            report = self.profiles.apply(
                name, allow_reboot=self.config.profile.allow_reboot, live_fallback=live_fallback
            )
        except (EdgeAgentError, ValueError) as err:
            self._forget_profile()  # a failed switch rolled back; read what the board has
            return {"profile": self.current_profile(), "applied": False, "error": str(err)}
        self._remember_profile(report.profile)
        self.nvpmodel_mode = report.mode
        if self.reporter is not None:
            self.reporter.note_profile(report.profile)
        return {"profile": report.profile, "applied": True, "error": None}

    def _profile_names(self) -> list[str]:
        return list(self._profile_list)

    def current_profile(self) -> str | None:
        """The profile the board is in, re-read at most every few seconds.

        Reading it runs ``nvpmodel -q``, which can take seconds under GPU load; the live view,
        STATUS= and telemetry all ask, so the answer is cached and a switch updates it.
        """
        if self.profiles is None:
            return None
        now = self.clock.monotonic()
        with self._profile_lock:
            cached = self._profile_cache
        if cached is not None and now - cached[0] < PROFILE_REFRESH_S:
            return cached[1]
        try:
            current = self.profiles.current()
            name: str | None = current.name
            self.nvpmodel_mode = current.nvpmodel_mode
        except (HardwareError, ProfileError) as err:
            logger.debug("current profile unreadable: %s", err)
            name = None
        self._remember_profile(name)
        return name

    def _forget_profile(self) -> None:
        with self._profile_lock:
            self._profile_cache = None

    def _remember_profile(self, name: str | None) -> None:
        with self._profile_lock:
            self._profile_cache = (self.clock.monotonic(), name)

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
        if self.policy_commands is not None:
            self.policy_commands.stop()
            self.policy_commands.join(timeout_s=5.0)
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
        if self.publisher is not None:
            broker = "(none)" if self.link is None else f"{self.link.host}:{self.link.config.port}"
            flush_announced(self.publisher, broker, flush_timeout_s)
            self.publisher.stop()
            self.publisher.join(timeout_s=5.0)
            self._final_outbox = self.publisher.stats().to_dict()
            self.publisher.outbox.close()
        if self.commands is not None:
            self.commands.stop()
            self.commands.join(timeout_s=5.0)
        if self.link is not None:
            self.link.stop(timeout_s=flush_timeout_s, publish_stopped=True)
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler.join(timeout_s=5.0)
        if self.profiles is not None and self.config.profile.restore_on_exit:
            try:
                self.profiles.restore_saved()
            except (ProfileError, HardwareError) as err:
                logger.error("could not restore the DVFS state: %s", err)
            self._forget_profile()
        if self.broker is not None:
            self.broker.stop()

    # -- reports ---------------------------------------------------------------------------
    def outbox_stats(self) -> dict[str, Any] | None:
        """Publisher and outbox counters (the final ones once the outbox is closed)."""
        if self._final_outbox is not None:
            return self._final_outbox
        return None if self.publisher is None else self.publisher.stats().to_dict()

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
            publisher=self.publisher,
            root=self.root,
            busy_fraction_at=lambda now, span: self.hooks.busy_fraction_at(now, span),
            pipeline=lambda: self.pipeline,
            profile=self.current_profile,
            profile_error=self.profile_error,
            monitor_reason=self.monitor_reason,
            config_version=lambda: self.config_version(),
            extra_events=self.governor_control.drain_events,
        )

    def _on_report(self, payload: dict[str, Any]) -> None:
        write_last_report(self.state_dir, payload, pid=os.getpid())
        if self.exporter is not None:
            engine = self.pipeline.engine_info() if self.pipeline is not None else {}
            self.exporter.report(payload, self.board, self.nvpmodel_mode, engine)
        self.notifier.status(self.status_line())

    def banner(self) -> dict[str, str]:
        info = self.pipeline.engine_info() if self.pipeline is not None else {}
        host = "127.0.0.1" if self.config.mqtt.host == "embedded" else self.config.mqtt.host
        prefix = self.topics.status().rsplit("/", 1)[0] + "/#" if self.topics else "#"
        return {
            "version": self.version,
            "device_id": self.config.device_id,
            "model": str(info.get("model", "?")),
            "provider": str(info.get("provider", "?")),
            "profile": self.current_profile() or "n/a",
            "subscribe": subscribe_command(self.config.mqtt, host, self.broker_port, prefix),
        }


def _top1(outputs: dict[str, Any]) -> str | None:
    top = outputs.get("top_k")
    if isinstance(top, list) and top:
        label = top[0].get("label")
        return str(label) if label is not None else None
    return None
