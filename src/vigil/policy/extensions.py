"""Cedar extension types: ``decimal``, ``ipaddr``, ``datetime``, ``duration``, with Cedar 4.x semantics.

Every rule here was checked against cedarpy 4.12.2 (see ``tests/test_extensions.py``). Any failure
raises :class:`~vigil.policy.values.EvalError` and nothing else, with the message Cedar prints:

* kind ``"extension"``: a constructor's string is malformed or out of range, e.g.
  ``error while evaluating `decimal` extension function: `1` is not a well-formed decimal value``;
  also any failure while decoding a JSON ``__extn`` escape (:func:`from_json_extn`);
* kind ``"type"``: an operand has the wrong type, e.g. ``type error: expected ipaddr, got string``;
* kind ``"overflow"``: ``offset``/``durationSince``/``toDate`` leave the signed 64-bit range.

Rules worth knowing (all differ from what Python's own parsers would do):

* ``decimal``: ``-?D+.D+`` with 1..4 fraction digits; no ``+``, no exponent, no spaces; leading zeros
  are fine; the scaled value must fit an i64 (so ``-922337203685477.5808`` is the minimum).
  ``decimal("1.0") == decimal("1.0000")``. Decimals do **not** support ``<``/``<=``/``>``/``>=``
  (only ``lessThan`` & co.).
* ``ip``: strict dotted quad (no leading zeros, no short forms), RFC 4291 IPv6 text without zone ids
  and without embedded IPv4 (any string with two ``:`` and two ``.`` is rejected outright), at most
  43 bytes, prefix ``/N`` of plain digits without leading zeros, ``<= 32`` or ``<= 128``. The host
  bits are kept: ``ip("10.0.0.1/24") != ip("10.0.0.0/24")``, while ``ip("10.0.0.1") ==
  ip("10.0.0.1/32")``. An IPv4 value never equals, nor lies in the range of, an IPv6 value.
  ``isLoopback``/``isMulticast`` also require the prefix to be at least 8/128 resp. 4/8.
* ``datetime``: ``YYYY-MM-DD`` optionally followed by ``Thh:mm:ss`` then ``[.SSS]`` and ``Z`` or
  ``(+|-)hhmm`` (offset below 24h and minutes below 60; no seconds ``60``); years 0000-9999, the
  proleptic Gregorian calendar.
* ``duration``: ``-?(Nd)?(Nh)?(Nm)?(Ns)?(Nms)?`` in that order, at least one unit, one optional
  leading ``-`` applying to all, total in i64 milliseconds.
* ``toDate``/``toTime`` floor towards minus infinity (``toTime`` is never negative); ``toSeconds``
  & co. truncate towards zero.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import Any, ClassVar, Final, NoReturn, TypeVar

from vigil.policy.values import LONG_MAX, LONG_MIN, EvalError, type_name

_DAY_MS = 86_400_000


def _type_error(expected: str, value: Any) -> NoReturn:
    raise EvalError("type", f"type error: expected {expected}, got {type_name(value)}")


def _ext_error(function: str, message: str) -> NoReturn:
    raise EvalError("extension", f"error while evaluating `{function}` extension function: {message}")


def _long_or_none(digits: str) -> int | None:
    """The value of an ASCII digit string (any number of leading zeros), or None past 2**64."""
    stripped = digits.lstrip("0")
    if len(stripped) > 20:
        return None
    return int(stripped) if stripped else 0


# Parsed values are immutable, so the ip, decimal and duration constructors remember what they
# parsed from short strings: request contexts repeat the same addresses and amounts. (Timestamps
# rarely repeat, so datetimes are not remembered.) Each cache is emptied when full.
_CACHE_MAX = 4096
_CACHE_KEY_MAX = 64


_T = TypeVar("_T")
_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET
_from_bytes = int.from_bytes


def _remember(cache: dict[str, _T], text: str, value: _T) -> _T:
    if len(text) <= _CACHE_KEY_MAX:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[text] = value
    return value


# --------------------------------------------------------------------------------------------
# decimal
# --------------------------------------------------------------------------------------------

_DECIMAL_RE = re.compile(r"(-?)([0-9]+)\.([0-9]+)")
# Cedar's regex uses Unicode ``\d`` (Unicode 16 in the Rust build); Python 3.11 knows Unicode 14.
# Those digits never make a valid decimal, but they decide which error message Cedar prints.
_UNICODE_DIGIT = (
    r"(?:\d|[\U00010D40-\U00010D49\U00011BF0-\U00011BF9\U00011F50-\U00011F59\U000116D0-\U000116E3"
    r"\U00016130-\U00016139\U00016D70-\U00016D79\U0001CCF0-\U0001CCF9\U0001E4F0-\U0001E4F9"
    r"\U0001E5F1-\U0001E5FA])"
)
_DECIMAL_UNICODE_RE = re.compile(rf"(-?{_UNICODE_DIGIT}+)\.({_UNICODE_DIGIT}+)")
_DECIMAL_SCALE = (10_000, 1_000, 100, 10, 1)


class Decimal:
    """Cedar ``decimal``: a signed 64-bit integer scaled by 10**4 (at most 4 fraction digits)."""

    __slots__ = ("value",)
    cedar_type: ClassVar[str] = "decimal"

    def __init__(self, value: int) -> None:
        self.value = value

    @staticmethod
    def parse(text: str) -> Decimal:
        """Cedar ``decimal(text)``.

        Raises :class:`EvalError` (``extension``) when ``text`` is not ``-?[0-9]+.[0-9]{1,4}`` or
        the value does not fit the signed 64-bit range after scaling by 10**4.
        """
        hit = _DECIMAL_CACHE.get(text)
        if hit is not None:
            return hit
        return _remember(_DECIMAL_CACHE, text, _parse_decimal(text))

    def __eq__(self, other: object) -> bool:
        return type(other) is Decimal and other.value == self.value

    def __hash__(self) -> int:
        return hash((Decimal, self.value))

    def __repr__(self) -> str:
        v = self.value
        sign = "-" if v < 0 else ""
        whole, frac = divmod(abs(v), 10_000)
        return f'decimal("{sign}{whole}.{frac:04d}")'


_DECIMAL_CACHE: dict[str, Decimal] = {}


def _parse_decimal(text: str) -> Decimal:
    m = _DECIMAL_RE.fullmatch(text)
    if m is None:
        _decimal_error(text)
    sign, whole, frac = m.groups()
    w = _long_or_none(whole)
    if w is None:
        _ext_error("decimal", "overflow when converting to decimal")
    if sign:
        w = -w
    scaled = w * 10_000
    if not LONG_MIN <= scaled <= LONG_MAX:
        _ext_error("decimal", "overflow when converting to decimal")
    n = len(frac)
    if n > 4:
        _ext_error("decimal", f"too many digits after the decimal in `{text}`")
    f = int(frac) * _DECIMAL_SCALE[n]
    value = scaled - f if sign else scaled + f
    if not LONG_MIN <= value <= LONG_MAX:
        _ext_error("decimal", "overflow when converting to decimal")
    return Decimal(value)


def _decimal_error(text: str) -> NoReturn:
    """The error Cedar reports for a string the ASCII fast path rejected."""
    m = _DECIMAL_UNICODE_RE.fullmatch(text)
    if m is None:
        _ext_error("decimal", f"`{text}` is not a well-formed decimal value")
    whole, frac = m.groups()
    # A non-ASCII digit fails Rust's integer parse, which Cedar reports as an overflow; the
    # fraction's length is counted in UTF-8 bytes and checked before the fraction is parsed.
    if not whole.isascii():
        _ext_error("decimal", "overflow when converting to decimal")
    w = _long_or_none(whole.lstrip("-"))
    if w is None or not LONG_MIN <= (-w if whole[0] == "-" else w) * 10_000 <= LONG_MAX:
        _ext_error("decimal", "overflow when converting to decimal")
    if len(frac.encode("utf-8", "surrogatepass")) > 4:
        _ext_error("decimal", f"too many digits after the decimal in `{text}`")
    _ext_error("decimal", "overflow when converting to decimal")


def _as_decimal(value: Any) -> int:
    if type(value) is Decimal:
        return value.value
    _type_error("decimal", value)


def decimal_less_than(a: Any, b: Any) -> bool:
    """``a.lessThan(b)``; raises EvalError (``type``) unless both are decimals."""
    return _as_decimal(a) < _as_decimal(b)


def decimal_less_eq(a: Any, b: Any) -> bool:
    """``a.lessThanOrEqual(b)``; raises EvalError (``type``) unless both are decimals."""
    return _as_decimal(a) <= _as_decimal(b)


def decimal_greater(a: Any, b: Any) -> bool:
    """``a.greaterThan(b)``; raises EvalError (``type``) unless both are decimals."""
    return _as_decimal(a) > _as_decimal(b)


def decimal_greater_eq(a: Any, b: Any) -> bool:
    """``a.greaterThanOrEqual(b)``; raises EvalError (``type``) unless both are decimals."""
    return _as_decimal(a) >= _as_decimal(b)


# --------------------------------------------------------------------------------------------
# ipaddr
# --------------------------------------------------------------------------------------------

# Every valid IPv4 octet spelling maps to its value: this one lookup rejects leading zeros,
# signs, spaces, non-ASCII digits and values above 255.
_OCTETS: dict[str, int] = {str(i): i for i in range(256)}
_HEX_DIGITS = "0123456789abcdefABCDEF"
_IP_MAX_BYTES = 43  # len("ABCD:EF01:2345:6789:ABCD:EF01:2345:6789/128")


def _parse_v4(text: str) -> int | None:
    """The 32-bit value of a strict dotted quad, or None."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    octets = _OCTETS
    try:
        return (
            (octets[parts[0]] << 24) | (octets[parts[1]] << 16) | (octets[parts[2]] << 8) | octets[parts[3]]
        )
    except KeyError:
        return None


