"""The running config: the local config file, then group documents, then the device document.

A later source overrides an earlier one field by field inside a section (``batching``,
``profile``, ``telemetry``), and inside the sections' own blocks (``profile.governor``): a
push names only what it changes. Lists (``cameras``, a governor ``schedule``) and ``model``
are replaced whole. The result goes through the agent's own ``AgentConfig`` model, so a push
is checked like a config file.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge_agent.config import AgentConfig, ModelConfig, errors_from_validation
from edge_agent.fleet.document import DocumentRejected, ModelRef

MODELS_DIR = "fleet-models"


def source_order(sources: Collection[str], device_id: str, groups: Sequence[str]) -> list[str]:
    """Group sources in the device's group order, then the device's own."""
    order = [f"group:{g}" for g in groups if f"group:{g}" in sources]
    if f"device:{device_id}" in sources:
        order.append(f"device:{device_id}")
    return order


def model_file(ref: ModelRef, models_dir: Path) -> Path:
    """Where the referenced model is on this device (a URL is fetched there, by sha256)."""
    if ref.url is not None:
        return models_dir / f"{ref.sha256}.onnx"
    path = Path(ref.path or "")
    return path if path.is_absolute() else models_dir / path


def _model_section(ref: ModelRef, models_dir: Path) -> dict[str, Any]:
    fields = ref.model_dump(exclude={"path", "url", "sha256"}, exclude_none=True)
    return {**ModelConfig().model_dump(), **fields, "path": model_file(ref, models_dir)}


def overlay(under: Any, over: Any) -> Any:
    """``over`` on top of ``under``: mappings merge key by key, all the way down; anything
    else (a list, a value) from ``over`` replaces what was there."""
    if isinstance(under, Mapping) and isinstance(over, Mapping):
        merged = dict(under)
        for key, value in over.items():
            merged[key] = overlay(under.get(key), value)
        return merged
    return over


def effective_config(
    base: AgentConfig,
    sections_by_source: Mapping[str, Mapping[str, Any]],
    order: Sequence[str],
    models_dir: Path,
) -> tuple[AgentConfig, ModelRef | None]:
    """The config to run and the model reference it uses (None: the local one).

    Raises:
        DocumentRejected: the merged config is invalid, naming each field path.
    """
    data = base.model_dump()
    model_ref: ModelRef | None = None
    for source in order:
        sections = sections_by_source[source]
        for name, value in sections.items():
            if name == "model":
                model_ref = ModelRef.model_validate(value)
                data["model"] = _model_section(model_ref, models_dir)
            elif name == "cameras":
                data["cameras"] = list(value)
            else:
                data[name] = overlay(data.get(name), value)
    try:
        return AgentConfig.model_validate(data), model_ref
    except ValidationError as err:
        errors = tuple(str(item) for item in errors_from_validation(err, "sections"))
        raise DocumentRejected("the merged config is invalid", errors) from err
