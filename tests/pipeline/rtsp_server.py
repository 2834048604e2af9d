"""A small real RTSP server for capture tests: ffmpeg packetises, Python speaks RTSP.

Debian's ffmpeg 5.1 cannot *serve* RTSP (``-rtsp_flags listen`` only receives a pushed
stream), so this server answers OPTIONS/DESCRIBE/SETUP/PLAY/TEARDOWN itself and forwards the
RTP packets (MPEG-4 part 2, keyframe every 10 frames) that
``ffmpeg -re -stream_loop -1 ... -f rtp`` sends it to each playing client. The client is the
real OpenCV/FFmpeg RTSP stack. Both transports work: UDP (RTP to the client's port) and TCP
interleaved (``$``-framed on the RTSP connection, OpenCV's default).
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class _Client:
    conn: socket.socket
    udp_port: int | None = None
    channel: int | None = None
    send_lock: threading.Lock = field(default_factory=threading.Lock)


def ffmpeg_path() -> str | None:
    """The ffmpeg binary, if installed."""
    return shutil.which("ffmpeg")


def _udp_pair() -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on consecutive ports (RTP even, RTCP odd), as ffmpeg expects."""
    for _ in range(50):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        port = rtp.getsockname()[1]
        if port % 2:
            rtp.close()
            continue
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind(("127.0.0.1", port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        return rtp, rtcp
    raise RuntimeError("no free UDP port pair")


class RtspServer:
    """Serves a looping video file at ``rtsp://127.0.0.1:<port>/cam``.

    ``stop()`` kills ffmpeg and closes every socket (clients see the stream vanish);
    ``start()`` again serves on the same port.
    """

    def __init__(self, video: Path, port: int | None = None) -> None:
        self._video = video
        self._sdp_path = video.with_suffix(".sdp")
        self._sdp = ""
        self.port = port or _free_tcp_port()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: dict[int, _Client] = {}
        self._lock = threading.Lock()
        self._ffmpeg: subprocess.Popen[bytes] | None = None
        self._listener: socket.socket | None = None
        self._rtp: socket.socket | None = None
        self._rtcp: socket.socket | None = None
        self._out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    @property
    def url(self) -> str:
        """The stream's URL."""
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        """Start ffmpeg and accept RTSP clients."""
        binary = ffmpeg_path()
        if binary is None:
            raise RuntimeError("ffmpeg is not installed")
        self._stop.clear()
        self._sdp_path.unlink(missing_ok=True)
        self._rtp, self._rtcp = _udp_pair()
        self._rtp.settimeout(0.2)
        rtp_port = self._rtp.getsockname()[1]
        self._ffmpeg = subprocess.Popen(
            [binary, "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
              "-i", str(self._video), "-an", "-c:v", "mpeg4", "-g", "10", "-q:v", "5",
             "-f", "rtp", "-sdp_file", str(self._sdp_path),
             f"rtp://127.0.0.1:{rtp_port}?pkt_size=1200"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._sdp = self._read_sdp()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(8)
        listener.settimeout(0.2)
        self._listener = listener
        self._spawn(self._accept_loop, "rtsp-accept")
        self._spawn(self._relay_loop, "rtsp-relay")

    def _read_sdp(self) -> str:
        # ffmpeg writes the SDP (codec config included) once its output is set up.
        for _ in range(200):
            if self._sdp_path.is_file() and "m=video" in self._sdp_path.read_text():
                break
            self._stop.wait(0.05)
        lines = [
            "m=video 0 RTP/AVP 96" if line.startswith("m=video") else line
            for line in self._sdp_path.read_text().splitlines()
            if line and not line.startswith("SDP:")
        ]
        return "\r\n".join([*lines, "a=control:track0", ""])

    def stop(self) -> None:
        """Kill ffmpeg, drop every client and close the sockets."""
        self._stop.set()
        if self._ffmpeg is not None:
            self._ffmpeg.kill()
            self._ffmpeg.wait(timeout=10)
            self._ffmpeg = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        for sock in (self._listener, self._rtp, self._rtcp):
            if sock is not None:
                sock.close()
        self._listener = self._rtp = self._rtcp = None
        with self._lock:
            self._clients.clear()

    def close(self) -> None:
        """Stop and release the output socket."""
        self.stop()
        self._out.close()

    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(0.2)
            self._spawn(self._serve, "rtsp-conn", conn)

    def _relay_loop(self) -> None:
        assert self._rtp is not None
        while not self._stop.is_set():
            try:
                packet = self._rtp.recv(65536)
            except TimeoutError:
                continue
            with self._lock:
                targets = list(self._clients.values())
            for client in targets:
                if client.udp_port is not None:
                    self._out.sendto(packet, ("127.0.0.1", client.udp_port))
                elif client.channel is not None:
                    frame = b"$" + struct.pack("!BH", client.channel, len(packet)) + packet
                    with client.send_lock:
                        try:
                            client.conn.sendall(frame)
                        except OSError:
                            continue

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        key = id(conn)
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                buffer += chunk
                while buffer:
                    if buffer[:1] == b"$":  # interleaved RTCP from the client: skip it
                        if len(buffer) < 4:
                            break
                        size = 4 + struct.unpack("!H", buffer[2:4])[0]
                        if len(buffer) < size:
                            break
                        buffer = buffer[size:]
                        continue
                    if b"\r\n\r\n" not in buffer:
                        break
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    answer = self._answer(conn, head.decode("latin-1"))
                    with self._lock:
                        client = self._clients.get(key)
                    if client is None:
                        conn.sendall(answer)
                    else:
                        with client.send_lock:
                            conn.sendall(answer)
        with self._lock:
            self._clients.pop(key, None)

    def _answer(self, conn: socket.socket, request: str) -> bytes:
        key = id(conn)
        lines = request.split("\r\n")
        method = lines[0].split(" ")[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        extra = ""
        body = ""
        if method == "OPTIONS":
            extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n"
        elif method == "DESCRIBE":
            body = self._sdp
            extra = f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n"
        elif method == "SETUP":
            transport = headers.get("transport", "")
            params = dict(p.partition("=")[::2] for p in transport.split(";"))
            client = _Client(conn)
            if "interleaved" in params:
                client.channel = int(params["interleaved"].split("-")[0])
                reply = f"RTP/AVP/TCP;unicast;interleaved={params['interleaved']}"
            elif "client_port" in params:
                client.udp_port = int(params["client_port"].split("-")[0])
                assert self._rtp is not None
                server = self._rtp.getsockname()[1]
                reply = (
                    f"RTP/AVP;unicast;client_port={params['client_port']};"
                    f"server_port={server}-{server + 1}"
                )
            else:
                return _reply(headers, "461 Unsupported Transport")
            with self._lock:
                self._clients[key] = client
            extra = f"Transport: {reply}\r\nSession: 4242;timeout=60\r\n"
        elif method == "PLAY":
            extra = "Session: 4242\r\nRange: npt=0.000-\r\n"
        elif method == "TEARDOWN":
            with self._lock:
                self._clients.pop(key, None)
        return _reply(headers, "200 OK", extra, body)


def _reply(headers: dict[str, str], status: str, extra: str = "", body: str = "") -> bytes:
    text = f"RTSP/1.0 {status}\r\nCSeq: {headers.get('cseq', '0')}\r\n{extra}"
    text += f"Content-Length: {len(body)}\r\n\r\n{body}"
    return text.encode("latin-1")


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