_HEX_AND_COLON = _HEX_DIGITS + ":"


def _parse_v6(text: str) -> int | None:
    """The 128-bit value of an IPv6 address in Rust's ``Ipv6Addr`` syntax minus embedded IPv4."""
    if text.strip(_HEX_AND_COLON):  # something other than hex digits and colons
        return None
    head, sep, tail = text.partition("::")
    if sep:
        groups = head.split(":") if head else []
        n = len(groups)
        if tail:
            groups += tail.split(":")
        if len(groups) > 7:
            return None
        groups[n:n] = ["0"] * (8 - len(groups))
    else:
        groups = head.split(":")
        if len(groups) != 8:
            return None
    if "" in groups or max(map(len, groups)) > 4:
        return None
    return int("".join([g.zfill(4) for g in groups]), 16)


def _parse_prefix(text: str, limit: int, max_len: int) -> int:
    n = len(text.encode("utf-8", "surrogatepass"))
    if n > max_len:
        _ext_error("ipaddr", f"error parsing prefix: string length {n} is too large")
    if not (text.isascii() and (text.isdigit() or not text)):
        _ext_error("ipaddr", f"error parsing prefix `{text}`: encountered non-digit")
    if text[:1] == "0" and text != "0":
        _ext_error("ipaddr", f"error parsing prefix `{text}`: leading zero(s)")
    if not text:
        _ext_error(
            "ipaddr", "error parsing prefix from the string ``: cannot parse integer from empty string"
        )
    value = int(text)
    if value > 255:
        _ext_error(
            "ipaddr", f"error parsing prefix from the string `{text}`: number too large to fit in target type"
        )
    if value > limit:
        _ext_error("ipaddr", f"error parsing prefix: {value} is larger than the limit {limit}")
    return value


