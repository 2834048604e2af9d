"""The governor's caps (GPU max_freq, the EMC cap, each online CPU's scaling_max_freq)."""

from __future__ import annotations

from pathlib import Path

from edge_agent.clock import FakeClock
from edge_agent.config_sections import ProfileConfig
from edge_agent.hardware import clocks
from edge_agent.hardware.root import Root
from edge_agent.power.dvfs_caps import apply_caps
from edge_agent.power.profile_apply import ProfileController
from edge_agent.sim import create_board


def test_caps_skip_the_cpus_a_preset_took_offline(tmp_path: Path) -> None:
    """Tables read in MAXN (six CPUs online); then the Max-Q preset parks the Denver pair and
    the kernel drops their cpufreq files. The caps still land on the CPUs that run."""
    board = create_board("jetson-tx2", tmp_path / "b")
    root, clock = Root(board.root), FakeClock()
    profiles = ProfileController(root, ProfileConfig(), tmp_path / "state", clock)
    profiles.apply("maxn")
    cpus = tuple(c.index for c in clocks.list_cpus(root) if c.online)
    assert cpus == (0, 1, 2, 3, 4, 5)
    profiles.apply("maxq")
    for denver in (1, 2):
        assert not clocks.is_cpu_online(root, denver)
        (board.root / f"sys/devices/system/cpu/cpu{denver}/cpufreq").unlink()  # a symlink
    gpu = clocks.find_gpu_devfreq(root)
    assert gpu is not None
    done = apply_caps(root, clock, gpu, cpus, gpu_hz=726750000, emc_hz=1331200000, cpu_khz=1113600)
    assert done.gpu_hz == clocks.read_gpu(root, gpu).max_hz == 726750000
    assert [clocks.read_cpu(root, c).max_khz for c in (0, 3, 4, 5)] == [1113600] * 4
