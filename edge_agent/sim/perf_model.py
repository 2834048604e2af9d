"""The simulated inference engine: latency and GPU power of the reference networks.

On a simulated board the reference networks (ResNet-50, GoogLeNet, VGG-19, AlexNet) are not run;
this model says how long a batch takes and what the GPU rail draws, and everything it produces is
labelled ``simulated``. Small models run for real on the host and are stretched by
:func:`time_scale`.

Model (fitted once by least squares to the published Jetson TX2 Max-Q and Max-P tables in
``shared/reference/seed_performance_tables.md``; the fit lands within 3% on images/s and 3.5% on
GPU watts for ResNet-50 and GoogLeNet, 15%/7% on AlexNet):

- latency(b, f) = (launch_cycles + b * image_cycles) / f + launch_s + b * image_s:
  clock-bound work per batch and per image, plus memory-bound time that the GPU clock does not
  shorten (so throughput grows less than the clock, as published).
- GPU-rail power = static + s(f) * (base + util * u), where s(f) = f * V(f)^2 relative to the
  reference clock (the same curve the power model uses) and u = the share of the batch time
  spent on per-image work (a busier GPU draws more).
Other boards reuse the TX2 curves scaled by their ``perf_scale`` and dynamic-power constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_agent.sim import sysfs
from edge_agent.sim.boards import TX2, BoardSpec, get_board
from edge_agent.sim.power_model import gpu_dynamic_scale
from edge_agent.sim.releases import spec_at


@dataclass(frozen=True, slots=True)
class NetworkModel:
    """Fitted constants of one network on the TX2 (cycles are in GHz * s)."""

    name: str
    launch_cycles: float
    image_cycles: float
    launch_s: float
    image_s: float
    power_base_w: float
    power_util_w: float


MODELS: dict[str, NetworkModel] = {
    m.name: m
    for m in (
        NetworkModel("alexnet", 0.00350808, 0.00193589, 0.00189094, 0.000151737, 2.803, 2.1579),
        NetworkModel("googlenet", 0.0013087, 0.00419247, 0.000386503, 0.000394216, 1.3743, 3.3137),
        NetworkModel("resnet50", 0.00314108, 0.00885774, 0.0005962, 0.000819124, 2.5017, 1.0596),
        NetworkModel("vgg19", 0.00720037, 0.0306872, 0.000583969, 0.00714026, 3.1667, 1.6671),
    )
}
NETWORKS: tuple[str, ...] = tuple(MODELS)

# Published TX2 figures (images/s, GPU-rail W) per batch 1, 2, 4, 8, 64, 128; the calibration
# target, kept here so tests and tools compare against the same numbers.
PUBLISHED_BATCHES: tuple[int, ...] = (1, 2, 4, 8, 64, 128)
PUBLISHED_GPU_HZ = {"maxq": 854250000, "maxp": 1122000000}
PUBLISHED: dict[tuple[str, str], tuple[tuple[float, float], ...]] = {
    ("maxq", "resnet50"): ((64.3, 2.3), (76.5, 2.3), (81.0, 2.3), (83.4, 2.4), (89.4, 2.4),
                           (89.9, 2.4)),
    ("maxp", "resnet50"): ((82, 3.49), (98, 3.63), (104, 3.71), (107, 3.95), (115, 3.81),
                           (115, 3.82)),
    ("maxq", "googlenet"): ((141, 2.6), (156, 2.7), (170, 2.8), (180, 3.0), (189, 3.1),
                            (191, 3.1)),
    ("maxp", "googlenet"): ((179, 4.14), (199, 4.36), (218, 4.61), (231, 4.83), (243, 5.03),
                            (244, 5.02)),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SimulatedRun:
    """One batch on the simulated engine; ``simulated`` is always True."""

    board: str
    network: str
    batch: int
    gpu_hz: int
    latency_s: float
    images_per_s: float
    gpu_power_w: float
    gpu_activity: float
    simulated: bool = True


def network_key(name: str) -> str:
    """Canonical network name: ``ResNet-50`` -> ``resnet50``.

    Raises:
        KeyError: not one of the reference networks.
    """
    key = name.lower().replace("-", "").replace("_", "")
    if key not in MODELS:
        raise KeyError(f"no simulated engine for {name!r}; known: {', '.join(NETWORKS)}")
    return key


def _spec(board: str | BoardSpec) -> BoardSpec:
    return board if isinstance(board, BoardSpec) else get_board(board)


def latency_s(network: str, batch: int, gpu_hz: float, board: str | BoardSpec = TX2) -> float:
    """Seconds one batch takes on the simulated engine at GPU clock ``gpu_hz``."""
    m, spec = MODELS[network_key(network)], _spec(board)
    ghz = gpu_hz / 1e9
    cycles = (m.launch_cycles + batch * m.image_cycles) / ghz
    return (cycles + m.launch_s + batch * m.image_s) / spec.power.perf_scale


def images_per_s(network: str, batch: int, gpu_hz: float, board: str | BoardSpec = TX2) -> float:
    return batch / latency_s(network, batch, gpu_hz, board)


def utilization(network: str, batch: int, gpu_hz: float) -> float:
    """Share of a batch's time spent on per-image work (0..1)."""
    m = MODELS[network_key(network)]
    ghz = gpu_hz / 1e9
    per_image = batch * (m.image_cycles / ghz + m.image_s)
    return per_image / (per_image + m.launch_cycles / ghz + m.launch_s)


