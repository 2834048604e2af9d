"""Agent configuration: ``AgentConfig``, ``load_config`` and field-path errors.

The sections (one frozen model per component, ``extra="forbid"``) live in
:mod:`edge_agent.config_sections` and are importable from here; components receive their own
section only. Validators are pure. ``load_config`` does the I/O: it reads the YAML, resolves
defaults that depend on the environment (``$STATE_DIRECTORY``), and checks that referenced
files (model, secrets) exist.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator

from edge_agent.config_files import (
    check_file,
    check_state_dir,
    check_tls_files,
    warn_if_shared_secret,
)
from edge_agent.config_reader import parse_yaml, read_config_file, read_regular_file
from edge_agent.config_rules import MAX_ID_CHARS
from edge_agent.config_sections import (
    CAMERA_SCHEMES,
    BatchingConfig,
    BoardConfig,
    CameraConfig,
    CustomProfileConfig,
    FilePath,
    FleetConfig,
    MetricsConfig,
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
    "ExtraCheck",
    "FleetConfig",
    "MetricsConfig",
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
    "read_config_file",
    "read_secret",
    "redact_uri",
    "validate_config",
]

DEFAULT_STATE_DIR = Path("/var/lib/edge-agent")
MAX_SECRET_BYTES = 64 * 1024


def _default_cameras() -> list[CameraConfig]:
    return [CameraConfig(name="demo", uri="synthetic://digits", fps=30.0)]


class AgentConfig(Section):
    """The whole agent config file."""

    device_id: Annotated[
        str, Field(default_factory=default_device_id, min_length=1, max_length=MAX_ID_CHARS)
    ]
    root: FilePath = Path("/")
    state_dir: FilePath | None = Field(
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
    metrics: MetricsConfig | None = None

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


ExtraCheck = tuple[tuple[str, ...], Callable[["AgentConfig"], list[FieldError]]]
"""A check beyond the model (e.g. profile names against the board's files): the top-level
sections it reads, so it is skipped when one of them is already invalid, and the check."""


def validate_config(
    data: Mapping[str, Any],
    *,
    source: str = "",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    check_files: bool = True,
    extra_checks: Sequence[ExtraCheck] = (),
    warn: bool = True,
) -> AgentConfig:
    """Validate a config mapping, fill environment defaults and check referenced files.

    Relative file paths are resolved against ``base_dir`` (the config file's folder). Every
    problem is reported in one pass: the model's errors, then the file checks and
    ``extra_checks`` on the sections that did validate. A valid config with a secret that
    other users can read logs one WARNING (``warn=False``: a pre-check that loads again).

    Raises:
        ConfigError: with one ``FieldError`` per problem.
    """
    environ = os.environ if env is None else env
    errors: list[FieldError] = []
    broken: set[str] = set()
    config: AgentConfig | None
    try:
        config = AgentConfig.model_validate(dict(data))
    except ValidationError as err:
        errors = errors_from_validation(err)
        broken = {_top_key(detail["loc"]) for detail in err.errors()}
        config = _partial_config(data, broken)
    if config is not None:
        config = _resolve_paths(config, environ, base_dir)
        late: list[FieldError] = []
        if check_files:
            late += check_referenced_files(config)
        for sections, check in extra_checks:
            if not broken & set(sections):
                late += check(config)
        errors += [e for e in late if _section_of(e.path) not in broken]
    if errors:
        raise ConfigError(errors, source)
    assert config is not None
    if warn and check_files and config.mqtt.password_file is not None:
        warn_if_shared_secret("mqtt.password_file", config.mqtt.password_file)
    return config


def _top_key(loc: Sequence[int | str]) -> str:
    return str(loc[0]) if loc else "(top level)"


def _section_of(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _partial_config(data: Mapping[str, Any], broken: set[str]) -> AgentConfig | None:
    """The config without its invalid top-level sections, to check the rest in the same pass."""
    if "(top level)" in broken:
        return None
    try:
        return AgentConfig.model_validate({k: v for k, v in data.items() if k not in broken})
    except ValidationError:
        return None


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

    root = rel(config.root) or config.root
    state_dir = rel(config.state_dir)
    if state_dir is None:
        state_dir = default_state_dir(root, env)
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
            "root": root,
            "state_dir": state_dir,
            "model": model,
            "mqtt": mqtt,
            "profile": profile,
            "fleet": fleet,
        }
    )


def check_referenced_files(config: AgentConfig) -> list[FieldError]:
    """Files the config names: model, labels, secrets, profile dir, TLS files, video files.

    Each must exist and be a regular file (a FIFO would hang the reader); the TLS files must
    load; a secret readable by other users is logged as a WARNING.
    """
    checks: list[tuple[str, Path | None, bool]] = [
        ("model.path", config.model.path, False),
        ("model.labels", config.model.labels, False),
        ("mqtt.password_file", config.mqtt.password_file, False),
        ("profile.profiles_dir", config.profile.profiles_dir, True),
        ("fleet.signing_key_file", config.fleet.signing_key_file, False),
        ("fleet.trusted_keys", config.fleet.trusted_keys, True),
    ]
    tls = config.mqtt.tls
    if tls is not None:
        checks += [
            ("mqtt.tls.ca_file", tls.ca_file, False),
            ("mqtt.tls.cert_file", tls.cert_file, False),
            ("mqtt.tls.key_file", tls.key_file, False),
        ]
    problems: list[FieldError] = []
    for field, path, is_dir in checks:
        if path is not None:
            problem = check_file(field, path, directory=is_dir)
            if problem is not None:
                problems.append(problem)
    if config.state_dir is not None:
        problem = check_state_dir("state_dir", config.state_dir)
        if problem is not None:
            problems.append(problem)
    if tls is not None and not any(p.path.startswith("mqtt.tls") for p in problems):
        problems += check_tls_files(tls.ca_file, tls.cert_file, tls.key_file)
    for index, cam in enumerate(config.cameras):
        parts = urlsplit(cam.uri)
        if parts.scheme == "file":
            problem = check_file(f"cameras[{index}].uri", Path(parts.path))
            if problem is not None:
                problems.append(
                    FieldError(problem.path, problem.message.replace("file", "video file", 1))
                )
    return problems


def load_config(
    path: Path,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    extra_checks: Sequence[ExtraCheck] = (),
) -> AgentConfig:
    """Read a config file through the bounded reader, apply ``overrides``, and validate.

    ``overrides`` are top-level keys set by the command line (``--root``, ``--state-dir``);
    they replace the file's values.

    Raises:
        ConfigError: unreadable or oversized file, not UTF-8, YAML syntax error, too deep,
            duplicate keys, or invalid fields.
    """
    data = read_config_file(path)
    data.update(overrides or {})
    return validate_config(
        data,
        source=str(path),
        env=env,
        base_dir=path.parent.resolve(),
        extra_checks=extra_checks,
    )


def read_secret(path: Path) -> str:
    """Read a secret file (password), stripped of its trailing newline."""
    data = read_regular_file(path, MAX_SECRET_BYTES, "(secret)")
    try:
        return data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise ConfigError([FieldError("(secret)", f"{path} is not UTF-8")]) from err
