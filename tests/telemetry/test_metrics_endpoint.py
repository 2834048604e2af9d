"""The Prometheus endpoint: a real agent on a simulated board, scraped over HTTP.

The scrape is parsed by prometheus-client's own text parser and compared with the MQTT
telemetry message of the same window (matched by ``edge_agent_report_timestamp_seconds``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.agent.daemon import Agent
from edge_agent.agent.hooks import PipelineHooks
from edge_agent.cli.main import main
from edge_agent.config import validate_config
from edge_agent.sim import create_board
from edge_agent.telemetry.last_report import read_last_report
from edge_agent.telemetry.metrics import (
    METRIC_NAMES,
    AgentCollector,
    AgentInfo,
    ResultCounter,
)
from tests.fakes.broker import MosquittoBroker
from tests.integration.agent_helpers import Recorder, new_device_id

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(k[1])[label]: v for k, v in samples.items() if k[0] == name}


def _close(got: float, want: float, rel: float = 0.02) -> bool:
    return abs(got - want) <= rel * abs(want) + 1e-9


@pytest.mark.slow
def test_scrape_matches_the_telemetry_of_the_same_window(
    tmp_path: Path, mosquitto: MosquittoBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "board"
    create_board("jetson-orin-nano", root)
    device = new_device_id()
    config = validate_config(
        {
            "device_id": device,
            "root": str(root),
            "state_dir": str(tmp_path / "state"),
            "power": {"monitor": "sim"},
            "profile": {"initial": "maxq"},
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "telemetry": {"interval_s": 0.5},
            "metrics": {"port": 0, "bind": "127.0.0.1"},
            "cameras": [{"name": "demo", "uri": "synthetic://digits", "fps": 60}],
        },
        env={},
    )
    topic = f"edge/{device}/telemetry"
    with Recorder(mosquitto, topic) as recorder:
        agent = Agent(config, hooks=PipelineHooks())
        agent.start()
        try:
            exporter = agent.parts.exporter
            assert exporter is not None
            assert exporter.running
            # Enough results that one arriving between two snapshots stays under 1%.
            recorder.wait_json(topic, lambda d: d.get("results", 0) >= 150, timeout_s=60)
            url = f"http://127.0.0.1:{exporter.server.port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200
                text = response.read().decode("utf-8")
            # The status view reads the same reports from the state directory.
            state = ["--state-dir", str(tmp_path / "state")]
            assert main(["--root", str(root), "status", "--json", *state]) == 0
            running = json.loads(capsys.readouterr().out)["agent"]
        finally:
            agent.shutdown()
        assert running["running"] is True
        assert running["fps"] > 0
        assert running["profile"] == "maxq"
        # policy fixed (the default) holding profile.initial: no governor, so no point.
        fixed = {"policy": "fixed", "set_by": "config", "preset": "maxq"}
        assert running["governor"] == fixed
        stopped = read_last_report(tmp_path / "state", time.time())
        assert stopped is not None
        assert stopped.state == "stopped"
        assert stopped.running is False
        samples = _parse(text)
        ts = samples[("edge_agent_report_timestamp_seconds", ())]
        same = recorder.wait_json(topic, lambda d: d["ts"] == ts, timeout_s=10)
        windows = [m.json() for m in recorder.snapshot() if m.topic == topic]
    upto = [doc for doc in windows if doc["ts"] <= ts]

    rails = _by_label(samples, "edge_agent_rail_power_watts", "rail")
    assert rails, "the simulated board has rails"
    assert set(rails) == set(same["power"]["rails"])
    for name, watts in rails.items():
        assert _close(watts, same["power"]["rails"][name]["w"]), name
    assert _close(samples[("edge_agent_board_power_watts", ())], same["power"]["total_w"])
    energy = sum(doc["energy_j"] for doc in upto if doc["energy_j"] is not None)
    assert energy > 0
    assert _close(samples[("edge_agent_energy_joules_total", ())], energy)
    assert _close(samples[("edge_agent_inferences_per_joule", ())], same["perf_per_watt"])

    inferences = _by_label(samples, "edge_agent_inferences_total", "camera")
    assert list(inferences) == ["demo"]
    assert _close(inferences["demo"], same["results"])
    latency_count = samples[("edge_agent_inference_latency_seconds_count", ())]
    assert latency_count == inferences["demo"]
    assert samples[("edge_agent_engine_seconds_count", ())] == inferences["demo"]

    clocks = _by_label(samples, "edge_agent_clock_hz", "domain")
    assert clocks["gpu"] == same["clocks"]["gpu_hz"]
    assert clocks["cpu0_max"] == same["clocks"]["cpu0_max_khz"] * 1000
    assert _by_label(samples, "edge_agent_temperature_celsius", "zone") == same["temps"]
    assert samples[("edge_agent_outbox_depth", ())] == same["outbox"]["depth"]

    (info,) = [dict(k[1]) for k in samples if k[0] == "edge_agent_info"]
    assert info["board"] == "jetson-orin-nano"
    assert info["profile"] == same["profile"] == "maxq"
    assert info["l4t"].startswith("R36")
    assert info["nvpmodel_mode"]
    assert info["model"] == same["engine"]["model"]
    assert same["governor"] == {"policy": "fixed", "set_by": "config", "preset": "maxq"}
    (governor,) = [dict(k[1]) for k in samples if k[0] == "edge_agent_governor_info"]
    assert governor == {"policy": "fixed", "set_by": "config", "preset": "maxq", "point": ""}
    assert _by_label(samples, "edge_agent_governor_point_hz", "domain") == {}
    assert info["provider"] == same["engine"]["provider"]
    assert info["precision"] == "fp32"


def _payload(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ts": 100.0,
        "window_s": 10.0,
        "profile": "maxq",
        "power": {"total_w": 5.0, "rails": {"VDD_IN": {"v": 5.0, "a": 1.0, "w": 5.0}}},
        "energy_j": 50.0,
        "perf_per_watt": 6.0,
        "clocks": {"gpu_hz": 306_000_000, "cpu0_max_khz": 1_190_400, "note": "x"},
        "temps": {"cpu-thermal": 41.5},
        "loads": {"gpu": 0.5},
        "drops": {"batcher": 3, "camera.a": 3, "camera.a.decode_errors": 1},
        "outbox": {"depth": 7},
        "governor": {
            "policy": "slo",
            "set_by": "fleet",
            "point": {
                "label": "gpu 624.75/emc 2133/cpu 1510",
                "gpu_hz": 624_750_000,
                "emc_hz": 2_133_000_000,
                "cpu_khz": 1_510_000,
            },
        },
    }
    doc.update(overrides)
    return doc


def _collect(collector: AgentCollector) -> Samples:
    samples: Samples = {}
    for family in collector.collect():
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_collector_serves_only_what_was_reported() -> None:
    collector = AgentCollector()
    before = _collect(collector)
    assert {k[0] for k in before} == {"edge_agent_info"}, "no made-up zeros before a report"

    counter = ResultCounter()
    counter.observe("a", "digits", 0.004, 0.001)
    counter.observe("a", "digits", 0.2, 0.1)
    collector.update(_payload(), counter.snapshot(), AgentInfo(board="jetson-tx2"))
    counter.observe("a", "digits", 0.004, 0.001)  # after the report: not served yet
    collector.update(_payload(energy_j=None), ResultCounter().snapshot(), AgentInfo())
    collector.update(_payload(energy_j=25.0), counter.snapshot(), AgentInfo())
    samples = _collect(collector)
    assert samples[("edge_agent_energy_joules_total", ())] == 75.0
    assert samples[("edge_agent_inferences_total", (("camera", "a"), ("model", "digits")))] == 3
    assert samples[("edge_agent_inference_latency_seconds_bucket", (("le", "0.005"),))] == 2
    assert samples[("edge_agent_inference_latency_seconds_bucket", (("le", "+Inf"),))] == 3
    assert samples[("edge_agent_clock_hz", (("domain", "cpu0_max"),))] == 1_190_400_000
    assert ("edge_agent_clock_hz", (("domain", "note"),)) not in samples
    drops = {k[1]: v for k, v in samples.items() if k[0] == "edge_agent_frames_dropped_total"}
    assert drops == {
        (("camera", "a"), ("reason", "queue_full")): 3,
        (("camera", "a"), ("reason", "decode_error")): 1,
    }
    (governor,) = [dict(k[1]) for k in samples if k[0] == "edge_agent_governor_info"]
    assert governor == {
        "policy": "slo",
        "set_by": "fleet",
        "preset": "",
        "point": "gpu 624.75/emc 2133/cpu 1510",
    }
    caps = {
        dict(k[1])["domain"]: v
        for k, v in samples.items()
        if k[0] == "edge_agent_governor_point_hz"
    }
    assert caps == {"gpu": 624_750_000, "emc": 2_133_000_000, "cpu": 1_510_000_000}
    histogram_parts = ("_bucket", "_count", "_sum")
    served = {
        next((k[0].removesuffix(p) for p in histogram_parts if k[0].endswith(p)), k[0])
        for k in samples
    }
    assert served == set(METRIC_NAMES)
