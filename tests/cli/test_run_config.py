"""``edge-agent run``'s config assembly: --profile, and the --sim state folder's key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli.main import build_parser
from edge_agent.cli.run import build_config


def _config_file(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))


def test_profile_flag_overrides_profile_initial(tmp_path: Path) -> None:
    parser = build_parser()
    assert build_config(parser.parse_args(["run"])).profile.initial == "maxq"
    args = parser.parse_args(["run", "--profile", "maxp"])
    assert build_config(args).profile.initial == "maxp"
    file = _config_file(tmp_path, "a.yaml", "profile:\n  initial: maxq\n  allow_reboot: true\n")
    config = build_config(parser.parse_args(["run", "--config", str(file), "--profile", "maxn"]))
    assert config.profile.initial == "maxn"
    assert config.profile.allow_reboot  # the rest of the section is kept


def test_sim_state_dir_is_keyed_by_device_and_broker(tmp_path: Path) -> None:
    parser = build_parser()
    sim_root = tmp_path / "board"
    dirs = []
    for name, body in (
        ("a.yaml", "device_id: cam-1\nmqtt: {host: broker-a, port: 1883}\n"),
        ("b.yaml", "device_id: cam-1\nmqtt: {host: broker-b, port: 1883}\n"),
        ("c.yaml", "device_id: cam-1\nmqtt: {host: broker-a, port: 8883}\n"),
        ("d.yaml", "device_id: cam-2\nmqtt: {host: broker-a, port: 1883}\n"),
    ):
        file = _config_file(tmp_path, name, body)
        args = parser.parse_args(["run", "--sim", "jetson-tx2", "--config", str(file)])
        dirs.append(build_config(args, sim_root=sim_root).state_dir)
    base = tmp_path / "xdg/edge-agent/sim-jetson-tx2"
    assert dirs == [
        base / "cam-1@broker-a-1883",
        base / "cam-1@broker-b-1883",
        base / "cam-1@broker-a-8883",
        base / "cam-2@broker-a-1883",
    ]
    # An explicit state dir wins.
    file = tmp_path / "a.yaml"
    args = parser.parse_args(
        ["run", "--sim", "jetson-tx2", "--config", str(file), "--state-dir", str(tmp_path / "s")]
    )
    assert build_config(args, sim_root=sim_root).state_dir == tmp_path / "s"
