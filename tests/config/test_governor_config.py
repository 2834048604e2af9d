"""The governor's config: profile.policy and profile.governor."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge_agent.config_sections import ProfileConfig
from edge_agent.governor.policy import params_from_config


def test_slo_policy_maps_onto_governor_params() -> None:
    cfg = ProfileConfig.model_validate(
        {
            "policy": "slo",
            "initial": "maxq",
            "governor": {"slo_latency_ms": 40, "thermal_limit_c": 85, "dwell_s": 5},
        }
    )
    params = params_from_config(cfg.policy, cfg.initial, cfg.governor)
    assert params.policy == "slo"
    assert params.slo_latency_s == pytest.approx(0.040)
    assert params.thermal_limit_c == 85
    assert params.dwell_s == 5
    assert params.preset == "maxq"


def test_schedule_entries_become_seconds_of_the_day() -> None:
    cfg = ProfileConfig.model_validate(
        {
            "policy": "schedule",
            "governor": {"schedule": [{"start": "07:30", "profile": "maxp"}]},
        }
    )
    params = params_from_config(cfg.policy, cfg.initial, cfg.governor)
    assert params.schedule == ((7 * 3600.0 + 30 * 60.0, "maxp"),)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"policy": "power_cap"}, "power_cap_w"),
        ({"policy": "thermal"}, "thermal_limit_c"),
        ({"policy": "schedule"}, "schedule"),
        ({"policy": "turbo"}, "policy"),
        ({"policy": "slo", "governor": {"slo_latency_ms": 0}}, "slo_latency_ms"),
        (
            {"policy": "slo", "governor": {"schedule": [{"start": "25:00", "profile": "x"}]}},
            "start",
        ),
        ({"policy": "slo", "governor": {"surprise": 1}}, "surprise"),
    ],
)
def test_bad_governor_config_names_the_field(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProfileConfig.model_validate(doc)
