"""A stand-in agent process for crash tests: Outbox + MqttLink + Publisher, nothing else.

Usage: ``python -m tests.telemetry.agent_proc PORT PREFIX DEVICE OUTBOX COUNT MODE``
MODE ``hang``: publish COUNT results, commit them to the outbox, print ``committed <depth>``,
then wait to be killed (the drain to MQTT is still running: window 5 keeps a backlog).
MODE ``drain``: publish COUNT results, flush, stop cleanly (retained ``stopped``), exit 0.
Prints ``boot <boot_id>``, ``connected``, ``n=<k>`` every 500 results, ``drained``, ``stopped``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from edge_agent.clock import SystemClock
from edge_agent.config import MqttConfig
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.outbox import Outbox
from edge_agent.telemetry.payloads import new_boot_id, result_payload
from edge_agent.telemetry.publisher import Publisher


def main(argv: list[str]) -> int:
    port, prefix, device, outbox_path, count, mode = argv
    clock = SystemClock()
    boot_id = new_boot_id()
    # A small window keeps a backlog in the outbox, which is what the kill test needs.
    config = MqttConfig(host="127.0.0.1", port=int(port), topic_prefix=prefix, inflight_window=5)
    link = MqttLink(config, device, boot_id, "test", clock, reconnect_min_s=1, reconnect_max_s=1)
    outbox = Outbox(Path(outbox_path), max_mb=64)
    publisher = Publisher(link, outbox, link.topics, clock, config.inflight_window, boot_id)
    print(f"boot {boot_id}", flush=True)
    link.start()
    publisher.start()
    if not link.wait_connected(10):
        return 3
    print("connected", flush=True)
    for i in range(int(count)):
        camera = f"cam{i % 2}"
        now = clock.wall()
        publisher.publish_result(
            camera,
            result_payload(
                ts=now,
                camera=camera,
                frame=i,
                captured_at=now,
                latency_ms=1.0,
                engine_ms=0.5,
                model="m",
                precision="fp32",
                profile=None,
                outputs={"top_k": [{"label": "x", "index": 0, "score": 1.0}]},
            ),
        )
        if (i + 1) % 500 == 0:
            print(f"n={i + 1}", flush=True)
    if mode == "hang":
        publisher.commit()
        print(f"committed {publisher.stats().depth}", flush=True)
        threading.Event().wait()
    ok = publisher.flush(60)
    print("drained" if ok else "flush timeout", flush=True)
    publisher.stop()
    publisher.join()
    link.stop()
    outbox.close()
    print("stopped", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
