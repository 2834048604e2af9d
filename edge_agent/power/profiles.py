"""Power profile files: pydantic models, loading, and matching a file to the detected board.

A profile file (``power_profiles/<board>.yaml``) names the boards it covers (device-tree
``compatible`` entries or ``model`` substrings, optionally the nvpmodel mode names the board's
conf must define) and its profiles. Each profile either names an nvpmodel mode, resolved to an id
through the board's own conf at apply time because ids differ between releases, or gives explicit
clock caps applied through sysfs. In both cases ``clocks`` is what verification reads back.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge_agent.config import CustomProfileConfig
from edge_agent.errors import ConfigError, FieldError, ProfileError

if TYPE_CHECKING:
    from importlib.abc import Traversable

logger = logging.getLogger(__name__)

BUNDLED_PACKAGE = "edge_agent.power_profiles"
RESERVED_NAMES = frozenset({"list", "show", "custom"})
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_CPU_NAME = re.compile(r"^cpu(\d+)$")

PositiveInt = Annotated[int, Field(gt=0)]
# "max": the highest frequency the board lists (an nvpmodel ``-1``, INT_MAX, lands there).
Cap = PositiveInt | Literal["max"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockCaps(_Model):
    """Clock caps a profile sets (sysfs) or expects after an nvpmodel switch (verification).

    Omitted fields are neither set nor checked.
    """

    gpu_max_hz: Cap | None = None
    cpu_max_khz: dict[str, Cap] = Field(
        default_factory=dict, description="cluster name (or cpuN) -> max kHz"
    )
    cpus_online: list[int] | None = None
    emc_max_hz: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="EMC cap in Hz; 0 means uncapped"
    )

    @field_validator("cpus_online")
    @classmethod
    def _cpu0_online(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if any(cpu < 0 for cpu in value):
                raise ValueError("CPU numbers must be >= 0")
            if len(set(value)) != len(value):
                raise ValueError("CPU numbers must not repeat")
            if 0 not in value:
                raise ValueError("cpu0 cannot be taken offline; include 0")
        return sorted(value) if value is not None else None

    def is_empty(self) -> bool:
        """Whether this sets/checks nothing."""
        return (
            self.gpu_max_hz is None
            and not self.cpu_max_khz
            and self.cpus_online is None
            and self.emc_max_hz is None
        )


class ProfileSpec(_Model):
    """One named profile in a file."""

    description: str = Field(min_length=1)
    nvpmodel: str | None = Field(
        default=None, description="nvpmodel mode NAME; ids are looked up in the board's conf"
    )
    fallback: str | None = Field(
        default=None,
        description="profile (same file) to use when the board's conf lacks this nvpmodel mode",
    )
    clocks: ClockCaps = Field(default_factory=ClockCaps)

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value.strip():
            raise ValueError("the description must be one line")
        return value.strip()

    @model_validator(mode="after")
    def _something_to_do(self) -> ProfileSpec:
        if self.nvpmodel is None and self.clocks.is_empty():
            raise ValueError("a profile needs an nvpmodel mode name or explicit clocks")
        return self


class MatchRules(_Model):
    """Which boards a file covers: any compatible entry or any model substring matches."""

    compatible: list[str] = Field(default_factory=list)
    model: list[str] = Field(default_factory=list, description="case-insensitive substrings")
    nvpmodel_modes: list[str] = Field(
        default_factory=list,
        description="mode names the board's nvpmodel conf must define (tells conf variants apart)",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> MatchRules:
        if not self.compatible and not self.model:
            raise ValueError("give at least one compatible string or model substring")
        return self


class ProfileFile(_Model):
    """A whole ``power_profiles/<board>.yaml``."""

    board: str = Field(min_length=1)
    description: str = ""
    match: MatchRules
    clusters: dict[str, list[int]] = Field(
        default_factory=dict, description="CPU cluster name -> CPU numbers"
    )
    profiles: dict[str, ProfileSpec] = Field(min_length=1)

    @field_validator("profiles")
    @classmethod
    def _names(cls, value: dict[str, ProfileSpec]) -> dict[str, ProfileSpec]:
        for name in value:
            check_profile_name(name)
        return value

    @model_validator(mode="after")
    def _fallbacks_known(self) -> ProfileFile:
        for name, spec in self.profiles.items():
            if spec.fallback is not None and (
                spec.nvpmodel is None or spec.fallback == name or spec.fallback not in self.profiles
            ):
                raise ValueError(
                    f"profile {name}: fallback {spec.fallback!r} is not another "
                    "profile of this file, or there is no nvpmodel mode to replace"
                )
        return self

    @model_validator(mode="after")
    def _clusters_known(self) -> ProfileFile:
        for name, spec in self.profiles.items():
            for cluster in spec.clocks.cpu_max_khz:
                if cluster not in self.clusters and not _CPU_NAME.match(cluster):
                    known = ", ".join(sorted(self.clusters)) or "none"
                    raise ValueError(
                        f"profile {name}: unknown CPU cluster {cluster!r} (clusters: {known}; "
                        "or use cpuN)"
                    )
        return self


def check_profile_name(name: str) -> str:
    """Reject names the CLI cannot address (``list``, ``show``) or that hold odd characters."""
    if not _NAME.match(name):
        raise ValueError(f"profile name {name!r} may hold only letters, digits, '_', '.', '-'")
    if name in RESERVED_NAMES:
        raise ValueError(f"profile name {name!r} is reserved")
    return name


@dataclass(frozen=True, slots=True)
class Profile:
    """A profile resolved for one board, ready to apply."""

    name: str
    description: str
    board: str
    nvpmodel_mode: str | None
    clocks: ClockCaps
    source: str
    clusters: Mapping[str, Sequence[int]]

    def cpus_of(self, cluster: str) -> list[int]:
        """CPU numbers of a cluster name or ``cpuN``."""
        if cluster in self.clusters:
            return list(self.clusters[cluster])
        match = _CPU_NAME.match(cluster)
        if match is None:
            raise ProfileError(f"profile {self.name}: unknown CPU cluster {cluster!r}")
        return [int(match.group(1))]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "description": self.description,
            "board": self.board,
            "nvpmodel_mode": self.nvpmodel_mode,
            "clocks": self.clocks.model_dump(exclude_none=True, exclude_defaults=True),
            "source": self.source,
        }


def _field_errors(err: ValidationError, source: str) -> list[FieldError]:
    items = []
    for detail in err.errors():
        path = ".".join(str(p) for p in detail["loc"]) or "(file)"
        items.append(FieldError(f"{source}: {path}", detail["msg"]))
    return items


def parse_profile_file(text: str, source: str) -> ProfileFile:
    """Parse and validate one profile file's text.

    Raises:
        ConfigError: bad YAML or a field failed validation; each error names ``source`` and the
            dotted field path (``jetson-tx2.yaml: profiles.maxq.clocks.gpu_max_hz: ...``).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError([FieldError(source, f"invalid YAML: {err}")], source) from err
    if not isinstance(data, dict):
        raise ConfigError([FieldError(source, "expected a mapping at the top level")], source)
    try:
        return ProfileFile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_field_errors(err, source), source) from err


