"""Behaviour in the decision pipeline: shadow never changes a decision, learning enforces only self-evident evidence,
a quarantined identity is never allowed, step-up tickets and approvals, automatic quarantine,
context.vigil for Cedar, state that survives a restart, and profiles updated after the decision."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vigil
from tests.behaviour_support import AGENTS, T0, TABLES, engine, habit, request, write_workspace
from tests.profiles import examples
from vigil.operations.approvals import bound_context
from vigil.operations.service import StateDesk
from vigil.store import MemoryStore, QuarantineEntry, StoreError

WHO = "payments-agent-0"
OFF = {name: 0 for name in vigil.behaviour.SIGNALS}  # every signal switched off: policy only
POLICIES = """@id("permit-all")
permit (principal, action, resource);
@id("forbid-deletes-of-dev")
forbid (principal, action == Action::"delete", resource in Environment::"dev");
"""


def after(last: datetime, hour: int = 10) -> datetime:
    day = (last + timedelta(days=1)).replace(hour=hour, minute=0, second=0)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


# -- the three invariants, as properties -------------------------------------------------------------
REQUESTS = st.tuples(
    st.sampled_from(AGENTS),
    st.sampled_from(("read", "list", "write", "delete", "grant", "create_key")),
    st.sampled_from(TABLES["payments"] + TABLES["data"] + ("elsewhere-1", "elsewhere-2")),
    st.integers(0, 40 * 24 * 3600),  # seconds after T0
    st.sampled_from(("10.10.0.7", "10.11.3.8", "203.0.113.9", "198.51.100.1", "bad-ip")),
    st.sampled_from(("eu-west-1", "ap-northeast-1", "us-east-1", "")),
    st.sampled_from(("boto3/1.34", "curl/8.1", "python-requests/2.31")),
)


def _req(item: tuple[Any, ...]) -> tuple[dict[str, Any], datetime]:
    who, action, res, offset, ip, region, ua = item
    when = T0 + timedelta(seconds=offset)
    return request(who, action, res, when, ip=ip, region=region or None, user_agent=ua), when


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, vigil.Engine]:
    """Engines on the same policies: policy-only (every signal off), shadow, and enforce with a
    learning period that never ends; each with two weeks of habits already learned."""
    root = tmp_path_factory.mktemp("trio")
    engines = {
        "policy": engine(write_workspace(root / "p", {"weights": OFF}, policies=POLICIES)),
        "shadow": engine(
            write_workspace(root / "s", {"mode": "shadow", "learning_requests": 20}, policies=POLICIES)
        ),
        "learning": engine(
            write_workspace(
                root / "l", {"learning_requests": 10**9, "learning_days": 10_000}, policies=POLICIES
            )
        ),
        "off": engine(write_workspace(root / "o", {"mode": "off"}, policies=POLICIES)),
    }
    for e in engines.values():
        for who in AGENTS[:3]:
            habit(e, who, days=10, per_day=12)
    return engines


@settings(max_examples=examples(150))
@given(st.lists(REQUESTS, min_size=1, max_size=12))
def test_shadow_mode_never_changes_a_decision(
    trio: dict[str, vigil.Engine], items: list[tuple[Any, ...]]
) -> None:
    for item in sorted(items, key=lambda i: i[3]):
        req, when = _req(item)
        base = trio["policy"].decide(req, now=when)
        shadow = trio["shadow"].decide(req, now=when)
        assert (shadow.allowed, shadow.policies) == (base.allowed, base.policies)
        assert shadow.advice == () and shadow.ticket is None


@settings(max_examples=examples(150))
@given(st.lists(REQUESTS, min_size=1, max_size=12))
def test_learning_enforces_only_self_evident_evidence(
    trio: dict[str, vigil.Engine], items: list[tuple[Any, ...]]
) -> None:
    """An identity that is learning (and will be for years: its weak signals are backed by next to
    no history) is enforced only on self-evident evidence: impossible travel, an escalation chain,
    a first admin action (docs/behaviour.md, "Learning is not a free pass")."""
    strong = {"impossible_travel", "escalation_chain", "privilege_drift"}
    for item in sorted(items, key=lambda i: i[3]):
        req, when = _req(item)
        base = trio["policy"].decide(req, now=when)
        learning = trio["learning"].decide(req, now=when)
        if "quarantined" in learning.reason_codes:
            continue  # quarantined by earlier enforced decisions (checked when they were made)
        assert learning.policies == base.policies
        if learning.allowed == base.allowed:
            assert learning.advice == () and learning.ticket is None
            assert set(learning.reason_codes) <= set(base.reason_codes) | {"learning"}
        else:
            assert base.allowed and not learning.allowed
            assert strong & set(learning.signals), learning.signals


@settings(max_examples=examples(200))
@given(st.lists(REQUESTS, min_size=1, max_size=10))
def test_a_quarantined_identity_is_never_allowed(
    tmp_path_factory: pytest.TempPathFactory, items: list[tuple[Any, ...]]
) -> None:
    root = tmp_path_factory.mktemp("q")
    e = engine(write_workspace(root, {"learning_requests": 5}))
    victim = AGENTS[1]
    e.desk.add(("Agent", victim), by="ingrid.berg", reason="test")
    for item in items:
        req, when = _req((victim, *item[1:]))
        r = e.decide(req, now=when)
        assert not r.allowed and "quarantined" in r.reason_codes and r.advice == ("quarantined",)
    e.close()


@settings(max_examples=examples(100))
@given(st.lists(REQUESTS, min_size=1, max_size=12))
def test_mode_off_is_the_policy_alone(trio: dict[str, vigil.Engine], items: list[tuple[Any, ...]]) -> None:
    # [behaviour] mode = "off": the policy's answer, risk 0, no signals, and nothing learned
    off = trio["off"]
    for item in sorted(items, key=lambda i: i[3]):
        req, when = _req(item)
        base = trio["policy"].decide(req, now=when)
        r = off.decide(req, now=when)
        assert (r.allowed, r.policies, r.reason_codes) == (base.allowed, base.policies, base.reason_codes)
        assert (r.risk, r.signals, r.advice, r.ticket) == (0, (), (), None)
    assert len(off.profiles) == 0


def test_mode_off_still_denies_a_quarantined_identity(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, {"mode": "off"}))
    e.desk.add(("Agent", WHO), by="ingrid.berg", reason="test")
    r = e.decide(request(WHO, "read", "payments-table-0", T0), now=T0)
    assert not r.allowed and r.reason_codes == ("quarantined",) and r.risk == 0
    assert e.decide(request(AGENTS[2], "read", "payments-table-0", T0), now=T0).allowed
    e.close()


# -- step-up, tickets, approvals ----------------------------------------------------------------
@pytest.fixture
def enforced(tmp_path: Path) -> tuple[vigil.Engine, datetime, Path]:
    ws = write_workspace(tmp_path / "ws", {"learning_requests": 50}, store="sqlite")
    e = engine(ws, ticket_ids=iter(f"tkt_{i:04d}" for i in range(1000)).__next__)
    return e, habit(e, WHO), ws


def stolen(
    e: vigil.Engine, when: datetime, resource: str = "payments-table-0", action: str = "read"
) -> vigil.DecisionRecord:
    req = request(WHO, action, resource, when, ip="10.10.77.7", user_agent="python-requests/2.31")
    return e.decide(req, now=when)


def test_step_up_gives_a_ticket_and_an_approval_lets_the_retry_through(
    enforced: tuple[vigil.Engine, datetime, Path],
) -> None:
    e, last, _ = enforced
    t = after(last, hour=3)  # night, a new host, a scripting client
    r = stolen(e, t)
    assert not r.allowed and r.reason_codes == ("risk_step_up",) and r.advice == ("step_up",)
    assert r.ticket is not None and r.ticket["id"] == "tkt_0000" and r.ticket["state"] == "pending"
    assert {"subject", "action", "resource", "expires", "why"} <= set(r.ticket)
    assert r.to_authzen()["context"]["ticket"]["id"] == "tkt_0000"
    again = stolen(e, t + timedelta(seconds=30))
    assert again.ticket is not None and again.ticket["id"] == "tkt_0000"  # the agent retries: same ticket
    other = stolen(e, t + timedelta(seconds=40), resource="payments-table-1")
    assert other.ticket is not None and other.ticket["id"] == "tkt_0001"  # another resource: another ticket
    e._clock = lambda: (t + timedelta(minutes=5)).timestamp()  # the approver's clock
    ok = e.desk.approve("tkt_0000", by="priya.raman", note="migration")
    assert ok.state == "approved" and ok.decided_by == "priya.raman"
    retry = stolen(e, t + timedelta(minutes=6))
    assert retry.allowed and retry.reason_codes == ("policy_permit", "approved") and retry.risk >= 60
    # single use: the retry used the approval up; a use needs the same subject, action,
    # resource and bound context
    granted = e.approvals.granted
    subject, read = ("Agent", WHO), ("Action", "read")
    t6 = (t + timedelta(minutes=6)).timestamp()
    bound = bound_context(
        request(WHO, "read", "payments-table-0", t, ip="10.10.77.7", user_agent="python-requests/2.31")[
            "context"
        ]
    )
    assert granted(subject, read, ("Database", "payments-table-0"), bound, t6) is None
    assert e.approvals.get("tkt_0000").state == "used"
    e._clock = lambda: (t + timedelta(minutes=7)).timestamp()
    e.desk.approve("tkt_0001", by="priya.raman", uses=2)
    t8 = t6 + 120
    assert granted(subject, read, ("Database", "payments-table-0"), bound, t8) is None  # that resource only
    assert granted(subject, ("Action", "write"), ("Database", "payments-table-1"), bound, t8) is None
    assert granted(subject, read, ("Database", "payments-table-1"), bound, t8 + 3_600) is None  # expired
    assert granted(subject, read, ("Database", "payments-table-1"), ("", "", ""), t8) is None  # elsewhere
    assert granted(subject, read, ("Database", "payments-table-1"), bound, t8) is not None
    kinds = [(c.kind, c.by) for c in e.desk.changes()]
    assert ("ticket_created", "vigil") in kinds and ("ticket_approved", "priya.raman") in kinds


def test_a_denied_ticket_and_closed_tickets(enforced: tuple[vigil.Engine, datetime, Path]) -> None:
    e, last, _ = enforced
    t = after(last, hour=3)
    stolen(e, t)
    e._clock = lambda: (t + timedelta(minutes=1)).timestamp()
    assert e.desk.deny("tkt_0000", by="priya.raman", note="not us").state == "denied"
    with pytest.raises(vigil.VigilError) as err:
        e.desk.approve("tkt_0000", by="priya.raman")
    assert err.value.code == "ticket_closed"
    with pytest.raises(vigil.VigilError) as err:
        e.desk.approve("tkt_nope", by="priya.raman")
    assert err.value.code == "ticket_not_found"
    with pytest.raises(vigil.VigilError) as err:
        e.desk.deny("tkt_0000", by="  ")
    assert err.value.code == "invalid_argument"
    r = stolen(e, t + timedelta(minutes=2))
    assert not r.allowed and r.ticket is not None and r.ticket["id"] == "tkt_0001"  # a fresh ticket
    assert [tk.id for tk in e.desk.tickets(state="denied")] == ["tkt_0000"]


def test_repeated_high_risk_quarantines_until_an_owner_lifts_it(
    enforced: tuple[vigil.Engine, datetime, Path],
) -> None:
    e, last, _ = enforced
    t = after(last, hour=3)
    seen = []
    for i in range(8):
        r = e.decide(
            request(
                WHO,
                "read",
                "payments-table-0",
                t + timedelta(seconds=i),
                ip="198.51.100.7",
                region="ap-northeast-1",
                user_agent="curl/8",
            ),
            now=t + timedelta(seconds=i),
        )
        seen.append((r.allowed, r.reason_codes))
    assert seen[4] == (False, ("risk_deny", "quarantined"))  # the fifth high-risk request
    assert seen[5][1] == ("quarantined",)
    entry = e.desk.quarantined()[0]
    assert entry.subject == ("Agent", WHO) and entry.by == "vigil" and "new_region" in entry.reason
    calm = e.decide(
        request(WHO, "read", "payments-table-0", t + timedelta(hours=7)), now=t + timedelta(hours=7)
    )
    assert not calm.allowed and calm.advice == ("quarantined",)  # even its usual requests
    e.desk.lift(("Agent", WHO), by="priya.raman", note="key rotated")
    back = e.decide(
        request(WHO, "read", "payments-table-0", t + timedelta(hours=8)), now=t + timedelta(hours=8)
    )
    assert back.allowed
    with pytest.raises(vigil.VigilError) as err:
        e.desk.lift(("Agent", WHO), by="priya.raman")
    assert err.value.code == "not_quarantined"
    assert [c.kind for c in e.desk.changes()][-2:] == ["quarantine_added", "quarantine_lifted"] or any(
        c.kind == "quarantine_lifted" and c.by == "priya.raman" for c in e.desk.changes()
    )


def test_state_survives_a_restart(enforced: tuple[vigil.Engine, datetime, Path]) -> None:
    e, last, ws = enforced
    t = after(last, hour=3)
    stolen(e, t)
    probe = request(WHO, "read", "payments-table-0", t + timedelta(hours=7), ip="203.0.113.50")
    before = e._state.behaviour.assess(
        e.profiles.get(("Agent", WHO)),
        ("Action", "read"),
        ("Database", "payments-table-0"),
        probe["context"],
        t.timestamp(),
    )[0]
    e.desk.add(("Agent", AGENTS[1]), by="ingrid.berg", reason="check")
    e.close()
    again = engine(ws)
    assert [tk.id for tk in again.desk.tickets()] == ["tkt_0000"]
    assert [q.subject for q in again.desk.quarantined()] == [("Agent", AGENTS[1])]
    p = again.profiles.get(("Agent", WHO))
    assert p is not None and p.learned >= 200
    after_restart = again._state.behaviour.assess(
        p, ("Action", "read"), ("Database", "payments-table-0"), probe["context"], t.timestamp()
    )[0]
    assert (after_restart.risk, after_restart.signals) == (before.risk, before.signals)
    r = again.decide(request(AGENTS[1], "read", "payments-table-0", t), now=t)
    assert not r.allowed and r.advice == ("quarantined",)
    again.close()


def test_another_process_quarantine_reaches_a_running_engine(
    enforced: tuple[vigil.Engine, datetime, Path],
) -> None:
    e, last, ws = enforced
    t = after(last)
    assert e.decide(request(WHO, "read", "payments-table-0", t), now=t).allowed
    with StateDesk(ws) as desk:  # what `vigil quarantine add` does, from another process
        desk.add(("Agent", WHO), by="maya.okafor", reason="suspicious")
    deadline = time.monotonic() + 5
    i = 0
    while time.monotonic() < deadline:  # the snapshot thread's tick notices within about a second
        i += 1
        when = t + timedelta(minutes=i)
        r = e.decide(request(WHO, "read", "payments-table-0", when), now=when)
        if "quarantined" in r.reason_codes:
            break
        time.sleep(0.1)
    assert not r.allowed and r.advice == ("quarantined",)
    e.close()


def test_an_automatic_quarantine_holds_when_the_store_fails(tmp_path: Path) -> None:
    class Broken(MemoryStore):
        def put_quarantine(self, entry: QuarantineEntry) -> None:
            raise StoreError("disk full")

    e = engine(write_workspace(tmp_path / "ws", {"learning_requests": 50}), store=Broken())
    last = habit(e, WHO)
    t = after(last, hour=3)
    for i in range(6):
        e.decide(
            request(
                WHO,
                "read",
                "payments-table-0",
                t + timedelta(seconds=i),
                ip="198.51.100.7",
                region="ap-northeast-1",
            ),
            now=t + timedelta(seconds=i),
        )
    assert e.status()["store_errors"] >= 1 and e.status()["quarantined"] == 1
    r = e.decide(request(WHO, "read", "payments-table-0", t + timedelta(hours=9)), now=t + timedelta(hours=9))
    assert not r.allowed and r.advice == ("quarantined",)


# -- context.vigil, shadow reasons, learning after the decision ------------------------------------
RISKY_FORBID = (
    POLICIES
    + """@id("forbid-risky-writes")
