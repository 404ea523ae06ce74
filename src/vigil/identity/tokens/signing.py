"""The token service's signing keys: Ed25519 (EdDSA) or P-256 (ES256) private JWKs in one JSON file
of the workspace's state directory (``.vigil/oauth-keys.json``), created with mode 0600 and
replaced atomically.

Rotation with overlap: :meth:`SigningKeys.rotate` adds a new key that signs from then on, and
marks the previous signing key *retiring* until ``now + overlap_s`` (the longest an issued token
lives plus the clock skew): it stays in the JWKS, so tokens it signed keep verifying until they
expire, and is then dropped. Another process's rotation (the CLI beside a server) is picked up on
the next signature or unknown ``kid`` (one ``stat`` of the file).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any, Final

import orjson
from joserfc.jwk import ECKey, OKPKey, import_key

from vigil.identity.tokens.errors import SigningKeyError, TokenError
from vigil.identity.tokens.jwks import Key

FILE_NAME: Final = "oauth-keys.json"
KEY_MODE: Final = 0o600
ALGORITHMS: Final = ("EdDSA", "ES256")


def _generate(alg: str) -> OKPKey | ECKey:
    key: OKPKey | ECKey = (
        OKPKey.generate_key("Ed25519", private=True)
        if alg == "EdDSA"
        else ECKey.generate_key("P-256", private=True)
    )
    key.ensure_kid()  # the RFC 7638 thumbprint
    return key


class SigningKeys:
    """The keys in ``path`` (see the module documentation). Thread-safe.

    Raises SigningKeyError (``signing_key_unavailable``) when the file cannot be read, parsed or
    written."""

    def __init__(self, path: Path, *, alg: str = "EdDSA") -> None:
        if alg not in ALGORITHMS:
            raise SigningKeyError(f"signing algorithm {alg!r} is not one of {', '.join(ALGORITHMS)}")
        self.path = path
        self.alg = alg
        self._lock = threading.Lock()
        self._stat: tuple[int, int] | None = None
        self._entries: list[dict[str, Any]] = []
        self._private: dict[str, tuple[OKPKey | ECKey, str]] = {}
        self._public: dict[str, tuple[Key, str]] = {}

    # -- the file ----------------------------------------------------------------------------
    def ensure(self, now: float) -> None:
        """Create the file with one key when there is none; raises SigningKeyError."""
        with self._lock:
            self._load()
            if not self._entries:
                self._save([self._entry(_generate(self.alg), now)])

    def _entry(self, key: OKPKey | ECKey, now: float) -> dict[str, Any]:
        alg = "EdDSA" if isinstance(key, OKPKey) else "ES256"
        return {"kid": key.kid, "alg": alg, "created": now, "retires": None, "jwk": key.as_dict(private=True)}

    def _load(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stat = None
            self._install([])
            return
        except OSError as e:
            raise SigningKeyError(f"cannot read {str(self.path)!r}: {e.strerror}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stat:
            return
        try:
            entries = orjson.loads(self.path.read_bytes())["keys"]
            self._install(entries)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SigningKeyError(f"signing keys {str(self.path)!r} are unreadable: {e}") from None
        self._stat = stamp

    def _install(self, entries: list[dict[str, Any]]) -> None:
        private: dict[str, tuple[OKPKey | ECKey, str]] = {}
        public: dict[str, tuple[Key, str]] = {}
        for e in entries:
            key = import_key(e["jwk"])
            if not isinstance(key, OKPKey | ECKey) or e["alg"] not in ALGORITHMS:
                raise ValueError(f"key {e.get('kid')!r} is not an Ed25519 or P-256 key")
            private[e["kid"]] = (key, e["alg"])
            public[e["kid"]] = (import_key(key.as_dict(private=False)), e["alg"])  # type: ignore[assignment]
        self._entries = list(entries)
        self._private = private
        self._public = public

    def _save(self, entries: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, KEY_MODE)
            try:
                os.write(fd, orjson.dumps({"keys": entries}, option=orjson.OPT_INDENT_2))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(tmp, KEY_MODE)
            os.replace(tmp, self.path)
        except OSError as e:
            raise SigningKeyError(f"cannot write signing keys {str(self.path)!r}: {e.strerror}") from None
        self._stat = None
        self._load()

    # -- use ---------------------------------------------------------------------------------
    def signing_key(self, now: float) -> tuple[str, OKPKey | ECKey, str]:
        """``(kid, private key, alg)`` of the key that signs now (created when there is none);
        raises SigningKeyError."""
        with self._lock:
            self._load()
            if not self._entries:
                self._save([self._entry(_generate(self.alg), now)])
            current = next(e for e in reversed(self._entries) if e["retires"] is None)
            key, alg = self._private[current["kid"]]
            return current["kid"], key, alg

    def key(self, kid: str, now: float) -> tuple[Key, str]:
        """The public key ``kid`` (a :class:`~vigil.identity.tokens.jwks.KeySource`): current or
        retiring until its time; raises TokenError (``token_unknown_key``)."""
        found = self._public.get(kid)
        if found is None:
            with self._lock, contextlib.suppress(SigningKeyError):
                self._load()
            found = self._public.get(kid)
        if found is not None and self._live(kid, now):
            return found
        raise TokenError(f"no vigil signing key {kid[:100]!r}", code="token_unknown_key")

    def _live(self, kid: str, now: float) -> bool:
        for e in self._entries:
            if e["kid"] == kid:
                return e["retires"] is None or now < float(e["retires"])
        return False

    def jwks(self, now: float) -> dict[str, Any]:
        """The public JWK Set (``jwks_uri``): the signing key (created when there is none) and
        the retiring ones still live. Raises SigningKeyError."""
        with self._lock:
            self._load()
            if not self._entries:
                self._save([self._entry(_generate(self.alg), now)])
            keys = []
            for e in self._entries:
                if e["retires"] is None or now < float(e["retires"]):
                    pub = dict(self._public[e["kid"]][0].as_dict(private=False))
                    pub.update(kid=e["kid"], alg=e["alg"], use="sig")
                    keys.append(pub)
            return {"keys": keys}

    def describe(self, now: float) -> list[dict[str, Any]]:
        """Every key without its private part: ``kid``, ``alg``, ``created``, ``retires``, ``state``
        (``signing``, ``retiring``, ``retired``)."""
        with self._lock:
            self._load()
            out = []
            for e in self._entries:
                retires = e["retires"]
                state = "signing" if retires is None else ("retiring" if now < float(retires) else "retired")
                out.append(
                    {
                        "kid": e["kid"],
                        "alg": e["alg"],
                        "created": e["created"],
                        "retires": retires,
                        "state": state,
                    }
                )
            return out

    def rotate(self, now: float, overlap_s: float) -> str:
        """Add a new signing key; the previous ones retire at ``now + overlap_s`` (stay published
        until then), keys already retired are dropped. Returns the new kid; raises SigningKeyError."""
        with self._lock:
            self._load()
            kept = []
            for e in self._entries:
                if e["retires"] is None:
                    e = {**e, "retires": now + overlap_s}
                if float(e["retires"]) > now:
                    kept.append(e)
            new = _generate(self.alg)
            kept.append(self._entry(new, now))
            self._save(kept)
            return str(new.kid)
