"""``<prefix>/<dev>/policy/set`` -> apply -> retained ``<prefix>/<dev>/policy/state``.

The governor policy (``profile.policy``) and its parameters (``profile.governor``), changed at
runtime without a restart. Accepted payloads: a bare policy name (``slo``, what Home
Assistant's ``select`` sends), a JSON string, or a JSON object::

    {"policy": "power_cap", "governor": {"power_cap_w": 7.5}}
    {"policy": "fixed", "initial": "maxq"}

``governor`` overrides fields of the ``profile.governor`` section in force and ``initial``
names the profile ``fixed`` holds. Every payload goes through the bounded inbound parser
(:mod:`edge_agent.telemetry.inbound`), then is merged onto the ``profile`` section in force and
validated by the config's own :class:`ProfileConfig`: the command obeys exactly the rules of
the config file, and a refusal names the field (``profile.governor.power_cap_w: ...``).

The change is a runtime override: it is not written anywhere, and at the next start the config
file (with any committed fleet documents) decides again; ``policy/state`` says so
(``"set_by": "mqtt", "persists": false``). Applying runs on a small worker thread (switching to
``fixed`` is a profile switch); the queue is bounded (a full queue is answered ``busy``) and
changes are rate-limited like profile switches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge_agent.clock import Clock, SystemClock
from edge_agent.config import errors_from_validation
from edge_agent.config_sections import ProfileConfig
from edge_agent.telemetry.command_queue import CommandQueue
from edge_agent.telemetry.inbound import (
    InboundLog,
    InboundRejected,
    decode_command,
    guard,
)
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.payloads import encode, policy_state_payload
from edge_agent.telemetry.topics import Topics

logger = logging.getLogger(__name__)

# A policy document is a name and a few numbers; a schedule of 50 entries fits in 4 KiB.
MAX_POLICY_BYTES = 4 * 1024
MAX_POLICY_DEPTH = 4
POLICY_NAMES: tuple[str, ...] = get_args(ProfileConfig.model_fields["policy"].annotation)
M = TypeVar("M", bound=BaseModel)


class PolicyCommand(BaseModel):
    """A ``policy/set`` document; a bare or JSON string means ``{"policy": <it>}``.

    Only the shape is checked here; the values are checked by :class:`ProfileConfig` once
    merged onto the section in force (:func:`policy_config`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str = Field(min_length=1, max_length=64)
    initial: str | None = None
    governor: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        return {"policy": data} if isinstance(data, str) else data


def parse_policy_command(payload: bytes) -> PolicyCommand:
    """The command in a ``policy/set`` payload (its shape only).

    Raises:
        InboundRejected: empty, too large, not UTF-8, too deep, not JSON, or the wrong shape.
    """
    data = decode_command(
        payload, MAX_POLICY_BYTES, "expected a policy name or document", MAX_POLICY_DEPTH
    )
    return _validated(PolicyCommand, data)


def policy_config(running: ProfileConfig, command: PolicyCommand) -> ProfileConfig:
    """``running`` with the command's policy, preset and governor fields, as the config
    model validates it.

    Raises:
        InboundRejected: the result breaks a config rule, naming the field.
    """
    data = running.model_dump()
    data["policy"] = command.policy
    if "initial" in command.model_fields_set:
        data["initial"] = command.initial
    data["governor"] = {**data["governor"], **command.governor}
    return _validated(ProfileConfig, data, "profile")


def _validated(model: type[M], data: Any, prefix: str = "") -> M:
    # The config's own error lines (what check-config prints): ``profile.governor.x: ...``.
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = [str(e) for e in errors_from_validation(err, prefix)[:5]]
        raise InboundRejected("; ".join(lines)) from err


@dataclass(frozen=True)
class PolicyOutcome:
    """What applying a policy did: ``error`` is None when it is in force."""

    error: str | None = None


ApplyPolicyFn = Callable[[ProfileConfig], PolicyOutcome]


class PolicyCommandHandler:
    """Answers policy commands and publishes the policy in force on ``policy/state``.

    Args:
        topics: topic names.
        link: the MQTT connection (subscribes and publishes retained answers).
        running: the ``profile`` section in force (commands are merged onto it).
        set_by: who set the policy in force (``config``, ``config reload``, ``fleet``,
            ``mqtt``); whoever applies policies keeps it, so every answer agrees with it.
        apply: puts a validated section in force; its outcome is the answer.
        clock: the injected clock (answer timestamps, the rate limit).
        queue_size: commands waiting for the worker before new ones are refused.
        burst, every_s: changes accepted at once, then one per ``every_s`` seconds.
    """

    def __init__(
        self,
        topics: Topics,
        link: MqttLink,
        running: Callable[[], ProfileConfig],
        set_by: Callable[[], str],
        apply: ApplyPolicyFn,
        clock: Clock | None = None,
        queue_size: int = 4,
        burst: int = 4,
        every_s: float = 2.0,
    ) -> None:
        self.topics = topics
        self.link = link
        self.running = running
        self.set_by = set_by
        self.apply = apply
        self.clock: Clock = clock or SystemClock()
        self._commands: CommandQueue[PolicyCommand] = CommandQueue(
            "edge-policy-cmd",
            self.clock,
            "policy changes",
            "policy commands",
            queue_size,
            burst,
            every_s,
        )
        self._log = InboundLog(self.clock, "policy/set")
        self.handled = 0
        self.rejected = 0

    def start(self) -> None:
        """Subscribe to ``policy/set`` and start the worker."""
        if self._commands.running:
            return
        # The apply is part of handling the message: a bug in it must not stop the agent.
        self._commands.start(
            lambda command: guard(self._applier(command), self._answer_error, self._log)(
                self.topics.policy_set(), b""
            )
        )
        self.link.subscribe(
            self.topics.policy_set(), guard(self.on_message, self._answer_error, self._log)
        )

    def stop(self) -> None:
        """Ask the worker to stop after the command it is applying."""
        self._commands.stop()

    def join(self, timeout_s: float = 5.0) -> None:
        """Wait for the worker to end."""
        self._commands.join(timeout_s)

    def report(self, error: str | None = None, requested: str | None = None) -> None:
        """Publish the policy in force (at start, and after a fleet push or a reload)."""
        self._answer(error is None, error, requested)

    def on_message(self, _topic: str, payload: bytes) -> None:
        """Parse and validate a command (network thread) and queue it for the worker.

        Raises:
            InboundRejected: the command is refused; :func:`guard` answers it.
        """
        command = parse_policy_command(payload)
        subject = command.policy if command.policy in POLICY_NAMES else None
        try:
            policy_config(self.running(), command)
        except InboundRejected as err:
            raise InboundRejected(str(err), subject=subject) from err
        self._commands.submit(command, subject=subject)

    def _answer_error(self, _topic: str, rejection: InboundRejected) -> None:
        self.rejected += 1
        self._answer(False, str(rejection), rejection.subject)

    def _applier(self, command: PolicyCommand) -> Callable[[str, bytes], None]:
        def apply(_topic: str, _payload: bytes) -> None:
            self._apply(command)

        return apply

    def _apply(self, command: PolicyCommand) -> None:
        # Merged again: a change applied since the command was queued is its new base.
        try:
            new = policy_config(self.running(), command)
        except InboundRejected as err:
            raise InboundRejected(str(err), subject=command.policy) from err
        outcome = self.apply(new)
        self.handled += 1
        if outcome.error is not None:
            logger.warning("policy %s refused: %s", command.policy, outcome.error)
            self._answer(False, outcome.error, command.policy)
            return
        self._answer(True, None, command.policy)

    def _answer(self, accepted: bool, error: str | None, requested: str | None) -> None:
        running = self.running()
        doc = policy_state_payload(
            running.policy,
            running.initial if running.policy == "fixed" else None,
            self.set_by(),
            accepted,
            error,
            self.clock.wall(),
            requested,
        )
        self.link.publish_retained(self.topics.policy_state(), encode(doc))
