"""Board capture: every reader gives the same answer on the capture as on the source board."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock
from edge_agent.errors import HardwareError
from edge_agent.hardware import clocks, jetson_clocks
from edge_agent.hardware.board import detect_board
from edge_agent.hardware.capture import MANIFEST_REL, capture_board, load_manifest, write_tar
from edge_agent.hardware.ina3221 import InaMonitor
from edge_agent.hardware.jetson_clocks import parse_show
from edge_agent.hardware.nvpmodel import Nvpmodel, parse_query_verbose
from edge_agent.hardware.root import Root
from edge_agent.hardware.thermal import read_thermal_zones
from edge_agent.sim import board_names, create_board
from tests.fakes.ina import TX2_RAILS, make_ina3221
from tests.fakes.sysfs import (
    link,
    make_board,
    make_cpus,
    make_executable,
    make_gpu_devfreq,
    make_other_devfreq,
    make_thermal,
    write,
)
from tests.hardware.captures import CAPTURES, capture

REPO = Path(__file__).resolve().parents[2]
TX2_CLUSTERS = {0: (0, 3, 4, 5), 1: (1, 2)}
TX2_ZONES: list[tuple[str, int | None]] = [
    ("BCPU-therm", 37500),
    ("GPU-therm", 35000),
    ("CV0-therm", None),  # temp reads fail (EAGAIN on a real Orin Nano)
    ("PMIC-Die", 100000),
]
CONF_TARGET = "etc/nvpmodel/nvpmodel_t186.conf"


def _printer(capture_name: str) -> str:
    # The fake CLIs print a real captured output, whatever their arguments.
    return (
        "import sys\n"
        f"sys.stdout.write(open({str(CAPTURES / capture_name)!r}, encoding='utf-8').read())\n"
    )


def make_tx2(root: Path) -> None:
    """A TX2-like source board: iio INA3221, absolute links, a failing thermal zone, CLIs."""
    make_board(
        root,
        "quill",
        ["nvidia,p2771-0000+p3310-1000", "nvidia,tegra186"],
        "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref, EABI: aarch64\n",
    )
    make_ina3221(root, "iio", TX2_RAILS, bus=0, limits={"VDD_IN": (4000, 6000)})
    make_other_devfreq(root)
    make_gpu_devfreq(root, load_permille=312, cur_hz=854250000, absolute_links=True)
    make_cpus(root, TX2_CLUSTERS, online=(0, 3, 4, 5), cur_khz=1267200)
    make_thermal(root, TX2_ZONES)
    write(root, CONF_TARGET, capture("nvpmodel_t186_l4t28.conf"))
    link(root, "etc/nvpmodel.conf", CONF_TARGET, absolute=True)
    write(root, "var/lib/nvpmodel/status", "pmode:0003\n")
    write(root, "sys/kernel/nvpmodel_emc_cap/emc_iso_cap", "1600000000\n")
    make_executable(root, "usr/sbin/nvpmodel", _printer("nvpmodel_q_verbose_orin_nano_r36.txt"))
    make_executable(root, "usr/bin/jetson_clocks", _printer("jetson_clocks_show_tx2.txt"))
    # Files nobody asked for: they must stay out of the capture.
    write(root, "home/nvidia/.ssh/id_rsa", "secret\n")
    write(root, "etc/shadow", "root:x\n")


def readings(root: Root) -> dict[str, object]:
    """Everything the agent reads from a board, as values."""
    monitor = InaMonitor(root, FakeClock())
    gpu = clocks.find_gpu_devfreq(root)
    nvp = Nvpmodel(root)
    return {
        "board": detect_board(root),
        "rails": monitor.rail_names(),
        "total": monitor.total_rail,
        "power": monitor.read() if monitor.available else None,
        "limits": monitor.limits(),
        "layouts": [(dev.chip, dev.layout, dev.path) for dev in monitor.devices],
        "gpu": gpu,
        "gpu_state": clocks.read_gpu(root, gpu) if gpu is not None else None,
        "cpus": clocks.list_cpus(root),
        "online": clocks.read_online_cpus(root),
        "clusters": clocks.cpu_clusters(root),
        "emc_cap_hz": clocks.read_emc_cap_hz(root),
        "thermal": read_thermal_zones(root),
        "pinned": jetson_clocks.is_active(root),
        "conf_modes": [(m.id, m.name) for m in nvp.load_conf().modes],
        "status": nvp.read_status(),
    }


def tree_snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its link target, bytes or ``dir``."""
    snap: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                snap[rel] = "-> " + str(path.readlink())
            elif path.is_dir():
                snap[rel] = "dir"
            else:
                snap[rel] = path.read_bytes().hex()
    return snap


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "board"
    make_tx2(root)
    return root


