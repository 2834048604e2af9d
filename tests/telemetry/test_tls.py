"""TLS to a real mosquitto: the right CA connects, a wrong one is a tls_error state."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock
from edge_agent.config import MqttConfig
from edge_agent.telemetry.mqtt_link import MqttLink
from tests.fakes.broker import MosquittoBroker
from tests.fakes.tls import tls_broker_in

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


@pytest.fixture
def tls_broker(tmp_path: Path) -> tuple[MosquittoBroker, Path, Path]:
    return tls_broker_in(tmp_path)


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
