"""The whole agent as a subprocess, a recording MQTT subscriber and outbox inspection.

Everything here is real: ``python -m edge_agent run`` in a child process, paho against a
real mosquitto, and the agent's own SQLite outbox read through a read-only connection.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.telemetry.mqtt_link import stop_client
from tests.fakes.broker import MosquittoBroker

if TYPE_CHECKING:
    from edge_agent.agent.daemon import Agent

SIM_BOARD = "jetson-orin-nano"


def new_device_id() -> str:
    """A device id no other test (or earlier run on a shared broker) uses."""
    return f"it-{uuid.uuid4().hex[:10]}"


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write an agent config as YAML."""
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def agent_config(tmp_path: Path, port: int, device: str, **sections: Any) -> dict[str, Any]:
    """A small config for ``port``: state in ``tmp_path/state``, telemetry every 0.5 s."""
    config: dict[str, Any] = {
        "device_id": device,
        "state_dir": str(tmp_path / "state"),
        "mqtt": {"host": "127.0.0.1", "port": port},
        "telemetry": {"interval_s": 0.5},
    }
    config.update(sections)
    return config


# -- the agent process ------------------------------------------------------------------------


class AgentProcess:
    """``edge-agent run`` in a child process; stdout/stderr go to files (no pipe stalls).

    Use as a context manager: a process still running at exit is killed.
    """

    def __init__(
        self,
        config: Path,
        *extra: str,
        sim: bool = True,
        name: str = "agent",
        tmpdir: Path | None = None,
    ) -> None:
        argv = [sys.executable, "-m", "edge_agent", "run", "--config", str(config)]
        if sim:
            argv += ["--sim", SIM_BOARD]
        argv += ["--json", "--no-live", *extra]
        folder = config.parent
        self.stdout_path = folder / f"{name}.stdout"
        self.stderr_path = folder / f"{name}.stderr"
        env = dict(os.environ)
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "STATE_DIRECTORY"):
            env.pop(key, None)
        if tmpdir is not None:
            env["TMPDIR"] = str(tmpdir)  # where --sim puts its throwaway board
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
            )

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout_s: float) -> int:
        """Wait for the process to end; its exit code."""
        return self.proc.wait(timeout=timeout_s)

    def terminate(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """SIGTERM, wait for an exit 0 and return the JSON summary."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout_s)
        assert code == 0, f"agent exited {code}:\n{self.stderr()[-4000:]}"
        return self.summary()

    def kill(self) -> None:
        """``kill -9``: no flush, no ``stopped``; the broker publishes the Will."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def summary(self) -> dict[str, Any]:
        """The ``--json`` summary: one object on the last stdout line."""
        lines = self.stdout().strip().splitlines()
        assert lines, f"no summary on stdout; stderr:\n{self.stderr()[-4000:]}"
        doc: dict[str, Any] = json.loads(lines[-1])
        return doc


def run_to_exit(
    config: Path, *extra: str, sim: bool = True, timeout_s: float = 60.0
) -> tuple[int, str]:
    """Run the agent until it exits by itself; (exit code, stderr)."""
    with AgentProcess(config, *extra, sim=sim, name="oneshot") as agent:
        code = agent.wait(timeout_s)
        return code, agent.stderr()


# -- a recording subscriber -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the subscriber saw it."""

    topic: str
    payload: bytes
    retain: bool
    connection: int  # which of the subscriber's connections delivered it (1, 2, ...)
    at_mono: float

    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.payload)
        return doc


