"""The config sections: one frozen pydantic model per component, ``extra="forbid"``.

Each component receives its own section only. Validators are pure (no file, env or network
reads); :mod:`edge_agent.config` composes the sections into ``AgentConfig`` and loads files.
"""

from __future__ import annotations

import re
import socket
from types import UnionType
from typing import Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge_agent.config_rules import (
    CAMERA_SCHEMES,
    CLIENT_ID,
    HOST,
    MAX_HOST_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_POWER_SAMPLES,
    MAX_PREFIX_CHARS,
    MAX_SIDE_PX,
    MAX_URI_CHARS,
    MIN_FPS,
    FilePath,
    check_synthetic_uri,
    topic_prefix_safe,
    topic_safe,
)

__all__ = [
    "CAMERA_SCHEMES",
    "BatchingConfig",
    "BoardConfig",
    "CameraConfig",
    "CustomProfileConfig",
    "FilePath",
    "FleetConfig",
    "ModelConfig",
    "MqttConfig",
    "PowerConfig",
    "ProfileConfig",
    "Provider",
    "Section",
    "TelemetryConfig",
    "TlsConfig",
    "default_device_id",
    "redact_uri",
    "topic_safe",
]

_DEVICE_CLEAN = re.compile(r"[^A-Za-z0-9_.-]")


def admitted_types(annotation: object) -> set[object]:
    """The classes an annotation admits, through unions and ``Optional``."""
    if get_origin(annotation) in (Union, UnionType):
        return {t for a in get_args(annotation) for t in admitted_types(a)}
    return {annotation}


