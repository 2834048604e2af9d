"""Checks on the files a config names: they exist, are regular files, and load.

These do I/O, so they run in ``load_config``/``validate_config``, never in a validator. The
TLS files are loaded by the same ``ssl`` calls the MQTT client makes, so a CA file that is not
a certificate is refused by ``check-config`` with its field path instead of failing ``run``.
"""

from __future__ import annotations

import logging
import os
import ssl
import stat
from pathlib import Path
from typing import NoReturn

from edge_agent.errors import FieldError

logger = logging.getLogger(__name__)

__all__ = ["check_file", "check_tls_files", "warn_if_shared_secret"]


def check_file(field: str, path: Path, *, directory: bool = False) -> FieldError | None:
    """A problem with a path the config names (missing, or not a regular file), or None.

    A FIFO or a device would block or never end when read, so only regular files pass.
    """
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):  # ValueError: a NUL in the path
        kind = "directory" if directory else "file"
        return FieldError(field, f"{kind} not found: {path}")
    if directory:
        return None if stat.S_ISDIR(mode) else FieldError(field, f"not a directory: {path}")
    if not stat.S_ISREG(mode):
        return FieldError(field, f"not a regular file: {path}")
    return None


def check_state_dir(field: str, path: Path, *, writable: bool = False) -> FieldError | None:
    """A problem with the state directory (the outbox, the fleet store, state files), or None.

    It must be a directory, or not exist yet under a directory (the agent creates it). With
    ``writable``, the user running this must also be able to write there: ``run`` asks, since
    it is the one that writes; ``check-config`` does not (an operator checks a service's
    config as another user). A named error at start, not a crash at the first write.
    """
    probe = path
    try:
        while not probe.exists():
            if probe.parent == probe:
                return FieldError(field, f"no existing parent directory: {path}")
            probe = probe.parent
        if not probe.is_dir():
            if probe == path:
                return FieldError(field, f"not a directory: {path}")
            return FieldError(field, f"cannot be created: {probe} is not a directory: {path}")
    except (OSError, ValueError) as err:  # ValueError: a NUL in the path
        return FieldError(field, f"cannot be checked ({err}): {path}")
    if writable and not os.access(probe, os.W_OK | os.X_OK):
        where = "" if probe == path else f" (it would be created in {probe})"
        return FieldError(field, f"{path} is not writable by this user{where}")
    return None


def _no_passphrase() -> NoReturn:
    raise ssl.SSLError("the key file is encrypted; edge-agent cannot ask for its passphrase")


def check_tls_files(
    ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> list[FieldError]:
    """Load the TLS files as the MQTT client will; one error per file that fails.

    The passphrase callback refuses instead of letting OpenSSL prompt on the terminal.
    """
    problems: list[FieldError] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (ssl.SSLError, OSError, ValueError) as err:
            problems.append(
                FieldError("mqtt.tls.ca_file", f"{ca_file} is not a PEM CA certificate: {err}")
            )
    if cert_file is not None and key_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file), password=_no_passphrase)
        except (ssl.SSLError, OSError, ValueError) as err:
            problems.append(
                FieldError(
                    "mqtt.tls.cert_file",
                    f"{cert_file} with key {key_file} does not load as a client certificate: {err}",
                )
            )
    return problems


def warn_if_shared_secret(field: str, path: Path) -> bool:
    """Log one WARNING when a secret file is readable by its group or others (ssh's habit).

    Returns:
        True when it warned.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return False
    if mode & 0o044:
        logger.warning(
            "%s %s has mode %04o: readable by other users; chmod 600 it", field, path, mode
        )
        return True
    return False
