"""TLS to a real mosquitto: the right CA connects, a wrong one is a tls_error state."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock
from edge_agent.config import MqttConfig
from edge_agent.telemetry.mqtt_link import MqttLink
from tests.fakes.broker import MosquittoBroker

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, timeout=60, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, crt = directory / f"{name}.key", directory / f"{name}.crt"
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        str(key),
        "-out",
        str(crt),
    )
    return key, crt


@pytest.fixture
def tls_broker(tmp_path: Path) -> tuple[MosquittoBroker, Path, Path]:
    ca_key, ca_crt = make_ca(tmp_path, "test-ca")
    _other_key, other_crt = make_ca(tmp_path, "other-ca")
    key, csr, crt = tmp_path / "server.key", tmp_path / "server.csr", tmp_path / "server.crt"
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    ext = tmp_path / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_crt),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(crt),
    )
    broker = MosquittoBroker(tmp_path)
    broker.conf.write_text(
        broker.conf.read_text(encoding="utf-8")
        + f"cafile {ca_crt}\ncertfile {crt}\nkeyfile {key}\n"
        + ("user root\n" if os.geteuid() == 0 else ""),
        encoding="utf-8",
    )
    return broker, ca_crt, other_crt


def make_link(port: int, ca: Path) -> MqttLink:
    config = MqttConfig.model_validate(
        {"host": "127.0.0.1", "port": port, "tls": {"ca_file": str(ca)}}
    )
    return MqttLink(config, "dev1", "b1", "1.0", FakeClock(), reconnect_min_s=1, reconnect_max_s=1)


# paho does not close the socket when the TLS handshake fails (client.py _ssl_wrap_socket); the
# garbage collector does, with a ResourceWarning. Not ours to fix; the fd does not leak.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_tls_right_ca_connects_wrong_ca_is_tls_error(
    tls_broker: tuple[MosquittoBroker, Path, Path],
) -> None:
    broker, ca_crt, other_crt = tls_broker
    broker.start()
    good, bad = make_link(broker.port, ca_crt), make_link(broker.port, other_crt)
    try:
        good.start()
        bad.start()
        assert good.wait_connected(10)
        assert bad.wait_state("tls_error", 10)
        assert not bad.connected
        assert bad.last_error is not None
        assert "certificate verify failed" in bad.last_error
    finally:
        good.stop()
        bad.stop()
        broker.stop()
