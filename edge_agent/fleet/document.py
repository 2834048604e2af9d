"""The fleet document: what a push may change, and the one seam where its bytes are parsed.

A document is JSON::

    {"version": 7, "target": "group:lobby", "sections": {"batching": {"max_batch": 4}},
     "not_before": 1767225600, "expires": 1767830400, "key_id": "ops-2026", "signature": "..."}

``sections`` holds only what a fleet may change (model, cameras, batching, profile,
telemetry). Device-local settings (broker, credentials, device id, root, state dir, the fleet
trust settings themselves) are refused by name. A model is referenced by path or HTTP(S) URL
plus its sha256, never sent inline.

:func:`parse_document` is the seam: ``loader`` turns the raw bytes into plain data within caps
(size, nesting depth, UTF-8, duplicate keys). The agent passes the one bounded inbound parser
every network payload goes through (``telemetry.inbound.decode_json``, with this module's
caps), so fleet documents are parsed by the same rules as every other message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator

from edge_agent.config import errors_from_validation
from edge_agent.config_sections import (
    BatchingConfig,
    CameraConfig,
    ProfileConfig,
    Provider,
    Section,
    TelemetryConfig,
)

MAX_DOCUMENT_BYTES = 128 * 1024  # AWS IoT Core's payload cap; a model never travels inline
MAX_DEPTH = 16
FLEET_SECTIONS = ("model", "cameras", "batching", "profile", "telemetry")
DEVICE_LOCAL = (
    "mqtt",
    "broker",
    "credentials",
    "device_id",
    "root",
    "state_dir",
    "fleet",
    "board",
    "power",
)
# Inside a pushable section, keys that name files on this device only.
DEVICE_LOCAL_IN_SECTION = {"profile": ("profiles_dir", "allow_reboot", "backend")}
_TARGET = re.compile(r"^(device|group):([A-Za-z0-9_.-]+)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Loader = Callable[[bytes], Any]


class DocumentRejected(ValueError):
    """A document that cannot be used; ``errors`` are ``field.path: message`` lines.

    Args:
        reason: one line for the operator.
        errors: field-path errors, when the document's shape is at fault.
        version: the document's version when it could be read, echoed in the report.
        key_id: the signing key named by the document, when it could be read.
    """

    def __init__(
        self,
        reason: str,
        errors: tuple[str, ...] = (),
        version: int | None = None,
        key_id: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors
        self.version = version
        self.key_id = key_id


class ModelRef(Section):
    """A model by path or URL, with the sha256 it must have; tuning fields as in ``model``."""

    path: str | None = None
    url: str | None = None
    sha256: str
    name: str | None = None
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    providers: list[Provider] | None = None
    decoder: Literal["auto", "classification", "yolov5", "yolov8", "raw"] = "auto"
    top_k: int = Field(default=3, ge=1, le=1000)
    conf_threshold: float = Field(default=0.25, ge=0, le=1)
    iou_threshold: float = Field(default=0.45, ge=0, le=1)
    warmup_runs: int = Field(default=2, ge=0, le=100)

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        value = value.lower()
        if not _SHA256.match(value):
            raise ValueError("sha256 must be 64 hexadecimal digits")
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be http:// or https:// with a host")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ModelRef:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path or url")
        return self


class FleetSections(Section):
    """The parts of the agent config a fleet may change."""

    model: ModelRef | None = None
    cameras: list[CameraConfig] | None = Field(default=None, min_length=1)
    batching: BatchingConfig | None = None
    profile: ProfileConfig | None = None
    telemetry: TelemetryConfig | None = None


class FleetDocument(Section):
    """A signed, versioned desired config for one device or one group."""

    version: int = Field(ge=1, le=2**53)
    target: str
    sections: FleetSections
    not_before: float | None = Field(default=None, description="Unix seconds")
    expires: float | None = Field(default=None, description="Unix seconds")
    key_id: str | None = Field(default=None, min_length=1, max_length=128)
    signature: str | None = Field(default=None, max_length=512)

    @field_validator("target")
    @classmethod
    def _target_form(cls, value: str) -> str:
        if not _TARGET.match(value):
            raise ValueError("target must be device:<id> or group:<name>")
        return value

    @model_validator(mode="after")
    def _window(self) -> FleetDocument:
        if (
            self.not_before is not None
            and self.expires is not None
            and self.expires <= self.not_before
        ):
            raise ValueError("expires must be after not_before")
        return self

    def section_data(self) -> dict[str, Any]:
        """The sections as given (unset fields left out), for a field-by-field merge."""
        return self.sections.model_dump(mode="json", exclude_unset=True)


def device_local_errors(data: Mapping[str, Any]) -> list[str]:
    """``field: message`` for each device-local setting the document tries to change."""
    errors = [
        f"{key}: device-local setting, cannot be pushed" for key in data if key in DEVICE_LOCAL
    ]
    sections = data.get("sections")
    if isinstance(sections, Mapping):
        for key, value in sections.items():
            if key in DEVICE_LOCAL:
                errors.append(f"sections.{key}: device-local setting, cannot be pushed")
            for local in DEVICE_LOCAL_IN_SECTION.get(key, ()):
                if isinstance(value, Mapping) and local in value:
                    errors.append(f"sections.{key}.{local}: device-local setting, cannot be pushed")
    return errors


def read_header(data: Any) -> tuple[int | None, str | None]:
    """The version and key id, when readable, so a refusal can still name them."""
    if not isinstance(data, Mapping):
        return None, None
    version = data.get("version")
    key_id = data.get("key_id")
    return (
        version if isinstance(version, int) and not isinstance(version, bool) else None,
        key_id if isinstance(key_id, str) else None,
    )


def validate_document(data: Any) -> FleetDocument:
    """The document model from plain data: device-local fields first, then the schema.

    Raises:
        DocumentRejected: naming each offending field path.
    """
    version, key_id = read_header(data)
    if not isinstance(data, Mapping):
        raise DocumentRejected("a fleet document must be a JSON object")
    local = device_local_errors(data)
    if local:
        raise DocumentRejected(
            "the document changes device-local settings", tuple(local), version, key_id
        )
    try:
        return FleetDocument.model_validate(dict(data))
    except ValidationError as err:
        errors = tuple(str(item) for item in errors_from_validation(err))
        raise DocumentRejected(
            "the document does not fit the schema", errors, version, key_id
        ) from err


def parse_document(raw: bytes, loader: Loader) -> tuple[dict[str, Any], FleetDocument]:
    """Bytes to ``(plain data, document)``; the data is what the signature covers.

    Raises:
        DocumentRejected: over a cap, not JSON, or not a valid document.
    """
    data = loader(raw)
    doc = validate_document(data)
    return dict(data), doc
