"""Peer groups learned from behaviour (issue 17): an identity whose entity names no team or owner
(an IAM role, a service account imported as it is) belongs to the group of identities that do the
same work: the segment (else the type) of the resources it works on and its privilege class, from
its first request. A new member's first request is judged against what that group has done."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import vigil
from tests.behaviour_support import T0, TABLES, engine, write_workspace
from vigil.behaviour.peers import GROUP_TYPE, work_uid

WORKERS = tuple(f"svc-{c}" for c in "abcde")


def _workspace(root: Path, peers: list[str] | None = None) -> Path:
    settings: dict[str, Any] = {"learning_days": 7, "learning_requests": 100}
    if peers is not None:
        settings["peers"] = peers
    write_workspace(root, settings)
    path = root / "entities" / "e.json"
    items = json.loads(path.read_text())
    for who in (*WORKERS, "svc-new", "svc-other"):  # no team, no owner: nothing names a group
        items.append({"uid": {"type": "Service", "id": who}, "attrs": {}, "parents": []})
    path.write_text(json.dumps(items))
    return root


def _call(who: str, table: str, when: datetime, ip: str, action: str = "read") -> dict[str, Any]:
    return {
        "subject": {"type": "Service", "id": who},
        "action": {"name": action},
        "resource": {"type": "Database", "id": table},
        "context": {
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ip": ip,
            "region": "eu-west-1",
            "user_agent": "boto3/1.34",
        },
    }


def _work(e: vigil.Engine) -> datetime:
    """Two weeks: five services read the data team's tables from 10.20.0.0/16."""
    last = T0
    for d in range(14):
        for i, who in enumerate(WORKERS):
            for k in range(6):
                last = T0 + timedelta(days=d, hours=8 + k, minutes=i * 7)
                e.decide(_call(who, TABLES["data"][k % 4], last, f"10.20.{i}.{k + 1}"), now=last)
    return last


def test_the_work_key() -> None:
    assert work_uid('Team::"data"', "Database", 0) == (GROUP_TYPE, 'work=Team::"data"+read')
    assert work_uid(None, "Database", 1) == (GROUP_TYPE, "work=Database+write")
    assert work_uid(None, "", 0) is None


def test_a_new_member_is_judged_against_the_identities_doing_the_same_work(tmp_path: Path) -> None:
    e = engine(_workspace(tmp_path))
    try:
        when = _work(e) + timedelta(hours=1)
        group = e.profiles.profiles[(GROUP_TYPE, 'work=Team::"data"+read')]
        assert group.learned >= 5 * 6 * 14 - 5  # every worker's learnable requests taught it
        first = e.decide(_call("svc-new", TABLES["data"][0], when, "203.0.113.9"), now=when)
        assert "new_network" in first.signals, first.explanations()
        assert any("its peers: first request" in x for x in first.explanations())
        # a first request from the group's usual network: nothing to say
        when += timedelta(minutes=1)
        calm = e.decide(_call("svc-other", TABLES["data"][1], when, "10.20.3.9"), now=when)
        assert "new_network" not in calm.signals
    finally:
        e.close()


def test_other_work_is_another_group_and_attributes_come_first(tmp_path: Path) -> None:
    e = engine(_workspace(tmp_path))
    try:
        when = _work(e) + timedelta(hours=1)
        # the payments team's tables, written: no identity did that work yet -> not judged
        rec = e.decide(_call("svc-new", TABLES["payments"][0], when, "203.0.113.9", "write"), now=when)
        assert rec.signals == () or "new_network" not in rec.signals
        # an identity with a team attribute keeps its team's group
        e.decide(_call_agent("data-agent-0", when), now=when)
        assert (
            e.profiles.profiles[("Agent", "data-agent-0")].base
            is e.profiles.profiles[(GROUP_TYPE, "team=data")]
        )
    finally:
        e.close()


def _call_agent(who: str, when: datetime) -> dict[str, Any]:
    body = _call(who, TABLES["data"][0], when, "10.11.0.7")
    body["subject"] = {"type": "Agent", "id": who}
    return body


