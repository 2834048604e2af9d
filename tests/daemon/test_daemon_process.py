"""The daemon as systemd runs it: a subprocess with NOTIFY_SOCKET, a real broker, signals."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import psutil
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.telemetry.mqtt_link import stop_client
from tests.fakes.broker import MosquittoBroker
from tests.fakes.mjpeg import SilentMjpegCamera
from tests.fakes.wedge_model import build_wedge_model

pytestmark = pytest.mark.slow


@dataclass
class Subscriber:
    client: mqtt.Client
    messages: queue.Queue[tuple[str, dict[str, Any], float]] = field(default_factory=queue.Queue)

    def collect(self, until: float) -> list[tuple[str, dict[str, Any], float]]:
        out = []
        while True:
            remaining = until - time.monotonic()
            try:
                out.append(self.messages.get(timeout=max(0.01, remaining)))
            except queue.Empty:
                return out
            if remaining <= 0:
                return out


@pytest.fixture
def subscriber(mosquitto: MosquittoBroker) -> Iterator[Subscriber]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
    sub = Subscriber(client)
    connected = queue.Queue[bool]()

    def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        c.subscribe("edge/#", qos=1)
        connected.put(True)

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = {"raw": msg.payload.decode("utf-8", "replace")}
        sub.messages.put((msg.topic, body, time.monotonic()))

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    assert connected.get(timeout=10)
    yield sub
    stop_client(client)


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield sock, path
    sock.close()


def _write_config(tmp_path: Path, broker: MosquittoBroker, **extra: Any) -> tuple[Path, str]:
    device = f"dev-{uuid.uuid4().hex[:8]}"
    config = {
        "device_id": device,
        "state_dir": str(tmp_path / "state"),
        "mqtt": {"host": broker.host, "port": broker.port},
        "telemetry": {"interval_s": 0.5},
        # The board boots in 25W; 7W (maxq) gates more TPCs, so the switch reboots the sim.
        "profile": {"initial": "maxq", "allow_reboot": True},
        **extra,
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, device


def _start(config: Path, notify_path: str, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="2000000")
    env.pop("WATCHDOG_PID", None)
    argv = [sys.executable, "-m", "edge_agent", "run", "--config", str(config)]
    argv += ["--sim", "jetson-orin-nano", "--json", "--no-live", *extra]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _datagrams(sock: socket.socket, until: float) -> Iterator[tuple[str, float]]:
    while (remaining := until - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return
        yield data.decode(), time.monotonic()


def test_ready_watchdog_and_orderly_stop(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    subscriber: Subscriber,
    notify: tuple[socket.socket, str],
) -> None:
    sock, notify_path = notify
    config, device = _write_config(tmp_path, mosquitto)
    started = time.monotonic()
    proc = _start(config, notify_path)
    try:
        ready_at = None
        pings = 0
        for text, at in _datagrams(sock, started + 60):
            if "READY=1" in text and ready_at is None:
                ready_at = at
            if "WATCHDOG=1" in text and ready_at is not None:
                pings += 1
                if pings >= 2:
                    break
        assert ready_at is not None, "no READY within a minute"
        assert pings >= 2
        rss_mb = psutil.Process(proc.pid).memory_info().rss / 2**20
        assert rss_mb < 200, f"RSS {rss_mb:.0f} MB"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["results"] > 0
    assert summary["perf_per_watt"] is not None
    assert summary["perf_per_watt"] > 0
    assert summary["avg_w"] is not None
    assert summary["avg_w"] > 0
    assert summary["profile"] == "maxq"
    messages = subscriber.collect(time.monotonic() + 5)
    results = [b for t, b, _ in messages if t.startswith(f"edge/{device}/results/")]
    statuses = [b["state"] for t, b, _ in messages if t == f"edge/{device}/status"]
    assert statuses[0] == "online"
    assert statuses[-1] == "stopped"
    ids = sorted(int(r["msg_id"].split(":")[1]) for r in results)
    assert ids == list(range(1, summary["results"] + 1)), "every result delivered, no gaps"
    first_result_at = min(at for t, _, at in messages if t.startswith(f"edge/{device}/results/"))
    assert first_result_at - started < 3.0, f"first result after {first_result_at - started:.2f} s"
    telemetry = [b for t, b, _ in messages if t == f"edge/{device}/telemetry"]
    assert telemetry
    assert any(b["power"] and b["power"]["total_w"] > 0 for b in telemetry)


def _black_then_white(path: Path, dark: int, bright: int, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (32, 32))
    for index in range(dark + bright):
        value = 0 if index < dark else 255
        writer.write(np.full((32, 32, 3), value, dtype=np.uint8))
    writer.release()
    return path


def test_wedged_engine_stops_watchdog_pings(
    tmp_path: Path, mosquitto: MosquittoBroker, notify: tuple[socket.socket, str]
) -> None:
    sock, notify_path = notify
    model = build_wedge_model(tmp_path / "wedge.onnx")
    (tmp_path / "wedge.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "wedge",
                "task": "classification",
                "labels": [str(i) for i in range(10)],
                "preprocess": {"color": "gray", "scale": 1 / 255},
            }
        ),
        encoding="utf-8",
    )
    video = _black_then_white(tmp_path / "dark-then-bright.avi", dark=40, bright=400)
    config, _ = _write_config(
        tmp_path,
        mosquitto,
        model={"path": str(model), "providers": ["cpu"], "warmup_runs": 1},
        cameras=[{"name": "door", "uri": f"file://{video}", "fps": 10, "loop": False}],
    )
    proc = _start(config, notify_path)
    try:
        ready = False
        last_ping = None
        silence = 0.0
        # 4 s of dark frames, then the engine wedges on the first bright one and the pings
        # (every 0.5 s while healthy) must stop. STATUS datagrams keep coming from the
        # reporter, so each arrival measures the silence: stop as soon as it is proven
        # (4 s, eight missed pings); 25 s is only the backstop.
        for text, at in _datagrams(sock, time.monotonic() + 25):
            if "READY=1" in text:
                ready = True
            if "WATCHDOG=1" in text:
                last_ping = at
            elif last_ping is not None:
                silence = at - last_ping
                if silence > 4.0:
                    break
        assert ready, "READY after the first (dark) results"
        assert last_ping is not None, "pings while dark frames flowed"
        assert silence > 4.0, f"pings continued until {silence:.1f} s before the end"
        assert proc.poll() is None, "the agent is alive: the silence is the watchdog's"
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_wedged_capture_stops_watchdog_pings(
    tmp_path: Path, mosquitto: MosquittoBroker, notify: tuple[socket.socket, str]
) -> None:
    """A camera that stays ``up`` but delivers nothing: the watchdog must notice and say so."""
    sock, notify_path = notify
    with SilentMjpegCamera(frames=30) as camera:
        config, _ = _write_config(
            tmp_path, mosquitto, cameras=[{"name": "gate", "uri": camera.url}]
        )
        proc = _start(config, notify_path)
        try:
            ready, last_ping, silence = False, None, 0.0
            for text, at in _datagrams(sock, time.monotonic() + 40):
                if "READY=1" in text:
                    ready = True
                if "WATCHDOG=1" in text:
                    last_ping = at
                elif last_ping is not None and camera.silent.is_set():
                    silence = at - last_ping
                    if silence > 3.0:
                        break
            assert ready, "READY after the first frames"
            assert last_ping is not None, "pings while frames flowed"
            assert silence > 3.0, "pings went on while the camera was silent"
            assert camera.sent == 30
            assert proc.poll() is None
        finally:
            proc.kill()
            _, stderr = proc.communicate(timeout=10)
    lines = stderr.splitlines()
    stalled = [i for i, line in enumerate(lines) if "pipeline stalled" in line]
    assert len(stalled) == 1, stderr[-3000:]
    # Reported while the camera still claimed to be up: before any "camera gate down".
    down = [i for i, line in enumerate(lines) if "camera gate down" in line]
    assert not down or down[0] > stalled[0]
