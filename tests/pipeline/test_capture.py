"""Capture sources: real video files written with cv2.VideoWriter, synthetic sources, CSI."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge_agent.clock import SystemClock
from edge_agent.config import CameraConfig
from edge_agent.pipeline.capture import (
    Frame,
    Source,
    csi_pipeline,
    gstreamer_available,
    redact,
)
from edge_agent.pipeline.model_meta import load_holdout


def write_video(
    path: Path, count: int, size: tuple[int, int] = (64, 48), fps: float = 30.0
) -> Path:
    """An MJPG AVI whose frame i is a flat gray of value 4*i (readable back within JPEG error)."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for index in range(count):
        writer.write(np.full((height, width, 3), 4 * index, np.uint8))
    writer.release()
    return path


def corrupt_frames(path: Path, indices: list[int]) -> None:
    """Overwrite the JPEG data of some frames so their decode fails."""
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    for index in indices:
        data[starts[index] : starts[index] + 200] = bytes(200)
    path.write_bytes(bytes(data))


class Collector:
    """A sink that records frames and can signal after N of them."""

    def __init__(self, want: int = 0) -> None:
        self.frames: list[Frame] = []
        self.lossless: list[bool] = []
        self.enough = threading.Event()
        self.want = want

    def __call__(self, frame: Frame, lossless: bool) -> bool:
        self.frames.append(frame)
        self.lossless.append(lossless)
        if self.want and len(self.frames) >= self.want:
            self.enough.set()
        return True


@pytest.fixture
def run_source() -> Iterator[list[Source]]:
    sources: list[Source] = []
    yield sources
    for source in sources:
        source.stop()
        source.join(10)


def _start(
    sources: list[Source], config: CameraConfig, sink: Collector, io_timeout_s: float = 5.0
) -> Source:
    source = Source(config, SystemClock(), sink, io_timeout_s=io_timeout_s)
    sources.append(source)
    source.start()
    return source


def test_file_source_reads_every_frame_in_order(tmp_path: Path, run_source: list[Source]) -> None:
    video = write_video(tmp_path / "clip.avi", 12)
    config = CameraConfig(name="cam", uri=f"file://{video}", loop=False, realtime=False)
    sink = Collector()
    source = _start(run_source, config, sink)
    assert source.wait_for_state("ended", 10)
    assert [f.seq for f in sink.frames] == list(range(12))
    means = [float(f.image.mean()) for f in sink.frames]
    assert means == pytest.approx([4.0 * i for i in range(12)], abs=3)
    assert all(f.image.shape == (48, 64, 3) and f.camera == "cam" for f in sink.frames)
    stamps = [f.captured_mono for f in sink.frames]
    assert stamps == sorted(stamps)
    assert all(sink.lossless)  # a file replayed as fast as possible must not be dropped
    stats = source.stats()
    assert (stats.captured, stats.skipped, stats.decode_errors, stats.reconnects) == (12, 0, 0, 0)


def test_every_nth_keeps_one_frame_in_n(tmp_path: Path, run_source: list[Source]) -> None:
    video = write_video(tmp_path / "clip.avi", 10)
    config = CameraConfig(
        name="cam", uri=f"file://{video}", loop=False, realtime=False, every_nth=3
    )
    sink = Collector()
    source = _start(run_source, config, sink)
    assert source.wait_for_state("ended", 10)
    means = [round(float(f.image.mean()) / 4) for f in sink.frames]
    assert means == [0, 3, 6, 9]
    assert source.stats().skipped == 6


def test_looping_file_restarts_until_stopped(tmp_path: Path, run_source: list[Source]) -> None:
    video = write_video(tmp_path / "clip.avi", 5)
    config = CameraConfig(name="cam", uri=f"file://{video}", loop=True, realtime=False)
    sink = Collector(want=12)
    source = _start(run_source, config, sink)
    assert sink.enough.wait(10)
    source.stop()
    source.join(10)
    assert source.stats().state == "stopped"
    means = [round(float(f.image.mean()) / 4) for f in sink.frames[:12]]
    assert means == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]


