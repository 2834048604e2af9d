"""Results and telemetry: outbox first, then MQTT with a bounded in-flight window.

Flow: ``publish_result`` stamps ``msg_id = "<boot_id>:<n>"`` (n = 1, 2, ... per boot, no gaps)
and appends to a small in-memory buffer; the drain thread commits the buffer to the outbox in one
transaction (group commit: whatever accumulated while the previous commit ran) and only then
publishes rows, oldest first, keeping at most ``inflight_window`` unacknowledged. A PUBACK
deletes the row. When the connection changes (``MqttLink.generation``), the in-flight set is
void: the cursor goes back to the oldest row and everything unacknowledged is sent again with
the same payload, hence the same ``msg_id`` (at-least-once; subscribers drop repeats).

If the buffer reaches ``max_buffer`` (the drain thread fell behind the disk), the caller commits
it itself: back-pressure instead of an unbounded queue. An outbox write failure (disk full) is
counted in ``lost`` and ``errors`` and logged once; the caller never sees an exception.

Telemetry does not depend on the outbox being writable: a telemetry message the outbox could not
store is kept in a small in-memory queue (the newest few) and published directly, so the
message that reports the losses gets out while the disk is full. A row paho refuses to publish
(a topic or payload MQTT cannot carry) is quarantined instead of blocking the rows behind it.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from edge_agent.clock import Clock
from edge_agent.errors import TelemetryError
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.outbox import Outbox, OutboxError, OutboxItem
from edge_agent.telemetry.payloads import SCHEMA_VERSION, encode
from edge_agent.telemetry.topics import Topics

logger = logging.getLogger(__name__)

QOS = 1
DIRECT_KEEP = 8  # telemetry messages kept in memory while the outbox cannot store them


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """Counters of the publisher and its outbox."""

    depth: int
    inflight: int
    peak_inflight: int
    buffered: int
    published: int
    acked: int
    dropped: int
    lost: int
    errors: int
    connected: bool
    outbox_state: str
    drops: dict[str, int] = field(default_factory=dict)
    results_dropped: int = 0
    quarantined: int = 0
    bound: str = "size_bound"
    reserve: bool = True

    def telemetry_detail(self) -> dict[str, Any]:
        """The outbox fields telemetry carries beyond depth/dropped/lost/errors."""
        return {
            "drops": dict(self.drops),
            "results_dropped": self.results_dropped,
            "quarantined": self.quarantined,
            "state": self.outbox_state,
            "bound": self.bound,
            "reserve": self.reserve,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counters (for summaries; telemetry carries ``depth`` and ``dropped``)."""
        return asdict(self)


