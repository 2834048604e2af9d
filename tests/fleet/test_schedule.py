"""The schedule of documents waiting for their ``not_before`` (pure): order, replacement,
the worker's wait and the saved form."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.fleet.document import DocumentRejected, FleetDocument, validate_document
from edge_agent.fleet.schedule import SCHEDULE_RECHECK_S, Schedule
from edge_agent.fleet.signing import TrustedKeys, sign_document


def _data(version: int, target: str, not_before: float) -> dict[str, Any]:
    return {"version": version, "target": target, "sections": {}, "not_before": not_before}


def _entry(version: int, target: str, not_before: float) -> tuple[dict[str, Any], FleetDocument]:
    data = _data(version, target, not_before)
    return data, validate_document(data)


@given(versions=st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_the_highest_version_per_source_is_kept(versions: list[int]) -> None:
    schedule = Schedule()
    for version in versions:
        if schedule.entries and schedule.entries["group:a"].doc.version >= version:
            with pytest.raises(ValueError, match="already scheduled"):
                schedule.put(*_entry(version, "group:a", 100.0 + version))
        else:
            schedule.put(*_entry(version, "group:a", 100.0 + version))
    assert schedule.summary() == {
        "group:a": {"version": max(versions), "not_before": 100.0 + max(versions)}
    }


def test_due_entries_move_to_the_apply_slot_unless_a_newer_one_waits_there() -> None:
    schedule = Schedule()
    schedule.put(*_entry(2, "group:a", 100.0))
    schedule.put(*_entry(5, "device:b", 200.0))
    assert schedule.wait_s(80.0) == 20.0
    assert schedule.wait_s(-1000.0) == SCHEDULE_RECHECK_S  # a clock jump is seen in time
    slot = {"group:a": _entry(3, "group:a", 0.0)}
    assert not schedule.move_due(99.0, slot)
    assert schedule.move_due(150.0, slot)
    assert slot["group:a"][1].version == 3, "the newer version waiting wins"
    assert schedule.summary() == {"device:b": {"version": 5, "not_before": 200.0}}
    assert schedule.drop_below("device:b", 5) is None
    dropped = schedule.drop_below("device:b", 6)
    assert dropped is not None
    assert dropped.doc.version == 5
    assert schedule.wait_s(0.0) is None


def test_a_saved_schedule_is_verified_again() -> None:
    key = Ed25519PrivateKey.generate()
    trust = TrustedKeys({"ops": key.public_key()})
    signed = sign_document(_data(4, "group:a", 100.0), key, "ops")
    tampered = {**sign_document(_data(7, "group:b", 100.0), key, "ops"), "version": 8}
    schedule, dropped = Schedule.from_json(
        {"group:a": signed, "group:b": tampered, "group:c": {"version": 0}}, trust.verify
    )
    assert schedule.to_json() == {"group:a": signed}
    assert [line.split(":")[0:2] for line in dropped] == [["group", "b"], ["group", "c"]]
    with pytest.raises(DocumentRejected):
        trust.verify(tampered)
