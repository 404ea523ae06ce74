"""Replay: decide a file of recorded AuthZEN requests at their own event times (ARCHITECTURE section 4).

Each input line is an AuthZEN evaluation request whose ``context.time`` (RFC 3339) is the event
time. Lines are decided in order with ``engine.decide(request, now=<that time>)``; each yields one
output object: the AuthZEN response (``{"decision", "context": {"id", "reason_codes", "risk",
"signals", "advice", ...}}``) or, for a line that cannot be decided, an error object
``{"line": N, "error": {"code", "message"}}``. A bad line never stops the replay. Blank lines are
skipped (they still count for line numbers).

Input is streamed line by line: memory stays flat however long the file is. This module never
imports a CLI or web library; ``vigil replay`` renders what it returns.

A replay is a dry run unless asked otherwise: :func:`replay_engine` builds an engine on a scratch
in-memory state store with no audit sink, so the workspace's state database (profiles, tickets,
quarantines) and audit log stay untouched. ``state=True`` uses the workspace's store (the replay
trains the live profiles); ``audit`` names a file for the replay's audit events. Events a replay
writes carry ``"replay": true`` (:data:`REPLAY_MARK`, on the same hash chain as live events), so they are never mistaken for live ones.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import orjson

from vigil.audit.keys import AuditKeyError
from vigil.audit.sink import AuditSink, NullSink, sink_from_settings
from vigil.engine import Engine
from vigil.errors import AuditError, VigilError
from vigil.model.decision import DecisionRecord
from vigil.model.jsonkeys import check_unique_keys
from vigil.model.timefmt import TimeFormatError, parse_datetime
from vigil.store import MemoryStore
from vigil.workspace.loader import load_workspace

REPLAY_MARK: Final = b',"replay":true'
"""Added to every audit line a replay writes."""

__all__ = [
    "INVALID_JSON",
    "INVALID_TIME",
    "MAX_LINE_BYTES",
    "REPLAY_MARK",
    "BinaryWriter",
    "ReplayInputError",
    "ReplayLine",
    "ReplaySummary",
    "parse_rfc3339",
    "replay",
    "replay_engine",
    "replay_to",
]

INVALID_JSON: Final = "invalid_json"
"""Error code of a line that is not valid UTF-8 JSON."""
INVALID_TIME: Final = "invalid_time"
"""Error code of a request without a valid RFC 3339 ``context.time``."""
INVALID_REQUEST: Final = "invalid_request"
REQUEST_TOO_LARGE: Final = "request_too_large"
MAX_LINE_BYTES: Final = 1024 * 1024
"""Longest accepted input line (characters, for text lines); a longer one becomes a ``request_too_large`` error line."""


class ReplayInputError(VigilError):
    """A replay line that cannot be decided (bad JSON, no usable ``context.time``)."""

    code = INVALID_JSON


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 date-time (``2026-11-27T09:14:03Z``, ``...03.5+02:00``) as an aware datetime,
    read by :func:`vigil.model.timefmt.parse_datetime` (the one time parser).

    Raises ReplayInputError (code ``invalid_time``) when ``value`` is not RFC 3339 with an offset,
    or names an impossible date or time (leap second ``:60`` included). Fractions of a second
    beyond microseconds are truncated.
    """
    try:
        return parse_datetime(value)
    except TimeFormatError as e:
        raise ReplayInputError(e.message, code=INVALID_TIME) from None


@dataclass(frozen=True, slots=True)
class ReplayLine:
    """The outcome of one input line: a decision ``record``, or an ``error`` ``{"code", "message"}``."""

    line: int
    record: DecisionRecord | None = None
    error: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        """True when the line was decided (allow or deny)."""
        return self.record is not None

    def output(self) -> dict[str, Any]:
        """The output object: the AuthZEN response, or ``{"line": N, "error": {"code", "message"}}``."""
        if self.record is not None:
            return self.record.to_authzen(full=True)  # an operator's file: the full explanation
        return {"line": self.line, "error": self.error}

    def to_json(self) -> bytes:
        """:meth:`output` as one line of JSON (no trailing newline)."""
        return orjson.dumps(self.output())


