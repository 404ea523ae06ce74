"""The ASGI application: routing, caller authentication, body limits, error mapping, metrics, logs.

Handlers are thin: parse, call one library function (:mod:`vigil.protocol.authzen`, :mod:`vigil.protocol.search`,
:mod:`vigil.protocol.ext_authz`, the :class:`~vigil.engine.Engine`), map errors by code through
:data:`STATUS`. A bare ASGI callable (no framework): the stack comparison in ``docs/benchmarks.md``
shows a framework's routing costs more than the decision itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from vigil import __version__
from vigil.engine import Engine
from vigil.errors import HTTP_STATUS, AuditError, EntityChangeError, RequestError, VigilError, WorkspaceError
from vigil.identity.tokens import OAuthError, SigningKeyError
from vigil.identity.tokens.service import JWKS_PATH, METADATA_PATH, TOKEN_PATH
from vigil.model.jsonkeys import check_unique_keys
from vigil.operations.identities import (
    ADD_FIELDS,
    BINDING_FIELDS,
    KEY_FIELDS,
    PATH_ACTIONS,
    REMOVE_KEY_FIELDS,
    STATUS_FIELDS,
    body_fields,
    identity_path,
    parse_query,
    query_days,
)
from vigil.operations.revocations import revocation_dict
from vigil.operations.service import (
    change_dict,
    parse_change_page,
    parse_quarantine_change,
    parse_ticket_decision,
    parse_uses,
    quarantine_dict,
    ticket_dict,
)
from vigil.protocol import authzen
from vigil.protocol.ext_authz import ExtAuthzConfig, ExtAuthzTable, check
from vigil.protocol.search import Searcher
from vigil.server.auth import KeyRing, key_name
from vigil.server.logs import JsonLog
from vigil.server.metrics import Metrics
from vigil.server.openapi import openapi_document
from vigil.store import StoreError, bounded
from vigil.workspace.settings import restart_needed

# The HTTP status of every code (the one table, vigil.errors.ErrorCode).
STATUS: Final[dict[str, int]] = HTTP_STATUS

EXT_AUTHZ_PREFIX: Final = "/ext_authz"
ADMIN_PREFIX: Final = "/admin/v1"
IDENTITIES_PATH: Final = ADMIN_PREFIX + "/identities"
_JSON: Final = (b"content-type", b"application/json")
# An X-Request-ID is echoed (and logged) only when it is short and plain; otherwise it is replaced
# by a generated one.
_RID: Final = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
_TEXT: Final = (b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
Headers = list[tuple[bytes, bytes]]


def _where(e: BaseException) -> str:
    """``file:line`` of the innermost frame of ``e`` (no message: it could quote request data)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"


def status_of(error: VigilError) -> int:
    """The HTTP status of an error code: 400 for any request error, 500 for the unexpected."""
    status = STATUS.get(error.code)
    if status is None:
        status = 400 if isinstance(error, RequestError) else 500
    return status


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """``{"error": {"code", "message", ...}}``, the body of every error response."""
    return {"error": {"code": code, "message": message, **details}}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the app needs besides the engine. ``api_keys``/``admin_keys`` None: no caller
    authentication (only with ``--insecure-no-auth`` on loopback)."""

    api_keys: KeyRing | None
    admin_keys: KeyRing | None
    pdp_url: str = "http://127.0.0.1:8181"
    max_body_bytes: int = 1_048_576
    max_evaluations: int = 1_000
    search_max_results: int = 1_000
    echo: bool = False
    store_timeout_s: float = 1.0  # [store] busy_timeout_ms: admin calls answer 503 after ~3x this


class Request:
    """What a handler sees of one HTTP request."""

    __slots__ = ("body", "content_type", "method", "rid", "scope")

    def __init__(self, scope: dict[str, Any], content_type: bytes | None, rid: bytes | None) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.content_type = content_type
        self.rid = rid
        self.body = b""

    @property
    def headers(self) -> Headers:
        """The raw headers (lower-case names)."""
        headers: Headers = self.scope["headers"]
        return headers

    @property
    def target(self) -> str:
        """The undecoded path and query string, as the client sent them."""
        scope = self.scope
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        qs: bytes = scope.get("query_string") or b""
        return raw.decode("latin-1") + ("?" + qs.decode("latin-1") if qs else "")

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; raises the errors of :func:`vigil.protocol.authzen.parse_body`, and
        RequestError (``invalid_json``) when an object repeats a key."""
        obj = authzen.parse_body(self.body, self.content_type)
        check_unique_keys(self.body, obj)
        return obj


