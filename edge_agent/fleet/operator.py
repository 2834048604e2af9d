"""The operator's side of fleet pushes: a plain MQTT client that pushes and watches.

It keeps the latest retained ``config/state`` and ``status`` of every device, and the latest
telemetry, under ``<prefix>/+/...``; ``push`` publishes retained documents and waits for the
targeted devices to answer for that version.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.fleet.rollout import AbortRule, Outcome, outcome_of, wave_sizes


@dataclass
class DeviceView:
    """What the operator knows about one device."""

    device: str
    state: dict[str, Any] | None = None
    status: dict[str, Any] | None = None
    telemetry: dict[str, Any] | None = None
    telemetry_at: float | None = None


@dataclass
class RolloutResult:
    """Per device outcome, and whether the rollout was aborted (devices left untouched)."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    aborted: bool = False
    waves_done: int = 0

    @property
    def all_applied(self) -> bool:
        return bool(self.outcomes) and all(o == "applied" for o in self.outcomes.values())

    @property
    def all_accepted(self) -> bool:
        """Every device applied it, or holds it for its ``not_before`` (``scheduled``)."""
        return bool(self.outcomes) and all(
            o in ("applied", "scheduled") for o in self.outcomes.values()
        )


class FleetOperator:
    """Connects to the broker and follows every device under ``prefix``.

    Args:
        host: broker host.
        port: broker port.
        prefix: the agents' topic prefix.
        telemetry: also follow telemetry (``fleet status``).
        tls: ``{"ca_certs", "certfile", "keyfile"}`` for a TLS broker, or None.
        username: broker user; ``password`` its password.
    """

    def __init__(
        self,
        host: str,
        port: int,
        prefix: str = "edge",
        *,
        telemetry: bool = False,
        tls: dict[str, str | None] | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.prefix = prefix
        self.devices: dict[str, DeviceView] = {}
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._filters = [f"{prefix}/+/config/state", f"{prefix}/+/status"]
        if telemetry:
            self._filters.append(f"{prefix}/+/telemetry")
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"fleet-op-{uuid.uuid4().hex[:8]}"
        )
        if tls is not None:
            self._client.tls_set(
                ca_certs=tls.get("ca_certs"),
                certfile=tls.get("certfile"),
                keyfile=tls.get("keyfile"),
            )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self.host, self.port = host, port

    def __enter__(self) -> FleetOperator:
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise TimeoutError(f"no SUBACK from {self.host}:{self.port}")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        # loop_stop leaves paho's wake-up socket pair open for the garbage collector (see
        # telemetry.mqtt_link.stop_client, which fleet may not import: sibling layers).
        self._client._reset_sockets(sockpair_only=True)

    def settle(self, seconds: float) -> None:
        """Let retained messages arrive."""
        with self._cond:
            self._cond.wait_for(lambda: False, timeout=seconds)

    def publish(self, topic: str, payload: bytes, retain: bool = True) -> None:
        """QoS 1, waiting for the PUBACK."""
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def members(self, group: str) -> list[str]:
        """Devices whose last ``config/state`` lists ``group``."""
        with self._cond:
            return sorted(
                view.device
                for view in self.devices.values()
                if view.state is not None and group in (view.state.get("groups") or [])
            )

    def push(
        self,
        doc: dict[str, Any],
        devices: Sequence[str],
        *,
        group: str | None,
        waves: Sequence[str],
        abort: AbortRule,
        timeout_s: float,
        progress: Callable[[int, int], None] | None = None,
    ) -> RolloutResult:
        """Publish ``doc`` wave by wave and wait for each wave's answers.

        Each wave's devices get the document retained on their own ``config/set``. In a group
        rollout the last wave publishes it on the group's topic instead, which also reaches
        devices not seen yet; the earlier waves' per-device copies are then cleared, so the
        group topic alone holds it. An aborted rollout leaves them (those devices failed it
        or hold it, and the rest never get it).
        """
        payload = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        target, version = str(doc["target"]), int(doc["version"])
        result = RolloutResult({d: "pending" for d in devices})
        sizes = wave_sizes(waves, len(devices)) if devices else []
        copies: list[str] = []
        sent = 0
        for size in sizes:
            if group is not None and size == len(devices):
                self.publish(f"{self.prefix}/fleet/{group}/config/set", payload)
            else:
                for device in devices[sent:size]:
                    self.publish(f"{self.prefix}/{device}/config/set", payload)
                    copies.append(device)
            sent = size
            self.wait(devices[:sent], target, version, timeout_s, progress, result)
            result.waves_done += 1
            if sent < len(devices) and abort.should_abort(result.outcomes):
                result.aborted = True
                return result
        if group is not None:
            if not devices:
                self.publish(f"{self.prefix}/fleet/{group}/config/set", payload)
            for device in copies:
                self.publish(f"{self.prefix}/{device}/config/set", b"")
        return result

    def wait(
        self,
        devices: Sequence[str],
        target: str,
        version: int,
        timeout_s: float,
        progress: Callable[[int, int], None] | None = None,
        result: RolloutResult | None = None,
    ) -> RolloutResult:
        """Wait until each device answered for ``version`` of ``target``, or the timeout."""
        result = result if result is not None else RolloutResult()
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for device in devices:
                    view = self.devices.get(device)
                    state = view.state if view is not None else None
                    result.outcomes[device] = outcome_of(state, target, version)
                    if state is not None and state.get("version") == version:
                        result.reasons[device] = str(state.get("reason") or "")
                done = sum(1 for d in devices if result.outcomes[d] != "pending")
                if progress is not None:
                    progress(done, len(devices))
                left = deadline - time.monotonic()
                if done == len(devices) or left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        for device in devices:
            if result.outcomes[device] == "pending":
                result.outcomes[device] = "no_answer"
        return result

    # -- paho callbacks --------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, *_args: Any) -> None:
        client.subscribe([(f, 1) for f in self._filters])

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        parts = msg.topic[len(self.prefix) + 1 :].split("/")
        if len(parts) < 2 or parts[0] == "fleet" or not msg.payload:
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        device, kind = parts[0], "/".join(parts[1:])
        with self._cond:
            view = self.devices.setdefault(device, DeviceView(device))
            if kind == "config/state":
                view.state = doc
            elif kind == "status":
                view.status = doc
            elif kind == "telemetry":
                view.telemetry = doc
                view.telemetry_at = time.time()
            self._cond.notify_all()
