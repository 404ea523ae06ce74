"""Audit sinks. ``emit`` is on the hot path: it appends to a bounded buffer and, once per small
batch, encodes it; a writer thread writes the bytes. A full buffer counts a drop (``dropped``) and
``emit`` returns False, so an engine with ``required`` audit can deny instead."""

from __future__ import annotations

import atexit
import collections
import errno
import itertools
import os
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from vigil.audit.events import decision_event, event_lines
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
    """JSON lines on disk: each event encoded as it is emitted, handed to a daemon thread in
    chunks, written by it; flushed at close and at exit.

    Where the work happens was decided by measurement (docs/benchmarks.md, "Audit"): the thread
    that decides encodes the event at once (the C ``LineBuffer``: ~0.2-0.5 µs, while the record is
    still in the CPU's caches; records kept for a batch slowed every decision, their memory not
    reused while they waited, and encoding them later missed cache). Every ``batch`` events
    (``[audit] batch``) the lines become one chunk for the writer thread, which only writes bytes:
    one ``os.writev`` per wake-up, so it takes the GIL from the deciding thread rarely (a writer
    that encodes, or writes chunk by chunk, competes for the GIL on every step). It writes every
    ``flush_interval_s``, and sooner when half of ``capacity`` waits for it. Without the compiled
    writer (pure Python) or with masking, records wait in the buffer and each chunk is encoded
    with orjson when it is taken.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        capacity: int = 100_000,
        mask: Sequence[str] = (),
        flush_interval_s: float = 0.2,
        batch: int = 32,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a bare descriptor: chunks go out with os.writev, no Python-level buffering in between
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666
        )
        self._lines = event_lines(mask)
        self._encoded: collections.deque[tuple[bytes, int]] = collections.deque()
        # Records accepted minus records settled (written or lost) = pending. Each side has a
        # single writer (next() on a C counter is atomic; _settled moves under _write_lock), so
        # concurrent emitters can make the figure lag by a record but never drift.
        self._accepted = itertools.count(1)
        self._accepted_n = 0
        self._settled = 0
        self._capacity = capacity
        self._half = max(1, capacity // 2)
        self._batch = max(1, batch)
        self._interval = flush_interval_s
        self._wake = threading.Event()
        self._encode_lock = threading.Lock()  # keeps chunks in the order their lines came
        self._write_lock = threading.Lock()
        self._closed = False
        self.dropped = 0
        self.written = 0
        self.write_errors = 0
        self._thread = threading.Thread(target=self._run, name="vigil-audit-writer", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)

    def emit(self, record: DecisionRecord) -> bool:
        if self._closed or self._accepted_n - self._settled >= self._capacity:
            self.dropped += 1
            return False
        lines = self._lines
        lines.add(record)
        self._accepted_n = next(self._accepted)
        if len(lines) >= self._batch:
            self._seal(blocking=False)
        return True

    def _seal(self, *, blocking: bool) -> None:
        """Hand the lines so far to the writer as one chunk. Non-blocking callers (the deciding
        thread) skip when another thread is sealing: it takes these lines too."""
        if not self._encode_lock.acquire(blocking):
            return
        try:
            chunk, n = self._lines.take()
            if n:
                self._encoded.append((chunk, n))
        finally:
            self._encode_lock.release()
        if self._accepted_n - self._settled >= self._half:
            # half the buffer waits for the writer: wake it now rather than at its next tick, so
            # a long flush interval under heavy load never fills the buffer (and drops events)
            self._wake.set()

    def _drain(self) -> None:
        """Seal what is left and write every chunk, in order."""
        self._seal(blocking=True)
        with self._write_lock:
            chunks = self._encoded
            if not chunks:
                return
            parts = []
            count = 0
            while chunks:
                data, n = chunks.popleft()
                parts.append(data)
                count += n
            self._settled += count
            try:
                _write_all(self._fd, parts)
                self.written += count
            except (OSError, TypeError):  # TypeError: the descriptor is closed (None)
                self.write_errors += 1
                self.dropped += count

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
        with self._write_lock:
            try:
                os.fsync(self._fd)  # type: ignore[arg-type]
            except (OSError, TypeError):
                self.write_errors += 1

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self._drain()
        with self._write_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _write_all(fd: int | None, parts: list[bytes]) -> None:
    """Write ``parts`` to ``fd`` in order, in as few system calls as the kernel allows (os.writev
    of up to ``IOV_MAX`` parts, resumed after a short write). Raises OSError (TypeError when
    ``fd`` is None).

    Few calls matter more than the copies they save: the writer thread releases the GIL for each
    call and must take it back after, and taking it back from a busy deciding thread costs that
    thread a forced switch (up to ``sys.getswitchinterval()`` of waiting, then 0.1-0.5 ms stalls
    measured on this project's VMs). ``writelines`` on a buffered file made one call per chunk."""
    pending: list[bytes | memoryview] = list(parts)
    while pending:
        batch = pending[:_IOV_MAX]
        done = os.writev(fd, batch)  # type: ignore[arg-type]
        if done == 0 and any(len(p) for p in batch):
            raise OSError(errno.EIO, "audit file accepted no bytes")
        taken = 0
        for part in batch:
            if done < len(part):
                break
            done -= len(part)
            taken += 1
        del pending[:taken]
        if done:  # the first part left was written in part
            pending[0] = memoryview(pending[0])[done:]


_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16


def _close_at_exit(ref: weakref.ref[JsonlSink]) -> None:
    sink = ref()
    if sink is not None:
        sink.close()
