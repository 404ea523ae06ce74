"""Behaviour of delegated requests (issue 13): "behaviour learns the acting agent's profile, with
the human as context". A request made with a delegated token (an agent acting for a human) is
judged and learned on the current actor's profile; the subject it acts for is a feature of the
request (``new_on_behalf`` when the agent never acted for that subject); a quarantine earned by
the agent's behaviour takes the agent, not the human; a quarantined subject is still denied."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import vigil
from tests.behaviour_support import T0, TABLES, engine, request, write_workspace
from vigil.model.request import parse_authzen

AGENT = ("Agent", "data-agent-0")
HUMANS = ("alice", "bob", "carol")


def _workspace(root: Path) -> Path:
    write_workspace(root, {"learning_days": 7, "learning_requests": 100, "peers": []})
    path = root / "entities" / "e.json"
    items = json.loads(path.read_text())
    items += [
        {"uid": {"type": "User", "id": h}, "attrs": {}, "parents": [{"type": "Team", "id": "data"}]}
        for h in HUMANS
    ]
    path.write_text(json.dumps(items))
    return root


def _for(e: vigil.Engine, human: str, action: str, table: str, when: datetime, **ctx: Any) -> Any:
    st = e._state
    body = request("data-agent-0", action, table, when, **ctx)
    body["subject"] = {"type": "User", "id": human}
    req = parse_authzen(body, st.action_type)
    return e._decide(st, req, when.timestamp(), perf_counter_ns(), (AGENT,))


def _habit(e: vigil.Engine) -> datetime:
    """Two weeks of office hours: the agent reads its team's tables for alice and bob."""
    last = T0
    for d in range(14):
        day = T0 + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for k in range(20):
            when = day + timedelta(hours=9 + k % 8, minutes=(k * 7) % 50)
            assert _for(e, HUMANS[k % 2], "read", TABLES["data"][k % 4], when).allowed
            last = when
    return last


def test_the_agent_learns_and_the_human_is_context(tmp_path: Path) -> None:
    e = engine(_workspace(tmp_path))
    try:
        when = _habit(e) + timedelta(minutes=5)
        profiles = e.profiles.profiles
        assert AGENT in profiles and ("User", "alice") not in profiles
        assert {'for:User::"alice"', 'for:User::"bob"'} <= set(profiles[AGENT].args)
        usual = _for(e, "alice", "read", TABLES["data"][1], when)
        assert usual.allowed and "new_on_behalf" not in usual.signals
        when += timedelta(seconds=30)
        new = _for(e, "carol", "read", TABLES["data"][1], when)
        assert "new_on_behalf" in new.signals
        why = next(d["why"] for d in new.assessment.details() if d["signal"] == "new_on_behalf")
        assert 'User::"carol"' in why and 'User::"alice"' in why
    finally:
        e.close()


def test_the_agents_own_habit_judges_a_delegated_request(tmp_path: Path) -> None:
    """A read-only agent writing for a human drifts: judged on the agent's history, which the human
    (who has none here) could not give."""
    e = engine(_workspace(tmp_path))
    try:
        when = _habit(e) + timedelta(minutes=5)
        rec = _for(e, "alice", "delete", TABLES["data"][1], when)
        assert "privilege_drift" in rec.signals and not rec.allowed
        assert rec.delegation == (AGENT,)
    finally:
        e.close()


def test_a_quarantine_earned_while_acting_for_a_human_takes_the_agent(tmp_path: Path) -> None:
    e = engine(_workspace(tmp_path))
    try:
        when = _habit(e) + timedelta(days=2, hours=-6)  # a night, from afar
        for i in range(12):
            when += timedelta(seconds=20)
            _for(
                e,
                "alice",
                "delete",
                TABLES["payments"][i % 8],
                when,
                ip="203.0.113.9",
                region="ap-southeast-2",
            )
        assert AGENT in e.quarantine
        assert ("User", "alice") not in e.quarantine
        when += timedelta(seconds=20)
        rec = _for(e, "bob", "read", TABLES["data"][0], when)
        assert not rec.allowed and rec.reason_codes == ("quarantined",)
    finally:
        e.close()


def test_a_quarantined_subject_is_denied_when_an_agent_acts_for_it(tmp_path: Path) -> None:
    e = engine(_workspace(tmp_path))
    try:
        when = _habit(e) + timedelta(minutes=5)
        e.quarantine.add(("User", "alice"), reason="test", by="priya", now=when.timestamp())
        rec = _for(e, "alice", "read", TABLES["data"][1], when)
        assert not rec.allowed and rec.reason_codes == ("quarantined",)
        assert _for(e, "bob", "read", TABLES["data"][1], when + timedelta(seconds=1)).allowed
    finally:
        e.close()
