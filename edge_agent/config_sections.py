"""The config sections: one frozen pydantic model per component, ``extra="forbid"``.

Each component receives its own section only. Validators are pure (no file, env or network
reads); :mod:`edge_agent.config` composes the sections into ``AgentConfig`` and loads files.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CAMERA_SCHEMES = ("csi", "v4l2", "rtsp", "rtsps", "file", "synthetic", "http", "https")
_TOPIC_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


class Section(BaseModel):
    """The base of every section: unknown keys are errors, and a loaded config is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def topic_safe(value: str, what: str) -> str:
    """``value`` if it is safe in an MQTT topic level; else ValueError naming ``what``."""
    if not _TOPIC_SAFE.match(value):
        raise ValueError(f"{what} {value!r} may hold only letters, digits, '_', '.' and '-'")
    return value


def default_device_id() -> str:
    """The short host name, cleaned to be topic-safe (``edge`` if there is none)."""
    host = socket.gethostname().split(".")[0] or "edge"
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", host)
    return cleaned or "edge"


class BoardConfig(Section):
    """Which board this is; normally detected from the device tree."""

    name: str | None = Field(
        default=None,
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
    schedule: list[ScheduleEntry] = Field(default_factory=list)
    dwell_s: float = Field(default=2.0, ge=0, le=3600)
    hysteresis: float = Field(default=0.05, ge=0, le=1)
    headroom: float = Field(default=0.15, ge=0, lt=1)
    window_s: float = Field(default=1.0, ge=0.2, le=60, description="One decision per window")


class ProfileConfig(Section):
    """DVFS profile policy."""

    initial: str | None = Field(default=None, description="Profile applied and verified at start")
    policy: Literal["fixed", "slo", "power_cap", "thermal", "schedule"] = "fixed"
    governor: GovernorConfig = Field(default_factory=GovernorConfig)
    backend: Literal["auto", "nvpmodel", "sysfs", "jtop"] = "auto"
    allow_reboot: bool = False
    restore_on_exit: bool = False
    profiles_dir: Path | None = Field(
        default=None, description="Extra directory of <board>.yaml profile files"
    )
    custom: dict[str, CustomProfileConfig] = Field(default_factory=dict)
    switch_timeout_s: float = Field(default=15.0, gt=0, le=600)

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
    interval_ms: float = Field(default=20.0, gt=0, le=60_000)
    buffer_s: float = Field(default=120.0, gt=0, le=86_400)
    idle_baseline_s: float = Field(
        default=0.0, ge=0, le=600, description="Measure idle power for this long at start"
    )


Provider = Literal["tensorrt", "cuda", "cpu"]


def _all_providers() -> list[Provider]:
    return ["tensorrt", "cuda", "cpu"]


class ModelConfig(Section):
    """The model the engine runs."""

    path: Path | None = Field(default=None, description="ONNX file; default: the bundled demo")
    name: str | None = None
    labels: Path | None = None
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

    name: str
    uri: str
    fps: float | None = Field(default=None, gt=0, le=1000, description="Target fps")
    every_nth: int = Field(default=1, ge=1, le=1000)
    loop: bool = True
    realtime: bool = True
    width: int | None = Field(default=None, gt=0, le=16384)
    height: int | None = Field(default=None, gt=0, le=16384)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)

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
        if parts.scheme == "csi" and not (parts.netloc or parts.path.strip("/")).isdigit():
            raise ValueError(f"camera URI {value!r}: csi:// takes a sensor number, e.g. csi://0")
        if parts.scheme in ("file", "v4l2") and not parts.path:
            raise ValueError(f"camera URI {value!r} has no path")
        return value


class BatchingConfig(Section):
    """Latency-bounded batching across cameras."""

    max_batch: int = Field(default=1, ge=1, le=256)
    max_delay_ms: float = Field(default=0.0, ge=0, le=10_000)
    latency_budget_ms: float | None = Field(default=None, gt=0, le=60_000)
    queue_size: int = Field(default=64, ge=1, le=100_000)


class TlsConfig(Section):
    """MQTT TLS files (paths, never inline keys)."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _cert_and_key(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class MqttConfig(Section):
    """Broker connection and outbox."""

    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = Field(
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
    topic_prefix: str = "edge"
    client_id: str | None = None
    outbox_max_mb: float = Field(default=64.0, gt=0, le=100_000)
    inflight_window: int = Field(default=100, ge=1, le=65535)
    ha_discovery: bool = False
    ha_prefix: str = "homeassistant"

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
        if not value or any(c in value for c in "#+") or value.startswith("/"):
            raise ValueError(
                f"topic prefix {value!r} must be non-empty, without '#', '+', or a leading '/'"
            )
        return value

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttConfig:
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file is set but username is not")
        return self


class TelemetryConfig(Section):
    """Periodic telemetry."""

    interval_s: float = Field(default=10.0, gt=0, le=86_400)
    include_rails: bool = True


class FleetConfig(Section):
    """Fleet config pushes over MQTT."""

    enabled: bool = False
    group: str | None = None
    signing_key_file: Path | None = None

    @field_validator("group")
    @classmethod
    def _group_safe(cls, value: str | None) -> str | None:
        return None if value is None else topic_safe(value, "fleet group")


def redact_uri(uri: str) -> str:
    """The URI without its password, for logs and messages."""
    parts = urlsplit(uri)
    if parts.password:
        return uri.replace(f":{parts.password}@", ":***@")
    return uri
