"""A fleet push over TLS: the operator CLI and a device both on a TLS-only mosquitto."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.daemon import Agent
from edge_agent.agent.hooks import PipelineHooks
from edge_agent.cli.main import main
from edge_agent.config import validate_config
from edge_agent.sim import create_board
from tests.fakes.tls import tls_broker_in
from tests.fleet.fleet_helpers import unique

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed"),
]


def _cli(port: int, prefix: str, ca: Path, *args: str) -> list[str]:
    broker = ["--host", "127.0.0.1", "--port", str(port), "--prefix", prefix, "--ca-file", str(ca)]
    return ["fleet", *args, *broker]


# paho does not close the socket when a TLS handshake fails (the wrong-CA push below); the
# garbage collector does, with a ResourceWarning. Not ours to fix; the fd does not leak.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_push_over_tls_is_applied_and_a_wrong_ca_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker, ca, other_ca = tls_broker_in(tmp_path / "tls")
    broker.start()
    prefix, device = unique("fltls"), unique("cam")
    create_board("jetson-orin-nano", tmp_path / "board")
    data: dict[str, Any] = {
        "device_id": device,
        "root": str(tmp_path / "board"),
        "state_dir": str(tmp_path / "state"),
        "power": {"monitor": "sim"},
        "mqtt": {
            "host": "127.0.0.1",
            "port": broker.port,
            "topic_prefix": prefix,
            "tls": {"ca_file": str(ca)},
        },
        "telemetry": {"interval_s": 0.5},
        "cameras": [{"name": "demo", "uri": "synthetic://digits", "fps": 50}],
        "fleet": {"enabled": True, "health_window_s": 3.0, "health_min_results": 5},
    }
    agent = Agent(validate_config(data, env={}), hooks=PipelineHooks())
    try:
        agent.start()
        doc = tmp_path / "v1.json"
        batching = {"batching": {"max_batch": 2}}
        body = {"version": 1, "target": f"device:{device}", "sections": batching}
        doc.write_text(json.dumps(body), encoding="utf-8")
        capsys.readouterr()
        code = main(
            [*_cli(broker.port, prefix, ca, "push", str(doc)), "--device", device, "--json",
             "--timeout", "30"]
        )  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        assert code == 0, report
        assert report["counts"] == {"applied": 1}
        assert agent.config.batching.max_batch == 2

        code = main([*_cli(broker.port, prefix, ca, "status"), "--json", "--wait", "1.5"])
        rows = {row["device"]: row for row in json.loads(capsys.readouterr().out)}
        assert code == 0
        assert rows[device]["running"] == {f"device:{device}": 1}

        wrong = main(
            [*_cli(broker.port, prefix, other_ca, "push", str(doc)), "--device", device,
             "--json", "--timeout", "5"]
        )  # fmt: skip
        err = capsys.readouterr().err
        assert wrong != 0
        assert f"error: broker 127.0.0.1:{broker.port}:" in err
        assert "certificate verify failed" in err
    finally:
        agent.shutdown()
        broker.stop()
