"""GPU devfreq discovery, cpufreq/online and the EMC cap on fake sysfs trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import HardwareError, SysfsError
from edge_agent.hardware import clocks
from edge_agent.hardware.clocks import CpuCluster, GpuDevfreq, GpuState
from edge_agent.hardware.root import Root
from tests.fakes.sysfs import (
    TX2_CPU_KHZ,
    TX2_GPU_HZ,
    link,
    make_cpus,
    make_gpu_devfreq,
    make_other_devfreq,
    write,
)

TX2_CLUSTERS = {0: (0, 3, 4, 5), 1: (1, 2)}


def test_find_gpu_tx2_layout_skips_other_devfreq(tmp_path: Path) -> None:
    make_other_devfreq(tmp_path)
    make_gpu_devfreq(tmp_path, load_permille=312)
    dev = clocks.find_gpu_devfreq(Root(tmp_path))
    assert dev == GpuDevfreq(
        path="/sys/devices/gpu.0/devfreq/17000000.gp10b",
        device_path="/sys/devices/gpu.0",
        node_name="gp10b",
    )


@pytest.mark.parametrize(
    ("node", "device", "name"),
    [
        ("gv11b", "sys/devices/17000000.gv11b", "17000000.gv11b"),
        ("ga10b", "sys/devices/17000000.ga10b", "17000000.ga10b"),
        ("gpu", "sys/devices/platform/bus@0/17000000.gpu", "17000000.gpu"),
        ("gpu", "sys/devices/57000000.gpu", "57000000.gpu"),
    ],
)
def test_find_gpu_other_boards(tmp_path: Path, node: str, device: str, name: str) -> None:
    make_gpu_devfreq(tmp_path, node_name=node, device=device, devfreq_name=name)
    dev = clocks.find_gpu_devfreq(Root(tmp_path))
    assert dev is not None
    assert dev.path == f"/{device}/devfreq/{name}"
    assert dev.device_path == f"/{device}"
    assert dev.node_name == node


def test_find_gpu_with_absolute_links_stays_in_root(tmp_path: Path) -> None:
    make_gpu_devfreq(tmp_path, absolute_links=True)
    dev = clocks.find_gpu_devfreq(Root(tmp_path))
    assert dev is not None
    assert dev.path == "/sys/devices/gpu.0/devfreq/17000000.gp10b"


def test_find_gpu_falls_back_to_name_without_of_node(tmp_path: Path) -> None:
    make_gpu_devfreq(tmp_path, node_name="gpu", devfreq_name="17000000.gpu", with_of_node=False)
    dev = clocks.find_gpu_devfreq(Root(tmp_path))
    assert dev is not None
    assert dev.node_name == "gpu"


def test_find_gpu_none(tmp_path: Path) -> None:
    assert clocks.find_gpu_devfreq(Root(tmp_path)) is None
    make_other_devfreq(tmp_path)
    assert clocks.find_gpu_devfreq(Root(tmp_path)) is None


def test_read_and_cap_gpu(tmp_path: Path) -> None:
    make_gpu_devfreq(tmp_path, cur_hz=624750000, load_permille=455)
    root = Root(tmp_path)
    dev = clocks.find_gpu_devfreq(root)
    assert dev is not None
    assert clocks.read_gpu(root, dev) == GpuState(
        cur_hz=624750000,
        min_hz=114750000,
        max_hz=1300500000,
        available_hz=TX2_GPU_HZ,
        load_permille=455,
    )
    assert clocks.set_gpu_max_hz(root, dev, 854250000) == 854250000
    assert clocks.set_gpu_min_hz(root, dev, 216750000) == 216750000
    state = clocks.read_gpu(root, dev)
    assert (state.min_hz, state.max_hz) == (216750000, 854250000)
    path = tmp_path / "sys/devices/gpu.0/devfreq/17000000.gp10b/max_freq"
    assert path.read_text() == "854250000\n"


def test_gpu_without_load_file(tmp_path: Path) -> None:
    make_gpu_devfreq(tmp_path, load_permille=None)
    root = Root(tmp_path)
    dev = clocks.find_gpu_devfreq(root)
    assert dev is not None
    assert clocks.read_gpu(root, dev).load_permille is None


def test_gpu_missing_clock_file_raises(tmp_path: Path) -> None:
    make_gpu_devfreq(tmp_path)
    root = Root(tmp_path)
    dev = clocks.find_gpu_devfreq(root)
    assert dev is not None
    (tmp_path / dev.path.lstrip("/") / "cur_freq").unlink()
    with pytest.raises(SysfsError, match="cur_freq"):
        clocks.read_gpu(root, dev)


def test_list_cpus_tx2(tmp_path: Path) -> None:
    make_cpus(tmp_path, TX2_CLUSTERS, online=(0, 3, 4, 5), cur_khz=2035200)
    cpus = clocks.list_cpus(Root(tmp_path))
    assert [(c.index, c.online) for c in cpus] == [
        (0, True),
        (1, False),
        (2, False),
        (3, True),
        (4, True),
        (5, True),
    ]
    cpu0 = cpus[0]
    assert (cpu0.min_khz, cpu0.max_khz, cpu0.cur_khz) == (345600, 2035200, 2035200)
    assert cpu0.available_khz == TX2_CPU_KHZ
    assert cpu0.governor == "schedutil"
    assert clocks.read_online_cpus(Root(tmp_path)) == (0, 3, 4, 5)


def test_cpu_without_cpufreq(tmp_path: Path) -> None:
    write(tmp_path, "sys/devices/system/cpu/cpu1/online", "0\n")
    write(tmp_path, "sys/devices/system/cpu/cpu0/topology/core_id", "0\n")
    cpus = clocks.list_cpus(Root(tmp_path))
    assert [(c.index, c.online, c.max_khz, c.governor) for c in cpus] == [
        (0, True, None, None),
        (1, False, None, None),
    ]


def test_cpu_clusters(tmp_path: Path) -> None:
    make_cpus(tmp_path, TX2_CLUSTERS)
    assert clocks.cpu_clusters(Root(tmp_path)) == [
        CpuCluster("policy0", (0, 3, 4, 5)),
        CpuCluster("policy1", (1, 2)),
    ]


def test_cpu_clusters_without_policy_dirs(tmp_path: Path) -> None:
    for cpu in range(6):
        related = "0 1 2 3" if cpu < 4 else "4 5"
        write(tmp_path, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/related_cpus", related)
    assert clocks.cpu_clusters(Root(tmp_path)) == [
        CpuCluster("policy0", (0, 1, 2, 3)),
        CpuCluster("policy4", (4, 5)),
    ]
    assert clocks.cpu_clusters(Root(tmp_path / "empty")) == []


def test_set_cpu_caps_apply_to_policy(tmp_path: Path) -> None:
    make_cpus(tmp_path, TX2_CLUSTERS)
    root = Root(tmp_path)
    assert clocks.set_cpu_max_khz(root, 3, 1420800) == 1420800
    assert clocks.set_cpu_min_khz(root, 3, 499200) == 499200
    cpu0 = clocks.read_cpu(root, 0)
    assert (cpu0.min_khz, cpu0.max_khz) == (499200, 1420800)
    assert clocks.read_cpu(root, 1).max_khz == 2035200


def test_set_cpu_online(tmp_path: Path) -> None:
    make_cpus(tmp_path, TX2_CLUSTERS, online=(0, 3, 4, 5))
    root = Root(tmp_path)
    clocks.set_cpu_online(root, 1, True)
    clocks.set_cpu_online(root, 4, False)
    assert clocks.is_cpu_online(root, 1)
    assert not clocks.is_cpu_online(root, 4)
    assert (tmp_path / "sys/devices/system/cpu/cpu1/online").read_text() == "1\n"
    clocks.set_cpu_online(root, 0, True)
    with pytest.raises(HardwareError, match="cpu0 cannot be taken offline"):
        clocks.set_cpu_online(root, 0, False)


def test_set_cpu_online_read_back_mismatch(tmp_path: Path) -> None:
    make_cpus(tmp_path, TX2_CLUSTERS)
    online = tmp_path / "sys/devices/system/cpu/cpu1/online"
    online.unlink()
    online.mkdir()
    with pytest.raises(SysfsError, match="cpu1/online"):
        clocks.set_cpu_online(Root(tmp_path), 1, False)


@pytest.mark.parametrize(
    ("text", "cpus", "canonical"),
    [
        ("0,3-5", (0, 3, 4, 5), "0,3-5"),
        ("0-5\n", (0, 1, 2, 3, 4, 5), "0-5"),
        ("0", (0,), "0"),
        ("", (), ""),
        ("4-5,0-1", (0, 1, 4, 5), "0-1,4-5"),
        ("0,2,4", (0, 2, 4), "0,2,4"),
    ],
)
def test_cpu_range_round_trip(text: str, cpus: tuple[int, ...], canonical: str) -> None:
    assert clocks.parse_cpu_range(text) == cpus
    assert clocks.format_cpu_range(cpus) == canonical


@pytest.mark.parametrize("text", ["a", "3-1", "1-x", "0,,-"])
def test_bad_cpu_range(text: str) -> None:
    with pytest.raises(HardwareError, match="bad CPU list"):
        clocks.parse_cpu_range(text)


@pytest.mark.parametrize("rel", clocks.EMC_CAP_PATHS)
def test_emc_cap(tmp_path: Path, rel: str) -> None:
    root = Root(tmp_path)
    assert clocks.read_emc_cap_hz(root) is None
    with pytest.raises(HardwareError, match="no EMC cap file"):
        clocks.set_emc_cap_hz(root, 1600000000)
    write(tmp_path, rel, "0\n")
    assert clocks.read_emc_cap_hz(root) == 0
    assert clocks.set_emc_cap_hz(root, 1331200000) == 1331200000
    assert (tmp_path / rel).read_text() == "1331200000\n"


def test_realpath_loop(tmp_path: Path) -> None:
    link(tmp_path, "sys/a", "sys/b")
    link(tmp_path, "sys/b", "sys/a")
    with pytest.raises(SysfsError, match="symlinks"):
        clocks.realpath_in_root(Root(tmp_path), "/sys/a/x")


def test_realpath_dotdot_cannot_escape_root(tmp_path: Path) -> None:
    root = Root(tmp_path / "root")
    write(root.path, "sys/x", "1")
    assert clocks.realpath_in_root(root, "/../../sys/x") == root.path / "sys/x"
