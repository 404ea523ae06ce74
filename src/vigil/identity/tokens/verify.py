"""Strict JWT verification (RFC 7519, RFC 7515) of the tokens vigil accepts: its own access tokens
and those of the ``[[identity.trust]]`` issuers (OIDC providers, Kubernetes service-account tokens,
SPIFFE JWT-SVIDs).

In order, each failure a :class:`~vigil.identity.tokens.errors.TokenError` with its code:

1. size: at most ``max_bytes`` (``token_too_large``); three base64url parts of a compact JWS whose
   header and payload are JSON objects (``invalid_token``: malformed, truncated);
2. header: ``alg`` on the allow-list EdDSA, ES256, RS256 (``token_algorithm_refused``: ``none``,
   HS*, anything else), a ``kid`` (``token_unknown_key`` when missing), no ``crit``;
3. issuer: the ``iss`` of a trusted issuer (``token_wrong_issuer``; a JWT-SVID without ``iss``
   is matched by its SPIFFE ID's trust domain);
4. key: the issuer's key named ``kid`` (``token_unknown_key``, ``jwks_unavailable``), whose one
   algorithm is the header's (``token_algorithm_refused``: an HS256 token "signed" with an RSA
   public key as secret never reaches a MAC);
5. signature (joserfc, that algorithm only: ``invalid_token``);
6. times with ``skew_s`` tolerance: ``exp`` required (``token_expired``), ``nbf`` and ``iat`` not
   ahead (``token_not_yet_valid``); ``aud`` holds the issuer's audience (``token_wrong_audience``);
7. revocation: ``jti`` revoked, or an actor revoked for the subject (``token_revoked``);
8. subject: a registry binding (issuer, subject) names the identity; otherwise vigil's tokens
   carry the uid text, and external subjects become ``entity_type::"subject"`` unless the issuer
   requires a binding (``token_subject_unknown``); ``act`` (RFC 8693 section 4.1) only in vigil's
   own tokens, at most ``max_depth`` actors (``delegation_too_deep``).

Verified tokens are cached by their text until they expire (bounded; a hit checks the validity
window and revocation again: a revoked token is refused at once). Nothing reads the wall clock:
times come from the injected ``clock`` or the caller.
"""

from __future__ import annotations

import binascii
import threading
import time
from base64 import urlsafe_b64decode
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson
from joserfc import jws
from joserfc.errors import JoseError

from vigil.errors import VigilError
from vigil.identity.parse import parse_identity_uid, uid_text
from vigil.identity.tokens.errors import TokenError
from vigil.identity.tokens.jwks import Key, KeySource
from vigil.model.uid import EntityUid

ALGORITHMS: Final = frozenset({"EdDSA", "ES256", "RS256"})
VIGIL: Final = "vigil"
K8S_PREFIX: Final = "system:serviceaccount:"
MAX_SUBJECT: Final = 1_024


@dataclass(frozen=True, slots=True)
class Issuer:
    """A trusted issuer: its ``iss`` (``name``), ``kind`` (``vigil`` for the token service,
    ``oidc``, ``spiffe``, ``kubernetes``), its keys and the audiences its tokens may name (one of
    them at least)."""

    name: str
    kind: str
    keys: KeySource
    audiences: tuple[str, ...]
    subject_claim: str = "sub"
    entity_type: str = "User"
    require_binding: bool = False


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token that verified: the identity it names (``subject``), the actors of a delegation
    (``actors``, the current actor first, RFC 8693 ``act`` nesting), its issuer and ``jti`` (""
    when it had none), its validity window as epoch seconds with the skew applied, and its claims."""

    subject: EntityUid
    actors: tuple[EntityUid, ...]
    issuer: str
    jti: str
    expires: float
    not_before: float
    claims: Mapping[str, Any] = field(repr=False)
    external_subject: str = ""

    @property
    def chain(self) -> tuple[EntityUid, ...]:
        """Every party: the actors (current first), then the subject."""
        return (*self.actors, self.subject)


class RevocationView(Protocol):
    """What the verifier reads of revocations (``vigil.identity.tokens.revocation.Revocations``)."""

    jtis: frozenset[str]
    delegations: frozenset[tuple[EntityUid, EntityUid]]


class _NoRevocations:
    jtis: frozenset[str] = frozenset()
    delegations: frozenset[tuple[EntityUid, EntityUid]] = frozenset()


Bindings = Callable[[str, str], "EntityUid | None"]


def _no_bindings(issuer: str, subject: str) -> EntityUid | None:
    return None


def b64decode(part: str) -> bytes:
    """base64url without padding (RFC 7515 section 2); raises TokenError (``invalid_token``)."""
    try:
        return urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("the token is not base64url", code="invalid_token") from None


def split_token(token: str | bytes, max_bytes: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(text, header, claims)`` of a compact JWS, unverified; raises TokenError
    (``token_too_large``, ``invalid_token``)."""
    if len(token) > max_bytes:
        raise TokenError(f"the token is larger than {max_bytes} bytes", code="token_too_large")
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise TokenError("the token is not ASCII", code="invalid_token") from None
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise TokenError("the token is not a compact JWS (three non-empty parts)", code="invalid_token")
    try:
        header = orjson.loads(b64decode(parts[0]))
        claims = orjson.loads(b64decode(parts[1]))
    except orjson.JSONDecodeError:
        raise TokenError("the token's header or payload is not JSON", code="invalid_token") from None
    if type(header) is not dict or type(claims) is not dict:
        raise TokenError("the token's header and payload must be JSON objects", code="invalid_token")
    return token, header, claims


