"""A real HTTP MJPEG camera that delivers a few frames and then goes silent, connection open.

The stand-in for a wedged capture: the stream stays up (OpenCV's FFmpeg backend opened it and
keeps waiting) but no frame ever comes again.
"""

from __future__ import annotations

import socket
import threading

import cv2
import numpy as np

BOUNDARY = b"frame"


class SilentMjpegCamera:
    """Serves ``frames`` JPEG frames at ``fps`` to the first client, then nothing until closed."""

    def __init__(self, frames: int, fps: float = 10.0) -> None:
        self._frames = frames
        self._period_s = 1.0 / fps
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.sent = 0
        self.silent = threading.Event()  # set once the last frame is out
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-mjpeg", daemon=True)

    def __enter__(self) -> SilentMjpegCamera:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._sock.close()  # wakes accept() if no client ever came
        self._thread.join(10)

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)  # the GET request
            conn.sendall(
                b"HTTP/1.0 200 OK\r\n"
                b"Content-Type: multipart/x-mixed-replace; boundary=" + BOUNDARY + b"\r\n\r\n"
            )
            ok, jpeg = cv2.imencode(".jpg", np.full((32, 32, 3), 128, dtype=np.uint8))
            data = jpeg.tobytes() if ok else b""
            part = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (
                BOUNDARY,
                len(data),
            )
            for _ in range(self._frames):
                if self._closing.wait(self._period_s):
                    return
                try:
                    conn.sendall(part + data + b"\r\n")
                except OSError:
                    return
                self.sent += 1
            self.silent.set()
            self._closing.wait()
