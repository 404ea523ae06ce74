"""Structured JSON logs on stderr: one object a line, batched so logging stays off the hot path.

Access lines never hold a secret: no header values except ``X-Request-ID``, no bodies, no query
strings (an original request's query may carry tokens).
"""

from __future__ import annotations

import sys
import time
from typing import Any, BinaryIO, Final

import orjson

FLUSH_BYTES: Final = 64 * 1024


class JsonLog:
    """Buffered JSON-lines writer. :meth:`access` buffers; :meth:`event` writes at once."""

    def __init__(self, stream: BinaryIO | None = None, *, access: bool = True) -> None:
        self._stream = stream if stream is not None else sys.stderr.buffer
        self.access_enabled = access
        self._buf: list[bytes] = []
        self._size = 0

    def access(self, fields: dict[str, Any]) -> None:
        """Buffer one access line (flushed every 64 KiB, by :meth:`flush` or the server's timer)."""
        if not self.access_enabled:
            return
        fields["ts"] = time.time()
        line = orjson.dumps(fields)
        self._buf.append(line)
        self._size += len(line) + 1
        if self._size >= FLUSH_BYTES:
            self.flush()

    def event(self, level: str, msg: str, **fields: Any) -> None:
        """Write one operational line now (startup, shutdown, reloads, internal errors)."""
        self._buf.append(orjson.dumps({"ts": round(time.time(), 6), "level": level, "msg": msg, **fields}))
        self.flush()

    def flush(self) -> None:
        """Write every buffered line; a broken stream loses lines rather than failing requests."""
        if not self._buf:
            return
        data = b"\n".join(self._buf) + b"\n"
        self._buf.clear()
        self._size = 0
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError):
            pass
