"""INA3221/INA238 discovery and reads over real files under tmp_path."""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock
from edge_agent.errors import HardwareError
from edge_agent.hardware.base import SUM_OF_RAILS, RailReading, gpu_rail_name
from edge_agent.hardware.ina3221 import InaMonitor
from edge_agent.hardware.ina_discovery import discover, parse_limit_ma
from edge_agent.hardware.root import Root
from tests.fakes.ina import AGX_ORIN_RAILS, TX2_RAILS, make_ina238, make_ina3221


def test_tx2_iio_layout_gives_six_rails_with_vdd_in_as_total(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0, first_index=0)
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    reading = monitor.read()

    assert monitor.available
    assert [d.layout for d in monitor.devices] == ["iio", "iio"]
    assert [d.path for d in monitor.devices] == [
        "/sys/bus/i2c/devices/0-0040/iio:device0",
        "/sys/bus/i2c/devices/0-0041/iio:device1",
    ]
    assert [r.name for r in reading.rails] == [name for name, _, _ in TX2_RAILS]
    assert reading.total_name == "VDD_IN"
    assert not reading.total_is_sum
    assert reading.total_mw == 19000 * 220 // 1000  # V x I of ui_input_1, not added again
    assert reading.gpu_rail == "VDD_SYS_GPU"
    gpu = reading.rail("VDD_SYS_GPU")
    assert gpu is not None
    assert (gpu.voltage_mv, gpu.current_ma, gpu.power_mw) == (19000, 80, 1520)
    assert (gpu.warn_ma, gpu.crit_ma) == (32760, 32760)  # the "32760 ma" form
    assert reading.t_s == fake_clock.monotonic()


def test_agx_orin_hwmon_total_is_sum_of_connected_rails(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    make_ina3221(tmp_path, "hwmon", AGX_ORIN_RAILS, first_index=3)
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    reading = monitor.read()

    names = [r.name for r in reading.rails]
    assert names == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]
    assert "NC" not in names
    assert "sum of shunt voltages" not in names
    assert [d.path for d in monitor.devices] == [
        "/sys/bus/i2c/devices/1-0040/hwmon/hwmon3",
        "/sys/bus/i2c/devices/1-0041/hwmon/hwmon4",
    ]
    assert reading.total_name == SUM_OF_RAILS
    assert reading.total_is_sum
    # hwmon has no power file: mV x mA / 1000 per rail.
    assert reading.total_mw == pytest.approx(19000 * 0.3 + 19000 * 0.1 + 5000 * 0.6 + 5000 * 0.12)
    assert reading.gpu_rail == "VDD_GPU_SOC"


