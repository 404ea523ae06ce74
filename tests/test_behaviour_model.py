"""Behaviour signals, their explanations, unknown context fields, and the learning invariants.

Each named signal is raised by a request built to show it, against an identity with a habit;
missing and malformed context fields are reported unknown and explained, never a crash; the
one-pass learning (assess with the decision) and the two-step one (assess, then learn) leave the
same profile; snapshots round-trip; memory stays bounded however new every request is.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vigil
from tests.behaviour_support import T0, engine, habit, request, write_workspace
from tests.profiles import examples
from vigil.behaviour.model import BehaviourModel, ResourceInfo
from vigil.behaviour.privilege import ADMIN, READ, WRITE, ActionClasses, name_class
from vigil.behaviour.profile import (
    CAPS,
    KINDS,
    NOV_ACTION,
    NOV_ARG,
    NOV_FOR,
    NOV_IDENT,
    NOV_NET,
    NOV_REGION,
    NOV_RESOURCE,
    NOV_RTYPE,
    NOV_SEG,
    NOV_UA,
    Profile,
)
from vigil.behaviour.regions import distance_km, locate
from vigil.behaviour.signals import combine
from vigil.policy.extensions import IPAddr
from vigil.policy.values import EvalError
from vigil.workspace.loader import load_workspace
from vigil.workspace.settings import BehaviourSettings

WHO = "payments-agent-0"


@pytest.fixture
def trained(tmp_path: Path) -> Iterator[tuple[vigil.Engine, datetime]]:
    """An engine (shadow mode: nothing is denied, everything is reported) whose payments agent
    has two weeks of office-hours reads of four tables."""
    e = engine(write_workspace(tmp_path / "ws", {"mode": "shadow"}))
    last = habit(e, WHO, actions=("read",))
    yield e, last
    e.close()


def next_day(last: datetime, hour: int = 10) -> datetime:
    day = (last + timedelta(days=1)).replace(hour=hour, minute=3, second=0)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def decide(
    e: vigil.Engine, when: datetime, action: str = "read", resource: str = "payments-table-0", **kw: Any
) -> vigil.DecisionRecord:
    return e.decide(request(WHO, action, resource, when, **kw), now=when)


def explained(r: vigil.DecisionRecord, signal: str, *words: str) -> str:
    assert signal in r.signals, (signal, r.signals, r.explanations())
    line = next(x for x in r.explanations() if x.startswith(signal + " "))
    for w in words:
        assert w in line, (w, line)
    return line


# -- every named signal ----------------------------------------------------------------------
def test_calm_request_raises_nothing(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    r = decide(e, next_day(last))
    assert (r.risk, r.signals, r.advice) == (0, (), ())
    assert r.allowed and r.reason_codes == ("policy_permit",)


def test_new_region_and_network_and_user_agent(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    r = decide(
        e, next_day(last), region="ap-southeast-1", ip="203.0.113.9", user_agent="python-requests/2.31"
    )
    explained(r, "new_region", "'ap-southeast-1'", "known: 'eu-west-1'")
    explained(r, "new_network", "'203.0.113.0/24'")
    explained(r, "new_user_agent", "'python-requests'", "known: 'boto3'")
    assert r.risk >= 60  # three independent novelties of a very regular identity
    assert r.allowed and {"shadow_step_up", "shadow_risk_deny"} & set(r.reason_codes)  # shadow: reported


def test_a_new_subnet_inside_a_known_network_counts_half(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    far = decide(e, next_day(last), ip="203.0.113.9")
    near = decide(e, next_day(last) + timedelta(minutes=1), ip="10.10.77.4")
    explained(near, "new_network", "inside a known wider network")
    assert 0 < near.risk < far.risk


def test_unusual_hour(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    r = decide(e, next_day(last, hour=3))
    explained(r, "unusual_hour", "03:00 UTC", "0.0%")


def test_impossible_travel(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    t = next_day(last)
    decide(e, t)
    r = decide(e, t + timedelta(minutes=8), region="ap-northeast-1")
    explained(r, "impossible_travel", "'ap-northeast-1'", "'eu-west-1'", "km/h")


def test_privilege_drift_and_new_action(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    t = next_day(last)
    explained(
        decide(e, t, action="delete"), "privilege_drift", "first write action", "only used read actions"
    )
    explained(decide(e, t + timedelta(minutes=1), action="list"), "new_action", "'list'", "known: 'read'")


def test_new_resource_and_segment_crossing(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    t = next_day(last)
    explained(decide(e, t, resource="payments-table-6"), "new_resource", "payments-table-6")
    r = decide(e, t + timedelta(minutes=1), resource="data-table-1")
    explained(r, "segment_crossing", 'Team::"data"', 'Team::"payments"')


def test_enumeration(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    t = next_day(last)
    signals: set[str] = set()
    for i in range(30):
        r = decide(e, t + timedelta(seconds=5 * i), resource=f"payments-export-{i}")
        signals.update(r.signals)
        if "enumeration" in r.signals:
            explained(r, "enumeration", "never-seen resources")
            break
    assert "enumeration" in signals and i < 15


def test_rate_spike(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    t = next_day(last)
    for i in range(60):
        r = decide(e, t + timedelta(seconds=i), resource="payments-table-1")
        if "rate_spike" in r.signals:
            explained(r, "rate_spike", "requests in the last")
            break
    assert "rate_spike" in r.signals and i < 20


def test_escalation_chain(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    t = next_day(last)
    decide(e, t, action="write")
    r = decide(e, t + timedelta(minutes=2), action="grant")
    explained(r, "escalation_chain", "privilege climb", "'grant'")
    assert "privilege_drift" in r.signals
    r = decide(
        e, t + timedelta(minutes=3), action="create_key", rtype="ServiceAccount", resource="payments-api"
    )
    assert "escalation_chain" in r.signals and r.risk >= 85


def test_a_known_admin_routine_is_no_chain(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path / "ws", {"mode": "shadow"}))
    last = habit(e, WHO, actions=("read", "write", "grant"))
    r = decide(e, next_day(last), action="grant")
    assert "escalation_chain" not in r.signals and "privilege_drift" not in r.signals


# -- unknown and malformed context ---------------------------------------------------------------
def test_missing_fields_are_unknown_and_explained(trained: tuple[vigil.Engine, datetime]) -> None:
    e, last = trained
    t = next_day(last)
    req = request(WHO, "read", "payments-table-0", t, region=None, user_agent=None)
    del req["context"]["ip"]
    del req["context"]["time"]  # the decision time is used
    r = e.decide(req, now=t)
    assert r.risk == 0
    unknown = {d["signal"]: d["why"] for d in r.assessment.unknown_details()}
    assert unknown == {
        "new_network": "context.ip is missing",
        "new_region": "context.region is missing",
        "impossible_travel": "context.region is missing",
        "new_user_agent": "context.user_agent is missing",
    }
    assert "unknown_signals" not in r.to_authzen(full=True)["context"]  # the PEP's habit, not news
    assert any("unknown, context.ip is missing" in x for x in r.explanations())


@pytest.mark.parametrize(
    ("field", "value", "signal", "why"),
    [
        ("ip", "999.1.2.3", "new_network", "is not an IP address"),
        ("ip", 42, "new_network", "is not an IP address"),
        ("ip", {"__extn": {"fn": "decimal", "arg": "1.0"}}, "new_network", "is not an IP address"),
        ("region", "", "new_region", "is not a region name"),
        ("region", ["eu-west-1"], "new_region", "is not a region name"),
        ("user_agent", True, "new_user_agent", "is not a user-agent string"),
        ("time", "yesterday", "unusual_hour", "is not an RFC 3339"),
        ("time", 1790000000, "unusual_hour", "is not an RFC 3339 string"),
        ("time", "2020-01-01T00:00:00Z", "unusual_hour", "not trusted"),
    ],
)
def test_malformed_fields_are_unknown_and_explained(
    trained: tuple[vigil.Engine, datetime], field: str, value: Any, signal: str, why: str
) -> None:
    e, last = trained
    t = next_day(last)
    req = request(WHO, "read", "payments-table-0", t)
    req["context"][field] = value
    r = e.decide(req, now=t)
    assert r.allowed
    unknown = r.to_authzen(full=True)["context"]["unknown_signals"]
    assert any(u["signal"] == signal and why in u["why"] for u in unknown), unknown


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=examples(300))
@given(
    st.dictionaries(
        st.sampled_from(["time", "ip", "region", "user_agent", "hour"]),
        JSON
        | st.sampled_from(["10.1.2.3", "::1", "fe80::1%eth0", "2026-13-45T99:99:99Z", "eu-west-1", "\x00"]),
    )
)
def test_junk_context_never_crashes(trained: tuple[vigil.Engine, datetime], junk: dict[str, Any]) -> None:
    e, last = trained
    t = next_day(last)
    req = request(WHO, "read", "payments-table-0", t)
    req["context"] = junk
    try:
        r = e.decide(req, now=t)
    except vigil.RequestError:
        return  # values with no Cedar equivalent (null, floats) are refused before anything runs
    assert isinstance(r.risk, int) and 0 <= r.risk <= 100
    r.to_authzen()
    r.explanations()


# -- learning invariants --------------------------------------------------------------------------
def _model(tmp_path: Path, **behaviour: Any) -> BehaviourModel:
    ws = load_workspace(write_workspace(tmp_path / "ws", behaviour))
    return BehaviourModel(ws.settings.behaviour, ws.policy_set.store)


def _stream(
    seed: int, n: int
) -> Iterator[tuple[tuple[str, str], tuple[str, str], tuple[str, str], dict[str, Any], float, bool]]:
    rng = random.Random(seed)
    t = T0.timestamp()
    who = [("Agent", f"payments-agent-{i}") for i in range(3)]
    for _ in range(n):
        t += rng.choice((0.0, 1.0, 7.0, 60.0, 900.0, 3_600.0, 40_000.0))
        ctx: dict[str, Any] = {}
        if rng.random() < 0.9:
            ctx["ip"] = rng.choice(
                (
                    "10.10.0.5",
                    "10.10.0.9",
                    "10.10.4.1",
                    "203.0.113.7",
                    f"10.{rng.randrange(99)}.1.1",
                    "bad",
                    "10.10.0.5/32",
                    "2001:db8::1",
                )
            )
        if rng.random() < 0.9:
            ctx["region"] = rng.choice(("eu-west-1", "eu-west-1", "us-east-1", "ap-northeast-1"))
        if rng.random() < 0.5:
            ctx["user_agent"] = rng.choice(("boto3/1", "boto3/2", "curl/8"))
        action = ("Action", rng.choice(("read", "read", "list", "write", "grant", "create_key")))
        resource = ("Database", f"payments-table-{rng.randrange(12)}")
        yield rng.choice(who), action, resource, ctx, t, rng.random() < 0.85


@pytest.mark.parametrize("seed", range(6))
def test_one_pass_and_two_step_learning_leave_the_same_profile(tmp_path: Path, seed: int) -> None:
    fused_m = _model(tmp_path, learning_requests=20)
    split_m = _model(tmp_path, learning_requests=20)
    fused: dict[tuple[str, str], Profile] = {}
    split: dict[tuple[str, str], Profile] = {}
    for who, action, resource, ctx, t, allowed in _stream(seed, 1_500):
        p = fused.get(who)
        # the engine's way: the stored resource entity passed along (None when not stored)
        entity = fused_m.store.get(resource) if fused_m.store is not None else None
        a1, f1 = fused_m.assess(p, action, resource, ctx, t, allowed, entity, _parsed_ip(ctx))
        if f1 is not None:  # first request, or the risk would change the decision
            if p is None:
                p = fused[who] = Profile(f1.t)
            high = a1.risk >= fused_m.step_up_risk and not a1.learning
            fused_m.learn(p, f1, allowed and not high, allowed and not high)
        q = split.get(who)
        a2, f2 = split_m.assess(q, action, resource, ctx, t)
        assert f2 is not None
        if q is None:
            q = split[who] = Profile(f2.t)
        high = a2.risk >= split_m.step_up_risk and not a2.learning
        split_m.learn(q, f2, allowed and not high, allowed and not high)
        assert (a1.risk, a1.signals, a1.learning) == (a2.risk, a2.signals, a2.learning)
    for who, p in fused.items():
        assert p.to_blob() == split[who].to_blob(), who


def _parsed_ip(ctx: dict[str, Any]) -> IPAddr | None:
    """What the engine passes along: its Cedar parse of ``context.ip``, when there is one."""
    try:
        return IPAddr.parse(ctx["ip"])
    except (KeyError, EvalError):
        return None


def test_resource_info_kept_on_the_entity_is_the_models_own(tmp_path: Path) -> None:
    """A stored resource's info (hash, bitmap position, type, segment) is computed on its first
    assessment and kept on its Entity; it is what the model computes for the uid itself."""
    m = _model(tmp_path, segments=["Environment"])
    assert m.store is not None
    resource = ("Database", "payments-table-0")
    entity = m.store.get(resource)
    assert entity is not None and entity.resource_info is None
    _, f = m.assess(None, ("Action", "read"), resource, {}, T0.timestamp(), None, entity)
    assert f is not None
    assert entity.resource_info is f.ri
    assert _fields(f.ri) == _fields(m.resource_info(resource))
    assert f.ri.seg == 'Environment::"prod"' and f.ri.rtype == "Database"
    # an unknown resource takes the model's own table
    _, f = m.assess(None, ("Action", "read"), ("Database", "nowhere"), {}, T0.timestamp())
    assert f is not None and f.ri is m.resource_info(("Database", "nowhere"))


def _fields(ri: ResourceInfo) -> tuple[int, int, int, str, str | None]:
    return (ri.h, ri.byte, ri.mask, ri.rtype, ri.seg)


def test_novelty_counts_by_kind() -> None:
    """Each kind's novelty count is its own field, in KINDS order, and survives a snapshot."""
    p = Profile(T0.timestamp())
    for i, kind in enumerate(KINDS):
        for _ in range(i + 1):
            p.count_novel(kind_index(kind))
    assert p.novelties() == [float(i + 1) for i in range(len(KINDS))]
    assert [p.novel(kind_index(k)) for k in KINDS] == p.novelties()
    assert Profile.from_blob(p.to_blob()).novelties() == p.novelties()
    p.halve()
    assert p.novelties() == [(i + 1) / 2 for i in range(len(KINDS))]


