"""Envoy external authorization, HTTP service mode: the original request -> an AuthZEN request.

Envoy's ``ext_authz`` filter (``http_service``) sends the authorization server the original
request's method, its path (after ``path_prefix``), its allowed headers and an empty body, and
lets the request through on 200; any other status is returned to the client. vigil maps the
original request with a route table from ``vigil.toml``::

    [ext_authz]
    routes = [
      "GET    /todos              => can_read_todos   todo::list",
      "PUT    /todos/{todoId}     => can_update_todo  todo::{todoId}",
      "*      /admin/{rest...}    => admin            route::{@route}",
    ]

A line is ``METHOD PATTERN => ACTION TYPE::ID``. ``METHOD`` is a verb or ``*``; a pattern segment
``{name}`` matches one path segment, a last segment ``{name...}`` the rest of the path. In the
action and the resource, ``{name}`` is replaced by that path parameter, ``{@method}`` by the
method, ``{@route}`` by the pattern and ``{@path}`` by the path. The first matching line wins; no
match is a deny. The subject is the value of a configured header, or the verified ``sub`` (or
another claim) of a JWT in ``Authorization: Bearer`` checked against a JWKS file, or (``subject =
"token"``) the identity of a token in ``Authorization: Bearer`` that vigil's verifier accepts (its
own tokens and the ``[[identity.trust]]`` issuers'; the decision is then backed by the token,
delegation included: ``docs/identity.md``).

Refused with 400 (Envoy then refuses the original request): a path with an encoded slash or
backslash (``%2F``, ``%5C``), a backslash, or a dot segment (``.``, ``..``, also percent-encoded)
anywhere (``invalid_path``): the route table would otherwise see a different path than the
upstream service; and a repeated identity header (the subject header, ``Authorization``, the
client-address headers: ``duplicate_header``).

The client's address and user agent reach the decision as ``context.ip`` and
``context.user_agent`` (and ``context.region`` from ``region_header`` when set), so behaviour
signals work behind Envoy: see :class:`ClientSource`.

:func:`check` is the whole exchange for one original request, independent of how Envoy asked:
the HTTP service (``vigil.server.app``) and the gRPC ``Authorization/Check`` service
(``vigil.server.grpc_ext_authz``) both call it and only translate its :class:`Verdict`.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

from vigil.engine import Engine
from vigil.errors import RequestError, VigilError, WorkspaceError
from vigil.identity.tokens import TokenError
from vigil.model.decision import DecisionRecord
from vigil.workspace.settings import ExtAuthzSettings

_LINE: Final = re.compile(r"^\s*(\S+)\s+(/\S*)\s*=>\s*(\S+)\s+(\S+?)::(\S+)\s*$")
_PARAM: Final = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}$")
_PLACEHOLDER: Final = re.compile(r"\{(@?[A-Za-z_][A-Za-z0-9_]*)\}")
_METHOD: Final = re.compile(r"^[A-Z]+$|^\*$")
MAX_PATH: Final = 8192


class SubjectError(VigilError):
    """No verifiable subject in the original request (missing header, bad or expired JWT)."""

    code = "unauthenticated_subject"


@dataclass(frozen=True, slots=True)
class Route:
    """One line of the route table, compiled."""

    method: str
    pattern: str
    segments: tuple[str, ...]  # literal text, or "{name}" / "{name...}"
    action: str
    resource_type: str
    resource_id: str
    line: int


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """What a request maps to: the action name and the resource ``(type, id)``."""

    action: str
    resource: tuple[str, str]
    route: Route


def parse_routes(lines: Sequence[str], where: str = "vigil.toml [ext_authz] routes") -> tuple[Route, ...]:
    """Compile route lines; raises WorkspaceError listing every malformed line."""
    routes: list[Route] = []
    problems: list[str] = []
    for i, text in enumerate(lines, 1):
        m = _LINE.match(text)
        if m is None:
            problems.append(f"{where}[{i}]: expected 'METHOD /path => action Type::id', got {text!r}")
            continue
        method, pattern, action, rtype, rid = m.groups()
        method = method.upper()
        if not _METHOD.match(method):
            problems.append(f"{where}[{i}]: method {method!r} must be a verb or '*'")
            continue
        segments = tuple(pattern.strip("/").split("/")) if pattern != "/" else ()
        names: set[str] = set()
        bad = False
        for j, seg in enumerate(segments):
            pm = _PARAM.match(seg)
            if "{" in seg or "}" in seg:
                if pm is None:
                    problems.append(f"{where}[{i}]: segment {seg!r} must be '{{name}}' or '{{name...}}'")
                    bad = True
                elif pm.group(2) and j != len(segments) - 1:
                    problems.append(f"{where}[{i}]: '{{{pm.group(1)}...}}' must be the last segment")
                    bad = True
                else:
                    names.add(pm.group(1))
        for template in (action, rtype, rid):
            for ph in _PLACEHOLDER.findall(template):
                if not ph.startswith("@") and ph not in names:
                    problems.append(f"{where}[{i}]: {{{ph}}} is not a parameter of {pattern!r}")
                    bad = True
                elif ph.startswith("@") and ph not in ("@method", "@route", "@path"):
                    problems.append(f"{where}[{i}]: unknown placeholder {{{ph}}}")
                    bad = True
        if not bad:
            routes.append(Route(method, pattern, segments, action, rtype, rid, i))
    if problems:
        raise WorkspaceError(f"{where}: invalid route table", problems)
    return tuple(routes)


def _check_segments(path: str) -> None:
    """Raises RequestError (``invalid_path``) for a path an upstream server could read otherwise
    than vigil does: an encoded slash or backslash, a backslash, a dot segment (plain or
    percent-encoded), a segment parameter (``;``: ``..;/admin`` is ``../admin`` to some servers), an
    encoded percent sign (``%25``: decoded twice it is anything), an escape that is not valid UTF-8
    (``%FF`` and ``%FE`` would both read as U+FFFD), or a control character."""
    if "%" in path:
        low = path.lower()
        if "%2f" in low or "%5c" in low:
            raise RequestError("path has an encoded slash or backslash", code="invalid_path")
        if "%25" in low:
            raise RequestError("path has an encoded percent sign (double encoding)", code="invalid_path")
    if "\\" in path:
        raise RequestError("path has a backslash", code="invalid_path")
    if ";" in path:
        raise RequestError("path has a segment parameter (';')", code="invalid_path")
    for seg in path.split("/"):
        if "%" in seg:
            try:
                text = unquote(seg, errors="strict")
            except UnicodeDecodeError:
                raise RequestError("path has an escape that is not UTF-8", code="invalid_path") from None
        else:
            text = seg
        if text in (".", ".."):
            raise RequestError("path has a dot segment ('.' or '..')", code="invalid_path")
        if any(c < " " or c == "\x7f" for c in text):
            raise RequestError("path has a control character", code="invalid_path")


def match_route(routes: Sequence[Route], method: str, raw_path: str) -> RouteMatch | None:
    """The first route matching ``method`` and ``raw_path`` (query string ignored; segments
    percent-decoded after splitting), or None when no route matches. Raises RequestError
    (``invalid_path``) for encoded slashes or backslashes and dot segments."""
    path = raw_path.split("?", 1)[0]
    _check_segments(path)
    parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
    for route in routes:
        if route.method != "*" and route.method != method:
            continue
        params = _match_segments(route.segments, parts)
        if params is None:
            continue
        subst = dict(params)
        subst["@method"] = method
        subst["@route"] = route.pattern
        subst["@path"] = path
        return RouteMatch(
            _fill(route.action, subst),
            (_fill(route.resource_type, subst), _fill(route.resource_id, subst)),
            route,
        )
    return None


def _match_segments(segments: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, seg in enumerate(segments):
        if seg.startswith("{") and seg.endswith("...}"):
            rest = parts[i:]
            if not rest:
                return None
            params[seg[1:-4]] = "/".join(rest)
            return params
        if i >= len(parts):
            return None
        if seg.startswith("{") and seg.endswith("}"):
            if not parts[i]:
                return None
            params[seg[1:-1]] = parts[i]
        elif seg != parts[i]:
            return None
    return params if len(parts) == len(segments) else None


def _fill(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


# -- subjects -------------------------------------------------------------------------------------
class SubjectSource:
    """Reads the subject id from the original request's headers (lower-case names)."""

    def __init__(self, settings: ExtAuthzSettings, workspace: Path) -> None:
        self.mode = settings.subject
        self.header = settings.subject_header.lower().encode()
        self.claim = settings.jwt_claim
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self._keys: Any = None
        if self.mode == "jwt":
            if not settings.jwks_file:
                raise WorkspaceError(
                    "[ext_authz] subject = 'jwt' needs jwks_file",
                    ["vigil.toml: [ext_authz] subject = 'jwt' needs jwks_file"],
                )
            self._keys = load_jwks(workspace / settings.jwks_file)

    def bearer(self, headers: dict[bytes, bytes]) -> str:
        """The token of ``Authorization: Bearer <token>``; raises SubjectError when there is none."""
        auth = headers.get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            raise SubjectError("missing bearer token")
        try:
            return token.strip().decode("ascii")
        except UnicodeDecodeError:
            raise SubjectError("the bearer token is not ASCII") from None

    def subject_id(self, headers: dict[bytes, bytes], now: float | None = None) -> str:
        """The subject id; raises SubjectError when it is missing or (JWT) does not verify."""
        if self.mode == "header":
            value = headers.get(self.header)
            if not value:
                raise SubjectError(f"missing subject header {self.header.decode()!r}")
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise SubjectError("subject header is not UTF-8") from None
        auth = headers.get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            raise SubjectError("missing bearer token")
        return verify_jwt(
            token.strip().decode("latin-1"),
            self._keys,
            claim=self.claim,
            issuer=self.issuer,
            audience=self.audience,
            now=now,
        )