def _v6_text(address: int) -> str:
    """RFC 5952 text (lowercase, longest run of two or more zero groups as ``::``), never dotted."""
    groups = [(address >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    best_start, best_len, start = -1, 1, -1
    for i, g in enumerate([*groups, 1]):
        if g == 0:
            if start < 0:
                start = i
        elif start >= 0:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = -1
    if best_start < 0:
        return ":".join(f"{g:x}" for g in groups)
    head = ":".join(f"{g:x}" for g in groups[:best_start])
    tail = ":".join(f"{g:x}" for g in groups[best_start + best_len :])
    return f"{head}::{tail}"


class IPAddr:
    """Cedar ``ipaddr``: an IPv4 or IPv6 address or range (address + prefix length).

    ``address`` keeps the host bits exactly as written; ``prefix`` is 32/128 for a single address.
    """

    __slots__ = ("version", "address", "prefix", "text")  # noqa: RUF023 (the order of the interface)
    cedar_type: ClassVar[str] = "ipaddr"

    def __init__(self, version: int, address: int, prefix: int, text: str | None = None) -> None:
        self.version = version
        self.address = address
        self.prefix = prefix
        # The string this value was parsed from, when it was (not part of the value: equality and
        # hashing ignore it); lets the audit writer encode it without formatting.
        self.text = text

    @staticmethod
    def parse(text: str) -> IPAddr:
        """Cedar ``ip(text)``: :func:`parse_ipaddr`."""
        return parse_ipaddr(text)

    def is_ipv4(self) -> bool:
        return self.version == 4

    def is_ipv6(self) -> bool:
        return self.version == 6

    def is_loopback(self) -> bool:
        """127.0.0.0/8 with prefix >= 8, or exactly ``::1/128``."""
        if self.version == 4:
            return self.address >> 24 == 127 and self.prefix >= 8
        return self.address == 1 and self.prefix == 128

    def is_multicast(self) -> bool:
        """224.0.0.0/4 with prefix >= 4, or ff00::/8 with prefix >= 8."""
        if self.version == 4:
            return self.address >> 28 == 0xE and self.prefix >= 4
        return self.address >> 120 == 0xFF and self.prefix >= 8

    def is_in_range(self, other: IPAddr) -> bool:
        """Whether every address of ``self`` lies in ``other``'s range (false across versions)."""
        if self.version != other.version or self.prefix < other.prefix:
            return False
        width = 32 if self.version == 4 else 128
        return (self.address ^ other.address) >> (width - other.prefix) == 0

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is IPAddr
            and other.address == self.address
            and other.prefix == self.prefix
            and other.version == self.version
        )

    def __hash__(self) -> int:
        return hash((IPAddr, self.version, self.address, self.prefix))

    def __repr__(self) -> str:
        if self.version == 4:
            a = self.address
            text = f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"
            full = 32
        else:
            text = _v6_text(self.address)
            full = 128
        if self.prefix != full:
            text = f"{text}/{self.prefix}"
        return f'ip("{text}")'


def parse_ipaddr(text: str) -> IPAddr:
    """Cedar ``ip(text)``.

    Raises :class:`EvalError` (``extension``) for anything but a strict IPv4 dotted quad or an
    IPv6 address without embedded IPv4 or zone, optionally followed by ``/prefix``.
    """
    if _LOOP_PARSE:
        address = _dotted_quad(text)
        if address >= 0:
            return _host_v4(address, text)
    hit = _IP_CACHE.get(text)
    if hit is not None:
        return hit
    if not _LOOP_PARSE and "/" not in text and ":" not in text:
        # The common case: a bare dotted quad. glibc's inet_pton accepts exactly Cedar's
        # IPv4 syntax (four decimal octets <= 255, no leading zeros, nothing else) and is
        # 3x faster than parsing in Python; anything it refuses takes the full path below,
        # which produces Cedar's error.
        try:
            address = _from_bytes(_inet_pton(_AF_INET, text), "big")
        except (OSError, ValueError, UnicodeError):
            pass
        else:
            return _remember(_IP_CACHE, text, _host_v4(address, text))
    # a dotted quad with a prefix (the lookups validate it all)
    addr, slash, prefix = text.partition("/")
    parts = addr.split(".")
    if len(parts) == 4:
        octets = _OCTETS
        try:
            ip = IPAddr(
                4,
                (octets[parts[0]] << 24)
                | (octets[parts[1]] << 16)
                | (octets[parts[2]] << 8)
                | octets[parts[3]],
                _V4_PREFIXES[prefix] if slash else 32,
                text,
            )
        except KeyError:
            pass
        else:
            return _remember(_IP_CACHE, text, ip)
    parsed = _parse_ip(text)
    parsed.text = text
    return _remember(_IP_CACHE, text, parsed)


def _host_v4(address: int, text: str) -> IPAddr:
    """``IPAddr(4, address, 32, text)`` without a Python-level ``__init__`` call (compiled, a C
    call and struct writes): the bare dotted quads of :func:`parse_ipaddr`."""
    ip = IPAddr.__new__(IPAddr)
    ip.version = 4
    ip.address = address
    ip.prefix = 32
    ip.text = text
    return ip


_IP_CACHE: dict[str, IPAddr] = {}
# Compiled, a character loop over a bare dotted quad (`_dotted_quad`) costs less than a cache
# lookup, so those skip the cache (whose inserts and clears cost the most when every address is
# new); interpreted, inet_pton and the cache are the faster pair.
_LOOP_PARSE: Final = not __file__.endswith(".py")


def _dotted_quad(text: str) -> int:
    """The address of ``text`` when it is exactly a dotted quad in Cedar's IPv4 syntax (four decimal
    octets of at most 255, ASCII digits, no leading zeros, nothing else); -1 otherwise (the caller
    then takes the full parser, which produces Cedar's error). ``tests/test_extensions.py`` checks
    it against glibc's ``inet_pton``, whose IPv4 syntax this is."""
    n = len(text)
    if n < 7 or n > 15:
        return -1
    addr = 0
    part = 0
    digits = 0
    dots = 0
    for ch in text:
        if "0" <= ch <= "9":
            if digits == 1 and part == 0:
                return -1  # a leading zero
            part = part * 10 + (ord(ch) - 48)
            if part > 255:
                return -1
            digits += 1
        elif ch == ".":
            if digits == 0 or dots == 3:
                return -1
            addr = (addr << 8) | part
            part = 0
            digits = 0
            dots += 1
        else:
            return -1
    if dots != 3 or digits == 0:
        return -1
    return (addr << 8) | part


_V4_PREFIXES: dict[str, int] = {str(i): i for i in range(33)}


def _parse_ip(text: str) -> IPAddr:
    if len(text) > _IP_MAX_BYTES or not text.isascii():
        n = len(text.encode("utf-8", "surrogatepass"))
        if n > _IP_MAX_BYTES:
            _ext_error("ipaddr", f"error parsing IP address from string `{text}`: string length is too large")
    slash = text.find("/")
    if slash < 0:
        if ":" not in text:
            v4 = _parse_v4(text)
            if v4 is not None:
                return IPAddr(4, v4, 32)
        elif text.count(":") >= 2 and text.count(".") >= 2:
            _embedded_v4_error(text)
        else:
            v6 = _parse_v6(text)
            if v6 is not None:
                return IPAddr(6, v6, 128)
        _ext_error("ipaddr", f"invalid IP address: {text}")
    if text.count(":") >= 2 and text.count(".") >= 2:
        _embedded_v4_error(text)
    addr_text = text[:slash]
    prefix_text = text[slash + 1 :]
    if ":" in addr_text:
        v6 = _parse_v6(addr_text)
        if v6 is not None:
            return IPAddr(6, v6, _parse_prefix(prefix_text, 128, 3))
    else:
        v4 = _parse_v4(addr_text)
        if v4 is not None:
            return IPAddr(4, v4, _parse_prefix(prefix_text, 32, 2))
    _ext_error("ipaddr", f"error parsing IP address from the string `{addr_text}`: invalid IP address syntax")


def _embedded_v4_error(text: str) -> NoReturn:
    _ext_error(
        "ipaddr",
        "error parsing IP address from string: We do not accept IPv4 embedded in IPv6 "
        f"(e.g., ::ffff:127.0.0.1). Found: `{text}`",
    )


def _as_ip(value: Any) -> IPAddr:
    if type(value) is IPAddr:
        return value
    _type_error("ipaddr", value)


def _is_ipv4(value: Any) -> bool:
    if type(value) is IPAddr:
        return value.version == 4
    _type_error("ipaddr", value)


def _is_ipv6(value: Any) -> bool:
    if type(value) is IPAddr:
        return value.version == 6
    _type_error("ipaddr", value)


def _is_loopback(value: Any) -> bool:
    return _as_ip(value).is_loopback()


def _is_multicast(value: Any) -> bool:
    return _as_ip(value).is_multicast()


def is_in_range(a: Any, b: Any) -> bool:
    """``a.isInRange(b)``; raises EvalError (``type``) unless both are ipaddr values."""
    if type(a) is IPAddr and type(b) is IPAddr:
        if a.version != b.version or a.prefix < b.prefix:
            return False
        return (a.address ^ b.address) >> ((32 if a.version == 4 else 128) - b.prefix) == 0
    _as_ip(a)
    _type_error("ipaddr", b)


# --------------------------------------------------------------------------------------------
# datetime and duration
# --------------------------------------------------------------------------------------------

_DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{3}))?(?:Z|([+-])([0-9]{2})([0-9]{2})))?"
)
_DATE_PREFIX_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HMS_PREFIX_RE = re.compile(r"T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _datetime_text(ms: int) -> str:
    """``(datetime("1970-01-01")).offset(duration("<ms>ms"))``, as Cedar prints a datetime."""
    return f'(datetime("1970-01-01")).offset(duration("{ms}ms"))'


class DateTime:
    """Cedar ``datetime``: milliseconds since the Unix epoch (signed 64-bit)."""

    __slots__ = ("ms",)
    cedar_type: ClassVar[str] = "datetime"

    def __init__(self, ms: int) -> None:
        self.ms = ms

    @staticmethod
    def parse(text: str) -> DateTime:
        """Cedar ``datetime(text)``.

        Accepts ``YYYY-MM-DD`` and ``YYYY-MM-DDThh:mm:ss`` + optional ``.SSS`` + ``Z`` or
        ``(+|-)hhmm``. Raises :class:`EvalError` (``extension``) for any other shape, an invalid
        calendar date or time of day, or an offset of 24h or more (or with minutes >= 60).
        """
        return _parse_datetime(text)

    def __eq__(self, other: object) -> bool:
        return type(other) is DateTime and other.ms == self.ms

    def __hash__(self) -> int:
        return hash((DateTime, self.ms))

    def __repr__(self) -> str:
        days, rem = divmod(self.ms, _DAY_MS)
        # civil_from_days (H. Hinnant), for a readable and re-parseable form within 0000-9999
        z = days + 719468
        era = z // 146097
        doe = z - era * 146097
        yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        d = doy - (153 * mp + 2) // 5 + 1
        mo = mp + 3 if mp < 10 else mp - 9
        y = yoe + era * 400 + (mo <= 2)
        if not 0 <= y <= 9999:
            return _datetime_text(self.ms)
        secs, milli = divmod(rem, 1000)
        mins, s = divmod(secs, 60)
        h, mi = divmod(mins, 60)
        return f'datetime("{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{milli:03d}Z")'


def _parse_datetime(text: str) -> DateTime:
    m = _DATETIME_RE.fullmatch(text)
    if m is None:
        _datetime_pattern_error(text)
    ys, mos, ds, hs, mis, ss, mss, osign, ohs, oms = m.groups()
    y, mo, d = int(ys), int(mos), int(ds)
    if not (
        1 <= mo <= 12
        and d >= 1
        and (d <= _MONTH_DAYS[mo] or (mo == 2 and d == 29 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)))
    ):
        _ext_error("datetime", f"invalid date: {text[:10]}")
    ms = _days_from_civil(y, mo, d) * _DAY_MS
    if hs is None:
        return DateTime(ms)
    h, mi, s = int(hs), int(mis), int(ss)
    if h > 23 or mi > 59 or s > 59:
        _ext_error("datetime", f"invalid hour/minute/second: {text[11:19]}")
    ms += ((h * 60 + mi) * 60 + s) * 1000
    if mss is not None:
        ms += int(mss)
    if osign is not None:
        oh, om = int(ohs), int(oms)
        if oh >= 24 or om >= 60:
            _ext_error("datetime", f"invalid offset range: {oh}{om}")
        offset = (oh * 60 + om) * 60_000
        ms += -offset if osign == "+" else offset
    return DateTime(ms)


