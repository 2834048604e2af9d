"""Running device CLIs: argv lists, a timeout on every call, never a shell."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import CommandError, CommandTimeout

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command printed and returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def output(self) -> str:
        """stdout and stderr together, for error messages."""
        return (self.stdout + self.stderr).strip()


def run(
    argv: Sequence[str | Path],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = False,
) -> CommandResult:
    """Run a command with a timeout.

    stdin is ``/dev/null`` unless ``input_text`` is given, so a prompt (nvpmodel's reboot
    question) fails fast instead of hanging.

    Raises:
        CommandError: the command is missing or not executable, or (with ``check``) exited
            non-zero.
        CommandTimeout: it ran past ``timeout_s``; its partial output is in the message.
    """
    args = [str(a) for a in argv]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            args,
            input=input_text,
            stdin=subprocess.DEVNULL if input_text is None else None,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        partial = _text(err.stdout) + _text(err.stderr)
        raise CommandTimeout(args, f"timed out after {timeout_s:g} s", partial) from err
    except OSError as err:
        raise CommandError(args, f"cannot run ({err.strerror})") from err
    result = CommandResult(
        tuple(args), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start
    )
    if check and proc.returncode != 0:
        raise CommandError(args, f"exited {proc.returncode}", result.output)
    return result


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data