def load_jwks(path: Path) -> Any:
    """A joserfc KeySet from a JWKS file; raises WorkspaceError when unreadable or invalid."""
    from joserfc.jwk import KeySet

    try:
        data = path.read_text(encoding="utf-8")
        import json

        return KeySet.import_key_set(json.loads(data))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WorkspaceError(f"cannot load JWKS {str(path)!r}: {e}", [f"{path}: invalid JWKS: {e}"]) from None


_ALGORITHMS: Final = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


def verify_jwt(
    token: str,
    keys: Any,
    *,
    claim: str = "sub",
    issuer: str = "",
    audience: str = "",
    now: float | None = None,
) -> str:
    """The ``claim`` of a JWT whose signature verifies with ``keys`` (asymmetric algorithms only),
    that is not expired (``exp``) nor early (``nbf``), and whose ``iss``/``aud`` match when set.

    Raises SubjectError otherwise; it never returns an unverified value.
    """
    from joserfc import jwt
    from joserfc.errors import JoseError

    if len(token) > 16_384:
        raise SubjectError("bearer token too long")
    try:
        tok = jwt.decode(token, keys, algorithms=_ALGORITHMS)
        claims = tok.claims
        options: dict[str, Any] = {"exp": {"essential": True}}
        if issuer:
            options["iss"] = {"essential": True, "value": issuer}
        if audience:
            options["aud"] = {"essential": True, "value": audience}
        registry = jwt.JWTClaimsRegistry(
            now=int(now if now is not None else time.time()), leeway=30, **options
        )
        registry.validate(claims)
    except (JoseError, ValueError, TypeError, KeyError, IndexError, UnicodeError) as e:
        raise SubjectError(f"bearer token rejected: {type(e).__name__}") from None
    value = claims.get(claim)
    if type(value) is not str or not value:
        raise SubjectError(f"bearer token has no string claim {claim!r}")
    return value


