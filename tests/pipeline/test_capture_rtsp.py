"""A real RTSP stream: the source goes down when the server dies and back up when it returns."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.clock import SystemClock
from edge_agent.config import CameraConfig
from edge_agent.pipeline.capture import Source
from tests.pipeline.rtsp_server import RtspServer, ffmpeg_path
from tests.pipeline.test_capture import Collector, write_video


@pytest.fixture
def rtsp_server(tmp_path: Path) -> Iterator[RtspServer]:
    if ffmpeg_path() is None:
        if os.environ.get("CI"):
            pytest.fail("ffmpeg is not installed; .ci/run must apt-get install it")
        pytest.skip("ffmpeg is not installed (apt-get install -y ffmpeg)")
    server = RtspServer(write_video(tmp_path / "clip.avi", 30, size=(64, 48)))
    server.start()
    yield server
    server.close()


@pytest.mark.slow
def test_rtsp_source_reports_down_then_reconnects(rtsp_server: RtspServer) -> None:
    config = CameraConfig(name="door", uri=rtsp_server.url, reconnect_max_s=0.2)
    sink = Collector(want=10)
    source = Source(config, SystemClock(), sink, io_timeout_s=1.0)
    source.start()
    try:
        assert source.wait_for_state("up", 15)
        assert sink.enough.wait(15)
        first = sink.frames[0]
        assert first.image.shape == (48, 64, 3)
        assert first.camera == "door"
        assert sink.lossless[0] is False  # a live stream is never waited for

        rtsp_server.stop()
        assert source.wait_for_state("down", 15)
        assert "stream lost" in (source.stats().last_error or "")

        before = len(sink.frames)
        rtsp_server.start()
        assert source.wait_for_state("up", 15)
        sink.enough.clear()
        sink.want = before + 5
        assert sink.enough.wait(15)
        stats = source.stats()
        assert stats.reconnects >= 1
        seqs = [f.seq for f in sink.frames]
        assert seqs == list(range(len(seqs)))  # numbering continues across the reconnect
    finally:
        source.stop()
        source.join(10)
    assert source.stats().state == "stopped"
