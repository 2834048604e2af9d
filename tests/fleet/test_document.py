"""The fleet document model, its bounded loader, signatures and merging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.fleet_gate import document_loader
from edge_agent.config import validate_config
from edge_agent.errors import ConfigError
from edge_agent.fleet.document import (
    MAX_DOCUMENT_BYTES,
    DocumentRejected,
    FleetDocument,
)
from edge_agent.fleet.document import (
    parse_document as parse_with,
)
from edge_agent.fleet.merge import effective_config, source_order
from edge_agent.fleet.signing import (
    canonical_bytes,
    generate_key,
    load_private_key,
    load_trusted_keys,
    sign_document,
)


def _doc(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": 3,
        "target": "group:lobby",
        "sections": {"batching": {"max_batch": 4}},
    }
    doc.update(extra)
    return doc


def parse_document(raw: bytes) -> tuple[dict[str, Any], FleetDocument]:
    return parse_with(raw, document_loader)


def _raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_a_good_document_parses() -> None:
    data, doc = parse_document(_raw(_doc()))
    assert doc.version == 3
    assert doc.target == "group:lobby"
    assert doc.section_data() == {"batching": {"max_batch": 4}}
    assert data["version"] == 3


@pytest.mark.parametrize(
    ("sections", "path"),
    [
        ({"mqtt": {"host": "evil"}}, "sections.mqtt"),
        ({"state_dir": "/tmp"}, "sections.state_dir"),
        ({"fleet": {"trusted_keys": None}}, "sections.fleet"),
        ({"profile": {"profiles_dir": "/x"}}, "sections.profile.profiles_dir"),
    ],
)
def test_device_local_settings_are_refused_by_name(sections: dict[str, Any], path: str) -> None:
    with pytest.raises(DocumentRejected) as info:
        parse_document(_raw(_doc(sections=sections)))
    assert info.value.errors == (f"{path}: device-local setting, cannot be pushed",)
    assert info.value.version == 3


def test_top_level_device_id_is_refused() -> None:
    with pytest.raises(DocumentRejected) as info:
        parse_document(_raw(_doc(device_id="other")))
    assert info.value.errors[0].startswith("device_id: device-local")


def test_schema_errors_name_the_field_path() -> None:
    with pytest.raises(DocumentRejected) as info:
        parse_document(_raw(_doc(sections={"batching": {"max_batch": 0}})))
    assert info.value.errors == (
        "sections.batching.max_batch: Input should be greater than or equal to 1",
    )


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"path": "/m.onnx"}, "sections.model.sha256: Field required"),
        ({"sha256": "a" * 64}, "sections.model: give exactly one of path or url"),
        ({"url": "ftp://x/m.onnx", "sha256": "a" * 64}, "sections.model.url: url must be"),
        ({"path": "/m.onnx", "sha256": "a" * 64, "data": "AAAA"}, "sections.model.data: unknown"),
    ],
)
def test_model_is_a_reference_with_a_sha256(model: dict[str, Any], message: str) -> None:
    with pytest.raises(DocumentRejected) as info:
        parse_document(_raw(_doc(sections={"model": model})))
    assert info.value.errors[0].startswith(message)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff{}", "not UTF-8"),
        (b"[" * 40 + b"]" * 40, "nested deeper"),
        (b'{"version": NaN}', "NaN"),
        (b"{" + b" " * MAX_DOCUMENT_BYTES + b"}", "too large"),
        (b"not json", "not valid JSON"),
        (b'{"version": 1, "target": "group:a", "target": "group:b"}', "duplicate keys: target"),
        (b"[1, 2]", "JSON object"),
    ],
)
def test_the_loader_is_bounded(raw: bytes, reason: str) -> None:
    # The agent's loader is the shared inbound parser (its refusals are ValueErrors, as are
    # DocumentRejected's): a fleet document meets the same rules as every network payload.
    with pytest.raises(ValueError, match=reason):
        parse_document(raw)


def test_bad_target_and_window() -> None:
    with pytest.raises(DocumentRejected) as info:
        parse_document(_raw(_doc(target="lobby")))
    assert info.value.errors[0].startswith("target: target must be device:<id> or group:<name>")
    with pytest.raises(DocumentRejected) as info:
        parse_document(_raw(_doc(not_before=10, expires=5)))
    assert "expires must be after not_before" in info.value.errors[0]


def test_sign_and_verify_round_trip(tmp_path: Path) -> None:
    private, _public = generate_key(tmp_path / "keys", "ops-1")
    assert private.stat().st_mode & 0o777 == 0o600
    signed = sign_document(_doc(), load_private_key(private), "ops-1")
    trust = load_trusted_keys(tmp_path / "keys")
    assert trust.required
    assert trust.verify(signed) == "ops-1"
    # The signature covers target and version: change either and it fails.
    for field, value in (("target", "group:other"), ("version", 4)):
        tampered = {**signed, field: value}
        with pytest.raises(DocumentRejected, match="bad signature"):
            trust.verify(tampered)


def test_unsigned_and_unknown_keys_are_refused_when_keys_are_set(tmp_path: Path) -> None:
    generate_key(tmp_path / "trusted", "ops-1")
    other, _ = generate_key(tmp_path / "other", "rogue")
    trust = load_trusted_keys(tmp_path / "trusted")
    with pytest.raises(DocumentRejected, match="unsigned"):
        trust.verify(_doc())
    with pytest.raises(DocumentRejected, match="unknown signing key 'rogue'"):
        trust.verify(sign_document(_doc(), load_private_key(other), "rogue"))
    # A rogue key that claims a trusted key id does not verify either.
    with pytest.raises(DocumentRejected, match="bad signature"):
        trust.verify(sign_document(_doc(), load_private_key(other), "ops-1"))


def test_no_keys_accepts_unsigned(tmp_path: Path) -> None:
    trust = load_trusted_keys(None)
    assert not trust.required
    assert trust.verify(_doc()) is None
    with pytest.raises(ConfigError, match=r"fleet.trusted_keys"):
        load_trusted_keys(tmp_path)


def test_canonical_form_ignores_key_order_and_signature() -> None:
    a = {"b": 1, "a": [1, {"y": 2, "x": 1}], "signature": "zz"}
    b = {"a": [1, {"x": 1, "y": 2}], "b": 1}
    assert canonical_bytes(a) == canonical_bytes(b) == b'{"a":[1,{"x":1,"y":2}],"b":1}'


def test_device_overrides_group_field_by_field(tmp_path: Path) -> None:
    base = validate_config(
        {"device_id": "box1", "state_dir": str(tmp_path), "batching": {"max_delay_ms": 5}},
        env={},
        check_files=False,
    )
    sources = {
        "group:lobby": {"batching": {"max_batch": 4, "queue_size": 10}},
        "device:box1": {"batching": {"queue_size": 20}, "telemetry": {"interval_s": 2}},
    }
    order = source_order(sources, "box1", ["lobby"])
    assert order == ["group:lobby", "device:box1"]
    config, ref = effective_config(base, sources, order, tmp_path / "models")
    assert ref is None
    assert config.batching.max_batch == 4
    assert config.batching.queue_size == 20
    assert config.batching.max_delay_ms == 5  # local, untouched
    assert config.telemetry.interval_s == 2


def test_a_pushed_model_url_maps_into_the_state_dir(tmp_path: Path) -> None:
    base = validate_config({"device_id": "box1"}, env={}, check_files=False)
    model = {"url": "https://models.example/m.onnx", "sha256": "b" * 64, "top_k": 5}
    doc = FleetDocument.model_validate(_doc(sections={"model": model}))
    config, ref = effective_config(
        base, {"group:lobby": doc.section_data()}, ["group:lobby"], tmp_path
    )
    assert ref is not None
    assert config.model.path == tmp_path / f"{'b' * 64}.onnx"
    assert config.model.top_k == 5


def test_a_push_naming_one_governor_key_keeps_the_others(tmp_path: Path) -> None:
    """Blocks inside a section merge key by key too: a group sets the SLO and the dwell, the
    device document tightens only the SLO, and the local hysteresis stays; a schedule (a list)
    is replaced whole."""
    base = validate_config(
        {
            "device_id": "box1",
            "state_dir": str(tmp_path),
            "profile": {"governor": {"hysteresis": 0.07}},
        },
        env={},
        check_files=False,
    )
    sources: dict[str, dict[str, Any]] = {
        "group:lobby": {
            "profile": {
                "policy": "slo",
                "governor": {
                    "slo_latency_ms": 60,
                    "dwell_s": 4,
                    "schedule": [{"start": "08:00", "profile": "maxp"}],
                },
            }
        },
        "device:box1": {
            "profile": {
                "governor": {
                    "slo_latency_ms": 40,
                    "schedule": [{"start": "20:00", "profile": "maxq"}],
                }
            }
        },
    }
    order = source_order(sources, "box1", ["lobby"])
    config, _ref = effective_config(base, sources, order, tmp_path / "models")
    gov = config.profile.governor
    assert (config.profile.policy, gov.slo_latency_ms, gov.dwell_s) == ("slo", 40, 4)
    assert gov.hysteresis == 0.07
    assert [(e.start_s, e.profile) for e in gov.schedule] == [(20 * 3600, "maxq")]
