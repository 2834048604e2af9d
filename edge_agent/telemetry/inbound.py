"""The one bounded parser and error boundary for every payload that arrives over MQTT.

Every inbound topic (``profile/set``, Home Assistant's status, the fleet ``config/set``
documents) goes through the same steps, in this order, each with a clear error:

1. a size cap (checked before anything looks at the bytes);
2. UTF-8, with the byte offset of the first bad byte;
3. for JSON, a nesting-depth cap checked by an iterative scan *before* ``json.loads``, so
   ``{"profile":`` followed by a thousand ``[`` is refused as "nested deeper than 32" rather
   than raising ``RecursionError`` inside paho's network thread; duplicate keys, ``NaN`` and
   ``Infinity`` are refused too;
4. a pydantic model (``extra="forbid"``); its errors name the field path.

:func:`guard` is the boundary: a handler wrapped by it can raise anything and the agent keeps
running; the error is answered (on the topic's ``/state``) and logged, rate-limited so a flood
of bad messages cannot flood the journal. :class:`RateLimiter` bounds what a message can
trigger (HA rediscovery, profile switches).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from edge_agent.clock import Clock

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_DEPTH = 32
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[str, bytes], None]


class InboundRejected(ValueError):
    """A payload that is refused; the message is the answer's ``error``.

    Args:
        message: the error, for the sender.
        subject: what the message asked for, when it could be read (a profile name, a config
            version), so the answer can echo it.
    """

    def __init__(self, message: str, subject: str | None = None) -> None:
        super().__init__(message)
        self.subject = subject


Answer = Callable[[str, InboundRejected], None]


def decode_text(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> str:
    """The payload as text, after the size cap and UTF-8 check (whitespace stripped).

    Raises:
        InboundRejected: too large, or not UTF-8 (naming the byte offset).
    """
    if len(payload) > max_bytes:
        raise InboundRejected(f"payload too large: {len(payload)} bytes (max {max_bytes})")
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError as err:
        raise InboundRejected(f"payload is not UTF-8 (bad byte at offset {err.start})") from err


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse JSON text nested deeper than ``max_depth`` (a linear scan, no recursion).

    Brackets inside strings do not count; malformed text is left for the JSON parser.
    """
    depth = 0
    in_string = False
    escaped = False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                raise InboundRejected(
                    f"payload nested deeper than {max_depth} levels (at character {offset})"
                )
        elif char in "]}":
            depth -= 1