def test_corrupt_frames_are_skipped_and_counted(tmp_path: Path, run_source: list[Source]) -> None:
    video = write_video(tmp_path / "clip.avi", 20)
    corrupt_frames(video, [5, 12])
    config = CameraConfig(name="cam", uri=f"file://{video}", loop=False, realtime=False)
    sink = Collector()
    source = _start(run_source, config, sink)
    assert source.wait_for_state("ended", 10)
    stats = source.stats()
    assert stats.decode_errors == 2
    assert len(sink.frames) == 18
    kept = {round(float(f.image.mean()) / 4) for f in sink.frames}
    assert not kept & {5, 12}


def test_missing_file_is_down_and_retried(tmp_path: Path, run_source: list[Source]) -> None:
    config = CameraConfig(
        name="cam", uri=f"file://{tmp_path}/missing.avi", realtime=False, reconnect_max_s=0.05
    )
    source = _start(run_source, config, Collector())
    assert source.wait_for_state("down", 10)
    stats = source.stats()
    assert stats.last_error is not None
    assert "missing.avi" in stats.last_error
    # Write the file: the next retry opens it.
    write_video(tmp_path / "missing.avi", 3)
    assert source.wait_for_state("up", 10) or source.stats().state == "ended"
    assert source.stats().reconnects >= 1


def test_synthetic_digits_are_labelled_held_out_images(run_source: list[Source]) -> None:
    config = CameraConfig(name="digits", uri="synthetic://digits", realtime=False, loop=False)
    sink = Collector()
    source = _start(run_source, config, sink)
    assert source.wait_for_state("ended", 20)
    images, labels = load_holdout()
    assert len(sink.frames) == len(labels)
    assert [f.truth for f in sink.frames] == [str(int(x)) for x in labels]
    first = sink.frames[0].image
    assert first.shape == (64, 64, 3)
    small = cv2.resize(first[:, :, 0], (8, 8), interpolation=cv2.INTER_AREA)
    assert np.array_equal(small, images[0])


def test_synthetic_pattern_is_deterministic(run_source: list[Source]) -> None:
    uri = "synthetic://pattern?w=40&h=30"
    sinks = [Collector(want=5), Collector(want=5)]
    for index, sink in enumerate(sinks):
        config = CameraConfig(name=f"p{index}", uri=uri, realtime=False)
        _start(run_source, config, sink)
    assert all(sink.enough.wait(10) for sink in sinks)
    for source in run_source:
        source.stop()
    first, second = sinks[0].frames[:5], sinks[1].frames[:5]
    assert first[0].image.shape == (30, 40, 3)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0].image, first[1].image)  # it moves


def test_unknown_synthetic_kind_is_refused_then_down(run_source: list[Source]) -> None:
    with pytest.raises(ValidationError, match="unknown synthetic kind 'nothing'"):
        CameraConfig(name="x", uri="synthetic://nothing")
    # A section built without validation still cannot crash the capture thread.
    config = CameraConfig.model_construct(name="x", uri="synthetic://nothing", reconnect_max_s=1)
    source = _start(run_source, config, Collector())
    assert source.wait_for_state("down", 10)
    assert "unknown kind" in (source.stats().last_error or "")


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer")
def test_csi_without_gstreamer_is_down_with_a_clear_reason(run_source: list[Source]) -> None:
    source = _start(run_source, CameraConfig(name="csi", uri="csi://0"), Collector())
    assert source.wait_for_state("down", 10)
    assert "GStreamer" in (source.stats().last_error or "")


def test_csi_pipeline_string_uses_nvargus_and_drops_stale_buffers() -> None:
    text = csi_pipeline(1, 1920, 1080, 30.0)
    assert text.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "width=1920, height=1080, framerate=30/1" in text
    assert text.endswith("appsink drop=true max-buffers=1 sync=false")


def test_redact_hides_passwords() -> None:
    assert redact("rtsp://user:secret@cam/live") == "rtsp://user:***@cam/live"
    assert redact("rtsp://cam/live") == "rtsp://cam/live"


def test_missing_v4l2_device_is_down(run_source: list[Source]) -> None:
    config = CameraConfig(name="usb", uri="v4l2:///dev/video-missing", reconnect_max_s=1)
    source = _start(run_source, config, Collector())
    assert source.wait_for_state("down", 10)
    assert "cannot open" in (source.stats().last_error or "")
