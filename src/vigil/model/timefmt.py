"""RFC 3339 date-times: the one parser of every time vigil reads (requests, replay, behaviour).

Accepted (RFC 3339 section 5.6 ``date-time``, strictly): ``YYYY-MM-DDTHH:MM:SS[.F]`` followed by
``Z`` or ``+HH:MM``/``-HH:MM``; ``T`` and ``Z`` may be lower-case. Only ASCII digits (a Unicode
digit such as ``²`` is refused, never read as a number); year 0001-9999; a real calendar date;
hour 00-23, minute 00-59, second 00-59 (no leap second); 1 to 9 fraction digits (truncated to
microseconds); offset hours 00-23 and minutes 00-59; the offset is required. At most 64 characters.
Anything else raises :class:`TimeFormatError` (``invalid_time``), and nothing else is raised.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from vigil.errors import RequestError

MAX_LENGTH: Final = 64
_CACHE_LIMIT: Final = 65_536
# "YYYY-MM-DDTHH:MM" of "...:SSZ" texts that parsed -> epoch of that minute: a stream of requests
# repeats its minute many times, so only the seconds are read again (a full parse costs ~2 us).
_MINUTES: dict[str, float] = {}
_OFFSETS: dict[int, timezone] = {0: UTC}


class TimeFormatError(RequestError):
    """A time that is not a strict RFC 3339 date-time with an offset (``invalid_time``)."""

    code = "invalid_time"


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 64 else text[:61] + "..."


def _digits(text: str, start: int, end: int) -> int:
    """The ASCII decimal number ``text[start:end]``; -1 when it is anything else."""
    part = text[start:end]
    if len(part) != end - start or not (part.isascii() and part.isdigit()):
        return -1
    return int(part)


def parse_datetime(text: Any) -> datetime:
    """``text`` as an aware datetime (its own offset kept).

    Raises TimeFormatError (``invalid_time``) for anything but a strict RFC 3339 date-time with an
    offset (see the module documentation), a non-string included; never raises anything else.
    """
    if type(text) is not str or len(text) > MAX_LENGTH or len(text) < 20:
        raise TimeFormatError(f"time {_quote(text)} is not an RFC 3339 date-time with an offset")
    year = _digits(text, 0, 4)
    month = _digits(text, 5, 7)
    day = _digits(text, 8, 10)
    hour = _digits(text, 11, 13)
    minute = _digits(text, 14, 16)
    second = _digits(text, 17, 19)
    if (
        min(year, month, day, hour, minute, second) < 0
        or text[4] != "-"
        or text[7] != "-"
        or text[10] not in "Tt"
        or text[13] != ":"
        or text[16] != ":"
    ):
        raise TimeFormatError(f"time {_quote(text)} is not an RFC 3339 date-time with an offset")
    i = 19
    micros = 0
    if text[i] == ".":
        j = i + 1
        while j < len(text) and "0" <= text[j] <= "9":
            j += 1
        n = j - i - 1
        if not 1 <= n <= 9:
            raise TimeFormatError(f"time {_quote(text)} has a fraction of 1 to 9 digits")
        micros = int((text[i + 1 : j] + "00000")[:6])
        i = j
    rest = text[i:]
    if rest in ("Z", "z"):
        tz: timezone = UTC
    else:
        oh = _digits(rest, 1, 3)
        om = _digits(rest, 4, 6)
        if len(rest) != 6 or rest[0] not in "+-" or rest[3] != ":" or oh < 0 or om < 0 or oh > 23 or om > 59:
            raise TimeFormatError(f"time {_quote(text)} has no valid offset ('Z' or +hh:mm)")
        offset = (oh * 60 + om) * (1 if rest[0] == "+" else -1)
        got = _OFFSETS.get(offset)
        if got is None:
            got = timezone(timedelta(minutes=offset))
            if len(_OFFSETS) < 4_096:
                _OFFSETS[offset] = got
        tz = got
    if hour > 23 or minute > 59 or second > 59:
        raise TimeFormatError(f"time {_quote(text)} is not a valid time of day")
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
    except ValueError:  # year 0, month 13, February 30, ...
        raise TimeFormatError(f"time {_quote(text)} is not a valid date") from None


def parse_epoch(text: Any) -> float:
    """``text`` as epoch seconds; raises TimeFormatError exactly as :func:`parse_datetime` does."""
    # The common form "YYYY-MM-DDTHH:MM:SSZ" of a minute already seen: read the seconds only.
    if type(text) is str and len(text) == 20 and text[19] == "Z":
        base = _MINUTES.get(text[:16])
        if base is not None and text[16] == ":":
            sec = _digits(text, 17, 19)
            if 0 <= sec <= 59:
                return base + sec
    t = parse_datetime(text).timestamp()
    if len(text) == 20 and text[19] == "Z":
        if len(_MINUTES) >= _CACHE_LIMIT:
            _MINUTES.clear()
        _MINUTES[text[:16]] = t - int(text[17:19])
    return t


def format_rfc3339(value: datetime) -> str:
    """An aware datetime as RFC 3339 (``2026-01-01T00:00:00.5+02:00``; ``Z`` for UTC), which
    :func:`parse_datetime` reads back equal. Raises ValueError for a naive datetime."""
    if value.tzinfo is None:
        raise ValueError("a naive datetime has no RFC 3339 form")
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
