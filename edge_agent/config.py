"""Agent configuration: pydantic models, ``load_config`` and field-path errors.

Every section is its own frozen model with ``extra="forbid"``; components receive their own
section only. Validators are pure. ``load_config`` does the I/O: it reads the YAML, resolves
defaults that depend on the environment (``$STATE_DIRECTORY``), and checks that referenced
files (model, secrets) exist.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge_agent.errors import ConfigError, FieldError

DEFAULT_STATE_DIR = Path("/var/lib/edge-agent")
CAMERA_SCHEMES = ("csi", "v4l2", "rtsp", "rtsps", "file", "synthetic", "http", "https")
_TOPIC_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _topic_safe(value: str, what: str) -> str:
    if not _TOPIC_SAFE.match(value):
        raise ValueError(f"{what} {value!r} may hold only letters, digits, '_', '.' and '-'")
    return value


def _default_device_id() -> str:
    host = socket.gethostname().split(".")[0] or "edge"
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", host)
    return cleaned or "edge"


class BoardConfig(_Section):
    """Which board this is; normally detected from the device tree."""

    name: str | None = Field(
        default=None,
        description="Force a board profile file (e.g. jetson-tx2) instead of detection",
    )


class CustomProfileConfig(_Section):
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


class ProfileConfig(_Section):
    """DVFS profile policy."""

    initial: str | None = Field(default=None, description="Profile applied and verified at start")
    policy: Literal["fixed"] = "fixed"
    backend: Literal["auto", "nvpmodel", "sysfs", "jtop"] = "auto"
    allow_reboot: bool = False
    restore_on_exit: bool = False
    profiles_dir: Path | None = Field(
        default=None, description="Extra directory of <board>.yaml profile files"
    )
    custom: dict[str, CustomProfileConfig] = Field(default_factory=dict)
    switch_timeout_s: float = Field(default=15.0, gt=0, le=600)


class PowerConfig(_Section):
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


class ModelConfig(_Section):
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


class CameraConfig(_Section):
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
        return _topic_safe(value, "camera name")

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


class BatchingConfig(_Section):
    """Latency-bounded batching across cameras."""

    max_batch: int = Field(default=1, ge=1, le=256)
    max_delay_ms: float = Field(default=0.0, ge=0, le=10_000)
    latency_budget_ms: float | None = Field(default=None, gt=0, le=60_000)
    queue_size: int = Field(default=64, ge=1, le=100_000)


class TlsConfig(_Section):
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


class MqttConfig(_Section):
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


class TelemetryConfig(_Section):
    """Periodic telemetry."""

    interval_s: float = Field(default=10.0, gt=0, le=86_400)
    include_rails: bool = True


class FleetConfig(_Section):
    """Fleet config pushes over MQTT."""

    enabled: bool = False
    group: str | None = None
    signing_key_file: Path | None = None

    @field_validator("group")
    @classmethod
    def _group_safe(cls, value: str | None) -> str | None:
        return None if value is None else _topic_safe(value, "fleet group")


def _default_cameras() -> list[CameraConfig]:
    return [CameraConfig(name="demo", uri="synthetic://digits", fps=30.0)]


class AgentConfig(_Section):
    """The whole agent config file."""

    device_id: Annotated[str, Field(default_factory=_default_device_id)]
    root: Path = Path("/")
    state_dir: Path | None = Field(
        default=None, description="Default: $STATE_DIRECTORY, else /var/lib/edge-agent"
    )
    board: BoardConfig = Field(default_factory=BoardConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)
    power: PowerConfig = Field(default_factory=PowerConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    cameras: list[CameraConfig] = Field(default_factory=_default_cameras, min_length=1)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)

    @field_validator("device_id")
    @classmethod
    def _device_safe(cls, value: str) -> str:
        return _topic_safe(value, "device_id")

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, value: list[CameraConfig]) -> list[CameraConfig]:
        seen: set[str] = set()
        for cam in value:
            if cam.name in seen:
                raise ValueError(f"camera name {cam.name!r} is used twice")
            seen.add(cam.name)
        return value

    @model_validator(mode="after")
    def _initial_profile_known(self) -> AgentConfig:
        if self.profile.initial is not None and not self.profile.initial.strip():
            raise ValueError("profile.initial must be a profile name")
        return self

    @property
    def resolved_state_dir(self) -> Path:
        """The state directory after ``load_config`` filled the default."""
        return self.state_dir if self.state_dir is not None else DEFAULT_STATE_DIR


def redact_uri(uri: str) -> str:
    """The URI without its password, for logs and messages."""
    parts = urlsplit(uri)
    if parts.password:
        return uri.replace(f":{parts.password}@", ":***@")
    return uri


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += ("." if out else "") + item
    return out or "(top level)"


def errors_from_validation(err: ValidationError, prefix: str = "") -> list[FieldError]:
    """Turn pydantic errors into ``path.to.field: message`` items."""
    items: list[FieldError] = []
    for detail in err.errors():
        loc = tuple(part for part in detail["loc"] if not str(part).startswith("function-"))
        path = _loc_path(loc)
        if prefix:
            path = f"{prefix}.{path}" if path != "(top level)" else prefix
        message = detail["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if detail["type"] == "extra_forbidden":
            message = "unknown key"
        items.append(FieldError(path, message))
    return items


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse YAML text into a mapping.

    Raises:
        ConfigError: syntax error (with line and column) or a non-mapping document.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = err.problem or err.context or "syntax error"
        raise ConfigError([FieldError("(yaml)", f"{where}: {problem}")], source) from err
    except yaml.YAMLError as err:
        raise ConfigError([FieldError("(yaml)", str(err))], source) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [FieldError("(top level)", f"expected a mapping, got {type(data).__name__}")], source
        )
    return data


def validate_config(
    data: Mapping[str, Any],
    *,
    source: str = "",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    check_files: bool = True,
) -> AgentConfig:
    """Validate a config mapping, fill environment defaults and check referenced files.

    Relative file paths are resolved against ``base_dir`` (the config file's folder).

    Raises:
        ConfigError: with one ``FieldError`` per problem.
    """
    environ = os.environ if env is None else env
    try:
        config = AgentConfig.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(errors_from_validation(err), source) from err
    config = _resolve_paths(config, environ, base_dir)
    if check_files:
        problems = check_referenced_files(config)
        if problems:
            raise ConfigError(problems, source)
    return config


def default_state_dir(root: Path, env: Mapping[str, str]) -> Path:
    """``$STATE_DIRECTORY`` (systemd), else ``/var/lib/edge-agent`` under the root.

    A simulated or captured root keeps its state inside its own tree.
    """
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    if root == Path("/"):
        return DEFAULT_STATE_DIR
    return root / str(DEFAULT_STATE_DIR).lstrip("/")


def _resolve_paths(config: AgentConfig, env: Mapping[str, str], base: Path | None) -> AgentConfig:
    def rel(path: Path | None) -> Path | None:
        if path is None or path.is_absolute() or base is None:
            return path
        return base / path

    state_dir = config.state_dir
    if state_dir is None:
        state_dir = default_state_dir(config.root, env)
    model = config.model.model_copy(
        update={"path": rel(config.model.path), "labels": rel(config.model.labels)}
    )
    mqtt = config.mqtt
    creds = env.get("CREDENTIALS_DIRECTORY")
    password_file = mqtt.password_file
    if password_file is not None and not password_file.is_absolute():
        password_file = Path(creds) / password_file if creds else rel(password_file)
    tls = mqtt.tls
    if tls is not None:
        tls = tls.model_copy(
            update={
                "ca_file": rel(tls.ca_file),
                "cert_file": rel(tls.cert_file),
                "key_file": rel(tls.key_file),
            }
        )
    mqtt = mqtt.model_copy(update={"password_file": password_file, "tls": tls})
    profile = config.profile.model_copy(update={"profiles_dir": rel(config.profile.profiles_dir)})
    return config.model_copy(
        update={"state_dir": state_dir, "model": model, "mqtt": mqtt, "profile": profile}
    )


def check_referenced_files(config: AgentConfig) -> list[FieldError]:
    """Files the config names that must exist: model, labels, secrets, profile dir."""
    checks: list[tuple[str, Path | None, bool]] = [
        ("model.path", config.model.path, False),
        ("model.labels", config.model.labels, False),
        ("mqtt.password_file", config.mqtt.password_file, False),
        ("profile.profiles_dir", config.profile.profiles_dir, True),
        ("fleet.signing_key_file", config.fleet.signing_key_file, False),
    ]
    if config.mqtt.tls is not None:
        checks += [
            ("mqtt.tls.ca_file", config.mqtt.tls.ca_file, False),
            ("mqtt.tls.cert_file", config.mqtt.tls.cert_file, False),
            ("mqtt.tls.key_file", config.mqtt.tls.key_file, False),
        ]
    problems: list[FieldError] = []
    for field, path, is_dir in checks:
        if path is None:
            continue
        if is_dir and not path.is_dir():
            problems.append(FieldError(field, f"directory not found: {path}"))
        elif not is_dir and not path.is_file():
            problems.append(FieldError(field, f"file not found: {path}"))
    for index, cam in enumerate(config.cameras):
        parts = urlsplit(cam.uri)
        if parts.scheme == "file" and not Path(parts.path).is_file():
            problems.append(
                FieldError(f"cameras[{index}].uri", f"video file not found: {parts.path}")
            )
    return problems


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read, parse and validate a config file.

    Raises:
        ConfigError: unreadable file, YAML syntax error or invalid fields.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([FieldError("(file)", f"cannot read {path}: {err.strerror}")]) from err
    data = parse_yaml(text, str(path))
    return validate_config(data, source=str(path), env=env, base_dir=path.parent.resolve())


def read_secret(path: Path) -> str:
    """Read a secret file (password), stripped of its trailing newline."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as err:
        raise ConfigError([FieldError("(secret)", f"cannot read {path}: {err.strerror}")]) from err
