"""Hostile MQTT payloads shared by the inbound tests (parser, handlers, the whole agent)."""

from __future__ import annotations

NESTED = b'{"profile":' + b"[" * 1000

HOSTILE_PAYLOADS: dict[str, bytes] = {
    "nested_1000": NESTED,
    "nested_objects": b'{"a":' * 5000,
    "nested_60k": b"[" * 60_000,
    "too_large": b"m" * (64 * 1024 + 1),
    "empty": b"",
    "nul": b"\x00",
    "not_utf8": b"\xff\xfemaxq",
    "overlong_utf8": b"\xc0\x80",
    "surrogate_utf8": b"\xed\xa0\x80",
    "bom_name": b'\xef\xbb\xbf"maxq"',
    "nan": b'{"profile": NaN}',
    "infinity": b'{"profile": -Infinity}',
    "huge_float": b'{"profile": 1e400}',
    "huge_int": b'{"profile": ' + b"9" * 5000 + b"}",
    "duplicate_keys": b'{"profile": "maxq", "profile": "maxp"}',
    "operator_object": b'{"profile": {"$gt": ""}}',
    "list_name": b'{"profile": ["maxq"]}',
    "lone_surrogate": b'"\\ud800"',
    "nul_in_name": b'{"profile": "maxq\\u0000"}',
    "raw_nul_in_name": b"maxq\x00",
    "path_name": b"../../etc/passwd",
    "long_name": b'{"profile":"' + b"a" * 1000 + b'"}',
    "json_null": b"null",
    "json_true": b"true",
    "empty_object": b"{}",
    "extra_key": b'{"profile": "maxq", "run": "rm -rf /"}',
    "trailing_garbage": b'{"profile": "maxq"} trailing',
    "unterminated_string": b'"maxq',
    "unknown_profile": b"turbo",
}

# Well-formed bare names, refused only because no such profile exists.
UNKNOWN_NAMES = {"unknown_profile", "json_null", "json_true"}

# policy/set payloads refused, with what the answer's error must say (the field it names).
# The running section is fixed, with no power cap, thermal limit or schedule.
POLICY_HOSTILE: dict[str, tuple[bytes, str]] = {
    "unknown_policy": (b"turbo", "profile.policy: Input should be 'fixed', 'slo'"),
    "unknown_policy_json": (b'{"policy": "maxq"}', "profile.policy: Input should be"),
    "policy_number": (b'{"policy": 5}', "policy: Input should be a valid string"),
    "policy_list": (b'{"policy": ["slo"]}', "policy: Input should be a valid string"),
    "policy_null": (b'{"policy": null}', "policy: Input should be a valid string"),
    "no_policy": (b'{"governor": {"slo_latency_ms": 50}}', "policy: Field required"),
    "policy_too_long": (b'{"policy": "' + b"s" * 65 + b'"}', "policy: String should have at most"),
    "missing_power_cap": (b"power_cap", "profile: policy power_cap needs governor.power_cap_w"),
    "missing_thermal_limit": (b'"thermal"', "policy thermal needs governor.thermal_limit_c"),
    "missing_schedule": (b'{"policy": "schedule"}', "policy schedule needs governor.schedule"),
    "slo_target_null": (
        b'{"policy": "slo", "governor": {"slo_latency_ms": null}}',
        "profile.governor.slo_latency_ms: Input should be a valid number",
    ),
    "slo_target_text": (
        b'{"policy": "slo", "governor": {"slo_latency_ms": "fast"}}',
        "profile.governor.slo_latency_ms: Input should be a valid number",
    ),
    "slo_target_zero": (
        b'{"policy": "slo", "governor": {"slo_latency_ms": 0}}',
        "profile.governor.slo_latency_ms: Input should be greater than 0",
    ),
    "slo_target_nan": (
        b'{"policy": "slo", "governor": {"slo_latency_ms": NaN}}',
        "NaN, which is not a JSON number",
    ),
    "slo_target_inf": (
        b'{"policy": "slo", "governor": {"slo_latency_ms": 1e400}}',
        "profile.governor.slo_latency_ms: Input should be a finite number",
    ),
    "power_cap_text": (
        b'{"policy": "power_cap", "governor": {"power_cap_w": "lots"}}',
        "profile.governor.power_cap_w: Input should be a valid number",
    ),
    "power_cap_over_bound": (
        b'{"policy": "power_cap", "governor": {"power_cap_w": 5000}}',
        "profile.governor.power_cap_w: Input should be less than or equal to 1000",
    ),
    "bad_percentile": (
        b'{"policy": "slo", "governor": {"slo_percentile": "p50"}}',
        "profile.governor.slo_percentile: Input should be 'p95' or 'p99'",
    ),
    "bad_schedule_time": (
        b'{"policy": "schedule", "governor": {"schedule": [{"start": "25:00", "profile": "x"}]}}',
        "profile.governor.schedule[0].start: String should match pattern",
    ),
    "governor_list": (b'{"policy": "slo", "governor": []}', "governor: Input should be a valid"),
    "unknown_governor_key": (
        b'{"policy": "slo", "governor": {"turbo": 1}}',
        "profile.governor.turbo: unknown key",
    ),
    "device_local_key": (
        b'{"policy": "slo", "allow_reboot": true}',
        "allow_reboot: unknown key",
    ),
    "initial_number": (b'{"policy": "fixed", "initial": 7}', "initial: Input should be a valid"),
    "oversized": (
        b'{"policy": "slo", "initial": "' + b"a" * 5000 + b'"}',
        "payload too large: 5032 bytes (max 4096)",
    ),
    "too_deep": (
        b'{"policy": "slo", "governor": {"schedule": [[[["x"]]]]}}',
        "nested deeper than 4 levels",
    ),
    "duplicate_policy": (b'{"policy": "slo", "policy": "fixed"}', "duplicate keys: policy"),
}