def kind_index(kind: str) -> int:
    return {
        "region": NOV_REGION,
        "net": NOV_NET,
        "ua": NOV_UA,
        "action": NOV_ACTION,
        "resource": NOV_RESOURCE,
        "rtype": NOV_RTYPE,
        "seg": NOV_SEG,
        "arg": NOV_ARG,
        "ident": NOV_IDENT,
        "for": NOV_FOR,
    }[kind]


def test_snapshot_round_trip_assesses_alike(tmp_path: Path) -> None:
    m = _model(tmp_path, learning_requests=20)
    profiles: dict[tuple[str, str], Profile] = {}
    probes = []
    for who, action, resource, ctx, t, allowed in _stream(99, 2_000):
        p = profiles.get(who)
        a, f = m.assess(p, action, resource, ctx, t)
        assert f is not None
        if p is None:
            p = profiles[who] = Profile(f.t)
        m.learn(p, f, allowed, allowed)
        probes.append((who, action, resource, ctx, t + 1))
    for who, p in profiles.items():
        copy = Profile.from_blob(p.to_blob())
        assert copy.to_blob() == p.to_blob()
        for w, action, resource, ctx, t in probes[-200:]:
            if w == who:
                a, _ = m.assess(p, action, resource, ctx, t)
                b, _ = m.assess(copy, action, resource, ctx, t)
                assert (a.risk, a.signals) == (b.risk, b.signals)
    with pytest.raises(ValueError):
        Profile.from_blob(b"junk")


