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

import itertools
from dataclasses import dataclass
from typing import Any, Final

import httpx2
import pydantic_core
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from vigil.mcp.http1 import Http1Error, Pool, origin_of

_NOT_RUN: Final = frozenset({400, 404, 405, 406, 413, 415, 421})
"""Statuses a streamable HTTP server answers before it runs anything (bad request, unknown or
expired session, method, accept, size, media type, host): the call can be sent again."""


class NotForwarded(Exception):
    """Nothing reached the upstream's tool (no connection, or refused before it ran): the call may
    take the SDK's path instead. The link disables itself first."""


class Lost(Exception):
    """The call may have run upstream but its answer is lost or not one the SDK would accept.
    ``down``: the upstream is broken (the SDK's path marks it down for the same failures);
    otherwise only this link is (it disabled itself; e.g. the upstream answered an SSE stream)."""

    def __init__(self, message: str, *, down: bool) -> None:
        super().__init__(message)
        self.down = down


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
        self.enabled = True
        self._ids = itertools.count(1)

    def ready(self) -> bool:
        """Whether a call may take this link now."""
        seen = self.seen
        return self.enabled and seen.json and not seen.sse and _header_safe(seen.session_id)

    async def call(self, name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
        """The upstream's JSON-RPC response to ``tools/call`` of ``name`` (a dict holding a
        ``result`` with a ``content`` list, or an ``error`` with an integer ``code`` and a string
        ``message``). Raises :class:`NotForwarded` or :class:`Lost`; never anything else."""
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
        headers = [
            (b"Accept", b"application/json, text/event-stream"),
            (b"Content-Type", b"application/json"),
            (b"Mcp-Session-Id", str(self.seen.session_id).encode("ascii")),
            (b"Mcp-Protocol-Version", self.protocol_version.encode("ascii")),
        ]
        try:
            reply = await self.pool.post(headers, body)
        except Http1Error as e:
            if not e.sent:
                self.enabled = False
                raise NotForwarded(str(e)) from None
            raise Lost(str(e), down=True) from None
        if reply.status in _NOT_RUN:
            self.enabled = False
            raise NotForwarded(f"HTTP {reply.status}")
        kind = reply.headers.get("content-type", "").lower()
        if reply.status == 200 and kind.startswith("text/event-stream"):
            self.enabled = False
            raise Lost("the upstream answered an SSE stream", down=False)
        if (
            reply.status != 200
            or not kind.startswith("application/json")
            or "content-encoding" in reply.headers
        ):
            raise Lost(f"HTTP {reply.status} {kind[:40]!r}", down=True)
        return _response(reply.body, rid)

    def close(self) -> None:
        self.enabled = False
        self.pool.close()


def link_for(url: str, seen: Seen, protocol_version: str) -> Link | None:
    """The fast link to the upstream at ``url``, or None when it cannot be exact: not a plain
    ``http://`` URL, a protocol version beyond the handshake era, no session id, or an upstream
    that did not answer ``initialize`` with JSON."""
    origin = origin_of(url)
    if origin is None or protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    link = Link(Pool(origin), seen, protocol_version)
    return link if link.ready() else None


def _response(body: bytes, rid: str) -> dict[str, Any]:
    """The JSON-RPC response in ``body`` to request ``rid``; raises :class:`Lost` (down) for
    anything else (what the SDK's client would fail to read)."""
    try:
        message = pydantic_core.from_json(body)
    except ValueError as e:
        raise Lost(f"not JSON: {e}", down=True) from None
    if type(message) is not dict or message.get("jsonrpc") != "2.0" or message.get("id") != rid:
        raise Lost("not the JSON-RPC response to the call", down=True)
    result, error = message.get("result"), message.get("error")
    if ("result" in message) == ("error" in message):
        raise Lost("a JSON-RPC response needs one of result and error", down=True)
    if result is not None and (type(result) is not dict or type(result.get("content")) is not list):
        raise Lost("the result is not a tool result", down=True)
    if error is not None and (
        type(error) is not dict or type(error.get("code")) is not int or type(error.get("message")) is not str
    ):
        raise Lost("the error is not a JSON-RPC error", down=True)
    if result is None and error is None:
        raise Lost("a null result", down=True)
    return message


def _header_safe(value: str | None) -> bool:
    """A session id as the spec allows it (visible ASCII, 0x21-0x7E): safe in a header line."""
    return bool(value) and len(str(value)) <= 256 and all("!" <= c <= "~" for c in str(value))