# -- headers and the client ---------------------------------------------------------------------
def single_headers(headers: Iterable[tuple[bytes, bytes]], names: Collection[bytes]) -> dict[bytes, bytes]:
    """The headers (lower-case names) as a dict; raises RequestError (``duplicate_header``) when one
    of ``names`` occurs more than once (others: the last one is kept)."""
    out: dict[bytes, bytes] = {}
    for k, v in headers:
        if k in out and k in names:
            raise RequestError(f"header {k.decode('latin-1')[:64]!r} is repeated", code="duplicate_header")
        out[k] = v
    return out


MAX_USER_AGENT: Final = 512


class ClientSource:
    """Where the original client's address, user agent and region come from (``[ext_authz]``).

    Address: ``client_address_header`` when set (e.g. ``x-envoy-external-address``, which Envoy
    sets itself); otherwise the ``x-forwarded-for`` entry ``trusted_hops`` places from the right
    (Envoy appends the address it saw, so the rightmost entry cannot be forged by the client, and
    each trusted proxy in front of Envoy adds one more). Without ``x-forwarded-for``: the address
    of the connection to vigil (right when the PEP calls vigil directly). A list shorter than
    ``trusted_hops + 1`` or an entry that is not an IP address gives no address: the behaviour model
    then reports the network as missing rather than trust a forged one.
    """

    __slots__ = ("address_header", "headers", "hops", "region_header")

    def __init__(self, settings: ExtAuthzSettings) -> None:
        self.hops = settings.trusted_hops
        self.address_header = settings.client_address_header.lower().encode()
        self.region_header = settings.region_header.lower().encode()
        self.headers: tuple[bytes, ...] = tuple(
            h for h in (b"x-forwarded-for", self.address_header, self.region_header, b"user-agent") if h
        )

    def address(self, headers: dict[bytes, bytes], peer: str | None) -> str | None:
        """The client's IP address as text, or None when it cannot be trusted."""
        if self.address_header:
            value = headers.get(self.address_header)
            return client_ip(value.decode("latin-1")) if value else None
        xff = headers.get(b"x-forwarded-for")
        if xff is None:
            return client_ip(peer) if peer else None
        parts = [p.strip() for p in xff.decode("latin-1").split(",")]
        if len(parts) <= self.hops:
            return None
        return client_ip(parts[-1 - self.hops])

    def context(self, headers: dict[bytes, bytes], peer: str | None) -> dict[str, str]:
        """``{"ip", "user_agent", "region"}`` for the decision context (absent keys: unknown)."""
        out: dict[str, str] = {}
        ip = self.address(headers, peer)
        if ip is not None:
            out["ip"] = ip
        ua = headers.get(b"user-agent")
        if ua:
            text = ua.decode("latin-1")[:MAX_USER_AGENT]
            if text.isprintable():
                out["user_agent"] = text
        if self.region_header:
            region = headers.get(self.region_header)
            if region and len(region) <= 64:
                text = region.decode("latin-1").strip()
                if text and text.isprintable():
                    out["region"] = text
        return out


