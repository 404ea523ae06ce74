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

MAX_HEAD: Final = 100 * 1024
"""The most bytes read before a response's headers end (httpcore's limit; more is an
:class:`Http1Error`). The body is read whole, however large, as the SDK's client reads it."""
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
        """Open, recently used, and nothing unread arrived on it since its last response."""
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and not getattr(self.reader, "_buffer", b"")
            and now - self.idle_since < IDLE_REUSE_S
        )

    def close(self) -> None:
        self.writer.close()


@dataclass(slots=True)
class _Parsed:
    """httptools' callbacks land here."""

    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    head: bool = False
    done: bool = False
    extra: bool = False
    """Bytes followed the response (another message began): the connection is not reused."""
    status: int = 0
    parser: httptools.HttpResponseParser | None = None

    def on_message_begin(self) -> None:
        if self.done:
            self.extra = True
        else:  # (after an interim 1xx response: the final one starts afresh)
            self.headers.clear()
            self.chunks.clear()
            self.head = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.done:
            self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.head = True

    def on_body(self, body: bytes) -> None:
        if not self.done:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.done or self.parser is None:
            return
        status = self.parser.get_status_code()
        if not 100 <= status < 200:  # an interim response (100 Continue) is skipped, as httpx does
            self.status = status
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
        opened (``sent`` False), or breaks, or the response is not HTTP/1.x (``sent`` True);
        never anything else."""
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
        except (OSError, httptools.HttpParserError, httptools.HttpParserUpgrade) as e:
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
    """One whole response from ``reader`` (the first final one: an interim 1xx is skipped) and
    whether the connection may be reused (not when anything followed the response). Raises
    ``OSError`` (closed early, headers too long), ``httptools.HttpParserError`` (not HTTP/1.x) or
    ``httptools.HttpParserUpgrade`` (a protocol switch)."""
    parsed = _Parsed()
    parser = httptools.HttpResponseParser(parsed)
    parsed.parser = parser
    fed = 0
    while not parsed.done:
        data = await reader.read(65536)
        if not data:  # (a body delimited by the close is not read: uvicorn and others send lengths)
            raise OSError("the connection closed before the response was complete")
        fed += len(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserError:
            if not parsed.done:
                raise
            parsed.extra = True  # (garbage after the response)
        if not parsed.head and fed > MAX_HEAD:
            raise OSError(f"the response headers are longer than {MAX_HEAD} bytes")
    # (httptools' should_keep_alive() is only meaningful before the message completes)
    keep = (
        parser.get_http_version() == "1.1"
        and not parsed.extra
        and "close" not in parsed.headers.get("connection", "").lower()
        and not reader.at_eof()
    )
    return Reply(parsed.status, parsed.headers, b"".join(parsed.chunks)), keep
