"""Thermal zones, including offline (-256 C) and unreadable (EAGAIN-like) sensors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.hardware.root import Root
from edge_agent.hardware.thermal import ThermalZone, parse_milli_c, read_thermal_zones
from tests.fakes.sysfs import make_thermal, write

TX2_ZONES: list[tuple[str, int | None]] = [
    ("BCPU-therm", 37500),
    ("MCPU-therm", 37500),
    ("GPU-therm", 35000),
    ("PLL-therm", 37500),
    ("AO-therm", 38000),
    ("Tboard_tegra", 32000),
    ("Tdiode_tegra", 34250),
    ("PMIC-Die", 100000),
    ("thermal-fan-est", 36500),
]


def test_tx2_zones(tmp_path: Path) -> None:
    make_thermal(tmp_path, TX2_ZONES)
    zones = read_thermal_zones(Root(tmp_path))
    assert [z.name for z in zones] == [name for name, _ in TX2_ZONES]
    assert zones[2] == ThermalZone(2, "GPU-therm", 35.0, True)
    assert zones[6].temp_c == 34.25
    # PMIC-Die always reads 100 C: kept, but flagged.
    assert zones[7] == ThermalZone(7, "PMIC-Die", 100.0, True, fixed_reading=True)
    assert sum(z.fixed_reading for z in zones) == 1


def test_orin_nano_offline_zones(tmp_path: Path) -> None:
    make_thermal(
        tmp_path,
        [
            ("cpu-thermal", 49468),
            ("gpu-thermal", 48250),
            ("cv0-thermal", None),  # EAGAIN on a real Orin Nano; here an unreadable file
            ("cv1-thermal", -256000),
            ("soc0-thermal", -40000),
        ],
    )
    zones = read_thermal_zones(Root(tmp_path))
    assert [(z.name, z.temp_c, z.online) for z in zones] == [
        ("cpu-thermal", 49.468, True),
        ("gpu-thermal", 48.25, True),
        ("cv0-thermal", None, False),
        ("cv1-thermal", None, False),
        ("soc0-thermal", -40.0, True),
    ]


def test_zone_order_is_numeric_and_missing_type(tmp_path: Path) -> None:
    for index in (10, 2):
        write(tmp_path, f"sys/class/thermal/thermal_zone{index}/temp", "1000\n")
    write(tmp_path, "sys/class/thermal/cooling_device0/type", "pwm-fan\n")
    zones = read_thermal_zones(Root(tmp_path))
    assert [(z.index, z.name, z.temp_c) for z in zones] == [
        (2, "thermal_zone2", 1.0),
        (10, "thermal_zone10", 1.0),
    ]


def test_no_thermal_class(tmp_path: Path) -> None:
    assert read_thermal_zones(Root(tmp_path)) == []


@pytest.mark.parametrize(
    ("text", "celsius"),
    [("49468", 49.468), ("-256000", None), ("-255000", None), ("-254999", -254.999), ("x", None)],
)
def test_parse_milli_c(text: str, celsius: float | None) -> None:
    assert parse_milli_c(text) == celsius