class Recorder:
    """A paho subscriber that records every message and lets tests wait on the history.

    Waits use a condition variable notified by each message, so nothing sleeps or polls.

    Args:
        broker: the mosquitto to connect to.
        topic_filter: what to subscribe (QoS 1).
        persistent: a fixed client id and ``clean_session=False``, so a broker with
            persistence keeps the session (and queues messages) across its restart.
    """

    def __init__(
        self, broker: MosquittoBroker, topic_filter: str, persistent: bool = False
    ) -> None:
        self.topic_filter = topic_filter
        self.history: list[Received] = []
        self.connections = 0
        self._cond = threading.Condition()
        client_id = f"rec-{uuid.uuid4().hex[:10]}"
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent
        )
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._broker = broker

    def __enter__(self) -> Recorder:
        self._client.connect(self._broker.host, self._broker.port, keepalive=10)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise TimeoutError(f"no SUBACK for {self.topic_filter}")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        stop_client(self._client)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish QoS 1 and wait for the PUBACK."""
        self._client.publish(topic, payload, qos=1).wait_for_publish(10)

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """Publish QoS 1 retained (an empty payload clears the retained message)."""
        self._client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)

    def _on_connect(self, client: paho.Client, *_args: Any) -> None:
        with self._cond:
            self.connections += 1
        client.subscribe(self.topic_filter, 1)

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.history.append(
                Received(
                    msg.topic,
                    bytes(msg.payload),
                    bool(msg.retain),
                    self.connections,
                    time.monotonic(),
                )
            )
            self._cond.notify_all()

    def snapshot(self) -> list[Received]:
        with self._cond:
            return list(self.history)

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout_s: float) -> bool:
        """Block until ``predicate(history)`` holds (re-checked on every message)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.history), timeout_s)

    def wait_json(
        self,
        topic: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout_s: float,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first JSON message on ``topic`` (from history index ``after``) that matches."""
        found: list[dict[str, Any]] = []
        cursor = [after]  # scan only what arrived since the last check

        def match(history: list[Received]) -> bool:
            for item in history[cursor[0] :]:
                cursor[0] += 1
                if item.topic == topic and predicate(doc := item.json()):
                    found.append(doc)
                    return True
            return False

        if not self.wait_for(match, timeout_s):
            seen = [m.payload[:200] for m in self.snapshot()[after:] if m.topic == topic]
            raise AssertionError(f"no matching message on {topic} in {timeout_s} s; saw {seen}")
        return found[0]

    def wait_ids(self, device: str, expected: set[str], timeout_s: float) -> set[str]:
        """Wait until every msg_id in ``expected`` arrived; the result msg_ids seen by then."""
        prefix = f"edge/{device}/results/"
        got: set[str] = set()
        cursor = [0]

        def complete(history: list[Received]) -> bool:
            for item in history[cursor[0] :]:
                cursor[0] += 1
                if item.topic.startswith(prefix):
                    got.add(item.json()["msg_id"])
            return expected <= got

        self.wait_for(complete, timeout_s)
        return got

    def results(self, device: str) -> list[tuple[str, dict[str, Any]]]:
        """(topic, payload) of every result of ``device`` in arrival order."""
        prefix = f"edge/{device}/results/"
        return [(m.topic, m.json()) for m in self.snapshot() if m.topic.startswith(prefix)]

    def result_ids(self, device: str) -> set[str]:
        return {doc["msg_id"] for _topic, doc in self.results(device)}


def count_results(device: str) -> Callable[[list[Received]], int]:
    prefix = f"edge/{device}/results/"
    return lambda history: sum(1 for m in history if m.topic.startswith(prefix))


def first_arrival_violations(messages: list[Received]) -> list[str]:
    """Per subscriber connection, boot and camera, first arrivals must have increasing n.

    A resend (a msg_id seen before) is skipped: at-least-once allows repeats anywhere.
    """
    seen: set[str] = set()
    last: dict[tuple[int, str, str], int] = {}
    problems = []
    for item in messages:
        if "/results/" not in item.topic:
            continue
        doc = item.json()
        msg_id = doc["msg_id"]
        if msg_id in seen:
            continue
        seen.add(msg_id)
        boot, n = msg_id.rsplit(":", 1)
        key = (item.connection, boot, doc["camera"])
        if int(n) < last.get(key, 0):
            problems.append(f"{msg_id} on {doc['camera']} after n={last[key]}")
        last[key] = max(int(n), last.get(key, 0))
    return problems


# -- the outbox, read-only --------------------------------------------------------------------


def outbox_result_ids(path: Path) -> set[str]:
    """msg_ids of the results stored in an agent's outbox (read-only; WAL included)."""
    if not path.exists():
        return set()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT payload FROM outbox WHERE topic LIKE '%/results/%'").fetchall()
    except sqlite3.OperationalError:
        return set()  # the agent has not created the table yet
    finally:
        db.close()
    return {json.loads(bytes(row[0]))["msg_id"] for row in rows}


def wait_outbox(path: Path, at_least: int, timeout_s: float) -> set[str]:
    """Poll the outbox until it holds ``at_least`` results (the agent has no other signal
    while the broker is down); returns the ids seen last."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout_s
    ids = outbox_result_ids(path)
    while len(ids) < at_least and time.monotonic() < deadline:
        tick.wait(0.2)
        ids = outbox_result_ids(path)
    return ids


def persistent_mosquitto(workdir: Path) -> MosquittoBroker:
    """A mosquitto that keeps subscriber sessions across its restart.

    Without persistence a restarted broker forgets the test's subscriber, and whatever the agent
    replays before the subscriber has resubscribed is delivered to nobody: a test race, not a
    loss by the agent.
    """
    broker = MosquittoBroker(workdir)
    text = broker.conf.read_text(encoding="utf-8").replace("persistence false\n", "")
    keep_user = "user root\n" if os.geteuid() == 0 else ""  # else it cannot write tmp_path
    broker.conf.write_text(
        text
        + f"persistence true\npersistence_location {workdir}/\nautosave_interval 3600\n"
        + keep_user,
        encoding="utf-8",
    )
    return broker


def wait_results(agent: Agent, more_than: int, timeout_s: float = 20.0) -> int:
    """Poll an in-process agent until it has more than ``more_than`` results; the count."""
    tick = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        count = agent.snapshot().results
        if count > more_than:
            return count
        tick.wait(0.05)
    raise AssertionError(f"no results beyond {more_than} within {timeout_s} s")