def test_capture_reads_the_same_as_the_board(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "capture"
    before = tree_snapshot(source)
    capture_board(Root(source), out)
    expected = readings(Root(source))
    assert readings(Root(out)) == expected
    # The readings are real ones, not two empty answers that happen to agree.
    assert expected["total"] == "VDD_IN"
    gpu = clocks.find_gpu_devfreq(Root(out))
    assert gpu is not None
    state = clocks.read_gpu(Root(out), gpu)
    assert (state.cur_hz, state.max_hz, state.load_permille) == (854250000, 1300500000, 312)
    zones = {z.name: z.online for z in read_thermal_zones(Root(out))}
    assert zones == {"BCPU-therm": True, "GPU-therm": True, "CV0-therm": False, "PMIC-Die": True}
    assert tree_snapshot(source) == before


def test_capture_copies_only_what_the_agent_reads(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "capture"
    capture_board(Root(source), out)
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and not p.is_symlink()}
    assert not (out / "home").exists()
    assert not (out / "etc/shadow").exists()
    assert not (out / "usr").exists()
    assert all(
        f.startswith(("sys/", "proc/", "etc/nv", "var/lib/nvpmodel/", "captured/")) for f in files
    )
    # The non-GPU devfreq node keeps its identity but not its clock files.
    assert (out / "sys/devices/13e10000.host1x/15340000.vic/of_node/name").is_file()
    assert not (
        out / "sys/devices/13e10000.host1x/15340000.vic/devfreq/15340000.vic/max_freq"
    ).exists()


def test_absolute_links_resolve_inside_the_capture(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "capture"
    report = capture_board(Root(source), out)
    conf_link = out / "etc/nvpmodel.conf"
    assert conf_link.is_symlink()
    assert str(conf_link.readlink()) == "nvpmodel/nvpmodel_t186.conf"
    assert conf_link.resolve() == (out / CONF_TARGET).resolve()
    gpu_link = out / "sys/class/devfreq/17000000.gp10b"
    assert str(gpu_link.readlink()) == "../../devices/gpu.0/devfreq/17000000.gp10b"
    assert (gpu_link / "max_freq").read_text(encoding="utf-8") == "1300500000\n"
    assert report.links["/etc/nvpmodel.conf"] == "nvpmodel/nvpmodel_t186.conf"
    # Relative sysfs links are kept as the kernel wrote them.
    assert report.links["/sys/devices/system/cpu/cpu3/cpufreq"] == "../cpufreq/policy0"
    for path in out.rglob("*"):
        if path.is_symlink():
            assert not path.readlink().is_absolute(), path


def test_manifest_lists_copies_failures_and_commands(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "capture"
    clock = FakeClock(wall_offset=1_767_225_600.0 - 1000.0)  # 2026-01-01T00:00:00Z
    report = capture_board(Root(source), out, clock=clock)
    manifest = load_manifest(out)
    assert manifest == json.loads(report.to_json())
    assert manifest["captured_at"] == "2026-01-01T00:00:00+00:00"
    assert manifest["tool_version"] == "0.1.0"
    copied = manifest["copied"]
    assert isinstance(copied, list)
    for path in (
        "/proc/device-tree/model",
        "/etc/nv_tegra_release",
        "/" + CONF_TARGET,
        "/var/lib/nvpmodel/status",
        "/sys/devices/gpu.0/devfreq/17000000.gp10b/cur_freq",
        "/sys/devices/gpu.0/load",
        "/sys/devices/system/cpu/cpu1/online",
        "/sys/class/thermal/thermal_zone0/temp",
        "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap",
    ):
        assert path in copied, path
    assert any(p.endswith("/iio:device3/in_voltage0_input") for p in copied)
    # Every copied path is a file in the capture, once.
    assert len(set(copied)) == len(copied)
    assert all((out / p.lstrip("/")).is_file() for p in copied)
    assert manifest["unreadable"] == [
        {
            "path": "/sys/class/thermal/thermal_zone2/temp",
            "errno": "EISDIR",
            "message": "Is a directory",
        }
    ]
    names = {c.name: c for c in report.commands}
    assert set(names) == {"nvpmodel_q", "nvpmodel_q_verbose", "jetson_clocks_show"}
    assert all(c.returncode == 0 and c.error is None for c in report.commands)
    verbose = (out / "captured/nvpmodel_q_verbose.txt").read_text(encoding="utf-8")
    assert verbose == capture("nvpmodel_q_verbose_orin_nano_r36.txt")
    query, params = parse_query_verbose(verbose)
    assert query.name == "25W"
    assert params
    show = (out / "captured/jetson_clocks_show.txt").read_text(encoding="utf-8")
    assert parse_show(show) == parse_show(capture("jetson_clocks_show_tx2.txt"))


def test_failing_files_are_recorded_not_fatal(source: Path, tmp_path: Path) -> None:
    # A rail's values and a CPU's online flag that fail to read on the board.
    iio = next(source.glob("sys/devices/platform/3160000.i2c/i2c-0/0-0040/iio:device*"))
    for name in ("in_voltage1_input", "in_current1_input", "in_power1_input", "ui_input_1"):
        if (iio / name).exists():
            (iio / name).unlink()
            (iio / name).mkdir()
    (source / "sys/devices/system/cpu/cpu2/online").unlink()
    (source / "sys/devices/system/cpu/cpu2/online").mkdir()
    # cpu0 with neither an online file nor cpufreq (as in a container) must still be listed.
    (source / "sys/devices/system/cpu/cpu0/cpufreq").unlink()
    out = tmp_path / "capture"
    report = capture_board(Root(source), out, run_cli=False)
    failed = {item.path: item.errno for item in report.unreadable}
    assert failed[Root(source).relative(iio / "in_current1_input")] == "EISDIR"
    assert failed["/sys/devices/system/cpu/cpu2/online"] == "EISDIR"
    assert report.commands == ()
    board, capture_root = InaMonitor(Root(source), FakeClock()), InaMonitor(Root(out), FakeClock())
    assert capture_root.rail_names() == board.rail_names()
    assert capture_root.read() == board.read()
    assert board.read().offline == ("VDD_SYS_SOC",)
    with pytest.raises(HardwareError):
        clocks.read_cpu(Root(out), 2)
    cpu0 = clocks.read_cpu(Root(out), 0)
    assert cpu0 == clocks.read_cpu(Root(source), 0)
    assert (cpu0.online, cpu0.max_khz) == (True, None)
    assert clocks.cpu_indices(Root(out)) == [0, 1, 2, 3, 4, 5]


def test_links_leaving_the_board_files_are_refused(source: Path, tmp_path: Path) -> None:
    secret = source / "home/nvidia/gpu"
    write(source, "home/nvidia/gpu/device/of_node/name", b"gpu\x00")
    write(source, "home/nvidia/gpu/max_freq", "1\n")
    (source / "sys/class/devfreq/evil.gpu").symlink_to("/home/nvidia/gpu")
    out = tmp_path / "capture"
    report = capture_board(Root(source), out, run_cli=False)
    assert "/sys/class/devfreq/evil.gpu/device/of_node/name" in report.refused
    assert not (out / "home").exists()
    assert secret.is_dir()
    # The refused link points inside the capture (dangling), never at the host's /home.
    assert str((out / "sys/class/devfreq/evil.gpu").readlink()) == "../../../home/nvidia/gpu"


def test_unsafe_output_folders_are_refused(source: Path, tmp_path: Path) -> None:
    with pytest.raises(HardwareError, match="inside the source"):
        capture_board(Root(source), source / "sys/capture", run_cli=False)
    with pytest.raises(HardwareError, match="contains the source"):
        capture_board(Root(source), tmp_path, run_cli=False)
    busy = tmp_path / "busy"
    write(busy, "keep.txt", "x")
    with pytest.raises(HardwareError, match="not an empty folder"):
        capture_board(Root(source), busy, run_cli=False)
    assert not (source / "sys/capture").exists()


def test_a_capture_of_a_capture_reads_the_same(source: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    capture_board(Root(source), first, run_cli=False)
    report = capture_board(Root(first), second, run_cli=False)
    assert readings(Root(second)) == readings(Root(source))
    assert [u.path for u in report.unreadable] == ["/sys/class/thermal/thermal_zone2/temp"]


def test_tool_writes_the_capture_and_a_tarball(source: Path, tmp_path: Path) -> None:
    out, tar_path = tmp_path / "capture", tmp_path / "board.tar.gz"
    proc = subprocess.run(
        [
            *(sys.executable, str(REPO / "tools/capture_board.py")),
            *("--root", str(source), "--out", str(out), "--tar", str(tar_path)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("captured=")
    assert "unreadable=1 commands=3" in last
    assert (out / MANIFEST_REL).is_file()
    with tarfile.open(tar_path) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["capture/etc/nvpmodel.conf"].issym()
    assert members["capture/etc/nvpmodel.conf"].linkname == "nvpmodel/nvpmodel_t186.conf"
    assert members["capture/sys/devices/system/cpu/cpufreq/policy0/scaling_cur_freq"].isfile()
    assert "capture/captured/manifest.json" in members


def test_write_tar_keeps_links(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "capture"
    capture_board(Root(source), out, run_cli=False)
    tar_path = tmp_path / "c.tar.gz"
    write_tar(out, tar_path)
    unpacked = tmp_path / "unpacked"
    with tarfile.open(tar_path) as tar:
        tar.extractall(unpacked, filter="tar")
    assert readings(Root(unpacked / "capture")) == readings(Root(source))


@pytest.mark.parametrize("board", board_names())
def test_simulated_boards_capture_faithfully(
    board: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = tmp_path / "board", tmp_path / "capture"
    sim = create_board(board, source)
    sim.set_gpu_load(437)
    before = tree_snapshot(source)
    report = capture_board(Root(source), out)
    assert tree_snapshot(source) == before
    expected = readings(Root(source))
    assert readings(Root(out)) == expected
    info = detect_board(Root(out))
    assert info.is_jetson
    assert info.slug is not None
    assert isinstance(expected["gpu_state"], clocks.GpuState)
    assert expected["gpu_state"].load_permille == 437
    assert expected["rails"]
    # The CLI outputs parse as the board's own CLIs answer now.
    assert all(c.returncode == 0 for c in report.commands)
    verbose = (out / "captured/nvpmodel_q_verbose.txt").read_text(encoding="utf-8")
    assert parse_query_verbose(verbose) == Nvpmodel(Root(source)).query_verbose()
    show = (out / "captured/jetson_clocks_show.txt").read_text(encoding="utf-8")
    assert parse_show(show) == jetson_clocks.JetsonClocks(Root(source)).show()
    # `edge-agent power` prints the same on the capture as on the board.
    from edge_agent.cli.main import main as cli_main

    assert cli_main(["power", "--root", str(source), "--json"]) == 0
    on_board = capsys.readouterr().out
    assert cli_main(["power", "--root", str(out), "--json"]) == 0
    assert capsys.readouterr().out == on_board
