#!/usr/bin/env python3
"""MQTT results throughput through the outbox, QoS 1, with zero loss across a broker restart.

Starts its own mosquitto on a free port (persistence on, ``max_queued_messages 0`` so the
subscriber is never silently dropped), a subscriber in a separate process (its own GIL) that
counts ``msg_id`` values, and pushes results through Outbox + Publisher:

1. baseline: bare paho QoS 1 publishes (same window, no outbox) -> results/s;
2. steady: N results through Outbox + Publisher, timed until the last PUBACK -> results/s;
3. restart: N results while the broker is stopped for a while and restarted on the same port.

The subscriber checks that every msg_id of phases 2 and 3 arrived and that per-camera order of
first arrivals holds. Last line: ``results_per_s=<phase 2 rate> lost=<missing msg_ids>``.
Target (DESIGN.md section 7): >= 2000 results/s, 0 lost.

Usage: ``python tools/bench_mqtt.py [--quick]`` (``--quick`` runs in well under a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.clock import SystemClock
from edge_agent.config import MqttConfig
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.outbox import Outbox
from edge_agent.telemetry.payloads import encode, new_boot_id, result_payload
from edge_agent.telemetry.publisher import Publisher, PublisherStats

CAMERAS = ("cam0", "cam1", "cam2", "cam3")
PREFIX = "bench"
WINDOW = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """A mosquitto process that keeps its port and its persistent sessions across restarts."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise SystemExit("mosquitto is not installed (apt-get install -y mosquitto)")
        self.binary = binary
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {workdir}/\nautosave_interval 3600\n"
            "max_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n"
            # As root mosquitto drops to user "mosquitto", which cannot save sessions here.
            + ("user root\n" if os.geteuid() == 0 else ""),
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise SystemExit("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def subscriber_main(port: int, prefix: str, out: Path) -> None:
    """Subprocess: count msg_ids until the end marker arrives, then write a JSON summary."""
    seen: set[str] = set()
    last: dict[str, int] = {}
    state = {"total": 0, "order_errors": 0}
    done = threading.Event()
    ready = threading.Event()

    def on_connect(client: paho.Client, *_: Any) -> None:
        client.subscribe([(f"{prefix}/#", 1)])

    def on_subscribe(*_: Any) -> None:
        ready.set()

    def on_message(_c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic.endswith("/bench/end"):
            done.set()
            return
        if "/results/" not in msg.topic:
            return
        doc = json.loads(msg.payload)
        msg_id = doc["msg_id"]
        state["total"] += 1
        if msg_id in seen:
            return
        seen.add(msg_id)
        n = int(msg_id.rsplit(":", 1)[1])
        key = f"{msg_id.rsplit(':', 1)[0]}/{doc['camera']}"
        if n < last.get(key, 0):
            state["order_errors"] += 1
        last[key] = n

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{prefix}-sub", clean_session=False
    )
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.reconnect_delay_set(1, 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait(10)
    print("ready", flush=True)
    done.wait(600)
    client.disconnect()
    client.loop_stop()
    out.write_text(
        json.dumps(
            {"ids": sorted(seen), "total": state["total"], "order_errors": state["order_errors"]}
        ),
        encoding="utf-8",
    )


def baseline(port: int, count: int) -> float:
    """Bare paho QoS 1 at the same window: the ceiling the outbox is compared with."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{PREFIX}-base")
    client.max_inflight_messages_set(WINDOW)
    acked = threading.Semaphore(0)
    client.on_publish = lambda *_: acked.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    payload = encode(make_result("cam0", 0))
    start = time.perf_counter()
    for i in range(count):
        client.publish(f"{PREFIX}/base/{i % 4}", payload, qos=1)
    for _ in range(count):
        acked.acquire(timeout=30)
    rate = count / (time.perf_counter() - start)
    client.disconnect()
    client.loop_stop()
    return rate


def make_result(camera: str, frame: int) -> dict[str, Any]:
    now = time.time()
    return result_payload(
        ts=now,
        camera=camera,
        frame=frame,
        captured_at=now - 0.012,
        latency_ms=12.3,
        engine_ms=4.1,
        model="resnet18-demo",
        precision="fp16",
        profile="maxq",
        outputs={
            "top_k": [
                {"label": "cat", "index": 281, "score": 0.91},
                {"label": "dog", "index": 207, "score": 0.04},
            ]
        },
        queue_ms=0.4,
        batch_size=4,
        provider="CPUExecutionProvider",
    )


def push(publisher: Publisher, count: int, start_frame: int, mid_hook: Any = None) -> list[str]:
    ids = []
    for i in range(count):
        camera = CAMERAS[i % len(CAMERAS)]
        ids.append(publisher.publish_result(camera, make_result(camera, start_frame + i)))
        if mid_hook is not None and i == count // 2:
            mid_hook()
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument(
        "--subscriber", nargs=3, metavar=("PORT", "PREFIX", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.subscriber:
        subscriber_main(int(args.subscriber[0]), args.subscriber[1], Path(args.subscriber[2]))
        return 0

    count = 10_000 if args.quick else 50_000
    outage_s = 2.0 if args.quick else 10.0
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir)
        broker.start()
        sub: subprocess.Popen[str] | None = None
        try:
            out = workdir / "sub.json"
            sub = subprocess.Popen(
                [sys.executable, __file__, "--subscriber", str(broker.port), PREFIX, str(out)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert sub.stdout is not None
            sub.stdout.readline()  # "ready"
            base_rate = baseline(broker.port, count)
            print(f"baseline bare paho QoS1 (no outbox): {base_rate:,.0f} msg/s")
            boot_id, steady_rate, stats = run_agent(workdir, broker, count, outage_s, base_rate)
            if sub.wait(120 + outage_s) != 0:
                raise SystemExit("the subscriber failed")
            summary = json.loads(out.read_text(encoding="utf-8"))
        finally:
            if sub is not None and sub.poll() is None:
                sub.kill()
                sub.wait()
            broker.stop()
    expected = {f"{boot_id}:{n}" for n in range(1, 2 * count + 1)}
    received = {i for i in summary["ids"] if i.startswith(boot_id)}
    lost = len(expected - received)
    dup = summary["total"] - len(summary["ids"])
    print(
        f"received {len(received)}/{len(expected)} unique, {dup} duplicates, "
        f"{summary['order_errors']} order errors; published={stats.published} "
        f"acked={stats.acked} dropped={stats.dropped} errors={stats.errors}"
    )
    print(f"results_per_s={steady_rate:.0f} lost={lost}")
    return 0 if lost == 0 else 1


def run_agent(
    workdir: Path, broker: Mosquitto, count: int, outage_s: float, base_rate: float
) -> tuple[str, float, PublisherStats]:
    """Phases 2 and 3; returns (boot_id, steady results/s, final stats)."""
    config = MqttConfig(
        host="127.0.0.1", port=broker.port, inflight_window=WINDOW, topic_prefix=PREFIX
    )
    boot_id = new_boot_id()
    clock = SystemClock()
    link = MqttLink(config, "dev", boot_id, "bench", clock, reconnect_min_s=1, reconnect_max_s=1)
    outbox = Outbox(workdir / "outbox.sqlite", max_mb=256)
    publisher = Publisher(link, outbox, link.topics, clock, WINDOW, boot_id)
    restart: threading.Timer | None = None
    link.start()
    publisher.start()
    try:
        if not link.wait_connected(10):
            raise SystemExit("the agent did not connect")
        start = time.perf_counter()
        push(publisher, count, 0)
        produced_s = time.perf_counter() - start
        ok = publisher.flush(120)
        steady_s = time.perf_counter() - start
        steady_rate = count / steady_s
        print(
            f"steady: {count} results produced in {produced_s:.2f}s, all PUBACKed in "
            f"{steady_s:.2f}s -> {steady_rate:,.0f} results/s "
            f"({steady_rate / base_rate:.0%} of bare paho){'' if ok else ' FLUSH TIMEOUT'}"
        )

        def outage() -> None:
            nonlocal restart
            broker.stop()
            restart = threading.Timer(outage_s, broker.start)
            restart.start()

        start = time.perf_counter()
        push(publisher, count, count, mid_hook=outage)
        depth = publisher.stats().depth
        ok = publisher.flush(120 + outage_s)
        total_s = time.perf_counter() - start
        print(
            f"restart: {count} results with a {outage_s:.0f}s broker outage; outbox depth "
            f"{depth} after producing; all PUBACKed after {total_s:.2f}s"
            f"{'' if ok else ' FLUSH TIMEOUT'}"
        )
        while link.publish(f"{PREFIX}/bench/end", b"end", qos=1) is None:
            link.wait_connected(1)
        return boot_id, steady_rate, publisher.stats()
    finally:
        if restart is not None:
            restart.join()
        publisher.stop()
        publisher.join()
        link.stop()
        outbox.close()


if __name__ == "__main__":
    sys.exit(main())
