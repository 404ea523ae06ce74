"""Short-lived identities start from their parent's baseline; peer groups share one baseline
(issue 17). The engine-level tests here failed on the old behaviour (an identity's first request
was never judged; a quiet identity's few requests could not back a segment crossing)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import vigil
from tests.behaviour_support import TABLES, engine, habit, request, write_workspace
from vigil.behaviour.peers import GROUP_TYPE, group_uid
from vigil.behaviour.sessions import parent_of, parse_rule, parse_rules
from vigil.errors import WorkspaceError

DEFAULTS = {"learning_days": 7, "learning_requests": 100}
PARENT = "payments-agent-0"
TASK = "payments-agent-5"


def _with_parent(root: Path, behaviour: dict[str, Any] | None = None) -> Path:
    write_workspace(root, {**DEFAULTS, **(behaviour or {})})
    path = root / "entities" / "e.json"
    items = json.loads(path.read_text())
    for item in items:
        if item["uid"] == {"type": "Agent", "id": TASK}:
            item["attrs"]["parent"] = {"__entity": {"type": "Agent", "id": PARENT}}
    path.write_text(json.dumps(items))
    return root


def test_a_task_agent_is_judged_by_its_parents_baseline_from_its_first_request(tmp_path: Path) -> None:
    e = engine(_with_parent(tmp_path))
    last = habit(e, PARENT, days=14, per_day=20, tables=4)
    when = last + timedelta(minutes=5)
    # the task agent's very first request reads another team's table
    rec = e.decide(request(TASK, "read", TABLES["data"][0], when), now=when)
    assert not rec.allowed, (rec.reason_codes, rec.signals, rec.risk)
    assert "segment_crossing" in rec.signals
    # and an ordinary first request of another task-like call is not
    when += timedelta(seconds=30)
    ok = e.decide(request(TASK, "read", TABLES["payments"][1], when), now=when)
    assert ok.allowed, (ok.reason_codes, ok.signals)


def test_a_session_rule_names_the_parent(tmp_path: Path) -> None:
    rule = 'Agent::"payments-agent-[45]" -> Agent::"payments-agent-0"'
    e = engine(write_workspace(tmp_path, {**DEFAULTS, "sessions": [rule]}))
    last = habit(e, PARENT, days=14, per_day=20, tables=4)
    when = last + timedelta(minutes=10)
    # minutes after its parent's last call from eu-west-1, from the other side of the world
    rec = e.decide(
        request(TASK, "read", TABLES["payments"][0], when, region="ap-northeast-1", ip="203.0.113.7"),
        now=when,
    )
    assert not rec.allowed
    assert "impossible_travel" in rec.signals


def test_a_quiet_identity_is_backed_by_its_peer_group(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, DEFAULTS))
    for who in ("data-agent-0", "data-agent-2"):
        habit(e, who, days=21, per_day=25, tables=4)
    quiet = "data-agent-1"
    last = habit(e, quiet, days=21, per_day=2, hours=(9, 16), tables=3)
    prof = e.profiles.profiles[("Agent", quiet)]
    group = e.profiles.profiles[(GROUP_TYPE, "team=data")]
    assert prof.base is group and e.profiles.profiles[("Agent", "data-agent-0")].base is group
    when = last + timedelta(minutes=20)
    rec = e.decide(request(quiet, "read", TABLES["growth"][0], when), now=when)
    assert not rec.allowed, (rec.risk, rec.explanations())
    assert "segment_crossing" in rec.signals


def test_peers_off_keeps_the_identitys_own_judgement(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, {**DEFAULTS, "peers": []}))
    habit(e, "data-agent-0", days=3, per_day=10)
    assert all(p.base is None for p in e.profiles.profiles.values())
    assert not any(uid[0] == GROUP_TYPE for uid in e.profiles.profiles)


@pytest.mark.parametrize(
    "bad",
    [
        "Agent::task-* -> Agent::runner",
        'Agent::"task-*"',
        'Agent::"" -> Agent::"runner"',
        'Agent::"task-*" -> runner',
    ],
)
def test_a_bad_session_rule_is_a_workspace_error(tmp_path: Path, bad: str) -> None:
    assert isinstance(parse_rule(bad), str)
    with pytest.raises(WorkspaceError) as info:
        vigil.Engine.from_workspace(write_workspace(tmp_path, {"sessions": [bad]}))
    assert info.value.code == "invalid_workspace"
    assert any("[behaviour] sessions" in p for p in info.value.problems)


def test_a_bad_peers_attribute_is_a_workspace_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as info:
        vigil.Engine.from_workspace(write_workspace(tmp_path, {"peers": ["not an attribute"]}))
    assert info.value.code == "invalid_workspace"


def test_parent_and_group_lookup() -> None:
    rules = parse_rules(('Agent::"ci-job-*" -> Agent::"ci-runner"',))
    assert parent_of(("Agent", "ci-job-17"), None, rules) == ("Agent", "ci-runner")
    assert parent_of(("Agent", "other"), None, rules) is None
    assert parent_of(("Agent", "x"), {"parent": ("Agent", "p")}, rules) == ("Agent", "p")
    assert group_uid({"team": "data"}, ("team", "owner")) == (GROUP_TYPE, "team=data")
    assert group_uid({"owner": ("Team", "x")}, ("team", "owner")) == (GROUP_TYPE, 'owner=Team::"x"')
    assert group_uid({"kind": "agent"}, ("team", "owner")) is None


def test_a_new_identitys_first_request_is_judged_against_its_peers(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, DEFAULTS))
    for who in ("data-agent-0", "data-agent-2"):
        last = habit(e, who, days=14, per_day=25, tables=4)
    when = last + timedelta(hours=1)
    # a brand-new member of the team, from a region and network its team never used
    far = request("data-agent-4", "read", TABLES["data"][0], when, region="ap-northeast-1", ip="203.0.113.9")
    rec = e.decide(far, now=when)
    assert not rec.allowed, (rec.risk, rec.explanations())
    assert {"new_region", "new_network"} <= set(rec.signals)
    # another new member, from its team's usual place: allowed, and learned
    when += timedelta(minutes=1)
    usual = request("data-agent-5", "read", TABLES["data"][1], when, ip="10.11.30.7")
    ok = e.decide(usual, now=when)
    assert ok.allowed, (ok.risk, ok.explanations())


def test_a_delegated_request_is_judged_on_its_actors_profile(tmp_path: Path) -> None:
    """The decision path as a delegated token reaches it (``vigil.delegation`` passes the chain's
    actors, current first): the request is the acting agent's behaviour (issue 13), judged on its
    own profile; the subject gets no profile from it."""
    from time import perf_counter_ns

    from vigil.model.request import parse_authzen

    e = engine(write_workspace(tmp_path, {**DEFAULTS, "peers": []}))
    last = habit(e, PARENT, days=14, per_day=20, tables=4)
    when = last + timedelta(minutes=5)
    st = e._state
    req = parse_authzen(request(TASK, "read", TABLES["data"][0], when), st.action_type)
    rec = e._decide(st, req, when.timestamp(), perf_counter_ns(), (("Agent", PARENT),))
    assert not rec.allowed and "segment_crossing" in rec.signals, (rec.risk, rec.explanations())
    assert ("Agent", TASK) not in e.profiles.profiles


def test_groups_from_the_registry_and_by_several_attributes(tmp_path: Path) -> None:
    from vigil.store.base import IdentityEntry

    assert group_uid({"kind": "agent", "purpose": "triage"}, ("team", "kind+purpose")) == (
        GROUP_TYPE,
        "kind=agent+purpose=triage",
    )
    assert group_uid({"kind": "agent"}, ("kind+purpose",)) is None
    e = engine(write_workspace(tmp_path, {**DEFAULTS, "peers": ["owner"]}))
    for who in ("payments-agent-0", "data-agent-0"):
        e.registry.create(IdentityEntry(("Agent", who), "dana", "triage", "agent", 0.0, "test"))
    habit(e, "payments-agent-0", days=2, per_day=5)
    habit(e, "data-agent-0", days=2, per_day=5)
    group = e.profiles.profiles[(GROUP_TYPE, "owner=dana")]
    assert e.profiles.profiles[("Agent", "payments-agent-0")].base is group
    assert e.profiles.profiles[("Agent", "data-agent-0")].base is group
    assert group.learned >= 10
