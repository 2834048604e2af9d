"""OpenCV's own log, kept in step with the agent's.

OpenCV writes its C++ ``[ WARN:0@0.01] global cap_v4l.cpp ...`` lines straight to stderr,
past Python's logging. The agent reports what matters itself (a camera down, with the reason),
so OpenCV is held to errors unless the agent logs at DEBUG (``-vv``). The agent sets this once,
at start; ``OPENCV_LOG_LEVEL`` cannot do it, because OpenCV reads it when cv2 is imported.
"""

from __future__ import annotations

import logging

import cv2

# cv2.utils.logging levels: 0 silent, 1 fatal, 2 error, 3 warning, 4 info, 5 debug, 6 verbose.
OPENCV_ERROR = 2
OPENCV_INFO = 4


def follow_python_logging() -> int:
    """Set OpenCV's level from the ``edge_agent`` logger's; returns the level set."""
    verbose = logging.getLogger("edge_agent").isEnabledFor(logging.DEBUG)
    level = OPENCV_INFO if verbose else OPENCV_ERROR
    cv2.utils.logging.setLogLevel(level)
    return level


def opencv_log_level() -> int:
    """OpenCV's current log level."""
    return int(cv2.utils.logging.getLogLevel())