def decode_json(
    payload: bytes | str, max_bytes: int = MAX_PAYLOAD_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """Parse a JSON payload within the caps.

    Raises:
        InboundRejected: too large, not UTF-8, too deep, not JSON (with line and column),
            or a non-finite number (``NaN``, ``Infinity``).
    """
    text = payload if isinstance(payload, str) else decode_text(payload, max_bytes)
    if len(text.encode("utf-8")) > max_bytes:
        raise InboundRejected(f"payload too large (max {max_bytes} bytes)")
    if not text:
        raise InboundRejected("empty payload")
    check_depth(text, max_depth)
    try:
        return json.loads(
            text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicates
        )
    except InboundRejected:
        raise
    except json.JSONDecodeError as err:
        raise InboundRejected(
            f"payload is not valid JSON: {err.msg} (line {err.lineno} column {err.colno})"
        ) from err
    except ValueError as err:  # e.g. an integer over Python's 4300-digit limit
        raise InboundRejected(f"payload is not usable JSON: {err}") from err
    except RecursionError as err:  # unreachable after check_depth; kept as a hard stop
        raise InboundRejected("payload nested too deeply") from err


def decode_command(
    payload: bytes, max_bytes: int, empty_hint: str, max_depth: int = MAX_DEPTH
) -> Any:
    """A command payload: a bare word (what Home Assistant sends) as a string, or JSON (a
    quoted string, an object) parsed within the caps.

    Raises:
        InboundRejected: empty (``empty_hint`` says what was expected), too large, not UTF-8,
            too deep, or not JSON.
    """
    text = decode_text(payload, max_bytes)
    if not text:
        raise InboundRejected(f"empty payload: {empty_hint}")
    return decode_json(text, max_bytes, max_depth) if text[0] in '"{[' else text


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        counts = collections.Counter(key for key, _value in pairs)
        dupes = sorted(key for key, n in counts.items() if n > 1)
        raise InboundRejected(f"payload has duplicate keys: {', '.join(dupes)[:200]}")
    return doc


def _refuse_constant(name: str) -> Any:
    raise InboundRejected(f"payload contains {name}, which is not a JSON number")


def validate(model: type[M], data: Any) -> M:
    """``model.model_validate(data)``, with errors as one line naming each field path.

    Raises:
        InboundRejected: the data does not fit the model.
    """
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = []
        for item in err.errors()[:5]:
            where = ".".join(str(p) for p in item["loc"]) or "payload"
            problems.append(f"{where}: {item['msg']}")
        raise InboundRejected("; ".join(problems)) from err


def parse_json_model(
    model: type[M],
    payload: bytes,
    max_bytes: int = MAX_PAYLOAD_BYTES,
    max_depth: int = MAX_DEPTH,
) -> M:
    """Size, UTF-8, depth, JSON, then ``model``: the whole bounded parse of one document."""
    return validate(model, decode_json(payload, max_bytes, max_depth))


class RateLimiter:
    """A token bucket on the injected clock: ``burst`` at once, then one per ``every_s``.

    Thread-safe; ``allow()`` never blocks.
    """

    def __init__(self, clock: Clock, burst: int, every_s: float) -> None:
        if burst < 1 or every_s <= 0:
            raise ValueError("burst must be >= 1 and every_s > 0")
        self.clock = clock
        self.burst = burst
        self.every_s = every_s
        self._tokens = float(burst)
        self._last = clock.monotonic()
        self._lock = threading.Lock()
        self.refused = 0

    def allow(self) -> bool:
        """Take a token if one is there; False (and counted) when the rate is exceeded."""
        with self._lock:
            now = self.clock.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) / self.every_s)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            self.refused += 1
            return False


class InboundLog:
    """Logs refused messages without letting a flood of them flood the journal.

    The first few per minute are logged; the rest are counted and summed up in the next line.
    """

    def __init__(self, clock: Clock, name: str, per_minute: int = 6) -> None:
        self.name = name
        self._limit = RateLimiter(clock, per_minute, 60.0 / per_minute)
        self._suppressed = 0
        self.count = 0

    def refused(self, topic: str, error: str, exc: BaseException | None = None) -> None:
        """Count and (rate-limited) log one refused message; ``exc`` adds a traceback."""
        self.count += 1
        if not self._limit.allow():
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self._suppressed = 0
        logger.warning(
            "%s: message on %s refused: %s%s", self.name, topic, error, more, exc_info=exc
        )


def guard(handler: Handler, answer: Answer | None, log: InboundLog) -> Handler:
    """Wrap an inbound handler so no message can stop the agent.

    ``InboundRejected`` is answered with its message. Anything else is a bug in a handler;
    it is answered as an internal error and logged with its traceback.

    Args:
        handler: ``handler(topic, payload)``, run on paho's network thread.
        answer: ``answer(topic, rejection)`` publishes the error on the topic's ``/state``;
            None for topics with nothing to answer on (Home Assistant's status).
        log: counts and logs refusals.
    """

    def guarded(topic: str, payload: bytes) -> None:
        try:
            handler(topic, payload)
        except InboundRejected as err:
            log.refused(topic, str(err))
            _answer(answer, topic, err, log)
        # The network boundary: the second place, with the daemon's supervisor, where a broad
        # catch is right. A handler bug raised on paho's thread would otherwise kill the MQTT
        # loop, and a retained payload would kill every restart of every device it reaches.
        except Exception as err:  # noqa: BLE001
            text = f"internal error handling the message: {type(err).__name__}: {err}"
            log.refused(topic, text, exc=err)
            _answer(answer, topic, InboundRejected(text[:1000]), log)

    return guarded


def _answer(answer: Answer | None, topic: str, error: InboundRejected, log: InboundLog) -> None:
    if answer is None:
        return
    try:
        answer(topic, error)
    # Answering is best effort and runs inside the same boundary (see guard).
    except Exception as err:  # noqa: BLE001
        logger.error("%s: could not answer on %s: %s", log.name, topic, err)