def _datetime_pattern_error(text: str) -> NoReturn:
    """The error Cedar reports for a string that does not have the datetime shape."""
    if _DATE_PREFIX_RE.match(text) is None:
        _ext_error("datetime", "invalid date pattern")
    if _HMS_PREFIX_RE.match(text, 10) is None:
        _ext_error("datetime", "invalid hour/minute/second pattern")
    _ext_error("datetime", "invalid millisecond and/or offset pattern")


_DURATION_RE = re.compile(r"(-?)(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?")
_DURATION_UNITS = (86_400_000, 3_600_000, 60_000, 1000, 1)


class Duration:
    """Cedar ``duration``: signed 64-bit milliseconds."""

    __slots__ = ("ms",)
    cedar_type: ClassVar[str] = "duration"

    def __init__(self, ms: int) -> None:
        self.ms = ms

    @staticmethod
    def parse(text: str) -> Duration:
        """Cedar ``duration(text)``: ``-?(Nd)?(Nh)?(Nm)?(Ns)?(Nms)?`` with at least one unit.

        Raises :class:`EvalError` (``extension``) for another shape or a total outside the signed
        64-bit range of milliseconds.
        """
        hit = _DURATION_CACHE.get(text)
        if hit is not None:
            return hit
        return _remember(_DURATION_CACHE, text, _parse_duration(text))

    def __eq__(self, other: object) -> bool:
        return type(other) is Duration and other.ms == self.ms

    def __hash__(self) -> int:
        return hash((Duration, self.ms))

    def __repr__(self) -> str:
        return f'duration("{self.ms}ms")'


