"""Board detection from the device tree and ``/etc/nv_tegra_release``.

``/proc/device-tree/model`` and ``compatible`` hold NUL-terminated strings (``compatible`` is a
NUL-separated list, most specific first). A machine without them is simply not a Jetson.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

MODEL_PATH = "proc/device-tree/model"
COMPATIBLE_PATH = "proc/device-tree/compatible"
RELEASE_PATH = "etc/nv_tegra_release"
# "# R32 (release), REVISION: 7.1, GCID: ..., BOARD: t186ref, ..."
_RELEASE = re.compile(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+(?:\.\d+)*)")
_PART = re.compile(r"p(\d{4})-(\d{4})")

# Module part numbers (the pNNNN-XXXX after "+" in compatible) -> board name. Orin NX and
# Orin Nano share p3767 and differ by SKU.
_MODULE_SLUGS: dict[str, str] = {
    "2180": "jetson-tx1",
    "3310": "jetson-tx2",
    "3489": "jetson-tx2",
    "3636": "jetson-tx2-nx",
    "3448": "jetson-nano",
    "2888": "jetson-agx-xavier",
    "3668": "jetson-xavier-nx",
    "3701": "jetson-agx-orin",
}
_P3767_SLUGS = {"0000": "jetson-orin-nx", "0001": "jetson-orin-nx"}
# Fallback on the model string and board-name compatibles (checked in order, lower case).
_NAME_SLUGS: tuple[tuple[str, str], ...] = (
    ("orin nano", "jetson-orin-nano"),
    ("orin nx", "jetson-orin-nx"),
    ("agx orin", "jetson-agx-orin"),
    ("xavier nx", "jetson-xavier-nx"),
    ("xavier-nx", "jetson-xavier-nx"),
    ("agx xavier", "jetson-agx-xavier"),
    ("galen", "jetson-agx-xavier"),
    ("tx2 nx", "jetson-tx2-nx"),
    ("tx2", "jetson-tx2"),
    ("quill", "jetson-tx2"),
    ("nano", "jetson-nano"),
    ("tx1", "jetson-tx1"),
)


@dataclass(frozen=True, slots=True)
class BoardInfo:
    """What the device tree and L4T release file say about this machine.

    Attributes:
        model: the device-tree model (``quill``, ``NVIDIA Jetson Orin Nano Developer Kit``).
        compatible: device-tree compatible strings, most specific first.
        l4t_release: ``R32.7.1`` from ``/etc/nv_tegra_release``, or None.
        is_jetson: a Tegra SoC, an L4T release, or "Jetson" in the model.
        soc: ``tegra186``/``tegra194``/``tegra234``/..., or None.
        slug: board name as profile files use it (``jetson-tx2``), or None when unknown.
    """

    model: str
    compatible: tuple[str, ...]
    l4t_release: str | None
    is_jetson: bool
    soc: str | None = None
    slug: str | None = None


def parse_release(text: str) -> str | None:
    """``# R32 (release), REVISION: 7.1, ...`` -> ``R32.7.1``; None when it does not match."""
    match = _RELEASE.search(text)
    return f"R{match.group(1)}.{match.group(2)}" if match else None


def board_slug(model: str, compatible: tuple[str, ...]) -> str | None:
    """The board name for profile lookup, from module part numbers, then the model string."""
    for entry in compatible:
        for module in entry.split("+"):
            match = _PART.search(module)
            if match is None:
                continue
            number, sku = match.groups()
            if number == "3767":
                return _P3767_SLUGS.get(sku, "jetson-orin-nano")
            if number in _MODULE_SLUGS:
                return _MODULE_SLUGS[number]
    names = [model.lower(), *(c.lower() for c in compatible)]
    for key, slug in _NAME_SLUGS:
        if any(key in name for name in names):
            return slug
    return None


def _read_dt(root: Root, rel: str) -> bytes | None:
    path = root.resolve(rel)
    if not path.is_file():
        return None
    try:
        return path.read_bytes()
    except OSError as err:
        logger.warning("cannot read %s: %s", path, err.strerror)
        return None


def detect_board(root: Root) -> BoardInfo:
    """Read the board identity under ``root``; missing files give ``is_jetson=False``."""
    raw_model = _read_dt(root, MODEL_PATH)
    model = raw_model.decode("utf-8", "replace").strip("\x00").strip() if raw_model else ""
    raw_compat = _read_dt(root, COMPATIBLE_PATH) or b""
    compatible = tuple(
        part.decode("utf-8", "replace").strip() for part in raw_compat.split(b"\x00") if part
    )
    release: str | None = None
    release_file = root.resolve(RELEASE_PATH)
    if release_file.is_file():
        try:
            release = parse_release(release_file.read_text(encoding="utf-8", errors="replace"))
        except OSError as err:
            logger.warning("cannot read %s: %s", release_file, err.strerror)
    soc = next(
        (c.split(",", 1)[1] for c in compatible if c.startswith("nvidia,tegra")),
        None,
    )
    is_jetson = soc is not None or release is not None or "jetson" in model.lower()
    slug = board_slug(model, compatible) if is_jetson else None
    info = BoardInfo(model, compatible, release, is_jetson, soc, slug)
    logger.debug("board: %s", info)
    return info
