"""The operating points of the board under a Root, from its own frequency tables.

GPU: devfreq ``available_frequencies`` up to the current ``max_freq`` (the nvpmodel mode's cap
when the governor starts). CPU: the online CPUs' ``scaling_available_frequencies`` up to their
current ``scaling_max_freq``, thinned to a few levels. EMC: the BPMP's listed rates and the EMC
caps of the board's nvpmodel.conf, up to the current cap. Nothing is invented; a board whose
tables cannot be read has no points, and the governor then stays on ``fixed``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edge_agent.errors import HardwareError
from edge_agent.governor.points import FrequencyTables, OperatingPoint, build_points, cpu_levels
from edge_agent.hardware import clocks
from edge_agent.hardware.nvpmodel import CONF_PATH, parse_conf
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BoardTables:
    tables: FrequencyTables
    gpu: clocks.GpuDevfreq
    cpus: tuple[int, ...]  # online CPUs whose caps the governor writes


def _conf_emc_caps(root: Root) -> set[int]:
    if not root.exists(CONF_PATH):
        return set()
    try:
        conf = parse_conf(root.read_text(CONF_PATH))
    except HardwareError as err:
        logger.warning("governor: nvpmodel.conf unreadable, no EMC points from it: %s", err)
        return set()
    caps = {mode.int_value("EMC", "MAX_FREQ") for mode in conf.modes}
    return {c for c in caps if c is not None and c > 0}


def read_tables(root: Root) -> BoardTables | None:
    """The current mode's tables, or None when the GPU or CPU tables are not readable."""
    gpu = clocks.find_gpu_devfreq(root)
    if gpu is None:
        return None
    state = clocks.read_gpu(root, gpu)
    gpu_hz = tuple(f for f in state.available_hz if f <= state.max_hz) or (state.max_hz,)
    cpus = [c for c in clocks.list_cpus(root) if c.online and c.available_khz]
    if not cpus:
        return None
    top_khz = max(c.max_khz or max(c.available_khz) for c in cpus)
    cpu_table = sorted({f for c in cpus for f in c.available_khz if f <= top_khz})
    emc_cap = clocks.read_emc_cap_hz(root) or 0
    rates = set(clocks.read_emc_rates_hz(root)) | _conf_emc_caps(root)
    if emc_cap > 0:
        rates = {r for r in rates if r <= emc_cap} | {emc_cap}
    if not rates:
        return None
    tables = FrequencyTables(
        gpu_hz=gpu_hz,
        emc_hz=tuple(sorted(rates)),
        cpu_khz=cpu_levels(cpu_table, [top_khz]),
    )
    return BoardTables(tables, gpu, tuple(c.index for c in cpus))


def board_points(
    tables: BoardTables, presets: dict[str, tuple[int, int, int]]
) -> tuple[OperatingPoint, ...]:
    return build_points(tables.tables, presets)
