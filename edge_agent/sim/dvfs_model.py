"""Simulated DVFS effects for the governor: EMC-dependent memory time and clock-change delays.

Everything here is a model; every output built from it is labelled simulated.

EMC. :mod:`edge_agent.sim.perf_model` splits a batch's time into clock-bound cycles (shortened
by the GPU clock) and memory-bound time (``launch_s + batch * image_s``, fitted to the published
TX2 tables). Here the memory-bound time is stretched by ``max_emc / emc`` (bandwidth-bound: half
the memory clock, twice the memory time), with no free constant. Check against the public figure
the issue cites (an EMC-aware governor on Orin Nano/NX: the EMC clock moves median latency by
+11 to +48%): on the simulated Orin Nano at EMC 665.6 MHz instead of 3199 MHz this gives
ResNet-50 +26% (GPU 624.75 MHz) to +41% (GPU 1020 MHz) and GoogLeNet +31% to +48%, inside the
published range; AlexNet and VGG-19, with larger memory shares, go beyond it (+43% to +105%).
At 2133 MHz (the Orin Nano 15 W and 7 W caps) ResNet-50 is +3.4% to +5.4%.

Clock changes land after a delay (the same source: 1 ms for a CPU, 5 ms for the GPU and 8 ms for
the EMC clock); a change of several clocks is in force when the slowest has landed.
"""

from __future__ import annotations

from edge_agent.sim.boards import BoardSpec
from edge_agent.sim.perf_model import MODELS, latency_s, network_key

CLOCK_CHANGE_DELAY_S = {"cpu": 0.001, "gpu": 0.005, "emc": 0.008}


def memory_bound_s(network: str, batch: int, board: BoardSpec) -> float:
    """The memory-bound seconds of one batch at the board's top EMC clock."""
    m = MODELS[network_key(network)]
    return (m.launch_s + batch * m.image_s) / board.power.perf_scale


def batch_latency_s(
    network: str, batch: int, gpu_hz: float, emc_hz: float, board: BoardSpec
) -> float:
    """Seconds one batch takes at GPU clock ``gpu_hz`` and EMC clock ``emc_hz``."""
    stretch = board.emc.max_hz / max(emc_hz, 1.0) - 1.0
    return latency_s(network, batch, gpu_hz, board) + memory_bound_s(network, batch, board) * max(
        0.0, stretch
    )


def emc_latency_increase(
    network: str, batch: int, gpu_hz: float, emc_hz: float, board: BoardSpec
) -> float:
    """Relative latency increase at ``emc_hz`` against the top EMC clock (0.26 = +26%)."""
    top = batch_latency_s(network, batch, gpu_hz, board.emc.max_hz, board)
    return batch_latency_s(network, batch, gpu_hz, emc_hz, board) / top - 1.0


def change_delay_s(changed: set[str]) -> float:
    """How long a change of the named clocks (``cpu``, ``gpu``, ``emc``) takes to land."""
    return max((CLOCK_CHANGE_DELAY_S[name] for name in changed), default=0.0)