def test_learned_groups_can_be_switched_off(tmp_path: Path) -> None:
    e = engine(_workspace(tmp_path, peers=["team", "owner"]))
    try:
        when = _work(e) + timedelta(hours=1)
        assert not any(uid[1].startswith("work=") for uid in e.profiles.profiles if uid[0] == GROUP_TYPE)
        first = e.decide(_call("svc-new", TABLES["data"][0], when, "203.0.113.9"), now=when)
        assert "new_network" not in first.signals
    finally:
        e.close()


# -- several groups at once ([behaviour] peers_also) -------------------------------------------
def _auditors(root: Path, also: list[str]) -> Path:
    write_workspace(
        root, {"learning_days": 7, "learning_requests": 100, "peers": ["team"], "peers_also": also}
    )
    path = root / "entities" / "e.json"
    items = json.loads(path.read_text())
    for item in items:  # auditors in two teams
        if item["uid"]["id"] in ("data-agent-0", "payments-agent-0", "payments-agent-1"):
            item["attrs"]["role"] = "auditor"
    path.write_text(json.dumps(items))
    return root


def _crossing_points(root: Path) -> tuple[int, vigil.Engine]:
    from tests.behaviour_support import request

    e = engine(root)
    last = T0
    for d in range(10):
        for k in range(20):
            last = T0 + timedelta(days=d, hours=9 + k % 8, minutes=k)
            for who in ("payments-agent-0", "payments-agent-1"):
                e.decide(request(who, "read", TABLES["payments"][k % 4], last), now=last)
            for who in ("data-agent-1", "data-agent-2"):
                e.decide(request(who, "read", TABLES["data"][k % 4], last), now=last)
            if k % 10 == 0:  # the quiet auditor of the data team
                e.decide(request("data-agent-0", "read", TABLES["data"][k % 4], last), now=last)
    when = last + timedelta(minutes=5)
    rec = e.decide(request("data-agent-0", "read", TABLES["payments"][0], when), now=when)
    points = {d["signal"]: d["points"] for d in rec.assessment.details()}
    return points.get("segment_crossing", 0), e


def test_a_member_of_several_groups_is_taught_and_judged_by_all(tmp_path: Path) -> None:
    alone, e1 = _crossing_points(_auditors(tmp_path / "team", []))
    both, e2 = _crossing_points(_auditors(tmp_path / "both", ["role"]))
    try:
        profiles = e2.profiles.profiles
        member = profiles[("Agent", "data-agent-0")]
        auditors = profiles[(GROUP_TYPE, "role=auditor")]
        assert member.base is profiles[(GROUP_TYPE, "team=data")]
        assert member.peers == (auditors,) and auditors.learned >= 2 * 10 * 20
        assert (GROUP_TYPE, "role=auditor") not in e1.profiles.profiles
        # its team never worked in payments (a strong second opinion), its fellow auditors do:
        # with both groups the crossing is judged on its own thin evidence only
        assert alone > both > 0, (alone, both)
    finally:
        e1.close()
        e2.close()


def test_bad_peers_also_is_a_workspace_error(tmp_path: Path) -> None:
    import pytest

    from vigil.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match="peers_also"):
        engine(write_workspace(tmp_path, {"peers_also": ["not an attribute"]}))


def test_a_client_cannot_name_a_work_group_into_being(tmp_path: Path) -> None:
    """Review finding: the learned group came from the request's resource type even when no such
    entity exists, so each made-up type made a group profile. Only stored resources count now."""
    e = engine(_workspace(tmp_path))
    try:
        for i in range(20):
            when = T0 + timedelta(minutes=i)
            body = _call(f"svc-{'abcde'[i % 5]}", f"made-up-{i}", when, "10.20.0.1")
            body["resource"]["type"] = f"MadeUp{i}"
            e.decide(body, now=when)
        groups = [uid for uid in e.profiles.profiles if uid[0] == GROUP_TYPE]
        assert not any("MadeUp" in g[1] for g in groups), groups
    finally:
        e.close()
