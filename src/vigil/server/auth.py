"""Caller (PEP) authentication: bearer API keys, compared in constant time, never logged.

Keys come from an environment variable (comma-separated) and/or a keys file (one key a line,
``#`` comments). Only SHA-256 digests are kept in memory; ``repr`` shows the count, never a key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from vigil.errors import WorkspaceError

MIN_KEY_LENGTH: Final = 16
API_KEYS_ENV: Final = "VIGIL_API_KEYS"
ADMIN_KEYS_ENV: Final = "VIGIL_ADMIN_KEYS"


class KeyRing:
    """A set of API keys. :meth:`verify` checks a presented key against every one of them."""

    __slots__ = ("_digests",)

    def __init__(self, keys: Iterable[str]) -> None:
        digests = []
        for key in keys:
            if len(key) < MIN_KEY_LENGTH:
                raise WorkspaceError(
                    f"an API key is shorter than {MIN_KEY_LENGTH} characters",
                    [f"API keys must be at least {MIN_KEY_LENGTH} characters"],
                )
            digests.append(hashlib.sha256(key.encode()).digest())
        self._digests: tuple[bytes, ...] = tuple(digests)

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._digests)} keys)"

    def verify(self, presented: bytes) -> bool:
        """Whether ``presented`` is one of the keys. Every key is compared (constant time per key,
        no early exit), so timing tells nothing about which key or how much of it matched."""
        digest = hashlib.sha256(presented).digest()
        ok = False
        for d in self._digests:
            ok |= hmac.compare_digest(d, digest)
        return ok

    def verify_bearer(self, authorization: bytes | None) -> bool:
        """Whether an ``Authorization`` header value is ``Bearer <one of the keys>``."""
        if not authorization or len(authorization) > 4096:
            return False
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        token = token.strip()
        return bool(token) and self.verify(token)


def key_name(authorization: bytes | None) -> str:
    """The name an ``Authorization: Bearer <key>`` is audited under: ``key:`` and the first 12
    hex digits of the key's SHA-256 (a fingerprint, never the key); ``anonymous`` without one."""
    if not authorization:
        return "anonymous"
    _, _, token = authorization.partition(b" ")
    token = token.strip()
    return "key:" + hashlib.sha256(token).hexdigest()[:12] if token else "anonymous"


def read_keys_file(path: Path) -> list[str]:
    """Keys from a file (one a line; blank lines and ``#`` comments skipped); raises WorkspaceError
    when the file cannot be read. The message names the file, never its content."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not valid UTF-8"
        raise WorkspaceError(
            f"cannot read keys file {str(path)!r}: {reason}", [f"{path}: {reason}"]
        ) from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def load_keys(env_var: str, keys_file: str, workspace: Path) -> KeyRing:
    """The keys of environment variable ``env_var`` plus those of ``keys_file`` (relative to the
    workspace; empty for none). Raises WorkspaceError for an unreadable file or a too-short key."""
    keys = [k.strip() for k in os.environ.get(env_var, "").split(",") if k.strip()]
    if keys_file:
        path = Path(keys_file)
        keys.extend(read_keys_file(path if path.is_absolute() else workspace / path))
    return KeyRing(keys)
