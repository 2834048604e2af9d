"""Topic names and JSON Schema validation of every payload kind."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from edge_agent.errors import TelemetryError
from edge_agent.telemetry.payloads import (
    SCHEMA_KINDS,
    encode,
    load_schema,
    new_boot_id,
    profile_state_payload,
    result_payload,
    status_payload,
    telemetry_payload,
)
from edge_agent.telemetry.topics import Topics


@pytest.mark.parametrize("kind", SCHEMA_KINDS)
def test_schemas_are_valid_json_schema(kind: str) -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema(kind))


def full_result() -> dict[str, Any]:
    doc = result_payload(
        ts=10.0,
        camera="front-door",
        frame=42,
        captured_at=9.98,
        latency_ms=20.5,
        engine_ms=8.25,
        model="resnet50",
        precision="int8",
        profile="maxq",
        outputs=[{"label": "cat", "class_id": 281, "score": 0.9}],
        queue_ms=1.5,
        batch_size=4,
        provider="TensorrtExecutionProvider",
        truth="cat",
        energy_mj=41.0,
    )
    return {"msg_id": "abc123:42", **doc}


def test_every_payload_kind_validates() -> None:
    jsonschema.validate(
        status_payload("offline", 1.0, "0.1.0", new_boot_id()), load_schema("status")
    )
    jsonschema.validate(full_result(), load_schema("result"))
    telemetry = telemetry_payload(
        ts=1.0,
        profile="maxp",
        total_w=None,
        fps=0.0,
        clocks={"gpu_hz": 1.3e9},
        temps={"GPU-therm": 41.5},
        loads={"gpu": 0.5},
        queues={"batcher": 3},
        drops={"cam0": 2},
        events=["profile maxq -> maxp"],
        window_s=10.0,
    )
    jsonschema.validate(telemetry, load_schema("telemetry"))
    jsonschema.validate(
        profile_state_payload("maxq", True, None, 1.0), load_schema("profile_state")
    )
    jsonschema.validate(
        profile_state_payload("maxq", False, "unknown profile", 1.0, requested="turbo"),
        load_schema("profile_state"),
    )


@pytest.mark.parametrize(
    ("kind", "doc"),
    [
        ("status", {"schema": 1, "state": "sleeping", "ts": 1, "version": "x", "boot_id": "b"}),
        ("result", {**full_result(), "msg_id": "no-counter"}),
        ("result", {k: v for k, v in full_result().items() if k != "engine_ms"}),
        # energy_mj is an estimate and must say so; the flag never comes alone.
        ("result", {k: v for k, v in full_result().items() if k != "energy_estimate"}),
        ("result", {k: v for k, v in full_result().items() if k != "energy_mj"}),
        ("telemetry", {**telemetry_payload(ts=1.0, profile=None, total_w=None), "outbox": {}}),
        (
            "telemetry",
            {
                **telemetry_payload(ts=1.0, profile=None, total_w=None),
                "outbox": {"depth": 0, "dropped": 0, "lost": -1, "errors": 0},
            },
        ),
        (
            "profile_state",
            {"schema": 1, "profile": "maxq", "applied": False, "error": None, "ts": 1},
        ),
    ],
)
def test_schemas_reject_bad_documents(kind: str, doc: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, load_schema(kind))


def test_optional_result_fields_are_omitted_not_null() -> None:
    doc = result_payload(
        ts=1.0,
        camera="c",
        frame=0,
        captured_at=1.0,
        latency_ms=0.0,
        engine_ms=0.0,
        model="m",
        precision="fp32",
        profile=None,
        outputs={"boxes": []},
    )
    assert not {
        "queue_ms",
        "batch_size",
        "provider",
        "truth",
        "energy_mj",
        "energy_estimate",
    } & set(doc)
    assert json.loads(encode(doc)) == doc
    jsonschema.validate({"msg_id": "b:1", **doc}, load_schema("result"))


def test_energy_is_flagged_as_an_estimate() -> None:
    doc = full_result()
    assert (doc["energy_mj"], doc["energy_estimate"]) == (41.0, True)
    assert load_schema("result")["properties"]["energy_mj"]["description"].startswith("an ESTIMATE")


def test_telemetry_reports_outbox_loss() -> None:
    doc = telemetry_payload(
        ts=1.0,
        profile=None,
        total_w=None,
        outbox_depth=12,
        outbox_dropped=3,
        outbox_lost=5,
        outbox_errors=2,
    )
    jsonschema.validate(doc, load_schema("telemetry"))
    assert doc["outbox"] == {"depth": 12, "dropped": 3, "lost": 5, "errors": 2}
    # Callers that predate the counters still build a valid payload, with zeros.
    old = telemetry_payload(ts=1.0, profile=None, total_w=None, outbox_depth=1, outbox_dropped=0)
    jsonschema.validate(old, load_schema("telemetry"))
    assert old["outbox"] == {"depth": 1, "dropped": 0, "lost": 0, "errors": 0}


def test_topics() -> None:
    topics = Topics("site/edge", "nx-01")
    assert topics.device_filter() == "site/edge/nx-01/#"
    assert topics.status() == "site/edge/nx-01/status"
    assert topics.results("cam_0") == "site/edge/nx-01/results/cam_0"
    assert topics.telemetry() == "site/edge/nx-01/telemetry"
    assert topics.profile_set() == "site/edge/nx-01/profile/set"
    assert topics.profile_state() == "site/edge/nx-01/profile/state"
    assert topics.config_set() == "site/edge/nx-01/config/set"
    assert topics.config_state() == "site/edge/nx-01/config/state"
    assert topics.fleet_config_set("lab") == "site/edge/fleet/lab/config/set"
    assert (
        topics.ha_config("homeassistant", "sensor", "fps")
        == "homeassistant/sensor/nx-01/fps/config"
    )


@pytest.mark.parametrize("camera", ["", "a/b", "cam+", "cam#", "with space"])
def test_unsafe_camera_names_are_refused(camera: str) -> None:
    with pytest.raises(TelemetryError):
        Topics("edge", "dev").results(camera)


@pytest.mark.parametrize(
    ("prefix", "device"), [("", "d"), ("/edge", "d"), ("edge", "a/b"), ("e#", "d")]
)
def test_unsafe_prefix_or_device_refused(prefix: str, device: str) -> None:
    with pytest.raises(TelemetryError):
        Topics(prefix, device)