def replay(engine: Engine, lines: Iterable[bytes | str], *, first_line: int = 1) -> Iterator[ReplayLine]:
    """Decide each non-blank line of ``lines`` in order; yield one :class:`ReplayLine` per such line.

    ``lines`` is any iterable of JSON lines (a file opened in binary mode is best: undecodable bytes
    then become error lines instead of a decoding exception). Never raises for bad input: invalid
    JSON or UTF-8 (``invalid_json``), a line over :data:`MAX_LINE_BYTES` (``request_too_large``),
    a value that is not an object (``invalid_request``), a missing or malformed ``context.time``
    (``invalid_time``) and any VigilError raised by ``engine.decide`` (its own code) each yield an
    error line, and the replay goes on. Errors that are not VigilErrors (bugs, I/O errors from
    ``lines``) propagate.
    """
    decide = engine.decide
    last_time: str | None = None
    last_now: datetime | None = None
    for n, raw in enumerate(lines, first_line):
        if not raw.strip():
            continue
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise ReplayInputError(f"line longer than {MAX_LINE_BYTES} bytes", code=REQUEST_TOO_LARGE)
            try:
                request = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise ReplayInputError(f"invalid JSON: {e}", code=INVALID_JSON) from None
            if type(request) is not dict:
                raise ReplayInputError("request must be a JSON object", code=INVALID_REQUEST)
            check_unique_keys(raw, request)
            stamp = _event_time(request)
            if stamp != last_time:  # consecutive events often share a second
                last_now = parse_rfc3339(stamp)
                last_time = stamp
            record = decide(request, now=last_now)
        except VigilError as e:
            yield ReplayLine(n, error={"code": e.code, "message": e.message})
            continue
        yield ReplayLine(n, record=record)


def _event_time(request: dict[str, Any]) -> str:
    context = request.get("context")
    if type(context) is not dict:
        raise ReplayInputError("request has no 'context' object with the event time", code=INVALID_TIME)
    stamp = context.get("time")
    if stamp is None:
        raise ReplayInputError("request has no 'context.time'", code=INVALID_TIME)
    if type(stamp) is not str:
        raise ReplayInputError("'context.time' must be an RFC 3339 string", code=INVALID_TIME)
    return stamp


