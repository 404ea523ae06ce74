"""The fast forward of ``tools/call`` to a streamable HTTP upstream: the JSON-RPC request posted on
the session the SDK's client opened (its ``Mcp-Session-Id`` and negotiated ``MCP-Protocol-Version``),
over a keep-alive connection of :mod:`vigil.mcp.http1`, and the upstream's JSON answer passed
through. The SDK's client still opens, lists and closes the session; this only skips its memory
streams, its httpx stack and its pydantic models on the hot call.

A :class:`Link` is used only while it is known to be exact: the upstream is plain ``http://``, the
SDK's client negotiated a handshake-era protocol version and got a session id, and the upstream
answered the SDK's POSTs with JSON, never an SSE stream (:class:`Seen` watches every response of
the SDK's client, the ``initialize`` answer being the probe). Everything else is the SDK's path.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Any

import httpx2
import mcp_types as types
import pydantic_core
from mcp.client.session import _clamp_inbound_ttl, _later_revision_fields
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    JSONRPCError,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from mcp_types import methods as _methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError

from vigil.mcp.http1 import Http1Error, Pool, origin_of


class NotForwarded(Exception):
    """Nothing reached the upstream's tool (the connection could not be opened, or the upstream
    answered HTTP 404: its session is gone): the call may take the SDK's path instead."""


class Lost(Exception):
    """The call may have run upstream but its answer is lost or not one the fast path can read.
    ``down``: the connection to the upstream broke (the SDK's path marks it down for the same
    failure); otherwise only this call failed. ``unanswered``: the upstream sent no response to
    the call (the SDK's client would wait for one until its timeout)."""

    def __init__(self, message: str, *, down: bool, unanswered: bool = False) -> None:
        super().__init__(message)
        self.down = down
        self.unanswered = unanswered


@dataclass(slots=True)
class Seen:
    """What the SDK client's HTTP responses from one upstream showed (its ``response`` hook).
    ``json``: the first POST (``initialize``) was answered with JSON; ``sse``: some POST was
    answered with an event stream (the fast path is then off for good)."""

    session_id: str | None = None
    json: bool = False
    sse: bool = False
    posts: int = 0

    async def response(self, response: httpx2.Response) -> None:
        if response.request.method != "POST":
            return
        sid = response.headers.get("mcp-session-id")
        if sid:
            self.session_id = sid
        kind = response.headers.get("content-type", "").lower()
        if kind.startswith("text/event-stream"):
            self.sse = True
        elif self.posts == 0 and kind.startswith("application/json"):
            self.json = True
        self.posts += 1