def check_header(header: dict[str, Any], algorithms: frozenset[str] = ALGORITHMS) -> tuple[str, str]:
    """``(alg, kid)`` of a JWS header on the allow-list; raises TokenError."""
    alg = header.get("alg")
    if type(alg) is not str or alg not in algorithms:
        raise TokenError(
            f"algorithm {str(alg)[:20]!r} is refused (accepted: {', '.join(sorted(algorithms))})",
            code="token_algorithm_refused",
        )
    if "crit" in header:
        raise TokenError("the token has critical header parameters", code="invalid_token")
    kid = header.get("kid")
    if type(kid) is not str or not kid or len(kid) > 256:
        raise TokenError("the token's header names no key (kid)", code="token_unknown_key")
    return alg, kid


def check_signature(token: str, key: Key, alg: str) -> None:
    """The JWS signature verifies with ``key`` under ``alg`` alone; raises TokenError."""
    try:
        jws.deserialize_compact(token, key, algorithms=[alg])
    except (JoseError, ValueError, TypeError):
        raise TokenError("the token's signature does not verify", code="invalid_token") from None


def _number(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenError(f"the token has no {name!r} claim", code="invalid_token")
        return None
    if type(value) not in (int, float) or value != value or abs(value) > 1e13:
        raise TokenError(f"the token's {name!r} is not a NumericDate", code="invalid_token")
    return float(value)


def check_times(claims: Mapping[str, Any], now: float, skew_s: float) -> tuple[float, float]:
    """``(not_before, expires)``, the window ``now`` must be in (skew applied); raises TokenError
    (``token_expired``, ``token_not_yet_valid``, ``invalid_token``)."""
    exp = _number(claims, "exp", True)
    nbf = _number(claims, "nbf", False)
    iat = _number(claims, "iat", False)
    assert exp is not None
    expires = exp + skew_s
    if now >= expires:
        raise TokenError("the token has expired", code="token_expired")
    start = max(nbf if nbf is not None else -1e300, iat if iat is not None else -1e300) - skew_s
    if now < start:
        raise TokenError("the token is not valid yet (nbf/iat ahead)", code="token_not_yet_valid")
    return start, expires


def check_audience(claims: Mapping[str, Any], audiences: tuple[str, ...]) -> None:
    """``aud`` (a string or an array of strings) holds one of ``audiences``; raises TokenError."""
    aud = claims.get("aud")
    ok = aud in audiences if type(aud) is str else type(aud) is list and any(a in audiences for a in aud)
    if not ok:
        raise TokenError(
            f"the token is not for audience {', '.join(audiences)!r}", code="token_wrong_audience"
        )


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if type(value) is not str or not value or len(value) > MAX_SUBJECT:
        raise TokenError(
            f"the token has no {name!r} claim of 1..{MAX_SUBJECT} characters", code="invalid_token"
        )
    return value


def _uid(text: str) -> EntityUid:
    try:
        return parse_identity_uid(text)
    except VigilError:
        raise TokenError(f"{text[:100]!r} is not an entity uid", code="invalid_token") from None


def actors_of(claims: Mapping[str, Any], max_depth: int) -> tuple[EntityUid, ...]:
    """The actors of an RFC 8693 ``act`` claim, the current one first; raises TokenError
    (``delegation_too_deep``, ``invalid_token``)."""
    out: list[EntityUid] = []
    act = claims.get("act")
    while act is not None:
        if type(act) is not dict:
            raise TokenError("the token's act claim is not an object", code="invalid_token")
        if len(out) >= max_depth:
            raise TokenError(
                f"the delegation chain is deeper than {max_depth} actors", code="delegation_too_deep"
            )
        out.append(_uid(_text(act, "sub")))
        act = act.get("act")
    return tuple(out)


class Verifier:
    """Verifies tokens of ``issuers`` (see the module documentation). Thread-safe.

    ``bindings(issuer, subject)``: the registered identity an external subject names, or None
    (:meth:`vigil.identity.Registry.find_binding`); ``revocations``: the revoked jtis and
    delegations (read on every call, cached tokens included)."""

    def __init__(
        self,
        issuers: Sequence[Issuer],
        *,
        bindings: Bindings | None = None,
        revocations: RevocationView | None = None,
        clock: Callable[[], float] | None = None,
        skew_s: float = 30.0,
        max_bytes: int = 8_192,
        max_depth: int = 3,
        cache_size: int = 10_000,
    ) -> None:
        self._issuers: dict[str, Issuer] = {i.name: i for i in issuers}
        self._bindings: Bindings = bindings or _no_bindings
        self.revocations: RevocationView = revocations or _NoRevocations()
        self._clock = clock or time.time
        self.skew_s = skew_s
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.cache_size = cache_size
        self._cache: dict[str | bytes, VerifiedToken] = {}
        self._bound_seen: Mapping[tuple[str, str], EntityUid] = {}
        self._epoch = 0  # moves whenever the cache is dropped
        self._lock = threading.Lock()
        self.hits = 0
        self.fresh = 0

    @property
    def issuers(self) -> dict[str, Issuer]:
        return dict(self._issuers)

    def set_issuers(self, issuers: Sequence[Issuer]) -> None:
        """Trust ``issuers`` from now on (a reload); cached verifications are dropped."""
        with self._lock:
            self._issuers = {i.name: i for i in issuers}
            self._cache = {}
            self._epoch += 1

    def verify(self, token: str | bytes, now: float | None = None) -> VerifiedToken:
        """The verified token; raises TokenError (never returns an unverified one). A cached
        verification costs a dictionary lookup, two comparisons and the revocation checks."""
        if now is None:
            now = self._clock()
        hit = self._cache.get(token)
        if hit is not None and hit.not_before <= now < hit.expires:
            self._check_revoked(hit)
            self.hits += 1
            return hit
        # a verification made while the cache was being dropped (issuers, keys or bindings
        # changed meanwhile) answers this call but is not kept
        epoch = self._epoch
        verified = self.verify_fresh(token, now)
        if self.cache_size:
            with self._lock:
                if epoch != self._epoch:
                    return verified
                cache = self._cache
                if len(cache) >= self.cache_size:
                    for k in [k for k, v in cache.items() if v.expires <= now]:
                        del cache[k]
                    if len(cache) >= self.cache_size:
                        cache.clear()
                cache[token] = verified
        return verified

    def cached(self, token: str | bytes, now: float | None = None) -> bool:
        """Whether :meth:`verify` would answer ``token`` from the cache (no key lookup, so no
        JWK Set fetch: a caller on an event loop may then verify inline)."""
        hit = self._cache.get(token)
        if hit is None:
            return False
        when = self._clock() if now is None else now
        return hit.not_before <= when < hit.expires

    def verify_fresh(self, token: str | bytes, now: float) -> VerifiedToken:
        """:meth:`verify` without the cache; raises TokenError."""
        self.fresh += 1
        text, header, claims = split_token(token, self.max_bytes)
        alg, kid = check_header(header)
        issuer = self._issuer(claims)
        key, key_alg = issuer.keys.key(kid, now)
        if key_alg != alg:
            raise TokenError(
                f"key {kid[:100]!r} verifies {key_alg}, not {alg}", code="token_algorithm_refused"
            )
        check_signature(text, key, alg)
        start, expires = check_times(claims, now, self.skew_s)
        check_audience(claims, issuer.audiences)
        jti = claims.get("jti", "")
        if type(jti) is not str or len(jti) > 256:
            raise TokenError(
                "the token's jti is not a string of at most 256 characters", code="invalid_token"
            )
        external = _text(claims, issuer.subject_claim)
        if issuer.kind == VIGIL:
            if not jti:
                raise TokenError("a vigil token without jti", code="invalid_token")
            subject = _uid(external)
            actors = actors_of(claims, self.max_depth)
        else:
            if "act" in claims:
                raise TokenError(
                    "delegation (act) is accepted in tokens vigil issued only", code="invalid_token"
                )
            subject = self._subject(issuer, external)
            actors = ()
        verified = VerifiedToken(subject, actors, issuer.name, jti, expires, start, claims, external)
        self._check_revoked(verified)
        return verified

    def _issuer(self, claims: Mapping[str, Any]) -> Issuer:
        iss = claims.get("iss")
        if iss is None:  # a JWT-SVID may leave iss out: its SPIFFE ID names the trust domain
            sub = claims.get("sub")
            if type(sub) is str and sub.startswith("spiffe://"):
                domain = "spiffe://" + sub[len("spiffe://") :].split("/", 1)[0]
                found = self._issuers.get(domain)
                if found is not None and found.kind == "spiffe":
                    return found
            raise TokenError("the token names no issuer (iss)", code="token_wrong_issuer")
        found = self._issuers.get(iss) if type(iss) is str else None
        if found is None:
            raise TokenError(f"issuer {str(iss)[:200]!r} is not trusted", code="token_wrong_issuer")
        return found

    def _subject(self, issuer: Issuer, external: str) -> EntityUid:
        bound = self._bindings(issuer.name, external)
        if bound is not None:
            return bound
        if issuer.require_binding:
            raise TokenError(
                f"no identity is bound to {external[:200]!r} of {issuer.name!r}", code="token_subject_unknown"
            )
        if issuer.kind == "spiffe":
            if not external.startswith(issuer.name + "/"):
                raise TokenError(
                    f"{external[:200]!r} is not a SPIFFE ID of {issuer.name!r}", code="token_subject_unknown"
                )
            return (issuer.entity_type, external)
        if issuer.kind == "kubernetes":
            parts = external[len(K8S_PREFIX) :].split(":") if external.startswith(K8S_PREFIX) else []
            if len(parts) != 2 or not all(parts):
                raise TokenError(
                    f"{external[:200]!r} is not a Kubernetes service account", code="token_subject_unknown"
                )
            return (issuer.entity_type, f"{parts[0]}/{parts[1]}")
        if not external.isprintable():
            raise TokenError("the token's subject is not printable", code="token_subject_unknown")
        return (issuer.entity_type, external)

    def _check_revoked(self, token: VerifiedToken) -> None:
        rev = self.revocations
        if token.jti and token.jti in rev.jtis:
            raise TokenError(f"token {token.jti[:100]!r} is revoked", code="token_revoked")
        if token.actors and rev.delegations:
            for actor in token.actors:
                if (actor, token.subject) in rev.delegations:
                    raise TokenError(
                        f"the delegation of {uid_text(token.subject)} to {uid_text(actor)} is revoked",
                        code="token_revoked",
                    )

    def forget(self) -> None:
        """Drop every cached verification."""
        with self._lock:
            self._cache.clear()
            self._epoch += 1

    def bindings_changed(self, bound: Mapping[tuple[str, str], EntityUid]) -> None:
        """Drop every cached verification when the registry's bindings (``(issuer, subject)`` ->
        identity) differ from those seen last: a cached token's subject may come from one. Other
        registry changes keep them (the decision path checks status and expiry itself), so an
        operator adding an identity does not make every agent's next token check a fresh one."""
        if bound is self._bound_seen:
            return
        with self._lock:
            if bound != self._bound_seen:
                self._cache.clear()
                self._epoch += 1
            self._bound_seen = bound
