"""Audit sinks. ``emit`` is on the hot path: it encodes the event line into a bounded buffer; a
writer thread chains, writes (and in ``sync`` durability fsyncs) the lines. A full buffer, a
failing disk or a closed sink counts a drop (``dropped``) and ``emit`` returns False, so an engine
with ``required`` audit denies instead; a sink whose writes fail is not ``healthy`` until a write
succeeds again."""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from vigil.audit import logfile
from vigil.audit.events import EVENT_VERSION, decision_event, event_lines, rfc3339
from vigil.audit.keys import load_or_create_key
from vigil.model.decision import DecisionRecord

log = logging.getLogger("vigil.audit")


class AuditSink(Protocol):
    """Where decision records go. ``emit`` never raises; False means not recorded (it blocks only
    in ``sync`` durability, until the event is on disk or a timeout). Sinks may also have
    ``emit_event(dict) -> bool`` (operator events; False while the sink cannot write, too),
    ``healthy``, ``write_errors`` and ``alarms``."""

    def emit(self, record: DecisionRecord) -> bool: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...

    @property
    def dropped(self) -> int: ...


class NullSink:
    """Audit turned off explicitly (``[audit] sink = "none"``)."""

    dropped = 0
    healthy = True
    write_errors = 0

    def emit(self, record: DecisionRecord) -> bool:
        return True

    def emit_event(self, event: dict[str, Any]) -> bool:
        return True

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class MemorySink:
    """Keeps events in memory (tests, embedding)."""

    def __init__(self, mask: Sequence[str] = ()) -> None:
        self.records: list[DecisionRecord] = []
        self.operator_events: list[dict[str, Any]] = []
        self.mask = tuple(mask)
        self.dropped = 0
        self.healthy = True
        self.write_errors = 0

    def emit(self, record: DecisionRecord) -> bool:
        self.records.append(record)
        return True

    def emit_event(self, event: dict[str, Any]) -> bool:
        self.operator_events.append(event)
        return True

    def events(self) -> list[dict[str, Any]]:
        return [decision_event(r, self.mask) for r in self.records]

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class JsonlSink:
    """JSON lines on disk: each event encoded as it is emitted, handed to a daemon thread in
    chunks, chained and written by it (:class:`~vigil.audit.logfile.AuditFile`); flushed at close
    and at exit.

    Where the work happens was decided by measurement (docs/benchmarks.md, "Audit"): the thread
    that decides encodes the event at once (the C ``LineBuffer``: ~0.2-0.5 µs, while the record is
    still in the CPU's caches). Every ``batch`` events (``[audit] batch``) the lines become one
    chunk for the writer thread, which hashes (the chain), writes and, in ``sync`` durability,
    fsyncs: one write per wake-up. It writes every ``flush_interval_s``, and sooner when half of
    ``capacity`` waits for it. Without the compiled writer (pure Python) or with masking, records
    wait in the buffer and each chunk is encoded with orjson when it is taken.

    Durability: ``"batched"`` returns from ``emit`` at once (a crash loses what waits: up to about
    one flush interval of events); ``"sync"`` returns only when the event is on disk (fsync; the
    writer's one fsync covers every decision waiting for it, a group commit), or False after
    ``sync_timeout_s``.

    Failures: a failed write (a full disk, an unwritable file, a closed descriptor) is logged once
    with its cause, counted in ``write_errors`` and makes the sink not ``healthy``: in ``batched``
    durability ``emit`` then refuses (returns False, counts a drop) while the writer retries the
    lines it could not write every flush interval; in ``sync`` durability the lines that failed
    are dropped (their decisions were denied) and each later decision tries again. The first write
    that succeeds writes an ``audit_recovered`` event (the cause, the drops so far) and makes the
    sink healthy again.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        capacity: int = 100_000,
        mask: Sequence[str] = (),
        flush_interval_s: float = 0.2,
        batch: int = 32,
        durability: str = "batched",
        sync_timeout_s: float = 2.0,
        chain: bool = True,
        signing_key: str | Path | None = None,
        checkpoint_events: int = 1_000,
        checkpoint_interval_s: float = 60.0,
        rotate_bytes: int = 0,
        max_context_bytes: int = 16_384,
        close_timeout_s: float = 5.0,
        mark: bytes = b"",
    ) -> None:
        """Open (or create, mode 0600) the log at ``path`` and start the writer thread; ``mark``
        (JSON members such as ``b',"replay":true'``) is added to every line it writes. Raises
        OSError when the file cannot be opened, :class:`~vigil.audit.keys.AuditKeyError` when
        the signing key cannot be read or created, ValueError for an unknown durability."""
        if durability not in ("batched", "sync"):
            raise ValueError(f"unknown audit durability {durability!r}")
        self.path = Path(path)
        key = None
        if chain and signing_key is not None:
            key = load_or_create_key(Path(signing_key))
        self.file = logfile.AuditFile(
            self.path,
            chain=chain,
            signing_key=key,
            checkpoint_events=checkpoint_events,
            checkpoint_interval_s=checkpoint_interval_s,
            rotate_bytes=rotate_bytes,
            max_context_bytes=max_context_bytes,
            mark=mark,
        )
        self._lines = event_lines(mask)
        self._encoded: collections.deque[tuple[bytes, int, int]] = collections.deque()
        self._retry: list[tuple[bytes, int, int]] = []
        # Ordinals: line k is the k-th added to _lines (add returns it); _taken is the ordinal of
        # the last line sealed into a chunk, _durable of the last one written (fsynced in sync),
        # _lost of the last one dropped after a failed write (sync). Accepted minus settled =
        # pending, bounded by the capacity.
        self._accepted_n = 0
        self._settled = 0
        self._taken = 0
        self._durable = 0
        self._lost = 0
        self._capacity = capacity
        self._half = max(1, capacity // 2)
        self._batch = max(1, batch)
        self._interval = flush_interval_s
        self._sync = durability == "sync"
        self._sync_timeout = sync_timeout_s
        self._close_timeout = close_timeout_s
        self._wake = threading.Event()
        self._done = threading.Event()
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()  # keeps chunks in the order their lines came
        self._write_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._closed = False
        self._healthy = True
        self._cause = ""
        self._failed_at = 0.0
        self.dropped = 0
        self.written = 0
        self.write_errors = 0
        self.sync_timeouts = 0
        self._thread = threading.Thread(target=self._run, name="vigil-audit-writer", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)

    @property
    def healthy(self) -> bool:
        """False from a failed write until a write succeeds again."""
        return self._healthy

    @property
    def alarms(self) -> int:
        """1 once the log was found changed otherwise than by its writers' appends (the file
        refuses it from then on: every write fails), else 0."""
        return int(self.file.alarms)

    @property
    def durability(self) -> str:
        return "sync" if self._sync else "batched"

    def emit(self, record: DecisionRecord) -> bool:
        """Buffer ``record``'s event. Returns False (and counts a drop) when the sink is closed,
        full, or (batched) not healthy; in sync durability also when the event could not be made
        durable within the timeout. Never raises."""
        if self._refuses():
            return False
        return self._accepted(self._lines.add(record))

    def emit_event(self, event: dict[str, Any]) -> bool:
        """Write an operator event (``type``, ``by``, details) through the same buffer, writer and
        chain as decisions; ``v`` and ``time`` (now) are added when missing. Returns what
        :meth:`emit` returns: False (counted as a drop) also while the sink is not healthy, so an
        operator action is never taken as recorded by a log that cannot be written. Never raises
        (a value JSON cannot carry is written as its text)."""
        full = {"v": EVENT_VERSION, "type": "event", "time": rfc3339(time.time())}
        full.update(event)
        try:
            line = orjson.dumps(full, default=str)
        except (TypeError, ValueError):
            line = orjson.dumps({k: str(v) for k, v in full.items()})
        if self._refuses():
            return False
        return self._accepted(self._lines.add(line))

    def _refuses(self) -> bool:
        """True (a drop counted) when no line can be taken now: the sink is closed, full, or
        (batched) not healthy; sync durability tries every line (each waits for its write)."""
        if (
            self._closed
            or (not self._healthy and not self._sync)
            or self._accepted_n - self._settled >= self._capacity
        ):
            self._drop(1)
            return True
        return False

    def _accepted(self, k: int) -> bool:
        """Line ``k`` is in the buffer: hand it on (a chunk every ``batch`` lines), or in sync
        durability wait for its write. Returns what :meth:`emit` returns."""
        self._accepted_n = k
        if self._closed:  # close() began while this line was added: was it in the final chunk?
            return self._late(k)
        if self._sync:
            return self._wait(k)
        if len(self._lines) >= self._batch:
            self._seal(blocking=False)
        return True

    def _drop(self, n: int) -> None:
        with self._count_lock:
            self.dropped += n

    def _late(self, k: int) -> bool:
        """A line added while the sink closed: True when the final write wrote it; otherwise
        False, counted as dropped (unless the writer counted it)."""
        self._done.wait(self._close_timeout)
        if k <= self._durable:
            return True
        if k > self._taken or not self._done.is_set():
            self._drop(1)
        return False

    def _wait(self, k: int) -> bool:
        """Sync durability: wait until line ``k`` is on disk (True) or was dropped or the timeout
        passed (False)."""
        self._wake.set()
        deadline = time.monotonic() + self._sync_timeout
        with self._cond:
            while self._durable < k:
                if self._lost >= k:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.sync_timeouts += 1
                    return False
                self._cond.wait(remaining)
        return True

    def _seal(self, *, blocking: bool) -> None:
        """Hand the lines so far to the writer as one chunk. Non-blocking callers (the deciding
        thread) skip when another thread is sealing: it takes these lines too."""
        if not self._encode_lock.acquire(blocking):
            return
        try:
            chunk, n = self._lines.take()
            if n:
                self._taken += n
                self._encoded.append((chunk, n, self._taken))
        finally:
            self._encode_lock.release()
        if self._accepted_n - self._settled >= self._half:
            # half the buffer waits for the writer: wake it now rather than at its next tick, so
            # a long flush interval under heavy load never fills the buffer (and drops events)
            self._wake.set()

    def _drain(self, *, final: bool = False) -> None:
        """Seal what is left and write every chunk, in order (the writer thread, flush, close)."""
        self._seal(blocking=True)
        with self._write_lock:
            chunks = self._retry
            self._retry = []
            while self._encoded:
                chunks.append(self._encoded.popleft())
            parts = [c[0] for c in chunks]
            count = sum(c[1] for c in chunks)
            if not self._healthy:
                parts.append(self._recovered_line())
            try:
                self.file.write(parts, sync=self._sync, final=final)
            except OSError as e:
                self._failed(e, chunks, count, final)
                return
            if chunks:
                last = chunks[-1][2]
                self._settled += count
                self.written += count
                with self._cond:
                    self._durable = last
                    self._cond.notify_all()
            if not self._healthy:
                self._healthy = True
                log.warning(
                    "audit log %s is written again (after: %s); %d event(s) dropped meanwhile",
                    self.path,
                    self._cause,
                    self.dropped,
                )

    def _failed(self, e: OSError, chunks: list[tuple[bytes, int, int]], count: int, final: bool) -> None:
        self.write_errors += 1
        cause = f"{e.strerror or e} (errno {e.errno})" if e.errno else str(e)
        if self._healthy:
            self._healthy = False
            self._cause = cause
            self._failed_at = time.time()
            log.error(
                "audit log %s cannot be written: %s (with [audit] required = true, decisions are "
                "denied until a write succeeds)",
                self.path,
                cause,
            )
        if not chunks:
            return
        if self._sync or final:
            # sync: their decisions were denied, so their events must not appear later as written
            self._settled += count
            self._drop(count)
            with self._cond:
                self._lost = chunks[-1][2]
                self._cond.notify_all()
        else:
            self._retry = chunks

    def _recovered_line(self) -> bytes:
        """The ``audit_recovered`` event (a chunk of one line) written with the first good write."""
        return (
            orjson.dumps(
                {
                    "v": EVENT_VERSION,
                    "type": "audit_recovered",
                    "time": rfc3339(time.time()),
                    "failed_since": rfc3339(self._failed_at),
                    "error": self._cause,
                    "dropped": self.dropped,
                }
            )
            + b"\n"
        )

    def _run(self) -> None:
        while True:
            closing = self._closed
            if not closing:
                self._wake.wait(self._interval)
                self._wake.clear()
            try:
                self._drain(final=closing)
            except Exception as e:  # the writer must outlive any one bad batch
                self.write_errors += 1
                log.error("audit writer error: %s: %s", type(e).__name__, e)
            if closing:
                self._finish()
                return

    def _finish(self) -> None:
        """The writer's last step: fsync, close the file, report what was not written."""
        with self._write_lock:
            with contextlib.suppress(OSError):
                self.file.sync()
            self.file.close()
            pending = self._taken - self._durable
            if self._retry:
                self._drop(sum(c[1] for c in self._retry))
                self._retry = []
            if pending > 0:
                log.error("audit log %s closed with %d event(s) not written", self.path, pending)
        self._done.set()
        with self._cond:
            self._cond.notify_all()

    def flush(self) -> None:
        """Write everything buffered so far, and fsync (a failure counts in ``write_errors``)."""
        if self._closed:
            return
        self._drain()
        with self._write_lock:
            if self.file.fd is None:
                return
            try:
                self.file.sync()
            except OSError as e:
                self._failed(e, [], 0, False)

    def close(self) -> None:
        """Write what is buffered (and a final checkpoint), fsync and close, waiting at most
        ``close_timeout_s`` for the writer: a stuck disk cannot hang shutdown (the events not
        written are logged with their number)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=self._close_timeout)
        if self._thread.is_alive():
            log.error(
                "audit log %s: the writer did not finish within %.1f s; %d event(s) not written",
                self.path,
                self._close_timeout,
                max(0, self._accepted_n - self._durable),
            )


def sink_from_settings(
    audit: Any,
    workspace: Path,
    *,
    path: str | Path | None = None,
    mark: bytes = b"",
    signing_key: str | Path | None = None,
) -> AuditSink:
    """The sink ``[audit]`` settings (:class:`~vigil.workspace.settings.AuditSettings`) describe,
    paths relative to ``workspace``; ``path`` another log than ``[audit] path`` (with the same
    settings), ``mark`` JSON members added to every line (:class:`JsonlSink`), ``signing_key``
    another checkpoint key than ``[audit] signing_key``. Raises OSError (the
    log cannot be opened) or :class:`~vigil.audit.keys.AuditKeyError` (the signing key)."""
    if audit.sink == "none" and path is None:
        return NullSink()
    path = Path(audit.path if path is None else path)
    if not path.is_absolute():
        path = workspace / path
    key = Path(audit.signing_key if signing_key is None else signing_key)
    if not key.is_absolute():
        key = workspace / key
    return JsonlSink(
        path,
        capacity=audit.buffer,
        mask=audit.mask,
        flush_interval_s=audit.flush_interval_ms / 1000,
        batch=audit.batch,
        durability=audit.durability,
        sync_timeout_s=audit.sync_timeout_ms / 1000,
        chain=audit.chain,
        signing_key=key,
        checkpoint_events=audit.checkpoint_events,
        checkpoint_interval_s=audit.checkpoint_interval_s,
        rotate_bytes=audit.rotate_bytes,
        max_context_bytes=audit.max_context_bytes,
        close_timeout_s=audit.close_timeout_s,
        mark=mark,
    )


def _close_at_exit(ref: weakref.ref[JsonlSink]) -> None:
    sink = ref()
    if sink is not None:
        sink.close()