def gpu_power_w(network: str, batch: int, gpu_hz: float, board: str | BoardSpec = TX2) -> float:
    """GPU-rail watts while the engine runs ``network`` at ``batch`` continuously."""
    m, spec = MODELS[network_key(network)], _spec(board)
    dynamic_w = m.power_base_w + m.power_util_w * utilization(network, batch, gpu_hz)
    ratio = spec.power.gpu_dyn_ref_mw / TX2.power.gpu_dyn_ref_mw
    return spec.power.gpu_static_mw / 1000.0 + gpu_dynamic_scale(spec, gpu_hz) * dynamic_w * ratio


def gpu_activity(network: str, batch: int, gpu_hz: float, board: str | BoardSpec = TX2) -> float:
    """The ``busy`` value for the power model that makes the GPU rail read :func:`gpu_power_w`."""
    spec = _spec(board)
    p = spec.power
    active_mw = p.gpu_static_mw - p.gpu_idle_mw + p.gpu_dyn_ref_mw * gpu_dynamic_scale(spec, gpu_hz)
    return (gpu_power_w(network, batch, gpu_hz, spec) * 1000.0 - p.gpu_idle_mw) / active_mw


def gpu_cap_hz(root: Path) -> int:
    """The GPU clock the engine runs at on a simulated tree: its devfreq ``max_freq``."""
    spec = spec_at(root)
    return sysfs.read_int(sysfs.devfreq_dir(Path(root), spec) / "max_freq", max(spec.gpu.freqs_hz))


def time_scale(root: Path) -> float:
    """How much longer engine work takes at the current GPU cap: top clock / cap, at least 1."""
    spec = spec_at(root)
    cap = gpu_cap_hz(root)
    return max(1.0, max(spec.gpu.freqs_hz) / max(cap, 1))


def simulate(root: Path, network: str, batch: int) -> SimulatedRun:
    """One batch of ``network`` on the simulated board at ``root``, at its current GPU cap."""
    spec = spec_at(root)
    hz = gpu_cap_hz(root)
    latency = latency_s(network, batch, hz, spec)
    return SimulatedRun(
        board=spec.name,
        network=network_key(network),
        batch=batch,
        gpu_hz=hz,
        latency_s=latency,
        images_per_s=batch / latency,
        gpu_power_w=gpu_power_w(network, batch, hz, spec),
        gpu_activity=gpu_activity(network, batch, hz, spec),
    )
