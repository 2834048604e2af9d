"""Fleet pushes in the agent: receive, verify, decide, stage, switch, health-gate, commit.

Documents arrive on the retained ``<p>/<dev>/config/set`` and ``<p>/fleet/<group>/config/set``
topics (subscribed before the link connects, so a push retained while the box was off arrives
with the first connection). The network thread parses, verifies the signature and decides;
refusals are answered at once on the retained ``<p>/<dev>/config/state``. Documents to apply
wait in a one-per-source slot (a newer one supersedes an older one still waiting) for the
``edge-fleet`` worker, which applies one at a time. A document whose ``not_before`` is ahead
(at most 30 days) is kept as ``scheduled`` (one per source, saved in the fleet state) and
handed to the worker at that wall time, decided again and applied like any other:

``applying`` -> merge with the other sources' last-good and validate -> stage (fetch and verify
the model) -> switch (the daemon's ``apply_config``, which warms the new model first) -> health
gate -> commit last-good atomically (``applied``) or switch back (``rolled_back``).

A failed version is never retried; a restart during an apply marks that version failed, so a
deployment that kills the agent cannot wedge it or the next deployment.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from edge_agent.agent.fleet_gate import ApplyFn, ProbeFn, document_loader, health_gate
from edge_agent.clock import Clock
from edge_agent.config import AgentConfig
from edge_agent.fleet.decision import Verdict, decide
from edge_agent.fleet.document import (
    DocumentRejected,
    FleetDocument,
    Loader,
    ModelRef,
    parse_document,
)
from edge_agent.fleet.health import HealthSample, HealthVerdict
from edge_agent.fleet.merge import MODELS_DIR, effective_config, source_order
from edge_agent.fleet.model_fetch import stage_model
from edge_agent.fleet.report import config_state
from edge_agent.fleet.schedule import Entry, Schedule
from edge_agent.fleet.signing import TrustedKeys, load_trusted_keys
from edge_agent.fleet.store import FleetState, FleetStore
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.payloads import encode
from edge_agent.telemetry.topics import Topics

logger = logging.getLogger(__name__)


class FleetApplier:
    """The device side of fleet pushes.

    Args:
        base: the local config file (device-local settings and defaults for every section).
        clock: the injected clock (health windows, report timestamps).
        apply: the daemon's ``apply_config``.
        probe: samples health since a monotonic time (the daemon's ``health_sample``).
        store: the fleet state file in the state directory.
        loader: turns raw payload bytes into plain data within caps (the parse seam).
        trust: the trusted keys; default: loaded from ``fleet.trusted_keys``.
    """

    def __init__(
        self,
        base: AgentConfig,
        *,
        clock: Clock,
        apply: ApplyFn,
        probe: ProbeFn,
        store: FleetStore,
        loader: Loader | None = None,
        trust: TrustedKeys | None = None,
    ) -> None:
        self.base = base
        self.cfg = base.fleet
        self.device_id = base.device_id
        self.groups = self.cfg.member_groups()
        self.clock = clock
        self.apply = apply
        self.probe = probe
        self.store = store
        self.loader: Loader = loader or document_loader
        self.trust = trust if trust is not None else load_trusted_keys(self.cfg.trusted_keys)
        self.models_dir = base.resolved_state_dir / MODELS_DIR
        self.state: FleetState = store.load()
        self.schedule, dropped = Schedule.from_json(self.state.scheduled, self.trust.verify)
        for line in dropped:
            logger.error("fleet: a saved scheduled document is dropped: %s", line)
        self._lock = threading.Lock()  # guards the state, the schedule and the pending slot
        self._wake = threading.Condition(self._lock)
        self._pending: dict[str, tuple[dict[str, Any], FleetDocument]] = {}
        self._one_apply = threading.Lock()  # the worker and a SIGHUP reload take turns
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._link: MqttLink | None = None
        self._topics: Topics | None = None
        self.applied = 0
        self.refused = 0

    # -- start-up --------------------------------------------------------------------------
    def startup_config(self) -> AgentConfig:
        """The config to start with: the local file plus every committed document.

        An apply that was running when the agent died is marked failed here, not retried.
        """
        attempt = self.state.attempt
        if attempt is not None:
            source, version = str(attempt["source"]), int(attempt["version"])
            logger.error(
                "fleet: the agent stopped during the apply of %s version %d; running last-good",
                source,
                version,
            )
            self.state.ledger = self.state.ledger.fail(source, version)
            self.state.attempt = None
            self.state.report = self._report(
                version,
                "rolled_back",
                reason="the agent restarted during the apply; last-good is running",
                key_id=attempt.get("key_id"),
                target=source,
            )
            self._save()
        if not self.trust.required:
            logger.warning("fleet: no trusted keys configured; unsigned documents are accepted")
        return self._merged_or_base(self.base)

    def reload_local(self, new_base: AgentConfig) -> tuple[str, tuple[str, ...]]:
        """SIGHUP: the re-read local file, with the committed documents on top, applied
        through the same switch and health gate as a push; ``(status, errors)``.

        A failure keeps the previous local file as the base.
        """
        with self._one_apply:
            old = self._merged_or_base(self.base)
            try:
                new, _ref = self._effective(new_base)
            except DocumentRejected as err:
                return "rejected", err.errors
            switched_from = self.clock.monotonic()
            before = self.probe(switched_from - self.cfg.health_window_s)
            outcome = self.apply(new, "config reload")
            if outcome.status != "applied":
                return outcome.status, outcome.errors
            verdict = self._health_gate(before, self.clock.monotonic())
            if not verdict.ok:
                logger.error("reload failed the health gate (%s); rolling back", verdict.reason)
                self.apply(old, "config reload")
                return "rolled_back", (verdict.reason,)
            self.base = new_base
            return "applied", ()

    def _effective(
        self, base: AgentConfig, extra: FleetDocument | None = None
    ) -> tuple[AgentConfig, ModelRef | None]:
        """``base`` with every committed document, and ``extra``, on top.

        Raises:
            DocumentRejected: the merged config does not validate.
        """
        sources = {s: dict(lg["sections"]) for s, lg in self.state.last_good.items()}
        if extra is not None:
            sources[extra.target] = extra.section_data()
        order = source_order(sources, self.device_id, self.groups)
        return effective_config(base, sources, order, self.models_dir)

    def _merged_or_base(self, base: AgentConfig) -> AgentConfig:
        try:
            config, _ref = self._effective(base)
        except DocumentRejected as err:
            logger.error("fleet: last-good no longer fits the local config (%s)", err.errors)
            return base
        return config

    def running_versions(self) -> dict[str, int]:
        """The committed version per source (telemetry carries it)."""
        return dict(self.state.ledger.committed)

    def attach(self, link: MqttLink, topics: Topics) -> None:
        """Subscribe (before the link connects) and publish the last report, retained."""
        self._link, self._topics = link, topics
        link.status_config_version = self.running_versions
        link.subscribe(topics.config_set(), self.on_message)
        for group in self.groups:
            link.subscribe(topics.fleet_config_set(group), self.on_message)
        report = self.state.report or self._report(
            0, "applied", reason="no fleet document applied yet; running the local config"
        )
        link.publish_retained(topics.config_state(), encode(report))

    def start(self) -> None:
        """Start the apply worker."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="edge-fleet", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the apply in progress (its health wait ends early and rolls back)."""
        with self._wake:
            self._stop.set()
            self._wake.notify_all()

    def wake(self) -> None:
        """Look at the wall clock now (the worker also does every 30 s and at each due time)."""
        with self._wake:
            self._wake.notify_all()

    def join(self, timeout_s: float = 30.0) -> None:
        """Wait for the worker."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    # -- the network thread ----------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes) -> None:
        """Parse, verify and decide; refusals are answered here, applies are queued."""
        if not payload:
            return  # an operator cleared the retained document
        try:
            data, doc = parse_document(payload, self.loader)
            key_id = self.trust.verify(data)
        except DocumentRejected as err:
            self._refuse(err.version, "rejected", err.reason, err.errors, err.key_id, topic)
            return
        except ValueError as err:  # a shared loader's own refusal type
            self._refuse(None, "rejected", str(err), (), None, topic)
            return
        superseded: Entry | None = None
        with self._wake:
            verdict = self._decide(doc)
            if verdict.action == "apply":
                waiting = self._pending.get(doc.target)
                if waiting is None or waiting[1].version < doc.version:
                    self._pending[doc.target] = (data, doc)
                    self._wake.notify_all()
                superseded = self.schedule.drop_below(doc.target, doc.version)
                if superseded is not None:
                    self._save()
            elif verdict.action == "schedule":
                verdict = self._schedule(data, doc, verdict, key_id)
        if superseded is not None:
            old = superseded.doc
            reason = f"version {doc.version} arrived to apply now; scheduled version dropped"
            self._refuse(old.version, "stale", reason, (), old.key_id, old.target)
        if verdict.action in ("apply", "schedule"):
            return
        if verdict.action == "ignore":
            logger.debug("fleet: %s", verdict.reason)
            return
        status = "stale" if verdict.action == "stale" else "rejected"
        self._refuse(doc.version, status, verdict.reason, (), key_id, doc.target)

    def _schedule(
        self, data: dict[str, Any], doc: FleetDocument, verdict: Verdict, key_id: str | None
    ) -> Verdict:
        """Keep ``doc`` for its ``not_before`` (under the lock); a refusal verdict otherwise."""
        if self.schedule.holds(doc):
            return Verdict("ignore", f"version {doc.version} is already scheduled")
        try:
            replaced = self.schedule.put(data, doc)
        except ValueError as err:
            return Verdict("stale", str(err))
        reason = verdict.reason + (
            f"; replaces scheduled version {replaced.doc.version}" if replaced is not None else ""
        )
        logger.info("fleet: version %d from %s scheduled: %s", doc.version, doc.target, reason)
        self.state.report = self._report(
            doc.version, "scheduled", reason=reason, key_id=key_id, target=doc.target
        )
        self._save()
        self._publish(self.state.report)
        self._wake.notify_all()
        return verdict

    def _refuse(
        self,
        version: int | None,
        status: str,
        reason: str,
        errors: tuple[str, ...],
        key_id: str | None,
        where: str,
    ) -> None:
        self.refused += 1
        logger.warning(
            "fleet: version %s from %s %s: %s %s", version, where, status, reason, errors
        )
        self._publish(self._report(version, status, reason=reason, errors=errors, key_id=key_id))

    # -- the worker ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stop.is_set():
                    # Not saved here: until its apply records its attempt, a restart finds the
                    # due document still in the saved schedule.
                    self.schedule.move_due(self.clock.wall(), self._pending)
                    if self._pending:
                        break
                    self._wake.wait(self.schedule.wait_s(self.clock.wall()))
                if self._stop.is_set():
                    return
                source = next(iter(self._pending))
                data, doc = self._pending.pop(source)
                # Re-decide: an apply that finished meanwhile may have made this one stale, and
                # a scheduled one may have expired while it waited.
                verdict = self._decide(doc)
                if verdict.action == "schedule":  # the wall clock stepped back
                    verdict = self._schedule(data, doc, verdict, doc.key_id)
            if verdict.action == "apply":
                with self._one_apply:
                    self._apply(data, doc)
            elif verdict.action in ("reject", "stale"):
                status = "stale" if verdict.action == "stale" else "rejected"
                self._refuse(doc.version, status, verdict.reason, (), doc.key_id, doc.target)

    def _decide(self, doc: FleetDocument) -> Verdict:
        return decide(
            doc,
            self.state.ledger,
            device_id=self.device_id,
            groups=self.groups,
            now_wall=self.clock.wall(),
        )

    def _apply(self, data: dict[str, Any], doc: FleetDocument) -> None:
        key_id = data.get("key_id") if isinstance(data.get("key_id"), str) else None
        started = self.clock.monotonic()
        self._publish(self._report(doc.version, "applying", key_id=key_id, target=doc.target))
        with self._wake:
            self.state.attempt = {"source": doc.target, "version": doc.version, "key_id": key_id}
            self._save()
        try:
            new, ref = self._effective(self.base, doc)
            if ref is not None:
                stage_model(ref, self.models_dir, int(self.cfg.max_model_mb * 1024 * 1024))
        except DocumentRejected as err:
            self._finish(doc, "rejected", err.reason, err.errors, key_id, started)
            return
        staged = self.clock.monotonic()
        before = self.probe(staged - self.cfg.health_window_s)
        outcome = self.apply(new, "fleet")
        switched = self.clock.monotonic()
        timings = {"stage_s": staged - started, "switch_s": switched - staged}
        if outcome.status in ("rejected", "rolled_back"):
            reason = "; ".join(outcome.errors) or outcome.status
            # A rollback here comes from the daemon's probation (the pipeline failed to start,
            # a thread died or a camera stayed down): the gate that judged it is named.
            health = (
                {"gate": "probation", "ok": False, "failure": reason}
                if outcome.status == "rolled_back"
                else None
            )
            self._finish(
                doc, outcome.status, reason, outcome.errors, key_id, started, timings, health
            )
            return
        verdict = self._health_gate(before, switched)
        timings["health_s"] = self.clock.monotonic() - switched
        if not verdict.ok:
            logger.error(
                "fleet: version %d failed the health gate: %s", doc.version, verdict.reason
            )
            old = self._merged_or_base(self.base)
            self.apply(old, "fleet")
            self._finish(
                doc, "rolled_back", verdict.reason, (), key_id, started, timings, verdict.figures
            )
            return
        with self._wake:
            self.state.last_good[doc.target] = {
                "version": doc.version,
                "sections": doc.section_data(),
                "key_id": key_id,
            }
            self.state.ledger = self.state.ledger.commit(doc.target, doc.version)
        self.applied += 1
        self._finish(doc, "applied", "", (), key_id, started, timings, verdict.figures)

    def _health_gate(self, before: HealthSample, switched: float) -> HealthVerdict:
        return health_gate(
            before, switched, cfg=self.cfg, clock=self.clock, probe=self.probe, stop=self._stop
        )

    def _finish(
        self,
        doc: FleetDocument,
        status: str,
        reason: str,
        errors: tuple[str, ...],
        key_id: str | None,
        started: float,
        timings: dict[str, float] | None = None,
        health: dict[str, Any] | None = None,
    ) -> None:
        times = {k: round(v, 3) for k, v in (timings or {}).items()}
        times["total_s"] = round(self.clock.monotonic() - started, 3)
        with self._wake:
            if status != "applied":
                self.state.ledger = self.state.ledger.fail(doc.target, doc.version)
            self.state.attempt = None
            self.state.report = self._report(
                doc.version,
                status,
                reason=reason,
                errors=errors,
                key_id=key_id,
                target=doc.target,
                health=health,
                timings=times,
            )
            self._save()
        log = logger.info if status == "applied" else logger.error
        log("fleet: version %d from %s %s %s", doc.version, doc.target, status, reason)
        self._publish(self.state.report)
        if status == "applied" and self._link is not None:
            self._link.publish_status()

    # -- reports ---------------------------------------------------------------------------
    def _report(self, version: int | None, status: str, **details: Any) -> dict[str, Any]:
        return config_state(
            ts=self.clock.wall(),
            device=self.device_id,
            groups=self.groups,
            signed=self.trust.required,
            running=self.state.ledger.committed,
            version=version,
            status=status,
            scheduled=self.schedule.summary(),
            **details,
        )

    def _save(self) -> None:
        """The fleet state with the schedule, to disk (callers hold the lock)."""
        self.state.scheduled = self.schedule.to_json()
        self.store.save(self.state)

    def _publish(self, report: dict[str, Any]) -> None:
        if self._link is not None and self._topics is not None:
            self._link.publish_retained(self._topics.config_state(), encode(report))
