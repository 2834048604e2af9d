"""The MQTT connection: a thin, stateful wrapper over paho-mqtt v2.

What it adds to paho (see reference/peer_systems.md sections 2 and 8):

- a retained Will ``status = offline``, a retained ``online`` birth on *every* (re)connect and a
  retained ``stopped`` on a clean shutdown (Frigate's availability model);
- subscriptions and retained state (``publish_retained``) are re-sent in ``on_connect``, since
  clean sessions forget them and a restarted broker without persistence forgets both;
- a refused CONNACK never counts as connected: the link state is ``auth_failed`` (bad
  credentials / not authorised), ``tls_error`` (handshake or certificate), ``disconnected`` or
  ``connected``, with ``last_error``; transitions are logged once; paho retries with its
  exponential backoff (``reconnect_delay_set``);
- paho's in-memory queue is *not* the spool: ``on_connect`` drops whatever paho still holds from
  the previous connection (``drop_out_messages``), because the Publisher replays those rows from
  the outbox itself, in order and within its window. This avoids paho issue #492 (the whole backlog
  re-sent at once on reconnect, plus duplicates). ``generation`` counts successful connects so
  the Publisher knows when its in-flight set became void.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.clock import Clock
from edge_agent.config import MqttConfig, read_secret
from edge_agent.errors import TelemetryError
from edge_agent.telemetry.inbound import InboundLog, guard
from edge_agent.telemetry.payloads import StatusState, encode, status_payload
from edge_agent.telemetry.topics import Topics

logger = logging.getLogger(__name__)

LinkState = Literal["disconnected", "connected", "auth_failed", "tls_error"]
MessageHandler = Callable[[str, bytes], None]
AckListener = Callable[[int, bool], None]
ConnectionListener = Callable[[bool], None]

# MQTT 5 reason codes paho also maps MQTT 3.1.1 CONNACK 4 and 5 onto.
_AUTH_REASONS = {134, 135}
# Room in paho's queue for status, retained state and command answers beyond the result window.
_CONTROL_HEADROOM = 64
EMBEDDED_HOST = "embedded"


def stop_client(client: paho.Client) -> None:
    """Disconnect, join paho's network thread and close its wake-up socket pair.

    ``loop_start`` opens a loopback TCP socket pair to wake paho's ``select``; ``loop_stop``
    leaves it open and only ``Client.__del__`` closes it (paho issue #627). A client whose
    callbacks are bound methods sits in a reference cycle, so that wait is for the garbage
    collector, which may finalise the two sockets before the client and warn "unclosed socket".
    ``_reset_sockets(sockpair_only=True)`` is paho's own routine for dropping that pair (``loop``
    calls it before making a new one); ``loop_start`` makes a fresh pair, so a restart works.
    """
    client.disconnect()
    client.loop_stop()
    client._reset_sockets(sockpair_only=True)


class MqttLink:
    """One MQTT client connection for this device.

    Args:
        config: the ``mqtt`` config section. ``host: embedded`` connects to 127.0.0.1.
        device_id: this device; the client id unless ``config.client_id`` is set.
        boot_id: this process start's id (carried in every status payload).
        version: agent version string for status payloads.
        clock: the injected clock (status timestamps).
        reconnect_min_s: first retry delay; doubles up to ``reconnect_max_s``.
        reconnect_max_s: longest retry delay.
    """

    def __init__(
        self,
        config: MqttConfig,
        device_id: str,
        boot_id: str,
        version: str,
        clock: Clock,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 30,
    ) -> None:
        self.config = config
        self.topics = Topics(config.topic_prefix, device_id)
        self.boot_id = boot_id
        self.version = version
        self.clock = clock
        self.host = "127.0.0.1" if config.host == EMBEDDED_HOST else config.host
        self._lock = threading.Lock()
        self._state_changed = threading.Condition(self._lock)
        self._state: LinkState = "disconnected"
        self._last_error: str | None = None
        self._generation = 0
        self._connected = threading.Event()
        # Under _lock: whether the connection's subscriptions were sent. A subscribe() before
        # that point is in the snapshot _on_connect sends; one after it must send itself.
        self._subs_sent = False
        self._pending_subs: set[int] = set()
        # SUBACKs that arrived before ``_track_subscribe`` recorded their mid: ``subscribe`` from
        # another thread races paho's network thread, which may read the SUBACK first.
        self._early_subacks: set[int] = set()
        self._subscribed = threading.Event()
        self._started = False
        self._stopping = False
        self._subscriptions: dict[str, tuple[int, MessageHandler]] = {}
        self._retained: dict[str, bytes] = {}
        self._ack_listeners: list[AckListener] = []
        self._conn_listeners: list[ConnectionListener] = []
        # Extra status content (the fleet's running config versions), read at each publish.
        self.status_config_version: Callable[[], Mapping[str, int] | None] = lambda: None

        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id or device_id,
            clean_session=True,
        )
        client.max_inflight_messages_set(config.inflight_window + _CONTROL_HEADROOM)
        client.max_queued_messages_set(config.inflight_window + 2 * _CONTROL_HEADROOM)
        client.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)
        client.will_set(self.topics.status(), self._status_bytes("offline"), qos=1, retain=True)
        if config.username is not None:
            password = read_secret(config.password_file) if config.password_file else None
            client.username_pw_set(config.username, password)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        self._client = client

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in paho's network thread; returns at once (the broker may be down).

        Raises:
            TelemetryError: the TLS files could not be loaded.
        """
        tls = self.config.tls
        if tls is not None:
            try:
                self._client.tls_set(
                    ca_certs=str(tls.ca_file) if tls.ca_file else None,
                    certfile=str(tls.cert_file) if tls.cert_file else None,
                    keyfile=str(tls.key_file) if tls.key_file else None,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
                self._client.tls_insecure_set(tls.insecure)
            except (OSError, ValueError) as err:
                raise TelemetryError(f"MQTT TLS setup failed: {err}") from err
        self._client.connect_async(self.host, self.config.port, keepalive=self.config.keepalive_s)
        self._client.loop_start()
        self._started = True

    def stop(self, timeout_s: float = 5.0, publish_stopped: bool = True) -> None:
        """Publish a retained ``stopped``, wait for its PUBACK, disconnect, join the thread.

        Args:
            timeout_s: how long to wait for the ``stopped`` PUBACK.
            publish_stopped: False leaves the last status in place (the broker does not send
                the Will on a clean DISCONNECT, so subscribers keep seeing ``online``).
        """
        if not self._started:
            return
        self._stopping = True
        if publish_stopped and self._connected.is_set():
            info = self._client.publish(
                self.topics.status(), self._status_bytes("stopped"), qos=1, retain=True
            )
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout_s)
        stop_client(self._client)
        self._started = False
        self._set_state("disconnected", None)

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until connected (or the timeout); True when connected."""
        return self._connected.wait(timeout_s)

    def wait_subscribed(self, timeout_s: float) -> bool:
        """Block until connected and every subscription is acknowledged (SUBACK)."""
        return self._connected.wait(timeout_s) and self._subscribed.wait(timeout_s)

    def wait_state(self, state: LinkState, timeout_s: float) -> bool:
        """Block until the link is in ``state`` (or the timeout); True when it is."""
        with self._state_changed:
            return self._state_changed.wait_for(lambda: self._state == state, timeout_s)

    # -- state -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True only after an accepted CONNACK and until the connection drops."""
        return self._connected.is_set()

    @property
    def state(self) -> LinkState:
        """connected, disconnected, auth_failed or tls_error."""
        return self._state

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt failed (never contains the password)."""
        return self._last_error

    @property
    def generation(self) -> int:
        """Successful connects so far; a change voids everything in flight."""
        return self._generation

    def _set_state(self, state: LinkState, error: str | None) -> None:
        with self._lock:
            changed = state != self._state or (error is not None and error != self._last_error)
            self._state = state
            if error is not None:
                self._last_error = error
            self._state_changed.notify_all()
        if not changed:
            return
        where = f"{self.host}:{self.config.port}"
        if state == "connected":
            logger.info("MQTT connected to %s", where)
        elif state == "disconnected" and self._stopping:
            logger.info("MQTT disconnected from %s", where)
        elif state == "disconnected":
            logger.warning("MQTT not connected to %s: %s (retrying)", where, error)
        else:
            logger.error("MQTT %s at %s: %s (retrying with backoff)", state, where, error)

    # -- publishing and subscribing --------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int | None:
        """Hand one message to paho; returns its mid, or None when it was not accepted.

        Not accepted means not connected or paho's bounded queue is full: the caller keeps the
        message (in the outbox) and tries again later.
        """
        if not self._connected.is_set():
            return None
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None
        return int(info.mid)

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """Publish retained state now (if connected) and again after every reconnect."""
        with self._lock:
            self._retained[topic] = payload
        if self._connected.is_set():
            self._client.publish(topic, payload, qos=1, retain=True)

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Route messages matching ``topic_filter`` to ``handler(topic, payload)``.

        The handler runs on paho's network thread: it must return quickly. It is wrapped in
        the inbound boundary (:func:`inbound.guard`), so even a handler that forgot its own
        cannot let a message stop the MQTT loop; handlers that answer errors guard themselves.
        """
        safe = guard(handler, None, InboundLog(self.clock, topic_filter))

        def _route(_client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
            safe(message.topic, bytes(message.payload))

        self._client.message_callback_add(topic_filter, _route)
        with self._lock:
            self._subscriptions[topic_filter] = (qos, handler)
            send_now = self._subs_sent
        # Not `connected`: that is set only after _on_connect has sent its snapshot, so a
        # subscription added in between would be sent by neither.
        if send_now:
            self._track_subscribe(self._client.subscribe(topic_filter, qos))

    def _track_subscribe(self, result: tuple[MQTTErrorCode, int | None]) -> None:
        rc, mid = result
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
            with self._lock:
                if mid in self._early_subacks:
                    self._early_subacks.discard(mid)
                else:
                    self._pending_subs.add(mid)
                    self._subscribed.clear()

    def add_ack_listener(self, listener: AckListener) -> None:
        """Call ``listener(mid, ok)`` on each PUBACK (paho's thread, under its lock: be quick)."""
        self._ack_listeners.append(listener)

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """Call ``listener(connected)`` after each connect and disconnect."""
        self._conn_listeners.append(listener)

    def _status_bytes(self, state: StatusState) -> bytes:
        return encode(
            status_payload(
                state, self.clock.wall(), self.version, self.boot_id, self.status_config_version()
            )
        )

    def publish_status(self) -> None:
        """Re-publish the retained ``online`` status now (its content changed)."""
        if self._connected.is_set():
            self._client.publish(
                self.topics.status(), self._status_bytes("online"), qos=1, retain=True
            )

    # -- paho callbacks (network thread) ---------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        _flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Any,
    ) -> None:
        if reason_code.is_failure:
            code = int(reason_code.value)
            state: LinkState = "auth_failed" if code in _AUTH_REASONS else "disconnected"
            self._set_state(state, f"connection refused: {reason_code} ({code})")
            return
        # The outbox replays what paho still holds from the last connection (see module doc).
        client.drop_out_messages()
        with self._lock:
            retained = list(self._retained.items())
            subscriptions = [(f, qos) for f, (qos, _h) in self._subscriptions.items()]
            self._generation += 1
            self._pending_subs.clear()
            self._early_subacks.clear()  # mids of the last connection mean nothing now
            self._subscribed.set()
            self._subs_sent = True
        # Subscribe before announcing `online`: whoever reacts to `online` reaches a listener.
        if subscriptions:
            self._track_subscribe(client.subscribe(subscriptions))
        client.publish(self.topics.status(), self._status_bytes("online"), qos=1, retain=True)
        for topic, payload in retained:
            client.publish(topic, payload, qos=1, retain=True)
        self._connected.set()
        self._set_state("connected", None)
        for listener in self._conn_listeners:
            listener(True)

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        # paho calls this inside its `except OSError` block, so the exception is still current.
        err = sys.exc_info()[1]
        if isinstance(err, ssl.SSLError):
            self._set_state("tls_error", f"TLS: {err}")
        else:
            self._set_state("disconnected", f"connect failed: {err}")

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Any,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        with self._lock:
            self._subs_sent = False  # the next connection's snapshot sends them all
        if was_connected:
            self._set_state("disconnected", None if self._stopping else f"lost: {reason_code}")
            for listener in self._conn_listeners:
                listener(False)

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, mid: int, _codes: Any, _properties: Any
    ) -> None:
        with self._lock:
            if mid in self._pending_subs:
                self._pending_subs.discard(mid)
            else:
                self._early_subacks.add(mid)
            if not self._pending_subs:
                self._subscribed.set()

    def _on_publish(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        _properties: Any,
    ) -> None:
        ok = not reason_code.is_failure
        for listener in self._ack_listeners:
            listener(mid, ok)