def _bundle() -> Traversable:
    """The bundled ``power_profiles`` folder (package ``edge_agent.power_profiles``)."""
    try:
        return importlib.resources.files(BUNDLED_PACKAGE)
    except ModuleNotFoundError:
        # An editable install made before package-dir mapped the folder: use the checkout.
        checkout = Path(__file__).resolve().parents[2] / "power_profiles"
        if not checkout.is_dir():
            raise ProfileError(f"bundled profiles missing: no {BUNDLED_PACKAGE} package") from None
        logger.debug("%s not installed; reading %s", BUNDLED_PACKAGE, checkout)
        return checkout


def load_profile_files(extra_dirs: Iterable[Path] = ()) -> list[tuple[str, ProfileFile]]:
    """The bundled files plus ``*.yaml`` in ``extra_dirs``, as ``(source, file)`` pairs.

    A file from an extra directory replaces a bundled one with the same ``board`` id.

    Raises:
        ConfigError: any file is malformed (named in the error). ProfileError: a directory is
            missing.
    """
    loaded: dict[str, tuple[str, ProfileFile]] = {}
    for entry in sorted(_bundle().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and entry.is_file():
            source = f"power_profiles/{entry.name}"
            parsed = parse_profile_file(entry.read_text(encoding="utf-8"), source)
            loaded[parsed.board] = (source, parsed)
    for directory in extra_dirs:
        if not directory.is_dir():
            raise ProfileError(f"profiles directory {directory} does not exist")
        for path in sorted(directory.glob("*.yaml")):
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as err:
                raise ProfileError(f"{path}: cannot read ({err.strerror})") from err
            parsed = parse_profile_file(text, str(path))
            if parsed.board in loaded:
                logger.info("%s replaces the bundled profiles of %s", path, parsed.board)
            loaded[parsed.board] = (str(path), parsed)
    return list(loaded.values())


def _compatible_hit(rules: MatchRules, compatible: Sequence[str]) -> bool:
    return any(entry in compatible for entry in rules.compatible)


def _model_hit(rules: MatchRules, model: str) -> bool:
    lowered = model.lower()
    return any(part.lower() in lowered for part in rules.model)


def select_board_file(
    files: Sequence[tuple[str, ProfileFile]],
    *,
    model: str,
    compatible: Sequence[str],
    conf_modes: set[str] | None,
    forced_board: str | None = None,
) -> tuple[str, ProfileFile]:
    """Pick the profile file for a board.

    A file matches when a compatible entry or a model substring matches and, where the board
    has an nvpmodel conf (``conf_modes``), every ``match.nvpmodel_modes`` name is in it. Among
    matches, the file that proved more mode names wins (the Orin Nano "super" conf over the
    stock one); without a conf, the file asking for fewer wins.

    Raises:
        ProfileError: nothing matches; the message names the model and compatible strings.
    """
    if forced_board is not None:
        for source, parsed in files:
            if parsed.board == forced_board:
                return source, parsed
        names = ", ".join(sorted(f.board for _, f in files))
        raise ProfileError(f"no profile file for board {forced_board!r} (known: {names})")
    ranked: list[tuple[tuple[int, int, int], str, ProfileFile]] = []
    for source, parsed in files:
        rules = parsed.match
        by_compatible = _compatible_hit(rules, compatible)
        if not by_compatible and not _model_hit(rules, model):
            continue
        proven = 0
        if conf_modes is not None and rules.nvpmodel_modes:
            if not set(rules.nvpmodel_modes) <= conf_modes:
                continue
            proven = len(rules.nvpmodel_modes)
        key = (proven, -len(rules.nvpmodel_modes) if proven == 0 else 0, int(by_compatible))
        ranked.append((key, source, parsed))
    if not ranked:
        shown = ", ".join(compatible) or "(none)"
        raise ProfileError(
            f"no power profile file matches this board: model {model or '(unknown)'!r}, "
            f"compatible {shown}"
        )
    ranked.sort(key=lambda item: item[0], reverse=True)
    _, source, parsed = ranked[0]
    return source, parsed


def custom_caps(config: CustomProfileConfig) -> ClockCaps:
    """The clock caps of a ``profile.custom`` entry from the agent config."""
    return ClockCaps(
        gpu_max_hz=config.gpu_max_hz,
        cpu_max_khz=dict(config.cpu_max_khz),
        cpus_online=config.cpus_online,
        emc_max_hz=config.emc_max_hz,
    )


def resolve_profiles(
    source: str,
    parsed: ProfileFile,
    custom: Mapping[str, CustomProfileConfig],
    conf_modes: set[str] | None = None,
) -> list[Profile]:
    """The file's profiles in file order, then the config's custom profiles.

    With the board's conf mode names (``conf_modes``), a profile whose nvpmodel mode the conf
    lacks takes its ``fallback``'s mode and caps (a 3-mode Orin Nano super conf has no 7W: maxq
    becomes 15W), and says so in its description.

    Raises:
        ProfileError: a custom profile has a bad name or names an unknown CPU cluster.
    """
    clusters = {name: tuple(cpus) for name, cpus in parsed.clusters.items()}
    result: list[Profile] = []
    for name, own in parsed.profiles.items():
        spec, description = own, own.description
        if own.fallback and conf_modes is not None and own.nvpmodel not in conf_modes:
            spec = parsed.profiles[own.fallback]
            description = f"{spec.description} (this conf has no {own.nvpmodel} mode: {name} is "
            description += f"{own.fallback})"
        result.append(
            Profile(name, description, parsed.board, spec.nvpmodel, spec.clocks, source, clusters)
        )
    for name, entry in custom.items():
        try:
            check_profile_name(name)
        except ValueError as err:
            raise ProfileError(f"profile.custom: {err}") from err
        caps = custom_caps(entry)
        for cluster in caps.cpu_max_khz:
            if cluster not in clusters and not _CPU_NAME.match(cluster):
                known = ", ".join(sorted(clusters)) or "none"
                raise ProfileError(
                    f"profile.custom.{name}: unknown CPU cluster {cluster!r} on {parsed.board} "
                    f"(clusters: {known}; or use cpuN)"
                )
        if any(p.name == name for p in result):
            logger.warning("profile.custom.%s replaces the one in %s", name, source)
            result = [p for p in result if p.name != name]
        result.append(
            Profile(name, entry.description, parsed.board, None, caps, "config", clusters)
        )
    return result
