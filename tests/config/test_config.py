"""Config validation: every malformed config names its field; valid ones load."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.config import AgentConfig, load_config, validate_config
from edge_agent.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "agent.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    return [str(e) for e in info.value.errors]


MALFORMED: list[tuple[str, str, str]] = [
    ("unknown top key", "colour: blue\n", "colour: unknown key"),
    ("unknown nested key", "mqtt:\n  hots: x\n", "mqtt.hots: unknown key"),
    ("port wrong type", "mqtt:\n  port: abc\n", "mqtt.port:"),
    ("port out of range", "mqtt:\n  port: 70000\n", "mqtt.port:"),
    ("negative telemetry interval", "telemetry:\n  interval_s: -1\n", "telemetry.interval_s:"),
    ("zero sampler interval", "power:\n  interval_ms: 0\n", "power.interval_ms:"),
    ("unknown monitor", "power:\n  monitor: tegrastats\n", "power.monitor:"),
    ("missing model file", "model:\n  path: nothere.onnx\n", "model.path: file not found"),
    (
        "bad camera scheme",
        "cameras:\n  - {name: a, uri: 'ftp://cam/1'}\n",
        "cameras[0].uri: unsupported camera URI",
    ),
    ("csi without number", "cameras:\n  - {name: a, uri: 'csi://front'}\n", "cameras[0].uri:"),
    ("rtsp without host", "cameras:\n  - {name: a, uri: 'rtsp:///x'}\n", "cameras[0].uri:"),
    (
        "missing video file",
        "cameras:\n  - {name: a, uri: 'file:///no/such/video.mp4'}\n",
        "cameras[0].uri: video file not found",
    ),
    ("camera name with slash", "cameras:\n  - {name: 'a/b', uri: 'csi://0'}\n", "cameras[0].name:"),
    (
        "duplicate camera",
        "cameras:\n  - {name: a, uri: 'csi://0'}\n  - {name: a, uri: 'csi://1'}\n",
        "cameras: camera name 'a' is used twice",
    ),
    ("no cameras", "cameras: []\n", "cameras:"),
    ("inline password", "mqtt:\n  username: u\n  password: hunter2\n", "mqtt.password: inline"),
    (
        "password file missing",
        "mqtt:\n  username: u\n  password_file: /nope/pw\n",
        "mqtt.password_file",
    ),
    ("password file without user", "mqtt:\n  password_file: pw\n", "mqtt: password_file is set"),
    (
        "tls cert without key",
        "mqtt:\n  tls:\n    cert_file: c.pem\n",
        "mqtt.tls: cert_file and key_file",
    ),
    ("reconnect backoff zero", "mqtt:\n  reconnect_max_s: 0\n", "mqtt.reconnect_max_s:"),
    ("max_batch zero", "batching:\n  max_batch: 0\n", "batching.max_batch:"),
    ("negative delay", "batching:\n  max_delay_ms: -5\n", "batching.max_delay_ms:"),
    ("bad precision", "model:\n  precision: int4\n", "model.precision:"),
    ("unknown provider", "model:\n  providers: [tensorrt, rocm]\n", "model.providers[1]:"),
    ("device id with wildcard", "device_id: 'cam#1'\n", "device_id:"),
    (
        "cpu0 offline",
        "profile:\n  custom:\n    low:\n      cpus_online: [1, 2]\n",
        "profile.custom.low.cpus_online: cpu0 cannot be taken offline",
    ),
    (
        "negative gpu clock",
        "profile:\n  custom:\n    low:\n      gpu_max_hz: -3\n",
        "profile.custom.low.gpu_max_hz:",
    ),
    ("topic prefix wildcard", "mqtt:\n  topic_prefix: 'edge/#'\n", "mqtt.topic_prefix:"),
    ("list document", "- a\n- b\n", "(top level): expected a mapping"),
    ("yaml syntax", "mqtt:\n  host: [unclosed\n", "(yaml): line"),
    ("yaml bad indent", "mqtt:\n  host: a\n port: 1\n", "(yaml): line 3, column 2"),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_config_names_the_field(tmp_path: Path, text: str, expected: str) -> None:
    errors = _errors(tmp_path, text)
    assert any(err.startswith(expected) for err in errors), errors


def test_at_least_fifteen_malformed_cases() -> None:
    assert len(MALFORMED) >= 15


def test_minimal_config_defaults(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("mqtt: {host: 127.0.0.1, port: 1884}\ndevice_id: dev1\n", encoding="utf-8")
    config = load_config(path, env={})
    assert config.mqtt.host == "127.0.0.1"
    assert config.mqtt.port == 1884
    assert config.device_id == "dev1"
    assert config.model.path is None
    assert [c.uri for c in config.cameras] == ["synthetic://digits"]
    assert config.state_dir == Path("/var/lib/edge-agent")
    assert config.power.interval_ms == 20.0


def test_state_directory_from_systemd_and_root(tmp_path: Path) -> None:
    config = validate_config({}, env={"STATE_DIRECTORY": "/var/lib/edge-agent-x:/other"})
    assert config.state_dir == Path("/var/lib/edge-agent-x")
    config = validate_config({"root": str(tmp_path)}, env={})
    assert config.state_dir == tmp_path / "var/lib/edge-agent"


def test_password_file_from_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "mqtt_password").write_text("s3cret\n", encoding="utf-8")
    config = validate_config(
        {"mqtt": {"username": "u", "password_file": "mqtt_password"}},
        env={"CREDENTIALS_DIRECTORY": str(tmp_path)},
    )
    assert config.mqtt.password_file == tmp_path / "mqtt_password"
    assert "s3cret" not in config.model_dump_json()


def test_relative_paths_resolve_against_config_folder(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    path = tmp_path / "agent.yaml"
    path.write_text("model:\n  path: m.onnx\n", encoding="utf-8")
    assert load_config(path, env={}).model.path == tmp_path / "m.onnx"


def test_config_is_frozen() -> None:
    config = AgentConfig.model_validate({})
    with pytest.raises(ValueError, match="frozen"):
        config.mqtt.port = 1


@pytest.mark.parametrize("name", ["demo-sim.yaml", "orin-nano-csi.yaml", "tx2-rtsp.yaml"])
def test_examples_validate(name: str) -> None:
    path = EXAMPLES / name
    try:
        load_config(path, env={"CREDENTIALS_DIRECTORY": str(EXAMPLES)})
    except ConfigError as err:
        # Examples name files that exist on the device, not in this checkout.
        for item in err.errors:
            assert "not found" in item.message, str(item)


def test_check_config_cli_prints_each_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mqtt:\n  port: 0\ntelemetry:\n  interval_s: -2\nextra: 1\n", encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert "extra: unknown key" in out
    assert any(line.startswith("mqtt.port: ") for line in out)
    assert any(line.startswith("telemetry.interval_s: ") for line in out)
    assert len(out) == 3


def test_check_config_cli_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("device_id: d1\n", encoding="utf-8")
    assert main(["check-config", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().out
