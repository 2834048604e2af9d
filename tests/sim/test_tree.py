"""The simulated trees have the real boards' files, layouts and values."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from edge_agent.hardware.nvpmodel import Nvpmodel, parse_conf
from edge_agent.hardware.root import Root
from edge_agent.sim import BOARDS, SimBoard, board_names, create_board, sysfs
from edge_agent.sim.marker import board_name
from tests.sim.conftest import run_tool


def _read(root: Path, rel: str) -> str:
    return (root / rel).read_text(encoding="utf-8")


def test_board_names_lists_the_four_required_boards() -> None:
    assert {"jetson-tx2", "jetson-xavier-nx", "jetson-orin-nano", "jetson-agx-orin"} <= set(
        board_names()
    )
    assert board_names() == sorted(BOARDS)


def test_tx2_identity_files(tx2: SimBoard) -> None:
    root = tx2.root
    assert _read(root, "proc/device-tree/model") == "NVIDIA Jetson TX2\0"
    assert _read(root, "proc/device-tree/compatible") == "nvidia,p2771-0000\0nvidia,tegra186\0"
    assert str((root / "proc/device-tree").readlink()) == "../sys/firmware/devicetree/base"
    assert _read(root, "etc/nv_tegra_release").startswith("# R32 (release), REVISION: 7.1,")


def test_orin_nano_identity_files(orin_nano: SimBoard) -> None:
    root = orin_nano.root
    assert _read(root, "proc/device-tree/model") == (
        "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\0"
    )
    assert _read(root, "proc/device-tree/compatible") == (
        "nvidia,p3768-0000+p3767-0005-super\0nvidia,p3767-0005\0nvidia,tegra234\0"
    )
    assert _read(root, "etc/nv_tegra_release").startswith("# R36 (release), REVISION: 4.3,")


def test_tx2_ina3221_legacy_iio_layout(tx2: SimBoard) -> None:
    root = tx2.root
    dev0 = root / "sys/bus/i2c/devices/0-0040"
    assert _read(root, "sys/bus/i2c/devices/0-0040/name") == "ina3221x\n"
    names = [_read(dev0, f"iio:device0/rail_name_{n}").strip() for n in range(3)]
    assert names == ["VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI"]
    dev1 = root / "sys/bus/i2c/drivers/ina3221x/0-0041/iio:device1"
    assert [_read(dev1, f"rail_name_{n}").strip() for n in range(3)] == [
        "VDD_IN",
        "VDD_SYS_CPU",
        "VDD_SYS_DDR",
    ]
    assert _read(dev1, "crit_current_limit_0") == "32760 ma\n"
    assert _read(dev1, "warn_current_limit_0") == "32760 ma\n"
    # Power is exactly V * I / 1000 in mW, and the board starts at a plausible idle draw.
    volt, curr = int(_read(dev1, "in_voltage0_input")), int(_read(dev1, "in_current0_input"))
    assert int(_read(dev1, "in_power0_input")) == volt * curr // 1000
    assert 1500 < volt * curr / 1000 < 4000
    assert (root / "sys/bus/i2c/devices/0-0040").resolve() == (
        root / "sys/devices/3160000.i2c/i2c-0/0-0040"
    )


def test_agx_orin_hwmon_layout_with_nc_and_sum_channels(agx_orin: SimBoard) -> None:
    root = agx_orin.root
    chip = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    assert _read(root, "sys/bus/i2c/devices/1-0040/name") == "ina3221\n"
    assert [_read(chip, f"in{n}_label").strip() for n in (1, 2, 3)] == [
        "VDD_GPU_SOC",
        "VDD_CPU_CV",
        "VIN_SYS_5V0",
    ]
    assert _read(chip, "in7_label") == "sum of shunt voltages\n"
    shunts = sum(int(_read(chip, f"in{n}_input")) for n in (4, 5, 6))
    assert int(_read(chip, "in7_input")) == shunts > 0
    other = root / "sys/bus/i2c/devices/1-0041/hwmon/hwmon4"
    assert [_read(other, f"in{n}_label").strip() for n in (1, 2, 3)] == [
        "NC",
        "VDDQ_VDD2_1V8AO",
        "NC",
    ]
    assert "VDD_IN" not in agx_orin.spec.rail_names
    assert (root / "sys/class/hwmon/hwmon3").resolve() == chip.resolve()


def test_orin_nano_hwmon_index_is_not_zero(orin_nano: SimBoard) -> None:
    chips = list((orin_nano.root / "sys/bus/i2c/devices/1-0040/hwmon").iterdir())
    assert [c.name for c in chips] == ["hwmon1"]
    assert _read(chips[0], "in1_label") == "VDD_IN\n"


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_every_board_has_gpu_cpu_thermal_and_nvpmodel_files(tmp_path: Path, board: str) -> None:
    sim = create_board(board, tmp_path / board)
    root, spec = sim.root, sim.spec
    node = root / f"sys/class/devfreq/{spec.gpu.devfreq}"
    assert node.is_symlink()
    assert _read(node, "device/of_node/name") == spec.gpu.of_name + "\0"
    assert _read(node, "device/load") == "0\n"
    assert _read(node, "device/railgate_enable") == "1\n"
    table = [int(f) for f in _read(node, "available_frequencies").split()]
    assert table == list(spec.gpu.freqs_hz)
    assert int(_read(node, "max_freq").strip()) in table
    assert _read(root, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") == "schedutil\n"
    zones = [root / f"sys/class/thermal/thermal_zone{n}" for n in range(len(spec.thermal))]
    assert [_read(z, "type").strip() for z in zones] == [z.type for z in spec.thermal]
    assert not (root / f"sys/class/thermal/thermal_zone{len(spec.thermal)}").exists()
    link = root / "etc/nvpmodel.conf"
    assert str(link.readlink()) == f"/etc/nvpmodel/{spec.conf_name}"
    conf = Nvpmodel(Root(root)).load_conf()
    assert _read(root, "var/lib/nvpmodel/status").startswith(f"pmode:{conf.default_id:04d}")
    assert os.access(sim.nvpmodel, os.X_OK)
    assert os.access(sim.jetson_clocks, os.X_OK)
    assert board_name(root) == board
    # Every path the conf names exists in the tree (HWMON args point at the hwmon directory).
    for param in conf.params.values():
        for path in param.args.values():
            target = path.rpartition("/")[0] if param.type == "HWMON" else path
            assert (root / target.lstrip("/")).exists(), path


def test_tx2_cpus_clusters_and_thermal(tx2: SimBoard) -> None:
    root = tx2.root
    # Default mode 3 (MAXP_CORE_ARM): Denver cpu1-2 offline, A57 capped at 2 GHz.
    assert _read(root, "sys/devices/system/cpu/online") == "0,3-5\n"
    assert _read(root, "sys/devices/system/cpu/cpu1/online") == "0\n"
    a57 = root / "sys/devices/system/cpu/cpu3/cpufreq"
    assert a57.resolve() == (root / "sys/devices/system/cpu/cpufreq/policy0").resolve()
    assert _read(a57, "affected_cpus") == "0 3 4 5\n"
    assert _read(a57, "scaling_max_freq") == "2035200\n"  # the conf's 2000000, rounded
    assert _read(root, "sys/devices/system/cpu/cpu1/cpufreq/related_cpus") == "1 2\n"
    zones = {_read(z, "type").strip(): z for z in (root / "sys/class/thermal").iterdir()}
    assert len(zones) == 9
    assert _read(zones["PMIC-Die"], "temp") == "100000\n"
    assert _read(root, "sys/devices/17000000.gp10b/devfreq/17000000.gp10b/max_freq") == (
        "1122000000\n"
    )
    assert (root / "sys/devices/gpu.0/load").exists()
    assert _read(root, "sys/kernel/nvpmodel_emc_cap/emc_iso_cap") == "1600000000\n"


def test_orin_nano_policies_and_offline_cv_zones(orin_nano: SimBoard) -> None:
    root = orin_nano.root
    assert _read(root, "sys/devices/system/cpu/cpufreq/policy0/affected_cpus") == "0 1 2 3\n"
    assert _read(root, "sys/devices/system/cpu/cpufreq/policy4/affected_cpus") == "4 5\n"
    temps = {
        _read(z, "type").strip(): int(_read(z, "temp"))
        for z in (root / "sys/class/thermal").iterdir()
    }
    assert temps["cv0-thermal"] == temps["cv1-thermal"] == temps["cv2-thermal"] == -256000
    assert temps["gpu-thermal"] > 20000
    # The default mode is 25W (PM_CONFIG DEFAULT=1).
    assert _read(root, "sys/kernel/nvpmodel_clk_cap/emc") == "3199000000\n"
    assert _read(root, "sys/devices/platform/gpu.0/tpc_pg_mask") == "240\n"


def test_set_rail_rewrites_one_rail(tx2: SimBoard) -> None:
    tx2.set_rail("VDD_IN", 19000, 250)
    chip = tx2.root / "sys/bus/i2c/devices/0-0041/iio:device1"
    assert _read(chip, "in_voltage0_input") == "19000\n"
    assert _read(chip, "in_current0_input") == "250\n"
    assert _read(chip, "in_power0_input") == "4750\n"
    assert tx2.read_rail("VDD_IN") == (19000, 250)
    assert not [p for p in chip.iterdir() if p.name.startswith(".")]  # no temp files left


def test_set_rail_on_hwmon_updates_shunt_and_sums(agx_orin: SimBoard) -> None:
    agx_orin.set_rail("VDD_GPU_SOC", 5000, 2000)
    chip = agx_orin.root / "sys/bus/i2c/devices/1-0040/hwmon/hwmon3"
    assert _read(chip, "curr1_input") == "2000\n"
    assert _read(chip, "in4_input") == "10000\n"  # 2 A through 5 mOhm = 10 mV
    currents = sum(int(_read(chip, f"curr{n}_input")) for n in (1, 2, 3))
    assert int(_read(chip, "curr4_input")) == currents


def test_set_rail_unknown_name_raises(tx2: SimBoard) -> None:
    with pytest.raises(KeyError):
        tx2.set_rail("VDD_NOPE", 5000, 1)


def test_load_reopens_and_create_refuses_an_existing_tree(tx2: SimBoard) -> None:
    again = SimBoard.load(tx2.root)
    assert again.spec is tx2.spec
    with pytest.raises(FileExistsError):
        create_board("jetson-tx2", tx2.root)


def test_unknown_board_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="jetson-tx2"):
        create_board("jetson-nano-9000", tmp_path / "x")


def test_confs_parse_and_tx2_conf_matches_reference(tx2: SimBoard) -> None:
    conf = parse_conf(_read(tx2.root, "etc/nvpmodel/nvpmodel_t186.conf"))
    assert [(m.id, m.name) for m in conf.modes] == [
        (0, "MAXN"),
        (1, "MAXQ"),
        (2, "MAXP_CORE_ALL"),
        (3, "MAXP_CORE_ARM"),
        (4, "MAXP_CORE_DENVER"),
    ]
    assert conf.default_id == 3
    agx = parse_conf(BOARDS["jetson-agx-orin"].conf_text)
    masks = {m.name: m.value("TPC_POWER_GATING", "TPC_PG_MASK") for m in agx.modes}
    assert masks == {"MAXN": "0", "MODE_15W": "248", "MODE_30W": "240", "MODE_50W": "0"}


def test_executables_use_this_python(tx2: SimBoard) -> None:
    first = tx2.nvpmodel.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"#!{sys.executable}"
    code, out = run_tool(tx2, "nvpmodel", "-q")
    assert (code, out) == (0, "NV Power Mode: MAXP_CORE_ARM\n3\n")


def test_orin_nano_emc_runs_at_the_listed_rate_under_its_cap(orin_nano: SimBoard) -> None:
    """The BPMP rounds an EMC cap down to a rate it lists; the TX2 lists none in the sim."""
    cap = orin_nano.root / orin_nano.spec.emc.cap_path.lstrip("/")
    assert sysfs.emc_rate_hz(orin_nano.root, orin_nano.spec) == 3199000000
    cap.write_text("1000000000\n", encoding="utf-8")
    assert sysfs.emc_rate_hz(orin_nano.root, orin_nano.spec) == 665600000
    cap.write_text("2133000000\n", encoding="utf-8")
    assert sysfs.emc_rate_hz(orin_nano.root, orin_nano.spec) == 2133000000
