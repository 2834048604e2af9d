#!/usr/bin/env python3
"""Fleet push at scale: N device endpoints on one mosquitto, one signed group push.

Each endpoint is the agent's real fleet client (``edge_agent.agent.fleet_apply.FleetApplier``
on its own ``MqttLink``: subscribe before connecting, parse, verify the Ed25519 signature,
validate, order versions, persist its state file, report on the retained ``config/state``),
with the daemon's apply step replaced by config validation only (the merged config is
validated by the same ``AgentConfig`` model; no pipeline runs). Endpoints run in a few worker
processes; the operator is ``edge_agent.fleet.operator.FleetOperator``.

Measured: the time from publishing one retained group document until every device reports
it applied, and the broker's message count over the push (``$SYS/broker/messages``:
every MQTT packet received and sent, PUBACKs included).

Usage: ``python tools/bench_fleet.py [--devices 500] [--procs 4]``.
Last line: ``devices=500 all_applied_s=… msgs=…``. Target: under 10 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.agent.fleet_apply import FleetApplier
from edge_agent.clock import SystemClock
from edge_agent.config import AgentConfig, validate_config
from edge_agent.fleet.health import HealthSample
from edge_agent.fleet.operator import FleetOperator
from edge_agent.fleet.signing import generate_key, load_private_key, sign_document
from edge_agent.fleet.store import FleetStore
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.topics import Topics

PREFIX = "benchfleet"
GROUP = "all"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_broker(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise SystemExit("mosquitto is not installed (apt-get install -y mosquitto)")
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nsys_interval 1\nlog_dest none\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            threading.Event().wait(0.05)
    proc.kill()
    raise SystemExit("mosquitto did not start")


@dataclass(frozen=True)
class Validated:
    """The apply step of an endpoint: the config was validated; nothing else runs."""

    status: str = "applied"
    errors: tuple[str, ...] = ()


def endpoint_config(port: int, device: str, state: Path, keys: Path) -> AgentConfig:
    return validate_config(
        {
            "device_id": device,
            "state_dir": str(state / device),
            "mqtt": {"host": "127.0.0.1", "port": port, "topic_prefix": PREFIX},
            "fleet": {
                "enabled": True,
                "group": GROUP,
                "trusted_keys": str(keys),
                "health_min_results": 0,
            },
        },
        env={},
    )


def worker_main(port: int, first: int, count: int, state: Path, keys: Path) -> None:
    """Run ``count`` endpoints until stdin closes; prints ``ready`` once all are subscribed."""
    clock = SystemClock()
    links: list[MqttLink] = []
    appliers: list[FleetApplier] = []
    for n in range(first, first + count):
        config = endpoint_config(port, f"dev{n:04d}", state, keys)
        applier = FleetApplier(
            config,
            clock=clock,
            apply=lambda _cfg, _source: Validated(),
            probe=lambda _since: HealthSample(results=0),
            store=FleetStore(config.resolved_state_dir),
        )
        applier.startup_config()
        link = MqttLink(config.mqtt, config.device_id, "bench", "bench", clock)
        applier.attach(link, Topics(PREFIX, config.device_id))
        link.start()
        applier.start()
        links.append(link)
        appliers.append(applier)
    for link in links:
        link.wait_subscribed(30)
    print("ready", flush=True)
    sys.stdin.read()
    for applier in appliers:
        applier.stop()
    for applier in appliers:
        applier.join(5)
    for link in links:
        link.stop(timeout_s=1, publish_stopped=False)


class SysCounter:
    """The broker's counters: every MQTT packet in and out, and PUBLISH packets sent."""

    TOPICS = (
        "$SYS/broker/messages/received",
        "$SYS/broker/messages/sent",
        "$SYS/broker/publish/messages/sent",
    )

    def __init__(self, port: int) -> None:
        self.values: dict[str, int] = {}
        self.updated = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-sys")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(topic, 0) for topic in self.TOPICS])
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        with self.updated:
            self.values[msg.topic] = int(msg.payload)
            self.updated.notify_all()

    def read(self) -> tuple[int, int]:
        """(packets received + sent, publishes sent), from $SYS updates begun after the call."""
        with self.updated:
            for _ in range(2 * len(self.TOPICS)):  # two intervals' worth of updates
                self.updated.wait(3)
            packets = self.values.get(self.TOPICS[0], 0) + self.values.get(self.TOPICS[1], 0)
            return packets, self.values.get(self.TOPICS[2], 0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        port, first, count, state, keys = args.worker
        worker_main(int(port), int(first), int(count), Path(state), Path(keys))
        return 0

    # tmpfs: on a real fleet each device fsyncs its own disk; here 500 would share one.
    shm = Path("/dev/shm")  # noqa: S108
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        broker = start_broker(tmp, port)
        keys = tmp / "keys"
        private, _public = generate_key(keys / "private", "bench")
        (keys / "bench.pub").write_bytes(_public.read_bytes())
        workers: list[subprocess.Popen[str]] = []
        try:
            started = time.monotonic()
            per = -(-args.devices // args.procs)
            for first in range(0, args.devices, per):
                count = min(per, args.devices - first)
                workers.append(
                    subprocess.Popen(
                        [sys.executable, __file__, "--worker", str(port), str(first),
                         str(count), str(tmp / "state"), str(keys)],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                    )
                )  # fmt: skip
            for worker in workers:
                assert worker.stdout is not None
                if worker.stdout.readline().strip() != "ready":
                    raise SystemExit("a worker failed to start")
            print(f"{args.devices} endpoints up in {time.monotonic() - started:.1f} s "
                  f"({len(workers)} processes)", flush=True)  # fmt: skip
            counter = SysCounter(port)
            with FleetOperator("127.0.0.1", port, PREFIX) as op:
                deadline = time.monotonic() + 30
                while len(op.members(GROUP)) < args.devices and time.monotonic() < deadline:
                    op.settle(0.2)
                devices = op.members(GROUP)
                before = counter.read()
                sections = {"batching": {"max_batch": 4}, "telemetry": {"interval_s": 5}}
                doc = {"version": 1, "target": f"group:{GROUP}", "sections": sections}
                signed = sign_document(doc, load_private_key(private), "bench")
                t0 = time.monotonic()
                op.publish(f"{PREFIX}/fleet/{GROUP}/config/set", json.dumps(signed).encode())
                result = op.wait(devices, f"group:{GROUP}", 1, args.timeout)
                elapsed = time.monotonic() - t0
                after = counter.read()
                msgs, delivered = after[0] - before[0], after[1] - before[1]
            counter.close()
            applied = sum(1 for o in result.outcomes.values() if o == "applied")
            print(f"applied {applied}/{len(devices)} seen devices; the broker delivered "
                  f"{delivered} publishes and handled {msgs} MQTT packets (QoS 1 acks "
                  "included, $SYS too)")  # fmt: skip
            print(f"devices={applied} all_applied_s={elapsed:.2f} msgs={msgs}")
            return 0 if applied == args.devices else 1
        finally:
            for worker in workers:
                if worker.stdin is not None:
                    worker.stdin.close()
            for worker in workers:
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
            broker.terminate()
            broker.wait(10)


if __name__ == "__main__":
    sys.exit(main())
