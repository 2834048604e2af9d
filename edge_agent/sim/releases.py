"""The board x release matrix: each simulated board in the L4T releases it ships with.

A release changes the nvpmodel conf (the Orin Nano's stock, super and 3-mode super files), the
frequency tables, sysfs paths (R36 moves the Orin GPU under ``bus@0`` and the EMC cap to
``nvpmodel_clk_cap``) and the CLI output layouts (``edge_agent.sim.formats``). The board's
default release is the one in :mod:`edge_agent.sim.boards`; the others are derived from it.
Sources: issue 14 and ``shared/reference/jetson_interfaces.md``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from edge_agent.sim import confs
from edge_agent.sim.boards import BOARDS, TX2, XAVIER_NX, BoardSpec, board_names, get_board
from edge_agent.sim.boards_orin import (
    AGX_ORIN,
    ORIN_NANO,
    ORIN_NANO_CPU_STOCK,
    ORIN_NANO_GPU_STOCK,
)
from edge_agent.sim.marker import MARKER
from edge_agent.sim.spec import CpuCluster, GpuSpec

_R36_TEGRA_RELEASE = (
    "# R36 (release), REVISION: {rev}, GCID: 38968081, BOARD: generic, "
    "EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n"
    "# KERNEL_VARIANT: oot\n"
    "TARGET_USERSPACE_LIB_DIR=nvidia\n"
    "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n"
)


def release_of(spec: BoardSpec) -> str:
    """The release label of a spec: ``r36.4`` for L4T R36.4.x."""
    return f"r{spec.l4t[0]}.{spec.l4t[1]}"


def _clusters(spec: BoardSpec, table: tuple[int, ...]) -> tuple[CpuCluster, ...]:
    return tuple(replace(c, freqs_khz=table) for c in spec.clusters)


def _orin_nano_r36_3() -> BoardSpec:
    """JetPack 6.0/6.1: the stock conf (15W uncapped, 7W), stock tables, default 15W."""
    return replace(
        ORIN_NANO,
        model="NVIDIA Jetson Orin Nano Developer Kit",
        compatible=("nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"),
        l4t=(36, 3, 0),
        nv_tegra_release=_R36_TEGRA_RELEASE.format(rev="3.0"),
        clusters=_clusters(ORIN_NANO, ORIN_NANO_CPU_STOCK),
        gpu=replace(ORIN_NANO.gpu, freqs_hz=ORIN_NANO_GPU_STOCK),
        emc=replace(ORIN_NANO.emc, max_hz=2133000000),
        conf_name="nvpmodel_p3767_0003.conf",
        conf_text=confs.orin_nano(confs.ORIN_NANO_STOCK_MODES, default=0),
    )


def _orin_nano_r39() -> BoardSpec:
    """The 3-mode super conf (15W, 25W, MAXN_SUPER; no 7W), as seen on R39."""
    return replace(
        ORIN_NANO,
        l4t=(39, 0, 0),
        nv_tegra_release=_R36_TEGRA_RELEASE.replace("R36", "R39").format(rev="0.0"),
        conf_text=confs.orin_nano(confs.ORIN_NANO_SUPER_MODES[:3], default=1),
    )


_AGX_ORIN_R36_PATHS = (
    (
        "/sys/devices/17000000.ga10b/devfreq/17000000.ga10b",
        "/sys/devices/platform/17000000.gpu/devfreq_dev",
    ),
    ("/sys/devices/17000000.ga10b/devfreq_dev", "/sys/devices/platform/17000000.gpu/devfreq_dev"),
    ("/sys/kernel/nvpmodel_emc_cap/emc_iso_cap", "/sys/kernel/nvpmodel_clk_cap/emc"),
    ("/sys/devices/gpu.0/", "/sys/devices/platform/gpu.0/"),
)


def _agx_orin_r36_4() -> BoardSpec:
    """JetPack 6.2: the GPU under ``bus@0``, the EMC cap in ``nvpmodel_clk_cap``."""
    conf = confs.agx_orin_p3701_0000()
    for old, new in _AGX_ORIN_R36_PATHS:
        conf = conf.replace(old, new)
    return replace(
        AGX_ORIN,
        l4t=(36, 4, 3),
        nv_tegra_release=_R36_TEGRA_RELEASE.format(rev="4.3"),
        ina=tuple(
            replace(dev, device_dir=dev.device_dir.replace("/platform/", "/platform/bus@0/"))
            for dev in AGX_ORIN.ina
        ),
        gpu=GpuSpec(
            device_dir="/sys/devices/platform/bus@0/17000000.gpu",
            devfreq="17000000.gpu",
            of_node="bus@0/gpu@17000000",
            of_name="gpu",
            freqs_hz=AGX_ORIN.gpu.freqs_hz,
            aliases=("/sys/devices/platform/17000000.gpu", "/sys/devices/platform/gpu.0"),
            devfreq_dev=True,
            tpcs=AGX_ORIN.gpu.tpcs,
            gpcs=AGX_ORIN.gpu.gpcs,
        ),
        emc=replace(AGX_ORIN.emc, cap_path="/sys/kernel/nvpmodel_clk_cap/emc"),
        conf_text=conf,
    )


_XNX_LIMITS_R35 = (
    "< PARAM TYPE=HWMON NAME=VDDIN_OC_LIMIT >\n"
    "WARN /sys/devices/platform/c250000.i2c/i2c-7/7-0040/hwmon curr1_max\n"
    "CRIT /sys/devices/platform/c250000.i2c/i2c-7/7-0040/hwmon curr1_crit\n"
)
_XNX_LIMITS_R32 = (
    "< PARAM TYPE=FILE NAME=VDDIN_OC_LIMIT >\n"
    "WARN /sys/devices/c250000.i2c/i2c-7/7-0040/iio:device0/warn_current_limit_0\n"
    "CRIT /sys/devices/c250000.i2c/i2c-7/7-0040/iio:device0/crit_current_limit_0\n"
)


def _xavier_nx_r32_7() -> BoardSpec:
    """L4T 32: the legacy IIO INA3221 driver (limits as FILE params), no ``*_KNEXT`` paths, no
    ``devfreq_dev``, the fan under ``/sys/devices/pwm-fan``."""
    conf = confs.xavier_nx_t194_p3668().replace(_XNX_LIMITS_R35, _XNX_LIMITS_R32)
    conf = "".join(line for line in conf.splitlines(keepends=True) if "_KNEXT " not in line)
    ina = replace(
        XAVIER_NX.ina[0],
        device_dir="/sys/devices/c250000.i2c/i2c-7/7-0040",
        driver="ina3221x",
        index=0,
    )
    return replace(
        XAVIER_NX,
        l4t=(32, 7, 1),
        nv_tegra_release=TX2.nv_tegra_release,
        ina=(ina,),
        gpu=replace(XAVIER_NX.gpu, devfreq_dev=False),
        conf_text=conf,
        fan_hwmon=None,
    )


def _matrix() -> dict[str, dict[str, BoardSpec]]:
    matrix = {name: {release_of(spec): spec} for name, spec in BOARDS.items()}
    for spec in (_orin_nano_r36_3(), _orin_nano_r39(), _agx_orin_r36_4(), _xavier_nx_r32_7()):
        matrix[spec.name][release_of(spec)] = spec
    return matrix


RELEASES: dict[str, dict[str, BoardSpec]] = _matrix()


def release_names(board: str) -> list[str]:
    """The releases of ``board``, oldest first.

    Raises:
        KeyError: unknown board (the message lists the valid ones).
    """
    get_board(board)
    return sorted(RELEASES[board], key=lambda r: tuple(int(p) for p in r[1:].split(".")))


def get_spec(board: str, release: str | None = None) -> BoardSpec:
    """The spec of ``board`` in ``release`` (``r36.4``; ``r36`` when only one R36 exists);
    None is the board's default release.

    Raises:
        KeyError: unknown board or release; the message lists the valid ones.
    """
    spec = get_board(board)
    if release is None:
        return spec
    releases = RELEASES[board]
    text = release.lower() if release.lower().startswith("r") else f"r{release.lower()}"
    if text in releases:
        return releases[text]
    prefixed = [r for r in releases if r.startswith(text + ".")]
    if len(prefixed) == 1:
        return releases[prefixed[0]]
    raise KeyError(
        f"unknown release {release!r} for {board}; valid releases: "
        f"{', '.join(release_names(board))}"
    )


def matrix_rows() -> list[tuple[str, str, BoardSpec, bool]]:
    """``(board, release, spec, is_default)`` for every board and release, sorted."""
    return [
        (name, release, RELEASES[name][release], RELEASES[name][release] is BOARDS[name])
        for name in board_names()
        for release in release_names(name)
    ]


def spec_at(root: Path) -> BoardSpec:
    """The spec a simulated tree was created with (``sim/board.json``: board and release).

    Raises:
        FileNotFoundError: ``root`` is not a simulated board.
    """
    data = json.loads((Path(root) / MARKER).read_text(encoding="utf-8"))
    release = data.get("release")
    return get_spec(str(data["board"]), str(release) if release else None)
