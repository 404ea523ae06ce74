"""Who is calling the gateway: a bearer token in, an entity uid out.

The gateway takes any :data:`Authenticate` callable. :class:`StaticTokens` is the built-in one for
tests and demos (tokens configured in a file or on the command line, each naming a subject). The
OAuth token verifier (``vigil.identity.tokens``, issue 13) plugs in at the same seam: a function that
verifies the JWT (signature, issuer, audience = this gateway's resource URL, expiry) and returns
the subject's uid, or raises :class:`AuthenticationError`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mcp.server.auth.provider import AccessToken

from vigil.errors import VigilError
from vigil.policy.values import EntityUid

Authenticate = Callable[[str | None], EntityUid]
"""``authenticate(bearer) -> (type, id)``: the subject a bearer token stands for (``None``: no
token was sent). Raises :class:`AuthenticationError`; never returns a subject for a bad token."""


class AuthenticationError(VigilError):
    """No token, or a token that names nobody (HTTP 401 ``unauthenticated``)."""

    code = "unauthenticated"


class StaticTokens:
    """Static bearer tokens, each mapped to a subject. Tokens are kept as SHA-256 digests only
    (a repr or a memory dump shows no token) and compared in constant time per digest."""

    def __init__(self, tokens: Mapping[str, EntityUid]) -> None:
        self._by_digest = {_digest(t): uid for t, uid in tokens.items() if t}

    def __call__(self, token: str | None) -> EntityUid:
        if not token:
            raise AuthenticationError("a bearer token is required")
        d = _digest(token)
        for known, uid in self._by_digest.items():
            if hmac.compare_digest(known, d):
                return uid
        raise AuthenticationError("the bearer token is not one this gateway knows")

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


class Verifier:
    """The SDK's ``TokenVerifier`` over an :data:`Authenticate`: the SDK's bearer middleware then
    answers 401 with ``WWW-Authenticate: Bearer ... resource_metadata="..."`` (MCP authorization,
    RFC 9728 §5.1) for a missing or refused token."""

    def __init__(self, authenticate: Authenticate) -> None:
        self._authenticate = authenticate

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            uid = self._authenticate(token)
        except VigilError:
            return None
        return AccessToken(
            token="", client_id=f"{uid[0]}::{uid[1]}", scopes=[], claims={"vigil_subject": list(uid)}
        )


def subject_of(token: AccessToken | None) -> EntityUid | None:
    """The subject a :class:`Verifier` put in an access token."""
    if token is None or not token.claims:
        return None
    got = token.claims.get("vigil_subject")
    if type(got) is list and len(got) == 2 and all(type(x) is str for x in got):
        return (got[0], got[1])
    return None
