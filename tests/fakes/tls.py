"""A TLS mosquitto for tests: a throwaway CA and server certificate made with openssl."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.fakes.broker import MosquittoBroker


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, timeout=60, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, crt = directory / f"{name}.key", directory / f"{name}.crt"
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        str(key),
        "-out",
        str(crt),
    )
    return key, crt


def tls_broker_in(tmp_path: Path) -> tuple[MosquittoBroker, Path, Path]:
    """A mosquitto (not started) with a TLS listener on 127.0.0.1 signed by a fresh test CA;
    returns it, that CA's certificate and another CA's (which the server does not match)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = make_ca(tmp_path, "test-ca")
    _other_key, other_crt = make_ca(tmp_path, "other-ca")
    key, csr, crt = tmp_path / "server.key", tmp_path / "server.csr", tmp_path / "server.crt"
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    ext = tmp_path / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_crt),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(crt),
    )
    broker = MosquittoBroker(tmp_path)
    broker.conf.write_text(
        broker.conf.read_text(encoding="utf-8")
        + f"cafile {ca_crt}\ncertfile {crt}\nkeyfile {key}\n"
        + ("user root\n" if os.geteuid() == 0 else ""),
        encoding="utf-8",
    )
    return broker, ca_crt, other_crt
