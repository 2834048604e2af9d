"""Camera sources by URI, each in its own thread: CSI, V4L2, RTSP, files and synthetic frames.

A source opens its device, reads frames, stamps them (sequence number, monotonic and wall
capture time) and hands every frame it keeps to a sink (the batcher queue). It goes ``down``
when the device fails to open or stops delivering, and retries with exponential backoff capped
at ``reconnect_max_s``; each transition is logged once. Live devices (CSI, V4L2, RTSP) are read
continuously so their buffers never go stale; frames not wanted (``every_nth``, target ``fps``)
are grabbed but not decoded where the backend allows. A file replayed with ``realtime: false``
is lossless: the sink may make it wait instead of dropping.

The per-camera "latest frames" slot is the batcher's ``FrameQueue``: a live camera holds at
most ``max_batch`` queued frames there, and a new frame evicts its oldest (counted as
``dropped``), so a slow engine always works on fresh frames.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from edge_agent.clock import Clock
from edge_agent.config import CameraConfig, redact_uri
from edge_agent.pipeline.source_error import SourceUnavailable
from edge_agent.pipeline.synthetic import synthetic_frames

logger = logging.getLogger(__name__)

SourceState = Literal["starting", "up", "down", "ended", "stopped"]
Sink = Callable[["Frame", bool], bool]
"""Receives (frame, lossless); returns False when the pipeline no longer takes frames."""

_FILE_END_FAILURES = 5  # consecutive failed grabs that mean "end of file", not a bad frame
_LIVE_LOST_FAILURES = 2


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame (BGR uint8, or gray) with its capture stamps."""

    camera: str
    seq: int
    captured_mono: float
    captured_wall: float
    image: np.ndarray
    truth: str | None = None


@dataclass(frozen=True, slots=True)
class SourceStats:
    """Counters and state of one source."""

    state: SourceState
    captured: int
    skipped: int
    decode_errors: int
    reconnects: int
    last_error: str | None


