"""systemd's notify protocol (``sd_notify``) over ``$NOTIFY_SOCKET``.

The protocol is one datagram of ``KEY=VALUE`` lines to a unix socket whose path is in
``NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). Without the variable every
call is a no-op, so the agent behaves the same outside systemd.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

logger = logging.getLogger(__name__)


class Notifier:
    """Sends READY, STATUS, WATCHDOG, EXTEND_TIMEOUT_USEC and STOPPING to systemd."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        environ = os.environ if env is None else env
        address = environ.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if address:
            self._address = "\0" + address[1:] if address.startswith("@") else address
        watchdog_usec = environ.get("WATCHDOG_USEC", "")
        watchdog_pid = environ.get("WATCHDOG_PID", "")
        self.watchdog_interval_s: float | None = None
        if watchdog_usec.isdigit() and (not watchdog_pid or watchdog_pid == str(os.getpid())):
            self.watchdog_interval_s = int(watchdog_usec) / 1_000_000
        self._sock: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens."""
        return self._address is not None

    def send(self, **fields: str | int) -> bool:
        """Send one message; returns False (logged once) when the socket is gone."""
        if self._address is None:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.sendto(payload, self._address)
        except OSError as err:
            if not self._failed:
                logger.warning("sd_notify to %s failed: %s", self._address.lstrip("\0"), err)
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str = "") -> bool:
        if status:
            return self.send(READY=1, STATUS=status)
        return self.send(READY=1)

    def status(self, text: str) -> bool:
        return self.send(STATUS=text.replace("\n", " "))

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start/stop time (a TensorRT engine build can take minutes)."""
        return self.send(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))

    def stopping(self) -> bool:
        return self.send(STOPPING=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
