"""A real paho subscriber for tests, and broker builders with auth or persistence."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.telemetry.mqtt_link import stop_client
from tests.fakes.broker import MosquittoBroker

Message = tuple[str, bytes, bool]


class Subscriber:
    """A paho client that queues every message matching ``topic_filter``.

    Use as a context manager; it is subscribed when ``__enter__`` returns.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topic_filter: str,
        client_id: str = "",
        clean_session: bool = True,
    ) -> None:
        self.messages: queue.Queue[Message] = queue.Queue()
        self.history: list[Message] = []
        self.topic_filter = topic_filter
        self._subscribed = threading.Event()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
        )
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self.host = host
        self.port = port

    def __enter__(self) -> Subscriber:
        self._client.connect(self.host, self.port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise TimeoutError("subscriber did not get its SUBACK")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        stop_client(self._client)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish QoS 1 and wait for the PUBACK."""
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def _on_connect(self, client: paho.Client, *_args: Any) -> None:
        client.subscribe(self.topic_filter, 1)

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        message = (msg.topic, bytes(msg.payload), bool(msg.retain))
        self.history.append(message)
        self.messages.put(message)

    def get(self, timeout: float = 5.0) -> Message:
        return self.messages.get(timeout=timeout)

    def next_json(self, topic: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message on ``topic`` as JSON (earlier messages on other topics are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            got_topic, payload, _retain = self.get(max(0.01, deadline - time.monotonic()))
            if got_topic == topic:
                doc: dict[str, Any] = json.loads(payload)
                return doc

    def status_states(self, topic: str, until: str, timeout: float = 10.0) -> list[str]:
        """Status ``state`` values seen on ``topic`` up to and including ``until``."""
        states: list[str] = []
        deadline = time.monotonic() + timeout
        while not states or states[-1] != until:
            states.append(
                str(self.next_json(topic, max(0.01, deadline - time.monotonic()))["state"])
            )
        return states

    def collect_results(
        self, expected: set[str], timeout: float
    ) -> list[tuple[str, dict[str, Any]]]:
        """(topic, payload) of every result received so far, once all ``expected`` msg_ids
        arrived or at the timeout. Looks at the whole history, not only the queue."""
        missing = set(expected)
        deadline = time.monotonic() + timeout
        done = 0
        while True:
            fresh = self.history[done:]
            done += len(fresh)
            for topic, payload, _retain in fresh:
                if "/results/" in topic:
                    missing.discard(json.loads(payload)["msg_id"])
            remaining = deadline - time.monotonic()
            if not missing or remaining <= 0:
                break
            with contextlib.suppress(queue.Empty):
                self.messages.get(timeout=remaining)  # only a wake-up: history has it all
        return [(t, json.loads(p)) for t, p, _r in self.history if "/results/" in t]


def first_arrival_order_ok(results: list[tuple[str, dict[str, Any]]]) -> bool:
    """Per camera and boot, first arrivals of msg_ids have increasing n."""
    seen: set[str] = set()
    last: dict[str, int] = {}
    for _topic, doc in results:
        msg_id = doc["msg_id"]
        if msg_id in seen:
            continue
        seen.add(msg_id)
        boot, n = msg_id.rsplit(":", 1)
        key = f"{boot}/{doc['camera']}"
        if int(n) < last.get(key, 0):
            return False
        last[key] = int(n)
    return True


def _keep_user() -> str:
    # As root, mosquitto drops to user "mosquitto", which cannot read pytest's 0700 tmp dirs.
    return "user root\n" if os.geteuid() == 0 else ""


def persistent_broker(workdir: Path) -> MosquittoBroker:
    """A mosquitto that keeps subscriber sessions across a restart (a test's subscriber
    reconnects later than the agent may; with a persistent session it still gets everything)."""
    broker = MosquittoBroker(workdir)
    text = broker.conf.read_text(encoding="utf-8").replace("persistence false\n", "")
    broker.conf.write_text(
        text
        + f"persistence true\npersistence_location {workdir}/\nautosave_interval 3600\n"
        + _keep_user(),
        encoding="utf-8",
    )
    return broker


def auth_broker(workdir: Path, user: str, password: str) -> MosquittoBroker:
    """A mosquitto that refuses anonymous clients and knows one user."""
    broker = MosquittoBroker(workdir)
    pwfile = workdir / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(pwfile), user, password],
        check=True,
        timeout=30,
        capture_output=True,
    )
    text = broker.conf.read_text(encoding="utf-8").replace("allow_anonymous true\n", "")
    broker.conf.write_text(
        text + f"allow_anonymous false\npassword_file {pwfile}\n" + _keep_user(),
        encoding="utf-8",
    )
    return broker
