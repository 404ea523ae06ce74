"""Across identities (issue 17): an admin step of one identity on another (a key created for it,
a role assumed, a grant to it) links the second identity's next new privileged step to one
escalation chain. On the old behaviour the second identity's step was judged alone (a new
action: weak)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.behaviour_support import TABLES, engine, habit, request, write_workspace

A, B = "payments-agent-0", "payments-agent-1"
SETTINGS = {"learning_days": 7, "learning_requests": 100}


def _trained(tmp_path: Path) -> tuple[object, object]:
    e = engine(write_workspace(tmp_path, SETTINGS))
    last = habit(e, A, days=14, per_day=20, actions=("read", "write"), tables=4)
    last = max(last, habit(e, B, days=14, per_day=20, actions=("read", "write"), tables=4))
    # A's routine includes creating keys for B (allowed, learned)
    for k in range(12):
        when = last - timedelta(days=12 - k, hours=1)
        e.decide(request(A, "create_key", B, when, rtype="Agent"), now=when)  # type: ignore[attr-defined]
    return e, last


def test_a_new_privileged_step_right_after_another_identity_enabled_it_is_one_chain(tmp_path: Path) -> None:
    e, last = _trained(tmp_path)
    when = last + timedelta(hours=1)
    key = e.decide(request(A, "create_key", B, when, rtype="Agent"), now=when)  # type: ignore[attr-defined]
    assert key.allowed, (key.reason_codes, key.signals)
    when += timedelta(minutes=3)
    rec = e.decide(request(B, "delete", TABLES["payments"][0], when), now=when)  # type: ignore[attr-defined]
    assert not rec.allowed, (rec.risk, rec.explanations())
    assert "escalation_chain" in rec.signals


def test_without_the_enabling_step_the_same_request_is_weak(tmp_path: Path) -> None:
    e, last = _trained(tmp_path)
    when = last + timedelta(hours=1, minutes=3)
    rec = e.decide(request(B, "delete", TABLES["payments"][0], when), now=when)  # type: ignore[attr-defined]
    assert rec.allowed and "escalation_chain" not in rec.signals, rec.explanations()


def test_the_link_lasts_one_chain_window(tmp_path: Path) -> None:
    e, last = _trained(tmp_path)
    when = last + timedelta(hours=1)
    e.decide(request(A, "create_key", B, when, rtype="Agent"), now=when)  # type: ignore[attr-defined]
    when += timedelta(minutes=20)  # chain_window_s is 900
    rec = e.decide(request(B, "delete", TABLES["payments"][0], when), now=when)  # type: ignore[attr-defined]
    assert "escalation_chain" not in rec.signals


def test_a_linked_identity_with_a_chain_of_its_own_gets_one_chain_signal(tmp_path: Path) -> None:
    e, last = _trained(tmp_path)
    when = last + timedelta(hours=1)
    e.decide(request(A, "create_key", B, when, rtype="Agent"), now=when)  # type: ignore[attr-defined]
    when += timedelta(minutes=1)
    e.decide(request(B, "write", TABLES["payments"][1], when), now=when)  # type: ignore[attr-defined]
    when += timedelta(minutes=1)
    rec = e.decide(request(B, "grant", TABLES["payments"][1], when), now=when)  # type: ignore[attr-defined]
    assert list(rec.signals).count("escalation_chain") == 1, rec.signals
    assert not rec.allowed
