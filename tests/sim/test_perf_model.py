"""The simulated engine is calibrated to the published TX2 table and labels its output."""

from __future__ import annotations

import pytest

from edge_agent.sim import nvpmodel_cli, perf_model
from edge_agent.sim.tree import SimBoard


@pytest.mark.parametrize("profile", ["maxq", "maxp"])
def test_model_within_ten_percent_of_published(profile: str) -> None:
    hz = perf_model.PUBLISHED_GPU_HZ[profile]
    points = 0
    for network in ("resnet50", "googlenet"):
        rows = perf_model.PUBLISHED[(profile, network)]
        for batch, (images_s, gpu_w) in zip(perf_model.PUBLISHED_BATCHES, rows, strict=True):
            assert perf_model.images_per_s(network, batch, hz) == pytest.approx(images_s, rel=0.1)
            assert perf_model.gpu_power_w(network, batch, hz) == pytest.approx(gpu_w, rel=0.1)
            points += 2
    assert points == 24


def test_latency_grows_with_batch_and_lower_clock() -> None:
    fast = [perf_model.latency_s("ResNet-50", b, 1122000000) for b in (1, 2, 8, 64)]
    slow = [perf_model.latency_s("resnet50", b, 854250000) for b in (1, 2, 8, 64)]
    assert fast == sorted(fast)
    assert all(s > f for s, f in zip(slow, fast, strict=True))
    # Memory-bound time does not shrink with the clock: speed-up below the clock ratio.
    assert 1.0 < slow[-1] / fast[-1] < 1122000000 / 854250000


def test_every_reference_network_is_modelled() -> None:
    assert set(perf_model.NETWORKS) == {"resnet50", "googlenet", "vgg19", "alexnet"}
    for network in perf_model.NETWORKS:
        assert perf_model.latency_s(network, 1, 1122000000) > 0
    with pytest.raises(KeyError, match="resnet50"):
        perf_model.network_key("mobilenet")


def test_time_scale_follows_the_gpu_cap(tx2: SimBoard) -> None:
    assert perf_model.time_scale(tx2.root) == pytest.approx(1300500000 / 1122000000)
    assert nvpmodel_cli.main(["-m", "1"], tx2.root) == 0
    assert perf_model.time_scale(tx2.root) == pytest.approx(1300500000 / 854250000)
    assert nvpmodel_cli.main(["-m", "0"], tx2.root) == 0
    assert perf_model.time_scale(tx2.root) == 1.0


def test_simulate_labels_its_output(orin_nano: SimBoard) -> None:
    run = perf_model.simulate(orin_nano.root, "GoogLeNet", 4)
    assert run.simulated is True
    assert (run.board, run.network, run.batch, run.gpu_hz) == (
        "jetson-orin-nano",
        "googlenet",
        4,
        918000000,  # the default 25W mode
    )
    tx2_like = perf_model.images_per_s("googlenet", 4, 918000000)
    assert run.images_per_s > 3 * tx2_like  # Orin's GPU does more per clock
    assert run.gpu_activity > 0
