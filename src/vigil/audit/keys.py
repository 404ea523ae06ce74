"""The audit log's Ed25519 signing key: created on first use (0600, its public key beside it as
``.pub``), read after; the key id a checkpoint names. And the workspace's secret for keyed
fingerprints in audit events (:func:`load_or_create_secret`)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_MODE: Final = 0o600
_T = TypeVar("_T")


class AuditKeyError(Exception):
    """The audit signing key cannot be read or created."""


def key_id(public: Ed25519PublicKey) -> str:
    """The id of a public key: the first 16 hex digits of the SHA-256 of its raw 32 bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_path(key_path: Path) -> Path:
    """Where the public key of ``key_path`` is written: beside it, ``.pub`` for its suffix."""
    return key_path.with_suffix(".pub")


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key stored at ``path`` (PEM, PKCS#8); created with mode 0600 when the
    file does not exist, with its public key (PEM) written beside it (:func:`public_key_path`).
    Raises AuditKeyError when the file cannot be read, created or parsed."""
    return _load_or_create(path, "audit signing key", _parse_key, _new_key)


def _parse_key(path: Path, data: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise AuditKeyError(f"audit signing key {str(path)!r} is not a PEM private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"audit signing key {str(path)!r} is not an Ed25519 key")
    return key


def _new_key() -> tuple[Ed25519PrivateKey, bytes, bytes | None]:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem, pub


SECRET_BYTES: Final = 32


def load_or_create_secret(path: Path) -> bytes:
    """The random secret stored at ``path`` (:data:`SECRET_BYTES` bytes, for HMAC keys); created
    with mode 0600 when the file does not exist (by whichever process is first). Raises
    AuditKeyError when it cannot be read or created, or is not a secret of that size."""
    return _load_or_create(path, "secret", _parse_secret, _new_secret)


def _parse_secret(path: Path, data: bytes) -> bytes:
    if len(data) != SECRET_BYTES:
        raise AuditKeyError(f"secret {str(path)!r} is not {SECRET_BYTES} bytes")
    return data


def _new_secret() -> tuple[bytes, bytes, bytes | None]:
    secret = os.urandom(SECRET_BYTES)
    return secret, secret, None


def _load_or_create(
    path: Path,
    what: str,
    parse: Callable[[Path, bytes], _T],
    new: Callable[[], tuple[_T, bytes, bytes | None]],
) -> _T:
    """``parse`` of the file at ``path``; when there is none, ``new()``'s value, its bytes written
    to a file created 0600 (and the public part it returns, when not None, beside it at
    :func:`public_key_path`). When another process created the file first, that one is read.
    Raises AuditKeyError naming ``what`` when the file cannot be read or created (``parse`` raises
    its own)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as e:
        raise AuditKeyError(f"cannot read {what} {str(path)!r}: {e.strerror}") from None
    if data is not None:
        return parse(path, data)
    value, stored, public = new()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_new(path, stored)
        if public is not None:
            _write_new(public_key_path(path), public, replace=True)
    except FileExistsError:  # another process created it first: use that one
        return _load_or_create(path, what, parse, new)
    except OSError as e:
        raise AuditKeyError(f"cannot create {what} {str(path)!r}: {e.strerror}") from None
    return value


def _write_new(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write ``data`` to a file created with mode 0600 (O_EXCL unless ``replace``); raises OSError."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, KEY_MODE)
    try:
        os.fchmod(fd, KEY_MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
