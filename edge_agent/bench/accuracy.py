"""``bench --accuracy``: top-1 of the engine the bench ran, on the demo model's labelled set.

The images go through the pipeline's preprocessing and the bench's own engine (same provider,
same precision flags), so each precision's figure is that precision's: a TensorRT FP16 or INT8
engine answers for itself. The simulated engine does no compute and has no accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_agent.bench.runner import BatchRunner, OrtRunner
from edge_agent.errors import InferenceError
from edge_agent.pipeline.engine import Engine
from edge_agent.pipeline.model_meta import ModelMeta, load_model_meta
from edge_agent.pipeline.optimize import SYNTHETIC, labelled_images
from edge_agent.pipeline.preprocess import Preprocessor

HOLDOUT_LIMIT = 1000


def engine_top1(
    engine: Engine, meta: ModelMeta, images: Sequence[np.ndarray], labels: np.ndarray
) -> float:
    """Fraction of ``images`` whose arg-max class is their label."""
    rows = engine.max_batch()
    pre = Preprocessor(meta.preprocess, engine.input, max(rows, engine.batch_rows(rows)))
    hits = 0
    for start in range(0, len(images), rows):
        chunk = images[start : start + rows]
        for row, image in enumerate(chunk):
            pre.fill(row, image)
        pre.clear(len(chunk))
        (first, *_) = engine.run(pre.buffer, len(chunk))
        scores = np.asarray(first)[: len(chunk)].reshape(len(chunk), -1)
        hits += int(np.sum(np.argmax(scores, axis=1) == labels[start : start + len(chunk)]))
    return hits / len(images) if len(images) else 0.0


def demo_top1(runner: BatchRunner) -> float:
    """Top-1 of the bench's engine on the demo model's labelled holdout.

    Raises:
        InferenceError: the engine is simulated (no compute, so no accuracy).
    """
    if not isinstance(runner, OrtRunner):
        raise InferenceError("the simulated engine does no compute: it has no accuracy")
    meta = load_model_meta(runner.engine.model_path)
    images, labels = labelled_images(SYNTHETIC, meta, HOLDOUT_LIMIT)
    return engine_top1(runner.engine, meta, images, labels)
