"""Value rules the config sections share: bounds, topic-safe names, paths, synthetic URIs.

Pure functions and constants (no I/O), kept apart from the section models so each stays small.
The caps keep every MQTT topic and client id this agent builds far below MQTT's 65,535-byte
limit, and every value that sizes a buffer or a sleep inside what a thread survives.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from pydantic import AfterValidator

CAMERA_SCHEMES = ("csi", "v4l2", "rtsp", "rtsps", "file", "synthetic", "http", "https")
SYNTHETIC_KINDS = ("digits", "pattern")
TOPIC_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")
HOST = re.compile(r"^[A-Za-z0-9_.:%-]+$")

# Bounds on values that become MQTT topic levels or client ids. MQTT allows 65,535 bytes per
# topic; these caps keep every topic this agent builds far below that and readable.
MAX_ID_CHARS = 128  # device_id, client_id
MAX_NAME_CHARS = 64  # camera names, fleet group
MAX_PREFIX_CHARS = 256  # topic_prefix, ha_prefix
MAX_HOST_CHARS = 253  # a DNS name
MAX_URI_CHARS = 4096
MIN_FPS = 0.01  # one frame per 100 s; below it the pacing arithmetic overflows
MAX_SIDE_PX = 8192  # a camera's requested width or height
MAX_SYNTHETIC_PIXELS = 3840 * 2160  # a synthetic frame (4K UHD)
MAX_DIGIT_SIZE = 1024  # synthetic://digits?size=N
MAX_POWER_SAMPLES = 1_000_000  # the sampler's ring buffer
MAX_PATH_CHARS = 4096  # Linux PATH_MAX


def _path_safe(value: Path) -> Path:
    text = str(value)
    if "\x00" in text:
        raise ValueError("a path must not contain a NUL character")
    if len(text) > MAX_PATH_CHARS:
        raise ValueError(f"a path may hold at most {MAX_PATH_CHARS} characters")
    return value


FilePath = Annotated[Path, AfterValidator(_path_safe)]
"""A path in the config: no NUL (the OS refuses it) and no longer than PATH_MAX."""


def topic_safe(value: str, what: str) -> str:
    """``value`` if it is safe in an MQTT topic level; else ValueError naming ``what``."""
    if not TOPIC_SAFE.match(value):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise ValueError(f"{what} {shown!r} may hold only letters, digits, '_', '.' and '-'")
    return value


def topic_prefix_safe(value: str, what: str) -> str:
    """A topic prefix: one or more ``/``-separated topic-safe levels (no wildcards, spaces,
    NUL, empty levels, or a leading or trailing ``/``); else ValueError naming ``what``."""
    if not value or any(not TOPIC_SAFE.match(level) for level in value.split("/")):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise ValueError(
            f"{what} {shown!r} must be '/'-separated levels of letters, digits, '_', '.' and "
            "'-' (no spaces, '#', '+', empty levels, or leading or trailing '/')"
        )
    return value


def check_synthetic_uri(value: str, width: int | None, height: int | None) -> None:
    """Refuse an unknown synthetic kind, unknown or out-of-range parameters (ValueError)."""
    parts = urlsplit(value)
    kind = parts.netloc or parts.path.strip("/")
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; use {' or '.join(SYNTHETIC_KINDS)}")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    allowed = {"digits": {"size"}, "pattern": {"w", "h"}}[kind]
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise ValueError(f"synthetic://{kind}: unknown parameter(s) {', '.join(unknown)}")
    try:
        numbers = {k: int(v) for k, v in query.items()}
    except ValueError:
        raise ValueError(f"synthetic://{kind}: parameters must be whole numbers") from None
    if kind == "digits":
        size = numbers.get("size", 64)
        if not 8 <= size <= MAX_DIGIT_SIZE:
            raise ValueError(f"synthetic://digits: size {size} must be 8..{MAX_DIGIT_SIZE}")
        return
    w, h = numbers.get("w", width or 320), numbers.get("h", height or 240)
    if w < 1 or h < 1 or w * h > MAX_SYNTHETIC_PIXELS:
        raise ValueError(
            f"synthetic://pattern: a {w}x{h} frame must be at least 1x1 and at most "
            f"{MAX_SYNTHETIC_PIXELS} pixels (3840x2160)"
        )
