"""Public keys of the issuers vigil trusts, by ``kid``: a JWK Set from a file, from memory (the token
service's own keys), or fetched over HTTP (RFC 7517 section 5; RFC 8414 ``jwks_uri``).

A fetched set is cached for ``ttl_s``; an unknown ``kid`` triggers a refetch at most once per
``min_refresh_s`` (a flood of tokens with made-up kids costs one fetch per interval); when a fetch
fails, the last good set is served while it is at most ``max_stale_s`` old, and after that every
token of the issuer is refused (``jwks_unavailable``). Times come from the caller's clock.

Keys that cannot verify a JWS with vigil's algorithms are left out of a set: symmetric (``oct``)
keys, private keys, keys whose ``use`` is not ``sig``, curves other than Ed25519 and P-256, RSA keys
shorter than 2,048 bits. A key without ``kid`` is named by its RFC 7638 thumbprint.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

import orjson
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from vigil.identity.tokens.errors import TokenError

# RFC 9864 deprecates "EdDSA" in favour of "Ed25519"; RFC 8037's name is what issuers use today
# (and what vigil signs with), so joserfc's per-call warning about it is silenced, that one only.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

Key = OKPKey | ECKey | RSAKey
MAX_JWKS_BYTES: Final = 1_048_576
MAX_KEYS: Final = 100
# The algorithm each accepted key verifies (vigil's allow-list: EdDSA, ES256, RS256).
ALGORITHM_OF_KEY: Final = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256", ("RSA", ""): "RS256"}
Fetch = Callable[[str, float], bytes]


class KeySource(Protocol):
    """Where an issuer's keys come from."""

    def key(self, kid: str, now: float) -> tuple[Key, str]:
        """The key named ``kid`` and the one algorithm it verifies; raises TokenError
        (``token_unknown_key``, ``jwks_unavailable``)."""
        ...


def key_algorithm(jwk: Mapping[str, Any]) -> str | None:
    """The algorithm vigil verifies with this public JWK, or None when it takes none."""
    kty = jwk.get("kty")
    if kty == "RSA":
        n = jwk.get("n")
        return "RS256" if isinstance(n, str) and len(n) * 6 >= 2040 else None
    return ALGORITHM_OF_KEY.get((str(kty), str(jwk.get("crv", ""))))


def parse_jwks(data: bytes | str | Mapping[str, Any]) -> dict[str, tuple[Key, str]]:
    """The usable verification keys of a JWK Set by kid (see the module documentation); raises
    ValueError when the set is malformed or holds no usable key."""
    if isinstance(data, bytes | str):
        if len(data) > MAX_JWKS_BYTES:
            raise ValueError("the JWK Set is larger than 1 MiB")
        data = orjson.loads(data)
    keys = data.get("keys") if isinstance(data, Mapping) else None
    if not isinstance(keys, list):
        raise ValueError('a JWK Set is an object with a "keys" array')
    out: dict[str, tuple[Key, str]] = {}
    for jwk in keys[:MAX_KEYS]:
        if not isinstance(jwk, dict) or "d" in jwk or jwk.get("use", "sig") != "sig":
            continue
        alg = key_algorithm(jwk)
        if alg is None or jwk.get("alg", alg) != alg:
            continue
        try:
            key = import_key(dict(jwk))
        except Exception:  # joserfc raises several types for malformed members
            continue
        if not isinstance(key, OKPKey | ECKey | RSAKey) or key.is_private:
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            kid = key.thumbprint()
        out[kid] = (key, alg)
    if not out:
        raise ValueError("the JWK Set holds no usable signature key (EdDSA Ed25519, ES256, RS256)")
    return out


class StaticKeys:
    """A fixed set of keys (a ``jwks_file``, a test); ``replace`` swaps it atomically."""

    def __init__(self, keys: dict[str, tuple[Key, str]]) -> None:
        self._keys = keys

    @classmethod
    def from_file(cls, path: Path) -> StaticKeys:
        """The keys of a JWKS file; raises ValueError (OSError included) when unusable."""
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ValueError(f"cannot read {str(path)!r}: {e.strerror}") from None
        return cls(parse_jwks(data))

    def replace(self, keys: dict[str, tuple[Key, str]]) -> None:
        self._keys = keys

    def key(self, kid: str, now: float) -> tuple[Key, str]:
        found = self._keys.get(kid)
        if found is None:
            raise TokenError(f"no key {kid[:100]!r} for this issuer", code="token_unknown_key")
        return found


def fetch_url(uri: str, timeout_s: float) -> bytes:
    """GET ``uri`` (urllib: nothing below the transports imports an HTTP client library); the body
    of a 200 answer, at most 1 MiB. Raises OSError (urllib's errors are OSErrors) or ValueError."""
    request = urllib.request.Request(uri, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}")
        body: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("the JWK Set is larger than 1 MiB")
    return body


class RemoteKeys:
    """An issuer's JWK Set at ``uri``, fetched with ``fetch`` (default: :func:`fetch_url`), cached
    as the module documentation says. Thread-safe; one fetch at a time."""

    def __init__(
        self,
        uri: str,
        *,
        fetch: Fetch | None = None,
        ttl_s: float = 300.0,
        min_refresh_s: float = 30.0,
        max_stale_s: float = 3_600.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.uri = uri
        self._fetch: Fetch = fetch or fetch_url
        self.ttl_s = ttl_s
        self.min_refresh_s = min_refresh_s
        self.max_stale_s = max_stale_s
        self.timeout_s = timeout_s
        self._keys: dict[str, tuple[Key, str]] | None = None
        self._fetched = -1e300  # when the held set was fetched
        self._attempted = -1e300  # the last fetch attempt
        self._lock = threading.Lock()
        self.fetches = 0
        self.failures = 0
        self.last_error = ""

    def key(self, kid: str, now: float) -> tuple[Key, str]:
        keys = self._keys
        if keys is None or now - self._fetched >= self.ttl_s:
            keys = self._refresh(now)
        found = keys.get(kid)
        if found is None:
            keys = self._refresh(now)  # a new key since the last fetch? (rate-bounded)
            found = keys.get(kid)
            if found is None:
                raise TokenError(f"no key {kid[:100]!r} at {self.uri!r}", code="token_unknown_key")
        return found

    def maintain(self, now: float) -> None:
        """Fetch the set off the decision path (the engine's refresh thread) when none is held or
        it is due within a fifth of its ttl, so decisions rarely wait for a fetch; never raises."""
        if self._keys is None or now - self._fetched >= self.ttl_s * 0.8:
            with contextlib.suppress(TokenError):
                self._refresh(now)

    def _refresh(self, now: float) -> dict[str, tuple[Key, str]]:
        """The keys to use at ``now``, fetched again (an expired cache, an unknown kid) at most
        once per ``min_refresh_s``; raises TokenError
        (``jwks_unavailable``) when none may be used."""
        with self._lock:
            if now - self._attempted >= self.min_refresh_s:
                self._attempted = now
                self.fetches += 1
                try:
                    keys = parse_jwks(self._fetch(self.uri, self.timeout_s))
                except (OSError, ValueError) as e:
                    self.failures += 1
                    self.last_error = f"{type(e).__name__}: {e}"[:300]
                else:
                    self._keys = keys
                    self._fetched = now
            keys_ = self._keys
            if keys_ is None or now - self._fetched > self.max_stale_s:
                raise TokenError(
                    f"the keys at {self.uri!r} are unavailable ({self.last_error or 'not fetched yet'})",
                    code="jwks_unavailable",
                )
            return keys_
