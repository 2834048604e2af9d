"""``<prefix>/<dev>/profile/set`` -> apply -> retained ``<prefix>/<dev>/profile/state``.

Accepted payloads: the bare name (``maxq``), a JSON string (``"maxq"``) or a JSON object
(``{"profile": "maxq"}``). Rejected with an error answer, leaving the pipeline untouched: an
empty payload, more than 64 KiB, not UTF-8, a malformed name, or a profile not in the known
list. The apply runs on a small worker thread (paho's network thread must never block on a
DVFS switch); its queue is bounded and a full queue is answered with a ``busy`` error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any

from edge_agent.clock import Clock, SystemClock
from edge_agent.errors import EdgeAgentError
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.payloads import encode, profile_state_payload
from edge_agent.telemetry.topics import Topics

logger = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ApplyFn = Callable[[str], Mapping[str, Any]]


class CommandRejected(ValueError):
    """A command payload that cannot be acted on (the message is the answer's error)."""


def parse_profile_command(payload: bytes) -> str:
    """The profile name in a ``profile/set`` payload.

    Raises:
        CommandRejected: empty, too large, not UTF-8, or not a well-formed name.
    """
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandRejected(f"payload too large: {len(payload)} bytes (max {MAX_COMMAND_BYTES})")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as err:
        raise CommandRejected("payload is not UTF-8") from err
    if not text:
        raise CommandRejected("empty payload: expected a profile name")
    name: Any = text
    if text[0] in '"{':
        try:
            name = json.loads(text)
        except json.JSONDecodeError as err:
            raise CommandRejected(f"payload is not valid JSON: {err.msg}") from err
        if isinstance(name, dict):
            name = name.get("profile")
    if not isinstance(name, str) or not _NAME.match(name):
        raise CommandRejected(
            "expected a profile name (letters, digits, '_', '.', '-'; at most 64 characters)"
        )
    return name


class ProfileCommandHandler:
    """Answers profile commands on the retained ``profile/state`` topic.

    Args:
        topics: topic names.
        link: the MQTT connection (subscribes and publishes retained answers).
        apply: applies a profile by name and returns ``{"profile", "applied", "error"}``; may
            raise an EdgeAgentError (ProfileError, HardwareError), answered as an error.
        profiles: names accepted; None lets ``apply`` decide.
        clock: the injected clock (answer timestamps).
        current: the profile active at start, reported until a command changes it.
        queue_size: commands waiting for the worker before new ones are refused.
    """

    def __init__(
        self,
        topics: Topics,
        link: MqttLink,
        apply: ApplyFn,
        profiles: Collection[str] | None = None,
        clock: Clock | None = None,
        current: str | None = None,
        queue_size: int = 4,
    ) -> None:
        self.topics = topics
        self.link = link
        self.apply = apply
        self.profiles = profiles
        self.clock: Clock = clock or SystemClock()
        self.current = current
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0
        self.rejected = 0

    def start(self) -> None:
        """Subscribe to ``profile/set`` and start the worker."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="edge-profile-cmd", daemon=True)
        self._thread.start()
        self.link.subscribe(self.topics.profile_set(), self.on_message)

    def stop(self) -> None:
        """Ask the worker to stop after the command it is applying."""
        self._stop.set()
        # A full queue is fine: the worker checks the stop flag after each command.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    def join(self, timeout_s: float = 5.0) -> None:
        """Wait for the worker to end."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            if not self._thread.is_alive():
                self._thread = None

    def report(self, profile: str | None, error: str | None = None) -> None:
        """Publish the active profile (e.g. at start or after a governor switch)."""
        self.current = profile
        self._answer(profile, error is None, error, requested=None)

    def on_message(self, _topic: str, payload: bytes) -> None:
        """Validate a command (network thread) and queue it for the worker."""
        name: str | None = None
        try:
            name = parse_profile_command(payload)
            if self.profiles is not None and name not in self.profiles:
                known = ", ".join(sorted(self.profiles))
                raise CommandRejected(f"unknown profile {name!r}; known: {known}")
        except CommandRejected as err:
            # Echo a well-formed name back so the sender can tell which command failed.
            self._reject(str(err), name)
            return
        try:
            self._queue.put_nowait(name)
        except queue.Full:
            self._reject(f"busy: {self._queue.maxsize} profile commands pending", name)

    def _reject(self, error: str, requested: str | None) -> None:
        self.rejected += 1
        logger.warning("profile command rejected: %s", error)
        self._answer(self.current, False, error, requested)

    def _run(self) -> None:
        while not self._stop.is_set():
            name = self._queue.get()
            if name is None:
                continue
            self._apply(name)

    def _apply(self, name: str) -> None:
        try:
            answer = self.apply(name)
        except EdgeAgentError as err:
            logger.warning("profile %s failed: %s", name, err)
            self._answer(self.current, False, str(err), requested=name)
            return
        applied = bool(answer.get("applied"))
        profile = answer.get("profile")
        error = answer.get("error")
        if applied:
            self.current = str(profile) if profile is not None else name
            logger.info("profile %s applied by command", self.current)
        if not applied and not error:
            error = f"profile {name} was not applied"
        self.handled += 1
        self._answer(self.current, applied, None if applied else str(error), requested=name)

    def _answer(
        self, profile: str | None, applied: bool, error: str | None, requested: str | None
    ) -> None:
        doc = profile_state_payload(profile, applied, error, self.clock.wall(), requested)
        self.link.publish_retained(self.topics.profile_state(), encode(doc))
