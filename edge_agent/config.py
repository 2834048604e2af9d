"""Agent configuration: ``AgentConfig``, ``load_config`` and field-path errors.

The sections (one frozen model per component, ``extra="forbid"``) live in
:mod:`edge_agent.config_sections` and are importable from here; components receive their own
section only. Validators are pure. ``load_config`` does the I/O: it reads the YAML, resolves
defaults that depend on the environment (``$STATE_DIRECTORY``), and checks that referenced
files (model, secrets) exist.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from edge_agent.config_sections import (
    CAMERA_SCHEMES,
    BatchingConfig,
    BoardConfig,
    CameraConfig,
    CustomProfileConfig,
    FleetConfig,
    ModelConfig,
    MqttConfig,
    PowerConfig,
    ProfileConfig,
    Provider,
    Section,
    TelemetryConfig,
    TlsConfig,
    default_device_id,
    redact_uri,
    topic_safe,
)
from edge_agent.errors import ConfigError, FieldError

__all__ = [
    "CAMERA_SCHEMES",
    "DEFAULT_STATE_DIR",
    "AgentConfig",
    "BatchingConfig",
    "BoardConfig",
    "CameraConfig",
    "CustomProfileConfig",
    "FleetConfig",
    "ModelConfig",
    "MqttConfig",
    "PowerConfig",
    "ProfileConfig",
    "Provider",
    "TelemetryConfig",
    "TlsConfig",
    "check_referenced_files",
    "default_state_dir",
    "errors_from_validation",
    "load_config",
    "parse_yaml",
    "read_secret",
    "redact_uri",
    "validate_config",
]

DEFAULT_STATE_DIR = Path("/var/lib/edge-agent")


def _default_cameras() -> list[CameraConfig]:
    return [CameraConfig(name="demo", uri="synthetic://digits", fps=30.0)]


class AgentConfig(Section):
    """The whole agent config file."""

    device_id: Annotated[str, Field(default_factory=default_device_id)]
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
        return topic_safe(value, "device_id")

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
    fleet = config.fleet.model_copy(
        update={
            "trusted_keys": rel(config.fleet.trusted_keys),
            "signing_key_file": rel(config.fleet.signing_key_file),
        }
    )
    return config.model_copy(
        update={
            "state_dir": state_dir,
            "model": model,
            "mqtt": mqtt,
            "profile": profile,
            "fleet": fleet,
        }
    )


def check_referenced_files(config: AgentConfig) -> list[FieldError]:
    """Files the config names that must exist: model, labels, secrets, profile dir."""
    checks: list[tuple[str, Path | None, bool]] = [
        ("model.path", config.model.path, False),
        ("model.labels", config.model.labels, False),
        ("mqtt.password_file", config.mqtt.password_file, False),
        ("profile.profiles_dir", config.profile.profiles_dir, True),
        ("fleet.signing_key_file", config.fleet.signing_key_file, False),
        ("fleet.trusted_keys", config.fleet.trusted_keys, True),
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
