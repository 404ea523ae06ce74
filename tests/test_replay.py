"""vigil.replay: AuthZEN request lines decided at their own event times, bad lines reported, streamed."""

from __future__ import annotations

import io
import itertools
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.profiles import examples
from vigil import Engine
from vigil.audit import MemorySink, NullSink
from vigil.replay import (
    INVALID_JSON,
    INVALID_TIME,
    MAX_LINE_BYTES,
    ReplayInputError,
    ReplayLine,
    ReplaySummary,
    parse_rfc3339,
    replay,
    replay_to,
)

FLEET = Path(__file__).resolve().parents[1] / "examples" / "agent-fleet"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("replay") / "agent-fleet"
    shutil.copytree(FLEET, dest, ignore=shutil.ignore_patterns(".vigil", "events.jsonl"))
    return dest


@pytest.fixture(scope="module")
def events() -> list[bytes]:
    with (FLEET / "events.jsonl").open("rb") as f:
        return list(itertools.islice(f, 300))


@pytest.fixture
def engine(workspace: Path) -> Iterator[Engine]:
    with Engine.from_workspace(workspace, audit=NullSink()) as e:
        yield e


def request(time: Any = "2026-11-27T09:14:03Z", **context: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {"ip": "10.40.8.8", "region": "eu-west-1", "hour": 9, **context}
    if time is not None:
        ctx["time"] = time
    return {
        "subject": {"type": "ServiceAccount", "id": "ml-training-pipeline"},
        "action": {"name": "read"},
        "resource": {"type": "Database", "id": "ml-training-sets-prod"},
        "context": ctx,
    }


def line(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def error_code(item: ReplayLine) -> str:
    assert item.error is not None, item
    return item.error["code"]


# -- good lines ---------------------------------------------------------------------------------
def test_good_lines_are_authzen_responses(engine: Engine, events: list[bytes]) -> None:
    items = list(replay(engine, events[:100]))
    assert len(items) == 100
    assert [i.line for i in items] == list(range(1, 101))
    for item in items:
        assert item.ok and item.error is None
        out = item.output()
        assert set(out) == {"decision", "context"}
        assert isinstance(out["decision"], bool)
        assert {"id", "reason_codes", "risk", "signals", "advice"} <= set(out["context"])
        assert orjson.loads(item.to_json()) == out


def test_each_line_is_decided_at_its_own_time(workspace: Path, events: list[bytes]) -> None:
    sink = MemorySink()
    with Engine.from_workspace(workspace, audit=sink) as engine:
        items = list(replay(engine, events[:50]))
    expected = [datetime.fromisoformat(json.loads(raw)["context"]["time"]).timestamp() for raw in events[:50]]
    assert [i.record.time for i in items if i.record is not None] == expected
    assert len(sink.records) == 50  # replay decisions are audited like any other


def test_replay_matches_direct_decisions(workspace: Path, events: list[bytes]) -> None:
    with (
        Engine.from_workspace(workspace, audit=NullSink()) as a,
        Engine.from_workspace(workspace, audit=NullSink()) as b,
    ):
        replayed = [i.record for i in replay(a, events)]
        for raw, rec in zip(events, replayed, strict=True):
            req = json.loads(raw)
            direct = b.decide(req, now=datetime.fromisoformat(req["context"]["time"]))
            assert rec is not None
            assert (rec.allowed, rec.reason_codes, rec.policies) == (
                direct.allowed,
                direct.reason_codes,
                direct.policies,
            )


def test_offsets_are_honoured(engine: Engine) -> None:
    [item] = replay(engine, [line(request("2026-11-27T10:14:03+01:00"))])
    assert item.record is not None
    assert item.record.time == datetime(2026, 11, 27, 9, 14, 3, tzinfo=UTC).timestamp()


def test_text_lines_work_too(engine: Engine) -> None:
    items = list(replay(engine, [json.dumps(request()) + "\n", "  \n", json.dumps(request())]))
    assert [i.line for i in items] == [1, 3]
    assert all(i.ok for i in items)


# -- bad lines ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"not json\n", INVALID_JSON),
        (b'{"subject": \n', INVALID_JSON),
        (b"\xff\xfe\n", INVALID_JSON),
        (b'{"a": NaN}\n', INVALID_JSON),
        (b"[1, 2]\n", "invalid_request"),
        (b'"a string"\n', "invalid_request"),
        (b"null\n", "invalid_request"),
        (line({"subject": {"type": "Agent", "id": "a"}}), INVALID_TIME),  # no context at all
        (line({**request(), "context": []}), INVALID_TIME),
        (line(request(time=None)), INVALID_TIME),
        (line(request(time=1764234843)), INVALID_TIME),
        (line(request(time="2026-11-27T09:14:03")), INVALID_TIME),  # no offset
        (line(request(time="2026-11-27")), INVALID_TIME),
        (line(request(time="20261127T091403Z")), INVALID_TIME),
        (line(request(time="2026-13-27T09:14:03Z")), INVALID_TIME),
        (line(request(time="2026-11-27T23:59:60Z")), INVALID_TIME),
        (line(request(time="yesterday")), INVALID_TIME),
        (line({"action": {"name": "read"}, "context": {"time": "2026-11-27T09:14:03Z"}}), "invalid_request"),
        (line({**request(), "subject": {"type": "Agent", "id": 7}}), "invalid_request"),
    ],
)
def test_bad_line_becomes_an_error_object(engine: Engine, raw: bytes, code: str) -> None:
    [item] = replay(engine, [raw])
    assert not item.ok and item.record is None
    assert error_code(item) == code
    out = item.output()
    assert out == {"line": 1, "error": {"code": code, "message": item.error["message"] if item.error else ""}}
    assert out["error"]["message"]


