"""Ed25519 signatures over a document's canonical form, and the trusted keys that check them.

The canonical form is the document without ``signature``, as compact JSON with sorted keys
(UTF-8, no NaN). It includes ``target``, ``version`` and ``key_id``, so a document signed for
one group or device cannot be replayed to another, nor its version changed.

Keys are files: ``<key_id>.key`` (PKCS#8 PEM, private, mode 0600) and ``<key_id>.pub``
(SubjectPublicKeyInfo PEM). ``fleet.trusted_keys`` names a folder of ``.pub`` files; several
keys at once allow rotation.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_agent.errors import ConfigError, FieldError
from edge_agent.fleet.document import DocumentRejected

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def canonical_bytes(data: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the document minus ``signature``, canonical JSON."""
    body = {key: value for key, value in data.items() if key != "signature"}
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def generate_key(folder: Path, key_id: str) -> tuple[Path, Path]:
    """Write a new key pair ``<key_id>.key`` (0600) and ``<key_id>.pub``; returns both paths.

    Raises:
        ValueError: a bad key id, or a key of that name exists already.
    """
    if not _KEY_ID.match(key_id):
        raise ValueError(f"key id {key_id!r} may hold only letters, digits, '_', '.' and '-'")
    folder.mkdir(parents=True, exist_ok=True)
    private_path = folder / f"{key_id}.key"
    public_path = folder / f"{key_id}.pub"
    if private_path.exists() or public_path.exists():
        raise ValueError(f"a key named {key_id} exists in {folder}")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file.

    Raises:
        ValueError: unreadable, or not an Ed25519 private key.
    """
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"cannot load the private key {path}: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def sign_document(data: Mapping[str, Any], key: Ed25519PrivateKey, key_id: str) -> dict[str, Any]:
    """The document with ``key_id`` set and a fresh ``signature`` (base64)."""
    body = {k: v for k, v in data.items() if k != "signature"}
    body["key_id"] = key_id
    body["signature"] = base64.b64encode(key.sign(canonical_bytes(body))).decode("ascii")
    return body


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys documents may be signed with, by key id. Empty: unsigned accepted."""

    keys: Mapping[str, Ed25519PublicKey]

    @property
    def required(self) -> bool:
        """Whether every document must be signed."""
        return bool(self.keys)

    def verify(self, data: Mapping[str, Any]) -> str | None:
        """Check the signature; returns the key id used (None when unsigned is accepted).

        Raises:
            DocumentRejected: unsigned while keys are configured, an unknown key id or a
                signature that does not verify.
        """
        key_id = data.get("key_id")
        signature = data.get("signature")
        version = data.get("version") if isinstance(data.get("version"), int) else None
        kid = key_id if isinstance(key_id, str) else None
        if not self.keys:
            return kid if signature is not None else None
        if signature is None or kid is None:
            raise DocumentRejected(
                "unsigned document; this device requires a signature", (), version, kid
            )
        public = self.keys.get(kid)
        if public is None:
            raise DocumentRejected(f"unknown signing key {kid!r}", (), version, kid)
        try:
            raw = base64.b64decode(str(signature), validate=True)
            public.verify(raw, canonical_bytes(data))
        except (InvalidSignature, binascii.Error, ValueError) as err:
            raise DocumentRejected(
                f"bad signature for key {kid!r} (the document was altered or signed for "
                "another target)",
                (),
                version,
                kid,
            ) from err
        return kid


def load_trusted_keys(folder: Path | None) -> TrustedKeys:
    """Every ``<key_id>.pub`` in ``folder``; none when ``folder`` is None.

    Raises:
        ConfigError: the folder is unreadable or holds a file that is not an Ed25519 key.
    """
    if folder is None:
        return TrustedKeys({})
    keys: dict[str, Ed25519PublicKey] = {}
    try:
        files = sorted(folder.glob("*.pub"))
        for path in files:
            key = serialization.load_pem_public_key(path.read_bytes())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 public key")
            keys[path.stem] = key
    except (OSError, ValueError) as err:
        raise ConfigError([FieldError("fleet.trusted_keys", f"{folder}: {err}")]) from err
    if not keys:
        raise ConfigError([FieldError("fleet.trusted_keys", f"no <key_id>.pub files in {folder}")])
    return TrustedKeys(keys)
