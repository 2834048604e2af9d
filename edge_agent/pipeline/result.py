"""One inference result: what the pipeline hands to the outbox, one per processed frame."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Result:
    """The decoded outputs of one frame plus where its time went.

    Attributes:
        camera: camera name from the config.
        frame: the frame's sequence number within its camera (0, 1, 2, ...).
        captured_at: wall-clock capture time (Unix seconds), for payload timestamps.
        captured_mono: monotonic capture time, on the pipeline's clock.
        queue_ms: capture until the batch that holds the frame was formed.
        preprocess_ms: resize/normalise time of the whole batch the frame was in.
        engine_ms: engine time of the whole batch the frame was in.
        latency_ms: capture until this result was built.
        batch_size: real frames in the batch (padding excluded).
        model: model name.
        precision: ``fp32``, ``fp16`` or ``int8``.
        provider: the execution provider that ran the batch (e.g. ``CPUExecutionProvider``).
        outputs: decoded outputs, e.g. ``{"top_k": [{"label", "index", "score"}, ...]}``.
        truth: the ground-truth label when the source knows it (synthetic labelled source).
    """

    camera: str
    frame: int
    captured_at: float
    captured_mono: float
    queue_ms: float
    preprocess_ms: float
    engine_ms: float
    latency_ms: float
    batch_size: int
    model: str
    precision: str
    provider: str
    outputs: dict[str, Any]
    truth: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``truth`` only when known)."""
        data = asdict(self)
        if self.truth is None:
            del data["truth"]
        return data
