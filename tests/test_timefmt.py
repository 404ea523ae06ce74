"""``vigil.model.timefmt``: the one RFC 3339 parser (request times, replay, behaviour, imports)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vigil
from tests.test_server_support import copy_workspace
from vigil.audit import MemorySink
from vigil.behaviour.context import ContextReader
from vigil.model.timefmt import TimeFormatError, format_rfc3339, parse_datetime, parse_epoch

OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
TIMES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC) | OFFSETS
)


@given(TIMES)
def test_valid_times_round_trip(value: datetime) -> None:
    text = format_rfc3339(value)
    got = parse_datetime(text)
    assert got == value and got.utcoffset() == value.utcoffset()
    assert parse_epoch(text) == pytest.approx(value.timestamp(), abs=1e-6)
    assert parse_datetime(text.replace("T", "t").replace("Z", "z")) == value


@given(
    st.text(max_size=80) | st.from_regex(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,12})?(Z|[+-]\d\d:\d\d)?\Z")
)
def test_arbitrary_text_raises_only_the_typed_error(text: str) -> None:
    for parse in (parse_datetime, parse_epoch):
        try:
            parse(text)
        except TimeFormatError as e:
            assert e.code == "invalid_time"


@given(st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.text()), st.binary()))
def test_non_strings_raise_the_typed_error(value: Any) -> None:
    with pytest.raises(TimeFormatError):
        parse_datetime(value)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:1²Z",  # a Unicode digit (the 500 of /access/v1/evaluations)
        "2026-01-01T00:00:\u0661\u0662Z",  # Arabic-Indic digits
        "\uff12\uff10\uff12\uff16-01-01T00:00:00Z",  # full-width digits
        "2026-01-01T00:00:00",  # no offset
        "2026-01-01 00:00:00Z",  # a space for T
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z",
        "2026-01-01T00:00:60Z",  # leap second
        "0000-01-01T00:00:00Z",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00.1234567890Z",
        "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+01:60",
        "2026-01-01T00:00:00+0100",
        "2026-01-01T00:00:00Z ",
        "+2026-01-01T00:00:00Z",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(TimeFormatError):
        parse_datetime(text)
    with pytest.raises(TimeFormatError):
        parse_epoch(text)


def test_minute_cache_reads_seconds_strictly() -> None:
    assert parse_epoch("2026-01-01T00:00:10Z") == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC).timestamp()
    # the minute is cached now: its fast path must refuse what the full parse refuses
    for bad in ("2026-01-01T00:00:1²Z", "2026-01-01T00:00:60Z", "2026-01-01T00:00:+1Z"):
        with pytest.raises(TimeFormatError):
            parse_epoch(bad)
    assert ContextReader(300).event_time("2026-01-01T00:00:1²Z", 1.0e9)[1] is not None


def test_unicode_digit_time_is_a_decision_not_a_crash(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-todo", tmp_path)
    with vigil.Engine.from_workspace(ws, audit=MemorySink()) as engine:
        req = {
            "subject": {"type": "user", "id": "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"},
            "action": {"name": "can_read_todos"},
            "resource": {"type": "todo", "id": "1"},
            "context": {"time": "2026-01-01T00:00:1²Z"},
        }
        for _ in range(2):  # the second time through the behaviour's caches
            assert engine.decide(req).allowed is True
        req["context"]["time"] = "2026-01-01T00:00:10Z"
        engine.decide(req)
        req["context"]["time"] = "2026-01-01T00:00:1²Z"  # the minute now cached
        assert engine.decide(req).allowed is True