def gstreamer_available() -> bool:
    """Whether this OpenCV build has GStreamer (needed for ``csi://``)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def csi_pipeline(sensor: int, width: int, height: int, fps: float) -> str:
    """The GStreamer pipeline for a Jetson CSI sensor (``nvarguscamerasrc``) into BGR."""
    return (
        f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM), width={width}, "
        f"height={height}, framerate={round(fps)}/1 ! nvvidconv ! video/x-raw, format=BGRx ! "
        "videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false"
    )


redact = redact_uri  # camera URIs may carry a password; never log it


class Source:
    """A camera thread: open, read, stamp, hand over; reconnect with backoff.

    Args:
        config: the camera's config section.
        clock: the injected clock.
        sink: receives each kept frame and whether it must not be dropped.
        io_timeout_s: open/read timeout for network streams.
        on_exit: called from the thread when it ends (the source ended or was stopped).
    """

    def __init__(
        self,
        config: CameraConfig,
        clock: Clock,
        sink: Sink,
        *,
        io_timeout_s: float = 5.0,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self._clock = clock
        self._sink = sink
        self._io_timeout_s = io_timeout_s
        self._scheme = urlsplit(config.uri).scheme
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._state: SourceState = "starting"
        self._error: str | None = None
        self._counts = {"captured": 0, "skipped": 0, "decode_errors": 0, "reconnects": 0}
        self._seq = 0
        self._next_due: float | None = None
        self._on_exit = on_exit
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.name}")

    @property
    def lossless(self) -> bool:
        """True for a file or synthetic source replayed as fast as possible."""
        return self._scheme in ("file", "synthetic") and not self.config.realtime

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the capture thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop (returns at once)."""
        self._stop.set()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the thread to end."""
        if self._thread.ident is not None:
            self._thread.join(timeout_s)

    def is_alive(self) -> bool:
        """Whether the capture thread runs."""
        return self._thread.is_alive()

    def stats(self) -> SourceStats:
        """Counters and state now."""
        with self._cond:
            return SourceStats(self._state, **self._counts, last_error=self._error)

    def wait_for_state(self, state: SourceState, timeout_s: float) -> bool:
        """Block until the source is in ``state``; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._state == state, timeout_s)

    def _set_state(self, state: SourceState, error: str | None = None) -> None:
        with self._cond:
            changed = state != self._state
            self._state = state
            self._error = error if error is not None else self._error
            self._cond.notify_all()
        if not changed:
            return
        if state == "down":
            logger.warning("camera %s down: %s", self.name, error)
        else:
            logger.info("camera %s %s", self.name, state)

    def _count(self, name: str) -> None:
        with self._cond:
            self._counts[name] += 1

    # -- thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._on_exit is not None:
                self._on_exit()

    def _loop(self) -> None:
        backoff_s = min(0.5, self.config.reconnect_max_s)
        attempts = 0
        while not self._stop.is_set():
            if attempts:
                self._count("reconnects")
            attempts += 1
            try:
                ended = self._capture_once()
            except SourceUnavailable as err:
                self._set_state("down", str(err))
                if self._stop.wait(backoff_s):
                    break
                backoff_s = min(backoff_s * 2, self.config.reconnect_max_s)
                continue
            if ended:
                self._set_state("ended")
                return
            backoff_s = min(0.5, self.config.reconnect_max_s)
        self._set_state("stopped")

    def _capture_once(self) -> bool:
        """Open the device and pump frames; True when a non-looping source has ended."""
        if self._scheme == "synthetic":
            return self._pump_synthetic()
        if self._scheme == "file":
            return self._pump_file()
        capture = self._open_live()
        try:
            self._set_state("up")
            self._pump_live(capture)
        finally:
            capture.release()
        return False

    def _emit(self, image: np.ndarray, truth: str | None = None) -> bool:
        frame = Frame(
            self.name, self._seq, self._clock.monotonic(), self._clock.wall(), image, truth
        )
        self._seq += 1
        return self._sink(frame, self.lossless)

    def _wanted(self) -> bool:
        """Whether the frame just captured is kept (every Nth, then the fps limiter)."""
        with self._cond:
            self._counts["captured"] += 1
            nth_ok = (self._counts["captured"] - 1) % self.config.every_nth == 0
        keep = nth_ok and self._fps_due()
        if not keep:
            self._count("skipped")
        return keep

    def _fps_due(self) -> bool:
        fps = self.config.fps
        if fps is None or self.lossless or self._paced_by_fps():
            return True
        now = self._clock.monotonic()
        period = 1.0 / fps
        # 10% slack: a 30 fps camera limited to 15 fps keeps every other frame despite jitter.
        if self._next_due is not None and now < self._next_due - 0.1 * period:
            return False
        # Catch up from now if we fell far behind, so a stall does not cause a burst.
        base = self._next_due if self._next_due and now - self._next_due < period else now
        self._next_due = base + period
        return True

    def _paced_by_fps(self) -> bool:
        return self._scheme == "synthetic"

    def _pace(self, period_s: float, due: float | None) -> float | None:
        """Wait for the next realtime slot; returns the following one (None: unpaced)."""
        if not self.config.realtime or period_s <= 0:
            return None
        now = self._clock.monotonic()
        if due is None or due < now - period_s:
            due = now
        if due > now and self._stop.wait(due - now):
            return due
        return due + period_s

    # -- live devices ------------------------------------------------------------------------
    def _open_live(self) -> Any:
        uri = self.config.uri
        parts = urlsplit(uri)
        if self._scheme == "csi":
            if not gstreamer_available():
                raise SourceUnavailable(
                    f"{uri}: this OpenCV build has no GStreamer support "
                    "(cv2.getBuildInformation() shows GStreamer: NO); install the JetPack OpenCV"
                )
            sensor = int(parts.netloc or parts.path.strip("/"))
            pipeline = csi_pipeline(
                sensor, self.config.width or 1280, self.config.height or 720, self.config.fps or 30
            )
            capture = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        elif self._scheme == "v4l2":
            capture = cv2.VideoCapture(parts.path, cv2.CAP_V4L2)
        else:
            timeout_ms = int(self._io_timeout_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms]
            params += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
            capture = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            raise SourceUnavailable(f"{redact(uri)}: cannot open")
        # Keep at most one buffered frame where the backend supports it (V4L2, GStreamer);
        # FFmpeg network streams ignore it, which is why the thread grabs continuously.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if self._scheme == "v4l2":
            for prop, value in (
                (cv2.CAP_PROP_FRAME_WIDTH, self.config.width),
                (cv2.CAP_PROP_FRAME_HEIGHT, self.config.height),
                (cv2.CAP_PROP_FPS, self.config.fps),
            ):
                if value is not None:
                    capture.set(prop, value)
        return capture

    def _pump_live(self, capture: Any) -> None:
        failures = 0
        while not self._stop.is_set():
            if not capture.grab():
                failures += 1
                if failures >= _LIVE_LOST_FAILURES:
                    raise SourceUnavailable(f"{redact(self.config.uri)}: stream lost")
                continue
            failures = 0
            if not self._wanted():
                continue
            ok, image = capture.retrieve()
            if not ok or image is None:
                self._count("decode_errors")
                continue
            if not self._emit(image):
                return

    # -- files -------------------------------------------------------------------------------
    def _pump_file(self) -> bool:
        path = urlsplit(self.config.uri).path
        if not Path(path).is_file():
            raise SourceUnavailable(f"{path}: video file not found")
        due: float | None = None
        while not self._stop.is_set():
            capture = cv2.VideoCapture(path)
            if not capture.isOpened():
                capture.release()
                raise SourceUnavailable(f"{path}: cannot open video file")
            self._set_state("up")
            # Realtime playback runs at the file's own rate; ``fps`` then limits what is kept.
            period = 1.0 / (capture.get(cv2.CAP_PROP_FPS) or 30.0)
            try:
                due, keep_going = self._pump_file_once(capture, period, due)
            finally:
                capture.release()
            if not keep_going:
                return False
            if not self.config.loop:
                return True
        return False

    def _pump_file_once(
        self, capture: Any, period: float, due: float | None
    ) -> tuple[float | None, bool]:
        """Play the file once; returns the next pacing slot and False if told to stop."""
        failures = 0
        while not self._stop.is_set():
            due = self._pace(period, due)
            if self._stop.is_set():
                break
            if not capture.grab():
                failures += 1
                if failures >= _FILE_END_FAILURES:
                    return due, True  # end of file (trailing failures are not counted)
                continue
            # Failed grabs followed by a good one were corrupt frames, skipped and counted.
            for _ in range(failures):
                self._count("decode_errors")
            failures = 0
            if not self._wanted():
                continue
            ok, image = capture.retrieve()
            if not ok or image is None:
                self._count("decode_errors")
                continue
            if not self._emit(image):
                return due, False
        return due, False

    # -- synthetic ---------------------------------------------------------------------------
    def _pump_synthetic(self) -> bool:
        parts = urlsplit(self.config.uri)
        kind = parts.netloc or parts.path.strip("/")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}

        frames = synthetic_frames(kind, query, self.config)
        self._set_state("up")
        period = 1.0 / (self.config.fps or 30.0)
        due: float | None = None
        for image, truth in frames:
            due = self._pace(period, due)
            if self._stop.is_set():
                return False
            if self._wanted() and not self._emit(image, truth):
                return False
        return True
