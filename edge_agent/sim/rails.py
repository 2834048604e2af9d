"""INA3221 files of a simulated board, in the legacy iio or the hwmon layout.

Legacy ``ina3221x`` (L4T 28/32): ``iio:deviceN/{rail_name_K, in_voltageK_input (mV),
in_currentK_input (mA), in_powerK_input (mW), crit/warn_current_limit_K ("<mA> ma")}``.
hwmon ``ina3221`` (L4T 34+): ``hwmon/hwmonK/{inN_label, inN_input (mV), currN_input (mA),
currN_max, currN_crit, in[456]_input shunt (uV), in7 sum of shunts (uV), curr4 sum (mA)}``.
"""

from __future__ import annotations

from pathlib import Path

from edge_agent.sim.spec import BoardSpec, InaDevice
from edge_agent.sim.sysfs import (
    board_path,
    put,
    read_int,
    read_text,
    update_if_changed,
    write_atomic,
)

RO = 0o444
RW = 0o644


def chip_dir(root: Path, dev: InaDevice) -> Path:
    """The directory holding the channel files (``iio:deviceN`` or ``hwmon/hwmonK``)."""
    base = board_path(root, dev.device_dir)
    return base / (f"iio:device{dev.index}" if dev.iio else f"hwmon/hwmon{dev.index}")


def create_chip(root: Path, dev: InaDevice) -> None:
    """Write one chip's static files; channel readings start at zero."""
    base = board_path(root, dev.device_dir)
    put(base / "name", dev.driver + "\n", RO)
    chip = chip_dir(root, dev)
    if dev.iio:
        put(chip / "name", dev.driver + "\n", RO)
        put(chip / "running_mode", "1\n", RW)
        for ch, rail in enumerate(dev.rails):
            put(chip / f"rail_name_{ch}", rail + "\n", RO)
            put(chip / f"crit_current_limit_{ch}", f"{dev.crit_ma[ch]} ma\n", RW)
            put(chip / f"warn_current_limit_{ch}", f"{dev.warn_ma[ch]} ma\n", RW)
            for kind in ("voltage", "current", "power"):
                put(chip / f"in_{kind}{ch}_input", "0\n", RO)
                put(chip / f"in_{kind}{ch}_trigger_input", "0\n", RO)
            put(chip / f"ui_input_{ch}", "0 0\n", RO)
        return
    put(chip / "name", "ina3221\n", RO)
    put(chip / "samples", "512\n", RW)
    put(chip / "update_interval", "32\n", RW)
    for ch, rail in enumerate(dev.rails):
        n = ch + 1
        put(chip / f"in{n}_label", rail + "\n", RO)
        put(chip / f"in{n}_enable", "1\n", RW)
        put(chip / f"in{n}_input", "0\n", RO)
        put(chip / f"in{n + 3}_input", "0\n", RO)
        put(chip / f"curr{n}_input", "0\n", RO)
        put(chip / f"curr{n}_max", f"{dev.warn_ma[ch]}\n", RW)
        put(chip / f"curr{n}_crit", f"{dev.crit_ma[ch]}\n", RW)
        put(chip / f"curr{n}_max_alarm", "0\n", RO)
        put(chip / f"curr{n}_crit_alarm", "0\n", RO)
        put(chip / f"shunt{n}_resistor", f"{dev.shunt_uohm}\n", RW)
    put(chip / "in7_label", "sum of shunt voltages\n", RO)
    put(chip / "in7_input", "0\n", RO)
    put(chip / "curr4_input", "0\n", RO)
    put(chip / "curr4_crit", "32760\n", RW)


def write_rail(root: Path, spec: BoardSpec, rail: str, voltage_mv: int, current_ma: int) -> None:
    """Rewrite one rail's readings; each file is replaced atomically.

    Raises:
        KeyError: the board has no such rail.
    """
    dev, ch = spec.ina_of(rail)
    chip = chip_dir(root, dev)
    voltage_mv, current_ma = int(voltage_mv), int(current_ma)
    if dev.iio:
        power_mw = voltage_mv * current_ma // 1000
        _replace(chip / f"in_voltage{ch}_input", f"{voltage_mv}\n")
        _replace(chip / f"in_current{ch}_input", f"{current_ma}\n")
        _replace(chip / f"in_power{ch}_input", f"{power_mw}\n")
        _replace(chip / f"ui_input_{ch}", f"{voltage_mv} {current_ma}\n")
        return
    n = ch + 1
    _replace(chip / f"in{n}_input", f"{voltage_mv}\n")
    _replace(chip / f"curr{n}_input", f"{current_ma}\n")
    _replace(chip / f"in{n + 3}_input", f"{current_ma * dev.shunt_uohm // 1000}\n")
    currents = [read_int(chip / f"curr{k}_input") for k in (1, 2, 3)]
    shunts = [read_int(chip / f"in{k}_input") for k in (4, 5, 6)]
    update_if_changed(chip / "in7_input", f"{sum(shunts)}\n")
    update_if_changed(chip / "curr4_input", f"{sum(currents)}\n")


def _replace(path: Path, text: str) -> None:
    """Atomically replace a reading; an unchanged value is left alone (renames are not free)."""
    if read_text(path) != text.strip():
        write_atomic(path, text, RO)


def read_rail(root: Path, spec: BoardSpec, rail: str) -> tuple[int, int]:
    """``(voltage_mv, current_ma)`` as the files hold them now."""
    dev, ch = spec.ina_of(rail)
    chip = chip_dir(root, dev)
    if dev.iio:
        return read_int(chip / f"in_voltage{ch}_input"), read_int(chip / f"in_current{ch}_input")
    return read_int(chip / f"in{ch + 1}_input"), read_int(chip / f"curr{ch + 1}_input")
