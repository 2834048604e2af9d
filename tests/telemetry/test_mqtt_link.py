"""The MQTT link against real brokers: availability, retries, refused credentials."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as paho
import psutil
import pytest
from paho.mqtt.enums import MQTTErrorCode

from edge_agent.clock import FakeClock
from edge_agent.config import MqttConfig
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.payloads import load_schema
from tests.fakes.broker import MosquittoBroker, free_port
from tests.telemetry.mqtt_helpers import Subscriber, auth_broker


def make_link(port: int, prefix: str, **mqtt: object) -> MqttLink:
    config = MqttConfig.model_validate(
        {"host": "127.0.0.1", "port": port, "topic_prefix": prefix, **mqtt}
    )
    return MqttLink(
        config, "dev1", "boot123", "1.2.3", FakeClock(), reconnect_min_s=1, reconnect_max_s=1
    )


def test_online_on_start_and_stopped_on_clean_stop(
    mosquitto: MosquittoBroker, unique_prefix: str
) -> None:
    topic = f"{unique_prefix}/dev1/status"
    with Subscriber(mosquitto.host, mosquitto.port, topic) as sub:
        link = make_link(mosquitto.port, unique_prefix)
        link.start()
        online = sub.next_json(topic)
        assert link.wait_state("connected", 5)
        link.stop()
        stopped = sub.next_json(topic)
    assert (online["state"], stopped["state"]) == ("online", "stopped")
    for doc in (online, stopped):
        jsonschema.validate(doc, load_schema("status"))
        assert (doc["boot_id"], doc["version"], doc["ts"]) == ("boot123", "1.2.3", 1_700_001_000.0)
    assert (link.state, link.connected) == ("disconnected", False)
    # Retained: a late subscriber still sees the last state.
    with Subscriber(mosquitto.host, mosquitto.port, topic) as late:
        _t, payload, retained = late.get()
    assert retained
    assert b'"stopped"' in payload


def _tcp_sockets() -> set[tuple[Any, Any]]:
    return {(c.laddr, c.raddr) for c in psutil.Process().net_connections(kind="tcp")}


def test_stop_closes_every_socket_and_a_restart_reconnects(
    mosquitto: MosquittoBroker, unique_prefix: str
) -> None:
    # paho's loop_stop leaves its loopback wake-up socket pair for the garbage collector,
    # which reports it (unclosed socket) in whatever test happens to run a collection.
    before = _tcp_sockets()
    link = make_link(mosquitto.port, unique_prefix)
    for _run in range(2):
        link.start()
        assert link.wait_connected(10)
        opened = _tcp_sockets() - before
        # The broker connection plus the wake-up pair, both of whose ends are ours.
        assert len(opened) == 3, opened
        assert sum(raddr[1] == mosquitto.port for _l, raddr in opened) == 1
        link.stop()
        assert _tcp_sockets() - before == set()


def test_broker_down_at_start_then_up(tmp_path: Path, unique_prefix: str) -> None:
    broker = MosquittoBroker(tmp_path, port=free_port())
    link = make_link(broker.port, unique_prefix)
    link.start()
    try:
        assert link.wait_state("disconnected", 1)
        assert not link.wait_connected(1.2)  # at least one refused attempt went by
        assert link.last_error is not None
        assert "refused" in link.last_error.lower()
        broker.start()
        assert link.wait_connected(10)
        assert link.state == "connected"
        assert link.generation == 1
    finally:
        link.stop()
        broker.stop()


def test_reconnect_sends_birth_again_and_resubscribes(
    own_mosquitto: MosquittoBroker, unique_prefix: str
) -> None:
    link = make_link(own_mosquitto.port, unique_prefix)
    received: list[bytes] = []
    got = threading.Event()

    def on_set(_topic: str, payload: bytes) -> None:
        received.append(payload)
        got.set()

    link.subscribe(f"{unique_prefix}/dev1/profile/set", on_set)
    link.start()
    assert link.wait_connected(5)
    own_mosquitto.stop()
    assert link.wait_state("disconnected", 5)
    own_mosquitto.start()
    assert link.wait_subscribed(10)
    assert link.generation == 2
    status = f"{unique_prefix}/dev1/status"
    with Subscriber(own_mosquitto.host, own_mosquitto.port, f"{unique_prefix}/#") as sub:
        # A fresh broker has nothing retained but the birth from the reconnect.
        assert sub.next_json(status)["state"] == "online"
        sub.publish(f"{unique_prefix}/dev1/profile/set", b"maxq")
        assert got.wait(5)
        link.stop()
        assert sub.next_json(status)["state"] == "stopped"
    assert received == [b"maxq"]


def test_wrong_password_is_auth_failed_not_connected(
    tmp_path: Path, unique_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "mqtt.pass"
    secret.write_text("wrong-Pa55word\n", encoding="utf-8")
    broker = auth_broker(tmp_path, "agent", "right-Pa55word")
    broker.start()
    link = make_link(broker.port, unique_prefix, username="agent", password_file=secret)
    caplog.set_level(logging.DEBUG)
    link.start()
    try:
        assert link.wait_state("auth_failed", 10)
        assert not link.connected
        assert link.last_error is not None
        assert "Not authorized" in link.last_error or "Bad user name" in link.last_error
        assert link.publish("x/y", b"1") is None
    finally:
        link.stop()
        broker.stop()
    assert "Pa55word" not in caplog.text
    errors = [
        r for r in caplog.records if r.name.endswith("mqtt_link") and r.levelno >= logging.ERROR
    ]
    assert len(errors) == 1  # logged on the transition only, not on every retry


def test_right_password_connects(tmp_path: Path, unique_prefix: str) -> None:
    secret = tmp_path / "mqtt.pass"
    secret.write_text("right-Pa55word\n", encoding="utf-8")
    broker = auth_broker(tmp_path, "agent", "right-Pa55word")
    broker.start()
    link = make_link(broker.port, unique_prefix, username="agent", password_file=secret)
    link.start()
    try:
        assert link.wait_connected(10)
        assert link.state == "connected"
    finally:
        link.stop()
        broker.stop()


def test_embedded_host_means_loopback() -> None:
    link = make_link(1883, "edge", host="embedded")
    assert link.host == "127.0.0.1"


def test_stop_without_stopped_keeps_last_status(
    mosquitto: MosquittoBroker, unique_prefix: str
) -> None:
    topic = f"{unique_prefix}/dev1/status"
    link = make_link(mosquitto.port, unique_prefix)
    link.start()
    assert link.wait_connected(5)
    link.stop(publish_stopped=False)
    with Subscriber(mosquitto.host, mosquitto.port, topic) as late:
        _topic, payload, retained = late.get()
    assert retained
    assert json.loads(payload)["state"] == "online"  # a clean DISCONNECT sends no Will


class _PreemptedSubscriber(paho.Client):
    """paho, except that ``subscribe`` from the test thread returns only once its SUBACK has
    been handled: what a thread preempted right after sending SUBSCRIBE sees on a busy host."""

    def subscribe(self, *args: Any, **kwargs: Any) -> tuple[MQTTErrorCode, int | None]:
        if threading.current_thread() is not threading.main_thread():
            return super().subscribe(*args, **kwargs)
        handled = threading.Event()
        link_callback = self.on_subscribe
        assert link_callback is not None

        def relay(*cb_args: Any) -> None:
            link_callback(*cb_args)
            handled.set()

        self.on_subscribe = relay
        result = super().subscribe(*args, **kwargs)
        assert handled.wait(5), "no SUBACK"
        self.on_subscribe = link_callback
        return result


def test_a_suback_that_beats_the_subscribe_call_still_counts(
    mosquitto: MosquittoBroker, unique_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paho, "Client", _PreemptedSubscriber)
    link = make_link(mosquitto.port, unique_prefix)
    link.start()
    try:
        assert link.wait_subscribed(10)  # connected, nothing subscribed yet
        link.subscribe(f"{unique_prefix}/dev1/x", lambda _topic, _payload: None)
        assert link.wait_subscribed(5)
    finally:
        link.stop()


class _SubscribeMidConnect(MqttLink):
    """A link on which another thread's ``subscribe`` lands inside ``_on_connect``: after it
    took its snapshot of the subscriptions, before it marks the link connected (here, while
    it builds the ``online`` message)."""

    def __init__(self, late: tuple[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._late: tuple[str, Any] | None = late

    def _status_bytes(self, state: Any) -> bytes:
        if state == "online" and self._late is not None:
            topic, handler = self._late
            self._late = None
            self.subscribe(topic, handler)
        return super()._status_bytes(state)


def test_a_subscribe_that_lands_while_the_link_connects_is_not_lost(
    mosquitto: MosquittoBroker, unique_prefix: str
) -> None:
    """It used to be sent by neither: the snapshot was taken, and ``connected`` not yet set
    (a policy handler started just as the agent connected never heard its commands)."""
    topic = f"{unique_prefix}/dev1/late"
    got: list[bytes] = []
    heard = threading.Event()

    def handler(_topic: str, payload: bytes) -> None:
        got.append(payload)
        heard.set()

    config = MqttConfig.model_validate(
        {"host": "127.0.0.1", "port": mosquitto.port, "topic_prefix": unique_prefix}
    )
    link = _SubscribeMidConnect(
        (topic, handler), config, "dev1", "boot123", "1.2.3", FakeClock(), reconnect_min_s=1
    )
    link.start()
    try:
        assert link.wait_connected(10)
        assert link.wait_subscribed(5)
        with Subscriber(mosquitto.host, mosquitto.port, f"{unique_prefix}/zz") as sub:
            sub.publish(topic, b"hello")
        assert heard.wait(5), "the late subscription was never sent"
        assert got == [b"hello"]
    finally:
        link.stop()
