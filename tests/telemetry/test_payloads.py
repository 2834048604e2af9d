"""Topic names and JSON Schema validation of every payload kind."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import numpy as np
import pytest

from edge_agent.errors import TelemetryError
from edge_agent.pipeline.decoders import make_decoder
from edge_agent.pipeline.model_meta import LetterboxInfo, ModelMeta, PreprocessSpec
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
        outputs={"top_k": [{"label": "cat", "index": 281, "score": 0.9}]},
        queue_ms=1.5,
        batch_size=4,
        provider="TensorrtExecutionProvider",
        truth="cat",
        batch_energy_share_mj=41.0,
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
        governor={
            "policy": "slo",
            "set_by": "mqtt",
            "point": {
                "label": "gpu 624.75/emc 2133/cpu 1510",
                "gpu_hz": 624_750_000,
                "emc_hz": 2_133_000_000,
                "cpu_khz": 1_510_000,
            },
        },
    )
    jsonschema.validate(telemetry, load_schema("telemetry"))
    assert telemetry["governor"]["point"]["gpu_hz"] == 624_750_000
    fixed = telemetry_payload(
        ts=1.0,
        profile="maxq",
        total_w=None,
        governor={"policy": "fixed", "set_by": "config", "preset": "maxq"},
    )
    jsonschema.validate(fixed, load_schema("telemetry"))
    assert "governor" not in telemetry_payload(ts=1.0, profile=None, total_w=None)
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
        # the energy share is an estimate and must say so; the flag never comes alone.
        ("result", {k: v for k, v in full_result().items() if k != "energy_estimate"}),
        ("result", {k: v for k, v in full_result().items() if k != "batch_energy_share_mj"}),
        ("telemetry", {**telemetry_payload(ts=1.0, profile=None, total_w=None), "outbox": {}}),
        (
            "telemetry",
            {
                **telemetry_payload(ts=1.0, profile=None, total_w=None),
                "outbox": {"depth": 0, "dropped": 0, "lost": -1, "errors": 0},
            },
        ),
        (
            "telemetry",
            {
                **telemetry_payload(ts=1.0, profile=None, total_w=None),
                "governor": {"policy": "slo", "set_by": "config", "point": {"label": "maxq"}},
            },
        ),
        (
            "telemetry",
            {
                **telemetry_payload(ts=1.0, profile=None, total_w=None),
                "governor": {"policy": "turbo", "set_by": "config"},
            },
        ),
        (
            "profile_state",
            {"schema": 1, "profile": "maxq", "applied": False, "error": None, "ts": 1},
        ),
        (
            "policy_state",
            {
                "schema": 1,
                "policy": "turbo",
                "preset": None,
                "set_by": "mqtt",
                "persists": False,
                "accepted": True,
                "error": None,
                "ts": 1,
            },
        ),
        (
            "policy_state",
            {
                "schema": 1,
                "policy": "slo",
                "preset": None,
                "set_by": "mqtt",
                "persists": False,
                "accepted": False,
                "error": None,
                "ts": 1,
            },
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
        outputs={"detections": []},
    )
    assert not {
        "queue_ms",
        "batch_size",
        "provider",
        "truth",
        "batch_energy_share_mj",
        "energy_estimate",
    } & set(doc)
    assert json.loads(encode(doc)) == doc
    jsonschema.validate({"msg_id": "b:1", **doc}, load_schema("result"))


def test_energy_is_flagged_as_an_estimate() -> None:
    doc = full_result()
    assert (doc["batch_energy_share_mj"], doc["energy_estimate"]) == (41.0, True)
    described = load_schema("result")["properties"]["batch_energy_share_mj"]["description"]
    assert described.startswith("an ESTIMATE")


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


def _with_outputs(outputs: Any) -> dict[str, Any]:
    return {**full_result(), "outputs": outputs}


DETECTION = {"label": "cat", "index": 0, "score": 0.8, "box": [1.0, 2.0, 30.0, 40.0]}


@pytest.mark.parametrize(
    "outputs",
    [
        [{"label": "cat", "index": 0, "score": 0.9}],  # a bare list is no output kind
        {},
        {"top_k": []},
        {"top_k": [{"label": "cat", "index": 0}]},
        {"top_k": [{"label": "cat", "index": 0, "score": "0.9"}]},
        {"top_k": [{"label": "cat", "index": -1, "score": 0.9}]},
        {"top_k": [{"label": "cat", "index": 0, "score": 1.5}]},
        {"top_k": [{"label": "cat", "index": 0, "score": 0.9, "extra": 1}]},
        {"top_k": [{"label": "cat", "index": 0, "score": 0.9}], "detections": []},
        {"detections": [{k: v for k, v in DETECTION.items() if k != "box"}]},
        {"detections": [{**DETECTION, "box": [1.0, 2.0, 3.0]}]},
        {"detections": [{**DETECTION, "class_id": 3}]},
        {"outputs": [{"index": 0, "shape": [3], "dtype": "float32", "median": 1.0}]},
        {"outputs": [{"index": 0, "dtype": "float32"}]},
    ],
)
def test_result_schema_is_strict_per_output_kind(outputs: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_with_outputs(outputs), load_schema("result"))


def test_every_decoder_output_kind_validates() -> None:
    meta = ModelMeta(
        name="m",
        task="detection",
        labels=("cat", "dog"),
        preprocess=PreprocessSpec(),
        decoder="auto",
        accuracy=None,
        output="auto",
    )
    identity = LetterboxInfo(scale=1.0, pad_x=0.0, pad_y=0.0, orig_w=64, orig_h=64)
    logits = np.array([[2.0, -1.0]], dtype=np.float32)
    boxes = np.array([[[20, 20, 10, 10, 0.9, 0.8, 0.1]]], dtype=np.float32)
    decoded = [
        make_decoder("classification", meta, 2, 0.25, 0.45).decode([logits], 1, [identity]),
        make_decoder("yolov5", meta, 2, 0.25, 0.45).decode([boxes], 1, [identity]),
        make_decoder("raw", meta, 2, 0.25, 0.45).decode([logits, boxes], 1, [identity]),
    ]
    assert [next(iter(d[0])) for d in decoded] == ["top_k", "detections", "outputs"]
    for frames in decoded:
        jsonschema.validate(_with_outputs(json.loads(json.dumps(frames[0]))), load_schema("result"))
