"""The fleet applier's seams: the document parser, the daemon's apply and probe, the health
gate's wait (see :mod:`edge_agent.agent.fleet_apply`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from edge_agent.clock import Clock
from edge_agent.config import AgentConfig, FleetConfig
from edge_agent.fleet.document import MAX_DEPTH, MAX_DOCUMENT_BYTES
from edge_agent.fleet.health import HealthSample, HealthVerdict, judge
from edge_agent.telemetry.inbound import decode_json

HEALTH_POLL_S = 0.1


def document_loader(raw: bytes) -> Any:
    """The shared bounded inbound parser, with the fleet document's caps.

    Raises:
        InboundRejected: over a cap, not UTF-8, not JSON, duplicate keys or non-finite numbers.
    """
    return decode_json(raw, max_bytes=MAX_DOCUMENT_BYTES, max_depth=MAX_DEPTH)


class ApplyOutcome(Protocol):
    """What the daemon's ``apply_config`` answers."""

    @property
    def status(self) -> str: ...

    @property
    def errors(self) -> tuple[str, ...]: ...


ApplyFn = Callable[[AgentConfig, str], ApplyOutcome]  # (config, who asks: fleet | config reload)
ProbeFn = Callable[[float], HealthSample]


def health_gate(
    before: HealthSample,
    switched: float,
    *,
    cfg: FleetConfig,
    clock: Clock,
    probe: ProbeFn,
    stop: threading.Event,
) -> HealthVerdict:
    """Poll ``probe`` since ``switched`` until the gate passes or the window (or a stop) ends."""
    deadline = switched + cfg.health_window_s
    while True:
        final = clock.monotonic() >= deadline or stop.is_set()
        verdict = judge(
            before,
            probe(switched),
            min_results=cfg.health_min_results,
            latency_factor=cfg.health_latency_factor,
            final=final,
        )
        if verdict.done:
            return verdict
        stop.wait(HEALTH_POLL_S)
