"""Builders that write real INA3221 (iio, hwmon) and INA238 sysfs files under a temp root.

The layout mirrors a board: the device directory lives under ``sys/devices/platform/...`` and
``sys/bus/i2c/devices/<bus>-<addr>`` is a symlink to it, as on a Jetson. Values are written
the way the simulator does (temp file + ``os.replace``), so readers never see half a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RailSpec = tuple[str, int, int]
"""(label, millivolts, milliamps)."""


def write_atomic(path: Path, text: str) -> None:
    """Replace a file's content at once, as the simulator's power model does."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@dataclass
class _RailFiles:
    voltage: Path
    current: Path
    power: Path | None
    warn: Path | None
    crit: Path | None
    iio: bool
    power_uw: bool = False
    pair: Path | None = None

    def inputs(self) -> list[Path]:
        """Every file a reader takes values from."""
        return [p for p in (self.voltage, self.current, self.power, self.pair) if p is not None]


@dataclass
class InaTree:
    """A written tree; change rails with :meth:`set` and friends."""

    root: Path
    devices: list[Path] = field(default_factory=list)
    rails: dict[str, _RailFiles] = field(default_factory=dict)

    def set(self, name: str, voltage_mv: int, current_ma: int) -> None:
        """Write a rail's voltage, current and (iio, INA238) power."""
        files = self.rails[name]
        write_atomic(files.voltage, f"{voltage_mv}\n")
        write_atomic(files.current, f"{current_ma}\n")
        if files.power is not None:
            scale = 1000 if files.power_uw else 1
            write_atomic(files.power, f"{voltage_mv * current_ma * scale // 1000}\n")
        if files.pair is not None:
            write_atomic(files.pair, f"{voltage_mv} {current_ma}\n")

    def set_power(self, name: str, power_mw: float, voltage_mv: int = 5000) -> None:
        """Write a rail so that it reads ``power_mw`` at ``voltage_mv``."""
        self.set(name, voltage_mv, round(power_mw * 1000 / voltage_mv))

    def set_limits(self, name: str, warn_ma: int, crit_ma: int) -> None:
        """Rewrite a rail's warn/crit limits (``"N ma"`` on iio, plain mA on hwmon)."""
        files = self.rails[name]
        unit = " ma" if files.iio else ""
        if files.warn is not None:
            write_atomic(files.warn, f"{warn_ma}{unit}\n")
        if files.crit is not None:
            write_atomic(files.crit, f"{crit_ma}{unit}\n")

    def remove(self, name: str) -> None:
        """Delete a rail's input files, as when a driver unbinds."""
        for path in self.rails[name].inputs():
            path.unlink()

    def restore(self, name: str, voltage_mv: int = 5000, current_ma: int = 100) -> None:
        """Bring a removed rail back."""
        self.set(name, voltage_mv, current_ma)

    def truncate(self, name: str) -> None:
        """Leave a rail's input files empty, as an in-place writer does mid-write."""
        for path in self.rails[name].inputs():
            path.write_text("", encoding="utf-8")


def _device_dir(root: Path, bus: int, addr: int, driver: str) -> tuple[Path, str]:
    dev_name = f"{bus}-{addr:04x}"
    real = root / f"sys/devices/platform/3160000.i2c/i2c-{bus}/{dev_name}"
    real.mkdir(parents=True, exist_ok=True)
    (real / "name").write_text(f"{driver}\n", encoding="utf-8")
    for link_dir in (root / "sys/bus/i2c/devices", root / f"sys/bus/i2c/drivers/{driver}"):
        link_dir.mkdir(parents=True, exist_ok=True)
        link = link_dir / dev_name
        if not link.exists():
            link.symlink_to(os.path.relpath(real, link_dir))
    return real, dev_name


def _as_specs(rails: Mapping[str, tuple[int, int]] | Sequence[RailSpec]) -> list[RailSpec]:
    if isinstance(rails, Mapping):
        return [(name, mv, ma) for name, (mv, ma) in rails.items()]
    return list(rails)


