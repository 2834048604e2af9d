"""An in-process MQTT broker (amqtt) for the quick start and demos (``mqtt.host: embedded``).

Production points at mosquitto or a broker cluster: amqtt keeps everything in memory and is
far slower. The broker runs its own asyncio loop on a named thread; ``start`` returns once it
listens and ``stop`` shuts it down and joins the thread.

Warnings: the broker config below names its plugins explicitly, which keeps amqtt 0.12 off every
deprecated code path, so nothing here filters warnings. (An earlier version wrapped the broker
thread in ``warnings.catch_warnings()``; that context manager swaps the process-wide filter
list, so for the broker's whole lifetime it silenced DeprecationWarnings in every thread, and
on exit it restored a stale snapshot over whatever the main thread had set meanwhile.)
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
from typing import Any

from edge_agent.errors import TelemetryError

logger = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0


def _free_port(host: str) -> int:
    # amqtt takes a "host:port" string and does not report the port it bound, so ask the OS
    # for a free one first (a tiny race with other processes; start() reports a clash).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _check_port_free(host: str, port: int) -> None:
    """Fail fast, with the port in the message, when something already listens there.

    Binds the way asyncio's ``create_server`` does (``SO_REUSEADDR``), so a port whose old
    connections linger in TIME_WAIT counts as free, exactly as amqtt would find it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            why = (
                f"port {port} is in use; pick another mqtt.port"
                if err.errno == errno.EADDRINUSE
                else str(err.strerror or err)
            )
            raise TelemetryError(f"embedded broker: cannot listen on {host}:{port}: {why}") from err


class _QuietFailedStart(logging.Filter):
    """Drops amqtt's "startup failed" ERROR and traceback, from one thread only.

    ``start`` raises a TelemetryError with the cause instead; other brokers' logs (other
    threads) are untouched, and the filter is removed as soon as the broker has started.
    """

    def __init__(self, thread_id: int | None) -> None:
        super().__init__()
        self._thread_id = thread_id

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.thread == self._thread_id and record.levelno >= logging.ERROR)


async def _cancel_other_tasks() -> None:
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class EmbeddedBroker:
    """amqtt on ``host:port`` in a background thread.

    Args:
        host: listen address (loopback by default: the demo broker has no authentication).
        port: TCP port; 0 picks a free one (read ``port`` after ``start``).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._ready = threading.Event()
        self._listening = False
        self._error: BaseException | None = None

    def _config(self) -> dict[str, Any]:
        # Explicit plugins: amqtt's defaults add the $SYS and packet-logger plugins, and the
        # legacy "auth" keys raise DeprecationWarnings in amqtt 0.12.
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    def start(self) -> None:
        """Start the broker and wait until it listens.

        Raises:
            TelemetryError: it could not start (port in use, amqtt missing) or timed out.
        """
        if self._thread is not None:
            return
        if self.port == 0:
            self.port = _free_port(self.host)
        _check_port_free(self.host, self.port)
        self._ready.clear()
        self._listening = False
        self._error = None
        self._thread = threading.Thread(target=self._run, name="edge-mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            self.stop()
            raise TelemetryError(f"embedded broker did not start on {self.host}:{self.port}")
        if self._error is not None or not self._listening:
            err = self._error
            self._thread.join(_START_TIMEOUT_S)
            self._thread = None
            reason = err if err is not None else "its thread ended before it listened"
            raise TelemetryError(f"embedded broker on {self.host}:{self.port}: {reason}") from err
        logger.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Shut the broker down and join its thread."""
        thread, loop, shutdown = self._thread, self._loop, self._shutdown
        if thread is None:
            return
        if loop is not None and shutdown is not None and not loop.is_closed():
            loop.call_soon_threadsafe(shutdown.set)
        thread.join(timeout_s)
        if thread.is_alive():
            raise TelemetryError("embedded broker did not stop in time")
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            # Connections amqtt is still serving (a client that never sent CONNECT, say) are
            # tasks of their own: cancel them so their transports close before the loop does.
            loop.run_until_complete(_cancel_other_tasks())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None
            self._ready.set()

    async def _serve(self) -> None:
        try:
            # Imported here: amqtt is the optional "demo" dependency.
            from amqtt.broker import Broker
            from amqtt.errors import BrokerError, PluginError, PluginLoadError
        except ImportError as err:
            self._error = err
            return
        self._shutdown = asyncio.Event()
        # Another process may take the port between start()'s probe and the bind: amqtt then
        # logs an ERROR with a traceback before raising; start() reports it in one line instead.
        amqtt_logger = logging.getLogger("amqtt.broker")
        quiet = _QuietFailedStart(threading.get_ident())
        amqtt_logger.addFilter(quiet)
        try:
            broker = Broker(self._config())
            await broker.start()
        except (BrokerError, PluginError, PluginLoadError, OSError) as err:
            self._error = err
            return
        finally:
            amqtt_logger.removeFilter(quiet)
        self._listening = True
        self._ready.set()
        await self._shutdown.wait()
        await broker.shutdown()
