"""``check-config --deep``: load the model as ``run`` would, without starting anything.

The pipeline is built from the config's cameras, model and batching and loaded: the ONNX
Runtime session, the model metadata, the decoder, and the check that every camera can feed
the model's input. Nothing is captured and no thread starts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from edge_agent.clock import SystemClock
from edge_agent.config import AgentConfig
from edge_agent.errors import ConfigError, FieldError, InferenceError
from edge_agent.pipeline.result import Result
from edge_agent.pipeline.runner import Pipeline

__all__ = ["check_model"]


def _discard(result: Result) -> None:
    """Results never arrive: the pipeline is loaded, not started."""


def check_model(config: AgentConfig) -> list[FieldError]:
    """Problems loading the model for this config (``model: ...``); empty when it loads."""
    # Engine caches (TensorRT) go to a scratch folder: a check must not touch the state dir.
    with tempfile.TemporaryDirectory(prefix="edge-agent-check-") as scratch:
        pipeline = Pipeline(
            config.cameras,
            config.model,
            config.batching,
            Path(scratch),
            SystemClock(),
            _discard,
        )
        try:
            pipeline.load()
        except InferenceError as err:
            return [FieldError("model", str(err))]
        except ConfigError as err:
            return [FieldError(f"model.{e.path}", e.message) for e in err.errors]
    return []
