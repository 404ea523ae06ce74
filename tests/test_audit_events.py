"""The audit event line: ``encode_event``, ``encode_events`` and the sink's line buffer (the C writer
of the event schema where it is built) are byte for byte ``orjson.dumps(decision_event(...))``,
whatever the identities, policy ids, times, ids and context hold (the fast path hands the Cedar
context to orjson directly, which once wrote entity references as arrays; the C writer escapes
text itself)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.profiles import examples
from vigil.audit import events
from vigil.audit.events import (
    RecordLines,
    decision_event,
    encode_event,
    encode_event_safely,
    encode_events,
    event_lines,
)
from vigil.model.decision import DecisionRecord
from vigil.policy.extensions import Decimal, IPAddr
from vigil.policy.values import Record, make_set

# Text around the C writer's 8-byte steps (escapes before, inside and after a word, lengths 7/8/9
# and 15/16/17), every control character, non-ASCII, and lone surrogates (which JSON cannot carry).
TEXT = (
    st.text(max_size=12)
    | st.text(max_size=40, alphabet=st.characters(codec="utf-8") | st.sampled_from('"\\\x00\x1f\x7f\n'))
    | st.sampled_from(['a"b', "a\\b", "ü", "\u2028", "\x00", "日本", "a/b", "\ud800", "abcdefgh\ud83d"])
    | st.sampled_from(["abcdefg", "abcdefgh", "abcdefghi", "abcdefghijklmno", "abcdefghijklmnop"]).flatmap(
        lambda t: st.tuples(st.integers(0, len(t)), st.sampled_from('"\\\x01\x1f\té')).map(
            lambda p: t[: p[0]] + p[1] + t[p[0] :]
        )
    )
)
UID = st.tuples(TEXT.filter(bool), TEXT)
IDS = st.integers(-3, 2**70) | st.sampled_from([0, 2**40 - 1, 2**64 - 1, 2**64]) | TEXT.filter(bool)
SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(2**63, 2**64 + 5),  # orjson writes up to 2**64 - 1 and refuses more
    st.booleans(),
    TEXT,
    st.just(IPAddr.parse("10.1.2.3")),
    st.just(IPAddr(4, 167772160, 8)),  # no text: written from its parts
    st.just(Decimal.parse("1.5")),
    st.lists(TEXT, max_size=3).map(lambda xs: make_set(xs)),
    st.tuples(TEXT.filter(bool), TEXT),
)
CONTEXT_VALUES = st.recursive(SCALARS, lambda inner: st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)


def record(
    rid: Any,
    allowed: bool,
    principal: tuple[str, str],
    action: tuple[str, str],
    resource: tuple[str, str],
    policies: tuple[str, ...],
    signals: tuple[str, ...],
    risk: int,
    context: dict[str, Any] | None,
    revision: str = "0dacd358625221ad",
    time: float = 1_795_913_674.123456,
    latency: int = 12_345,
) -> DecisionRecord:
    return DecisionRecord(
        rid,
        allowed,
        ("policy_permit",) if allowed else ("no_matching_permit",),
        policies,
        (),
        risk,
        signals,
        ("step_up",) if risk > 50 else (),
        revision,
        latency,
        time,
        principal,
        action,
        resource,
        None if context is None else Record(context),
    )


def chunk(records: list[DecisionRecord]) -> bytes:
    """The lines of ``records`` as the sink's line buffer writes them (the C writer where it is
    built, orjson otherwise), each ended by a newline; with a fallback that raises where orjson
    refuses (the sink's own never raises), so refusals can be compared too."""
    if events._CLineBuffer is None:
        return b"".join(line + b"\n" for line in encode_events(records))
    lines = events._CLineBuffer(encode_event)
    for r in records:
        lines.add(r)
    out, n = lines.take()
    assert n == len(records)
    return out


RECORDS = st.builds(
    record,
    rid=IDS,
    allowed=st.booleans(),
    principal=UID,
    action=UID,
    resource=UID,
    policies=st.lists(TEXT, max_size=3).map(tuple),
    signals=st.lists(st.sampled_from(["new_network", "rate_spike"]), max_size=2).map(tuple),
    risk=st.integers(0, 100),
    context=st.none() | st.dictionaries(TEXT, CONTEXT_VALUES, max_size=4),
    revision=TEXT,
    time=st.floats(0, 253_402_300_799.0) | st.sampled_from([0.0, 1.0, 0.9999999, 1_795_913_674.999_999_5]),
    latency=st.integers(-(2**63), 2**63 - 1),
)


@settings(max_examples=examples(400))
@given(r=RECORDS)
def test_event_line_is_the_event_dict_encoded(r: DecisionRecord) -> None:
    try:
        expected = orjson.dumps(decision_event(r))
    except TypeError:  # text JSON cannot carry (a lone surrogate): both refuse it
        for encode in (encode_event, lambda r: encode_events([r])):
            try:
                encode(r)
            except TypeError:
                continue
            raise AssertionError("an encoder accepted what orjson refuses") from None
        return
    assert encode_event(r) == expected
    assert encode_events([r, r]) == [expected, expected]  # one event dict, filled twice
    assert chunk([r, r]) == expected + b"\n" + expected + b"\n"
    json.loads(expected)


@settings(max_examples=examples(300))
@given(rs=st.lists(RECORDS, max_size=6))
def test_a_chunk_is_the_event_lines_of_its_records(rs: list[DecisionRecord]) -> None:
    try:
        expected = b"".join(orjson.dumps(decision_event(r)) + b"\n" for r in rs)
    except (TypeError, ValueError):
        try:
            chunk(rs)
        except (TypeError, ValueError):
            return
        raise AssertionError("the line buffer accepted what orjson refuses") from None
    assert chunk(rs) == expected


@settings(max_examples=examples(200))
@given(rs=st.lists(RECORDS, max_size=8), cut=st.integers(0, 8))
def test_event_lines_give_each_line_once_in_order(rs: list[DecisionRecord], cut: int) -> None:
    """The sink's line buffers (the C one, which encodes on add, where it is built; the one that
    keeps records) give the safe line of every record, in order, split where ``take`` was called."""
    expected = [encode_event_safely(r) + b"\n" for r in rs]
    for lines in (event_lines(), RecordLines()):
        for r in rs[:cut]:
            lines.add(r)
        assert len(lines) == min(cut, len(rs))
        first, n1 = lines.take()
        for r in rs[cut:]:
            lines.add(r)
        second, n2 = lines.take()
        assert (n1, n2) == (min(cut, len(rs)), max(0, len(rs) - cut))
        assert first + second == b"".join(expected)
        assert first == b"".join(expected[:cut])
        assert lines.take() == (b"", 0)


def test_masked_lines_are_kept_as_records_and_masked() -> None:
    r = record(1, True, ("Agent", "a"), ("Action", "read"), ("Doc", "d"), (), (), 0, {"secret": "x", "n": 1})
    lines = event_lines(("context.secret",))
    assert isinstance(lines, RecordLines)
    lines.add(r)
    chunk, n = lines.take()
    assert n == 1 and orjson.loads(chunk)["context"] == {"secret": "***", "n": 1}


def test_the_c_writer_is_used_where_it_is_built() -> None:
    # a compiled build whose C writer failed to build would pass every equality test above on
    # orjson alone; test_compiled.py fails that build, this names the symptom
    from vigil.compiled import accelerated

    built = accelerated()["vigil.audit._event_lines"]
    assert (events._CLineBuffer is not None) == built
    assert isinstance(event_lines(), RecordLines) != built


def test_a_batch_mixes_fast_and_full_events_in_order() -> None:
    plain = record(1, True, ("Agent", "a"), ("Action", "read"), ("Doc", "d"), ("p",), (), 0, {"n": 1})
    entity = record(
        2, False, ("Agent", "a"), ("Action", "read"), ("Doc", "d"), (), (), 0, {"who": ("Agent", "b")}
    )
    failed = DecisionRecord(
        3, False, ("forbid_errored",), (), (("f1", "boom"),), 0, (), (), "rev", 1, 1.0,
        ("Agent", "a"), ("Action", "read"), ("Doc", "d"), None,
    )  # fmt: skip
    listed = record(4, True, ("Agent", "a"), ("Action", "read"), ("Doc", "d"), ("p",), (), 0, None)
    listed.reason_codes = ["policy_permit"]  # not the engine's tuple: the fallback writes it
    batch = [plain, entity, failed, plain, listed]
    assert encode_events(batch) == [orjson.dumps(decision_event(r)) for r in batch]
    assert chunk(batch) == b"".join(orjson.dumps(decision_event(r)) + b"\n" for r in batch)
    assert b'"who":{"__entity":{"type":"Agent","id":"b"}}' in encode_events([entity])[0]
    assert encode_events(batch, ("context.n",)) == [
        orjson.dumps(decision_event(r, ("context.n",))) for r in batch
    ]


def test_golden_event_lines_as_written_to_the_log(tmp_path: Path) -> None:
    """The event format pinned by hand (not by decision_event, which the encoders call): the C
    writer's line, the masked (orjson) line with a nested mask path, and the chain's suffix."""
    from vigil.audit.logfile import GENESIS
    from vigil.audit.sink import JsonlSink
    from vigil.policy.extensions import parse_ipaddr
    from vigil.policy.values import make_set

    record = DecisionRecord(
        "d-1",
        True,
        ("policy_permit",),
        ("p1",),
        (),
        7,
        ("new_resource",),
        (),
        "rev1",
        1500,
        1_764_000_000.25,
        ("Agent", "bot"),
        ("Action", "read"),
        ("Doc", "x"),
        {
            "owner": ("User", "alice"),
            "tags": make_set(("a",)),
            "ip": parse_ipaddr("10.0.0.1"),
            "auth": {"token": "s3cret", "kind": "jwt"},
            "n": 3,
        },
    )
    head = (
        b'{"v":1,"type":"decision","id":"d-1","time":"2025-11-24T16:00:00.250000Z","decision":"allow",'
        b'"subject":{"type":"Agent","id":"bot"},"action":{"type":"Action","name":"read"},'
        b'"resource":{"type":"Doc","id":"x"},"reason_codes":["policy_permit"],"policies":["p1"],'
        b'"risk":7,"signals":["new_resource"],"advice":[],"policy_revision":"rev1","latency_ns":1500,'
        b'"context":{"owner":{"__entity":{"type":"User","id":"alice"}},"tags":["a"],'
        b'"ip":{"__extn":{"fn":"ip","arg":"10.0.0.1"}},'
    )
    plain = head + b'"auth":{"token":"s3cret","kind":"jwt"},"n":3}}'
    masked = head + b'"auth":{"token":"***","kind":"jwt"},"n":3}}'
    for mask, chain, expected in (
        ((), False, plain),
        (("context.auth.token",), False, masked),
        ((), True, plain[:-1] + b',"seq":1,"prev":"' + GENESIS.encode() + b'"}'),
    ):
        path = tmp_path / f"{len(mask)}-{chain}.jsonl"
        sink = JsonlSink(path, mask=mask, chain=chain)
        sink.emit(record)
        sink.close()
        assert path.read_bytes() == expected + b"\n"
