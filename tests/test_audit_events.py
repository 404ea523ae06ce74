"""The audit event line: ``encode_event`` is byte for byte ``orjson.dumps(decision_event(...))``,
whatever the identities, policy ids and context hold (its fast path hands the Cedar context to
orjson directly, which once wrote entity references as arrays)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.audit.events import decision_event, encode_event, encode_events
from vigil.model.decision import DecisionRecord
from vigil.policy.extensions import Decimal, IPAddr
from vigil.policy.values import Record, make_set

TEXT = st.text(max_size=12) | st.sampled_from(['a"b', "a\\b", "ü", "\u2028", "\x00", "日本", "a/b"])
UID = st.tuples(TEXT.filter(bool), TEXT)
IDS = st.integers(0, 2**40) | TEXT.filter(bool)
CONTEXT_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    TEXT,
    st.just(IPAddr.parse("10.1.2.3")),
    st.just(Decimal.parse("1.5")),
    st.lists(TEXT, max_size=3).map(lambda xs: make_set(xs)),
    st.tuples(TEXT.filter(bool), TEXT),
)


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
        12_345,
        1_795_913_674.123456,
        principal,
        action,
        resource,
        None if context is None else Record(context),
    )


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
)


@settings(max_examples=400, deadline=None)
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
    json.loads(expected)


def test_a_batch_mixes_fast_and_full_events_in_order() -> None:
    plain = record(1, True, ("Agent", "a"), ("Action", "read"), ("Doc", "d"), ("p",), (), 0, {"n": 1})
    entity = record(
        2, False, ("Agent", "a"), ("Action", "read"), ("Doc", "d"), (), (), 0, {"who": ("Agent", "b")}
    )
    failed = DecisionRecord(
        3, False, ("forbid_errored",), (), (("f1", "boom"),), 0, (), (), "rev", 1, 1.0,
        ("Agent", "a"), ("Action", "read"), ("Doc", "d"), None,
    )  # fmt: skip
    batch = [plain, entity, failed, plain]
    assert encode_events(batch) == [orjson.dumps(decision_event(r)) for r in batch]
    assert b'"who":{"__entity":{"type":"Agent","id":"b"}}' in encode_events([entity])[0]
    assert encode_events(batch, ("context.n",)) == [
        orjson.dumps(decision_event(r, ("context.n",))) for r in batch
    ]
