"""Backend choice (open_monitor) and the backends that need hardware this machine lacks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock
from edge_agent.errors import HardwareError
from edge_agent.hardware.jtop_power import JtopMonitor, reading_from_jtop
from edge_agent.hardware.nvml import NvmlMonitor
from edge_agent.hardware.root import Root
from edge_agent.power.monitor import BACKENDS, UnavailableMonitor, open_monitor
from tests.fakes.ina import TX2_RAILS, make_ina238, make_ina3221


def _has_nvidia_gpu() -> bool:
    if importlib.util.find_spec("pynvml") is None:
        return False
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


def test_auto_picks_ina3221_and_says_so(tmp_path: Path, fake_clock: FakeClock) -> None:
    make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    monitor, why = open_monitor("auto", Root(tmp_path), fake_clock)
    assert monitor.available
    assert monitor.source == "ina3221"
    assert why.startswith("auto chose ina3221: 6 rails")
    assert monitor.read().total_name == "VDD_IN"


def test_auto_picks_thor_ina238(tmp_path: Path, fake_clock: FakeClock) -> None:
    make_ina238(tmp_path)
    monitor, why = open_monitor("auto", Root(tmp_path), fake_clock)
    assert monitor.source == "ina238"
    assert "auto chose ina238" in why


def test_auto_on_an_empty_tree_finds_none_and_lists_reasons(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    # No skip on GPU hosts: off "/", auto must not fall back to the host's jtop or NVML.
    monitor, why = open_monitor("auto", Root(tmp_path), fake_clock)
    assert isinstance(monitor, UnavailableMonitor)
    assert not monitor.available
    assert monitor.source == "none"
    for name in ("ina3221:", "jtop:", "nvml:"):
        assert name in why
        assert name in monitor.reason
    for name in ("jtop", "nvml"):
        assert f"{name}: skipped, the root {tmp_path} is not this host's /" in why
    with pytest.raises(HardwareError, match="no power monitor"):
        monitor.read()


@pytest.mark.skipif(_has_nvidia_gpu(), reason="this host has an NVIDIA GPU")
def test_auto_on_the_host_root_tries_jtop_and_nvml(fake_clock: FakeClock) -> None:
    monitor, why = open_monitor("auto", Root("/"), fake_clock)
    if monitor.available:
        pytest.skip(f"this host has a power monitor: {why}")
    assert "skipped" not in why
    assert "jtop: " in why
    assert "nvml: " in why


def test_sim_backend_is_the_ina_reader_labelled_sim(tmp_path: Path, fake_clock: FakeClock) -> None:
    make_ina3221(tmp_path, "hwmon", {"VDD_IN": (5000, 1000)})
    monitor, why = open_monitor("sim", Root(tmp_path), fake_clock)
    assert monitor.source == "sim"
    assert why.startswith("sim: ")
    assert monitor.read().total_mw == 5000.0


def test_none_and_unknown_kinds(tmp_path: Path, fake_clock: FakeClock) -> None:
    monitor, why = open_monitor("none", Root(tmp_path), fake_clock)
    assert not monitor.available
    assert monitor.rail_names() == []
    assert "off" in why
    with pytest.raises(HardwareError, match="unknown power monitor 'bogus'"):
        open_monitor("bogus", Root(tmp_path), fake_clock)
    assert set(BACKENDS) == {"ina3221", "jtop", "nvml", "sim", "none"}


@pytest.mark.skipif(_has_nvidia_gpu(), reason="this host has an NVIDIA GPU")
def test_nvml_without_gpu_reports_unavailable_cleanly(fake_clock: FakeClock) -> None:
    monitor = NvmlMonitor(fake_clock)
    assert not monitor.available
    assert monitor.source == "nvml"
    assert monitor.reason  # e.g. "NVML unavailable: NVML Shared Library Not Found"
    assert monitor.rail_names() == []
    with pytest.raises(HardwareError):
        monitor.read()
    monitor.close()
    monitor.close()


@pytest.mark.skipif(_has_nvidia_gpu(), reason="this host has an NVIDIA GPU")
def test_explicit_nvml_is_returned_unavailable(tmp_path: Path, fake_clock: FakeClock) -> None:
    monitor, why = open_monitor("nvml", Root(tmp_path), fake_clock)
    assert not monitor.available
    assert why.startswith("nvml (unavailable): ")


@pytest.mark.gpu
@pytest.mark.skipif(not _has_nvidia_gpu(), reason="needs an NVIDIA GPU")
def test_nvml_reads_power_and_energy(fake_clock: FakeClock) -> None:
    monitor = NvmlMonitor(fake_clock)
    try:
        reading = monitor.read()
        assert reading.rails[0].name == "GPU0"
        assert reading.total_mw is not None
        assert reading.total_mw > 0
    finally:
        monitor.close()


def test_jtop_without_service_is_unavailable(tmp_path: Path, fake_clock: FakeClock) -> None:
    monitor = JtopMonitor(Root(tmp_path), fake_clock)
    assert not monitor.available
    if importlib.util.find_spec("jtop") is None:
        assert "jtop is not installed" in monitor.reason
    else:
        assert "run/jtop.sock" in monitor.reason
    with pytest.raises(HardwareError):
        monitor.read()
    monitor.close()


def test_jtop_power_dict_puts_the_total_rail_back() -> None:
    power = {
        "rail": {
            "VDD_CPU_GPU_CV": {"online": True, "volt": 5000, "curr": 200, "power": 1000},
            "VDD_SOC": {"online": True, "volt": 5000, "curr": 300, "power": 1500, "avg": 9},
            "VDD_GONE": {"online": False, "power": 0},
        },
        "tot": {"name": "VDD_IN", "volt": 5000, "curr": 1000, "power": 5000, "warn": 3000},
    }
    reading = reading_from_jtop(power, 12.5)
    assert [r.name for r in reading.rails] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert reading.total_name == "VDD_IN"
    assert reading.total_mw == 5000.0
    assert reading.offline == ("VDD_GONE",)
    assert reading.gpu_rail == "VDD_CPU_GPU_CV"
    assert reading.rails[0].warn_ma == 3000
    assert reading.t_s == 12.5


def test_jtop_power_dict_without_input_rail_is_a_sum() -> None:
    power = {
        "rail": {"VDD_GPU_SOC": {"power": 4000}, "VIN_SYS_5V0": {"power": 2000}},
        "tot": {"power": 6000, "avg": 5000},
    }
    reading = reading_from_jtop(power, 1.0)
    assert reading.total_is_sum
    assert reading.total_mw == 6000.0
    assert reading.rails[0].voltage_mv is None
