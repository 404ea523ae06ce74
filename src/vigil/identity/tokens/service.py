"""The token service: an OAuth 2.0 authorization server for machines (``docs/identity.md``).

- Metadata (RFC 8414) and the public JWK Set of the signing keys.
- ``POST /oauth2/token``, form-encoded (RFC 6749 section 4.4; a parameter given twice is refused):

  - ``client_credentials`` authenticated by ``private_key_jwt`` (RFC 7523 section 2.2, OpenID
    Connect Core section 9): the client assertion is signed by a key registered for the identity
    (:meth:`vigil.identity.Registry.find_key`), ``iss`` = ``sub`` = the identity's uid text
    (= ``client_id`` when given), ``aud`` the token endpoint or the issuer, ``exp`` at most
    ``assertion_ttl_s`` ahead, a ``jti`` never seen before while the assertion lives (a replay is
    refused). No shared secrets.
  - token exchange (RFC 8693): a ``subject_token`` (vigil's or a trusted issuer's) and an
    ``actor_token`` (a vigil token of the actor itself) give a token for the subject with the actor
    in ``act`` (nested after the subject token's own ``act``), at most ``max_delegation_depth``
    actors. The exchange is an access decision of the engine (principal = the actor, action
    ``act_for``, resource = the subject), audited and denied by default.

- Issued access tokens (RFC 9068 profile, ``typ`` ``at+jwt``): ``iss``, ``sub`` (the uid text),
  ``aud`` (``audience`` or ``resource``, required, one of the configured audiences), ``exp`` (at
  most ``token_ttl_s``, never past a token it was exchanged from), ``iat``, ``jti``, ``act``.
- Every party must be active in the registry; every issued token is written to the audit log
  first (``token_issued``): a token the log cannot record is not issued.

Errors are :class:`~vigil.identity.tokens.errors.OAuthError` (RFC 6749 section 5.2); nothing else
leaves :meth:`TokenService.token_request`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

import orjson
from joserfc import jws
from joserfc.jwk import import_key

from vigil.errors import VigilError
from vigil.identity.parse import parse_identity_uid, uid_text
from vigil.identity.registry import Registry
from vigil.identity.tokens.errors import OAuthError, TokenError
from vigil.identity.tokens.jwks import key_algorithm
from vigil.identity.tokens.signing import SigningKeys
from vigil.identity.tokens.verify import (
    VerifiedToken,
    Verifier,
    check_header,
    check_signature,
    check_times,
    split_token,
)
from vigil.model.uid import EntityUid

CLIENT_CREDENTIALS: Final = "client_credentials"
TOKEN_EXCHANGE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACCESS_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:access_token"
JWT_TYPE: Final = "urn:ietf:params:oauth:token-type:jwt"
ID_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:id_token"
SUBJECT_TOKEN_TYPES: Final = frozenset({ACCESS_TOKEN_TYPE, JWT_TYPE, ID_TOKEN_TYPE})
TOKEN_PATH: Final = "/oauth2/token"
JWKS_PATH: Final = "/oauth2/jwks"
METADATA_PATH: Final = "/.well-known/oauth-authorization-server"
MAX_FORM_BYTES: Final = 65_536
MAX_PARAMS: Final = 32
MAX_REPLAY: Final = 100_000
FORM_TYPE: Final = b"application/x-www-form-urlencoded"

# (actor, subject, now) -> (allowed, decision id): the engine's audited act_for decision
ActForDecision = Callable[[EntityUid, EntityUid, float], tuple[bool, str]]
# (kind, by, details) -> None; raises AuditError when the log refuses the event
Recorder = Callable[..., None]


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """The token service's limits (``[identity]``; see :class:`vigil.identity.IdentitySettings`)."""

    token_ttl_s: int = 600
    assertion_ttl_s: int = 300
    max_delegation_depth: int = 3
    clock_skew_s: int = 30
    max_token_bytes: int = 8_192
    audiences: tuple[str, ...] = ()


