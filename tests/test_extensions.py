"""Cedar extension types, checked against cedarpy (Cedar 4.12) as the reference.

Explicit cases pin each rule found by probing cedarpy; the differential tests then evaluate
vigil and cedarpy side by side on generated inputs, comparing values and exact error messages.
Expressions are batched: one policy per expression in one policy set, one cedarpy call per batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import cedarpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.profiles import examples
from vigil.policy.extensions import (
    BINARY_OPS,
    CONSTRUCTORS,
    UNARY_OPS,
    DateTime,
    Decimal,
    Duration,
    IPAddr,
    _dotted_quad,
    compare,
    from_json_extn,
    from_json_extn_args,
)
from vigil.policy.values import LONG_MAX, LONG_MIN, EvalError, Record, make_set

# ------------------------------------------------------------------------------------------------
# harness
# ------------------------------------------------------------------------------------------------

_REQUEST = {"principal": 'U::"a"', "action": 'A::"a"', "resource": 'R::"a"'}
_ERROR_LINE = re.compile(r"error while evaluating policy `policy(\d+)`: (.*)", re.S)

Outcome = tuple[str, str]  # ("T" | "F" | "E", error message or "")


def cedar(exprs: list[str], context: dict[str, Any] | None = None) -> list[Outcome]:
    """Evaluate each Cedar boolean expression (one policy each) in a single cedarpy call."""
    policies = "\n".join(f"permit(principal, action, resource) when {{ {e} }};" for e in exprs)
    result = cedarpy.is_authorized(dict(_REQUEST, context=context or {}), policies, "[]")
    out: list[Outcome] = [("F", "")] * len(exprs)
    for pid in result.diagnostics.reasons:
        out[int(pid.removeprefix("policy"))] = ("T", "")
    for line in result.diagnostics.errors:
        m = _ERROR_LINE.fullmatch(line)
        assert m, f"cedarpy did not evaluate the batch: {line}"
        out[int(m.group(1))] = ("E", m.group(2))
    return out


def vigil(fn: Callable[..., Any], *args: Any) -> tuple[Outcome, Any]:
    """Run ``fn(*args)``; a bool result is ("T"|"F"), an EvalError ("E", message)."""
    try:
        value = fn(*args)
    except EvalError as e:
        return ("E", str(e)), None
    if value is True or value is False:
        return ("T" if value else "F", ""), value
    return ("T", ""), value


def literal(value: Any, context: dict[str, Any]) -> str:
    """A Cedar expression for a vigil value (ints go through the context, for i64::MIN)."""
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        name = f"n{len(context)}"
        context[name] = value
        return f"context.{name}"
    return repr(value)


class Batch:
    """Pairs of (Cedar expression, expected outcome), checked in one cedarpy call."""

    def __init__(self) -> None:
        self.exprs: list[str] = []
        self.expected: list[Outcome] = []
        self.labels: list[str] = []
        self.context: dict[str, Any] = {}

    def string(self, s: str) -> str:
        name = f"s{len(self.context)}"
        self.context[name] = s
        return f"context.{name}"

    def add(self, cedar_expr: str, fn: Callable[..., Any], *args: Any, label: str = "") -> None:
        """Expect ``cedar_expr`` to evaluate like ``fn(*args)`` (a value is compared with ``==``)."""
        outcome, value = vigil(fn, *args)
        if outcome[0] == "E" or type(value) is bool:
            self.exprs.append(cedar_expr)
        else:
            self.exprs.append(f"({cedar_expr}) == {literal(value, self.context)}")
        self.expected.append(outcome)
        self.labels.append(label or cedar_expr)

    def check(self) -> None:
        if not self.exprs:
            return
        got = cedar(self.exprs, self.context)
        bad = [
            f"{label!r}: cedar {g} vigil {e}"
            for label, g, e in zip(self.labels, got, self.expected, strict=True)
            if g != e
        ]
        assert not bad, "\n".join(bad)


def err(thunk: Callable[[], Any]) -> EvalError:
    with pytest.raises(EvalError) as info:
        thunk()
    return info.value


# ------------------------------------------------------------------------------------------------
# explicit rules: decimal
# ------------------------------------------------------------------------------------------------

DECIMAL_OK = {
    "1.0": 10_000,
    "-1.0": -10_000,
    "0001.5": 15_000,
    "1.2345": 12_345,
    "-0.5": -5_000,  # the sign applies to the fraction even when the whole part is 0
    "-0.0": 0,
    "-0.0000": 0,
    "922337203685477.5807": LONG_MAX,
    "-922337203685477.5808": LONG_MIN,
    "-0922337203685477.5808": LONG_MIN,
    "0" * 5000 + "1.5": 15_000,  # leading zeros are unlimited
}
DECIMAL_BAD = {
    "1": "`1` is not a well-formed decimal value",
    "1.": "`1.` is not a well-formed decimal value",
    ".1": "`.1` is not a well-formed decimal value",
    "+1.0": "`+1.0` is not a well-formed decimal value",
    "--1.0": "`--1.0` is not a well-formed decimal value",
    "1e3": "`1e3` is not a well-formed decimal value",
    " 1.0": "` 1.0` is not a well-formed decimal value",
    "1.0\n": "`1.0\n` is not a well-formed decimal value",
    "1_0.0": "`1_0.0` is not a well-formed decimal value",
    "": "`` is not a well-formed decimal value",
    "1.00000": "too many digits after the decimal in `1.00000`",
    "-922337203685477.58080": "too many digits after the decimal in `-922337203685477.58080`",
    "922337203685477.5808": "overflow when converting to decimal",
    "-922337203685477.5809": "overflow when converting to decimal",
    "922337203685478.0": "overflow when converting to decimal",
    "99999999999999999999.00000": "overflow when converting to decimal",  # overflow checked first
    "\u0661.\u0660": "overflow when converting to decimal",  # Unicode digits match, then fail to parse
    "1.\u0661\u0661\u0661": "too many digits after the decimal in `1.\u0661\u0661\u0661`",  # length counted in UTF-8 bytes
    "\U00011f50.0": "overflow when converting to decimal",  # Unicode 15 digit (Python 3.11: 14)
}


@pytest.mark.parametrize(("text", "value"), DECIMAL_OK.items())
def test_decimal_parse_ok(text: str, value: int) -> None:
    assert Decimal.parse(text) == Decimal(value)


@pytest.mark.parametrize(("text", "message"), DECIMAL_BAD.items())
def test_decimal_parse_errors(text: str, message: str) -> None:
    e = err(lambda: Decimal.parse(text))
    assert e.kind == "extension"
    assert str(e) == f"error while evaluating `decimal` extension function: {message}"


def test_decimal_equality_and_repr() -> None:
    assert Decimal.parse("1.0") == Decimal.parse("1.00") == Decimal.parse("1.0000")
    assert hash(Decimal.parse("1.0")) == hash(Decimal.parse("001.00"))
    assert Decimal(10_000) != 10_000 and Decimal(0) != Duration(0)
    assert repr(Decimal.parse("-0.5")) == 'decimal("-0.5000")'
    assert repr(Decimal(LONG_MIN)) == 'decimal("-922337203685477.5808")'
    assert len({Decimal(1), Decimal(1), Decimal(2)}) == 2


def test_decimal_comparisons() -> None:
    one, two = Decimal.parse("1.0"), Decimal.parse("2.0")
    assert BINARY_OPS["decimal_less_than"](one, two)
    assert not BINARY_OPS["decimal_less_than"](one, one)
    assert BINARY_OPS["decimal_less_eq"](one, one)
    assert BINARY_OPS["decimal_greater"](two, one)
    assert BINARY_OPS["decimal_greater_eq"](one, one)
    e = err(lambda: BINARY_OPS["decimal_less_than"](one, 1))
    assert (e.kind, str(e)) == ("type", "type error: expected decimal, got long")
    # decimals are not ordered by < <= > >= in Cedar 4.12
    e = err(lambda: compare("less", one, two))
    assert str(e) == "type error: expected one of [long, datetime, duration], got decimal"


# ------------------------------------------------------------------------------------------------
# explicit rules: ipaddr
# ------------------------------------------------------------------------------------------------

IP_OK = {
    "1.2.3.4": (4, 0x01020304, 32),
    "0.0.0.0": (4, 0, 32),
    "255.255.255.255": (4, 0xFFFFFFFF, 32),
    "10.0.0.1/24": (4, 0x0A000001, 24),  # host bits kept
    "1.2.3.4/0": (4, 0x01020304, 0),
    "::": (6, 0, 128),
    "::1": (6, 1, 128),
    "::/0": (6, 0, 0),
    "1::": (6, 1 << 112, 128),
    "1:2:3:4:5:6:7::": (6, 0x00010002000300040005000600070000, 128),  # :: may stand for one group
    "::2:3:4:5:6:7:8": (6, 0x00000002000300040005000600070008, 128),
    "Ab:cD::": (6, 0x00AB00CD << 96, 128),
    "0001::": (6, 1 << 112, 128),
    "abcd:ef01:2345:6789:abcd:ef01:2345:6789/128": (6, 0xABCDEF0123456789ABCDEF0123456789, 128),
}
IP_BAD = {
    "01.2.3.4": "invalid IP address: 01.2.3.4",  # no leading zeros
    "1.2.3.04": "invalid IP address: 1.2.3.04",
    "256.1.1.1": "invalid IP address: 256.1.1.1",
    "1.2.3": "invalid IP address: 1.2.3",
    "1.2.3.4.5": "invalid IP address: 1.2.3.4.5",
    " 1.2.3.4": "invalid IP address:  1.2.3.4",
    "0x1.2.3.4": "invalid IP address: 0x1.2.3.4",
    "\u0661.2.3.4": "invalid IP address: \u0661.2.3.4",
    "": "invalid IP address: ",
    "[::1]": "invalid IP address: [::1]",
    "fe80::1%eth0": "invalid IP address: fe80::1%eth0",
    "1:2:3:4:5:6:7:8:9": "invalid IP address: 1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::": "invalid IP address: 1:2:3:4:5:6:7:8::",
    "1:2:3:4::5:6:7:8": "invalid IP address: 1:2:3:4::5:6:7:8",
    "1::2::3": "invalid IP address: 1::2::3",
    ":::": "invalid IP address: :::",
    "00001::": "invalid IP address: 00001::",
    "1::1.2": "invalid IP address: 1::1.2",
    "1.2.3.4:80": "invalid IP address: 1.2.3.4:80",
    "::ffff:1.2.3.4": "error parsing IP address from string: We do not accept IPv4 embedded in IPv6 "
    "(e.g., ::ffff:127.0.0.1). Found: `::ffff:1.2.3.4`",
    "::ffff:1.2.3/1": "error parsing IP address from string: We do not accept IPv4 embedded in IPv6 "
    "(e.g., ::ffff:127.0.0.1). Found: `::ffff:1.2.3/1`",
    "1.2.3.4/33": "error parsing prefix: 33 is larger than the limit 32",
    "::1/129": "error parsing prefix: 129 is larger than the limit 128",
    "::1/999": "error parsing prefix from the string `999`: number too large to fit in target type",
    "1.2.3.4/08": "error parsing prefix `08`: leading zero(s)",
    "1.2.3.4/00": "error parsing prefix `00`: leading zero(s)",
    "1.2.3.4/+8": "error parsing prefix `+8`: encountered non-digit",
    "1.2.3.4/-1": "error parsing prefix `-1`: encountered non-digit",
    "1.2.3.4/": "error parsing prefix from the string ``: cannot parse integer from empty string",
    "1.2.3.4/8/8": "error parsing prefix: string length 3 is too large",
    "::1/0128": "error parsing prefix: string length 4 is too large",
    "/8": "error parsing IP address from the string ``: invalid IP address syntax",
    "0abcd::/12": "error parsing IP address from the string `0abcd::`: invalid IP address syntax",
    "abcd:ef01:2345:6789:abcd:ef01:2345:6789/1280": "error parsing IP address from string "
    "`abcd:ef01:2345:6789:abcd:ef01:2345:6789/1280`: string length is too large",
}


@pytest.mark.parametrize(("text", "fields"), IP_OK.items())
def test_ip_parse_ok(text: str, fields: tuple[int, int, int]) -> None:
    ip = IPAddr.parse(text)
    assert (ip.version, ip.address, ip.prefix) == fields
    assert IPAddr.parse(repr(ip)[4:-2]) == ip  # the repr round-trips


@pytest.mark.parametrize(("text", "message"), IP_BAD.items())
def test_ip_parse_errors(text: str, message: str) -> None:
    e = err(lambda: IPAddr.parse(text))
    assert e.kind == "extension"
    assert str(e) == f"error while evaluating `ipaddr` extension function: {message}"


def test_ip_equality() -> None:
    assert IPAddr.parse("10.0.0.1") == IPAddr.parse("10.0.0.1/32")
    assert IPAddr.parse("10.0.0.1/24") != IPAddr.parse("10.0.0.0/24")
    assert IPAddr.parse("::1") == IPAddr.parse("0:0:0:0:0:0:0:1")
    assert IPAddr.parse("1.2.3.4") != IPAddr.parse("::ffff:102:304")
    assert IPAddr(4, 0, 0) != IPAddr(6, 0, 0)
    assert hash(IPAddr.parse("::1")) == hash(IPAddr.parse("::0:1"))
    assert repr(IPAddr.parse("10.0.0.1/24")) == 'ip("10.0.0.1/24")'
    assert repr(IPAddr.parse("1:0:0:1:0:0:0:1")) == 'ip("1:0:0:1::1")'
    assert repr(IPAddr.parse("::ffff:7f00:1")) == 'ip("::ffff:7f00:1")'


@pytest.mark.parametrize(
    ("text", "loopback", "multicast"),
    [
        ("127.0.0.1", True, False),
        ("127.0.0.1/8", True, False),
        ("127.0.0.1/7", False, False),  # prefix must stay inside 127.0.0.0/8
        ("::1", True, False),
        ("::1/127", False, False),
        ("::ffff:7f00:1", False, False),  # v4-mapped written in hex is plain IPv6
        ("224.0.0.1/4", False, True),
        ("224.0.0.1/3", False, False),
        ("239.255.255.255", False, True),
        ("240.0.0.0", False, False),
        ("ff00::/8", False, True),
        ("ff00::/7", False, False),
        ("ffff::1/9", False, True),
    ],
)
def test_ip_loopback_multicast(text: str, loopback: bool, multicast: bool) -> None:
    ip = IPAddr.parse(text)
    assert UNARY_OPS["is_loopback"](ip) is loopback
    assert UNARY_OPS["is_multicast"](ip) is multicast


def test_ip_in_range() -> None:
    r = BINARY_OPS["is_in_range"]
    p = IPAddr.parse
    assert r(p("10.1.2.3"), p("10.0.0.0/8"))
    assert r(p("10.0.0.0/8"), p("10.0.0.0/8"))
    assert r(p("10.0.0.7/8"), p("10.0.0.0/8"))  # host bits do not matter for ranges
    assert not r(p("10.0.0.0/7"), p("10.0.0.0/8"))
    assert r(p("1.2.3.4"), p("0.0.0.0/0"))
    assert not r(p("1.2.3.4"), p("::/0"))  # never across versions
    assert r(p("2001:db8::1"), p("2001:db8::/32"))
    e = err(lambda: r(p("1.2.3.4"), "1.2.3.4"))
    assert (e.kind, str(e)) == ("type", "type error: expected ipaddr, got string")
    assert UNARY_OPS["is_ipv4"](p("1.2.3.4")) and UNARY_OPS["is_ipv6"](p("::"))


# ------------------------------------------------------------------------------------------------
# explicit rules: datetime and duration
# ------------------------------------------------------------------------------------------------

DATETIME_OK = {
    "1970-01-01": 0,
    "2024-10-15": 1_728_950_400_000,
    "2024-10-15T11:38:02Z": 1_728_992_282_000,
    "2024-10-15T11:38:02.101Z": 1_728_992_282_101,
    "2024-10-15T11:38:02.101+1134": 1_728_950_642_101,
    "2024-10-15T11:38:02-1134": 1_729_033_922_000,
    "2024-10-15T23:59:00+2359": 1_728_950_400_000,
    "1969-12-31T23:59:59.999Z": -1,
    "2024-02-29": 1_709_164_800_000,
    "0000-01-01": -62_167_219_200_000,  # year 0 exists (proleptic Gregorian)
    "0000-02-29": -62_162_121_600_000,  # and is a leap year
    "9999-12-31T23:59:59.999-2359": 253_402_387_139_999,
}
DATETIME_BAD = {
    "": "invalid date pattern",
    "+2024-01-01": "invalid date pattern",
    "2024-1-01": "invalid date pattern",
    "10000-01-01": "invalid date pattern",
    "\u0662\u0660\u0662\u0664-01-01": "invalid date pattern",
    "2024-10-15Z": "invalid hour/minute/second pattern",
    "2024-10-15T": "invalid hour/minute/second pattern",
    "2024-10-15 11:38:02Z": "invalid hour/minute/second pattern",
    "2024-10-15t11:38:02Z": "invalid hour/minute/second pattern",
    "2024-10-15T11:38:02": "invalid millisecond and/or offset pattern",  # a zone is required
    "2024-10-15T11:38:02z": "invalid millisecond and/or offset pattern",
    "2024-10-15T11:38:02.1Z": "invalid millisecond and/or offset pattern",  # exactly 3 digits
    "2024-10-15T11:38:02.1234Z": "invalid millisecond and/or offset pattern",
    "2024-10-15T11:38:02+11:34": "invalid millisecond and/or offset pattern",
    "2024-10-15T11:38:02ZZ": "invalid millisecond and/or offset pattern",
    "2023-02-29": "invalid date: 2023-02-29",
    "2024-00-01": "invalid date: 2024-00-01",
    "2024-04-31T00:00:00Z": "invalid date: 2024-04-31",
    "2023-02-29T25:00:00+2500": "invalid date: 2023-02-29",  # date checked before time
    "2024-10-15T24:00:00Z": "invalid hour/minute/second: 24:00:00",
    "2016-12-31T23:59:60Z": "invalid hour/minute/second: 23:59:60",  # no leap seconds
    "2024-10-15T11:38:02+2400": "invalid offset range: 240",  # Cedar prints hh then mm unpadded
    "2024-10-15T11:38:02+0060": "invalid offset range: 060",
}


@pytest.mark.parametrize(("text", "ms"), DATETIME_OK.items())
def test_datetime_parse_ok(text: str, ms: int) -> None:
    assert DateTime.parse(text) == DateTime(ms)


@pytest.mark.parametrize(("text", "message"), DATETIME_BAD.items())
def test_datetime_parse_errors(text: str, message: str) -> None:
    e = err(lambda: DateTime.parse(text))
    assert e.kind == "extension"
    assert str(e) == f"error while evaluating `datetime` extension function: {message}"


DURATION_OK = {
    "1d2h3m4s5ms": 93_784_005,
    "1ms": 1,
    "-1d1ms": -86_400_001,  # one sign for all units
    "-0ms": 0,
    "0000001s": 1000,
    "1m1ms": 60_001,
    "9223372036854775807ms": LONG_MAX,
    "-9223372036854775808ms": LONG_MIN,
    "106751991167d": 106_751_991_167 * 86_400_000,
    "106751991167d25975807ms": LONG_MAX,
}
DURATION_BAD = {
    "": "invalid duration pattern",
    "-": "invalid duration pattern",
    "1": "invalid duration pattern",
    "1h1d": "invalid duration pattern",  # units in order d h m s ms
    "1ms1m": "invalid duration pattern",
    "1s2s": "invalid duration pattern",
    "1 s": "invalid duration pattern",
    "1D": "invalid duration pattern",
    "+1s": "invalid duration pattern",
    "--1s": "invalid duration pattern",
    "1d-1h": "invalid duration pattern",
    "\u0661s": "invalid duration pattern",
    "9223372036854775808ms": "Duration overflows internal representation",
    "-9223372036854775809ms": "Duration overflows internal representation",
    "106751991168d": "Duration overflows internal representation",
    "106751991167d25975808ms": "Duration overflows internal representation",
    "99999999999999999999999d": "Duration overflows internal representation",
}


@pytest.mark.parametrize(("text", "ms"), DURATION_OK.items())
def test_duration_parse_ok(text: str, ms: int) -> None:
    assert Duration.parse(text) == Duration(ms)


@pytest.mark.parametrize(("text", "message"), DURATION_BAD.items())
def test_duration_parse_errors(text: str, message: str) -> None:
    e = err(lambda: Duration.parse(text))
    assert e.kind == "extension"
    assert str(e) == f"error while evaluating `duration` extension function: {message}"


def test_datetime_duration_operations() -> None:
    epoch = DateTime(0)
    day = 86_400_000
    assert UNARY_OPS["to_date"](DateTime(-1)) == DateTime(-day)  # floor, not truncation
    assert UNARY_OPS["to_time"](DateTime(-1)) == Duration(day - 1)  # never negative
    assert UNARY_OPS["to_time"](DateTime(-day)) == Duration(0)
    assert UNARY_OPS["to_seconds"](Duration(-1500)) == -1  # truncation towards zero
    assert UNARY_OPS["to_minutes"](Duration(-119_000)) == -1
    assert UNARY_OPS["to_days"](Duration(-day - 1)) == -1
    assert UNARY_OPS["to_milliseconds"](Duration(LONG_MIN)) == LONG_MIN
    assert BINARY_OPS["offset"](epoch, Duration(5)) == DateTime(5)
    assert BINARY_OPS["duration_since"](DateTime(5), DateTime(7)) == Duration(-2)
    assert DateTime.parse("2020-01-01") == DateTime.parse("2020-01-01T01:00:00+0100")
    assert Duration.parse("1d") == Duration.parse("24h")
    assert DateTime(5) != Duration(5)

    e = err(lambda: BINARY_OPS["offset"](DateTime(LONG_MAX), Duration(1)))
    assert e.kind == "overflow"
    assert str(e) == (
        "error while evaluating `offset` extension function: overflows when adding an offset: "
        '(datetime("1970-01-01")).offset(duration("9223372036854775807ms"))+(1ms)'
    )
    e = err(lambda: BINARY_OPS["duration_since"](DateTime(LONG_MIN), DateTime(1)))
    assert e.kind == "overflow"
    assert str(e).startswith("error while evaluating `durationSince` extension function: overflows when")
    e = err(lambda: UNARY_OPS["to_date"](DateTime(LONG_MIN)))
    assert e.kind == "overflow"
    assert str(e) == (
        "error while evaluating `toDate` extension function: overflows when computing the date of "
        '(datetime("1970-01-01")).offset(duration("-9223372036854775808ms"))'
    )
    e = err(lambda: BINARY_OPS["offset"](epoch, 1))
    assert (e.kind, str(e)) == ("type", "type error: expected duration, got long")
    e = err(lambda: UNARY_OPS["to_seconds"](epoch))
    assert (e.kind, str(e)) == ("type", "type error: expected duration, got datetime")
    assert repr(DateTime(0)) == 'datetime("1970-01-01T00:00:00.000Z")'
    assert repr(DateTime(LONG_MIN)) == '(datetime("1970-01-01")).offset(duration("-9223372036854775808ms"))'
    assert repr(Duration(-5)) == 'duration("-5ms")'


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (1, Decimal(1), "expected long, got decimal"),
        (Decimal(1), 1, "expected long, got decimal"),
        ("a", 1, "expected long, got string"),
        (DateTime(0), 1, "expected long, got datetime"),
        (DateTime(0), Duration(0), "expected datetime, got duration"),
        (Duration(0), DateTime(0), "expected duration, got datetime"),
        ("a", DateTime(0), "expected datetime, got string"),
        (True, Duration(0), "expected duration, got bool"),
        (Decimal(1), Decimal(2), "expected one of [long, datetime, duration], got decimal"),
        (IPAddr(4, 1, 32), IPAddr(4, 2, 32), "expected one of [long, datetime, duration], got ipaddr"),
        ("a", "b", "expected one of [long, datetime, duration], got string"),
        (True, False, "expected one of [long, datetime, duration], got bool"),
    ],
)
def test_compare_type_errors(a: Any, b: Any, message: str) -> None:
    for op in ("less", "less_eq", "greater", "greater_eq"):
        e = err(lambda op=op: compare(op, a, b))  # type: ignore[misc]
        assert (e.kind, str(e)) == ("type", f"type error: {message}")


def test_compare_values() -> None:
    assert compare("less", DateTime(1), DateTime(2))
    assert compare("less_eq", Duration(2), Duration(2))
    assert not compare("greater", Duration(2), Duration(2))
    assert compare("greater_eq", DateTime(3), DateTime(2))


def test_constructor_argument_types() -> None:
    for name in ("decimal", "ip", "datetime", "duration"):
        e = err(lambda name=name: UNARY_OPS[name](1))  # type: ignore[misc]
        assert (e.kind, str(e)) == ("type", "type error: expected string, got long")
    assert CONSTRUCTORS["ip"]("1.2.3.4") == CONSTRUCTORS["ipaddr"]("1.2.3.4")


def test_constructor_caches() -> None:
    """ip/decimal/duration remember short strings they parsed; the caches stay bounded. (Compiled,
    a bare dotted quad is parsed by a loop that costs less than the cache: equal, not shared.)"""
    from vigil.policy import extensions as ext

    for name, text in [("ip", "10.9.8.7"), ("ip", "10.9.0.0/16"), ("decimal", "3.25"), ("duration", "90m")]:
        first = UNARY_OPS[name](text)
        if name == "ip" and "/" not in text and ext._LOOP_PARSE:
            assert UNARY_OPS[name](text) == first == CONSTRUCTORS[name](text)
            assert text not in ext._IP_CACHE
            continue
        assert UNARY_OPS[name](text) is first and CONSTRUCTORS[name](text) is first
    for _ in range(2):  # failures are not remembered
        assert err(lambda: UNARY_OPS["ip"]("10.0.0.256")).kind == "extension"
    for i in range(ext._CACHE_MAX + 10):
        IPAddr.parse(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32")
    assert 0 < len(ext._IP_CACHE) <= ext._CACHE_MAX
    long_text = "0" * 100 + "1.5"
    assert Decimal.parse(long_text) == Decimal(15_000)
    assert long_text not in ext._DECIMAL_CACHE
    assert UNARY_OPS["datetime"]("2024-10-15") == DateTime.parse("2024-10-15")


def test_explicit_tables_agree_with_cedar() -> None:
    """Every hand-written expectation above, re-checked against cedarpy in one call."""
    b = Batch()
    tables: list[tuple[str, Any, dict[str, Any]]] = [
        ("decimal", Decimal, {**DECIMAL_OK, **DECIMAL_BAD}),
        ("ip", IPAddr, {**IP_OK, **IP_BAD}),
        ("datetime", DateTime, {**DATETIME_OK, **DATETIME_BAD}),
        ("duration", Duration, {**DURATION_OK, **DURATION_BAD}),
    ]
    for kind, cls, table in tables:
        for text in table:
            b.add(f"{kind}({b.string(text)})", cls.parse, text, label=f"{kind}({text!r})")
    b.check()


# ------------------------------------------------------------------------------------------------
# explicit rules: JSON escapes
# ------------------------------------------------------------------------------------------------


def _x(fn: str, arg: Any = None, *, args: list[Any] | None = None) -> dict[str, Any]:
    return {"__extn": {"fn": fn, "args": args}} if args is not None else {"__extn": {"fn": fn, "arg": arg}}


_D = _x("datetime", "2020-01-01")
_U = _x("duration", "1d")

JSON_CASES: list[tuple[dict[str, Any], Any]] = [
    (_x("decimal", "1.0"), Decimal(10_000)),
    (_x("ip", "10.0.0.1/24"), IPAddr(4, 0x0A000001, 24)),
    (_x("datetime", "2020-01-01"), DateTime(1_577_836_800_000)),
    (_x("duration", "1d2h"), Duration(93_600_000)),
    (_x("decimal", args=["1.0"]), Decimal(10_000)),
    (_x("offset", args=[_D, _U]), DateTime(1_577_923_200_000)),
    (_x("offset", args=[_x("offset", args=[_D, _U]), _U]), DateTime(1_578_009_600_000)),
    (_x("toDate", _D), DateTime(1_577_836_800_000)),  # any extension function, even with "arg"
    (_x("toTime", args=[_D]), Duration(0)),
    (_x("durationSince", args=[_D, _D]), Duration(0)),
    (_x("toSeconds", args=[_U]), 86_400),  # may produce a Long ...
    (_x("isIpv4", args=[_x("ip", "1.2.3.4")]), True),  # ... or a Bool
    (_x("lessThan", args=[_x("decimal", "1.0"), _x("decimal", "2.0")]), True),
    (_x("isInRange", args=[_x("ip", "1.2.3.4"), _x("ip", "1.2.3.0/24")]), True),
    (_x("ipaddr", "1.2.3.4"), None),  # `ipaddr` is the type, not a function
    (_x("DECIMAL", "1.0"), None),
    (_x("decimal", "1"), None),
    (_x("decimal", 1), None),
    (_x("decimal", None), None),
    (_x("decimal", ["1.0"]), None),  # a list "arg" is one (set) argument
    (_x("decimal", args=[]), None),
    (_x("decimal", args=["1.0", "2.0"]), None),
    (_x("offset", args=[_D]), None),
    (_x("offset", args=[_U, _D]), None),
    (_x("offset", args=[_D, "1d"]), None),
    (_x("offset", args=[_D, _x("duration", "9223372036854775807ms")]), None),
    (_x("ip", _x("ip", "1.2.3.4")), None),
    (_x("decimal", {"__entity": {"type": "U", "id": "a"}}), None),
]


def _json_vigil(escape: dict[str, Any]) -> Any:
    """The exact reading of an escape: "arg" wins over "args"."""
    spec = escape["__extn"]
    if "arg" in spec:
        return from_json_extn_args(spec["fn"], [spec["arg"]])
    return from_json_extn_args(spec["fn"], spec["args"])


def test_from_json_extn_reads_a_list_as_args() -> None:
    """The loader passes ``arg`` or else ``args`` to from_json_extn, so a list means ``args``."""
    assert from_json_extn("decimal", "1.0") == Decimal(10_000)
    assert from_json_extn("decimal", ["1.0"]) == Decimal(10_000)
    assert from_json_extn("offset", [_D, _U]) == DateTime(1_577_923_200_000)
    assert err(lambda: from_json_extn("decimal", 1)).kind == "extension"
    assert err(lambda: from_json_extn("offset", [_D, 5])).kind == "extension"


def _canonical_json(value: Any) -> Any:
    """Cedar JSON for a vigil value, written independently of the form it was read from."""
    if type(value) is Decimal:
        return _x("decimal", repr(value)[9:-2])
    if type(value) is IPAddr:
        return _x("ip", repr(value)[4:-2])
    if type(value) is DateTime:
        return _x("offset", args=[_x("datetime", "1970-01-01"), _x("duration", f"{value.ms}ms")])
    if type(value) is Duration:
        return _x("duration", f"{value.ms}ms")
    return value


def _cedar_json_outcomes(escapes: list[Any], expected: list[Any]) -> list[str]:
    """For each escape: "ok" if Cedar reads it as a value equal to expected, "error" if it rejects it."""
    requests = [
        dict(_REQUEST, context={"x": e, "y": 0 if v is None else _canonical_json(v)})
        for e, v in zip(escapes, expected, strict=True)
    ]
    policy = "permit(principal, action, resource) when { context.x == context.y };"
    out = []
    for r in cedarpy.is_authorized_batch(requests, policy, "[]"):
        if r.allowed:
            out.append("ok")
        elif any(m.startswith("failed to build request") for m in r.diagnostics.errors):
            out.append("error")
        else:
            out.append(f"different value ({r.diagnostics.errors})")
    return out


@pytest.mark.parametrize(("escape", "expected"), JSON_CASES)
def test_json_escapes(escape: dict[str, Any], expected: Any) -> None:
    if expected is None:
        e = err(lambda: _json_vigil(escape))
        assert e.kind == "extension"
    else:
        value = _json_vigil(escape)
        assert value == expected and type(value) is type(expected)


def test_json_cases_agree_with_cedar() -> None:
    escapes = [e for e, _ in JSON_CASES]
    expected = [v for _, v in JSON_CASES]
    got = _cedar_json_outcomes(escapes, expected)
    want = ["error" if v is None else "ok" for v in expected]
    assert got == want


def test_json_unknown_function_message() -> None:
    e = err(lambda: from_json_extn("ipaddr", "1.2.3.4"))
    assert str(e) == "extension function `ipaddr` does not exist"
    e = err(lambda: from_json_extn("offset", "x"))
    assert str(e) == "wrong number of arguments provided to extension function `offset`: expected 2, got 1"
    deep: Any = "1.0"
    for _ in range(100):
        deep = _x("decimal", deep)
    assert err(lambda: from_json_extn("decimal", deep)).kind == "extension"


# ------------------------------------------------------------------------------------------------
# differential tests against cedarpy
# ------------------------------------------------------------------------------------------------

DIFF = settings(max_examples=examples(40))
batches = st.lists  # each example is a batch of inputs, checked in one cedarpy call


def _digits(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=lo, max_size=hi)


def _zpad(n: st.SearchStrategy[int], width: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return st.tuples(n, width).map(lambda t: str(t[0]).zfill(t[1]))


_decimal_text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789.-+e \u0661", max_size=24),
    st.builds(
        lambda neg, whole, frac: f"{neg}{whole}.{frac}",
        st.sampled_from(["", "-", "+", "--"]),
        st.one_of(_digits(0, 22), st.integers(0, 2**64).map(str)),
        _digits(0, 6),
    ),
    st.integers(LONG_MIN, LONG_MAX).map(lambda v: repr(Decimal(v))[9:-2]),
    st.integers(-(2**63) - 2, 2**63 + 1).map(lambda v: f"{v // 10000}.{v % 10000:04d}"),
)

_octet = st.one_of(st.integers(0, 255).map(str), _zpad(st.integers(0, 300), st.integers(0, 4)), st.just(""))
_prefix = st.one_of(
    st.just(""),
    st.integers(0, 140).map(lambda p: f"/{p}"),
    st.sampled_from(["/", "/00", "/08", "/+8", "/-1", "/ 8", "/8/8", "/0128", "/999", "/\u0663"]),
)
_ipv4_text = st.builds(
    lambda octets, sep, prefix: sep.join(octets) + prefix,
    st.lists(_octet, min_size=3, max_size=5),
    st.sampled_from([".", ".", ".", ":", ".."]),
    _prefix,
)
_hex_group = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=5)


def _ipv6_join(groups: list[str], gap: int | None, tail: str, prefix: str) -> str:
    if gap is not None and gap <= len(groups):
        text = ":".join(groups[:gap]) + "::" + ":".join(groups[gap:])
    else:
        text = ":".join(groups)
    return text + tail + prefix


_ipv6_text = st.builds(
    _ipv6_join,
    st.lists(_hex_group.filter(bool), min_size=0, max_size=9),
    st.one_of(st.none(), st.integers(0, 9)),
    st.sampled_from(["", "", "", ":1.2.3.4", ".1", ":", "%eth0"]),
    _prefix,
)
_ip_values = st.one_of(
    st.builds(IPAddr, st.just(4), st.integers(0, 2**32 - 1), st.integers(0, 32)),
    st.builds(IPAddr, st.just(6), st.integers(0, 2**128 - 1), st.integers(0, 128)),
    st.builds(
        IPAddr,
        st.just(6),
        st.integers(0, 15).map(lambda n: (1 << (16 * n)) - 1 if n < 9 else 0),
        st.just(128),
    ),
)
_ip_text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789abcdef:./", max_size=40),
    _ipv4_text,
    _ipv6_text,
    _ip_values.map(lambda ip: repr(ip)[4:-2]),
)

_datetime_text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789-T:Z.+ ", max_size=30),
    st.builds(
        lambda y, mo, d, time, ms, zone: f"{y}-{mo}-{d}" + (f"T{time}{ms}{zone}" if time is not None else ""),
        _zpad(st.integers(0, 10000), st.sampled_from([4] * 10 + [3, 5])),
        _zpad(st.one_of(st.integers(1, 12), st.integers(0, 13)), st.sampled_from([2] * 10 + [1])),
        _zpad(st.one_of(st.integers(1, 28), st.integers(0, 32)), st.sampled_from([2] * 10 + [1])),
        st.one_of(
            st.none(),
            st.builds(
                lambda h, m, s: f"{h:02d}:{m:02d}:{s:02d}",
                st.integers(0, 24),
                st.integers(0, 60),
                st.integers(0, 60),
            ),
        ),
        st.one_of(st.just(""), _digits(0, 4).map(lambda s: "." + s)),
        st.one_of(
            st.sampled_from(["Z", "Z", "", "z", "ZZ", "+", "+01:00"]),
            st.builds(
                lambda sign, h, m: f"{sign}{h:02d}{m:02d}",
                st.sampled_from("+-"),
                st.integers(0, 25),
                st.integers(0, 61),
            ),
        ),
    ),
)

_duration_unit = st.tuples(
    st.one_of(_digits(1, 3), st.integers(0, 2**64).map(str), _digits(19, 25)),
    st.sampled_from(["d", "h", "m", "s", "ms"]),
)
_duration_text = st.one_of(
    st.text(max_size=10),
    st.text(alphabet="0123456789dhms-+", max_size=25),
    st.builds(
        lambda sign, units, ordered: (
            sign
            + "".join(
                n + u
                for n, u in (
                    sorted(units, key=lambda nu: ["d", "h", "m", "s", "ms"].index(nu[1]))
                    if ordered
                    else units
                )
            )
        ),
        st.sampled_from(["", "", "-", "+"]),
        st.lists(_duration_unit, max_size=5),
        st.booleans(),
    ),
    st.integers(LONG_MIN, LONG_MAX).map(lambda v: f"{v}ms"),
)


def _check_constructor(kind: str, cls: Any, texts: list[str]) -> None:
    b = Batch()
    for text in texts:
        b.add(f"{kind}({b.string(text)})", cls.parse, text, label=f"{kind}({text!r})")
    b.check()


@DIFF
@given(batches(_decimal_text, min_size=1, max_size=25))
def test_diff_decimal_parse(texts: list[str]) -> None:
    _check_constructor("decimal", Decimal, texts)


@DIFF
@given(batches(_ip_text, min_size=1, max_size=25))
def test_diff_ip_parse(texts: list[str]) -> None:
    _check_constructor("ip", IPAddr, texts)


@DIFF
@given(batches(_datetime_text, min_size=1, max_size=25))
def test_diff_datetime_parse(texts: list[str]) -> None:
    _check_constructor("datetime", DateTime, texts)


@DIFF
@given(batches(_duration_text, min_size=1, max_size=25))
def test_diff_duration_parse(texts: list[str]) -> None:
    _check_constructor("duration", Duration, texts)


# --- operations on random operands --------------------------------------------------------------

_i64 = st.one_of(
    st.integers(LONG_MIN, LONG_MAX),
    st.integers(-(10**13), 10**13),
    st.sampled_from([LONG_MIN, LONG_MIN + 1, LONG_MAX, LONG_MAX - 1, 0, -1, 1, -86_400_000]),
)
_related_v4 = st.builds(
    lambda base, noise, prefix: IPAddr(4, base ^ noise, prefix),
    st.sampled_from([0x0A000000, 0x7F000001, 0xE0000001, 0xC0A80101, 0]),
    st.integers(0, 255),
    st.integers(0, 32),
)
_related_v6 = st.builds(
    lambda base, noise, prefix: IPAddr(6, base ^ noise, prefix),
    st.sampled_from([1, 0xFF00 << 112, 0x20010DB8 << 96, 0]),
    st.integers(0, 2**16),
    st.integers(0, 128),
)

# (Cedar expression, vigil value) pairs of every type, so that type errors are exercised too
_operand = st.one_of(
    _i64.map(lambda v: (repr(Decimal(v)), Decimal(v))),
    st.one_of(_ip_values, _related_v4, _related_v6).map(lambda ip: (repr(ip), ip)),
    _i64.map(lambda v: (repr(DateTime(v)), DateTime(v))),
    _i64.map(lambda v: (repr(Duration(v)), Duration(v))),
    st.sampled_from(
        [
            ("1", 1),
            ('"1.2.3.4"', "1.2.3.4"),
            ("true", True),
            ("[1]", make_set([1])),
            ("{a: 1}", Record(a=1)),
            ('U::"x"', ("U", "x")),
        ]
    ),
)
_typed = st.one_of(
    _i64.map(lambda v: (repr(DateTime(v)), DateTime(v))),
    _i64.map(lambda v: (repr(Duration(v)), Duration(v))),
    st.one_of(_related_v4, _related_v6).map(lambda ip: (repr(ip), ip)),
    _i64.map(lambda v: (repr(Decimal(v)), Decimal(v))),
)
_any_operand = st.one_of(_typed, _typed, _operand)
_dt = _i64.map(lambda v: (repr(DateTime(v)), DateTime(v)))
_dur = _i64.map(lambda v: (repr(Duration(v)), Duration(v)))
_dec = _i64.map(lambda v: (repr(Decimal(v)), Decimal(v)))
_ip = st.one_of(_related_v4, _related_v6, _ip_values).map(lambda ip: (repr(ip), ip))
_WELL_TYPED = {
    "is_in_range": (_ip, _ip),
    "offset": (_dt, _dur),
    "duration_since": (_dt, _dt),
    "decimal_less_than": (_dec, _dec),
    "decimal_less_eq": (_dec, _dec),
    "decimal_greater": (_dec, _dec),
    "decimal_greater_eq": (_dec, _dec),
}
_binary_case = st.one_of(
    st.sampled_from(sorted(_WELL_TYPED)).flatmap(
        lambda op: st.tuples(st.just(op), _WELL_TYPED[op][0], _WELL_TYPED[op][1])
    ),
    st.tuples(st.sampled_from(sorted(_WELL_TYPED)), _any_operand, _any_operand),
)

_UNARY_SYNTAX = {
    "datetime": "datetime({})",
    "decimal": "decimal({})",
    "duration": "duration({})",
    "ip": "ip({})",
    "is_ipv4": "{}.isIpv4()",
    "is_ipv6": "{}.isIpv6()",
    "is_loopback": "{}.isLoopback()",
    "is_multicast": "{}.isMulticast()",
    "to_date": "{}.toDate()",
    "to_time": "{}.toTime()",
    "to_milliseconds": "{}.toMilliseconds()",
    "to_seconds": "{}.toSeconds()",
    "to_minutes": "{}.toMinutes()",
    "to_hours": "{}.toHours()",
    "to_days": "{}.toDays()",
}
_BINARY_SYNTAX = {
    "is_in_range": "{}.isInRange({})",
    "offset": "{}.offset({})",
    "duration_since": "{}.durationSince({})",
    "decimal_less_than": "{}.lessThan({})",
    "decimal_less_eq": "{}.lessThanOrEqual({})",
    "decimal_greater": "{}.greaterThan({})",
    "decimal_greater_eq": "{}.greaterThanOrEqual({})",
}
_COMPARE_SYNTAX = {"less": "{} < {}", "less_eq": "{} <= {}", "greater": "{} > {}", "greater_eq": "{} >= {}"}


def test_op_tables_cover_pst_names() -> None:
    assert set(UNARY_OPS) == set(_UNARY_SYNTAX)
    assert set(BINARY_OPS) == set(_BINARY_SYNTAX)


@DIFF
@given(batches(st.tuples(st.sampled_from(sorted(_UNARY_SYNTAX)), _any_operand), min_size=1, max_size=30))
def test_diff_unary_ops(cases: list[tuple[str, tuple[str, Any]]]) -> None:
    b = Batch()
    for op, (text, value) in cases:
        b.add(_UNARY_SYNTAX[op].format(text), UNARY_OPS[op], value)
    b.check()


@DIFF
@given(batches(_binary_case, min_size=1, max_size=30))
def test_diff_binary_ops(cases: list[tuple[str, tuple[str, Any], tuple[str, Any]]]) -> None:
    b = Batch()
    for op, (ta, a), (tb, bv) in cases:
        b.add(_BINARY_SYNTAX[op].format(ta, tb), BINARY_OPS[op], a, bv)
    b.check()


@DIFF
@given(batches(st.tuples(st.sampled_from(sorted(_COMPARE_SYNTAX)), _any_operand, _any_operand), max_size=30))
def test_diff_compare(cases: list[tuple[str, tuple[str, Any], tuple[str, Any]]]) -> None:
    b = Batch()
    for op, (ta, a), (tb, bv) in cases:
        if type(a) is int and type(bv) is int:
            continue  # the compiler's job
        b.add(_COMPARE_SYNTAX[op].format(ta, tb), compare, op, a, bv)
    b.check()


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


@DIFF
@given(batches(st.tuples(_any_operand, _any_operand), min_size=1, max_size=30))
def test_diff_equality(cases: list[tuple[tuple[str, Any], tuple[str, Any]]]) -> None:
    """Cedar ``==`` on extension values is the Python ``==`` defined here."""
    b = Batch()
    for (ta, a), (tb, bv) in cases:
        b.add(f"{ta} == {tb}", _same, a, bv)
        b.add(f"{ta} == {ta}", _same, a, a)
    b.check()


def _call(fn: str, args: list[Any], single: bool) -> dict[str, Any]:
    """An escape calling ``fn``: ``"arg"`` when asked for and possible, else ``"args"``."""
    return _x(fn, args[0]) if single and len(args) == 1 else _x(fn, args=args)


_j_dec = _i64.map(lambda v: _x("decimal", repr(Decimal(v))[9:-2]))
_j_ip = _ip.map(lambda t: _x("ip", repr(t[1])[4:-2]))
_j_dt = st.integers(-62_167_219_200_000, 253_402_300_799_999).map(
    lambda v: _x("datetime", repr(DateTime(v))[10:-2])
)
_j_dur = _i64.map(lambda v: _x("duration", f"{v}ms"))
_j_dt_nested = st.one_of(
    _j_dt,
    st.builds(lambda a, b: _call("offset", [a, b], False), _j_dt, _j_dur),
    st.builds(lambda a, single: _call("toDate", [a], single), _j_dt, st.booleans()),
)
_json_leaf = st.one_of(
    _j_dec,
    _j_ip,
    _j_dt,
    _j_dur,
    st.builds(lambda s: _x("decimal", s), _decimal_text),
    st.builds(lambda s: _x("ip", s), _ip_text),
    st.builds(lambda s: _x("datetime", s), _datetime_text),
    st.builds(lambda s: _x("duration", s), _duration_text),
)
_UNARY_JSON = {
    "toDate": _j_dt_nested,
    "toTime": _j_dt_nested,
    "toMilliseconds": _j_dur,
    "toSeconds": _j_dur,
    "toMinutes": _j_dur,
    "toHours": _j_dur,
    "toDays": _j_dur,
    "isIpv4": _j_ip,
    "isIpv6": _j_ip,
    "isLoopback": _j_ip,
    "isMulticast": _j_ip,
}
_BINARY_JSON = {
    "offset": (_j_dt_nested, _j_dur),
    "durationSince": (_j_dt_nested, _j_dt_nested),
    "isInRange": (_j_ip, _j_ip),
    "lessThan": (_j_dec, _j_dec),
    "lessThanOrEqual": (_j_dec, _j_dec),
    "greaterThan": (_j_dec, _j_dec),
    "greaterThanOrEqual": (_j_dec, _j_dec),
}
_well_typed_json = st.one_of(
    st.sampled_from(sorted(_UNARY_JSON)).flatmap(
        lambda fn: st.builds(lambda a, single: _call(fn, [a], single), _UNARY_JSON[fn], st.booleans())
    ),
    st.sampled_from(sorted(_BINARY_JSON)).flatmap(
        lambda fn: st.builds(lambda a, b: _call(fn, [a, b], False), *_BINARY_JSON[fn])
    ),
)
_JSON_FNS = [*_UNARY_JSON, *_BINARY_JSON, "decimal", "ip", "datetime", "duration", "ipaddr", "Decimal"]
_json_escape = st.one_of(
    _json_leaf,
    _well_typed_json,
    st.recursive(
        _json_leaf,
        lambda inner: st.builds(
            _call,
            st.sampled_from(_JSON_FNS),
            st.lists(st.one_of(inner, st.sampled_from(["1.0", "1.2.3.4", 1, None])), max_size=3),
            st.booleans(),
        ),
        max_leaves=4,
    ),
)


@settings(max_examples=examples(15))
@given(batches(_json_escape, min_size=1, max_size=20))
def test_diff_json_escapes(escapes: list[dict[str, Any]]) -> None:
    expected = []
    for e in escapes:
        try:
            expected.append(_json_vigil(e))
        except EvalError:
            expected.append(None)
    got = _cedar_json_outcomes(escapes, expected)
    want = ["error" if v is None else "ok" for v in expected]
    bad = [
        json.dumps(e) + f": cedar {g} vigil {w}" for e, g, w in zip(escapes, got, want, strict=True) if g != w
    ]
    assert not bad, "\n".join(bad)


_QUAD_PARTS = st.one_of(
    st.integers(0, 300).map(str),
    st.sampled_from(
        ["", "0", "00", "01", "000", "255", "256", "1000", "+1", "-1", " 1", "1 ", "\u0663", "\uff11"]
    ),
    st.text(alphabet="0123456789.", max_size=5),
)


@settings(max_examples=examples(3000))
@given(st.lists(_QUAD_PARTS, min_size=1, max_size=6).map(".".join) | st.text(max_size=20))
def test_dotted_quad_is_exactly_inet_ptons_ipv4_syntax(text: str) -> None:
    """The compiled build's fast IPv4 parser accepts exactly what glibc's inet_pton(AF_INET)
    accepts (Cedar's IPv4 syntax), with the same address; and ip() agrees either way."""
    import socket

    try:
        expected = int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError, UnicodeError):
        expected = -1
    assert _dotted_quad(text) == expected
    if expected >= 0:
        ip = IPAddr.parse(text)
        assert (ip.version, ip.address, ip.prefix, ip.text) == (4, expected, 32, text)
