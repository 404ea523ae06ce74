"""The audit log file: the hash chain, signed checkpoints, size-based rotation, the context cap.

Runs on the sink's writer thread only (never on the deciding thread): it receives chunks of event
lines already encoded (``audit/_event_lines.pyx`` or orjson), and for each line

* replaces a context larger than ``max_context_bytes`` by ``{"__truncated": {"bytes", "sha256"}}``
  (the size and SHA-256 of the context's JSON);
* splices ``"seq":<n>,"prev":"<hex>"`` before the line's closing ``}``: ``seq`` counts the log's
  events (1, 2, ...), ``prev`` is the SHA-256 (hex) of the previous line's exact bytes (without its
  newline), or :data:`GENESIS` for the first line of a log.

Every ``checkpoint_events`` events or ``checkpoint_interval_s`` seconds (and before a rotation and
at close) it appends a checkpoint line signed with the workspace's Ed25519 audit key::

    {"v":1,"type":"checkpoint","seq":<last event seq>,"time":..,"hash":<chain head>,
     "key_id":<16 hex>,"prev":<chain head>,"sig":<base64 Ed25519 signature>}

The signature covers the line's bytes without the ``,"sig":"..."`` member. ``hash`` and ``prev``
are both the SHA-256 of the line before the checkpoint (``prev`` so that every line chains the
same way). :mod:`vigil.audit.verify` checks all of it.

Rotation (``rotate_bytes`` > 0): before a write would take the file past the size, the file gets a
checkpoint and is renamed ``<path>.1`` (older ones shift to ``.2``, ...); the chain continues in
the new file. Files are created with mode 0600.

Several writers (a server, the CLI's operator commands, a replay with ``--state``) may append to
one log: each write (and the opening, which cuts a partial last line and reads the chain head)
holds an exclusive ``flock`` on the file, and a writer that finds the file grown (or rotated)
since its own last write continues the chain from the log's last line. So the log stays one chain
whatever the number of processes that append to it. It accepts only growth
(:mod:`vigil.audit.follow`): a log that was cut, or whose lines after this writer's last one do
not chain onto it, is refused for good (an alarm, then every write fails: with ``[audit]
required`` decisions are denied), so an edit of the unsigned tail between two writes is never
signed into a checkpoint.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vigil.audit.events import EVENT_VERSION, rfc3339
from vigil.audit.follow import ForeignEdit, Tail, follow, own_line_intact
from vigil.audit.keys import key_id

_chain_block: Any
try:  # the chain in C without the GIL (setup.py builds it when OpenSSL's headers are there)
    from vigil.audit._chain import chain_block as _chain_block
except ImportError:  # the pure-Python loop of AuditFile._write
    _chain_block = None

_C_SEQ_LIMIT: Final = 2**62  # the C chain counts in 64 bits: beyond, the Python loop
GENESIS: Final = "0" * 64
"""``prev`` of the first line of a log (no line before it)."""
TRUNCATED: Final = "__truncated"
FILE_MODE: Final = 0o600
_SIG: Final = b',"sig":"'

log = logging.getLogger("vigil.audit")


def open_log(path: Path) -> int:
    """A descriptor appending to ``path`` and reading it (what other writers appended is checked
    through it), created 0600; an existing file is set to 0600. Raises OSError."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except OSError:
        pass  # a character device (/dev/full) or a file someone else owns: keep what it is
    return fd


def rotated(path: Path, n: int) -> Path:
    """The ``n``-th rotated file of ``path`` (``audit.jsonl.1`` is the newest rotated one)."""
    return path.with_name(f"{path.name}.{n}")