class TokenService:
    """The authorization server of issuer ``issuer`` (see the module documentation)."""

    def __init__(
        self,
        issuer: str,
        *,
        keys: SigningKeys,
        registry: Registry,
        verifier: Verifier,
        act_for: ActForDecision,
        record: Recorder,
        recordable: Callable[[], None],
        clock: Callable[[], float] | None = None,
        settings: TokenSettings | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.keys = keys
        self.registry = registry
        self.verifier = verifier
        self._act_for = act_for
        self._record = record
        self._recordable = recordable
        self._clock = clock or time.time
        self.settings = settings or TokenSettings()
        self._seen: dict[tuple[EntityUid, str], float] = {}  # client assertions: (client, jti) -> exp
        self._seen_lock = threading.Lock()
        self.issued = 0

    @property
    def token_endpoint(self) -> str:
        return self.issuer + TOKEN_PATH

    @property
    def audiences(self) -> tuple[str, ...]:
        """The audiences tokens may be issued for: the configured ones and the issuer itself."""
        return (*self.settings.audiences, self.issuer)

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata."""
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.issuer + JWKS_PATH,
            "grant_types_supported": [CLIENT_CREDENTIALS, TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "ES256", "RS256"],
            "response_types_supported": [],
            "scopes_supported": [],
        }

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify issued tokens; raises SigningKeyError."""
        return self.keys.jwks(self._clock())

    # -- the token endpoint ----------------------------------------------------------------------
    def token_request(
        self, body: bytes, content_type: bytes | None, now: float | None = None
    ) -> dict[str, Any]:
        """Answer one token request (the form ``body``): the RFC 6749 section 5.1 response.

        Raises OAuthError with the RFC 6749 section 5.2 code, or AuditError / SigningKeyError when
        the token could not be recorded or signed (nothing issued)."""
        form = parse_form(body, content_type)
        when = self._clock() if now is None else now
        grant = form.get("grant_type")
        if grant == CLIENT_CREDENTIALS:
            return self._client_credentials(form, when)
        if grant == TOKEN_EXCHANGE:
            return self._exchange(form, when)
        if grant is None:
            raise OAuthError("grant_type is required", code="invalid_request")
        raise OAuthError(f"grant_type {grant[:100]!r} is not supported", code="unsupported_grant_type")

    def _client_credentials(self, form: Mapping[str, str], now: float) -> dict[str, Any]:
        if "scope" in form:
            raise OAuthError(
                "scopes are not used: what a token allows is decided by policy", code="invalid_scope"
            )
        client = self.authenticate_client(form, now)
        audience = self._audience(form)
        entry_ok = self.registry.is_active(client, now)
        if not entry_ok:
            raise OAuthError(f"{uid_text(client)} is not active", code="invalid_client")
        claims = {"sub": uid_text(client), "aud": audience, "client_id": uid_text(client)}
        return self._issue(claims, client, (), now, now + self.settings.token_ttl_s, CLIENT_CREDENTIALS, "")

    def authenticate_client(self, form: Mapping[str, str], now: float) -> EntityUid:
        """The identity a ``private_key_jwt`` client assertion proves; raises OAuthError
        (``invalid_client``, ``invalid_request``)."""
        if form.get("client_assertion_type") != JWT_BEARER or "client_assertion" not in form:
            raise OAuthError(
                f"client authentication is private_key_jwt: client_assertion_type {JWT_BEARER} "
                "and client_assertion are required",
                code="invalid_client"
                if "client_assertion" in form or "client_id" in form
                else "invalid_request",
            )
        if "client_secret" in form:
            raise OAuthError("client secrets are not accepted (private_key_jwt only)", code="invalid_client")
        try:
            text, header, claims = split_token(form["client_assertion"], self.settings.max_token_bytes)
            alg, kid = check_header(header)
        except TokenError as e:
            raise OAuthError(f"client assertion refused: {e.message}", code="invalid_client") from None
        found = self.registry.find_key(kid)
        if found is None:
            raise OAuthError(
                f"client assertion refused: no registered key {kid[:100]!r}", code="invalid_client"
            )
        entry, ikey = found
        jwk = orjson.loads(ikey.jwk)
        if key_algorithm(jwk) != alg:
            raise OAuthError(
                f"client assertion refused: key {kid[:100]!r} does not verify {alg}", code="invalid_client"
            )
        client = entry.subject
        try:
            check_signature(text, import_key(jwk), alg)  # type: ignore[arg-type]
            _start, expires = check_times(claims, now, self.settings.clock_skew_s)
        except (TokenError, ValueError, TypeError) as e:
            message = e.message if isinstance(e, VigilError) else "the key is unusable"
            raise OAuthError(f"client assertion refused: {message}", code="invalid_client") from None
        name = uid_text(client)
        iss, sub = claims.get("iss"), claims.get("sub")
        if not (type(iss) is str and type(sub) is str and _same(iss, client) and _same(sub, client)):
            raise OAuthError(f"client assertion refused: iss and sub must be {name}", code="invalid_client")
        client_id = form.get("client_id")
        if client_id is not None and not _same(client_id, client):
            raise OAuthError("client_id does not match the client assertion", code="invalid_client")
        aud = claims.get("aud")
        accepted = (self.token_endpoint, self.issuer)
        if not (
            aud in accepted if type(aud) is str else type(aud) is list and any(a in accepted for a in aud)
        ):
            raise OAuthError(
                f"client assertion refused: aud must be {self.token_endpoint}", code="invalid_client"
            )
        exp = expires - self.settings.clock_skew_s
        if exp - now > self.settings.assertion_ttl_s:
            raise OAuthError(
                f"client assertion refused: it may live at most {self.settings.assertion_ttl_s} s",
                code="invalid_client",
            )
        jti = claims.get("jti")
        if type(jti) is not str or not 0 < len(jti) <= 256:
            raise OAuthError("client assertion refused: jti is required", code="invalid_client")
        self._note_assertion(client, jti, expires, now)
        return client

    def _note_assertion(self, client: EntityUid, jti: str, expires: float, now: float) -> None:
        """Refuse an assertion seen before (raises OAuthError ``invalid_client``); remember this
        one until it expires."""
        with self._seen_lock:
            seen = self._seen
            if (client, jti) in seen:
                raise OAuthError(
                    "client assertion refused: its jti was used before (replay)", code="invalid_client"
                )
            if len(seen) >= MAX_REPLAY:
                for k in [k for k, exp in seen.items() if exp <= now]:
                    del seen[k]
                if len(seen) >= MAX_REPLAY:  # all still live: refuse rather than forget one
                    raise OAuthError(
                        "too many live client assertions; try again later", code="invalid_client"
                    )
            seen[(client, jti)] = expires

    def _audience(self, form: Mapping[str, str]) -> str:
        audience = form.get("audience") or form.get("resource")
        if not audience:
            raise OAuthError("audience (or resource) is required", code="invalid_request")
        if "audience" in form and "resource" in form and form["audience"] != form["resource"]:
            raise OAuthError("audience and resource differ", code="invalid_target")
        if audience not in self.audiences:
            raise OAuthError(
                f"audience {audience[:200]!r} is not served by this issuer", code="invalid_target"
            )
        return audience

    def _exchange(self, form: Mapping[str, str], now: float) -> dict[str, Any]:
        if "scope" in form:
            raise OAuthError(
                "scopes are not used: what a token allows is decided by policy", code="invalid_scope"
            )
        for name in ("subject_token", "subject_token_type", "actor_token", "actor_token_type"):
            if not form.get(name):
                raise OAuthError(
                    f"{name} is required (vigil exchanges for delegation only)", code="invalid_request"
                )
        if form["subject_token_type"] not in SUBJECT_TOKEN_TYPES:
            raise OAuthError("subject_token_type must be a JWT token type", code="invalid_request")
        if form["actor_token_type"] not in (ACCESS_TOKEN_TYPE, JWT_TYPE):
            raise OAuthError("actor_token_type must be an access token", code="invalid_request")
        requested = form.get("requested_token_type")
        if requested is not None and requested not in (ACCESS_TOKEN_TYPE, JWT_TYPE):
            raise OAuthError("only access tokens are issued", code="invalid_request")
        audience = self._audience(form)
        actor_tok = self._verified(form["actor_token"], "actor_token", now)
        if actor_tok.issuer != self.issuer or actor_tok.actors:
            raise OAuthError(
                "actor_token must be a vigil token of the actor itself (not delegated)", code="invalid_grant"
            )
        subject_tok = self._verified(form["subject_token"], "subject_token", now)
        actor = actor_tok.subject
        depth = len(subject_tok.actors) + 1
        if depth > self.settings.max_delegation_depth:
            raise OAuthError(
                f"the delegation chain would hold {depth} actors; at most "
                f"{self.settings.max_delegation_depth} are allowed",
                code="invalid_grant",
            )
        subject = subject_tok.subject
        if actor == subject or actor in subject_tok.actors:
            raise OAuthError("an identity cannot act for itself", code="invalid_grant")
        for party in (actor, subject, *subject_tok.actors):
            if not self.registry.is_active(party, now):
                raise OAuthError(f"{uid_text(party)} is not active", code="invalid_grant")
        allowed, decision = self._act_for(actor, subject, now)
        if not allowed:
            raise OAuthError(
                f"policy does not let {uid_text(actor)} act for {uid_text(subject)} (decision {decision})",
                code="unauthorized_client",
            )
        act: dict[str, Any] = {"sub": uid_text(actor)}
        prior = subject_tok.claims.get("act") if subject_tok.issuer == self.issuer else None
        if prior is not None:
            act["act"] = prior
        claims = {"sub": uid_text(subject), "aud": audience, "act": act}
        # never outlive the tokens it was made from
        exp = min(
            now + self.settings.token_ttl_s,
            subject_tok.expires - self.verifier.skew_s,
            actor_tok.expires - self.verifier.skew_s,
        )
        return self._issue(claims, subject, (actor, *subject_tok.actors), now, exp, TOKEN_EXCHANGE, decision)

    def _verified(self, token: str, name: str, now: float) -> VerifiedToken:
        try:
            return self.verifier.verify(token, now)
        except TokenError as e:
            raise OAuthError(f"{name} refused: {e.message} ({e.code})", code="invalid_grant") from None

    def _issue(
        self,
        claims: dict[str, Any],
        subject: EntityUid,
        actors: tuple[EntityUid, ...],
        now: float,
        exp: float,
        grant: str,
        decision: str,
    ) -> dict[str, Any]:
        """Sign, record (``token_issued``), count; raises AuditError or SigningKeyError."""
        self._recordable()
        iat = int(now)
        exp_i = int(exp)
        if exp_i <= iat:
            raise OAuthError("the tokens exchanged expire too soon", code="invalid_grant")
        jti = secrets.token_urlsafe(18)
        body = {"iss": self.issuer, **claims, "iat": iat, "exp": exp_i, "jti": jti}
        kid, key, alg = self.keys.signing_key(now)
        token = jws.serialize_compact(
            {"alg": alg, "kid": kid, "typ": "at+jwt"}, orjson.dumps(body), key, algorithms=[alg]
        )
        details: dict[str, Any] = {
            "grant_type": grant,
            "subject": uid_text(subject),
            "audience": claims["aud"],
            "jti": jti,
            "expires": exp_i,
            "kid": kid,
        }
        if actors:
            details["actors"] = [uid_text(a) for a in actors]
            details["decision"] = decision
        self._record("token_issued", uid_text(actors[0] if actors else subject), **details)
        self.registry.note_token_issued(actors[0] if actors else subject, now)
        self.issued += 1
        out: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": exp_i - iat}
        if grant == TOKEN_EXCHANGE:
            out["issued_token_type"] = ACCESS_TOKEN_TYPE
        return out


def _same(text: str, uid: EntityUid) -> bool:
    try:
        return parse_identity_uid(text) == uid
    except VigilError:
        return False


def parse_form(body: bytes, content_type: bytes | None) -> dict[str, str]:
    """The parameters of an ``application/x-www-form-urlencoded`` body; raises OAuthError
    (``invalid_request``) for another content type, malformed or oversized input, a repeated or
    empty parameter (RFC 6749 section 3.2)."""
    media = (content_type or b"").split(b";", 1)[0].strip().lower()
    if media != FORM_TYPE:
        raise OAuthError("the body must be application/x-www-form-urlencoded", code="invalid_request")
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError("the body is too large", code="invalid_request")
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_PARAMS)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("the body is not a well-formed form", code="invalid_request") from None
    form: dict[str, str] = {}
    for k, v in pairs:
        if k in form:
            raise OAuthError(f"parameter {k[:50]!r} is repeated", code="invalid_request")
        if not v:
            raise OAuthError(f"parameter {k[:50]!r} is empty", code="invalid_request")
        if not v.isprintable():
            raise OAuthError(f"parameter {k[:50]!r} is not printable text", code="invalid_request")
        form[k] = v
    return form
