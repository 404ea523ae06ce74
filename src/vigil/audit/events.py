"""The versioned decision event (schema version 1) built from a DecisionRecord, with masking."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import orjson

from vigil.model.decision import DecisionRecord
from vigil.policy.json_values import to_json

_CLineBuffer: Any
try:  # the C writer of the event lines (setup.py builds it where it can; see event_lines)
    from vigil.audit._event_lines import LineBuffer as _CLineBuffer
except ImportError:
    _CLineBuffer = None

EVENT_VERSION: Final = 1
MASK: Final = "***"


def _base_event(record: DecisionRecord) -> dict[str, Any]:
    """Every field of the event but ``errors``, ``error`` and ``context``."""
    principal = record.principal
    resource = record.resource
    return {
        "v": EVENT_VERSION,
        "type": "decision",
        "id": record.id,
        "time": rfc3339(record.time),
        "decision": "allow" if record.allowed else "deny",
        "subject": {"type": principal[0], "id": principal[1]},
        "action": {"type": record.action[0], "name": record.action[1]},
        "resource": {"type": resource[0], "id": resource[1]},
        "reason_codes": record.reason_codes,
        "policies": record.policies,
        "risk": record.risk,
        "signals": record.signals,
        "advice": record.advice,
        "policy_revision": record.policy_revision,
        "latency_ns": record.latency_ns,
    }


def decision_event(record: DecisionRecord, mask: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON-ready audit event for ``record``; ``mask`` paths (``context.a.b``) become ``"***"``.

    Tuples are left as tuples (JSON arrays): this runs once per decision on the writer thread.
    """
    event = _base_event(record)
    if record.errors:
        event["errors"] = [{"policy": p, "message": m} for p, m in record.errors]
    if record.error is not None:
        event["error"] = record.error
    overlay = record.overlay
    if overlay is not None:  # caller-supplied properties applied to this call
        event["overlay"] = {side: to_json(values) for side, values in overlay.items()}
    delegation = record.delegation
    if delegation is not None:  # the actors of a delegated token, the current one first
        event["delegation"] = [{"type": t, "id": i} for t, i in delegation]
    context = {k: to_json(v) for k, v in (record.context or {}).items()}
    event["context"] = _masked(context, mask) if mask else context
    return event


_second_cache: list[Any] = [None, ""]


def rfc3339(epoch: float) -> str:
    """``epoch`` seconds as RFC 3339 UTC with microseconds (``2026-11-28T09:14:03.123456Z``)."""
    micros = int(epoch * 1_000_000)
    sec = micros // 1_000_000
    frac = micros - sec * 1_000_000
    cache = _second_cache
    if cache[0] != sec:
        cache[1] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        cache[0] = sec
    return f"{cache[1]}{frac:06d}Z"


def encode_event(record: DecisionRecord, mask: Sequence[str] = ()) -> bytes:
    """The audit event of ``record`` as one JSON line (without the newline).

    Byte for byte what ``orjson.dumps(decision_event(record, mask))`` gives
    (``tests/test_audit_events.py`` checks it): :func:`encode_events` of one record. Raises
    orjson's errors for text JSON cannot carry.
    """
    return encode_events((record,), mask)[0]


def encode_events(records: Sequence[DecisionRecord], mask: Sequence[str] = ()) -> list[bytes]:
    """The audit event line of each record, in order (without newlines): byte for byte what
    ``orjson.dumps(decision_event(record, mask))`` gives. Without masking or errors, one event
    dict is filled in place instead of built per record (the dict and its three identity dicts are
    most of an event's cost), and the context's Cedar values go to orjson directly (extension
    values and sets through a small hook; entity references, which orjson would write as arrays,
    through :func:`to_json` first). Raises orjson's errors for text JSON cannot carry, at the first
    record that has one."""
    subject: dict[str, Any] = {"type": None, "id": None}
    action: dict[str, Any] = {"type": None, "name": None}
    resource: dict[str, Any] = {"type": None, "id": None}
    event: dict[str, Any] = {
        "v": EVENT_VERSION,
        "type": "decision",
        "id": None,
        "time": None,
        "decision": None,
        "subject": subject,
        "action": action,
        "resource": resource,
        "reason_codes": None,
        "policies": None,
        "risk": None,
        "signals": None,
        "advice": None,
        "policy_revision": None,
        "latency_ns": None,
        "context": None,
    }
    out: list[bytes] = []
    for record in records:
        if (
            mask
            or record.errors
            or record.error is not None
            or record.overlay is not None
            or record.delegation is not None
        ):
            out.append(orjson.dumps(decision_event(record, mask)))
            continue
        principal = record.principal
        act = record.action
        res = record.resource
        event["id"] = record.id
        event["time"] = rfc3339(record.time)
        event["decision"] = "allow" if record.allowed else "deny"
        subject["type"] = principal[0]
        subject["id"] = principal[1]
        action["type"] = act[0]
        action["name"] = act[1]
        resource["type"] = res[0]
        resource["id"] = res[1]
        event["reason_codes"] = record.reason_codes
        event["policies"] = record.policies
        event["risk"] = record.risk
        event["signals"] = record.signals
        event["advice"] = record.advice
        event["policy_revision"] = record.policy_revision
        event["latency_ns"] = record.latency_ns
        context = record.context or {}
        for v in context.values():
            t = type(v)
            if t is not int and t is not str and t is not bool and not _hook_suffices(v):
                context = {k: to_json(x) for k, x in context.items()}
                break
        event["context"] = context
        out.append(orjson.dumps(event, default=to_json))
    return out


