"""The gateway's two transports: streamable HTTP (an ASGI app with bearer authentication and the
OAuth protected-resource metadata, RFC 9728) and stdio (one local client, one agent)."""

from __future__ import annotations

import signal
import sys
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.settings import AuthSettings
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from vigil.mcp.fastpath import FastCalls
from vigil.mcp.gateway import Gateway
from vigil.mcp.identity import REFUSAL, Verifier, fingerprint_key
from vigil.store import state_dir

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def http_app(
    gateway: Gateway,
    *,
    resource_url: str,
    authorization_server: str | None = None,
    host: str = "127.0.0.1",
    allowed_hosts: list[str] | None = None,
    fast_calls: bool = True,
) -> Starlette:
    """The ASGI app: ``/mcp`` (bearer tokens checked by ``gateway.authenticate``; none or a bad
    one -> 401 with ``WWW-Authenticate: Bearer resource_metadata=...``), the RFC 9728 metadata at
    ``/.well-known/oauth-protected-resource`` and at the path-suffixed form (RFC 9728 §3.1),
    naming ``authorization_server`` (default: the workspace's own token service, the issuer of
    ``gateway.engine.tokens``, whose RFC 8414 metadata ``vigil serve`` publishes). Upstreams are
    connected for the app's lifespan. ``fast_calls``: serve ``tools/call`` of an initialized session
    on the fast path (:mod:`vigil.mcp.fastpath`) where it is exact; False: the SDK's path only."""
    authorization_server = authorization_server or gateway.engine.tokens.issuer
    server = gateway.server()
    server.middleware = []  # the SDK's default OpenTelemetry span per message: not on this path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK's note on validate_token_resource (our verifier checks)
        auth = AuthSettings(
            issuer_url=AnyHttpUrl(authorization_server),
            resource_server_url=AnyHttpUrl(resource_url),
            validate_token_resource=False,
        )
    metadata = ProtectedResourceMetadata(
        resource=AnyHttpUrl(resource_url), authorization_servers=[AnyHttpUrl(authorization_server)]
    )
    security = None
    if allowed_hosts is not None:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=allowed_hosts,
            allowed_origins=[f"http://{h}" for h in allowed_hosts],
        )
    inner = server.streamable_http_app(
        host=host,
        auth=auth,
        token_verifier=Verifier(gateway.authenticate, fingerprint_key(_state_dir(gateway))),
        transport_security=security,
        json_response=True,  # one JSON body per call: no SSE stream to open and close per request
        custom_starlette_routes=[
            Route(WELL_KNOWN, endpoint=ProtectedResourceMetadataHandler(metadata).handle, methods=["GET"])
        ],
    )

    # inside the SDK's bearer authentication, in front of its session manager (whose route calls
    # manager.asgi_app per request; typed as the SDK's body-limit middleware it wraps)
    manager = server.session_manager
    manager.asgi_app = FastCalls(  # type: ignore[assignment]
        manager.asgi_app, manager, gateway, enabled=fast_calls
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with gateway.connected(), server.session_manager.run():
            yield

    return Starlette(routes=[Mount("/", app=_AuditRefusals(inner, gateway))], lifespan=lifespan)


def _state_dir(gateway: Gateway) -> Path:
    """The gateway's workspace's state directory (where its secrets are kept)."""
    ws = gateway.engine.workspace
    return state_dir(ws.settings.store, Path(ws.path))


class _AuditRefusals:
    """ASGI wrapper: every request the bearer middleware refuses (401: no token, or one that did
    not verify) is an ``authentication_refused`` event in the audit log, with the peer, the path,
    why (``no_token`` or the token error's code) and the refused token's keyed fingerprint
    (:func:`vigil.mcp.identity.token_fingerprint`), never the token. The 401 itself is the SDK's (with the RFC 9728 pointer); nothing else changes."""

    def __init__(self, app: Any, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        holder: dict[str, str] = {}
        mark = REFUSAL.set(holder)

        async def watch(message: Any) -> None:
            if message.get("type") == "http.response.start" and message.get("status") == 401:
                self._audit(scope, holder)
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            REFUSAL.reset(mark)

    def _audit(self, scope: Any, holder: dict[str, str]) -> None:
        client = scope.get("client")
        details: dict[str, Any] = {
            "peer": client[0] if client else None,
            "method": scope.get("method"),
            "path": str(scope.get("path"))[:256],
            "reason": holder.get("reason", "no_token"),
        }
        if "token" in holder:
            details["token"] = holder["token"]
        self.gateway.engine.audit_operator("authentication_refused", "vigil.mcp", **details)


async def run_stdio(gateway: Gateway) -> None:
    """Serve one client on this process's stdin/stdout (the agent is ``gateway.stdio_agent``)."""
    server = gateway.server()
    async with gateway.connected(), stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def serve_http(app: Any, host: str, port: int) -> None:
    """Run ``app`` with uvicorn (httptools, uvloop where it exists) until interrupted; returns
    after a graceful shutdown, or raises SystemExit (128 + the signal) after one on SIGTERM.

    uvicorn catches SIGTERM, shuts down, restores the handler it found and raises the signal
    again: with the default handler the process would die right there, before the caller's
    ``finally`` flushed the audit log (the last flush interval's events were lost). The handler
    it finds here raises SystemExit instead, so the caller's cleanup runs."""
    import uvicorn

    loop = "uvloop" if sys.platform != "win32" else "asyncio"
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(
            app, host=host, port=port, log_level="warning", lifespan="on", loop=loop, http="httptools"
        )
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_stdio_blocking(gateway: Gateway) -> None:
    anyio.run(run_stdio, gateway)
