"""Exception tree for edge-agent.

::

    EdgeAgentError
    ├── ConfigError            invalid config file or push (carries field-path errors)
    ├── HardwareError          anything under --root or a device CLI
    │   ├── SysfsError         a file read/write failed or read back a different value
    │   ├── CommandError       a device CLI failed or printed something unparseable
    │   │   └── CommandTimeout a device CLI ran past its timeout
    │   └── RebootRequired     the requested nvpmodel mode needs a reboot
    ├── ProfileError           unknown profile, no profile file for the board, verify failed
    ├── GovernorUnavailable    the board's frequency tables cannot be read: no governor
    │   └── GovernorRefused    the policy names what this board lacks (a schedule's profile)
    ├── InferenceError         model load, provider or decode failure
    └── TelemetryError         MQTT, outbox or broker failure
"""

from __future__ import annotations

from dataclasses import dataclass


class EdgeAgentError(Exception):
    """Base class of every error edge-agent raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One config problem: a dotted field path and a message."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(EdgeAgentError):
    """A config file or push failed validation."""

    def __init__(self, errors: list[FieldError], source: str = "") -> None:
        self.errors = errors
        self.source = source
        lines = "\n".join(str(e) for e in errors)
        super().__init__(f"{source}: invalid config\n{lines}" if source else lines)


class HardwareError(EdgeAgentError):
    """A hardware file or device command failed."""


class SysfsError(HardwareError):
    """A file under the root could not be read/written, or read back a different value."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class CommandError(HardwareError):
    """A device command failed, was missing, or printed output we cannot parse."""

    def __init__(self, argv: list[str], message: str, output: str = "") -> None:
        self.argv = argv
        self.output = output
        detail = f"\n--- output ---\n{output.rstrip()}" if output.strip() else ""
        super().__init__(f"{' '.join(argv)}: {message}{detail}")


class CommandTimeout(CommandError):
    """A device command ran past its timeout and was killed."""


class RebootRequired(HardwareError):
    """Switching to the requested mode needs a reboot; nothing was changed."""


class ProfileError(EdgeAgentError):
    """A power profile is unknown, unmatched, or failed verification."""


class GovernorUnavailable(EdgeAgentError):
    """The governor cannot run on this board (its frequency tables are missing/unreadable)."""


class GovernorRefused(GovernorUnavailable):
    """The policy names what this board lacks; the message names the field."""


class InferenceError(EdgeAgentError):
    """The model, execution provider or decoder failed."""


class TelemetryError(EdgeAgentError):
    """MQTT, outbox or embedded broker failure."""
