"""The agent-facing half of the fast ``tools/call`` path: an ASGI layer in front of the SDK's
streamable HTTP session manager, inside its bearer authentication (the request's token is already
verified and its agent in ``scope["user"]``).

A POST is served here only when every check the SDK's path makes is known to pass, and passes the
same way: a session the SDK's manager holds, not terminated, owned by this request's credential
(else the SDK answers 404); the transport's DNS-rebinding / Host / Origin / Content-Type checks and
its Accept check (JSON responses); a handshake-era ``MCP-Protocol-Version`` (or none); a body within
the manager's size limit holding one well-formed JSON-RPC ``tools/call`` request (``jsonrpc``
"2.0", an integer or string id, a string name, object arguments) of a tool the gateway can forward
fast (:meth:`Gateway.fast_target`). Then the gateway decides it with the same function, audit and
error mapping as the SDK's handler (:meth:`Gateway.fast_tool_call`) and the JSON-RPC response goes
back with the agent's id. Anything else, malformed input included, goes to the SDK's app with the
body replayed, untouched: the SDK answers it as it always did.

The session's client name and version (``context.mcp``, ``user_agent``) are read from the
``initialize`` request that opened it and its negotiated protocol version from the SDK's answer
(the SDK's server keeps them where a request handler sees them, not by session id); a session
opened otherwise, whose ``initialize`` was not answered with a ``result``, or that sees another
``initialize``, is never served here. A request served here
holds the session's idle countdown as the SDK's transport does for its own requests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import anyio
import pydantic_core
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.streamable_http import check_accept_headers
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp_types import INTERNAL_ERROR
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.requests import Request

from vigil.mcp.gateway import Gateway
from vigil.mcp.identity import agent_of
from vigil.protocol import mcp as pm

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = logging.getLogger("vigil.mcp")
_REQUEST_KEYS: Final = frozenset({"jsonrpc", "id", "method", "params"})
_PARAM_KEYS: Final = frozenset({"name", "arguments", "_meta"})
_MODERN_META: Final = "io.modelcontextprotocol/protocolVersion"


class FastCalls:
    """ASGI: ``tools/call`` of an initialized session served by :meth:`Gateway.fast_tool_call`,
    everything else by ``app`` (the SDK manager's own ASGI app). ``enabled`` False (or an SDK
    whose session manager does not look as expected) passes everything to ``app``."""

    def __init__(
        self, app: App, manager: StreamableHTTPSessionManager, gateway: Gateway, *, enabled: bool = True
    ) -> None:
        self.app = app
        self.manager = manager
        self.gateway = gateway
        self.max_body = manager.max_request_body_size
        self.security = TransportSecurityMiddleware(manager.security_settings)
        # session id -> (client name, client version, negotiated protocol version)
        self.sessions: dict[str, tuple[str, str, str]] = {}
        self.enabled = (
            enabled
            and manager.json_response
            and not manager.stateless
            and type(getattr(manager, "_server_instances", None)) is dict
            and type(getattr(manager, "_session_owners", None)) is dict
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope.get("type") != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        sid = length = version = None
        for name, value in scope["headers"]:  # the first of each, as the SDK reads them
            if name == b"mcp-session-id" and sid is None:
                sid = value.decode("latin-1")
            elif name == b"content-length" and length is None:
                length = value
            elif name == b"mcp-protocol-version" and version is None:
                version = value.decode("latin-1")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self.app(scope, receive, send)
            return
        if sid is None:
            await self._opening(scope, receive, send)
            return
        client = self.sessions.get(sid)
        transport = self._transport(scope, sid) if client is not None else None
        if client is None or transport is None:
            await self.app(scope, receive, send)
            return
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            body, replay = await _read_body(receive, self.max_body)
            if body is not None and _initializes(body):
                self.sessions.pop(sid, None)  # (see below)
            await self.app(scope, replay, send)
            return
        request = Request(scope)
        content_type_ok = getattr(transport, "_check_content_type", None)
        if (
            await self.security.validate_request(request, is_post=True) is not None
            or not (check_accept_headers(request)[0])
            or not callable(content_type_ok)
            or not content_type_ok(request)
        ):
            await self.app(scope, receive, send)
            return
        body, replay = await _read_body(receive, self.max_body)
        call = _tools_call(body) if body is not None else None
        agent = agent_of(getattr(scope.get("user"), "access_token", None))
        if call is None or agent is None:
            if body is not None and _initializes(body):
                # a new initialize on the session may change what the SDK's server knows of
                # its client: such a session is not served here again
                self.sessions.pop(sid, None)
            await self.app(scope, replay, send)
            return
        rid, published, arguments = call
        peer = scope.get("client")
        caller = pm.Caller(
            agent.subject, sid, client[0], client[1], peer[0] if peer else None, agent.actors, agent.token
        )
        try:
            with _InFlight(transport):
                out = await self.gateway.fast_tool_call(caller, published, arguments, client[2])
        except Exception:  # a fault of ours: the SDK's answer to a handler that raised
            _log.exception("tools/call on the fast path failed")
            out = {"error": {"code": INTERNAL_ERROR, "message": "Internal server error"}}
        if out is None:
            await self.app(scope, replay, send)
            return
        answer = pydantic_core.to_json({"jsonrpc": "2.0", "id": rid, **out})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"mcp-session-id", sid.encode("latin-1")),
                    (b"content-length", b"%d" % len(answer)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    def _transport(self, scope: Scope, sid: str) -> Any:
        """The SDK's transport of session ``sid`` when this request may use it here (the session
        is live, not idle-expired, and owned by this request's credential); else None (and a
        session the manager no longer holds is forgotten)."""
        manager = self.manager
        transport = manager._server_instances.get(sid)
        if transport is None:
            self.sessions.pop(sid, None)
            return None
        user = scope.get("user")
        requestor = authorization_context(user) if isinstance(user, AuthenticatedUser) else None
        if requestor != manager._session_owners.get(sid):
            return None
        idle = getattr(transport, "idle_scope", None)
        if (
            transport.is_terminated
            or getattr(transport, "mcp_session_id", None) != sid
            or (idle is not None and idle.cancel_called)
            or type(getattr(transport, "_requests_in_flight", None)) is not int
        ):
            return None
        return transport

    async def _opening(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A POST without a session id (an ``initialize``, else the SDK refuses it): served by the
        SDK; when it opens a session with a ``result`` (a JSON answer of status 200 holding the
        negotiated protocol version), the client's name and version and that protocol version are
        kept for that session."""
        body, replay = await _read_body(receive, self.max_body)
        info = _client_info(body) if body is not None else None
        if info is None:
            await self.app(scope, replay, send)
            return
        opened: list[str] = []
        answer: list[bytes] = []

        async def watch(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.start" and message.get("status") == 200:
                opened.extend(
                    v.decode("latin-1")
                    for k, v in message.get("headers", ())
                    if k.lower() == b"mcp-session-id"
                )
            elif kind == "http.response.body" and opened:
                answer.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, watch)
        live = self.manager._server_instances
        version = _negotiated(b"".join(answer)) if len(opened) == 1 else None
        if version is not None and opened[0] in live:
            self.sessions[opened[0]] = (*info, version)
            if len(self.sessions) > 2 * len(live) + 64:  # forget the sessions the SDK ended
                self.sessions = {k: v for k, v in self.sessions.items() if k in live}


