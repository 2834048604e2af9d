"""Finding INA3221 (legacy iio and hwmon) and INA238 (Jetson Thor) monitors and their rails.

Discovery follows jtop (``jtop/core/power.py``) but goes through a :class:`Root`: every
``sys/bus/i2c/devices/*`` whose ``name`` contains ``ina3221`` or ``ina238``, with either a
``hwmon/hwmonK`` child (K varies between boards and boots) or an ``iio:deviceN`` child.
``NC`` (not connected) channels and hwmon's ``in7`` "sum of shunt voltages" are skipped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import SysfsError
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

_SHUNT_SUM_LABEL = "sum of shunt voltages"


@dataclass(frozen=True, slots=True)
class InaChannel:
    """The files of one connected rail (absolute paths under the root)."""

    name: str
    voltage_path: str
    current_path: str
    power_path: str | None
    power_to_mw: float
    warn_path: str | None
    crit_path: str | None
    pair_path: str | None = None


@dataclass(frozen=True, slots=True)
class InaDevice:
    """One monitor chip: ``chip`` ina3221/ina238, ``layout`` iio/hwmon, its board path."""

    chip: str
    layout: str
    path: str
    channels: tuple[InaChannel, ...]


def parse_limit_ma(text: str) -> float | None:
    """A current limit in mA from ``"32760 ma"`` (iio) or ``"7784"`` (hwmon); None if empty."""
    parts = text.split()
    if not parts:
        return None
    try:
        return float(int(parts[0]))
    except ValueError:
        return None


def _is_nc(label: str) -> bool:
    return label.strip().upper() in {"NC", "N/C", "N.C."}


def _read_label(root: Root, path: str | Path) -> str:
    try:
        return root.read_text(path)
    except SysfsError:
        return ""


def _file(root: Root, directory: str, name: str) -> str | None:
    path = root.resolve(f"{directory}/{name}")
    if not path.exists():
        return None
    # Opening the resolved path skips the kernel's walk through the i2c/devices symlink each
    # time a value file is (re)opened; a link that leaves the root is not followed.
    real = os.path.realpath(path)
    base = os.path.realpath(root.path)
    return real if real.startswith(base.rstrip(os.sep) + os.sep) else str(path)


def _hwmon_channels(root: Root, directory: str, chip: str) -> list[InaChannel]:
    channels: list[InaChannel] = []
    if chip == "ina238":
        # Thor carriers: one rail; in1 bus mV, curr1 mA, power1 in microwatts (Linux ina238.c).
        label_path = _file(root, directory, "in1_label")
        label = _read_label(root, label_path) if label_path else "VIN"
        volt = _file(root, directory, "in1_input")
        curr = _file(root, directory, "curr1_input")
        if volt and curr:
            channels.append(
                InaChannel(
                    name=label or "VIN",
                    voltage_path=volt,
                    current_path=curr,
                    power_path=_file(root, directory, "power1_input"),
                    power_to_mw=0.001,
                    warn_path=_file(root, directory, "curr1_max"),
                    crit_path=_file(root, directory, "curr1_crit"),
                )
            )
        return channels
    for label_file in root.glob(f"{directory.lstrip('/')}/in*_label"):
        index = label_file.name[2:].split("_")[0]
        if not index.isdigit() or index == "7":
            continue
        label = _read_label(root, label_file)
        if not label or _is_nc(label) or label.lower() == _SHUNT_SUM_LABEL:
            continue
        volt = _file(root, directory, f"in{index}_input")
        curr = _file(root, directory, f"curr{index}_input")
        if volt is None or curr is None:
            continue
        channels.append(
            InaChannel(
                name=label,
                voltage_path=volt,
                current_path=curr,
                power_path=None,  # hwmon ina3221 has no power file: mV * mA / 1000
                power_to_mw=1.0,
                warn_path=_file(root, directory, f"curr{index}_max"),
                crit_path=_file(root, directory, f"curr{index}_crit"),
            )
        )
    return sorted(channels, key=lambda ch: ch.voltage_path)


def _iio_channels(root: Root, directory: str) -> list[InaChannel]:
    channels: list[InaChannel] = []
    for name_file in root.glob(f"{directory.lstrip('/')}/rail_name_*"):
        index = name_file.name.rsplit("_", 1)[-1]
        if not index.isdigit():
            continue
        label = _read_label(root, name_file)
        if not label or _is_nc(label):
            continue
        volt = _file(root, directory, f"in_voltage{index}_input")
        curr = _file(root, directory, f"in_current{index}_input")
        if volt is None or curr is None:
            continue
        channels.append(
            InaChannel(
                name=label,
                voltage_path=volt,
                current_path=curr,
                power_path=_file(root, directory, f"in_power{index}_input"),
                power_to_mw=1.0,
                warn_path=_file(root, directory, f"warn_current_limit_{index}"),
                crit_path=_file(root, directory, f"crit_current_limit_{index}"),
                pair_path=_file(root, directory, f"ui_input_{index}"),
            )
        )
    return sorted(channels, key=lambda ch: ch.voltage_path)


def discover(root: Root) -> list[InaDevice]:
    """Every INA3221/INA238 under ``sys/bus/i2c/devices`` with its connected channels."""
    devices: list[InaDevice] = []
    for device in root.glob("sys/bus/i2c/devices/*"):
        board_path = root.relative(device)
        try:
            name = root.read_text(device / "name").lower()
        except SysfsError:
            continue
        chip = "ina238" if "ina238" in name else "ina3221" if "ina3221" in name else None
        if chip is None:
            continue
        hwmons = sorted((device / "hwmon").glob("hwmon*")) if (device / "hwmon").is_dir() else []
        iios = sorted(device.glob("iio:device*"))
        if hwmons:
            layout, directory = "hwmon", root.relative(hwmons[0])
            channels = _hwmon_channels(root, directory, chip)
        elif iios:
            layout, directory = "iio", root.relative(iios[0])
            channels = _iio_channels(root, directory)
        else:
            logger.debug("%s: %s has no hwmon or iio:device child", board_path, chip)
            continue
        if channels:
            devices.append(InaDevice(chip, layout, directory, tuple(channels)))
    return devices