class Section(BaseModel):
    """The base of every section: unknown keys are errors, and a loaded config is frozen.

    ``inf`` and ``nan`` are refused everywhere: no setting means either.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: object, info: ValidationInfo) -> object:
        """``true`` (YAML ``yes``) is not a number: pydantic would read it as 1, and
        ``power_cap_w: true`` would cap a board at 1 W."""
        if isinstance(value, bool) and info.field_name in cls.model_fields:
            kinds = admitted_types(cls.model_fields[info.field_name].annotation)
            if bool not in kinds and kinds & {int, float}:
                raise ValueError("expected a number, not true/false")
        return value


def default_device_id() -> str:
    """The short host name, cleaned to be topic-safe (``edge`` if there is none)."""
    host = socket.gethostname().split(".")[0] or "edge"
    cleaned = _DEVICE_CLEAN.sub("-", host)
    return cleaned or "edge"


class BoardConfig(Section):
    """Which board this is; normally detected from the device tree."""

    name: str | None = Field(
        default=None,
        max_length=MAX_NAME_CHARS,
        description="Force a board profile file (e.g. jetson-tx2) instead of detection",
    )


class CustomProfileConfig(Section):
    """A user profile with explicit clock caps, applied through sysfs."""

    description: str = "custom clock caps"
    gpu_max_hz: int | None = Field(default=None, gt=0)
    cpu_max_khz: dict[str, int] = Field(
        default_factory=dict, description="cluster name (or cpuN) -> max kHz"
    )
    cpus_online: list[int] | None = None
    emc_max_hz: int | None = Field(default=None, ge=0)

    @field_validator("cpu_max_khz")
    @classmethod
    def _positive_khz(cls, value: dict[str, int]) -> dict[str, int]:
        for name, khz in value.items():
            if khz <= 0:
                raise ValueError(f"{name}: {khz} kHz must be > 0")
        return value

    @field_validator("cpus_online")
    @classmethod
    def _cpu0_online(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if any(cpu < 0 for cpu in value):
                raise ValueError("CPU numbers must be >= 0")
            if 0 not in value:
                raise ValueError("cpu0 cannot be taken offline; include 0")
        return value


class ScheduleEntry(Section):
    """From ``start`` (local ``HH:MM``) on, the ``schedule`` policy runs ``profile``."""

    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    profile: str = Field(min_length=1)

    @property
    def start_s(self) -> float:
        hours, minutes = self.start.split(":")
        return int(hours) * 3600.0 + int(minutes) * 60.0


class GovernorConfig(Section):
    """Parameters of the closed-loop governor (``profile.policy`` other than ``fixed``)."""

    slo_latency_ms: float = Field(default=100.0, gt=0, le=60000)
    slo_percentile: Literal["p95", "p99"] = "p99"
    power_cap_w: float | None = Field(default=None, gt=0, le=1000)
    thermal_limit_c: float | None = Field(default=None, gt=0, le=125)
    thermal_band_c: float = Field(default=3.0, gt=0, le=30)
    schedule: list[ScheduleEntry] = Field(default_factory=list, max_length=96)
    dwell_s: float = Field(default=2.0, ge=0, le=3600)
    hysteresis: float = Field(default=0.05, ge=0, le=1)
    headroom: float = Field(default=0.15, ge=0, lt=1)
    window_s: float = Field(default=1.0, ge=0.2, le=60, description="One decision per window")


class ProfileConfig(Section):
    """DVFS profile policy."""

    initial: str | None = Field(
        default=None, max_length=MAX_NAME_CHARS, description="Profile applied and verified at start"
    )
    policy: Literal["fixed", "slo", "power_cap", "thermal", "schedule"] = "fixed"
    governor: GovernorConfig = Field(default_factory=GovernorConfig)
    backend: Literal["auto", "nvpmodel", "sysfs", "jtop"] = "auto"
    allow_reboot: bool = False
    restore_on_exit: bool = False
    profiles_dir: FilePath | None = Field(
        default=None, description="Extra directory of <board>.yaml profile files"
    )
    custom: dict[str, CustomProfileConfig] = Field(default_factory=dict)
    switch_timeout_s: float = Field(default=15.0, ge=0.1, le=600)

    @model_validator(mode="after")
    def _policy_needs(self) -> ProfileConfig:
        gov = self.governor
        if self.policy == "power_cap" and gov.power_cap_w is None:
            raise ValueError("policy power_cap needs governor.power_cap_w")
        if self.policy == "thermal" and gov.thermal_limit_c is None:
            raise ValueError("policy thermal needs governor.thermal_limit_c")
        if self.policy == "schedule" and not gov.schedule:
            raise ValueError("policy schedule needs governor.schedule entries")
        return self


class PowerConfig(Section):
    """Power monitor and sampler."""

    monitor: Literal["auto", "ina3221", "jtop", "nvml", "sim", "none"] = "auto"
    interval_ms: float = Field(default=20.0, ge=1, le=60_000)
    buffer_s: float = Field(default=120.0, gt=0, le=86_400)
    idle_baseline_s: float = Field(
        default=0.0, ge=0, le=600, description="Measure idle power for this long at start"
    )

    @model_validator(mode="after")
    def _buffer_bounded(self) -> PowerConfig:
        samples = self.buffer_s * 1000 / self.interval_ms
        if samples > MAX_POWER_SAMPLES:
            raise ValueError(
                f"buffer_s / interval_ms keeps {samples:.0f} samples; at most "
                f"{MAX_POWER_SAMPLES} (lengthen interval_ms or shorten buffer_s)"
            )
        return self


Provider = Literal["tensorrt", "cuda", "cpu"]


def _all_providers() -> list[Provider]:
    return ["tensorrt", "cuda", "cpu"]


class ModelConfig(Section):
    """The model the engine runs."""

    path: FilePath | None = Field(default=None, description="ONNX file; default: the bundled demo")
    name: str | None = Field(default=None, max_length=256)
    labels: FilePath | None = None
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    providers: list[Provider] = Field(default_factory=_all_providers, min_length=1)
    decoder: Literal["auto", "classification", "yolov5", "yolov8", "raw"] = "auto"
    top_k: int = Field(default=3, ge=1, le=1000)
    conf_threshold: float = Field(default=0.25, ge=0, le=1)
    iou_threshold: float = Field(default=0.45, ge=0, le=1)
    intra_op_threads: int = Field(default=0, ge=0, le=256)
    inter_op_threads: int = Field(default=0, ge=0, le=256)
    warmup_runs: int = Field(default=2, ge=0, le=100)

    @field_validator("providers")
    @classmethod
    def _unique_providers(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("providers must not repeat")
        return value


class CameraConfig(Section):
    """One capture source."""

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    uri: str = Field(min_length=1, max_length=MAX_URI_CHARS)
    fps: float | None = Field(default=None, ge=MIN_FPS, le=1000, description="Target fps")
    every_nth: int = Field(default=1, ge=1, le=1000)
    loop: bool = True
    realtime: bool = True
    width: int | None = Field(default=None, gt=0, le=MAX_SIDE_PX)
    height: int | None = Field(default=None, gt=0, le=MAX_SIDE_PX)
    reconnect_max_s: float = Field(default=30.0, ge=0.01, le=3600)

    @field_validator("name")
    @classmethod
    def _name_safe(cls, value: str) -> str:
        return topic_safe(value, "camera name")

    @field_validator("uri")
    @classmethod
    def _uri_known(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in CAMERA_SCHEMES:
            raise ValueError(
                f"unsupported camera URI {redact_uri(value)!r}; "
                f"the scheme must be one of {', '.join(CAMERA_SCHEMES)}"
            )
        if parts.scheme in ("rtsp", "rtsps", "http", "https") and not parts.hostname:
            raise ValueError(f"camera URI {redact_uri(value)!r} has no host")
        try:
            _ = parts.port  # urlsplit checks the port only when asked
        except ValueError as err:
            raise ValueError(f"camera URI {redact_uri(value)!r}: {err}") from None
        if parts.scheme == "csi" and not (parts.netloc or parts.path.strip("/")).isdigit():
            raise ValueError(f"camera URI {value!r}: csi:// takes a sensor number, e.g. csi://0")
        if parts.scheme in ("file", "v4l2") and not parts.path:
            raise ValueError(f"camera URI {value!r} has no path")
        if "\x00" in value:
            raise ValueError("camera URI contains a NUL character")
        if parts.scheme == "synthetic":
            check_synthetic_uri(value, None, None)
        return value

    @model_validator(mode="after")
    def _synthetic_size(self) -> CameraConfig:
        # The pattern falls back on width/height when its URI names no size.
        if urlsplit(self.uri).scheme == "synthetic":
            check_synthetic_uri(self.uri, self.width, self.height)
        return self


class BatchingConfig(Section):
    """Latency-bounded batching across cameras."""

    max_batch: int = Field(default=1, ge=1, le=256)
    max_delay_ms: float = Field(default=0.0, ge=0, le=10_000)
    latency_budget_ms: float | None = Field(default=None, ge=0.1, le=60_000)
    queue_size: int = Field(default=64, ge=1, le=100_000)


class TlsConfig(Section):
    """MQTT TLS files (paths, never inline keys)."""

    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _cert_and_key(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class MqttConfig(Section):
    """Broker connection and outbox."""

    host: str = Field(default="localhost", max_length=MAX_HOST_CHARS)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = Field(default=None, min_length=1, max_length=1024)
    password_file: FilePath | None = Field(
        default=None,
        description="File holding the password; relative names are looked up in "
        "$CREDENTIALS_DIRECTORY (systemd LoadCredential=)",
    )
    password: object = Field(default=None, exclude=True, description="Rejected: use password_file")
    tls: TlsConfig | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_max_s: int = Field(
        default=30, ge=1, le=3600, description="Longest wait between reconnect attempts"
    )
    topic_prefix: str = Field(default="edge", max_length=MAX_PREFIX_CHARS)
    client_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    outbox_max_mb: float = Field(default=64.0, gt=0, le=100_000)
    inflight_window: int = Field(default=100, ge=1, le=65535)
    ha_discovery: bool = False
    ha_prefix: str = Field(default="homeassistant", max_length=MAX_PREFIX_CHARS)

    @field_validator("password", mode="before")
    @classmethod
    def _no_inline_password(cls, value: object) -> object:
        if value is not None:
            raise ValueError(
                "inline passwords are not allowed: put the password in a file and set "
                "mqtt.password_file"
            )
        return None

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_safe(cls, value: str) -> str:
        return topic_prefix_safe(value, "topic prefix")

    @field_validator("ha_prefix")
    @classmethod
    def _ha_prefix_safe(cls, value: str) -> str:
        return topic_prefix_safe(value, "Home Assistant prefix")

    @field_validator("host")
    @classmethod
    def _host_valid(cls, value: str) -> str:
        if not value:
            raise ValueError("the broker host must not be empty ('embedded' runs one in-process)")
        if not HOST.match(value.strip("[]")) or value.startswith("-"):
            shown = value if len(value) <= 80 else value[:80] + "..."
            raise ValueError(f"broker host {shown!r} is not a host name or IP address")
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id_valid(cls, value: str | None) -> str | None:
        if value is not None and not CLIENT_ID.match(value):
            shown = value if len(value) <= 80 else value[:80] + "..."
            raise ValueError(
                f"client_id {shown!r} may hold only letters, digits, '_', '.', ':' and '-'"
            )
        return value

    @field_validator("username")
    @classmethod
    def _username_printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("username must not contain control characters")
        return value

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttConfig:
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file is set but username is not")
        return self


class TelemetryConfig(Section):
    """Periodic telemetry."""

    interval_s: float = Field(default=10.0, ge=0.1, le=86_400)
    include_rails: bool = True


class FleetConfig(Section):
    """Fleet config pushes over MQTT (``edge_agent.fleet``)."""

    enabled: bool = False
    group: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    groups: list[str] = Field(
        default_factory=list, max_length=64, description="More groups this device is in"
    )
    signing_key_file: FilePath | None = None
    trusted_keys: FilePath | None = Field(
        default=None,
        description="Folder of Ed25519 public keys, <key_id>.pub; unset accepts unsigned pushes",
    )
    health_window_s: float = Field(default=10.0, gt=0, le=3600)
    health_min_results: int = Field(default=3, ge=0, le=1_000_000)
    health_latency_factor: float = Field(
        default=3.0, ge=1.0, le=1000.0, description="p95 latency may grow by at most this factor"
    )
    max_model_mb: float = Field(default=512.0, gt=0, le=100_000)

    @field_validator("group")
    @classmethod
    def _group_safe(cls, value: str | None) -> str | None:
        return None if value is None else topic_safe(value, "fleet group")

    @field_validator("groups")
    @classmethod
    def _groups_safe(cls, value: list[str]) -> list[str]:
        for group in value:
            if len(group) > MAX_NAME_CHARS:
                raise ValueError(f"fleet group longer than {MAX_NAME_CHARS} characters")
        return [topic_safe(group, "fleet group") for group in value]

    def member_groups(self) -> list[str]:
        """Every group this device is in, ``group`` first, without repeats."""
        out = [self.group] if self.group else []
        return out + [g for g in self.groups if g not in out]


class MetricsConfig(Section):
    """The Prometheus endpoint (off unless the section is present)."""

    port: int = Field(default=9101, ge=0, le=65535, description="0: any free port")
    bind: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on")


def redact_uri(uri: str) -> str:
    """The URI without its password, for logs and messages."""
    parts = urlsplit(uri)
    if parts.password:
        return uri.replace(f":{parts.password}@", ":***@")
    return uri
