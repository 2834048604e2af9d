"""Version ordering, targets and validity windows: the pure decision, property-tested."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edge_agent.fleet.decision import Ledger, decide
from edge_agent.fleet.document import DocumentRejected, FleetDocument
from edge_agent.fleet.signing import TrustedKeys, sign_document

KEY = Ed25519PrivateKey.generate()

NOW = 1_800_000_000.0
versions = st.integers(min_value=1, max_value=1000)
maybe_versions = st.none() | versions


def _doc(version: int, target: str = "group:lobby", **extra: float) -> FleetDocument:
    return FleetDocument.model_validate(
        {"version": version, "target": target, "sections": {}, **extra}
    )


def _decide(doc: FleetDocument, ledger: Ledger) -> str:
    return decide(doc, ledger, device_id="box1", groups=["lobby"], now_wall=NOW).action


@given(version=versions, committed=maybe_versions, failed=maybe_versions)
def test_never_applies_a_version_at_or_below_the_committed_or_failed(
    version: int, committed: int | None, failed: int | None
) -> None:
    ledger = Ledger(
        {} if committed is None else {"group:lobby": committed},
        {} if failed is None else {"group:lobby": failed},
    )
    action = _decide(_doc(version), ledger)
    floor = max(committed or 0, failed or 0)
    assert (action == "apply") == (version > floor)
    if version in (committed, failed):
        assert action == "ignore"  # a re-delivered retained message is not re-reported
    elif version <= floor:
        assert action == "stale"


@given(steps=st.lists(st.tuples(versions, st.booleans()), max_size=30))
def test_applied_versions_strictly_increase(steps: list[tuple[int, bool]]) -> None:
    ledger = Ledger()
    applied: list[int] = []
    for version, works in steps:
        if _decide(_doc(version), ledger) != "apply":
            continue
        if works:
            ledger = ledger.commit("group:lobby", version)
            applied.append(version)
        else:
            ledger = ledger.fail("group:lobby", version)
    assert applied == sorted(set(applied))


@given(version=versions, other=st.sampled_from(["group:other", "device:box2"]))
def test_documents_for_other_targets_are_rejected(version: int, other: str) -> None:
    assert _decide(_doc(version, other), Ledger()) == "reject"
    assert _decide(_doc(version, "device:box1"), Ledger()) == "apply"


@given(offset=st.floats(min_value=1, max_value=1e6))
def test_validity_window(offset: float) -> None:
    assert _decide(_doc(1, not_before=NOW + offset), Ledger()) == "schedule"
    assert _decide(_doc(1, expires=NOW - offset), Ledger()) == "reject"
    assert _decide(_doc(1, not_before=NOW - offset, expires=NOW + offset), Ledger()) == "apply"


def test_sources_are_ordered_independently() -> None:
    ledger = Ledger({"group:lobby": 9})
    assert _decide(_doc(2, "device:box1"), ledger) == "apply"
    verdict = decide(_doc(5), ledger, device_id="box1", groups=["lobby"], now_wall=NOW)
    assert verdict.action == "stale"
    assert verdict.reason == "version 5 <= applied version 9"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
CHANGES: dict[str, Any] = {
    "version": 6,
    "target": "group:elsewhere",
    "sections": {"batching": {"max_batch": 2}},
    "expires": 3e9,
    "key_id": "ops-2",
}


@given(
    sections=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    field=st.sampled_from(sorted(CHANGES)),
)
@settings(max_examples=50, deadline=None)
def test_any_change_to_a_signed_document_breaks_its_signature(
    sections: dict[str, Any], field: str
) -> None:
    doc = {"version": 5, "target": "group:lobby", "sections": sections, "expires": 2e9}
    signed = sign_document(doc, KEY, "ops")
    # Both ids hold the same public key: only the signature over key_id tells them apart.
    trust = TrustedKeys({"ops": KEY.public_key(), "ops-2": KEY.public_key()})
    assert trust.verify(signed) == "ops"
    assert trust.verify(dict(reversed(list(signed.items())))) == "ops", "key order is free"
    changed = {**signed, field: CHANGES[field]}
    assume(changed[field] != signed[field])
    with pytest.raises(DocumentRejected, match="bad signature"):
        trust.verify(changed)


def test_a_future_not_before_is_scheduled_within_30_days_and_rejected_beyond() -> None:
    day = 86400.0
    verdict = decide(
        _doc(2, not_before=NOW + 30 * day),
        Ledger(),
        device_id="box1",
        groups=["lobby"],
        now_wall=NOW,
    )
    assert verdict.action == "schedule"
    far = decide(
        _doc(2, not_before=NOW + 31 * day),
        Ledger(),
        device_id="box1",
        groups=["lobby"],
        now_wall=NOW,
    )
    assert far.action == "reject"
    assert far.reason.startswith(f"not_before {NOW + 31 * day:.0f} is 31.0 days ahead")
    assert "at most 30" in far.reason
    # Version order comes first: an old version is stale even with a future not_before.
    assert _decide(_doc(2, not_before=NOW + day), Ledger({"group:lobby": 3})) == "stale"
    assert _decide(_doc(3, not_before=NOW + day), Ledger({"group:lobby": 3})) == "ignore"
