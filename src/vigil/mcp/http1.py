"""A small HTTP/1.1 client for one ``http://`` origin: keep-alive connections on asyncio streams,
responses parsed by httptools. The gateway's fast ``tools/call`` forward (:mod:`vigil.mcp.passthrough`)
posts JSON-RPC with it; everything else towards an upstream goes through the SDK's client.

It does one thing: ``POST`` a body, read one whole response (``Content-Length`` or chunked; a
body delimited by the close is an error), keep the connection when both sides allow it. No redirects, no TLS, no compression
(it sends no ``Accept-Encoding``), no proxies: :func:`origin_of` returns None for a URL it cannot
serve exactly, and the caller takes the SDK's path instead.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import httptools

MAX_BODY: Final = 64 * 1024 * 1024
"""The largest response body read (a bigger one is an :class:`Http1Error`)."""
IDLE_REUSE_S: Final = 2.0
"""An idle connection older than this is closed rather than reused: servers close idle
connections (uvicorn after 5 s), and a request sent on one the server is closing is lost."""
MAX_IDLE: Final = 8
MAX_CONNECTIONS: Final = 100
"""Exchanges at once per origin (more wait for one to finish), as httpx's default pool allows."""


class Http1Error(Exception):
    """The exchange failed. ``sent``: whether any of the request may have reached the server
    (False only when the connection could not be opened)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass(slots=True)
class Reply:
    """One response: status, headers (names lower-cased; a repeated header keeps the last), body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return (
            not self.writer.is_closing() and not self.reader.at_eof() and now - self.idle_since < IDLE_REUSE_S
        )

    def close(self) -> None:
        self.writer.close()


@dataclass(slots=True)
class _Parsed:
    """httptools' callbacks land here."""

    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    done: bool = False
    too_big: bool = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY:
            self.too_big = True
        else:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


@dataclass(frozen=True, slots=True)
class Origin:
    """``host``, ``port`` and the request target (path and query) of an ``http://`` URL."""

    host: str
    port: int
    target: str

    @property
    def host_header(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (host if self.port == 80 else f"{host}:{self.port}").encode("idna")


def origin_of(url: str) -> Origin | None:
    """The origin of a plain ``http://`` URL; None for any other (https, user info, no host, a
    fragment): those are not served by this client."""
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError:
        return None
    if parts.scheme != "http" or not parts.hostname or parts.username or parts.password or parts.fragment:
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in target for c in " \r\n"):
        return None
    return Origin(parts.hostname, port, target)


class Pool:
    """Keep-alive connections to one origin. :meth:`post` is safe to call concurrently (each
    exchange has a connection of its own, at most :data:`MAX_CONNECTIONS` at once); :meth:`close`
    closes the idle ones."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._closed = False
        self._head = b"POST " + origin.target.encode("ascii") + b" HTTP/1.1\r\nHost: " + origin.host_header

    async def post(self, headers: list[tuple[bytes, bytes]], body: bytes) -> Reply:
        """The server's response to a POST of ``body`` with ``headers`` (name, value: no CR/LF in
        them; Content-Length is added). Raises :class:`Http1Error` when the connection cannot be
        opened (``sent`` False), or breaks, or the response is not HTTP/1.1 (``sent`` True)."""
        async with self._slots:
            return await self._post(headers, body)

    async def _post(self, headers: list[tuple[bytes, bytes]], body: bytes) -> Reply:
        conn = await self._connection()
        lines = [self._head]
        lines.extend(b"\r\n" + name + b": " + value for name, value in headers)
        lines.append(b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        lines.append(body)
        kept = False
        try:
            conn.writer.write(b"".join(lines))
            reply, keep = await _read_reply(conn.reader)
            if keep and not self._closed:
                conn.idle_since = time.monotonic()
                if len(self._idle) < MAX_IDLE:
                    self._idle.append(conn)
                    kept = True
            return reply
        except (OSError, httptools.HttpParserError) as e:
            raise Http1Error(f"{type(e).__name__}: {e}", sent=True) from None
        finally:  # a cancelled or failed exchange leaves the connection in an unknown state
            if not kept:
                conn.close()

    async def _connection(self) -> _Conn:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(now):
                return conn
            conn.close()
        try:
            reader, writer = await asyncio.open_connection(self.origin.host, self.origin.port)
        except OSError as e:
            raise Http1Error(f"cannot connect: {e}", sent=False) from None
        return _Conn(reader, writer)

    def close(self) -> None:
        self._closed = True  # (an exchange under way closes its connection when it ends)
        for conn in self._idle:
            conn.close()
        self._idle.clear()


async def _read_reply(reader: asyncio.StreamReader) -> tuple[Reply, bool]:
    """One whole response from ``reader`` and whether the connection may be reused."""
    parsed = _Parsed()
    parser = httptools.HttpResponseParser(parsed)
    while not parsed.done:
        data = await reader.read(65536)
        if not data:  # (a body delimited by the close is not read: uvicorn and others send lengths)
            raise OSError("the connection closed before the response was complete")
        parser.feed_data(data)
        if parsed.too_big:
            raise OSError(f"the response body is larger than {MAX_BODY} bytes")
    # (httptools' should_keep_alive() is only meaningful before the message completes)
    keep = (
        parser.get_http_version() == "1.1"
        and "close" not in parsed.headers.get("connection", "").lower()
        and not reader.at_eof()
    )
    return Reply(parser.get_status_code(), parsed.headers, b"".join(parsed.chunks)), keep
