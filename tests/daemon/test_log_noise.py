"""Log noise: chatty libraries stay quiet at -v, OpenCV's native warnings stay off stderr."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import cv2
import pytest

from edge_agent.cli.main import CHATTY_LOGGERS, configure_logging
from edge_agent.pipeline.opencv_log import (
    OPENCV_ERROR,
    OPENCV_INFO,
    follow_python_logging,
    opencv_log_level,
)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    chatty = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    opencv = opencv_log_level()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in chatty.items():
        logging.getLogger(name).setLevel(old)
    cv2.utils.logging.setLogLevel(opencv)


def _emit_chatter() -> None:
    logging.getLogger("amqtt.broker").info("Listener 'default' bind to 127.0.0.1:1883")
    logging.getLogger("transitions.core").info("Finished processing state connected")
    logging.getLogger("edge_agent.agent.daemon").info("agent started")


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(("verbosity", "expected"), [(0, 0), (1, 1), (2, 3)])
def test_v_shows_our_info_but_not_amqtt_or_transitions_until_vv(
    verbosity: int, expected: int, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging(verbosity)
    _emit_chatter()
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == expected
    if verbosity == 1:
        assert lines == ["INFO edge_agent.agent.daemon [MainThread] agent started"]


@pytest.mark.usefixtures("restore_logging")
def test_opencv_warnings_stay_off_stderr_unless_vv(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(1)
    assert follow_python_logging() == OPENCV_ERROR
    capfd.readouterr()
    assert not cv2.VideoCapture(99).isOpened()  # OpenCV warns "can't open camera by index"
    assert capfd.readouterr().err == ""
    configure_logging(2)
    assert follow_python_logging() == OPENCV_INFO
    assert not cv2.VideoCapture(99).isOpened()
    assert "WARN" in capfd.readouterr().err
