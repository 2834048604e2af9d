"""An in-process MQTT broker (amqtt) for the quick start and demos (``mqtt.host: embedded``).

Production points at mosquitto or a broker cluster: amqtt keeps everything in memory and is
far slower. The broker runs its own asyncio loop on a named thread; ``start`` returns once it
listens and ``stop`` shuts it down and joins the thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import warnings
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
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="edge-mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            self.stop()
            raise TelemetryError(f"embedded broker did not start on {self.host}:{self.port}")
        if self._error is not None:
            err = self._error
            self._thread.join(_START_TIMEOUT_S)
            self._thread = None
            raise TelemetryError(f"embedded broker on {self.host}:{self.port}: {err}") from err
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
            # amqtt (and its dependencies) emit DeprecationWarnings on import and start; keep
            # them local to this thread's work instead of changing the global filters.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
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
        try:
            broker = Broker(self._config())
            await broker.start()
        except (BrokerError, PluginError, PluginLoadError, OSError) as err:
            self._error = err
            return
        self._ready.set()
        await self._shutdown.wait()
        await broker.shutdown()
