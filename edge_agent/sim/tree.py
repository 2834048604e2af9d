"""Write a simulated Jetson board as a file tree under a root directory.

The layout is the real one (``shared/reference/jetson_interfaces.md``): device-tree model and
compatible (NUL-terminated), ``/etc/nv_tegra_release``, INA3221 chips in the board's own driver
layout reached through ``/sys/bus/i2c/{devices,drivers}`` links, devfreq/cpufreq/online files,
thermal zones, the nvpmodel conf behind the ``/etc/nvpmodel.conf`` link (an absolute target, as on
a board), ``/var/lib/nvpmodel/status`` and the ``nvpmodel``/``jetson_clocks`` executables. Only
``sim/board.json`` says that it is simulated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge_agent import __version__
from edge_agent.hardware.nvpmodel import parse_conf
from edge_agent.sim import rails, sysfs
from edge_agent.sim.boards import BoardSpec
from edge_agent.sim.marker import MARKER
from edge_agent.sim.nvpmodel_cli import apply_mode, status_text
from edge_agent.sim.power_model import rail_powers_mw, rail_readings, read_state
from edge_agent.sim.releases import get_spec, release_of, spec_at
from edge_agent.sim.sysfs import board_path, link, put

RO, RW = 0o444, 0o644
OFFLINE_MC = -256000  # what an offline thermal sensor reads
SOC_IDS = {"tegra186": 24, "tegra194": 25, "tegra234": 35}
DEVFREQ_GOVERNORS = "wmark_active nvhost_podgov userspace performance simple_ondemand"
GOVERNORS = "interactive conservative ondemand userspace powersave performance schedutil"

_SCRIPT = '''#!{python}
"""Simulated {tool} (edge-agent sim): acts on the board tree that contains this file."""
import os
import sys
from pathlib import Path

ROOT = Path(os.path.abspath(__file__)).parents[2]
try:
    from edge_agent.sim.{module} import main
except ImportError:
    sys.path.append({package_parent!r})
    from edge_agent.sim.{module} import main
sys.exit(main(sys.argv[1:], ROOT))
'''


class SimBoard:
    """A simulated board tree: what tests use to drive it."""

    def __init__(self, root: Path, spec: BoardSpec) -> None:
        self.root = Path(root)
        self.spec = spec

    @classmethod
    def load(cls, root: Path) -> SimBoard:
        """Reopen a tree written by :func:`create_board`."""
        return cls(Path(root), spec_at(Path(root)))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def nvpmodel(self) -> Path:
        return self.root / "usr/sbin/nvpmodel"

    @property
    def jetson_clocks(self) -> Path:
        return self.root / "usr/bin/jetson_clocks"

    @property
    def tegrastats(self) -> Path:
        return self.root / "usr/bin/tegrastats"

    @property
    def devfreq_dir(self) -> Path:
        """The GPU devfreq directory (``max_freq``, ``cur_freq``, ...)."""
        return sysfs.devfreq_dir(self.root, self.spec)

    @property
    def reboot_count(self) -> int:
        """How often ``nvpmodel`` was told YES to its reboot question."""
        return sysfs.read_int(self.root / "sim/reboot_count")

    def path(self, board_path_text: str) -> Path:
        """A board path (``/sys/...``) under this root."""
        return board_path(self.root, board_path_text)

    def set_rail(self, name: str, voltage_mv: int, current_ma: int) -> None:
        """Set one rail's readings (every file replaced atomically).

        Raises:
            KeyError: the board has no rail called ``name``.
        """
        rails.write_rail(self.root, self.spec, name, voltage_mv, current_ma)

    def read_rail(self, name: str) -> tuple[int, int]:
        """``(voltage_mv, current_ma)`` of one rail."""
        return rails.read_rail(self.root, self.spec, name)

    def set_gpu_load(self, permille: int) -> None:
        sysfs.write_atomic(self.path(self.spec.gpu.device_dir) / "load", f"{permille}\n", RO)

    def set_temperature(self, zone_type: str, temp_mc: int) -> None:
        """Set the temperature of the thermal zone whose ``type`` is ``zone_type``."""
        index = [z.type for z in self.spec.thermal].index(zone_type)
        zone = self.root / f"sys/devices/virtual/thermal/thermal_zone{index}/temp"
        sysfs.write_atomic(zone, f"{temp_mc}\n", RO)


def create_board(board: str, dest: Path, release: str | None = None) -> SimBoard:
    """Write the tree of ``board`` (in ``release``, default: the board's default release)
    under ``dest``, started in the conf's default mode.

    Raises:
        KeyError: unknown board or release (the message lists the valid ones).
        FileExistsError: ``dest`` already holds a board tree.
    """
    spec = get_spec(board, release)
    root = Path(dest).absolute()
    if (root / MARKER).exists() or (root / "sys").exists():
        raise FileExistsError(f"{root} already holds a board tree")
    root.mkdir(parents=True, exist_ok=True)
    _identity(root, spec)
    for dev in spec.ina:
        rails.create_chip(root, dev)
        device = board_path(root, dev.device_dir)
        link(root / f"sys/bus/i2c/devices/{dev.bus_addr}", device)
        link(root / f"sys/bus/i2c/drivers/{dev.driver}/{dev.bus_addr}", device)
        link(device / "driver", root / f"sys/bus/i2c/drivers/{dev.driver}")
        if not dev.iio:
            link(root / f"sys/class/hwmon/hwmon{dev.index}", rails.chip_dir(root, dev))
    _cpus(root, spec)
    _gpu(root, spec)
    _emc_and_fan(root, spec)
    _thermal(root, spec)
    _nvpmodel(root, spec)
    put(root / MARKER, json.dumps(_describe(spec), indent=2) + "\n", RW)
    _boot(root, spec)
    return SimBoard(root, spec)


def _describe(spec: BoardSpec) -> dict[str, object]:
    release, major, minor = spec.l4t
    return {
        "board": spec.name,
        "release": release_of(spec),
        "model": spec.model,
        "l4t": f"R{release}.{major}.{minor}",
        "rails": list(spec.rail_names),
        "nvpmodel_conf": f"/etc/nvpmodel/{spec.conf_name}",
        "simulated": True,
        "created_by": f"edge-agent {__version__} sim",
    }


def _identity(root: Path, spec: BoardSpec) -> None:
    base = root / "sys/firmware/devicetree/base"
    put(base / "model", spec.model + "\0", RO)
    put(base / "compatible", "".join(c + "\0" for c in spec.compatible), RO)
    put(base / "name", "\0", RO)
    link(root / "proc/device-tree", base)
    put(root / "etc/nv_tegra_release", spec.nv_tegra_release, RW)
    soc = root / "sys/devices/soc0"
    put(soc / "family", "Tegra\n", RO)
    put(soc / "machine", (spec.machine or spec.model) + "\n", RO)
    put(soc / "soc_id", f"{SOC_IDS[spec.soc_family]}\n", RO)
    put(soc / "revision", "A01\n", RO)


def _cpus(root: Path, spec: BoardSpec) -> None:
    cpu_root = root / "sys/devices/system/cpu"
    every = sysfs.cpulist(range(spec.cpu_count)) + "\n"
    for name in ("online", "possible", "present"):
        put(cpu_root / name, every, RO)
    put(cpu_root / "offline", "\n", RO)
    for cluster in spec.clusters:
        pol = sysfs.policy_dir(root, cluster.policy)
        cpus = " ".join(str(c) for c in cluster.cpus) + "\n"
        table = cluster.freqs_khz
        files = {
            "affected_cpus": (cpus, RO),
            "related_cpus": (cpus, RO),
            "cpuinfo_min_freq": (f"{min(table)}\n", RO),
            "cpuinfo_max_freq": (f"{max(table)}\n", RO),
            "cpuinfo_cur_freq": (f"{min(table)}\n", RO),
            "cpuinfo_transition_latency": ("500000\n", RO),
            "scaling_available_frequencies": (" ".join(map(str, table)) + " \n", RO),
            "scaling_available_governors": (GOVERNORS + "\n", RO),
            "scaling_driver": (f"{spec.soc_family}\n", RO),
            "scaling_governor": (f"{cluster.governor}\n", RW),
            "scaling_min_freq": (f"{min(table)}\n", RW),
            "scaling_max_freq": (f"{max(table)}\n", RW),
            "scaling_cur_freq": (f"{min(table)}\n", RO),
            "scaling_setspeed": ("<unsupported>\n", RW),
        }
        for leaf, (text, mode) in files.items():
            put(pol / leaf, text, mode)
        for cpu in cluster.cpus:
            cpu_dir = sysfs.cpu_dir(root, cpu)
            put(cpu_dir / "online", "1\n", RW)
            link(cpu_dir / "cpufreq", pol)
            for index, state in enumerate(cluster.idle_states):
                put(cpu_dir / f"cpuidle/state{index}/name", state + "\n", RO)
                put(cpu_dir / f"cpuidle/state{index}/disable", "0\n", RW)


def _gpu(root: Path, spec: BoardSpec) -> None:
    gpu = spec.gpu
    device = board_path(root, gpu.device_dir)
    node = device / f"devfreq/{gpu.devfreq}"
    table = gpu.freqs_hz
    for leaf, text, mode in (
        ("available_frequencies", " ".join(map(str, table)) + "\n", RO),
        ("cur_freq", f"{min(table)}\n", RO),
        ("target_freq", f"{min(table)}\n", RO),
        ("min_freq", f"{min(table)}\n", RW),
        ("max_freq", f"{max(table)}\n", RW),
        ("governor", "nvhost_podgov\n", RW),
        ("available_governors", f"{DEVFREQ_GOVERNORS}\n", RO),
        ("polling_interval", "25\n", RW),
    ):  # fmt: skip
        put(node / leaf, text, mode)
    link(node / "device", device)
    link(root / f"sys/class/devfreq/{gpu.devfreq}", node)
    if gpu.devfreq_dev:
        link(device / "devfreq_dev", node)
    put(device / "load", "0\n", RO)
    put(device / "railgate_enable", "1\n", RW)
    put(device / "enable_3d_scaling", "1\n", RW)
    put(device / "power/control", "auto\n", RW)
    if gpu.tpcs:
        put(device / "tpc_pg_mask", "0\n", RW)
    if gpu.fbp:
        put(device / "fbp_pg_mask", "0\n", RW)
    of_node = root / f"sys/firmware/devicetree/base/{gpu.of_node}"
    chip = gpu.devfreq.split(".")[-1] if gpu.of_name == "gpu" else gpu.of_name
    put(of_node / "name", gpu.of_name + "\0", RO)
    put(of_node / "compatible", f"nvidia,{'ga10b' if chip == 'gpu' else chip}\0", RO)
    link(device / "of_node", of_node)
    for alias in gpu.aliases:
        link(board_path(root, alias), device)


def _emc_and_fan(root: Path, spec: BoardSpec) -> None:
    put(board_path(root, spec.emc.cap_path), "0\n", RW)
    clk = sysfs.emc_clk_dir(root)
    put(clk / "rate", f"{spec.emc.max_hz}\n", RW)
    put(clk / "min_rate", f"{spec.emc.min_hz}\n", RO)
    put(clk / "max_rate", f"{spec.emc.max_hz}\n", RO)
    put(clk / "mrq_rate_locked", "0\n", RW)
    if spec.emc.listed_rates():
        put(clk / "possible_rates", " ".join(map(str, spec.emc.listed_rates())) + "\n", RO)
    if spec.fan_hwmon is None:
        fan = root / "sys/devices/pwm-fan"
        put(fan / "target_pwm", "0\n", RW)
        put(fan / "cur_pwm", "0\n", RO)
        put(fan / "temp_control", "1\n", RW)
        return
    hwmon = root / f"sys/devices/platform/pwm-fan/hwmon/hwmon{spec.fan_hwmon}"
    put(hwmon / "name", "pwmfan\n", RO)
    put(hwmon / "pwm1", "88\n", RW)
    link(root / f"sys/class/hwmon/hwmon{spec.fan_hwmon}", hwmon)


def _thermal(root: Path, spec: BoardSpec) -> None:
    for index, zone in enumerate(spec.thermal):
        real = root / f"sys/devices/virtual/thermal/thermal_zone{index}"
        put(real / "type", zone.type + "\n", RO)
        put(real / "temp", f"{OFFLINE_MC if zone.offline_idle else zone.temp_mc}\n", RO)
        put(real / "mode", "enabled\n", RW)
        put(real / "policy", "step_wise\n", RW)
        link(root / f"sys/class/thermal/thermal_zone{index}", real)


def _nvpmodel(root: Path, spec: BoardSpec) -> None:
    put(root / f"etc/nvpmodel/{spec.conf_name}", spec.conf_text, RW)
    # An absolute target, as on a board: readers must map it under the root.
    (root / "etc/nvpmodel.conf").symlink_to(f"/etc/nvpmodel/{spec.conf_name}")
    conf = parse_conf(spec.conf_text)
    # Accelerator clock caps (DLA, PVA) have no other model in the sim; give them a file.
    for param in conf.params.values():
        for arg, path in param.args.items():
            target = board_path(root, path)
            if param.type != "HWMON" and not arg.startswith("FREQ_TABLE") and not target.exists():
                put(target, "1600000000\n" if param.type == "CLOCK" else "0\n", RW)
    package_parent = str(Path(__file__).resolve().parents[2])
    for rel, tool, module in (
        ("usr/sbin/nvpmodel", "nvpmodel", "nvpmodel_cli"),
        ("usr/bin/jetson_clocks", "jetson_clocks", "jetson_clocks_cli"),
        ("usr/bin/tegrastats", "tegrastats", "tegrastats_cli"),
    ):
        script = _SCRIPT.format(
            python=sys.executable, tool=tool, module=module, package_parent=package_parent
        )
        put(root / rel, script, 0o755)


def _boot(root: Path, spec: BoardSpec) -> None:
    """Bring the board up as nvpmodel.service would: default mode applied, rails settled."""
    conf = parse_conf(spec.conf_text)
    apply_mode(root, spec, conf, conf.default_mode)
    put(root / "var/lib/nvpmodel/status", status_text(spec, conf.default_id), RW)
    powers = rail_powers_mw(spec, read_state(root, spec), 0.0)
    for name, (voltage_mv, current_ma) in rail_readings(spec, powers).items():
        rails.write_rail(root, spec, name, voltage_mv, current_ma)
