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