# A handler returns (status, JSON payload or raw bytes, extra headers, access-log fields).
Result = tuple[int, Any, Headers | None]
Handler = Callable[[Request], Awaitable[Result]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    methods: tuple[str, ...]
    auth: str  # "api", "admin", "none", "ext_authz"
    body: bool
    handler: Handler


class VigilApp:
    """The vigil HTTP service as one ASGI callable."""

    def __init__(self, engine: Engine, config: ServerConfig, log: JsonLog | None = None) -> None:
        self.engine = engine
        self.config = config
        self.log = log if log is not None else JsonLog()
        self.metrics = Metrics()
        self.searcher = Searcher(engine, max_results=config.search_max_results)
        self.ready = True
        self.pdp_url = config.pdp_url
        # raises WorkspaceError: refuse to start
        self.ext_authz = ExtAuthzTable(engine, self._ext_refused)
        self._flusher: asyncio.Task[None] | None = None
        # services that live on the app's event loop beside HTTP (the gRPC ext_authz server):
        # started at lifespan startup, stopped at shutdown before the engine closes
        self.companions: list[tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]] = []
        self._openapi = orjson.dumps(openapi_document(echo=config.echo))
        e = Endpoint
        self.routes: dict[str, Endpoint] = {
            authzen.EVALUATION_PATH: e("evaluation", ("POST",), "api", True, self._evaluation),
            authzen.EVALUATIONS_PATH: e("evaluations", ("POST",), "api", True, self._evaluations),
            authzen.SEARCH_SUBJECT_PATH: e("search_subject", ("POST",), "api", True, self._search_subject),
            authzen.SEARCH_RESOURCE_PATH: e("search_resource", ("POST",), "api", True, self._search_resource),
            authzen.SEARCH_ACTION_PATH: e("search_action", ("POST",), "api", True, self._search_action),
            authzen.METADATA_PATH: e("metadata", ("GET",), "none", False, self._metadata),
            ADMIN_PREFIX + "/reload": e("admin_reload", ("POST",), "admin", False, self._reload),
            ADMIN_PREFIX + "/status": e("admin_status", ("GET",), "admin", False, self._status),
            ADMIN_PREFIX + "/stats": e("admin_stats", ("GET",), "admin", False, self._stats),
            ADMIN_PREFIX + "/approvals": e("admin_approvals", ("GET",), "admin", False, self._approvals),
            ADMIN_PREFIX + "/approvals/approve": e("admin_approve", ("POST",), "admin", True, self._approve),
            ADMIN_PREFIX + "/approvals/deny": e("admin_deny", ("POST",), "admin", True, self._deny),
            ADMIN_PREFIX + "/quarantine": e("admin_quarantine", ("GET",), "admin", False, self._quarantined),
            ADMIN_PREFIX + "/quarantine/add": e(
                "admin_quarantine_add", ("POST",), "admin", True, self._q_add
            ),
            ADMIN_PREFIX + "/quarantine/lift": e(
                "admin_quarantine_lift", ("POST",), "admin", True, self._q_lift
            ),
            ADMIN_PREFIX + "/changes": e("admin_changes", ("GET",), "admin", False, self._changes),
            ADMIN_PREFIX + "/entities": e("admin_entities", ("PUT", "DELETE"), "admin", True, self._entities),
            IDENTITIES_PATH: e("admin_identities", ("GET", "POST"), "admin", True, self._identities),
            IDENTITIES_PATH + "/report": e(
                "admin_identity_report", ("GET",), "admin", False, self._identity_report
            ),
            METADATA_PATH: e("oauth_metadata", ("GET",), "none", False, self._oauth_metadata),
            JWKS_PATH: e("oauth_jwks", ("GET",), "none", False, self._oauth_jwks),
            TOKEN_PATH: e("oauth_token", ("POST",), "none", True, self._oauth_token),
            ADMIN_PREFIX + "/revocations": e(
                "admin_revocations", ("GET",), "admin", False, self._revocations
            ),
            ADMIN_PREFIX + "/tokens/revoke": e(
                "admin_revoke_token", ("POST",), "admin", True, self._revoke_token
            ),
            ADMIN_PREFIX + "/delegations/revoke": e(
                "admin_revoke_delegation", ("POST",), "admin", True, self._revoke_delegation
            ),
            ADMIN_PREFIX + "/oauth/keys": e("admin_oauth_keys", ("GET",), "admin", False, self._oauth_keys),
            ADMIN_PREFIX + "/oauth/rotate-key": e(
                "admin_oauth_rotate", ("POST",), "admin", True, self._oauth_rotate
            ),
            "/healthz": e("healthz", ("GET",), "none", False, self._healthz),
            "/readyz": e("readyz", ("GET",), "none", False, self._readyz),
            "/metrics": e("metrics", ("GET",), "none", False, self._metrics),
            "/openapi.json": e("openapi", ("GET",), "none", False, self._openapi_json),
        }
        if config.echo:
            self.routes["/bench/echo"] = e("echo", ("POST",), "api", True, self._echo)
        any_method = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
        self._ext_endpoint = e("ext_authz", any_method, "ext_authz", False, self._ext_authz)
        self._identity_endpoint = e("admin_identity", ("GET", "POST"), "admin", True, self._identity)

    # -- ASGI -------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        t0 = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        raw_headers: Headers = scope["headers"]
        rid = ctype = clen = authorization = None
        repeated = False
        for k, v in raw_headers:
            if k == b"content-type":
                ctype = v
            elif k == b"authorization":
                repeated = repeated or authorization is not None
                authorization = v
            elif k == b"x-request-id":
                rid = v
            elif k == b"content-length":
                clen = v
        if rid is not None and _RID.fullmatch(rid) is None:
            rid = secrets.token_hex(16).encode()
        ep = self.routes.get(path)
        if ep is None and (path == EXT_AUTHZ_PREFIX or path.startswith(EXT_AUTHZ_PREFIX + "/")):
            ep = self._ext_endpoint
        elif ep is None and path.startswith(IDENTITIES_PATH + "/"):
            ep = self._identity_endpoint
        metrics = self.metrics
        metrics.in_flight += 1
        extra: Headers | None = None
        admin: str | None = None
        name = ep.name if ep is not None else "unknown"
        try:
            if ep is None:
                status, payload = 404, error_body("not_found", f"no endpoint at {path[:200]!r}")
            elif method not in ep.methods:
                status, payload = (
                    405,
                    error_body("method_not_allowed", f"{path} accepts {', '.join(ep.methods)}"),
                )
                extra = [(b"allow", ", ".join(ep.methods).encode())]
            elif repeated:
                status, payload = 400, error_body("duplicate_header", "the Authorization header is repeated")
            elif not self._authenticated(ep.auth, raw_headers, authorization):
                status, payload = 401, error_body("unauthenticated", "missing or invalid API key")
                extra = [(b"www-authenticate", b'Bearer realm="vigil"')]
            else:
                req = Request(scope, ctype, rid)
                if ep.body:
                    too_big = await self._read_body(req, clen, receive)
                    if too_big:
                        status, payload = (
                            413,
                            error_body(
                                "request_too_large",
                                f"request body larger than {self.config.max_body_bytes} bytes",
                            ),
                        )
                        return await self._respond(send, status, payload, None, rid, name, method, path, t0)
                if ep.auth == "admin":
                    admin = key_name(authorization)
                status, payload, extra = await ep.handler(req)
        except VigilError as e:
            status = status_of(e)
            payload = {"error": {"code": e.code, "message": e.message}}
        except Exception as e:  # a bug, never client input: logged, and the caller gets a deny-safe 500
            status, payload = 500, error_body("internal_error", "internal error; see the server log")
            self.log.event(
                "error", "unhandled exception", endpoint=name, error=type(e).__name__, at=_where(e)
            )
        finally:
            metrics.in_flight -= 1
        if admin is not None:  # every use of an admin key is audited, under its fingerprint
            self.engine.audit_operator("admin_api", admin, endpoint=name, method=method, status=status)
        await self._respond(send, status, payload, extra, rid, name, method, path, t0)

    async def _respond(
        self,
        send: Any,
        status: int,
        payload: Any,
        extra: Headers | None,
        rid: bytes | None,
        name: str,
        method: str,
        path: str,
        t0: float,
    ) -> None:
        if type(payload) is bytes:
            body = payload
            headers: Headers = [_TEXT] if name == "metrics" else [_JSON]
        else:
            body = orjson.dumps(payload)
            headers = [_JSON]
        headers.append((b"content-length", str(len(body)).encode()))
        if rid is not None:
            headers.append((b"x-request-id", rid))
        if extra:
            headers.extend(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        elapsed = time.perf_counter() - t0
        self.metrics.request(name, status, elapsed)
        if status >= 400 and type(payload) is dict:
            err = payload.get("error")
            if type(err) is dict:
                self.metrics.error(str(err.get("code")))
        if self.log.access_enabled:
            fields: dict[str, Any] = {
                "level": "info",
                "msg": "access",
                "method": method,
                "path": path[:512],
                "endpoint": name,
                "status": status,
                "ms": elapsed * 1000,
                "bytes": len(body),
            }
            if rid is not None:
                fields["request_id"] = rid[:256].decode("latin-1")
            self.log.access(fields)

    def _authenticated(self, kind: str, headers: Headers, authorization: bytes | None) -> bool:
        if kind == "none":
            return True
        if kind == "ext_authz":
            keys = self.config.api_keys
            if keys is None:
                return True
            wanted = self.ext_authz.current().api_key_header
            values = [v for k, v in headers if k == wanted]
            if len(values) != 1:  # missing or repeated
                return False
            value = values[0]
            return 0 < len(value) <= 4096 and keys.verify(value.strip())
        keys = self.config.api_keys if kind == "api" else self.config.admin_keys
        if keys is None:
            return self.config.api_keys is None  # insecure mode opens the admin API too
        return keys.verify_bearer(authorization)

    async def _read_body(self, req: Request, clen: bytes | None, receive: Any) -> bool:
        """Read the body into ``req``; True when it exceeds the limit (nothing more is read)."""
        limit = self.config.max_body_bytes
        if clen is not None:
            try:
                if int(clen) > limit:
                    return True
            except ValueError:
                pass
        msg = await receive()
        body: bytes = msg.get("body", b"")
        if not msg.get("more_body", False):
            if len(body) > limit:
                return True
            req.body = body
            return False
        parts = [body]
        size = len(body)
        while True:
            msg = await receive()
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                return True
            parts.append(chunk)
            if not msg.get("more_body", False):
                break
        req.body = b"".join(parts)
        return False

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self._flusher = asyncio.create_task(self._flush_loop())
                try:
                    for start, _ in self.companions:
                        await start()
                except Exception as e:
                    self.log.event("error", "startup failed", error=str(e))
                    self.log.flush()
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def shutdown(self) -> None:
        """Stop being ready, flush the audit log (in-flight requests have finished) and the logs."""
        self.ready = False
        for _, stop in self.companions:
            with contextlib.suppress(Exception):
                await stop()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        self.engine.close()
        self.log.flush()
        self.log.event("info", "shutdown complete", audit_dropped=self.engine.audit.dropped)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.log.flush()

    # -- AuthZEN ----------------------------------------------------------------------------
    async def _evaluation(self, req: Request) -> Result:
        response, record = authzen.evaluation(self.engine, req.json())
        self.metrics.decided((record,))
        return 200, response, None

    async def _evaluations(self, req: Request) -> Result:
        response, records = authzen.evaluations(
            self.engine, req.json(), max_items=self.config.max_evaluations
        )
        self.metrics.decided(records)
        return 200, response, None

    async def _search_subject(self, req: Request) -> Result:
        return 200, self.searcher.subject(req.json()), None

    async def _search_resource(self, req: Request) -> Result:
        return 200, self.searcher.resource(req.json()), None

    async def _search_action(self, req: Request) -> Result:
        return 200, self.searcher.action(req.json()), None

    async def _metadata(self, req: Request) -> Result:
        return 200, authzen.metadata(self.pdp_url), [(b"cache-control", b"max-age=300")]

    async def _echo(self, req: Request) -> Result:
        return 200, req.json(), None

    # -- Envoy ext_authz ----------------------------------------------------------------------
    def ext_authz_config(self) -> ExtAuthzConfig:
        """The route table of the active workspace (rebuilt after a reload; the last good one is
        kept when the new one is invalid)."""
        return self.ext_authz.current()

    def _ext_refused(self, e: WorkspaceError) -> None:
        self.log.event("error", "ext_authz settings refused; keeping the previous ones", problems=e.problems)

    async def _ext_authz(self, req: Request) -> Result:
        peer = req.scope.get("client")
        verdict = check(
            self.engine,
            self.ext_authz.current(),
            req.method,
            req.target[len(EXT_AUTHZ_PREFIX) :] or "/",
            req.headers,
            peer[0] if peer else None,
        )  # RequestError: 400
        if verdict.record is not None:
            self.metrics.decided((verdict.record,))
        return verdict.status, verdict.body, list(verdict.headers)

    # -- admin ------------------------------------------------------------------------------
    async def _reload(self, req: Request) -> Result:
        by = key_name(next((v for k, v in req.headers if k == b"authorization"), None))
        before = self.engine.workspace.settings
        result = await asyncio.to_thread(self.engine.reload, by=by)
        self.metrics.reloads["ok" if result.ok else "failed"] += 1
        if not result.ok:
            self.log.event(
                "error", "reload refused", revision=result.revision, problems=list(result.problems)
            )
            return (
                422,
                error_body(
                    "invalid_workspace",
                    "workspace refused; the last good one stays active",
                    revision=result.revision,
                    problems=list(result.problems),
                ),
                None,
            )
        self.ext_authz_config()
        pending = restart_needed(before, self.engine.workspace.settings)
        self.log.event("info", "reloaded", revision=result.revision, restart_needed=pending)
        return 200, {"ok": True, "revision": result.revision, "restart_needed": pending}, None

    async def _status(self, req: Request) -> Result:
        status = self.engine.status()
        status["version"] = __version__
        status["ext_authz_routes"] = len(self.ext_authz_config().routes)
        status["ready"] = self.ready
        return 200, status, None

    async def _stats(self, req: Request) -> Result:
        return 200, self.metrics.recent(), None

    async def _offload(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker thread, off the event loop, every store wait in it
        bounded by ``store_timeout_s``; raises what ``fn`` raises, and StoreError
        (``store_unavailable``) when it has not answered within about three times that."""
        limit = self.config.store_timeout_s

        def run() -> Any:
            with bounded(limit):
                return fn(*args, **kwargs)

        try:
            return await asyncio.wait_for(asyncio.to_thread(run), timeout=3 * limit + 0.5)
        except TimeoutError:
            raise StoreError(f"the state store did not answer within {3 * limit + 0.5:.1f} s") from None

    # Approvals, quarantine, the change log: the same use cases as `vigil approvals|quarantine`
    # (operations/desk.py, through the engine's desk, so its decisions see each change at once),
    # each change written to the store's change log and the audit log with `by`. Store I/O runs
    # off the event loop, bounded.
    async def _approvals(self, req: Request) -> Result:
        now = self.engine.now()
        tickets = await self._offload(self.engine.desk.tickets)
        return 200, {"tickets": [ticket_dict(t, now) for t in tickets]}, None

    async def _approve(self, req: Request) -> Result:
        body = req.json()
        ticket, by, note = parse_ticket_decision(body)
        uses = parse_uses(body)
        t = await self._offload(self.engine.desk.approve, ticket, by=by, note=note, uses=uses)
        return 200, ticket_dict(t), None

    async def _deny(self, req: Request) -> Result:
        ticket, by, note = parse_ticket_decision(req.json())
        t = await self._offload(self.engine.desk.deny, ticket, by=by, note=note)
        return 200, ticket_dict(t), None

    async def _quarantined(self, req: Request) -> Result:
        entries = await self._offload(self.engine.desk.quarantined)
        q = self.engine.desk.quarantine
        return (
            200,
            {"quarantined": [{**quarantine_dict(e), "durable": q.durable(e.subject)} for e in entries]},
            None,
        )

    async def _q_add(self, req: Request) -> Result:
        subject, by, reason = parse_quarantine_change(req.json(), "reason")
        try:
            q = await self._offload(self.engine.desk.add, subject, by=by, reason=reason)
        except StoreError as e:
            held = self.engine.desk.quarantine.get(subject)
            if held is None:
                raise
            # enforced by this process from now on, but lost on restart: not reported as done
            return (
                503,
                error_body(
                    e.code,
                    "the quarantine could not be saved; this server enforces it until it restarts "
                    f"(retry to save it): {e.message}",
                    durable=False,
                    enforced=True,
                    quarantine=quarantine_dict(held),
                ),
                None,
            )
        return 200, {**quarantine_dict(q), "durable": True}, None

    async def _q_lift(self, req: Request) -> Result:
        subject, by, note = parse_quarantine_change(req.json(), "note")
        q = await self._offload(self.engine.desk.lift, subject, by=by, note=note)
        return 200, quarantine_dict(q), None

    async def _changes(self, req: Request) -> Result:
        before, limit = parse_change_page(req.scope.get("query_string") or b"")
        changes = await self._offload(self.engine.desk.recent_changes, before=before, limit=limit)
        nxt = str(changes[-1].seq) if len(changes) == limit and changes and changes[-1].seq > 1 else None
        return 200, {"changes": [change_dict(c) for c in changes], "next": nxt}, None

    # Entity changes without a reload (an identity provider's sync): PUT puts entities in, DELETE
    # takes uids out; the engine checks the whole batch first and audits it (docs/http.md).
    async def _entities(self, req: Request) -> Result:
        if req.method == "PUT":
            b = body_fields(req.json(), ("entities", "by"))
            if "entities" not in b:
                raise RequestError(
                    "request is missing the required field 'entities' (an array of Cedar entities)"
                )
            upserts, deletes = b["entities"], None
        else:
            b = body_fields(req.json(), ("uids", "by"))
            if "uids" not in b:
                raise RequestError("request is missing the required field 'uids' (an array of {type, id})")
            upserts, deletes = None, b["uids"]
        by = b.get("by")
        if by is None:
            by = key_name(next((v for k, v in req.headers if k == b"authorization"), None))
        elif type(by) is not str or not by or len(by) > 200:
            raise RequestError("'by' must be a non-empty string of at most 200 characters")
        try:
            result = await self._offload(self.engine.change_entities, upserts, deletes, by=by)
        except EntityChangeError as e:  # with the item it names (index, field)
            return status_of(e), error_body(e.code, e.message, **e.details), None
        return 200, result, None

    # The identity registry: the same use cases as `vigil identity ...` (operations/identities.py),
    # through the engine's desk, so the engine's gate sees each change at once.
    async def _identities(self, req: Request) -> Result:
        ids = self.engine.identities
        if req.method == "GET":
            query = parse_query(req.scope.get("query_string") or b"", ("status",))
            items = await self._offload(ids.list, status=query.get("status"))
            now = self.engine.now()
            return 200, {"identities": [ids.describe(e, now) for e in items]}, None
        b = body_fields(req.json(), ADD_FIELDS)
        entry = await self._offload(
            ids.add,
            b.get("uid"),
            owner=b.get("owner"),
            purpose=b.get("purpose"),
            kind=b.get("kind"),
            expires=b.get("expires"),
            public_key=b.get("public_key"),
            by=b.get("by"),
        )
        return 200, ids.describe(entry), None

    async def _identity_report(self, req: Request) -> Result:
        query = parse_query(req.scope.get("query_string") or b"", ("unused_days", "key_age_days"))
        report = await self._offload(
            self.engine.identities.report,
            unused_days=query_days(query, "unused_days"),
            key_age_days=query_days(query, "key_age_days"),
        )
        return 200, report, None

    async def _identity(self, req: Request) -> Result:
        raw: bytes = req.scope.get("raw_path") or req.scope["path"].encode()
        prefix = IDENTITIES_PATH.encode() + b"/"
        if not raw.startswith(prefix):  # the prefix itself percent-encoded: not a path we serve
            return 404, error_body("not_found", "no endpoint at this path"), None
        uid, action = identity_path(raw[len(prefix) :])
        method = PATH_ACTIONS[action]
        if req.method != method:
            return (
                405,
                error_body("method_not_allowed", f"this identity endpoint accepts {method}"),
                [(b"allow", method.encode())],
            )
        ids = self.engine.identities
        if not action:
            entry = await self._offload(ids.show, uid)
        elif action[0] in ("suspend", "resume", "retire"):
            b = body_fields(req.json(), STATUS_FIELDS)
            entry = await self._offload(getattr(ids, action[0]), uid, by=b.get("by"), reason=b.get("reason"))
        elif action == ("keys",):
            b = body_fields(req.json(), KEY_FIELDS)
            if "key" not in b:
                raise RequestError("request is missing the required field 'key' (a JWK object or PEM text)")
            entry, _ = await self._offload(ids.add_key, uid, b["key"], by=b.get("by"))
        elif action == ("keys", "remove"):
            b = body_fields(req.json(), REMOVE_KEY_FIELDS)
            entry, _ = await self._offload(ids.remove_key, uid, b.get("kid"), by=b.get("by"))
        else:
            b = body_fields(req.json(), BINDING_FIELDS)
            change = ids.bind if len(action) == 1 else ids.unbind
            entry = await self._offload(
                change, uid, issuer=b.get("issuer"), subject=b.get("subject"), by=b.get("by")
            )
        return 200, ids.describe(entry), None

    # -- the token service (identity/tokens/service.py) ------------------------------------------
    async def _oauth_metadata(self, req: Request) -> Result:
        return 200, self.engine.tokens.metadata(), [(b"cache-control", b"max-age=300")]

    async def _oauth_jwks(self, req: Request) -> Result:
        try:
            jwks = self.engine.tokens.jwks()
        except SigningKeyError as e:
            return 503, error_body(e.code, e.message), None
        return 200, jwks, [(b"cache-control", b"max-age=60")]

    async def _oauth_token(self, req: Request) -> Result:
        """RFC 6749 section 5: the token or ``{"error", "error_description"}``, never cached."""
        no_store = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
        try:
            answer = await asyncio.to_thread(self.engine.tokens.token_request, req.body, req.content_type)
        except OAuthError as e:
            return status_of(e), e.body(), no_store
        except (AuditError, SigningKeyError, StoreError) as e:  # nothing issued
            return 503, {"error": e.code, "error_description": e.message}, no_store
        return 200, answer, no_store

    async def _oauth_keys(self, req: Request) -> Result:
        keys = await self._offload(self.engine.signing_keys.describe, self.engine.now())
        return 200, {"issuer": self.engine.tokens.issuer, "keys": keys}, None

    async def _oauth_rotate(self, req: Request) -> Result:
        b = body_fields(req.json(), ("by",))
        kid = await self._offload(self.engine.rotate_signing_key, by=b.get("by"))
        return 200, {"kid": kid}, None

    async def _revocations(self, req: Request) -> Result:
        items = await self._offload(self.engine.revocations.list)
        return 200, {"revocations": [revocation_dict(r) for r in items]}, None

    async def _revoke_token(self, req: Request) -> Result:
        b = body_fields(req.json(), ("by", "jti", "reason"))
        r, added = await self._offload(
            self.engine.revocations.revoke_token, b.get("jti"), by=b.get("by"), reason=b.get("reason")
        )
        return 200, {**revocation_dict(r), "new": added}, None

    async def _revoke_delegation(self, req: Request) -> Result:
        b = body_fields(req.json(), ("by", "actor", "subject", "reason"))
        r, added = await self._offload(
            self.engine.revocations.revoke_delegation,
            b.get("actor"),
            b.get("subject"),
            by=b.get("by"),
            reason=b.get("reason"),
        )
        return 200, {**revocation_dict(r), "new": added}, None

    # -- operations -------------------------------------------------------------------------
    async def _healthz(self, req: Request) -> Result:
        return 200, {"status": "ok"}, None

    async def _readyz(self, req: Request) -> Result:
        if not self.ready:
            return 503, error_body("not_ready", "shutting down"), None
        if not self.engine.audit_ready():
            return 503, error_body("audit_unavailable", "the audit log cannot be written"), None
        cluster = self.engine.cluster
        if cluster is not None and not cluster.connected:
            # decisions go on from local state; other processes' changes arrive at the store tick
            body = {"status": "degraded", "policy_revision": self.engine.policy_revision}
            return 200, {**body, "cluster": cluster.status()}, None
        return 200, {"status": "ready", "policy_revision": self.engine.policy_revision}, None

    async def _metrics(self, req: Request) -> Result:
        return 200, self.metrics.render(self.engine.status()).encode(), None

    async def _openapi_json(self, req: Request) -> Result:
        return 200, self._openapi, None