_DURATION_CACHE: dict[str, Duration] = {}


def _parse_duration(text: str) -> Duration:
    m = _DURATION_RE.fullmatch(text)
    if m is None or text == "" or text == "-":
        _ext_error("duration", "invalid duration pattern")
    sign, *parts = m.groups()
    total = 0
    for digits, unit in zip(parts, _DURATION_UNITS, strict=True):
        if digits is not None:
            n = _long_or_none(digits)
            if n is None:
                _ext_error("duration", "Duration overflows internal representation")
            total += n * unit
    if sign:
        total = -total
    if not LONG_MIN <= total <= LONG_MAX:
        _ext_error("duration", "Duration overflows internal representation")
    return Duration(total)


def _datetime_ms(value: Any) -> int:
    if type(value) is DateTime:
        return value.ms
    _type_error("datetime", value)


def _duration_ms(value: Any) -> int:
    if type(value) is Duration:
        return value.ms
    _type_error("duration", value)


def offset(dt: Any, dur: Any) -> DateTime:
    """``dt.offset(dur)``; raises EvalError ``type`` on wrong operands, ``overflow`` past i64."""
    a = _datetime_ms(dt)
    b = _duration_ms(dur)
    r = a + b
    if LONG_MIN <= r <= LONG_MAX:
        return DateTime(r)
    raise EvalError(
        "overflow",
        "error while evaluating `offset` extension function: overflows when adding an offset: "
        f"{_datetime_text(a)}+({b}ms)",
    )