MAX_ADDRESS: Final = 128  # longer than any address with a port and a zone id


def client_ip(text: str) -> str | None:
    """The client address in ``text`` (an ``x-forwarded-for`` entry, an address header, the
    connection's peer) as the canonical text of an IP address, or None when it is not one.

    Accepted forms: ``v4``, ``v4:port``, ``v6``, ``[v6]``, ``[v6]:port``. Normalised: an IPv6
    zone id (``fe80::1%eth0``) is dropped (it names an interface of the proxy, not the client), and
    an IPv4-mapped IPv6 address (``::ffff:10.1.2.3``, what a dual-stack listener reports for an
    IPv4 client) is the IPv4 address, so one client has one network whichever way it arrived.
    Anything else (a host name, an empty or overlong entry, a bad port, an unterminated bracket)
    gives None: never an exception."""
    text = text.strip()
    if not text or len(text) > MAX_ADDRESS:
        return None
    if text[0] == "[":  # [v6] or [v6]:port
        end = text.find("]")
        if end < 0 or not _port_or_nothing(text[end + 1 :]):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # v4:port
        text, _, port = text.partition(":")
        if not _port_or_nothing(":" + port) or "." not in text:
            return None
    if "%" in text:  # an IPv6 zone id
        text, _, zone = text.partition("%")
        if ":" not in text or not zone:
            return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _port_or_nothing(rest: str) -> bool:
    """``""`` or ``":<1-5 ASCII digits>"`` (what may follow a bracketed address or an IPv4 one)."""
    if not rest:
        return True
    port = rest[1:]
    return rest[0] == ":" and 0 < len(port) <= 5 and port.isascii() and port.isdigit()


