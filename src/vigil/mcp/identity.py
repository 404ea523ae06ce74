"""Who is calling the gateway: a bearer token in, an :class:`Agent` out.

The gateway takes any :data:`Authenticate` callable. Two are built in:

* :class:`OAuthTokens`: JWTs the workspace's token verifier accepts (vigil's own access tokens and
  those of its ``[[identity.trust]]`` issuers: signature, issuer, validity window, revocation,
  delegation depth; :class:`vigil.identity.tokens.Verifier`) and that were issued for this
  gateway (``aud`` names one of its audiences, by default its resource URL: RFC 8707, as the MCP
  authorization spec asks). The agent keeps its token: every decision is backed by it
  (``Engine.decide(request, token=...)``), so a delegated token's actors are checked link by link
  and a token revoked mid-session is refused at its next use.
* :class:`StaticTokens`: static bearer tokens, each naming a subject (tests and demos).

:class:`AnyOf` tries several in order (static tokens first, then JWTs).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from mcp.server.auth.provider import AccessToken

from vigil.audit.keys import SECRET_BYTES, AuditKeyError, load_or_create_secret
from vigil.errors import VigilError
from vigil.identity.parse import uid_text
from vigil.identity.tokens import VerifiedToken
from vigil.identity.tokens.verify import check_audience
from vigil.policy.values import EntityUid

_log = logging.getLogger("vigil.mcp")


@dataclass(frozen=True, slots=True)
class Agent:
    """An authenticated caller: the identity the token names (``subject``), the actors of a
    delegation (``actors``, the current one first: who is actually calling, for the subject),
    and the token every decision is backed by (``token``; None for a static token)."""

    subject: EntityUid
    actors: tuple[EntityUid, ...] = ()
    token: str | None = field(default=None, repr=False)  # never in a log line
    issuer: str | None = None

    @property
    def presenter(self) -> EntityUid:
        """Who presented the token: the current actor of a delegation, else the subject."""
        return self.actors[0] if self.actors else self.subject


Authenticate = Callable[[str | None], Agent]
"""``authenticate(bearer) -> Agent``: who a bearer token stands for (``None``: no token was
sent). Raises :class:`AuthenticationError` or another VigilError (a TokenError with its code);
never returns an agent for a bad token."""


class AuthenticationError(VigilError):
    """No token, or a token that names nobody (HTTP 401 ``unauthenticated``)."""

    code = "unauthenticated"


class TokenVerifier(Protocol):
    """What :class:`OAuthTokens` uses of :class:`vigil.identity.tokens.Verifier`."""

    def verify(self, token: str | bytes, now: float | None = None) -> VerifiedToken: ...

    def cached(self, token: str | bytes, now: float | None = None) -> bool: ...


def quick(authenticate: Authenticate, token: str) -> bool:
    """Whether ``authenticate(token)`` answers without waiting on I/O (an authenticator says so
    with a ``quick(token)`` method; one without is assumed to wait)."""
    check = getattr(authenticate, "quick", None)
    return bool(check is not None and check(token))


class OAuthTokens:
    """JWTs ``verifier`` accepts whose ``aud`` names one of ``audiences`` (see the module
    documentation). Raises TokenError with the verifier's code (``token_expired``,
    ``token_wrong_issuer``, ``token_revoked``, ...) or ``token_wrong_audience``."""

    def __init__(self, verifier: TokenVerifier, audiences: Sequence[str]) -> None:
        if not audiences or not all(audiences):
            raise VigilError("the gateway needs at least one audience", code="invalid_argument")
        self.verifier = verifier
        self.audiences = tuple(audiences)

    def __call__(self, token: str | None) -> Agent:
        if not token:
            raise AuthenticationError("a bearer token is required")
        verified = self.verifier.verify(token)
        check_audience(verified.claims, self.audiences)
        return Agent(verified.subject, verified.actors, token, verified.issuer)

    def quick(self, token: str) -> bool:
        """A verification the verifier holds (a fresh one may fetch an issuer's keys)."""
        return self.verifier.cached(token)

    def __repr__(self) -> str:
        return f"OAuthTokens(audiences={list(self.audiences)!r})"


class AnyOf:
    """The first of ``authenticators`` that accepts the token; when none does, the error of the
    last one (so a JWT refused by :class:`OAuthTokens` after static tokens says why)."""

    def __init__(self, *authenticators: Authenticate) -> None:
        if not authenticators:
            raise VigilError("no authenticator given", code="invalid_argument")
        self.authenticators = authenticators

    def __call__(self, token: str | None) -> Agent:
        error: VigilError | None = None
        for authenticate in self.authenticators:
            try:
                return authenticate(token)
            except VigilError as e:
                error = e
        assert error is not None
        raise error

    def quick(self, token: str) -> bool:
        return all(quick(a, token) for a in self.authenticators)


class StaticTokens:
    """Static bearer tokens, each mapped to a subject. Tokens are kept as SHA-256 digests only
    (a repr or a memory dump shows no token) and compared in constant time per digest."""

    def __init__(self, tokens: Mapping[str, EntityUid]) -> None:
        self._by_digest = {_digest(t): uid for t, uid in tokens.items() if t}

    def __call__(self, token: str | None) -> Agent:
        if not token:
            raise AuthenticationError("a bearer token is required")
        d = _digest(token)
        for known, uid in self._by_digest.items():
            if hmac.compare_digest(known, d):
                return Agent(uid)
        raise AuthenticationError("the bearer token is not one this gateway knows")

    def quick(self, token: str) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._by_digest)

    def __repr__(self) -> str:
        return f"StaticTokens({len(self._by_digest)} tokens)"