def test_hwmon_index_varies_and_orin_nano_uses_vdd_in(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    rails = {"VDD_IN": (5000, 1200), "VDD_CPU_GPU_CV": (5000, 300), "VDD_SOC": (5000, 250)}
    make_ina3221(tmp_path, "hwmon", rails, first_index=7)
    reading = InaMonitor(Root(tmp_path), fake_clock).read()

    assert reading.total_name == "VDD_IN"
    assert reading.total_mw == 6000.0
    assert reading.gpu_rail == "VDD_CPU_GPU_CV"
    assert len(reading.rails) == 3


def test_iio_without_power_file_multiplies(tmp_path: Path, fake_clock: FakeClock) -> None:
    make_ina3221(
        tmp_path, "iio", {"POM_5V_IN": (5000, 900)}, iio_power_file=False, iio_ui_input=False
    )
    reading = InaMonitor(Root(tmp_path), fake_clock).read()
    assert reading.total_name == "POM_5V_IN"
    assert reading.total_mw == 4500.0


def test_thor_ina238_reads_microwatts(tmp_path: Path, fake_clock: FakeClock) -> None:
    make_ina238(tmp_path, voltage_mv=48000, current_ma=1500)
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    reading = monitor.read()
    assert monitor.source == "ina238"
    assert reading.total_name == "VIN"
    assert reading.total_mw == pytest.approx(72000.0)
    vin = reading.rail("VIN")
    assert vin is not None
    assert (vin.voltage_mv, vin.current_ma) == (48000, 1500)


def test_limits_parse_both_forms_and_refresh(tmp_path: Path, fake_clock: FakeClock) -> None:
    assert parse_limit_ma("32760 ma") == 32760
    assert parse_limit_ma("7784") == 7784
    assert parse_limit_ma("") is None
    assert parse_limit_ma("bogus") is None
    tree = make_ina3221(
        tmp_path, "hwmon", {"VDD_IN": (5000, 1000)}, limits={"VDD_IN": (3000, 5000)}
    )
    monitor = InaMonitor(Root(tmp_path), fake_clock, limits_refresh_s=5.0)
    rail = monitor.read().rail("VDD_IN")
    assert rail is not None
    assert (rail.warn_ma, rail.crit_ma) == (3000, 5000)
    tree.set_limits("VDD_IN", 4000, 5000)  # nvpmodel rewrites VDD_IN limits per mode
    fake_clock.advance(1.0)
    assert monitor.read().rails[0].warn_ma == 3000  # not re-read yet
    fake_clock.advance(5.0)
    assert monitor.read().rails[0].warn_ma == 4000
    assert monitor.limits() == {"VDD_IN": (4000, 5000)}


def test_rail_file_vanishing_marks_it_offline_and_it_comes_back(
    tmp_path: Path, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    tree.remove("VDD_SYS_CPU")
    with caplog.at_level(logging.INFO, logger="edge_agent.hardware.ina3221"):
        first = monitor.read()
        second = monitor.read()
    assert first.offline == ("VDD_SYS_CPU",)
    assert second.offline == ("VDD_SYS_CPU",)
    assert [r.name for r in second.rails if r.name == "VDD_SYS_CPU"] == []
    assert len(second.rails) == 5
    assert second.total_mw == 19000 * 220 // 1000  # VDD_IN unaffected
    offline_logs = [r for r in caplog.records if "offline" in r.getMessage()]
    assert len(offline_logs) == 1
    assert offline_logs[0].levelno == logging.WARNING

    tree.restore("VDD_SYS_CPU", 19000, 50)
    with caplog.at_level(logging.INFO, logger="edge_agent.hardware.ina3221"):
        third = monitor.read()
    assert third.offline == ()
    cpu = third.rail("VDD_SYS_CPU")
    assert cpu is not None
    assert cpu.power_mw == 950
    assert any("back online" in r.getMessage() for r in caplog.records)


def test_offline_rail_leaves_the_sum_of_the_others(tmp_path: Path, fake_clock: FakeClock) -> None:
    tree = make_ina3221(tmp_path, "hwmon", AGX_ORIN_RAILS)
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    tree.remove("VIN_SYS_5V0")
    reading = monitor.read()
    assert reading.offline == ("VIN_SYS_5V0",)
    assert reading.total_mw == pytest.approx(5700 + 1900 + 600)


def test_empty_value_is_a_skipped_read_not_a_crash(tmp_path: Path, fake_clock: FakeClock) -> None:
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    tree.truncate("VDD_IN")
    reading = monitor.read()
    assert reading.rail("VDD_IN") is None
    assert reading.total_mw is None  # bridged by the ledger, never a false 0 W
    assert reading.offline == ()
    assert monitor.skipped_reads == 1
    tree.set("VDD_IN", 19000, 300)
    assert monitor.read().total_mw == 5700


def test_sum_with_a_half_written_rail_is_skipped(tmp_path: Path, fake_clock: FakeClock) -> None:
    tree = make_ina3221(tmp_path, "hwmon", AGX_ORIN_RAILS)
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    tree.truncate("VDD_CPU_CV")
    assert monitor.read().total_mw is None


def test_concurrent_rewrites_never_break_a_read(tmp_path: Path, fake_clock: FakeClock) -> None:
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    done = threading.Event()

    def writer() -> None:
        value = 0
        while not done.is_set():
            value = (value + 1) % 500
            tree.set("VDD_IN", 19000, 100 + value)
            tree.set("VDD_SYS_GPU", 19000, 10 + value)

    thread = threading.Thread(target=writer, name="ina-writer")
    thread.start()
    try:
        readings = [monitor.read() for _ in range(300)]
    finally:
        done.set()
        thread.join(5)
    for reading in readings:
        assert reading.offline == ()
        assert len(reading.rails) == 6
        vdd_in = reading.rail("VDD_IN")
        assert vdd_in is not None
        assert 100 <= (vdd_in.current_ma or 0) < 600


def _open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def test_every_pass_reads_fresh_values_in_place_or_replaced(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    assert monitor.read().total_mw == 19000 * 220 // 1000
    files = tree.rails["VDD_IN"]
    # A driver (or an in-place writer) changes the value of the same file: no reopen needed.
    for path, text in ((files.pair, "19000 300\n"), (files.power, "5700\n")):
        assert path is not None
        path.write_text(text, encoding="utf-8")
    first = monitor.read().rail("VDD_IN")
    assert first is not None
    assert (first.current_ma, first.power_mw) == (300, 5700)
    tree.set("VDD_IN", 19000, 400)  # the simulator's way: a new file renamed over the old
    second = monitor.read().rail("VDD_IN")
    assert second is not None
    assert (second.current_ma, second.power_mw) == (400, 7600)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_close_releases_the_value_files(tmp_path: Path, fake_clock: FakeClock) -> None:
    make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    gc.collect()  # descriptors of earlier tests' garbage must not close mid-count
    before = _open_fds()
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    monitor.read()
    # ui_input of six rails (in_power is their product: not read), and the two chip
    # directories whose mtimes say when a file was replaced
    assert _open_fds() == before + 8
    monitor.read()
    assert _open_fds() == before + 8  # reused, not reopened
    monitor.close()
    assert _open_fds() == before
    assert monitor.read().total_mw == 19000 * 220 // 1000  # reopened on demand
    del monitor
    gc.collect()
    assert _open_fds() == before  # a monitor nobody closed releases them when collected


def test_no_monitor_is_unavailable_with_reason(tmp_path: Path, fake_clock: FakeClock) -> None:
    (tmp_path / "sys/bus/i2c/devices/0-0050").mkdir(parents=True)
    (tmp_path / "sys/bus/i2c/devices/0-0050/name").write_text("24c02\n", encoding="utf-8")
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    assert not monitor.available
    assert "no INA3221/INA238" in monitor.reason
    assert discover(Root(tmp_path)) == []
    with pytest.raises(HardwareError, match="no INA3221"):
        monitor.read()


def test_gpu_rail_prefers_a_gpu_only_rail() -> None:
    assert gpu_rail_name(["VDD_CPU_GPU_CV", "VDD_SOC"]) == "VDD_CPU_GPU_CV"
    assert gpu_rail_name(["POM_5V_CPU", "POM_5V_GPU"]) == "POM_5V_GPU"
    assert gpu_rail_name(["CPU", "GPU", "SOC"]) == "GPU"
    assert gpu_rail_name(["VDD_SOC"]) is None


def test_iio_power_is_the_product_of_one_ui_input_conversion(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    # The INA3221 has no power register: in_power is V x I from another conversion, so the
    # reader takes both from ui_input and does not read in_power at all.
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    files = tree.rails["VDD_IN"]
    assert files.pair is not None
    assert files.power is not None
    files.pair.write_text("19000 300\n", encoding="utf-8")
    files.power.write_text("9999\n", encoding="utf-8")
    rail = InaMonitor(Root(tmp_path), fake_clock).read().rail("VDD_IN")
    assert rail is not None
    assert (rail.voltage_mv, rail.current_ma, rail.power_mw) == (19000, 300, 5700)


@pytest.mark.parametrize("layout", ["iio", "hwmon"])
def test_a_raw_sample_decodes_to_what_read_returns(
    tmp_path: Path, fake_clock: FakeClock, layout: str
) -> None:
    make_ina3221(tmp_path, layout, TX2_RAILS, bus=0, limits={"VDD_IN": (3000, 5000)})
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    raw = monitor.sample()
    assert raw is not None
    assert not raw.near_limit
    assert monitor.decode(raw) == monitor.read()
    assert monitor.decode(raw).rail("VDD_IN") == RailReading("VDD_IN", 4180, 19000, 220, 3000, 5000)


def test_a_raw_sample_flags_a_rail_at_its_lowest_limit(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0, limits={"VDD_IN": (3000, 5000)})
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    tree.set("VDD_IN", 19000, 2999)
    below = monitor.sample()
    tree.set("VDD_IN", 19000, 3000)
    at = monitor.sample()
    assert below is not None
    assert at is not None
    assert (below.near_limit, at.near_limit) == (False, True)


def test_anything_unusual_falls_back_to_the_full_pass(
    tmp_path: Path, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    monitor = InaMonitor(Root(tmp_path), fake_clock)
    tree.truncate("VDD_SYS_GPU")  # half written
    assert monitor.sample() is None
    reading = monitor.read()
    assert reading.rail("VDD_SYS_GPU") is None
    assert reading.total_mw == 19000 * 220 // 1000
    assert monitor.skipped_reads == 1
    tree.set("VDD_SYS_GPU", 19000, 80)
    tree.remove("VDD_SYS_SOC")
    assert monitor.sample() is None
    with caplog.at_level(logging.INFO, logger="edge_agent.hardware.ina3221"):
        assert monitor.read().offline == ("VDD_SYS_SOC",)
        assert monitor.sample() is None  # offline: only read() notices it coming back
        tree.restore("VDD_SYS_SOC")
        assert monitor.read().offline == ()
    assert "rail VDD_SYS_SOC back online" in caplog.text
    raw = monitor.sample()
    assert raw is not None
    assert len(monitor.decode(raw).rails) == 6
