"""Access to the real CLI captures in tests/data/captures/."""

from __future__ import annotations

from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"


def capture(name: str) -> str:
    """The text of one capture file."""
    return (CAPTURES / name).read_text(encoding="utf-8")
