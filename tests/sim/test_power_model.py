"""The power model turns clock caps and engine activity into rail readings."""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import threading

import pytest

from edge_agent.clock import FakeClock
from edge_agent.sim import nvpmodel_cli, perf_model
from edge_agent.sim.power_model import PowerModel, rail_powers_mw, read_state
from edge_agent.sim.tree import SimBoard

IIO_GPU = "sys/bus/i2c/devices/0-0040/iio:device0"
IIO_IN = "sys/bus/i2c/devices/0-0041/iio:device1"


def _mw(board: SimBoard, chip: str, channel: int) -> int:
    return int((board.root / chip / f"in_power{channel}_input").read_text(encoding="utf-8"))


def _mode(board: SimBoard, mode_id: int) -> None:
    assert nvpmodel_cli.main(["-m", str(mode_id)], board.root) == 0


def test_higher_caps_draw_more(tx2: SimBoard, fake_clock: FakeClock) -> None:
    model = PowerModel(tx2.root, fake_clock, busy=lambda: 1.0)
    _mode(tx2, 1)  # Max-Q
    model.step(fake_clock.monotonic())
    gpu_q, total_q = _mw(tx2, IIO_GPU, 0), _mw(tx2, IIO_IN, 0)
    _mode(tx2, 0)  # MAXN
    model.step(fake_clock.monotonic())
    gpu_n, total_n = _mw(tx2, IIO_GPU, 0), _mw(tx2, IIO_IN, 0)
    assert gpu_n > 1.5 * gpu_q
    assert total_n > total_q + (gpu_n - gpu_q)  # the input rail includes regulator losses
    assert (tx2.root / "sys/devices/17000000.gp10b/load").read_text() == "1000\n"


def test_idle_board_draws_the_floor(tx2: SimBoard, fake_clock: FakeClock) -> None:
    powers = PowerModel(tx2.root, fake_clock).step(fake_clock.monotonic())
    assert powers["VDD_SYS_GPU"] == pytest.approx(tx2.spec.power.gpu_idle_mw)
    assert 2000 < powers["VDD_IN"] < 3500  # TX2 idle VDD_IN is about 3 W
    dev = tx2.devfreq_dir
    assert (dev / "cur_freq").read_text() == (dev / "min_freq").read_text()
    assert _mw(tx2, IIO_GPU, 2) == 0  # VDD_4V0_WIFI


def test_more_busy_more_power_pure() -> None:
    from edge_agent.sim.boards import BOARDS
    from edge_agent.sim.power_model import ClockState

    spec = BOARDS["jetson-orin-nano"]
    state = ClockState(
        306000000, 1020000000, ((4, 729600, 1728000), (2, 729600, 1728000)), 3199000000
    )
    idle, half, full = (rail_powers_mw(spec, state, b)["VDD_IN"] for b in (0.0, 0.5, 1.0))
    assert idle < half < full


@pytest.mark.parametrize("network", ["resnet50", "googlenet"])
def test_max_q_does_more_images_per_joule_than_max_p(
    tx2: SimBoard, fake_clock: FakeClock, network: str
) -> None:
    per_joule = {}
    for profile, mode_id in (("maxq", 1), ("maxp", 3)):
        _mode(tx2, mode_id)
        run = perf_model.simulate(tx2.root, network, 8)
        PowerModel(tx2.root, fake_clock, busy=functools.partial(float, run.gpu_activity)).step(0.0)
        per_joule[profile] = (run.images_per_s / (_mw(tx2, IIO_IN, 0) / 1000.0), run.images_per_s)
    assert per_joule["maxq"][0] > per_joule["maxp"][0]  # more efficient
    assert per_joule["maxq"][1] < per_joule["maxp"][1]  # and slower


@pytest.mark.parametrize(("profile", "mode_id"), [("maxq", 1), ("maxp", 3)])
def test_simulated_run_matches_published_tx2_figures(
    tx2: SimBoard, fake_clock: FakeClock, profile: str, mode_id: int
) -> None:
    """24 points per profile: images/s and GPU-rail W for 2 networks x 6 batches, within 10%."""
    _mode(tx2, mode_id)
    checked = 0
    for network in ("resnet50", "googlenet"):
        rows = perf_model.PUBLISHED[(profile, network)]
        for batch, (images_s, gpu_w) in zip(perf_model.PUBLISHED_BATCHES, rows, strict=True):
            run = perf_model.simulate(tx2.root, network, batch)
            assert run.simulated is True
            assert run.gpu_hz == perf_model.PUBLISHED_GPU_HZ[profile]
            PowerModel(tx2.root, fake_clock, busy=functools.partial(float, run.gpu_activity)).step(
                0.0
            )
            measured_w = _mw(tx2, IIO_GPU, 0) / 1000.0
            assert run.images_per_s == pytest.approx(images_s, rel=0.10), (network, batch)
            assert measured_w == pytest.approx(gpu_w, rel=0.10), (network, batch)
            checked += 2
    assert checked == 24


def test_thread_runs_and_stops(tx2: SimBoard, fake_clock: FakeClock) -> None:
    calls = []
    seen = threading.Event()

    def busy() -> float:
        calls.append(1)
        if len(calls) >= 3:
            seen.set()
        return 0.5

    model = PowerModel(tx2.root, fake_clock, interval_s=0.005, busy=busy)
    model.start()
    try:
        assert seen.wait(timeout=10)
    finally:
        model.stop()
        assert model.join(timeout_s=5)
    assert (tx2.root / "sys/devices/17000000.gp10b/load").read_text() == "500\n"
    assert model.last_powers_mw["VDD_SYS_GPU"] > tx2.spec.power.gpu_idle_mw


@pytest.mark.skipif(shutil.which("chattr") is None, reason="chattr is not installed")
def test_immutable_rail_file_is_reported_not_fatal(
    tx2: SimBoard, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    target = tx2.root / IIO_GPU / "in_current0_input"
    made = subprocess.run(
        ["chattr", "+i", str(target)], capture_output=True, check=False, timeout=30
    )
    if made.returncode:
        pytest.skip("chattr +i not permitted here")
    try:
        with caplog.at_level(logging.WARNING, logger="edge_agent.sim.power_model"):
            model = PowerModel(tx2.root, fake_clock, busy=lambda: 1.0)
            model.step(0.0)
            model.step(0.05)
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True, timeout=30)
    warnings = [r for r in caplog.records if "VDD_SYS_GPU" in r.getMessage()]
    assert len(warnings) == 1  # once, not per step
    assert _mw(tx2, IIO_IN, 0) > 4000  # the other rails kept updating


def test_read_state_sees_offline_cpus(tx2: SimBoard) -> None:
    _mode(tx2, 1)
    state = read_state(tx2.root, tx2.spec)
    assert state.cpu == ((4, 345600, 1267200), (0, 345600, 2035200))
    assert state.gpu_max_hz == 854250000
    assert state.emc_hz == 1331200000
