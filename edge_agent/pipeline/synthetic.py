"""Deterministic synthetic camera frames.

``synthetic://digits`` shows the demo model's held-out digits, each with its true label, so
accuracy can be measured through the whole pipeline; ``synthetic://pattern`` is a moving test
pattern of any size.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from edge_agent.config import CameraConfig
from edge_agent.pipeline.model_meta import load_holdout
from edge_agent.pipeline.source_error import SourceUnavailable


def synthetic_frames(
    kind: str, query: dict[str, str], config: CameraConfig
) -> Iterator[tuple[np.ndarray, str | None]]:
    """Deterministic frames: ``digits`` (labelled held-out digits) or ``pattern``.

    Raises:
        SourceUnavailable: an unknown kind or bad parameters.
    """
    try:
        if kind == "digits":
            size = int(query.get("size", "64"))
            return _digit_frames(size, config.loop)
        if kind == "pattern":
            width = int(query.get("w", str(config.width or 320)))
            height = int(query.get("h", str(config.height or 240)))
            if width <= 0 or height <= 0:
                raise ValueError(f"size {width}x{height} must be positive")
            return _pattern_frames(width, height, config.loop)
    except ValueError as err:
        raise SourceUnavailable(f"synthetic://{kind}: bad parameter: {err}") from err
    raise SourceUnavailable(f"synthetic://{kind}: unknown kind (use digits or pattern)")


def _digit_frames(size: int, loop: bool) -> Iterator[tuple[np.ndarray, str | None]]:
    images, labels = load_holdout()
    # Nearest-neighbour upscaling by an integer factor keeps every 8x8 value exact, so an
    # INTER_AREA downscale in preprocessing gives back the held-out pixels.
    frames = [
        cv2.cvtColor(
            cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR
        )
        for img in images
    ]
    truths = [str(int(label)) for label in labels]
    while True:
        for frame, truth in zip(frames, truths, strict=True):
            yield frame.copy(), truth
        if not loop:
            return


def _pattern_frames(width: int, height: int, loop: bool) -> Iterator[tuple[np.ndarray, None]]:
    ramp_x = np.linspace(0, 255, width, dtype=np.float32)[np.newaxis, :]
    ramp_y = np.linspace(0, 255, height, dtype=np.float32)[:, np.newaxis]
    base = np.dstack(
        [np.broadcast_to(ramp_x, (height, width)), np.broadcast_to(ramp_y, (height, width)),
         np.full((height, width), 128, np.float32)]
    ).astype(np.uint8)  # fmt: skip
    side = max(1, min(width, height) // 4)
    steps = 240
    while True:
        for index in range(steps):
            image = base.copy()
            # A bright square bouncing around, so consecutive frames always differ.
            x = (index * 3) % (width - side + 1)
            y = index % (height - side + 1)
            image[y : y + side, x : x + side] = 255
            yield image, None
        if not loop:
            return