class Link:
    """``tools/call`` posted straight onto an upstream session the SDK's client holds."""

    def __init__(self, pool: Pool, seen: Seen, protocol_version: str) -> None:
        self.pool = pool
        self.seen = seen
        self.protocol_version = protocol_version
        self.closed = False
        self.off_for: str | None = None
        """The upstream session the link was turned off for (it answered in a way only the SDK's
        client follows): a new session the SDK's client opens turns it on again."""
        self._ids = itertools.count(1)

    @property
    def enabled(self) -> bool:
        """Whether the link is on for the upstream session the SDK's client holds now."""
        return not self.closed and self.seen.session_id != self.off_for

    def ready(self) -> bool:
        """Whether a call may take this link now."""
        seen = self.seen
        return self.enabled and seen.json and not seen.sse and _header_safe(seen.session_id)

    async def call(self, name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
        """The upstream's answer to ``tools/call`` of ``name`` as the SDK's client reads it:
        ``{"result": dict}`` (the JSON-RPC result, not validated yet: :func:`client_result`) or
        ``{"error": dict}`` (the JSON-RPC error the SDK's client would raise, the upstream's own or
        the one the client makes of an HTTP error status or a body it cannot parse). Raises
        :class:`NotForwarded` (the call did not run: no connection, or HTTP 404) or :class:`Lost`;
        never anything else."""
        rid = f"vigil-{next(self._ids)}"
        params: dict[str, Any] = {"name": name}
        if arguments is not None:
            params["arguments"] = arguments
        try:
            body = pydantic_core.to_json(
                {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}
            )
        except (ValueError, TypeError) as e:  # (the arguments came from JSON: not expected)
            raise NotForwarded(f"cannot encode the call: {e}") from None
        sid = self.seen.session_id
        headers = [
            (b"Accept", b"application/json, text/event-stream"),
            (b"Content-Type", b"application/json"),
            (b"Mcp-Session-Id", str(sid).encode("ascii")),
            (b"Mcp-Protocol-Version", self.protocol_version.encode("ascii")),
        ]
        try:
            reply = await self.pool.post(headers, body)
        except Http1Error as e:
            if not e.sent:
                raise NotForwarded(str(e)) from None
            raise Lost(str(e), down=True) from None
        status = reply.status
        kind = reply.headers.get("content-type", "").lower()
        # in the order the SDK's client (mcp.client.streamable_http) reads a POST's response
        if status == 404:  # the session is gone; nothing ran: the SDK's client gets its own answer
            self.off_for = sid
            raise NotForwarded("HTTP 404")
        if status == 202:
            return {
                "error": {"code": INVALID_REQUEST, "message": "server answered a request with 202 Accepted"}
            }
        if 300 <= status < 400 and "location" in reply.headers:  # the SDK's client may follow it
            self.off_for = sid
            raise Lost(f"HTTP {status} (a redirect)", down=False)
        if status >= 400:
            return _status_error(reply.body, kind)
        if "content-encoding" in reply.headers:  # (none was asked for; httpx would decode it)
            raise Lost(f"a {reply.headers['content-encoding'][:40]!r} encoded body", down=False)
        if kind.startswith("application/json"):
            return _response(reply.body, rid)
        if kind.startswith("text/event-stream"):
            self.off_for = sid
            raise Lost("the upstream answered an SSE stream", down=False)
        return {"error": {"code": INVALID_REQUEST, "message": f"Unexpected content type: {kind}"}}

    def close(self) -> None:
        self.closed = True
        self.pool.close()


def link_for(url: str, seen: Seen, protocol_version: str) -> Link | None:
    """The fast link to the upstream at ``url``; None when it cannot be exact: not a plain
    ``http://`` URL this client can write (a non-ASCII path, a host IDNA cannot encode), a
    protocol version beyond the handshake era, no session id, or an upstream that did not answer
    ``initialize`` with JSON."""
    origin = origin_of(url)
    if origin is None or protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    try:
        link = Link(Pool(origin), seen, protocol_version)
    except ValueError:  # (UnicodeError: the request line or Host header cannot be written)
        return None
    return link if link.ready() else None


def client_result(result: Any, version: str) -> types.CallToolResult:
    """``result`` read as the SDK's client reads a ``tools/call`` result on a session of protocol
    ``version`` (``ClientSession.send_request``). Raises what it raises for a result it refuses
    (pydantic's ``ValidationError``, ``ValueError``, ``TypeError``)."""
    if type(result) is not dict:
        raise TypeError("the result is not an object")
    raw: dict[str, Any] = result
    _clamp_inbound_ttl(raw)
    with contextlib.suppress(KeyError):
        _methods.validate_server_result("tools/call", version, raw)
    if not (foreign := _later_revision_fields("tools/call", version)).isdisjoint(raw):
        raw = {key: value for key, value in raw.items() if key not in foreign}
    return types.CallToolResult.model_validate(raw, by_name=False)


def _status_error(body: bytes, kind: str) -> dict[str, Any]:
    """The JSON-RPC error the SDK's client makes of an HTTP error status (other than 404): the
    upstream's JSON-RPC error in the body, else an internal error."""
    if kind.startswith("application/json"):
        try:
            parsed = jsonrpc_message_adapter.validate_json(body, by_name=False)
        except ValidationError:
            parsed = None
        if isinstance(parsed, JSONRPCError):
            return {"error": parsed.error.model_dump(by_alias=True, mode="json", exclude_none=True)}
    return {"error": {"code": INTERNAL_ERROR, "message": "Server returned an error response"}}


def _response(body: bytes, rid: str) -> dict[str, Any]:
    """The JSON-RPC response in ``body`` to request ``rid`` as the SDK's client reads it
    (``{"result": ...}`` or ``{"error": ...}``; a body it cannot parse is its parse error);
    raises :class:`Lost` (unanswered) when the body is not a response to ``rid``."""
    try:
        message = jsonrpc_message_adapter.validate_json(body, by_name=False)
    except ValidationError as e:
        return {"error": {"code": PARSE_ERROR, "message": f"Failed to parse JSON response: {e}"}}
    if isinstance(message, JSONRPCResponse) and message.id == rid:
        return {"result": message.result}
    if isinstance(message, JSONRPCError) and message.id == rid:
        return {"error": message.error.model_dump(by_alias=True, mode="json", exclude_none=True)}
    raise Lost("not the JSON-RPC response to the call", down=False, unanswered=True)


def _header_safe(value: str | None) -> bool:
    """A session id as the spec allows it (visible ASCII, 0x21-0x7E): safe in a header line."""
    return bool(value) and len(str(value)) <= 256 and all("!" <= c <= "~" for c in str(value))
