"""``<prefix>/<dev>/profile/set`` -> apply -> retained ``<prefix>/<dev>/profile/state``.

Accepted payloads: the bare name (``maxq``), a JSON string (``"maxq"``) or a JSON object
(``{"profile": "maxq"}``). Every payload goes through the bounded inbound parser
(:mod:`edge_agent.telemetry.inbound`: size, UTF-8, depth, then the :class:`ProfileCommand`
model) and any refusal or handler failure is answered on ``profile/state``, leaving the pipeline
untouched. The apply runs on a small worker thread (paho's network thread must never block on a
DVFS switch); its queue is bounded (a full queue is answered ``busy``) and switches are
rate-limited (a flood is answered ``rate limited``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from edge_agent.clock import Clock, SystemClock
from edge_agent.errors import EdgeAgentError
from edge_agent.telemetry.command_queue import CommandQueue
from edge_agent.telemetry.inbound import (
    MAX_PAYLOAD_BYTES,
    InboundLog,
    InboundRejected,
    decode_command,
    guard,
    validate,
)
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.payloads import encode, profile_state_payload
from edge_agent.telemetry.topics import Topics

logger = logging.getLogger(__name__)

MAX_COMMAND_BYTES = MAX_PAYLOAD_BYTES
_NAME_HINT = "expected a profile name (letters, digits, '_', '.', '-'; at most 64 characters)"
ApplyFn = Callable[[str], Mapping[str, Any]]
CommandRejected = InboundRejected
ProfileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class ProfileCommand(BaseModel):
    """A ``profile/set`` document; a bare or JSON string means ``{"profile": <it>}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: ProfileName

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        return {"profile": data} if isinstance(data, str) else data


def parse_profile_command(payload: bytes) -> str:
    """The profile name in a ``profile/set`` payload.

    Raises:
        InboundRejected: empty, too large, not UTF-8, too deep, not JSON, or not a name.
    """
    data = decode_command(payload, MAX_COMMAND_BYTES, "expected a profile name")
    try:
        return validate(ProfileCommand, data).profile
    except InboundRejected as err:
        raise InboundRejected(f"{_NAME_HINT}: {err}") from err


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
        switch_burst: profile switches accepted at once before the rate limit applies.
        switch_every_s: then one switch per this many seconds.
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
        switch_burst: int = 4,
        switch_every_s: float = 2.0,
    ) -> None:
        self.topics = topics
        self.link = link
        self.apply = apply
        self.profiles = profiles
        self.clock: Clock = clock or SystemClock()
        self.current = current
        self.handled = 0
        self.rejected = 0
        self._commands: CommandQueue[str] = CommandQueue(
            "edge-profile-cmd",
            self.clock,
            "profile switches",
            "profile commands",
            queue_size,
            switch_burst,
            switch_every_s,
        )
        self._log = InboundLog(self.clock, "profile/set")
        # The apply is part of handling the message: a bug in it must not stop the agent
        # either (a retained command would repeat it at every start).
        self._guarded_apply = guard(
            lambda _topic, name: self._apply(name.decode("utf-8")), self._answer_error, self._log
        )

    def start(self) -> None:
        """Subscribe to ``profile/set`` and start the worker."""
        if self._commands.running:
            return
        self._commands.start(
            lambda name: self._guarded_apply(self.topics.profile_set(), name.encode("utf-8"))
        )
        self.link.subscribe(
            self.topics.profile_set(), guard(self.on_message, self._answer_error, self._log)
        )

    def stop(self) -> None:
        """Ask the worker to stop after the command it is applying."""
        self._commands.stop()

    def join(self, timeout_s: float = 5.0) -> None:
        """Wait for the worker to end."""
        self._commands.join(timeout_s)

    def report(self, profile: str | None, error: str | None = None) -> None:
        """Publish the active profile (e.g. at start or after a governor switch)."""
        self.current = profile
        self._answer(profile, error is None, error, requested=None)

    def on_message(self, _topic: str, payload: bytes) -> None:
        """Validate a command (network thread) and queue it for the worker.

        Raises:
            InboundRejected: the command is refused; :func:`guard` answers it.
        """
        name = parse_profile_command(payload)
        if self.profiles is not None and name not in self.profiles:
            known = ", ".join(sorted(self.profiles))
            raise InboundRejected(f"unknown profile {name!r}; known: {known}", subject=name)
        self._commands.submit(name, subject=name)

    def _answer_error(self, _topic: str, rejection: InboundRejected) -> None:
        # Called by guard() for every refusal; echo a well-formed name back so the sender can
        # tell which command failed.
        self.rejected += 1
        self._answer(self.current, False, str(rejection), rejection.subject)

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
