"""tegrastats line parsing on real TX2 and AGX Orin lines and release variants."""

from __future__ import annotations

import pytest

from edge_agent.errors import CommandError
from edge_agent.hardware.tegrastats import CpuLoad, EngineFreq, parse_engine_freq, parse_line
from tests.hardware.captures import capture


def test_tx2_l4t32() -> None:
    stats = parse_line(capture("tegrastats_tx2_l4t32.txt"))
    assert stats.timestamp is None
    assert (stats.ram_used_mb, stats.ram_total_mb) == (2344, 7852)
    assert (stats.lfb_blocks, stats.lfb_block_mb) == (1154, 4)
    assert (stats.swap_used_mb, stats.swap_total_mb, stats.swap_cached_mb) == (0, 3926, 0)
    assert stats.cpus == (
        CpuLoad(1, 345),
        None,
        None,
        CpuLoad(1, 345),
        CpuLoad(0, 345),
        CpuLoad(2, 345),
    )
    assert stats.emc == EngineFreq(4, (1600,))
    assert stats.gr3d == EngineFreq(0, (624,))
    assert stats.gr3d is not None
    assert stats.gr3d.mhz == 624
    assert stats.temps_c == {
        "PLL": 37.5,
        "MCPU": 37.5,
        "PMIC": 100.0,
        "Tboard": 32.0,
        "GPU": 35.0,
        "BCPU": 37.5,
        "thermal": 36.5,
        "Tdiode": 34.25,
    }
    assert stats.rails == {
        "VDD_SYS_GPU": (152, 152),
        "VDD_SYS_SOC": (687, 687),
        "VDD_4V0_WIFI": (0, 0),
        "VDD_IN": (3056, 3056),
        "VDD_SYS_CPU": (152, 152),
        "VDD_SYS_DDR": (883, 883),
    }
    assert stats.engines == {"APE": "150"}


def test_agx_orin_r36() -> None:
    stats = parse_line(capture("tegrastats_agx_orin_r36.txt"))
    assert len(stats.cpus) == 12
    assert stats.cpus[5] == CpuLoad(100, 2201)
    assert stats.emc == EngineFreq(1, (2133,))
    assert stats.gr3d == EngineFreq(0, (305, 305))
    assert stats.temps_c["cpu"] == 53.062
    assert stats.rails == {
        "VDD_GPU_SOC": (3205, 3205),
        "VDD_CPU_CV": (4405, 4405),
        "VIN_SYS_5V0": (4767, 4767),
    }
    assert stats.rail_extra_mw == {}
    assert stats.engines["NVENC"] == "off"
    assert stats.engines["APE"] == "174"
    assert "VDD_GPU_SOC" not in stats.engines


def test_orin_nx_tail_with_timestamp_and_offline_sensor() -> None:
    line = (
        "03-15-2024 10:21:07 RAM 3021/15388MB (lfb 2x4MB) SWAP 0/7694MB (cached 0MB) "
        "CPU [2%@729,off,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[0] cv0@-256C cpu@47.5C "
        "VDD_IN 5299mW/5299mW VDD_CPU_GPU_CV 773mW/773mW VDD_SOC 1424mW/1424mW"
    )
    stats = parse_line(line)
    assert stats.timestamp == "03-15-2024 10:21:07"
    assert stats.cpus == (CpuLoad(2, 729), None, None, None)
    assert stats.gr3d == EngineFreq(0, (0,))
    assert stats.temps_c == {"cv0": None, "cpu": 47.5}
    assert stats.rails == {
        "VDD_IN": (5299, 5299),
        "VDD_CPU_GPU_CV": (773, 773),
        "VDD_SOC": (1424, 1424),
    }


def test_three_value_rails_and_thor_gpu() -> None:
    stats = parse_line("RAM 1000/2000MB GR3D_FREQ @[1575,1575,1575] VDD_GPU 4000mW/3900mW/4500mW")
    assert stats.gr3d == EngineFreq(None, (1575, 1575, 1575))
    assert stats.rails == {"VDD_GPU": (4000, 3900)}
    assert stats.rail_extra_mw == {"VDD_GPU": (4500,)}
    assert stats.cpus == ()


def test_old_tx1_form() -> None:
    line = (
        "RAM 3468/3983MB (lfb 48x4MB) SWAP 873/8192MB (cached 295MB) "
        "cpu [17%,13%,29%,5%]@408 EMC 1%@408 APE 25 GR3D 3%@76"
    )
    stats = parse_line(line)
    assert stats.cpus == (CpuLoad(17, 408), CpuLoad(13, 408), CpuLoad(29, 408), CpuLoad(5, 408))
    assert stats.emc == EngineFreq(1, (408,))
    assert stats.gr3d == EngineFreq(3, (76,))
    assert stats.rails == {}


@pytest.mark.parametrize("text", ["off", "", "12", "4%@", "x%@1"])
def test_engine_freq_not_parsed(text: str) -> None:
    assert parse_engine_freq(text) is None


@pytest.mark.parametrize("line", ["", "hello world", "NVENC off APE 150"])
def test_unrecognised_line(line: str) -> None:
    with pytest.raises(CommandError, match="unrecognised"):
        parse_line(line)


def test_agx_xavier_cpu_rail_is_kept() -> None:
    stats = parse_line("RAM 1/2MB CPU [1%@1190,off] GPU 0/0 CPU 618/618 SOC 1394/1394 CV 0/0")
    assert stats.rails == {"GPU": (0, 0), "CPU": (618, 618), "SOC": (1394, 1394), "CV": (0, 0)}
    assert stats.cpus == (CpuLoad(1, 1190), None)


def test_r39_two_value_temperatures() -> None:
    stats = parse_line("RAM 1/2MB cpu@45.812C/45.812C tj@-256C/-256C VDD_IN 3582mW/3582mW/3582mW")
    assert stats.temps_c == {"cpu": 45.812, "tj": None}
    assert stats.rails == {"VDD_IN": (3582, 3582)}


def test_gpu_load_without_a_clock() -> None:
    stats = parse_line("RAM 1/2MB GR3D_FREQ 0% cpu@40C")
    assert stats.gr3d == EngineFreq(0, ())
    assert stats.gr3d is not None
    assert stats.gr3d.mhz is None