# -- the request --------------------------------------------------------------------------------
def authzen_request(
    match: RouteMatch,
    subject_type: str,
    subject_id: str,
    method: str,
    path: str,
    client: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The AuthZEN evaluation request for a matched route; ``context.http`` carries the method and
    path of the original request, and ``client`` (:meth:`ClientSource.context`) the client's
    ``ip``, ``user_agent`` and ``region``."""
    context: dict[str, Any] = {"http": {"method": method, "path": path.split("?", 1)[0]}}
    if client:
        context.update(client)
    return {
        "subject": {"type": subject_type, "id": subject_id},
        "action": {"name": match.action},
        "resource": {"type": match.resource[0], "id": match.resource[1]},
        "context": context,
    }


def check_path(raw_path: str) -> str:
    """``raw_path`` when it is a plausible request path; raises RequestError otherwise."""
    if not raw_path.startswith("/") or len(raw_path) > MAX_PATH:
        raise RequestError("original request path must start with '/' and be at most 8 KiB")
    return raw_path


# -- one check, for every transport -------------------------------------------------------------
class ExtAuthzConfig:
    """The route table, subject source and client source of one workspace generation."""

    __slots__ = (
        "api_key_header",
        "client",
        "identity_headers",
        "routes",
        "source",
        "subject_type",
        "workspace",
    )

    def __init__(self, engine: Engine) -> None:
        """Raises WorkspaceError when ``[ext_authz]`` of the engine's workspace is invalid."""
        ws = engine.workspace
        settings = ws.settings.ext_authz
        self.workspace = ws
        self.routes: tuple[Route, ...] = parse_routes(settings.routes)
        self.source = SubjectSource(settings, ws.path)
        self.client = ClientSource(settings)
        self.subject_type = settings.subject_type
        self.api_key_header = settings.api_key_header.lower().encode()
        # headers read once each: a repeated one is refused (400), never resolved
        self.identity_headers = frozenset((self.source.header, b"authorization", *self.client.headers))


class ExtAuthzTable:
    """The active workspace's :class:`ExtAuthzConfig`, rebuilt after a reload; when the new
    workspace's ``[ext_authz]`` is invalid the last good one is kept and ``on_refused`` is told."""

    __slots__ = ("_config", "engine", "on_refused")

    def __init__(self, engine: Engine, on_refused: Callable[[WorkspaceError], None] | None = None) -> None:
        """Raises WorkspaceError when the current workspace's ``[ext_authz]`` is invalid."""
        self.engine = engine
        self.on_refused = on_refused
        self._config = ExtAuthzConfig(engine)

    def current(self) -> ExtAuthzConfig:
        """The configuration for the workspace the engine decides with now."""
        config = self._config
        if config.workspace is not self.engine.workspace:
            try:
                config = self._config = ExtAuthzConfig(self.engine)
            except WorkspaceError as e:
                if self.on_refused is not None:
                    self.on_refused(e)
                config.workspace = self.engine.workspace
        return config


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one original request: ``status`` 200 lets it through; 401 and 403 are
    returned to the client with ``body`` and ``headers``; ``record`` is the decision, when one was
    made (no route or no verified subject decide nothing)."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[bytes, bytes], ...]
    record: DecisionRecord | None = None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def check(
    engine: Engine,
    config: ExtAuthzConfig,
    method: str,
    path: str,
    headers: Iterable[tuple[bytes, bytes]],
    peer: str | None,
) -> Verdict:
    """Decide one original request (``path`` as the client sent it, query included; ``headers``
    with lower-case names; ``peer`` the address of the connection to vigil).

    Returns a deny for no matching route (``no_route``), no verifiable subject (401,
    ``unauthenticated_subject``) and a request the engine refuses; raises RequestError
    (``invalid_path``, ``duplicate_header``: the transport answers 400) for a request it must
    not read at all. Never allows without a decision."""
    path = check_path(path)
    match = match_route(config.routes, method, path)
    if match is None:
        return Verdict(
            403, _error("no_route", "no route matches this request"), ((b"x-vigil-reason", b"no_route"),)
        )
    original = single_headers(headers, config.identity_headers)
    token: str | None = None
    subject_type = config.subject_type
    try:
        if config.source.mode == "token":
            token = config.source.bearer(original)
            try:
                verified = engine.verifier.verify(token)
            except TokenError as e:
                raise SubjectError(f"bearer token refused: {e.message}", code=e.code) from None
            subject_type, subject_id = verified.subject
        else:
            subject_id = config.source.subject_id(original)
    except SubjectError as e:
        out: tuple[tuple[bytes, bytes], ...] = ((b"x-vigil-reason", e.code.encode()),)
        if config.source.mode in ("jwt", "token"):
            out += ((b"www-authenticate", b'Bearer realm="vigil"'),)
        return Verdict(401, _error(e.code, e.message), out)
    client = config.client.context(original, peer)
    request = authzen_request(match, subject_type, subject_id, method, path, client)
    try:
        record = engine.decide(request, token=token)
    except RequestError as e:
        return Verdict(403, _error(e.code, e.message), ((b"x-vigil-reason", e.code.encode()),))
    return Verdict(
        200 if record.allowed else 403,
        record.to_authzen(),
        (
            (b"x-vigil-decision-id", record.id.encode()),
            (b"x-vigil-decision", record.decision.encode()),
            (b"x-vigil-reason", ",".join(record.reason_codes).encode()),
        ),
        record,
    )