class ReplaySummary:
    """Running figures of a replay: decisions by outcome and by reason code, bad lines, speed.

    Feed it with :meth:`add`; call :meth:`finish` once the input is exhausted to fix ``elapsed_s``
    (until then it reads the clock). Holds counters and at most ``keep_errors`` sample error lines,
    so its memory does not grow with the input.
    """

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter, keep_errors: int = 10) -> None:
        self._clock = clock
        self._start = clock()
        self._end: float | None = None
        self._keep = keep_errors
        self.decisions = 0
        self.bad_lines = 0
        self.by_outcome: Counter[str] = Counter()
        self.by_reason: Counter[str] = Counter()
        self.errors_by_code: Counter[str] = Counter()
        self.first_errors: list[ReplayLine] = []

    def add(self, item: ReplayLine) -> None:
        """Count one replayed line."""
        record = item.record
        if record is not None:
            self.decisions += 1
            self.by_outcome["allow" if record.allowed else "deny"] += 1
            self.by_reason.update(record.reason_codes)
            return
        self.bad_lines += 1
        self.errors_by_code[item.error["code"] if item.error else INVALID_REQUEST] += 1
        if len(self.first_errors) < self._keep:
            self.first_errors.append(item)

    def finish(self) -> None:
        """Stop the clock (idempotent: the first call wins)."""
        if self._end is None:
            self._end = self._clock()

    @property
    def lines(self) -> int:
        """Non-blank lines seen: decisions plus bad lines."""
        return self.decisions + self.bad_lines

    @property
    def elapsed_s(self) -> float:
        """Seconds from creation to :meth:`finish` (or to now, before it)."""
        end = self._end if self._end is not None else self._clock()
        return max(end - self._start, 0.0)

    @property
    def decisions_per_second(self) -> float:
        """Decisions divided by elapsed seconds (0.0 when no time has passed)."""
        elapsed = self.elapsed_s
        return self.decisions / elapsed if elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (counts sorted by frequency)."""
        return {
            "lines": self.lines,
            "decisions": self.decisions,
            "by_outcome": {"allow": self.by_outcome["allow"], "deny": self.by_outcome["deny"]},
            "by_reason": dict(self.by_reason.most_common()),
            "bad_lines": self.bad_lines,
            "errors_by_code": dict(self.errors_by_code.most_common()),
            "first_errors": [e.output() for e in self.first_errors],
            "elapsed_s": round(self.elapsed_s, 6),
            "decisions_per_second": round(self.decisions_per_second, 1),
        }


class BinaryWriter(Protocol):
    """Where output lines go: anything with ``write(bytes)`` (a file opened ``"wb"``, ``sys.stdout.buffer``)."""

    def write(self, data: bytes, /) -> object: ...


def replay_to(
    engine: Engine,
    lines: Iterable[bytes | str],
    out: BinaryWriter | None,
    *,
    summary: ReplaySummary | None = None,
) -> ReplaySummary:
    """Replay ``lines`` (see :func:`replay`) and write one JSON output line per decided or bad line to ``out``.

    ``out`` None decides and counts without writing. Returns the finished summary (``summary``
    when given, so a caller can watch it while the replay runs). Bad lines are written as error
    objects and counted, never raised; write errors (``OSError``) propagate.
    """
    summary = summary if summary is not None else ReplaySummary()
    add = summary.add
    dumps = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE
    write = out.write if out is not None else None
    try:
        for item in replay(engine, lines):
            add(item)
            if write is not None:
                write(dumps(item.output(), option=option))
    finally:
        summary.finish()
    return summary


def replay_engine(workspace: str | Path, *, state: bool = False, audit: str | Path | None = None) -> Engine:
    """The engine a replay runs on.

    Default (a dry run): a scratch in-memory state store and no audit; the workspace's state
    database and audit log are neither read nor written. ``state``: the workspace's own store
    (the replay reads and trains the live profiles, tickets, quarantines) and, unless ``audit``
    names another file, its audit log. ``audit``: the replay's audit events go to that file (relative
    to the working directory; its
    checkpoints signed by ``<file>.signing.key`` unless ``state``, so a dry run writes nothing into
    the workspace; ``vigil audit verify FILE --public-key FILE.signing.pub``). Every
    event a replay writes is marked ``"replay": true``. Raises WorkspaceError (bad workspace,
    unusable store) or AuditError (audit file cannot be opened).
    """
    ws = load_workspace(workspace)
    settings = ws.settings.audit
    sink: AuditSink = NullSink()
    if audit is not None or (state and settings.sink != "none"):
        try:
            # a dry run's own log is signed by a key beside it: the workspace stays untouched
            # `audit` is relative to where the command runs (not to the workspace, as settings are)
            log = Path(audit).absolute() if audit is not None else None
            key = None if state or log is None else Path(f"{log}.signing.key")
            sink = sink_from_settings(settings, ws.path, path=log, mark=REPLAY_MARK, signing_key=key)
        except (OSError, AuditKeyError) as e:
            raise AuditError(f"cannot open the replay's audit log: {e}") from None
    options: dict[str, Any] = {"audit": sink}
    if not state:
        options["store"] = MemoryStore()
    try:
        return Engine(ws, **options)
    except BaseException:
        sink.close()
        raise