def make_ina3221(
    root: Path,
    layout: str = "hwmon",
    rails: Mapping[str, tuple[int, int]] | Sequence[RailSpec] = (),
    *,
    bus: int = 1,
    first_addr: int = 0x40,
    first_index: int = 3,
    iio_power_file: bool = True,
    iio_ui_input: bool = True,
    limits: Mapping[str, tuple[int, int]] | None = None,
) -> InaTree:
    """Write INA3221 chips (three channels each) holding ``rails`` in order.

    Args:
        root: the fake filesystem root.
        layout: ``"hwmon"`` (L4T 34+, ``hwmon/hwmonK``) or ``"iio"`` (L4T 28/32).
        rails: ``{"VDD_IN": (mV, mA)}`` or a list of ``(label, mV, mA)`` (``"NC"`` may repeat).
        bus: the I2C bus number.
        first_addr: the first chip's address; later chips follow (0x40, 0x41, ...).
        first_index: K of the first ``hwmonK`` / N of the first ``iio:deviceN``.
        iio_power_file: write ``in_powerN_input`` on iio.
        iio_ui_input: write ``ui_input_N`` (``"<mV> <mA>"``) on iio.
        limits: per-rail (warn_ma, crit_ma); default 32760 mA like an unset iio limit.
    """
    tree = InaTree(root)
    specs = _as_specs(rails)
    chunks = [specs[i : i + 3] for i in range(0, len(specs), 3)]
    for chip, chunk in enumerate(chunks):
        driver = "ina3221x" if layout == "iio" else "ina3221"
        real, _ = _device_dir(root, bus, first_addr + chip, driver)
        if layout == "iio":
            directory = real / f"iio:device{first_index + chip}"
        else:
            directory = real / "hwmon" / f"hwmon{first_index + chip}"
        directory.mkdir(parents=True)
        (directory / "name").write_text(f"{driver}\n", encoding="utf-8")
        tree.devices.append(directory)
        for channel, (label, mv, ma) in enumerate(chunk):
            chan_limits = (limits or {}).get(label, (32760, 32760))
            files = _write_channel(
                directory, layout, channel, label, chan_limits, iio_power_file, iio_ui_input
            )
            if label not in tree.rails:
                tree.rails[label] = files
            write_atomic(files.voltage, f"{mv}\n")
            write_atomic(files.current, f"{ma}\n")
            if files.power is not None:
                write_atomic(files.power, f"{mv * ma // 1000}\n")
            if files.pair is not None:
                write_atomic(files.pair, f"{mv} {ma}\n")
        if layout == "hwmon":
            (directory / "in7_label").write_text("sum of shunt voltages\n", encoding="utf-8")
            (directory / "in7_input").write_text("1520\n", encoding="utf-8")
            (directory / "update_interval").write_text("1\n", encoding="utf-8")
        else:
            (directory / "running_mode").write_text("1\n", encoding="utf-8")
    return tree


def _write_channel(
    directory: Path,
    layout: str,
    channel: int,
    label: str,
    limits: tuple[int, int],
    power: bool,
    ui_input: bool,
) -> _RailFiles:
    warn, crit = limits
    if layout == "iio":
        (directory / f"rail_name_{channel}").write_text(f"{label}\n", encoding="utf-8")
        (directory / f"warn_current_limit_{channel}").write_text(f"{warn} ma\n", encoding="utf-8")
        (directory / f"crit_current_limit_{channel}").write_text(f"{crit} ma\n", encoding="utf-8")
        return _RailFiles(
            voltage=directory / f"in_voltage{channel}_input",
            current=directory / f"in_current{channel}_input",
            power=directory / f"in_power{channel}_input" if power else None,
            warn=directory / f"warn_current_limit_{channel}",
            crit=directory / f"crit_current_limit_{channel}",
            iio=True,
            pair=directory / f"ui_input_{channel}" if ui_input else None,
        )
    n = channel + 1
    (directory / f"in{n}_label").write_text(f"{label}\n", encoding="utf-8")
    (directory / f"in{n + 3}_input").write_text("800\n", encoding="utf-8")  # shunt voltage, µV
    (directory / f"curr{n}_max").write_text(f"{warn}\n", encoding="utf-8")
    (directory / f"curr{n}_crit").write_text(f"{crit}\n", encoding="utf-8")
    (directory / f"shunt{n}_resistor").write_text("5000\n", encoding="utf-8")
    return _RailFiles(
        voltage=directory / f"in{n}_input",
        current=directory / f"curr{n}_input",
        power=None,
        warn=directory / f"curr{n}_max",
        crit=directory / f"curr{n}_crit",
        iio=False,
    )


def make_ina238(
    root: Path, voltage_mv: int = 48000, current_ma: int = 900, *, bus: int = 2, index: int = 1
) -> InaTree:
    """Write a Jetson Thor INA238: one ``VIN`` rail, power in microwatts."""
    tree = InaTree(root)
    real, _ = _device_dir(root, bus, 0x44, "ina238")
    directory = real / "hwmon" / f"hwmon{index}"
    directory.mkdir(parents=True)
    (directory / "name").write_text("ina238\n", encoding="utf-8")
    (directory / "in0_input").write_text("3\n", encoding="utf-8")  # shunt voltage, mV
    (directory / "temp1_input").write_text("41000\n", encoding="utf-8")
    tree.devices.append(directory)
    tree.rails["VIN"] = _RailFiles(
        voltage=directory / "in1_input",
        current=directory / "curr1_input",
        power=directory / "power1_input",
        warn=None,
        crit=None,
        iio=False,
        power_uw=True,
    )
    tree.set("VIN", voltage_mv, current_ma)
    return tree


TX2_RAILS: list[RailSpec] = [
    ("VDD_SYS_GPU", 19000, 80),
    ("VDD_SYS_SOC", 19000, 40),
    ("VDD_4V0_WIFI", 19000, 2),
    ("VDD_IN", 19000, 220),
    ("VDD_SYS_CPU", 19000, 30),
    ("VDD_SYS_DDR", 19000, 25),
]
"""TX2: 0-0040 then 0-0041 (jetson_interfaces.md 1.3)."""

AGX_ORIN_RAILS: list[RailSpec] = [
    ("VDD_GPU_SOC", 19000, 300),
    ("VDD_CPU_CV", 19000, 100),
    ("VIN_SYS_5V0", 5000, 600),
    ("NC", 0, 0),
    ("VDDQ_VDD2_1V8AO", 5000, 120),
    ("NC", 0, 0),
]
"""AGX Orin: 1-0040 then 1-0041 with two NC channels, no VDD_IN."""