class _InFlight:
    """While a request is served here, the session's idle countdown is held as the SDK's
    transport holds it for its own requests (``StreamableHTTPServerTransport.handle_request``)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.idle: anyio.CancelScope | None = getattr(transport, "idle_scope", None)
        self.timeout: float | None = getattr(transport, "_idle_timeout", None)

    def __enter__(self) -> None:
        if self.idle is not None and self.timeout is not None:
            self.transport._requests_in_flight += 1
            self.idle.deadline = math.inf

    def __exit__(self, *exc: object) -> None:
        if self.idle is not None and self.timeout is not None:
            self.transport._requests_in_flight -= 1
            if not self.transport._requests_in_flight:
                self.idle.deadline = anyio.current_time() + self.timeout


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The whole request body (None when it is larger than ``limit`` or the client went away
    first) and a ``receive`` that gives the SDK's app the same messages again."""
    chunks: list[bytes] = []
    size = 0
    complete = False
    trailing: Message | None = None
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            trailing = message
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
        if not message.get("more_body", False):
            complete = True
            break
    body = b"".join(chunks)
    queue: list[Message] = [{"type": "http.request", "body": body, "more_body": not complete}]
    if trailing is not None:
        queue.append(trailing)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return (body if complete else None), replay


def _tools_call(body: bytes) -> tuple[int | str, str, dict[str, Any] | None] | None:
    """``(id, tool name, arguments)`` of a body holding exactly one well-formed JSON-RPC
    ``tools/call`` request; None for anything else (the SDK's path answers it)."""
    try:
        message = pydantic_core.from_json(body)
    except ValueError:
        return None
    if type(message) is not dict or message.keys() - _REQUEST_KEYS:
        return None
    rid = message.get("id")
    params = message.get("params")
    if (
        message.get("jsonrpc") != "2.0"
        or message.get("method") != "tools/call"
        or type(rid) not in (int, str)
        or type(params) is not dict
        or params.keys() - _PARAM_KEYS
    ):
        return None
    name, arguments = params.get("name"), params.get("arguments")
    meta = params.get("_meta", {})
    if type(name) is not str or (arguments is not None and type(arguments) is not dict):
        return None
    if type(meta) is not dict or _MODERN_META in meta:
        return None
    assert isinstance(rid, int | str)
    return rid, name, arguments


def _initializes(body: bytes) -> bool:
    """Whether ``body`` holds an ``initialize`` request (alone or in a batch); False for
    anything else, JSON or not."""
    try:
        message = pydantic_core.from_json(body)
    except ValueError:
        return False
    messages = message if type(message) is list else [message]
    return any(type(m) is dict and m.get("method") == "initialize" for m in messages)


def _negotiated(body: bytes) -> str | None:
    """The protocol version of a JSON answer to ``initialize`` holding a ``result``; None for
    anything else (an error, an SSE stream, not JSON, a version beyond the handshake era)."""
    try:
        message = pydantic_core.from_json(body)
    except ValueError:
        return None
    result = message.get("result") if type(message) is dict else None
    version = result.get("protocolVersion") if type(result) is dict else None
    return version if type(version) is str and version in HANDSHAKE_PROTOCOL_VERSIONS else None


def _client_info(body: bytes) -> tuple[str, str] | None:
    """The client's ``(name, version)`` of an ``initialize`` request body; None for anything else."""
    try:
        message = pydantic_core.from_json(body)
    except ValueError:
        return None
    if type(message) is not dict or message.get("method") != "initialize":
        return None
    params = message.get("params")
    info = params.get("clientInfo") if type(params) is dict else None
    if type(info) is not dict:
        return None
    name, version = info.get("name"), info.get("version")
    if type(name) is not str or type(version) is not str:
        return None
    return name, version
