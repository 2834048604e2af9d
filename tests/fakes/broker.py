"""A real mosquitto broker on 127.0.0.1 for tests (never a mock).

``start`` only returns once the listening socket on the port belongs to the mosquitto it
started (its inode, from ``/proc/net/tcp``, is among ``/proc/<pid>/fd``): any other listener
that happens to hold the port is an error, not a broker. Ports are picked free and then
released, so another process can take one before mosquitto binds it; mosquitto then exits with
"Address already in use" and, as long as no one has read ``port`` yet, ``start`` moves to a
new port and tries again.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

PROC = Path("/proc")
START_ATTEMPTS = 5
TCP_LISTEN = "0A"  # the state column of /proc/net/tcp


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (released again: take it before someone else does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (Debian puts it in /usr/sbin)."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


def listening_inodes(port: int) -> set[int]:
    """Socket inodes listening on ``port`` (IPv4 and IPv6), from /proc/net/tcp*."""
    inodes: set[int] = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            rows = (PROC / table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(int(inode))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process ``pid`` holds open."""
    inodes: set[int] = set()
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = str(fd.readlink())
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def owns_listener(pid: int, port: int) -> bool:
    """True when process ``pid`` holds a socket listening on ``port``."""
    return bool(listening_inodes(port) & socket_inodes(pid))


class MosquittoBroker:
    """A mosquitto process on a fixed port that tests can stop and restart."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install -y mosquitto)")
        self.binary = binary
        self._port = port or free_port()
        # A port the caller chose, or has read (clients may be configured with it), stays.
        self._port_pinned = port is not None
        self.host = "127.0.0.1"
        self.workdir = workdir
        self.conf = workdir / f"mosquitto-{self._port}.conf"
        self.stderr_path = workdir / f"mosquitto-{self._port}.stderr"
        self.conf.write_text(
            f"listener {self._port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            "log_dest stderr\n"  # errors only: why it exited (a taken port) for start()
            "log_type error\n",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The broker's port; once read, ``start`` keeps it even if it has been taken."""
        self._port_pinned = True
        return self._port

    def start(self) -> None:
        """Start the broker and wait until its own process listens on the port.

        Raises:
            RuntimeError: mosquitto exited (its stderr is quoted), e.g. the pinned port is
                taken by another process.
            TimeoutError: it never listened.
        """
        error = ""
        for _ in range(START_ATTEMPTS):
            error = self._start_once() or ""
            if not error:
                self._port_pinned = True  # a restart must come back on the same port
                return
            if self._port_pinned or "Address already in use" not in error:
                break
            self._move_to(free_port())
        raise RuntimeError(f"mosquitto on port {self._port} exited: {error.strip()}")

    def _start_once(self) -> str | None:
        """Launch once; None when listening, else what mosquitto said before exiting."""
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 10
        pause = threading.Event()  # never set: a bounded wait between tries, not time.sleep
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                said = self.stderr_path.read_text(encoding="utf-8", errors="replace")
                return said or f"exit status {code}"
            if owns_listener(self.proc.pid, self._port):
                with socket.create_connection((self.host, self._port), timeout=2):
                    return None
            pause.wait(0.02)
        self.stop()
        raise TimeoutError(f"mosquitto did not listen on port {self._port}")

    def _move_to(self, port: int) -> None:
        text = self.conf.read_text(encoding="utf-8")
        self.conf.write_text(
            text.replace(f"listener {self._port} ", f"listener {port} ", 1), encoding="utf-8"
        )
        self._port = port

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def broker_required() -> bool:
    """CI must have mosquitto; locally a missing broker skips."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