def test_vigil_error_from_decide_keeps_its_code(engine: Engine) -> None:
    req = request()
    req["context"]["bad"] = {"__extn": {"fn": "nosuchfn", "arg": "x"}}
    [item] = replay(engine, [line(req)])
    assert error_code(item) in {"invalid_value", "invalid_request"}


def test_too_long_line(engine: Engine) -> None:
    [item] = replay(engine, [b"x" * (MAX_LINE_BYTES + 1)])
    assert error_code(item) == "request_too_large"


def test_replay_continues_after_bad_lines(engine: Engine, events: list[bytes]) -> None:
    lines = [events[0], b"oops\n", b"\n", events[1], line(request(time=None)), b"   \n", events[2]]
    items = list(replay(engine, lines))
    assert [(i.line, i.ok) for i in items] == [(1, True), (2, False), (4, True), (5, False), (7, True)]


# -- summary and writing ------------------------------------------------------------------------
def test_summary_figures(engine: Engine, events: list[bytes]) -> None:
    ticks = iter([100.0, 102.0])
    summary = ReplaySummary(clock=lambda: next(ticks), keep_errors=2)
    lines = [*events[:40], b"bad\n", b"[]\n", b"{}\n", b"\n"]
    out = io.BytesIO()
    assert replay_to(engine, lines, out, summary=summary) is summary
    written = out.getvalue().splitlines()
    assert len(written) == 43
    assert summary.decisions == 40 and summary.bad_lines == 3 and summary.lines == 43
    assert summary.by_outcome["allow"] + summary.by_outcome["deny"] == 40
    decided = [orjson.loads(w) for w in written[:40]]
    assert summary.by_outcome["allow"] == sum(d["decision"] for d in decided)
    assert sum(summary.by_reason.values()) == sum(len(d["context"]["reason_codes"]) for d in decided)
    assert dict(summary.errors_by_code) == {INVALID_JSON: 1, "invalid_request": 1, INVALID_TIME: 1}
    assert [e.line for e in summary.first_errors] == [41, 42]  # bounded sample
    assert summary.elapsed_s == 2.0 and summary.decisions_per_second == 20.0
    d = summary.to_dict()
    assert d["decisions"] == 40 and d["bad_lines"] == 3 and d["decisions_per_second"] == 20.0
    assert orjson.loads(written[40]) == {"line": 41, "error": summary.first_errors[0].error}
    json.dumps(d)  # JSON-ready