forbid (principal, action, resource) when { context has vigil && context.vigil.risk >= 40 && context.vigil.signals.contains("new_network") };
"""
)


@pytest.mark.parametrize("mode", ["enforce", "shadow"])
def test_operators_can_write_rules_on_context_vigil(tmp_path: Path, mode: str) -> None:
    e = engine(
        write_workspace(
            tmp_path / "ws", {"mode": mode, "step_up_risk": 95, "deny_risk": 99}, policies=RISKY_FORBID
        )
    )
    last = habit(e, WHO)
    t = after(last)
    r = e.decide(request(WHO, "read", "payments-table-0", t, ip="203.0.113.9"), now=t)
    assert "new_network" in r.signals and 40 <= r.risk < 95
    if mode == "enforce":
        assert not r.allowed and r.policies == ("forbid-risky-writes",)
    else:
        assert r.allowed  # shadow: the policy sees a neutral context.vigil


def test_shadow_reports_what_enforce_would_do(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path / "ws", {"mode": "shadow"}))
    last = habit(e, WHO)
    t = after(last, hour=3)
    codes: list[str] = []
    for i in range(7):
        r = e.decide(
            request(
                WHO,
                "read",
                "payments-table-0",
                t + timedelta(seconds=i),
                ip="198.51.100.7",
                region="ap-northeast-1",
            ),
            now=t + timedelta(seconds=i),
        )
        assert r.allowed and r.advice == ()
        codes += r.reason_codes
    assert "shadow_risk_deny" in codes and "shadow_quarantine" in codes
    assert len(e.quarantine) == 0 and e.desk.tickets() == []


def test_a_request_cannot_raise_its_own_allowance(enforced: tuple[vigil.Engine, datetime, Path]) -> None:
    e, last, _ = enforced
    t = after(last)
    first = e.decide(request(WHO, "read", "payments-table-0", t, region="us-east-1"), now=t)
    second = e.decide(
        request(WHO, "read", "payments-table-0", t + timedelta(seconds=5), region="us-east-1"),
        now=t + timedelta(seconds=5),
    )
    assert "new_region" in first.signals and "new_region" in second.signals  # a candidate, not yet normal
    p = e.profiles.get(("Agent", WHO))
    assert p is not None and "us-east-1" not in p.regions


def test_unknown_identities_have_no_profile(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path / "ws"))
    r = e.decide(
        request("payments-agent-0", "read", "x", T0) | {"subject": {"type": "Agent", "id": "ghost"}}, now=T0
    )
    assert r.reason_codes == ("unknown_identity",) and len(e.profiles) == 0


def test_checking_a_workspace_writes_no_state(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vigil.cli.main import app

    ws = write_workspace(tmp_path / "ws", store="sqlite")
    result = CliRunner().invoke(app, ["check", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert not (ws / ".vigil" / "state.db").exists()


def test_an_approved_request_is_not_learned(enforced: tuple[vigil.Engine, datetime, Path]) -> None:
    """A human's approval accepts one risky request; it does not teach the profile that the new
    context is normal: the identity's next request from its new region and network (to another
    resource) is judged as before, with the same signals."""
    e, last, _ = enforced
    t = after(last)
    moved = {"ip": "10.10.140.3", "region": "us-east-1"}
    first = e.decide(request(WHO, "read", "payments-table-0", t, **moved), now=t)
    assert first.advice == ("step_up",) and first.ticket is not None
    e._clock = lambda: (t + timedelta(minutes=1)).timestamp()
    e.desk.approve(first.ticket["id"], by="priya.raman", note="moved to us-east-1")
    retry = e.decide(
        request(WHO, "read", "payments-table-0", t + timedelta(minutes=2), **moved),
        now=t + timedelta(minutes=2),
    )
    assert retry.allowed and "approved" in retry.reason_codes
    later = t + timedelta(minutes=3)
    other = e.decide(request(WHO, "read", "payments-table-1", later, **moved), now=later)
    assert "new_region" in other.signals and "new_network" in other.signals
