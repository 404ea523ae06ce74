"""``vigil audit verify``: check an audit log's hash chain and its signed checkpoints.

The log is the base file and its rotated predecessors, read oldest first (``audit.jsonl.3``,
``.2``, ``.1``, ``audit.jsonl``); the chain runs through all of them. The first problem stops the
check and is named with its file and line number and why (see :func:`verify_log`).

What the log alone cannot show: a log cut just after a checkpoint is a valid log (every line
chains, the last is signed). Only an anchor kept elsewhere tells: the ``seq`` and ``hash`` of a
checkpoint (:attr:`Verification.head`, ``vigil audit head``), checked later with ``expect_head``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vigil.audit.keys import key_id
from vigil.audit.logfile import GENESIS, rotated, signature_body


@dataclass(slots=True)
class Verification:
    """The result of :func:`verify_log`: ``ok`` (no problem), ``problem`` (the first one, naming
    file and line), ``warnings``, and counts."""

    ok: bool = True
    problem: str = ""
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    lines: int = 0
    events: int = 0
    checkpoints: int = 0
    unsigned: int = 0
    head: tuple[int, str] | None = None  # (seq, hash) of the last checkpoint


def parse_head(text: str) -> tuple[int, str]:
    """``<seq>:<64 hex>`` (what ``vigil audit head`` prints) -> (seq, hash); raises ValueError."""
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{text[:80]!r} is not <seq>:<64 lowercase hex digits>")
    return int(seq), digest


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file ``path``; raises ValueError (OSError when unreadable)."""
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def log_files(base: Path) -> list[Path]:
    """The files of the log at ``base``, oldest first (rotated ones, then ``base`` if present)."""
    files = []
    n = 1
    while rotated(base, n).exists():
        files.append(rotated(base, n))
        n += 1
    files.reverse()
    if base.exists():
        files.append(base)
    return files


def verify_log(
    base: Path,
    public_key: Ed25519PublicKey | None,
    *,
    strict: bool = False,
    expect_head: tuple[int, str] | None = None,
) -> Verification:
    """Check the log at ``base`` (and its rotated files). Returns a :class:`Verification`; never
    raises for log content (an unreadable file is a problem too).

    Problems (``ok`` False): a line that is not JSON or not chained; a line whose ``prev`` is not
    the SHA-256 of the line before it, diagnosed as *edited* (the sequence numbers run on, so the
    line before was changed), *removed* (the sequence jumps), *reordered* (it goes back) or
    *inserted* (the next line chains past it); a checkpoint whose signature does not verify with
    ``public_key`` (forged, edited, or signed by another key), whose ``hash`` is not the chain head
    or whose ``seq`` is not the last event's; with a ``public_key``, a log with no checkpoint
    (nothing in it is signed: it could be anyone's); with ``expect_head`` (seq, hash), no
    checkpoint with that seq and hash (the log was cut before it, or rewritten). With ``strict``,
    also events after the last checkpoint and no ``public_key``. Otherwise those are warnings:
    events after the last checkpoint (a log truncated after it cannot be told from one whose last
    events are not signed yet), no public key given (signatures not checked)."""
    out = Verification()
    files = log_files(base)
    out.files = [str(f) for f in files]
    if not files:
        return _broken(out, f"{base}: no audit log found")
    if public_key is None:
        if strict:
            return _broken(out, "no public key given (--strict): the checkpoint signatures cannot be checked")
        out.warnings.append("no public key given: checkpoint signatures were not checked")
    want_id = key_id(public_key) if public_key is not None else None
    prev_hash = GENESIS
    prev_line: bytes | None = None
    before_prev: bytes | None = None
    last_seq = 0
    prev_where = ""
    seen: dict[str, int] = {}  # hash of a line -> its ordinal, for the reorder diagnosis
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as e:
            return _broken(out, f"{path}: cannot read: {e.strerror}")
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        elif lines:
            return _broken(out, f"{path}:{len(lines)}: partial last line (no newline)")
        for number, line in enumerate(lines, 1):
            where = f"{path}:{number}"
            out.lines += 1
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                return _broken(out, f"{where}: not a JSON line (edited or inserted)")
            if not isinstance(event, dict):
                return _broken(out, f"{where}: not a JSON object (edited or inserted)")
            prev = event.get("prev")
            seq = event.get("seq")
            kind = event.get("type")
            if type(prev) is not str or type(seq) is not int:
                return _broken(out, f"{where}: not a chained line (no prev/seq: edited or inserted)")
            if prev != prev_hash:
                blame, why = _diagnose(kind, seq, last_seq, prev, before_prev, seen, lines[number:])
                return _broken(out, f"{prev_where if blame else where}: {why}")
            if kind == "checkpoint":
                problem = _checkpoint(line, event, seq, last_seq, prev_hash, public_key, want_id)
                if problem:
                    return _broken(out, f"{where}: {problem}")
                out.checkpoints += 1
                out.unsigned = 0
                out.head = (seq, prev_hash)
                if expect_head is not None and out.head == expect_head:
                    expect_head = None  # found
            else:
                if seq != last_seq + 1:
                    if seq > last_seq + 1:
                        why = f"removed: sequence {seq} after {last_seq}, line(s) missing before this line"
                    elif seq == last_seq:
                        why = f"inserted: sequence {seq} repeats the line before"
                    else:
                        why = f"reordered: sequence {seq} after {last_seq}"
                    return _broken(out, f"{where}: {why}")
                last_seq = seq
                out.events += 1
                out.unsigned += 1
            before_prev = prev_line
            prev_line = line
            prev_where = where
            prev_hash = hashlib.sha256(line).hexdigest()
            seen[prev_hash] = out.lines
    return _signed(out, public_key is not None, strict, expect_head)