def test_summary_of_nothing() -> None:
    summary = ReplaySummary(clock=lambda: 5.0)
    summary.finish()
    assert summary.decisions_per_second == 0.0 and summary.to_dict()["lines"] == 0


def test_replay_streams_lazily(engine: Engine) -> None:
    """An endless input is consumed one line at a time: nothing is read ahead or kept."""
    consumed = 0

    def endless() -> Iterator[bytes]:
        nonlocal consumed
        start = datetime(2026, 11, 27, tzinfo=UTC)
        for i in itertools.count():
            consumed += 1
            yield line(request((start + timedelta(seconds=i)).isoformat()))

    items = list(itertools.islice(replay(engine, endless()), 25))
    assert len(items) == 25 and all(i.ok for i in items)
    assert consumed == 25


def test_summary_memory_is_flat(engine: Engine) -> None:
    summary = replay_to(engine, (b"bad\n" for _ in range(5000)), None)
    assert summary.bad_lines == 5000 and len(summary.first_errors) == 10


# -- RFC 3339 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T09:14:03Z", datetime(2026, 11, 27, 9, 14, 3, tzinfo=UTC)),
        ("2026-11-27t09:14:03z", datetime(2026, 11, 27, 9, 14, 3, tzinfo=UTC)),
        (
            "2026-11-27T09:14:03.25+02:00",
            datetime(2026, 11, 27, 9, 14, 3, 250000, timezone(timedelta(hours=2))),
        ),
        ("2026-11-27T09:14:03.123456789-00:00", datetime(2026, 11, 27, 9, 14, 3, 123456, tzinfo=UTC)),
    ],
)
def test_parse_rfc3339(text: str, expected: datetime) -> None:
    got = parse_rfc3339(text)
    assert got == expected and got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text", ["", "2026-11-27 09:14:03Z", "2026-11-27T09:14Z", "2026-11-27T09:14:03+0200", "x" * 100]
)
def test_parse_rfc3339_refuses(text: str) -> None:
    with pytest.raises(ReplayInputError) as e:
        parse_rfc3339(text)
    assert e.value.code == INVALID_TIME


# -- never crashes ------------------------------------------------------------------------------
KNOWN_CODES = {INVALID_JSON, INVALID_TIME, "invalid_request", "invalid_value", "request_too_large"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def request_like(draw: st.DrawFn) -> bytes:
    """Mostly well-formed requests with random fields and context values (some with a valid time)."""
    req = request(
        draw(st.sampled_from(["2026-11-27T09:14:03Z", "2026-11-27T09:14:03+05:30", None, 3, "bad"]))
    )
    for key in draw(st.lists(st.sampled_from(["subject", "action", "resource", "context"]), max_size=2)):
        req[key] = draw(json_values)
    if isinstance(req.get("context"), dict):
        req["context"].update(
            draw(st.dictionaries(st.sampled_from(["ip", "region", "hour", "mfa", "x"]), json_values))
        )
    return json.dumps(req).encode()


@settings(max_examples=examples(150))
@given(st.lists(st.binary(max_size=40) | request_like() | st.text(max_size=20).map(str.encode), max_size=8))
def test_random_lines_never_crash_replay(engine: Engine, raws: list[bytes]) -> None:
    lines = [r.replace(b"\n", b" ") + b"\n" for r in raws]
    items = list(replay(engine, lines))
    expected = [n for n, r in enumerate(lines, 1) if r.strip()]
    assert [i.line for i in items] == expected
    for item in items:
        if not item.ok:
            assert error_code(item) in KNOWN_CODES
        orjson.loads(item.to_json())