def last_line(path: Path) -> bytes | None:
    """The last complete line of ``path`` (without its newline), or None (no file, no line).
    Raises OSError other than FileNotFoundError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        end = size
        tail = b""
        step = 65_536
        while end > 0:
            start = max(0, end - step)
            tail = os.pread(fd, end - start, start) + tail
            end = start
            body = tail[:-1] if tail.endswith(b"\n") else tail[: tail.rfind(b"\n")]
            if not tail.endswith(b"\n") and b"\n" not in tail and end > 0:
                continue
            cut = body.rfind(b"\n")
            if cut >= 0 or end == 0:
                line = body[cut + 1 :]
                return line if line else None
        return None
    finally:
        os.close(fd)


class AuditFile:
    """One audit log (the current file and its rotated predecessors) as the writer thread sees it.

    :meth:`write` appends chunks of event lines; raises OSError when they could not be written
    (nothing of them is kept: the file is cut back to its size before the call and the chain head
    is unchanged, so the caller may retry or drop them). When the log was changed otherwise than
    by chained appends since this writer's last write, it raises
    :class:`~vigil.audit.follow.ForeignEdit` (an OSError) then and at every later call: ``tampered``
    says why, ``alarms`` counts it (logged once, critical).
    """

    def __init__(
        self,
        path: Path,
        *,
        chain: bool = True,
        signing_key: Ed25519PrivateKey | None = None,
        checkpoint_events: int = 1_000,
        checkpoint_interval_s: float = 60.0,
        rotate_bytes: int = 0,
        max_context_bytes: int = 16_384,
        clock: Callable[[], float] = time.time,
        mark: bytes = b"",
    ) -> None:
        """Open (or create) the log at ``path``; raises OSError."""
        self.path = path
        self._mark = mark  # members spliced into every event line, e.g. b',"replay":true'

        self.chain = chain
        self._key = signing_key if chain else None
        self._key_id = key_id(signing_key.public_key()) if signing_key is not None else ""
        self._every = max(1, checkpoint_events)
        self._interval = checkpoint_interval_s
        self._rotate = rotate_bytes
        self._cap = max_context_bytes
        self._clock = clock
        self.head = GENESIS
        self.seq = 0
        self._size = 0  # where this writer's last line ends in the current file
        self._head_len = 0  # the length of that line (0: the head line is not in this file)
        self.tampered = ""
        self.alarms = 0
        self.unsigned = 0  # events since the last checkpoint
        self._last_checkpoint = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd: int | None = open_log(path)
        try:
            self._regular = (os.fstat(self.fd).st_mode & 0o170000) == 0o100000
            if self._regular:  # a device (/dev/full, a pipe) has no tail to repair or chain to follow
                self._open_tail()
        except OSError:
            self.close()
            raise

    # -- opening ------------------------------------------------------------------------------
    def _open_tail(self) -> None:
        """Under the lock: cut a partial last line, then take the chain head from the log's last
        line (or its newest rotated file's). Raises OSError."""
        moved = self._hold()
        if moved is not None:
            os.close(moved)
        try:
            assert self.fd is not None
            self._size = self._repair_tail(self.fd, os.fstat(self.fd).st_size)
            if self.chain:
                self._resume()
        finally:
            self._unlock()

    def _repair_tail(self, fd: int, size: int) -> int:
        """A file ending in a partial line (a writer that crashed during a write): cut it back to
        its last full line, so the next line does not glue onto it (that line was never
        acknowledged). Returns the size kept. Raises OSError."""
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        keep = 0
        pos = size
        while pos > 0:
            start = max(0, pos - 65_536)
            block = os.pread(fd, pos - start, start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            pos = start
        self._cut_partial(fd, keep, size)
        return keep

    def _cut_partial(self, fd: int, keep: int, size: int) -> None:
        os.ftruncate(fd, keep)
        log.warning(
            "audit log %s ended in a partial line (%d bytes, a write cut short); removed it",
            self.path,
            size - keep,
        )

    def _resume(self) -> None:
        """Continue the chain from the last line of the log (or of its newest rotated file)."""
        line = last_line(self.path)
        self._head_len = len(line) if line is not None else 0
        if line is None:
            line = last_line(rotated(self.path, 1))
        if line is None:
            return
        self.head = hashlib.sha256(line).hexdigest()
        try:
            seq = orjson.loads(line).get("seq")
        except (orjson.JSONDecodeError, AttributeError):
            seq = None
        self.seq = seq if type(seq) is int and seq >= 0 else 0

    # -- writing ------------------------------------------------------------------------------
    def write(self, chunks: Sequence[bytes], *, sync: bool = False, final: bool = False) -> int:
        """Append the event lines of ``chunks`` (each a run of lines, every one ended by a newline),
        chained; a checkpoint when one is due (or ``final`` and an event is unsigned); fsync when
        ``sync``. Returns how many event lines were written. Raises OSError (nothing is kept),
        ForeignEdit when the log is refused (see the class)."""
        if self.fd is None:
            raise OSError(9, "audit log is closed")
        if not self._regular:  # a device (/dev/full, a pipe): nobody else's chain to follow
            return self._write(chunks, sync, final)
        try:
            self._lock()
            return self._write(chunks, sync, final)
        except ForeignEdit as e:
            self._alarm(e)
            raise
        finally:
            self._unlock()

    def _alarm(self, e: ForeignEdit) -> None:
        if self.tampered:
            return
        self.tampered = str(e)
        self.alarms += 1
        log.critical(
            "audit log %s was changed other than by appending to it: %s; this writer neither chains "
            "onto it nor signs it, and every later write fails until the log is opened again",
            self.path,
            e,
        )

    def _unlock(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _hold(self) -> int | None:
        """Lock the file now at ``path``, reopening it when another writer rotated (or someone
        moved) the one open here. Returns the descriptor of the file that was open here when it was
        moved away (unlocked and open: the caller reads what was appended to it and closes it), or
        None. Raises OSError."""
        assert self.fd is not None
        moved: int | None = None
        while True:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                now_at_path = os.stat(self.path).st_ino
            except FileNotFoundError:
                now_at_path = -1
            if now_at_path == os.fstat(self.fd).st_ino:
                return moved
            try:
                fd = open_log(self.path)
            except OSError:
                if moved is not None:
                    os.close(self.fd)
                    self.fd = moved
                raise
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            if moved is None:
                moved = self.fd
            else:
                os.close(self.fd)
            self.fd = fd

    def _lock(self) -> None:
        """Hold the log's write lock, on the file now at ``path``; when another writer appended (or
        rotated) since this one last wrote, continue the chain after what it appended, which must
        follow this writer's own last line. Raises OSError: ForeignEdit when it does not, or this
        writer refused the log before."""
        if self.tampered:
            raise ForeignEdit(self.tampered)
        moved = self._hold()
        assert self.fd is not None
        try:
            if not self.chain:
                self._size = os.fstat(self.fd).st_size
                return
            if moved is not None:
                self._grown(moved, f"{self.path} (the file this writer wrote last, rotated since)")
                for older in self._rotated_since(os.fstat(moved).st_ino):
                    self._size, self._head_len = 0, 0
                    fd = os.open(older, os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        self._grown(fd, str(older))
                    finally:
                        os.close(fd)
                self._size, self._head_len = 0, 0
            self._grown(self.fd, str(self.path), current=True)
        finally:
            if moved is not None:
                os.close(moved)

    def _grown(self, fd: int, name: str, *, current: bool = False) -> None:
        """Accept what follows this writer's last line in ``fd`` as chained growth and continue the
        chain after it; a partial last line of the ``current`` file is cut (a writer that crashed).
        Raises ForeignEdit (the file is shorter, the writer's last line changed, a new line does
        not chain), OSError."""
        size = os.fstat(fd).st_size
        if size < self._size:
            raise ForeignEdit(f"{name} is {size} bytes, shorter than the {self._size} this writer left")
        if not own_line_intact(fd, self._size, self._head_len, self.head):
            raise ForeignEdit(
                f"{name}: the line this writer wrote last (ending at byte {self._size}) was changed"
            )
        if size == self._size:
            return
        tail = follow(fd, self._size, size, Tail(self.head, self.seq, self._head_len, self._size), name)
        if tail.end < size:
            if not current:
                raise ForeignEdit(f"{name} ends in a partial line")
            self._cut_partial(fd, tail.end, size)
        self.head, self.seq, self._head_len, self._size = tail.head, tail.seq, tail.length, tail.end

    def _rotated_since(self, ino: int) -> list[Path]:
        """The rotated files newer than the one with inode ``ino``, oldest first; none when it is not
        one of them (then the current file must chain onto it directly)."""
        newer: list[Path] = []
        n = 1
        while True:
            try:
                st = os.stat(rotated(self.path, n))
            except FileNotFoundError:
                return []
            if st.st_ino == ino:
                return newer[::-1]
            newer.append(rotated(self.path, n))
            n += 1

    def _write(self, chunks: Sequence[bytes], sync: bool, final: bool) -> int:
        assert self.fd is not None
        if self._rotate and self._regular and self._size:
            size = sum(len(c) for c in chunks)
            if size and self._size + size > self._rotate:
                self._rotate_now()  # before chaining: the rotation's checkpoint moves the head
        head, seq, unsigned = self.head, self.seq, self.unsigned
        parts: list[bytes] = []
        n = 0
        last = 0  # the length of the last line (chained: parts may hold blocks of lines)
        if self.chain:
            for chunk in chunks:
                fast = (
                    None
                    if _chain_block is None or seq >= _C_SEQ_LIMIT
                    else _chain_block(chunk, self._mark, seq, head.encode(), self._cap)
                )
                if fast is not None:
                    block, k, seq, chained, size = fast
                    if k:
                        parts.append(block)
                        head, last = chained.decode(), size
                        n += k
                    continue
                for line in chunk.split(b"\n")[:-1]:
                    if len(line) > self._cap:
                        line = self._capped(line)
                    seq += 1
                    line = b'%s%s,"seq":%d,"prev":"%s"}' % (line[:-1], self._mark, seq, head.encode())
                    head = hashlib.sha256(line).hexdigest()
                    parts.append(line)
                    last = len(line)
                    n += 1
            unsigned += n
        else:
            for chunk in chunks:
                if self._mark:
                    chunk = b"".join(b"%s%s}\n" % (x[:-1], self._mark) for x in chunk.split(b"\n")[:-1])
                if len(chunk) > self._cap:
                    lines = [self._capped(x) if len(x) > self._cap else x for x in chunk.split(b"\n")[:-1]]
                    parts.extend(lines)
                    n += len(lines)
                else:
                    parts.append(chunk[:-1])
                    n += chunk.count(b"\n")
        due = unsigned > 0 and (
            unsigned >= self._every or final or time.monotonic() - self._last_checkpoint >= self._interval
        )
        if self._key is not None and due:
            line = self._checkpoint(seq, head)
            head = hashlib.sha256(line).hexdigest()
            parts.append(line)
            last = len(line)
        if not parts:
            return 0
        if not self.chain:
            last = len(parts[-1])
        parts.append(b"")
        data = b"\n".join(parts)
        try:
            _write_all(self.fd, data)
            if sync:
                os.fsync(self.fd)
        except OSError:
            self._cut_back()
            raise
        self._size += len(data)
        self.head, self.seq, self._head_len = head, seq, last
        if self._key is not None and due:
            self.unsigned = 0
            self._last_checkpoint = time.monotonic()
        else:
            self.unsigned = unsigned
        return n

    def _cut_back(self) -> None:
        """After a failed write: cut the file back to what was written before (best effort)."""
        if self._regular and self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self._size)

    def _capped(self, line: bytes) -> bytes:
        """``line`` with its context replaced by a marker when the context's JSON is larger than
        ``max_context_bytes``; ``line`` itself when it is not, or cannot be read back."""
        try:
            event = orjson.loads(line)
            context = event.get("context")
            encoded = orjson.dumps(context)
        except (orjson.JSONDecodeError, orjson.JSONEncodeError, AttributeError):
            return line
        if len(encoded) <= self._cap:
            return line
        event["context"] = {TRUNCATED: {"bytes": len(encoded), "sha256": hashlib.sha256(encoded).hexdigest()}}
        return orjson.dumps(event)

    def _checkpoint(self, seq: int, head: str) -> bytes:
        assert self._key is not None
        body = b'{"v":%d,"type":"checkpoint","seq":%d,"time":"%s","hash":"%s","key_id":"%s","prev":"%s"}' % (
            EVENT_VERSION,
            seq,
            rfc3339(self._clock()).encode(),
            head.encode(),
            self._key_id.encode(),
            head.encode(),
        )
        sig = base64.b64encode(self._key.sign(body))
        return body[:-1] + _SIG + sig + b'"}'

    def _rotate_now(self) -> None:
        """Sign what is unsigned, then move the file to ``.1`` (shifting older ones) and open a
        new one. Raises OSError (the current file stays in use)."""
        assert self.fd is not None
        if self._key is not None and self.unsigned:
            line = self._checkpoint(self.seq, self.head) + b"\n"
            try:
                _write_all(self.fd, line)
            except OSError:
                self._cut_back()
                raise
            self._size += len(line)
            self.head = hashlib.sha256(line[:-1]).hexdigest()
            self.unsigned = 0
            self._last_checkpoint = time.monotonic()
        os.fsync(self.fd)
        n = 1
        while rotated(self.path, n).exists():
            n += 1
        for k in range(n, 1, -1):
            os.replace(rotated(self.path, k - 1), rotated(self.path, k))
        os.replace(self.path, rotated(self.path, 1))
        fd = open_log(self.path)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.close(self.fd)  # (releases the old file's lock)
        self.fd = fd
        self._size, self._head_len = 0, 0
        if self.chain:  # a writer that opened the new file first chained onto the checkpoint above
            self._grown(fd, str(self.path), current=True)

    def sync(self) -> None:
        """fsync the file; raises OSError."""
        if self.fd is None:
            raise OSError(9, "audit log is closed")
        os.fsync(self.fd)

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with contextlib.suppress(OSError):
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (resumed after a short write); raises OSError."""
    view = memoryview(data)
    while view:
        done = os.write(fd, view)
        if done <= 0:
            raise OSError(5, "audit file accepted no bytes")
        view = view[done:]


def signature_body(line: bytes) -> tuple[bytes, bytes] | None:
    """A checkpoint line's signed bytes and its signature, or None when it has no signature."""
    cut = line.rfind(_SIG)
    if cut < 0 or not line.endswith(b'"}'):
        return None
    try:
        sig = base64.b64decode(line[cut + len(_SIG) : -2], validate=True)
    except ValueError:
        return None
    return line[:cut] + b"}", sig