def duration_since(a: Any, b: Any) -> Duration:
    """``a.durationSince(b)``; raises EvalError ``type`` on wrong operands, ``overflow`` past i64."""
    x = _datetime_ms(a)
    y = _datetime_ms(b)
    r = x - y
    if LONG_MIN <= r <= LONG_MAX:
        return Duration(r)
    raise EvalError(
        "overflow",
        "error while evaluating `durationSince` extension function: overflows when computing the "
        f"duration between {_datetime_text(x)} and {_datetime_text(y)}",
    )


def to_date(value: Any) -> DateTime:
    """``value.toDate()``: midnight at or before ``value``; EvalError ``overflow`` below i64."""
    ms = _datetime_ms(value)
    r = ms - ms % _DAY_MS
    if r >= LONG_MIN:
        return DateTime(r)
    raise EvalError(
        "overflow",
        "error while evaluating `toDate` extension function: overflows when computing the date of "
        f"{_datetime_text(ms)}",
    )


def to_time(value: Any) -> Duration:
    """``value.toTime()``: the time since the preceding midnight, in ``[0, 1 day)``."""
    return Duration(_datetime_ms(value) % _DAY_MS)


def _trunc_div(ms: int, unit: int) -> int:
    return ms // unit if ms >= 0 else -(-ms // unit)