def encode_event_safely(record: DecisionRecord, mask: Sequence[str] = ()) -> bytes:
    """The event line of ``record``; never raises. orjson refuses text JSON cannot carry (lone
    surrogates): then the stdlib encoder writes it escaped, so the event is still recorded."""
    try:
        return encode_event(record, mask)
    except (TypeError, ValueError):
        event = decision_event(record, mask)
        return json.dumps(event, ensure_ascii=True, default=str).encode("ascii")


class EventLines(Protocol):
    """Where a sink's event lines wait for its writer: ``add`` a record (or an already encoded
    line, ``bytes`` without newline) as it is decided, which returns the line's ordinal (1, 2, ...);
    ``take`` every line added since the last take as one chunk (``bytes``, each line ended by a
    newline) with their count. Threads may add while another takes: each line is taken once, and
    the lines taken so far are exactly those of ordinals up to the running total of the counts."""

    def add(self, record: DecisionRecord | bytes) -> int: ...
    def take(self) -> tuple[bytes, int]: ...
    def __len__(self) -> int: ...


class RecordLines:
    """:class:`EventLines` that keeps the records and encodes them when taken (orjson, one batch;
    a record orjson refuses goes through :func:`encode_event_safely`): the pure-Python build's, and
    the one for masked events."""

    def __init__(self, mask: Sequence[str] = ()) -> None:
        self._records: collections.deque[DecisionRecord | bytes] = collections.deque()
        self._mask = tuple(mask)
        self._lock = threading.Lock()  # an ordinal and its place in the deque go together
        self._total = 0

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: DecisionRecord | bytes) -> int:
        with self._lock:
            self._records.append(record)
            self._total += 1
            return self._total

    def take(self) -> tuple[bytes, int]:
        with self._lock:
            popleft = self._records.popleft
            records = [popleft() for _ in range(len(self._records))]
        if not records:
            return b"", 0
        if any(type(r) is bytes for r in records):
            return b"".join(_line_of(r, self._mask) + b"\n" for r in records), len(records)
        try:
            lines = encode_events(records, self._mask)  # type: ignore[arg-type]  # no bytes here
        except (TypeError, ValueError):  # one record orjson refuses: each on its own
            return b"".join(_line_of(r, self._mask) + b"\n" for r in records), len(records)
        lines.append(b"")  # the chunk ends with a newline: one copy, not two
        return b"\n".join(lines), len(records)


def _line_of(item: DecisionRecord | bytes, mask: Sequence[str] = ()) -> bytes:
    """The line of a record (:func:`encode_event_safely`) or of an already encoded event (itself)."""
    if type(item) is bytes:
        return item
    return encode_event_safely(item, mask)  # type: ignore[arg-type]


def event_lines(mask: Sequence[str] = ()) -> EventLines:
    """A sink's :class:`EventLines`: the C ``LineBuffer``, which encodes each event as it is
    added (while its record is fresh in the CPU's caches, and so the record can be freed at once),
    where it is built and nothing is masked; :class:`RecordLines` otherwise."""
    if _CLineBuffer is not None and not mask:
        return _CLineBuffer(_line_of)  # type: ignore[no-any-return]
    return RecordLines(mask)


def _hook_suffices(value: Any) -> bool:
    """True when orjson (calling :func:`to_json` for what it cannot encode) writes ``value``
    exactly as :func:`to_json` would: no tuple (an entity reference) outside a set."""
    if type(value) is tuple:
        return False
    if isinstance(value, dict):
        for v in value.values():
            if not _hook_suffices(v):
                return False
    return True


def _masked(context: dict[str, Any], mask: Sequence[str]) -> dict[str, Any]:
    if not mask:
        return context
    out: dict[str, Any] = dict(context)
    for path in mask:
        parts = path.split(".")
        if parts[0] != "context" or len(parts) < 2:
            continue
        _mask_path(out, parts[1:])
    return out


def _mask_path(obj: dict[str, Any], parts: list[str]) -> None:
    key = parts[0]
    if key not in obj:
        return
    if len(parts) == 1:
        obj[key] = MASK
        return
    child = obj[key]
    if isinstance(child, dict):
        copy = dict(child)
        obj[key] = copy
        _mask_path(copy, parts[1:])