def parse_tokens(items: Iterable[str]) -> dict[str, EntityUid]:
    """``TOKEN=Type::id`` items (the CLI's ``--token``); raises VigilError ``invalid_argument``."""
    out: dict[str, EntityUid] = {}
    for item in items:
        token, sep, who = item.partition("=")
        if not sep or not token:
            raise VigilError(f"--token {item[:3]!r}...: expected TOKEN=Type::id", code="invalid_argument")
        out[token] = parse_subject(who)
    return out


def load_tokens(path: str | Path) -> dict[str, EntityUid]:
    """A JSON file ``{"TOKEN": "Type::id" | {"type": ..., "id": ...}, ...}``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise VigilError(f"cannot read the token file {str(path)!r}: {e}", code="invalid_file") from None
    if type(data) is not dict:
        raise VigilError(f"{str(path)!r}: expected an object of token -> subject", code="invalid_file")
    out: dict[str, EntityUid] = {}
    for token, who in data.items():
        out[token] = _uid_of(who, str(path))
    return out


def _uid_of(who: Any, where: str) -> EntityUid:
    if type(who) is str:
        return parse_subject(who)
    if type(who) is dict and type(who.get("type")) is str and type(who.get("id")) is str:
        return (who["type"], who["id"])
    raise VigilError(f"{where}: a subject must be 'Type::id' or {{type, id}}", code="invalid_file")


def parse_subject(text: str) -> EntityUid:
    """``Type::id`` or ``Type::"id"`` -> ``(type, id)``; raises VigilError ``invalid_argument``."""
    etype, sep, eid = text.rpartition("::")
    if eid.startswith('"') and eid.endswith('"') and len(eid) >= 2:
        eid = eid[1:-1]
    if not sep or not etype or not eid:
        raise VigilError(f"{text!r} is not a subject (Type::id)", code="invalid_argument")
    return (etype, eid)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


# Why the current HTTP request's token was refused: the gateway's ASGI wrapper
# (:func:`vigil.mcp.serve.http_app`) puts a fresh holder here per request, :class:`Verifier` fills it,
# and the wrapper audits the 401 with it.
REFUSAL: ContextVar[dict[str, str] | None] = ContextVar("vigil_mcp_refusal", default=None)


FINGERPRINT_KEY_FILE: Final = "token-fingerprint.key"


def token_fingerprint(token: str, key: bytes) -> str:
    """What the audit log keeps of a refused token: the first 16 hex digits of its HMAC-SHA256
    under the workspace's secret ``key`` (:func:`fingerprint_key`), to correlate refusals. Keyed,
    so a fingerprint in a log cannot be checked against guessed tokens without the key."""
    return hmac.new(key, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:16]


def fingerprint_key(state: Path) -> bytes:
    """The workspace's secret for token fingerprints, in its state directory ``state`` (created
    0600 on first use, shared by every gateway on the workspace). When it cannot be read or
    created, a random key for this process (logged): fingerprints then correlate within it only."""
    try:
        return load_or_create_secret(state / FINGERPRINT_KEY_FILE)
    except AuditKeyError as e:
        _log.warning("token fingerprints use a key of this process only: %s", e)
        return secrets.token_bytes(SECRET_BYTES)


class Verifier:
    """The SDK's ``TokenVerifier`` over an :data:`Authenticate`: the SDK's bearer middleware then
    answers 401 with ``WWW-Authenticate: Bearer ... resource_metadata="..."`` (MCP authorization,
    RFC 9728 §5.1) for a missing or refused token. The agent rides in the access token's claims
    (``vigil_agent``); the session is owned by (presenter, issuer, subject), so another identity's
    token cannot use it."""

    def __init__(self, authenticate: Authenticate, fingerprint_key: bytes) -> None:
        self._authenticate = authenticate
        self._key = fingerprint_key

    async def verify_token(self, token: str) -> AccessToken | None:
        # inline when that cannot wait on I/O (a static token, a verification the verifier
        # holds); else in a worker thread: a trusted issuer's JWK Set may have to be fetched first
        try:
            if quick(self._authenticate, token):
                agent = self._authenticate(token)
            else:
                agent = await asyncio.to_thread(self._authenticate, token)
        except VigilError as e:
            holder = REFUSAL.get()
            if holder is not None:
                holder["reason"] = e.code
                holder["token"] = token_fingerprint(token, self._key)
            return None
        return AccessToken(
            token="",
            client_id=uid_text(agent.presenter),
            scopes=[],
            subject=uid_text(agent.subject),
            claims={"iss": agent.issuer, "vigil_agent": agent},
        )


def agent_of(token: AccessToken | None) -> Agent | None:
    """The agent a :class:`Verifier` put in an access token."""
    if token is None or not token.claims:
        return None
    got = token.claims.get("vigil_agent")
    return got if isinstance(got, Agent) else None