def _to_milliseconds(value: Any) -> int:
    return _duration_ms(value)


def _to_seconds(value: Any) -> int:
    return _trunc_div(_duration_ms(value), 1000)


def _to_minutes(value: Any) -> int:
    return _trunc_div(_duration_ms(value), 60_000)


def _to_hours(value: Any) -> int:
    return _trunc_div(_duration_ms(value), 3_600_000)


def _to_days(value: Any) -> int:
    return _trunc_div(_duration_ms(value), _DAY_MS)


# --------------------------------------------------------------------------------------------
# comparison operators
# --------------------------------------------------------------------------------------------


def compare(op: str, a: Any, b: Any) -> bool:
    """Cedar ``<``/``<=``/``>``/``>=`` (``op`` = ``less``/``less_eq``/``greater``/``greater_eq``).

    Cedar 4 orders Longs, datetimes and durations (each only with its own type); anything else,
    decimals included, raises :class:`EvalError` (``type``) with Cedar's message.
    """
    ta = type(a)
    tb = type(b)
    if ta is tb and (ta is DateTime or ta is Duration or ta is int):
        x = a if ta is int else a.ms
        y = b if ta is int else b.ms
        if op == "less":
            return bool(x < y)
        if op == "less_eq":
            return bool(x <= y)
        if op == "greater":
            return bool(x > y)
        return bool(x >= y)
    if ta is int:
        _type_error("long", b)
    if tb is int:
        _type_error("long", a)
    if ta is DateTime:
        _type_error("datetime", b)
    if ta is Duration:
        _type_error("duration", b)
    if tb is DateTime:
        _type_error("datetime", a)
    if tb is Duration:
        _type_error("duration", a)
    _type_error("one of [long, datetime, duration]", a)


# --------------------------------------------------------------------------------------------
# dispatch tables
# --------------------------------------------------------------------------------------------


def _constructor(name: str, parse: Callable[[str], Any], cache: dict[str, Any]) -> Callable[[Any], Any]:
    """Cedar ``name(value)``: looks in ``parse``'s cache first, then calls it."""
    remembered = cache.get

    def construct(value: Any) -> Any:
        if type(value) is str:
            hit = remembered(value)
            if hit is not None:
                return hit
            return parse(value)
        _type_error("string", value)

    construct.__name__ = f"construct_{name}"
    construct.__doc__ = f"Cedar ``{name}(value)``; raises EvalError (``type``) unless ``value`` is a String."
    return construct


def _construct_datetime(value: Any) -> DateTime:
    """Cedar ``datetime(value)``; raises EvalError (``type``) unless ``value`` is a String."""
    if type(value) is str:
        return _parse_datetime(value)
    _type_error("string", value)


UNARY_OPS: dict[str, Callable[[Any], Any]] = {
    "datetime": _construct_datetime,
    "decimal": _constructor("decimal", Decimal.parse, _DECIMAL_CACHE),
    "duration": _constructor("duration", Duration.parse, _DURATION_CACHE),
    "ip": _constructor("ip", IPAddr.parse, _IP_CACHE),
    "is_ipv4": _is_ipv4,
    "is_ipv6": _is_ipv6,
    "is_loopback": _is_loopback,
    "is_multicast": _is_multicast,
    "to_date": to_date,
    "to_time": to_time,
    "to_milliseconds": _to_milliseconds,
    "to_seconds": _to_seconds,
    "to_minutes": _to_minutes,
    "to_hours": _to_hours,
    "to_days": _to_days,
}
"""Extension operations of one operand, keyed by ``cedarpy.pst.UnaryOpName``."""