class Publisher:
    """Drains the outbox to MQTT from one named thread.

    Args:
        link: the MQTT connection.
        outbox: the on-disk spool.
        topics: topic names.
        clock: the injected clock.
        inflight_window: most messages published and not yet acknowledged.
        boot_id: this process start's id, the prefix of every ``msg_id``.
        max_buffer: results buffered in memory before the caller commits them itself.
        idle_s: how often the drain thread looks around when nothing wakes it.
    """

    def __init__(
        self,
        link: MqttLink,
        outbox: Outbox,
        topics: Topics,
        clock: Clock,
        inflight_window: int,
        boot_id: str,
        max_buffer: int = 1024,
        idle_s: float = 0.5,
    ) -> None:
        if inflight_window < 1:
            raise ValueError("inflight_window must be at least 1")
        self.link = link
        self.outbox = outbox
        self.topics = topics
        self.clock = clock
        self.window = inflight_window
        self.boot_id = boot_id
        self.max_buffer = max_buffer
        self.idle_s = idle_s
        self._seq = 0
        self._buffer: list[OutboxItem] = []
        self._buffer_lock = threading.Lock()
        self._committing = 0  # size of the batch being written; flush must wait for it
        self._commit_lock = threading.Lock()
        self._acks: collections.deque[tuple[int, bool]] = collections.deque()
        self._inflight: dict[int, int] = {}  # mid -> outbox rowid; drain thread only
        self._acked_rows: list[int] = []
        self._refused: list[int] = []
        self._cursor = 0
        self._generation = -1
        self._published = 0
        self._peak_inflight = 0
        self._acked = 0
        self._errors = 0
        self._errors_lock = threading.Lock()
        self._failing = False
        self._direct: collections.deque[OutboxItem] = collections.deque(maxlen=DIRECT_KEEP)
        self._direct_inflight: dict[int, OutboxItem] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        link.add_ack_listener(self._on_ack)
        link.add_connection_listener(self._on_connection)

    # -- producer side (any thread) --------------------------------------------------------

    def publish_result(self, camera: str, payload: dict[str, Any]) -> str:
        """Queue one result for ``<prefix>/<dev>/results/<camera>``; returns its msg_id.

        Args:
            camera: camera name (one topic level).
            payload: from ``payloads.result_payload``; ``msg_id`` is added here.
        """
        topic = self.topics.results(camera)
        with self._buffer_lock:
            self._seq += 1
            msg_id = f"{self.boot_id}:{self._seq}"
            doc = {"schema": SCHEMA_VERSION, "msg_id": msg_id, **payload}
            doc["msg_id"] = msg_id  # ours, even if the caller's dict carried one
            full = self._append(topic, encode(doc))
        if full:
            self._commit_buffer()
        return msg_id

    def publish_telemetry(self, payload: dict[str, Any]) -> None:
        """Queue one telemetry message (from ``payloads.telemetry_payload``)."""
        data = encode(payload)
        with self._buffer_lock:
            full = self._append(self.topics.telemetry(), data)
        if full:
            self._commit_buffer()

    def _append(self, topic: str, data: bytes) -> bool:
        # Called with _buffer_lock held, so buffer order is msg_id order. True when the
        # buffer is full and the caller must commit it (back-pressure, not an unbounded queue).
        self._buffer.append((topic, data, QOS))
        size = len(self._buffer)
        if size == 1:
            self._wake.set()
        return size >= self.max_buffer

    def commit(self) -> None:
        """Write the buffered messages to the outbox now (any thread).

        The drain thread does this continuously; a result is at risk of a ``kill -9`` only
        between ``publish_result`` and the next commit (normally a few milliseconds).
        """
        self._commit_buffer()

    def _commit_buffer(self) -> None:
        # Swap and store under one lock so batches reach the outbox in buffer order.
        with self._commit_lock:
            with self._buffer_lock:
                batch, self._buffer = self._buffer, []
                self._committing = len(batch)
            self._store(batch)
            with self._buffer_lock:
                self._committing = 0

    def _store(self, batch: list[OutboxItem]) -> None:
        if not batch:
            return
        try:
            self.outbox.put_many(batch)
        except OutboxError as err:
            self._count_error()
            telemetry = self.topics.telemetry()
            with self._buffer_lock:
                self._direct.extend(item for item in batch if item[0] == telemetry)
            if not self._failing:
                logger.error("results are being lost: %s", err)
                self._failing = True
            return
        if self._failing:
            logger.info("outbox accepts messages again")
            self._failing = False

    def _count_error(self) -> None:
        with self._errors_lock:
            self._errors += 1

    # -- paho callbacks (network thread; must not block) -----------------------------------

    def _on_ack(self, mid: int, ok: bool) -> None:
        self._acks.append((mid, ok))
        self._wake.set()

    def _on_connection(self, _connected: bool) -> None:
        self._wake.set()

    # -- drain thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the drain thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="edge-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the drain thread to stop (commits the buffer first)."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout_s: float = 5.0) -> None:
        """Wait for the drain thread to end."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            if not self._thread.is_alive():
                self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.idle_s)
            self._wake.clear()
            self.step()
        self._commit_buffer()
        self.step()

    def step(self) -> None:
        """One pass: commit the buffer, delete acknowledged rows, publish into the window."""
        self._commit_buffer()
        self._take_acks()
        if self._refused:
            self.outbox.count_refused(self._refused)
            self._refused = []
        if self._acked_rows:
            try:
                self.outbox.delete(self._acked_rows)
                self._acked_rows = []
            except TelemetryError as err:
                self._count_error()
                logger.warning("%s; acknowledged rows will be sent again", err)
        if self.link.connected:
            self._fill_window()
        with self._progress:
            self._progress.notify_all()

    def _take_acks(self) -> None:
        while self._acks:
            mid, ok = self._acks.popleft()
            self._direct_inflight.pop(mid, None)
            rowid = self._inflight.pop(mid, None)
            if rowid is None:
                continue  # a status/state publish, or from a connection since voided
            self._acked += 1
            if not ok:
                # The broker refused it for good (MQTT 5 reason code): resending cannot help.
                self._count_error()
                self._refused.append(rowid)
                logger.warning("broker refused outbox row %d; dropping it", rowid)
            self._acked_rows.append(rowid)

    def _fill_window(self) -> None:
        generation = self.link.generation
        if generation != self._generation:
            # New connection: paho dropped its copies; replay from the oldest row.
            self._generation = generation
            self._inflight.clear()
            self._cursor = 0
            self._direct.extendleft(reversed(self._direct_inflight.values()))
            self._direct_inflight.clear()
        self._publish_direct()
        room = self.window - len(self._inflight)
        if room <= 0:
            return
        try:
            rows = self.outbox.fetch(self._cursor, room)
        except TelemetryError as err:
            self._count_error()
            logger.warning("%s", err)
            return
        for row in rows:
            try:
                mid = self.link.publish(row.topic, row.payload, qos=row.qos)
            except (ValueError, TypeError) as err:
                # paho refuses what MQTT cannot carry; quarantine it, keep the rest flowing.
                self.outbox.quarantine([(row.rowid, f"paho refused it: {err}")])
                self._cursor = row.rowid
                continue
            if mid is None:
                break  # disconnected or paho's queue full: try again on the next wake
            self._inflight[mid] = row.rowid
            self._cursor = row.rowid
            self.outbox.mark_sent(row.rowid)
            self._published += 1
        self._peak_inflight = max(self._peak_inflight, len(self._inflight))

    def _publish_direct(self) -> None:
        # Telemetry the outbox could not store, newest kept; QoS 1, re-sent after a reconnect.
        while True:
            with self._buffer_lock:
                if not self._direct:
                    return
                item = self._direct.popleft()
            mid = self.link.publish(item[0], item[1], qos=item[2])
            if mid is None:
                with self._buffer_lock:
                    self._direct.appendleft(item)
                return
            self._direct_inflight[mid] = item

    # -- observers -------------------------------------------------------------------------

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything queued so far is acknowledged; True if it was in time."""
        self._wake.set()
        with self._progress:
            return self._progress.wait_for(self._drained, timeout_s)

    def _drained(self) -> bool:
        with self._buffer_lock:
            pending = len(self._buffer) + self._committing
        return pending == 0 and self.outbox.depth == 0 and not self._inflight

    def stats(self) -> PublisherStats:
        """Counters for telemetry (``outbox.depth``, ``outbox.dropped``) and tests."""
        box = self.outbox.stats()
        return PublisherStats(
            depth=box.depth,
            inflight=len(self._inflight),
            peak_inflight=self._peak_inflight,
            buffered=len(self._buffer) + self._committing,
            published=self._published,
            acked=self._acked,
            dropped=box.dropped,
            lost=box.lost,
            errors=self._errors,
            connected=self.link.connected,
            outbox_state=box.state,
            drops=box.drops,
            results_dropped=box.results_dropped,
            quarantined=box.quarantined,
            bound=box.bound,
            reserve=box.reserve,
        )