def test_memory_stays_bounded_however_new_everything_is(tmp_path: Path) -> None:
    m = _model(tmp_path, learning_requests=20, establish_s=0)
    p: Profile | None = None
    t = T0.timestamp()
    for i in range(6_000):
        ctx = {"ip": f"10.{i % 250}.{i % 199}.1", "region": f"xx-region-{i}", "user_agent": f"agent{i}/1"}
        _a, f = m.assess(p, ("Action", f"verb{i}"), ("Database", f"t{i}"), ctx, t + i)
        assert f is not None
        if p is None:
            p = Profile(t)
        m.learn(p, f, True, True)
    assert p is not None
    assert len(p.regions) <= CAPS["region"] and len(p.uas) <= CAPS["ua"] and len(p.actions) <= CAPS["action"]
    assert len(p.nets) <= CAPS["net"] and (p.cand is None or len(p.cand) <= 32)
    assert p.nr_recent is not None and len(p.nr_recent) <= 16
    assert len(p.to_blob()) < 6_000


# -- building blocks -------------------------------------------------------------------------------
def test_risk_combines_as_independent_evidence() -> None:
    assert combine([]) == 0
    assert combine([("a", 50, "", ())]) == 50
    assert combine([("a", 50, "", ()), ("b", 50, "", ())]) == 75
    assert combine([("a", 100, "", ()), ("b", 10, "", ())]) == 100


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("read", (READ, False)),
        ("s3:GetObject", (READ, False)),
        ("secretsmanager:GetSecretValue", (READ, True)),
        ("write", (WRITE, False)),
        ("ec2:RunInstances", (WRITE, False)),
        ("cloudtrail:StopLogging", (WRITE, True)),
        ("iam:CreateAccessKey", (ADMIN, True)),
        ("iam:AttachUserPolicy", (ADMIN, True)),
        ("grant", (ADMIN, True)),
        ("sts:AssumeRole", (ADMIN, True)),
    ],
)
def test_actions_are_classified_by_name(name: str, expected: tuple[int, bool]) -> None:
    assert name_class(name) == expected


def test_workspace_action_groups_win_over_names() -> None:
    ws = load_workspace(Path(__file__).resolve().parents[1] / "examples" / "agent-fleet")
    classes = ActionClasses(
        ws.policy_set.store, read=("readonly",), write=("mutating",), admin=("admin",), sensitive=()
    )
    assert classes.get(("Action", "invoke")) == (WRITE, False)  # in "mutating"; by name it would write too
    assert classes.get(("Action", "list")) == (READ, False)
    assert classes.get(("Action", "assume_role")) == (ADMIN, True)
    off = ActionClasses(None, by_name=False)
    assert off.get(("Action", "iam:CreateAccessKey")) == (READ, False)


def test_regions() -> None:
    dub, exact = locate("eu-west-1") or ((0.0, 0.0), False)
    assert exact and 5_000 < distance_km(dub, locate("us-east-1")[0]) < 6_000  # type: ignore[index]
    assert locate("us-north-2r") is not None and not locate("us-north-2r")[1]  # type: ignore[index]
    assert locate("nowhere") is None


def test_settings_defaults_are_valid() -> None:
    b = BehaviourSettings()
    assert b.step_up_risk < b.deny_risk and b.quarantine_risk >= b.step_up_risk
