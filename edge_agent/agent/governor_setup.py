"""Build a governor worker from ``profile.policy`` and the board's tables."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from edge_agent.agent.governor_worker import GovernorInputs, GovernorWorker, ledger_watts
from edge_agent.agent.result_stats import ResultStats
from edge_agent.clock import Clock
from edge_agent.config_sections import ProfileConfig
from edge_agent.errors import GovernorRefused, GovernorUnavailable, HardwareError
from edge_agent.governor.discovery import board_points, read_tables
from edge_agent.governor.points import floor_entry
from edge_agent.governor.policy import params_from_config, unknown_schedule_profiles
from edge_agent.hardware.root import Root
from edge_agent.power.ledger import EnergyLedger
from edge_agent.power.profile_apply import ProfileController

logger = logging.getLogger(__name__)


def _local_time_of_day_s() -> float:
    now = time.localtime()
    return now.tm_hour * 3600.0 + now.tm_min * 60.0 + now.tm_sec


def build_governor(
    config: ProfileConfig,
    root: Root,
    clock: Clock,
    stats: ResultStats,
    ledger: EnergyLedger | None,
    pipeline_stats: Callable[[], dict[str, Any]],
    model: Callable[[], str],
    profiles: ProfileController | None,
) -> GovernorWorker:
    """The worker for ``config.policy`` (not ``fixed``), not started yet.

    The tables are read now, so they are those of the nvpmodel mode in force.

    Raises:
        GovernorUnavailable: the board's frequency tables cannot be read.
        GovernorRefused: a schedule names a profile this board lacks.
    """
    try:
        tables = read_tables(root)
    except HardwareError as err:
        raise GovernorUnavailable(f"frequency tables unreadable ({err})") from err
    if tables is None:
        raise GovernorUnavailable("no GPU/CPU/EMC frequency tables on this board")
    t = tables.tables
    presets: dict[str, tuple[int, int, int]] = {}
    for profile in profiles.profiles() if profiles is not None else []:
        caps = profile.clocks
        gpu = max(t.gpu_hz) if caps.gpu_max_hz in (None, "max") else int(caps.gpu_max_hz)
        emc = max(t.emc_hz) if not caps.emc_max_hz else caps.emc_max_hz
        cpu_caps = [int(v) for v in caps.cpu_max_khz.values() if v != "max"]
        cpu = max(cpu_caps) if cpu_caps else max(t.cpu_khz)
        presets[profile.name] = (
            floor_entry(t.gpu_hz, gpu),
            floor_entry(t.emc_hz, emc),
            floor_entry(t.cpu_khz, cpu),
        )
    points = board_points(tables, presets)
    if config.policy == "schedule":
        named = [entry.profile for entry in config.governor.schedule]
        refusal = unknown_schedule_profiles(named, presets)
        if refusal is not None:  # it would fail at the entry's first window, hours later
            raise GovernorRefused(refusal)
    params = params_from_config(config.policy, config.initial, config.governor)

    def apply_preset(name: str) -> None:
        if profiles is not None:
            # Never a mode that needs a reboot: such a preset's caps are applied inside the
            # current mode instead, as the daemon holds ``profile.initial``.
            profiles.apply(name, allow_reboot=False, live_fallback=True)

    inputs = GovernorInputs(
        stats=stats,
        board_w=ledger_watts(ledger),
        pipeline_stats=pipeline_stats,
        model=model,
        root=root,
        apply_preset=apply_preset if profiles is not None else None,
        time_of_day_s=_local_time_of_day_s,
    )
    logger.info(
        "governor: policy %s over %d points (GPU %d x EMC %d x CPU %d + %d presets)",
        config.policy,
        len(points),
        len(t.gpu_hz),
        len(t.emc_hz),
        len(t.cpu_khz),
        len(presets),
    )
    return GovernorWorker(params, points, tables, inputs, clock, config.governor.window_s)
