"""Following the tail of an audit log that several writers share.

A writer that finds the log changed since its own last write accepts the change only as growth:
the file is not shorter than it left it, the line it wrote last is still there byte for byte (its
SHA-256 is the writer's chain head), and every new line chains onto the one before it, the first
onto the writer's head, with sequence numbers that run on. Anything else (a tail edited, cut,
reordered or replaced between two writes) is a :class:`ForeignEdit`: the writer neither chains
onto it nor signs it into a checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

import orjson

BLOCK = 1 << 20
# How every writer ends an event line (audit/_chain.pyx, logfile.AuditFile._write): its sequence
# number and the SHA-256 of the line before it, spliced before the closing brace.
_CHAINED_END = re.compile(rb',"seq":([1-9][0-9]{0,17}),"prev":"([0-9a-f]{64})"\}\Z')
_TAIL_BYTES = 100  # enough for the chained end


class ForeignEdit(OSError):
    """The log was changed otherwise than by a writer appending chained lines."""


@dataclass(frozen=True, slots=True)
class Tail:
    """Where a chain stands: ``head`` (SHA-256 of its last line), ``seq`` (its last event's number),
    ``length`` (of that line, 0 when it is not in the file being read) and ``end`` (the offset just
    after the last complete line read)."""

    head: str
    seq: int
    length: int
    end: int


def own_line_intact(fd: int, end: int, length: int, head: str) -> bool:
    """Whether the ``length`` bytes and the newline just before offset ``end`` of ``fd`` are still a
    line whose SHA-256 is ``head`` (True when there is no such line to check: ``length`` 0).
    Raises OSError."""
    if length <= 0:
        return True
    if end < length + 1:
        return False
    data = os.pread(fd, length + 1, end - length - 1)
    return data[-1:] == b"\n" and hashlib.sha256(data[:-1]).hexdigest() == head


def follow(fd: int, start: int, end: int, tail: Tail, name: str) -> Tail:
    """The chain after the lines in bytes ``start``..``end`` of ``fd``, each checked to chain onto
    the one before it (the first onto ``tail.head``) with its sequence number running on from
    ``tail.seq``. A partial last line (no newline) is not read: the returned ``end`` says where
    the complete lines stop. Raises ForeignEdit naming ``name`` and the byte offset of the first
    line that does not follow; OSError when the file cannot be read."""
    head, seq, length = tail.head, tail.seq, tail.length
    pos = start
    at = start  # offset of the next line
    carry = b""
    while pos < end:
        block = os.pread(fd, min(BLOCK, end - pos), pos)
        if not block:
            break
        pos += len(block)
        lines = (carry + block).split(b"\n")
        carry = lines.pop()
        for line in lines:
            head, seq = _step(line, head, seq, f"{name}: the line at byte {at}")
            length = len(line)
            at += length + 1
    return Tail(head, seq, length, at)


def _step(line: bytes, head: str, seq: int, where: str) -> tuple[str, int]:
    """``(head, seq)`` after ``line``; raises ForeignEdit when it does not follow ``head``/``seq``.

    An event line as writers write it (an object ending in the next ``seq`` and ``prev`` = ``head``,
    not a checkpoint) is checked by its chained end alone: the JSON parse of a whole decision
    event costs ~4 µs, and several workers on one log each follow every other's lines. The chain
    check is the same (the next line's ``prev`` hashes every byte of this one); whether the rest
    of the line is well-formed JSON is left to ``vigil audit verify``. Anything else is parsed."""
    if line[:1] == b"{" and b'"checkpoint"' not in line:
        m = _CHAINED_END.search(line, max(0, len(line) - _TAIL_BYTES))
        if m is not None and int(m.group(1)) == seq + 1 and m.group(2) == head.encode():
            return hashlib.sha256(line).hexdigest(), seq + 1
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ForeignEdit(f"{where} is not a JSON line") from None
    if not isinstance(event, dict) or event.get("prev") != head:
        raise ForeignEdit(f"{where} does not chain onto the line before it")
    n = event.get("seq")
    due = seq if event.get("type") == "checkpoint" else seq + 1
    if type(n) is not int or n != due:
        raise ForeignEdit(f"{where} has sequence {n!r} where {due} was due")
    return hashlib.sha256(line).hexdigest(), due