BINARY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "is_in_range": is_in_range,
    "offset": offset,
    "duration_since": duration_since,
    "decimal_less_than": decimal_less_than,
    "decimal_less_eq": decimal_less_eq,
    "decimal_greater": decimal_greater,
    "decimal_greater_eq": decimal_greater_eq,
}
"""Extension operations of two operands, keyed by ``cedarpy.pst.BinaryOpName``."""

CONSTRUCTORS: dict[str, Callable[[str], Any]] = {
    "decimal": Decimal.parse,
    "ip": IPAddr.parse,
    "ipaddr": IPAddr.parse,  # the type's name; Cedar itself has no function called `ipaddr`
    "datetime": DateTime.parse,
    "duration": Duration.parse,
}

# --------------------------------------------------------------------------------------------
# JSON ``__extn`` escapes
# --------------------------------------------------------------------------------------------

# Every Cedar extension function, by its Cedar name; a JSON escape may call any of them.
_JSON_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "decimal": (1, UNARY_OPS["decimal"]),
    "ip": (1, UNARY_OPS["ip"]),
    "datetime": (1, UNARY_OPS["datetime"]),
    "duration": (1, UNARY_OPS["duration"]),
    "isIpv4": (1, _is_ipv4),
    "isIpv6": (1, _is_ipv6),
    "isLoopback": (1, _is_loopback),
    "isMulticast": (1, _is_multicast),
    "toDate": (1, to_date),
    "toTime": (1, to_time),
    "toMilliseconds": (1, _to_milliseconds),
    "toSeconds": (1, _to_seconds),
    "toMinutes": (1, _to_minutes),
    "toHours": (1, _to_hours),
    "toDays": (1, _to_days),
    "isInRange": (2, is_in_range),
    "offset": (2, offset),
    "durationSince": (2, duration_since),
    "lessThan": (2, decimal_less_than),
    "lessThanOrEqual": (2, decimal_less_eq),
    "greaterThan": (2, decimal_greater),
    "greaterThanOrEqual": (2, decimal_greater_eq),
}
_MAX_JSON_DEPTH = 32


def _json_arg(value: Any, depth: int) -> Any:
    """One argument of an escape: a string, or a nested ``{"__extn": ...}`` call."""
    if type(value) is str:
        return value
    if type(value) is dict and len(value) == 1 and "__extn" in value:
        spec = value["__extn"]
        if type(spec) is dict and type(spec.get("fn")) is str:
            if "arg" in spec:
                return _json_call(spec["fn"], [spec["arg"]], depth + 1)
            if type(spec.get("args")) is list:
                return _json_call(spec["fn"], spec["args"], depth + 1)
    raise EvalError(
        "extension", f"extension function argument is neither a string nor an `__extn` call: {value!r}"
    )


def _json_call(fn: str, args: list[Any], depth: int) -> Any:
    if depth > _MAX_JSON_DEPTH:
        raise EvalError("extension", f"`__extn` calls nested deeper than {_MAX_JSON_DEPTH} levels")
    entry = _JSON_FUNCTIONS.get(fn)
    if entry is None:
        raise EvalError("extension", f"extension function `{fn}` does not exist")
    arity, function = entry
    if len(args) != arity:
        raise EvalError(
            "extension",
            f"wrong number of arguments provided to extension function `{fn}`: expected {arity}, got {len(args)}",
        )
    values = [_json_arg(a, depth) for a in args]
    try:
        return function(*values)
    except EvalError as e:
        if e.kind == "extension":
            raise
        raise EvalError("extension", str(e)) from None


def from_json_extn(fn: str, arg: Any) -> Any:
    """The value of the JSON escape ``{"__extn": {"fn": fn, "arg": arg}}``.

    Cedar's JSON accepts *any* extension function by its Cedar name (``decimal``, ``ip``,
    ``datetime``, ``duration``, ``offset``, ``toDate``, ``isInRange``, ``lessThan``...; not
    ``ipaddr``), so the result may also be a Long or a Bool. Each argument is a JSON string or a
    nested ``{"__extn": ...}``. A list ``arg`` is taken as the argument list of the
    ``{"fn": ..., "args": [...]}`` form (use :func:`from_json_extn_args` to be unambiguous).

    Raises :class:`EvalError` (always kind ``extension``) for an unknown function, a wrong number
    or type of arguments, or an argument the function rejects.
    """
    if type(arg) is list:
        return _json_call(fn, arg, 0)
    return _json_call(fn, [arg], 0)


def from_json_extn_args(fn: str, args: list[Any]) -> Any:
    """The value of ``{"__extn": {"fn": fn, "args": args}}``; raises as :func:`from_json_extn`.

    Cedar reads ``arg`` when both ``arg`` and ``args`` are present, and treats an object with a
    non-string ``fn``, a non-list ``args``, or neither key as a plain record, not as an escape.
    """
    return _json_call(fn, args, 0)
