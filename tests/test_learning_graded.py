"""Learning is not a free pass (issue 17): signals of a learning identity are graded by how much
history backs them; self-evident evidence is enforced at once, weak novelty is not.

Each test here failed on the old rule (a learning identity's risk was recorded, never enforced):
a quiet identity that learns for weeks (two checks a day never reach ``learning_requests``) let a
reader write and delete, and let a sweep run to its end."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.behaviour_support import TABLES, engine, habit, request, write_workspace

DEFAULTS = {"learning_days": 7, "learning_requests": 100}
WHO = "data-agent-1"


def _quiet(tmp_path: Path, days: int = 21) -> tuple[object, object]:
    e = engine(write_workspace(tmp_path, DEFAULTS))
    last = habit(e, WHO, days=days, per_day=2, hours=(9, 16), tables=3)
    return e, last


def test_a_quiet_reader_that_starts_writing_is_stepped_up(tmp_path: Path) -> None:
    e, last = _quiet(tmp_path)
    prof = e.profiles.profiles[("Agent", WHO)]  # type: ignore[attr-defined]
    assert prof.learned < 100  # still learning by requests after three weeks
    when = last + timedelta(minutes=30)
    rec = e.decide(request(WHO, "write", TABLES["data"][0], when), now=when)  # type: ignore[attr-defined]
    assert not rec.allowed, rec.reason_codes
    assert "privilege_drift" in rec.signals
    assert "learning" not in rec.reason_codes


def test_a_quiet_identity_sweep_is_stopped_in_time(tmp_path: Path) -> None:
    e, last = _quiet(tmp_path)
    when = last + timedelta(minutes=40)
    first_block = None
    for i in range(60):
        t = when + timedelta(seconds=i)
        rec = e.decide(request(WHO, "read", f"scan-{i}", t), now=t)  # type: ignore[attr-defined]
        if not rec.allowed:
            first_block = i + 1
            break
    assert first_block is not None and first_block <= 20, first_block


def test_weak_novelty_of_a_young_identity_is_not_enforced(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, DEFAULTS))
    last = habit(e, WHO, days=1, per_day=15, tables=3)
    # a new network, a new user agent and a new table, a few hours later: novelty, weakly backed
    when = last + timedelta(hours=2)
    rec = e.decide(  # type: ignore[attr-defined]
        request(WHO, "read", TABLES["data"][5], when, ip="10.99.1.5", user_agent="curl/8.1"), now=when
    )
    assert rec.allowed, (rec.reason_codes, rec.signals, rec.risk)


def test_high_severity_evidence_is_enforced_from_the_first_days(tmp_path: Path) -> None:
    """An escalation chain (and a first admin action) is fully backed after a quarter of the
    learning period: here on day 3 of 7, with 45 of 100 requests learned."""
    e = engine(write_workspace(tmp_path, DEFAULTS))
    last = habit(e, WHO, days=3, per_day=15, actions=("read", "write"), tables=3)
    when = last + timedelta(minutes=5)
    # an escalation chain within minutes: write -> grant -> create_key (admin, sensitive)
    outcomes = []
    for k, action in enumerate(("write", "grant", "create_key")):
        t = when + timedelta(seconds=30 * k)
        outcomes.append(e.decide(request(WHO, action, TABLES["data"][1], t), now=t))  # type: ignore[attr-defined]
    assert not outcomes[1].allowed, [(o.reason_codes, o.signals) for o in outcomes]
    assert "learning" not in outcomes[1].reason_codes


def test_impossible_travel_is_enforced_while_learning(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, DEFAULTS))
    last = habit(e, WHO, days=2, per_day=10, tables=3)
    when = last + timedelta(minutes=10)
    rec = e.decide(  # type: ignore[attr-defined]
        request(WHO, "read", TABLES["data"][0], when, region="ap-northeast-1", ip="203.0.113.9"), now=when
    )
    assert not rec.allowed
    assert "impossible_travel" in rec.signals


def test_backing_is_the_share_of_the_learning_days(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, DEFAULTS))
    habit(e, WHO, days=1, per_day=10)
    beh = e._state.behaviour  # type: ignore[attr-defined]
    prof = e.profiles.profiles[("Agent", WHO)]  # type: ignore[attr-defined]
    assert beh.backing(prof, prof.first_seen) == 0.0
    assert abs(beh.backing(prof, prof.first_seen + 3.5 * 86_400) - 0.5) < 1e-9
    assert beh.backing(prof, prof.first_seen + 30 * 86_400) == 1.0
    by_requests = engine(write_workspace(tmp_path / "r", {"learning_days": 0, "learning_requests": 40}))
    habit(by_requests, WHO, days=1, per_day=10)
    prof = by_requests.profiles.profiles[("Agent", WHO)]  # type: ignore[attr-defined]
    assert abs(by_requests._state.behaviour.backing(prof, prof.first_seen) - 0.25) < 1e-9  # type: ignore[attr-defined]
