"""A daemon on a simulated Orin Nano for the governor tests: real ORT and real mosquitto, the
engine's time stretched by the board's GPU cap (as ``run --sim`` does) and the rails written by
the sim's power model."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from edge_agent.agent.daemon import Agent
from edge_agent.agent.hooks import PipelineHooks
from edge_agent.clock import SystemClock
from edge_agent.config import validate_config
from edge_agent.errors import SysfsError
from edge_agent.hardware import clocks
from edge_agent.hardware.root import Root
from edge_agent.sim import create_board
from edge_agent.sim.perf_model import time_scale
from edge_agent.sim.power_model import PowerModel
from tests.fakes.broker import MosquittoBroker


@contextlib.contextmanager
def simulated_agent(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    prefix: str,
    profile: Mapping[str, Any],
    mqtt: Mapping[str, Any] | None = None,
) -> Iterator[tuple[Agent, Path]]:
    """An agent (not started) at 200 fps on a fresh simulated Orin Nano, and the board's root."""
    root = tmp_path / "board"
    create_board("jetson-orin-nano", root)
    clock = SystemClock()
    hooks = PipelineHooks(latency_scale=lambda: time_scale(root), clock=clock)
    power = PowerModel(root, clock, busy=hooks.busy_fraction)
    config = validate_config(
        {
            "device_id": f"{prefix}-{tmp_path.name[-10:]}".replace("_", "-"),
            "root": str(root),
            "state_dir": str(tmp_path / "state"),
            "power": {"monitor": "sim"},
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port, **(mqtt or {})},
            "telemetry": {"interval_s": 0.5},
            "cameras": [{"name": "demo", "uri": "synthetic://digits", "fps": 200}],
            "profile": dict(profile),
        },
        env={},
    )
    power.start()
    agent = Agent(config, clock=clock, hooks=hooks)
    try:
        yield agent, root
    finally:
        agent.shutdown()
        power.stop()
        power.join()


def gpu_cap(root: Path) -> int:
    """The GPU devfreq ``max_freq`` of the simulated board."""
    r = Root(root)
    dev = clocks.find_gpu_devfreq(r)
    assert dev is not None
    pause = threading.Event()
    for _ in range(50):
        try:
            return r.read_int(f"{dev.path}/max_freq")
        except SysfsError:
            # The simulated tree's files are rewritten in place (truncate, write): a read can
            # land in between and see an empty file, which a kernel sysfs file never shows.
            # On a loaded machine the writer can be descheduled in between for a while, so
            # the retries are spread over a second rather than spun.
            pause.wait(0.02)
    return r.read_int(f"{dev.path}/max_freq")


def wait_for(predicate: Any, timeout_s: float) -> bool:
    """Poll ``predicate`` every 0.1 s for up to ``timeout_s``."""
    tick = threading.Event()
    for _ in range(int(timeout_s / 0.1)):
        if predicate():
            return True
        tick.wait(0.1)
    return bool(predicate())
