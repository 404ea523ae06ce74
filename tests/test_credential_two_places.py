"""``credential_two_places`` (issue 17, "a credential used from two places at once"): one
credential (``context.credential_id``) used alternately from two places (its /16 network and
region) within ``credential_window_s``: a copy in use beside its owner. High-severity evidence:
counted in full while an identity learns. One move is not enough, nor an identity whose networks
churn."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import vigil
from tests.behaviour_support import T0, TABLES, engine, request, write_workspace
from vigil.importers.cloudtrail import to_request

WHO = "data-agent-2"
KEY = "AKIAEXAMPLEKEY000001"
HOME = {"ip": "10.11.2.7", "region": "eu-west-1"}
AWAY = {"ip": "203.0.113.9", "region": "ap-southeast-2"}


def _use(e: vigil.Engine, when: datetime, where: dict[str, str], key: str = KEY, table: int = 0) -> Any:
    req = request(WHO, "read", TABLES["data"][table], when, credential_id=key, **where)
    return e.decide(req, now=when)


def _habit(e: vigil.Engine, days: int = 14) -> datetime:
    last = T0
    for d in range(days):
        day = T0 + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for k in range(20):
            last = day + timedelta(hours=9 + k % 8, minutes=(k * 7) % 50)
            _use(e, last, {**HOME, "ip": f"10.11.2.{7 + k % 5}"}, table=k % 4)
    return last


def test_a_copy_used_beside_its_owner_is_flagged(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, {"learning_days": 7, "learning_requests": 100}))
    when = _habit(e) + timedelta(minutes=3)
    assert "credential_two_places" not in _use(e, when, HOME).signals
    when += timedelta(minutes=1)
    away = _use(e, when, AWAY)  # one use elsewhere: a move, a trip (other signals may say more)
    assert "credential_two_places" not in away.signals
    when += timedelta(minutes=1)
    owner = _use(e, when, HOME)  # the owner goes on using it: two places at once
    assert "credential_two_places" in owner.signals and not owner.allowed
    why = next(d["why"] for d in owner.assessment.details() if d["signal"] == "credential_two_places")
    assert "10.11.*|eu-west-1" in why and "203.0.*|ap-southeast-2" in why
    when += timedelta(minutes=1)
    assert "credential_two_places" in _use(e, when, AWAY).signals


def test_a_move_and_a_slow_return_are_not_two_places(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, {"learning_days": 7, "learning_requests": 100}))
    when = _habit(e) + timedelta(minutes=3)
    _use(e, when, HOME)
    for _ in range(4):  # moved: every use from the new place
        when += timedelta(minutes=1)
        assert "credential_two_places" not in _use(e, when, AWAY).signals
    when += timedelta(minutes=11)  # back home after the window
    assert "credential_two_places" not in _use(e, when, HOME).signals
    # another credential of the same identity has its own history
    when += timedelta(minutes=1)
    assert "credential_two_places" not in _use(e, when, AWAY, key="AKIAOTHERKEY00000002").signals


def test_it_counts_in_full_while_the_identity_learns(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, {"learning_days": 30, "learning_requests": 1000}))
    when = _habit(e, days=3) + timedelta(minutes=3)
    _use(e, when, HOME)
    _use(e, when + timedelta(minutes=1), AWAY)
    rec = _use(e, when + timedelta(minutes=2), HOME)
    assert "credential_two_places" in rec.signals and not rec.allowed and rec.risk >= 60


def test_an_identity_whose_networks_churn_is_not_judged(tmp_path: Path) -> None:
    """A function whose every call leaves from another provider address."""
    e = engine(write_workspace(tmp_path, {"learning_days": 7, "learning_requests": 100}))
    when = T0
    for d in range(10):
        for k in range(20):
            when = T0 + timedelta(days=d, hours=9 + k % 8, minutes=k)
            _use(e, when, {"ip": f"{30 + (d * 20 + k) % 200}.{k}.1.1", "region": "eu-west-1"})
    when += timedelta(minutes=1)
    _use(e, when, {"ip": "52.1.1.1", "region": "eu-west-1"})
    _use(e, when + timedelta(minutes=1), {"ip": "54.1.1.1", "region": "eu-west-1"})
    rec = _use(e, when + timedelta(minutes=2), {"ip": "52.1.1.1", "region": "eu-west-1"})
    assert "credential_two_places" not in rec.signals


def test_switched_off_and_bad_values(tmp_path: Path) -> None:
    e = engine(
        write_workspace(tmp_path, {"learning_days": 7, "learning_requests": 100, "credential_window_s": 0})
    )
    when = _habit(e) + timedelta(minutes=3)
    for i, where in enumerate((HOME, AWAY, HOME)):
        assert "credential_two_places" not in _use(e, when + timedelta(minutes=i), where).signals
    e2 = engine(write_workspace(tmp_path / "b", {"learning_days": 7, "learning_requests": 100}))
    when = _habit(e2) + timedelta(minutes=3)
    for i, where in enumerate((HOME, AWAY, HOME)):  # not a credential id: ignored, never an error
        assert "credential_two_places" not in _use(e2, when + timedelta(minutes=i), where, key="").signals


def test_the_importer_names_the_credential() -> None:
    record = {
        "eventTime": "2026-10-05T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.11.2.7",
        "userIdentity": {"type": "IAMUser", "userName": "etl", "accountId": "1", "accessKeyId": KEY},
    }
    assert to_request(record)["context"]["credential_id"] == KEY


def test_another_identity_naming_the_key_does_not_flag_its_owner(tmp_path: Path) -> None:
    """Review finding: the credential table was keyed by the id alone, so any client naming a
    victim's key from elsewhere could push the victim to step-up. It is kept per identity now."""
    e = engine(write_workspace(tmp_path, {"learning_days": 7, "learning_requests": 100}))
    when = _habit(e) + timedelta(minutes=3)
    _use(e, when, HOME)
    other = request(
        "data-agent-3", "read", TABLES["data"][0], when + timedelta(minutes=1), credential_id=KEY, **AWAY
    )
    e.decide(other, now=when + timedelta(minutes=1))
    owner = _use(e, when + timedelta(minutes=2), HOME)
    assert "credential_two_places" not in owner.signals
