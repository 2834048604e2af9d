"""``edge-agent status``: jtop's one screen, as one JSON-ready object.

Board files are read directly (clocks, GPU load, thermal zones, fan, one power-monitor pass);
the profile comes from the board's profile file and ``nvpmodel``. The running agent's figures
come from the last telemetry report it wrote to its state directory
(:mod:`edge_agent.telemetry.last_report`), so the view works without a broker.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edge_agent.clock import Clock
from edge_agent.config import ProfileConfig
from edge_agent.errors import ConfigError, HardwareError, ProfileError
from edge_agent.hardware.board import detect_board
from edge_agent.hardware.clocks import (
    cpu_clusters,
    find_gpu_devfreq,
    list_cpus,
    read_emc_cap_hz,
    read_gpu,
)
from edge_agent.hardware.fan import read_emc_rate_hz, read_fan
from edge_agent.hardware.root import Root
from edge_agent.hardware.thermal import read_thermal_zones
from edge_agent.power.monitor import open_monitor
from edge_agent.power.profile_apply import ProfileController
from edge_agent.telemetry.last_report import read_last_report

logger = logging.getLogger(__name__)


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def profile_status(root: Root, state_dir: Path, clock: Clock) -> dict[str, Any]:
    """The profile the board matches and its nvpmodel mode (None where unknown)."""
    try:
        current = ProfileController(root, ProfileConfig(), state_dir, clock).current()
    except (ProfileError, HardwareError, ConfigError) as err:
        return {"profile": None, "nvpmodel_mode": None, "nvpmodel_id": None, "error": str(err)}
    return {
        "profile": current.name,
        "nvpmodel_mode": current.nvpmodel_mode,
        "nvpmodel_id": current.nvpmodel_id,
        "jetson_clocks": current.jetson_clocks_active,
    }


def clock_status(root: Root) -> dict[str, Any]:
    """CPU per cluster (kHz), GPU and EMC (Hz), and the GPU load 0..1."""
    cpus = {c.index: c for c in list_cpus(root)}
    clusters = []
    for cluster in cpu_clusters(root):
        online = [i for i in cluster.cpus if i in cpus and cpus[i].online]
        first = cpus[online[0]] if online else None
        clusters.append(
            {
                "name": cluster.name,
                "cpus": list(cluster.cpus),
                "online": online,
                "cur_khz": None if first is None else first.cur_khz,
                "max_khz": None if first is None else first.max_khz,
                "governor": None if first is None else first.governor,
            }
        )
    out: dict[str, Any] = {"cpu": clusters, "gpu": None, "gpu_load": None}
    try:
        dev = find_gpu_devfreq(root)
        if dev is not None:
            gpu = read_gpu(root, dev)
            out["gpu"] = {"cur_hz": gpu.cur_hz, "min_hz": gpu.min_hz, "max_hz": gpu.max_hz}
            if gpu.load_permille is not None:
                out["gpu_load"] = round(gpu.load_permille / 1000, 3)
    except HardwareError as err:
        logger.debug("GPU clocks unreadable: %s", err)
    try:
        cap = read_emc_cap_hz(root)
    except HardwareError:
        cap = None
    out["emc"] = {"cur_hz": read_emc_rate_hz(root), "cap_hz": cap or None}
    return out


def power_status(root: Root, clock: Clock, monitor_kind: str) -> dict[str, Any]:
    """One pass over the power monitor: the board total and each rail's V, A, W."""
    monitor, why = open_monitor(monitor_kind, root, clock)
    try:
        if not monitor.available:
            return {"available": False, "reason": monitor.reason}
        reading = monitor.read()
        for _ in range(4):  # a file caught mid-rewrite leaves the total out of one pass
            if reading.total_mw is not None:
                break
            reading = monitor.read()
    finally:
        monitor.close()
    return {
        "available": True,
        "source": why,
        "total": {"name": reading.total_name, "w": _r(reading.total_w)},
        "rails": {
            r.name: {
                "v": _r(None if r.voltage_mv is None else r.voltage_mv / 1000),
                "a": _r(None if r.current_ma is None else r.current_ma / 1000),
                "w": _r(r.power_mw / 1000),
            }
            for r in reading.rails
        },
    }


def agent_status(state_dir: Path, clock: Clock) -> dict[str, Any] | None:
    """The running agent's fps, latency, perf/W, outbox and governor from its last report."""
    last = read_last_report(state_dir, clock.wall())
    if last is None:
        return None
    doc = last.telemetry
    power = doc.get("power") or {}
    return {
        "running": last.running,
        "state": last.state,
        "pid": last.pid,
        "age_s": round(last.age_s, 1),
        "profile": doc.get("profile"),
        "fps": doc.get("fps"),
        "latency_ms": doc.get("latency_ms"),
        "perf_per_watt": doc.get("perf_per_watt"),
        "mj_per_inference": doc.get("mj_per_inference"),
        "board_w": power.get("total_w"),
        "outbox": doc.get("outbox"),
        "results": doc.get("results"),
        "governor": doc.get("governor"),
    }


def read_status(
    root: Root, state_dir: Path, clock: Clock, *, monitor_kind: str = "auto"
) -> dict[str, Any]:
    """Everything ``status`` shows, JSON-ready."""
    board = detect_board(root)
    return {
        "board": {"model": board.model, "slug": board.slug, "l4t": board.l4t_release},
        **profile_status(root, state_dir, clock),
        "clocks": clock_status(root),
        "temperatures": {
            z.name: z.temp_c for z in read_thermal_zones(root) if z.online and z.temp_c is not None
        },
        "fan": None
        if (fan := read_fan(root)) is None
        else {"pwm": fan.pwm, "percent": fan.percent},
        "power": power_status(root, clock, monitor_kind),
        "agent": agent_status(state_dir, clock),
    }
