"""The banner's mosquitto_sub hint: TLS and the user spelled out, the password never."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from edge_agent.agent.banner import subscribe_command
from edge_agent.config import MqttConfig, validate_config
from tests.fakes.tls import make_ca


def _mqtt(**mqtt: object) -> MqttConfig:
    return validate_config({"mqtt": mqtt}, env={}).mqtt


def test_plain_broker() -> None:
    line = subscribe_command(_mqtt(host="broker"), "broker", 1883, "edge/dev/#")
    assert line == "mosquitto_sub -h broker -p 1883 -t 'edge/dev/#' -v"


def test_tls_and_credentials_without_the_secret(tmp_path: Path) -> None:
    secret = tmp_path / "my secrets" / "mqtt_password"
    secret.parent.mkdir()
    secret.write_text("s3cr3t-Pa55\n", encoding="utf-8")
    # Real PEM files: the config refuses a CA file that is not a certificate.
    _ca_key, ca = make_ca(tmp_path, "ca")
    key, cert = make_ca(tmp_path, "dev")
    mqtt = _mqtt(
        host="broker.example",
        port=8883,
        username="edge-dev",
        password_file=str(secret),
        tls={"ca_file": str(ca), "cert_file": str(cert), "key_file": str(key)},
    )
    line = subscribe_command(mqtt, "broker.example", 8883, "edge/dev/#")
    assert "s3cr3t" not in line
    assert f"--cafile {ca} --cert {cert} --key {key}" in line
    assert "-p 8883" in line
    assert "-u edge-dev" in line
    assert f"-P \"$(cat '{secret}')\"" in line
    # The shell reads the password from the file: run the line through sh with echo.
    echoed = subprocess.run(
        ["sh", "-c", "printf '%s\\n' " + line.removeprefix("mosquitto_sub ")],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.splitlines()
    assert echoed[echoed.index("-P") + 1] == "s3cr3t-Pa55"
    assert echoed[echoed.index("-t") + 1] == "edge/dev/#"


def test_tls_without_a_ca_file_uses_the_system_cas() -> None:
    mqtt = _mqtt(host="broker", port=8883, tls={"insecure": True})
    words = shlex.split(subscribe_command(mqtt, "broker", 8883, "edge/#"))
    assert words[words.index("--capath") + 1] == "/etc/ssl/certs"
    assert "--insecure" in words
    assert "-u" not in words
    assert "-P" not in words
