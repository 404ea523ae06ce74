"""Audit sinks. ``emit`` is on the hot path: it only appends to a bounded buffer; a writer thread
serializes and writes batches. A full buffer counts a drop (``dropped``) and ``emit`` returns False,
so an engine with ``required`` audit can deny instead."""

from __future__ import annotations

import atexit
import collections
import json
import os
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from vigil.audit.events import decision_event, encode_event
from vigil.model.decision import DecisionRecord


class AuditSink(Protocol):
    """Where decision records go. ``emit`` never blocks and never raises; False means not accepted."""

    def emit(self, record: DecisionRecord) -> bool: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...

    @property
    def dropped(self) -> int: ...


class NullSink:
    """Audit turned off explicitly (``[audit] sink = "none"``)."""

    dropped = 0

    def emit(self, record: DecisionRecord) -> bool:
        return True

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class MemorySink:
    """Keeps events in memory (tests, embedding)."""

    def __init__(self, mask: Sequence[str] = ()) -> None:
        self.records: list[DecisionRecord] = []
        self.mask = tuple(mask)
        self.dropped = 0

    def emit(self, record: DecisionRecord) -> bool:
        self.records.append(record)
        return True

    def events(self) -> list[dict[str, Any]]:
        return [decision_event(r, self.mask) for r in self.records]

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class JsonlSink:
    """JSON lines on disk, written in batches by a daemon thread; flushed at close and at exit."""

    def __init__(
        self,
        path: str | Path,
        *,
        capacity: int = 100_000,
        mask: Sequence[str] = (),
        flush_interval_s: float = 0.2,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - owned for the sink's lifetime
        self._buffer: collections.deque[DecisionRecord] = collections.deque()
        self._capacity = capacity
        self._mask = tuple(mask)
        self._interval = flush_interval_s
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self.dropped = 0
        self.written = 0
        self.write_errors = 0
        self._thread = threading.Thread(target=self._run, name="vigil-audit-writer", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)

    def emit(self, record: DecisionRecord) -> bool:
        if self._closed or len(self._buffer) >= self._capacity:
            self.dropped += 1
            return False
        self._buffer.append(record)
        return True

    def _drain(self) -> None:
        with self._lock:
            buf = self._buffer
            if not buf:
                return
            lines = []
            popleft = buf.popleft
            mask = self._mask
            while buf:
                lines.append(_encode_safely(popleft(), mask))
            data = b"\n".join(lines) + b"\n"
            try:
                self._file.write(data)
                self._file.flush()
                self.written += len(lines)
            except (OSError, ValueError):
                self.write_errors += 1
                self.dropped += len(lines)

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # the writer must outlive any one bad batch
                self.write_errors += 1

    def flush(self) -> None:
        """Write everything buffered so far, and fsync."""
        self._drain()
        with self._lock:
            try:
                os.fsync(self._file.fileno())
            except (OSError, ValueError):
                self.write_errors += 1

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self._drain()
        with self._lock:
            self._file.close()


def _encode_safely(record: DecisionRecord, mask: Sequence[str]) -> bytes:
    """The event line; never raises. orjson refuses text JSON cannot carry (lone surrogates):
    then the stdlib encoder writes it escaped, so the event is still recorded."""
    try:
        return encode_event(record, mask)
    except (TypeError, ValueError):
        event = decision_event(record, mask)
        return json.dumps(event, ensure_ascii=True, default=str).encode("ascii")


def _close_at_exit(ref: weakref.ref[JsonlSink]) -> None:
    sink = ref()
    if sink is not None:
        sink.close()