def _signed(
    out: Verification, keyed: bool, strict: bool, expect_head: tuple[int, str] | None
) -> Verification:
    """What an intact chain still lacks: a signature over it, the anchor, the last events signed."""
    if expect_head is not None:
        return _broken(
            out,
            f"no checkpoint for sequence {expect_head[0]} with hash {expect_head[1]} (the anchor): "
            "the log was cut before it, or rewritten",
        )
    if out.checkpoints == 0:
        none = f"no checkpoint: none of the {out.events} events is signed"
        if keyed:
            return _broken(out, none + " (an unsigned log could have been written by anyone)")
        out.warnings.append(none)
    elif out.unsigned:
        trailing = (
            f"{out.unsigned} event(s) after the last checkpoint are not signed yet "
            "(or the log was truncated after that checkpoint)"
        )
        if strict:
            return _broken(out, trailing + " (--strict)")
        out.warnings.append(trailing)
    return out


def _broken(out: Verification, problem: str) -> Verification:
    out.ok = False
    out.problem = problem
    return out


def _diagnose(
    kind: object,
    seq: int,
    last_seq: int,
    prev: str,
    before_prev: bytes | None,
    seen: dict[str, int],
    rest: list[bytes],
) -> tuple[bool, str]:
    """Why a line's ``prev`` does not match the line before it: ``(blame the line before, why)``."""
    if before_prev is not None and prev == hashlib.sha256(before_prev).hexdigest():
        return True, "inserted: the next line chains from the line before this one"
    if prev in seen:
        return False, f"reordered: chains from line {seen[prev]} of the log, not from the line before it"
    if prev == GENESIS and seen:
        return False, "inserted: chains from the genesis value in the middle of the log"
    if not seen:
        return False, "the first line does not chain from the genesis value (the log's start is missing)"
    if kind != "checkpoint" and seq > last_seq + 1:
        for ahead in rest:
            if b'"seq":%d,' % (last_seq + 1) in ahead:
                return False, f"reordered: sequence {seq} after {last_seq}, and {last_seq + 1} comes later"
        return False, f"removed: sequence {seq} after {last_seq}, line(s) missing before this line"
    if kind != "checkpoint" and seq <= last_seq:
        return False, f"reordered or inserted: sequence {seq} after {last_seq}"
    return True, "edited: the next line's prev is not the hash of this line"


def _checkpoint(
    line: bytes,
    event: dict[str, object],
    seq: int,
    last_seq: int,
    head: str,
    public_key: Ed25519PublicKey | None,
    want_id: str | None,
) -> str:
    """The problem with a checkpoint line, or ``""``."""
    if seq != last_seq:
        return f"checkpoint for sequence {seq}, but the last event is {last_seq}"
    if event.get("hash") != head:
        return "checkpoint hash is not the chain head"
    if public_key is None:
        return ""
    parts = signature_body(line)
    if parts is None:
        return "checkpoint has no readable signature"
    body, sig = parts
    try:
        public_key.verify(sig, body)
    except InvalidSignature:
        if event.get("key_id") != want_id:
            return f"checkpoint signed by another key (key_id {event.get('key_id')!r}, expected {want_id})"
        return "checkpoint signature does not verify (forged or edited)"
    return ""
