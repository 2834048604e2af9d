"""Nvpmodel runner against small executable scripts that replay real output."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import (
    CommandError,
    CommandTimeout,
    HardwareError,
    RebootRequired,
    SysfsError,
)
from edge_agent.hardware.nvpmodel import Nvpmodel
from edge_agent.hardware.root import Root
from tests.fakes.sysfs import make_executable, write
from tests.hardware.captures import CAPTURES, capture

BIN = "usr/sbin/nvpmodel"

# Replays the real reboot prompt: reads one line of stdin and answers as nvpmodel does.
REBOOT_SCRIPT = f"""
import sys
from pathlib import Path
print({capture("nvpmodel_m_reboot_prompt_eof.txt").splitlines()[0]!r})
print("NVPM WARN: Reboot required for changing to this power mode: " + sys.argv[2])
print("NVPM WARN: DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:", flush=True)
answer = sys.stdin.readline()
Path(__file__).with_name("answer").write_text(answer)
if not answer:
    print("NVPM ERROR: bad input!")
    sys.exit(1)
if answer.strip() in ("YES", "yes"):
    print("NVPM WARN: rebooting")
    sys.exit(0)
print("NVPM ERROR: optMask is 1, no request for power mode")
sys.exit(0)
"""


def _nvpmodel(tmp_path: Path, body: str, timeout_s: float = 10.0) -> Nvpmodel:
    make_executable(tmp_path, BIN, body)
    return Nvpmodel(Root(tmp_path), timeout_s=timeout_s)


def _printer(name: str, code: int = 0) -> str:
    return (
        f"import sys\nsys.stdout.write(open({str(CAPTURES / name)!r}).read())\nsys.exit({code})\n"
    )


def test_available(tmp_path: Path) -> None:
    assert not Nvpmodel(Root(tmp_path)).available()
    write(tmp_path, BIN, "not executable")
    assert not Nvpmodel(Root(tmp_path)).available()
    assert _nvpmodel(tmp_path, "pass\n").available()


def test_missing_binary_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not found"):
        Nvpmodel(Root(tmp_path)).query()


def test_query_replays_capture(tmp_path: Path) -> None:
    query = _nvpmodel(tmp_path, _printer("nvpmodel_q_fan_warning.txt")).query()
    assert (query.name, query.id) == ("MAXN", 0)
    assert query.warnings == ("NVPM WARN: fan mode is not set!",)


def test_query_verbose_replays_capture(tmp_path: Path) -> None:
    query, rows = _nvpmodel(
        tmp_path, _printer("nvpmodel_q_verbose_orin_nano_r36.txt")
    ).query_verbose()
    assert query.name == "25W"
    assert [r.param for r in rows] == [
        "FBP_POWER_GATING",
        "TPC_POWER_GATING",
        "CPU_A78_0",
        "GPU",
        "EMC",
    ]


def test_query_without_mode_line(tmp_path: Path) -> None:
    nvp = _nvpmodel(tmp_path, "print('NVPM WARN: fan mode is not set!')\n")
    with pytest.raises(CommandError, match="NV Power Mode") as info:
        nvp.query()
    assert "fan mode is not set" in str(info.value)


def test_query_failure_quotes_output(tmp_path: Path) -> None:
    nvp = _nvpmodel(tmp_path, "import sys\nprint('NVPM ERROR: failed to open conf')\nsys.exit(3)\n")
    with pytest.raises(CommandError, match="exited 3") as info:
        nvp.query()
    assert "failed to open conf" in str(info.value)


def test_query_timeout(tmp_path: Path) -> None:
    # jetson_stats#721: nvpmodel -q hung under load; we time out instead of hanging.
    nvp = _nvpmodel(
        tmp_path, "import signal\nprint('NV Power Mode: MAXN', flush=True)\nsignal.pause()\n", 0.5
    )
    with pytest.raises(CommandTimeout, match="timed out"):
        nvp.query()


def test_set_mode_success(tmp_path: Path) -> None:
    body = (
        "import sys\nfrom pathlib import Path\n"
        "Path(__file__).with_name('args').write_text(' '.join(sys.argv[1:]))\n"
    )
    result = _nvpmodel(tmp_path, body).set_mode(1)
    assert result.returncode == 0
    assert (tmp_path / "usr/sbin/args").read_text() == "-m 1"


def test_set_mode_reboot_prompt_eof(tmp_path: Path) -> None:
    nvp = _nvpmodel(tmp_path, REBOOT_SCRIPT)
    with pytest.raises(RebootRequired, match="reboot required") as info:
        nvp.set_mode(0)
    message = str(info.value)
    assert "bad input!" in message
    assert "DO YOU WANT TO REBOOT NOW?" in message
    # stdin was /dev/null: the prompt read EOF, nothing was answered.
    assert (tmp_path / "usr/sbin/answer").read_text() == ""


def test_set_mode_declined_optmask_capture(tmp_path: Path) -> None:
    nvp = _nvpmodel(tmp_path, _printer("nvpmodel_m_reboot_declined.txt"))
    with pytest.raises(RebootRequired, match="optMask is 1"):
        nvp.set_mode(0)


def test_set_mode_allow_reboot_answers_yes(tmp_path: Path) -> None:
    result = _nvpmodel(tmp_path, REBOOT_SCRIPT).set_mode(0, allow_reboot=True)
    assert result.returncode == 0
    assert "rebooting" in result.stdout
    assert (tmp_path / "usr/sbin/answer").read_text() == "YES\n"


def test_set_mode_failure_and_chroot(tmp_path: Path) -> None:
    nvp = _nvpmodel(tmp_path, "import sys\nprint('NVPM ERROR: Invalid mode 9')\nsys.exit(1)\n")
    with pytest.raises(CommandError, match="exited 1") as info:
        nvp.set_mode(9)
    assert "Invalid mode 9" in str(info.value)
    nvp = _nvpmodel(tmp_path, "print('Running in chroot, ignoring request.')\n")
    with pytest.raises(CommandError, match="ignored the request"):
        nvp.set_mode(1)


def test_set_mode_timeout(tmp_path: Path) -> None:
    nvp = _nvpmodel(tmp_path, "import signal\nsignal.pause()\n", 0.5)
    with pytest.raises(CommandTimeout):
        nvp.set_mode(1)


def test_conf_symlink_resolves_under_root(tmp_path: Path) -> None:
    target = write(tmp_path, "etc/nvpmodel/nvpmodel_t186.conf", capture("nvpmodel_t186_l4t28.conf"))
    (tmp_path / "etc/nvpmodel.conf").symlink_to("/etc/nvpmodel/nvpmodel_t186.conf")
    nvp = Nvpmodel(Root(tmp_path))
    assert nvp.conf_path() == target
    conf = nvp.load_conf()
    assert conf.default_id == 3
    assert len(conf.modes) == 5


def test_conf_relative_symlink_and_plain_file(tmp_path: Path) -> None:
    target = write(tmp_path, "etc/nvpmodel/x.conf", capture("nvpmodel_t186_l4t28.conf"))
    (tmp_path / "etc/nvpmodel.conf").symlink_to("nvpmodel/x.conf")
    assert Nvpmodel(Root(tmp_path)).conf_path() == target


def test_conf_errors(tmp_path: Path) -> None:
    nvp = Nvpmodel(Root(tmp_path))
    with pytest.raises(SysfsError, match=r"nvpmodel\.conf"):
        nvp.load_conf()
    write(tmp_path, "etc/nvpmodel.conf", "< POWER_MODEL ID=0 NAME=A >\n")
    with pytest.raises(HardwareError, match="PM_CONFIG"):
        nvp.load_conf()
    (tmp_path / "etc/nvpmodel.conf").unlink()
    (tmp_path / "etc/nvpmodel.conf").symlink_to("/etc/nvpmodel.conf")
    with pytest.raises(SysfsError, match="symlinks"):
        nvp.conf_path()


def test_read_status(tmp_path: Path) -> None:
    nvp = Nvpmodel(Root(tmp_path))
    assert nvp.read_status() is None
    write(tmp_path, "var/lib/nvpmodel/status", capture("nvpmodel_status.txt"))
    assert nvp.read_status() == 2
