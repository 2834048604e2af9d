"""Staging a pushed model: fetch a URL (resumable, size-capped) and verify its sha256.

A download goes to ``<models_dir>/<sha256>.onnx.part``; an interrupted one resumes with an HTTP
``Range`` request. Only a file whose sha256 matches is renamed into place, so a half or corrupt
download is never loaded.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
from pathlib import Path

from edge_agent.fleet.document import DocumentRejected, ModelRef
from edge_agent.fleet.merge import model_file

logger = logging.getLogger(__name__)

CHUNK = 1 << 16


def sha256_of(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as src:
        for block in iter(lambda: src.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def stage_model(ref: ModelRef, models_dir: Path, max_bytes: int, timeout_s: float = 30.0) -> Path:
    """The verified local model file for ``ref``.

    Raises:
        DocumentRejected: missing file, download failure, over the size cap or a sha256
            mismatch.
    """
    target = model_file(ref, models_dir)
    try:
        fresh = target.is_file() and sha256_of(target) == ref.sha256
    except OSError:
        fresh = False
    if ref.url is not None and not fresh:
        _download(ref.url, target, max_bytes, timeout_s)
    try:
        return _verified(ref, target)
    except OSError as err:
        raise DocumentRejected(f"model file unreadable: {err}") from err


def _verified(ref: ModelRef, target: Path) -> Path:
    if not target.is_file():
        raise DocumentRejected(
            f"model file not found: {target}", ("sections.model.path: not found",)
        )
    actual = sha256_of(target)
    if actual != ref.sha256:
        if ref.url is not None:
            target.unlink(missing_ok=True)
        raise DocumentRejected(
            f"model sha256 mismatch: expected {ref.sha256[:12]}…, got {actual[:12]}…",
            ("sections.model.sha256: does not match the model file",),
        )
    return target


def _download(url: str, target: Path, max_bytes: int, timeout_s: float) -> None:
    part = target.with_name(target.name + ".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url)  # noqa: S310 - ModelRef allows only http(s)
        if have:
            request.add_header("Range", f"bytes={have}-")
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            if have and response.status != 206:
                have = 0  # the server ignored the Range: start over
            length = response.headers.get("Content-Length")
            if length is not None and have + int(length) > max_bytes:
                raise DocumentRejected(f"model at {url} is larger than {max_bytes} bytes")
            with part.open("ab" if have else "wb") as out:
                size = have
                for block in iter(lambda: response.read(CHUNK), b""):
                    size += len(block)
                    if size > max_bytes:
                        raise DocumentRejected(f"model at {url} is larger than {max_bytes} bytes")
                    out.write(block)
        part.replace(target)
    except DocumentRejected:
        part.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise DocumentRejected(f"model download failed: {err}") from err
    logger.info("model fetched from %s into %s", url, target)
