"""Policies of one shape share their compiled code (policy/compiler.py): the policies of a template
(a grant per team, a threshold per folder) run one code object, each with its own constants, and
decide exactly as policies compiled apart would (cedarpy says so for every request here)."""

from __future__ import annotations

import json
from typing import Any

import cedarpy

from vigil.policy import compiler
from vigil.policy.build import build_policy_set
from vigil.policy.cedar import PolicySource
from vigil.policy.json_values import record_to_cedar

# One shape four times (team, folder, level and label differ), and near-shapes that must not be
# confused with it: a Long where a String was, a Bool, an entity where a String was.
POLICIES = """\
@id("t1") permit(principal in Team::"t1", action == Action::"read", resource in Folder::"f1") when { resource.level <= 3 && resource.label == "blue" };
@id("t2") permit(principal in Team::"t2", action == Action::"read", resource in Folder::"f2") when { resource.level <= 5 && resource.label == "red" };
@id("t3") permit(principal in Team::"t3", action == Action::"read", resource in Folder::"f1") when { resource.level <= 1 && resource.label == "red" };
@id("t4") permit(principal in Team::"t4", action == Action::"read", resource in Folder::"f2") when { resource.level <= 9 && resource.label == "green" };
@id("long") permit(principal in Team::"t1", action == Action::"write", resource) when { resource.label == 7 };
@id("bool") permit(principal in Team::"t2", action == Action::"write", resource) when { resource.flag == true };
@id("owner") permit(principal in Team::"t3", action == Action::"write", resource) when { resource.owner == Agent::"a3" };
@id("ownerstr") permit(principal in Team::"t4", action == Action::"write", resource) when { resource.owner == "a4" };
"""


def _uid(t: str, i: str) -> dict[str, str]:
    return {"type": t, "id": i}


def _entities() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"uid": _uid("Folder", f), "attrs": {}, "parents": []} for f in ("f1", "f2")]
    out += [{"uid": _uid("Team", f"t{i}"), "attrs": {}, "parents": []} for i in range(1, 5)]
    out += [
        {"uid": _uid("Agent", f"a{i}"), "attrs": {}, "parents": [_uid("Team", f"t{i}")]} for i in range(1, 5)
    ]
    labels: list[Any] = ["blue", "red", "green", 7, "7"]
    owners: list[Any] = [{"__entity": _uid("Agent", "a3")}, "a3", "a4", {"__entity": _uid("Agent", "a4")}]
    n = 0
    for folder in ("f1", "f2"):
        for level in range(0, 11, 2):
            for label in labels:
                for owner in owners:
                    n += 1
                    attrs = {"level": level, "label": label, "flag": n % 3 == 0, "owner": owner}
                    out.append(
                        {"uid": _uid("Doc", f"d{n}"), "attrs": attrs, "parents": [_uid("Folder", folder)]}
                    )
    return out


def test_one_template_runs_one_code_object_with_its_own_constants() -> None:
    ps = build_policy_set([PolicySource("p.cedar", POLICIES)], _entities())
    by_id = {p.id: p for p in ps.policies}
    grants = [by_id[f"t{i}"] for i in range(1, 5)]
    assert len({p.match.__code__ for p in grants}) == 1
    assert len({id(p.match) for p in grants}) == 4  # one closure each, over its own values
    # A Long, a Bool or an entity where a String was is another shape (or at least never the
    # same answer: checked against cedarpy below).
    assert by_id["long"].match.__code__ is not by_id["bool"].match.__code__


def test_shared_shapes_decide_as_cedar_does() -> None:
    entities = _entities()
    ps = build_policy_set([PolicySource("p.cedar", POLICIES)], entities)
    cedar_policies = cedarpy.PolicySet.from_str(POLICIES)
    cedar_entities = cedarpy.Entities.from_json_str(json.dumps(entities))
    docs = [e["uid"]["id"] for e in entities if e["uid"]["type"] == "Doc"]
    allowed = 0
    for agent in ("a1", "a2", "a3", "a4"):
        for action in ("read", "write"):
            for doc in docs:
                mine = ps.authorizer.is_authorized(
                    ("Agent", agent), ("Action", action), ("Doc", doc), record_to_cedar({})
                )
                request = {
                    "principal": _uid("Agent", agent),
                    "action": _uid("Action", action),
                    "resource": _uid("Doc", doc),
                    "context": {},
                }
                theirs = cedarpy.is_authorized(request, cedar_policies, cedar_entities)
                assert mine.allowed == theirs.allowed, (agent, action, doc)
                allowed += mine.allowed
    assert allowed > 50  # the requests exercise the grants, not only denials


def test_the_shape_table_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(compiler, "SHAPE_LIMIT", 2)
    monkeypatch.setattr(compiler, "_shapes", {})
    ps = build_policy_set([PolicySource("p.cedar", POLICIES)], _entities())
    assert len(compiler._shapes) <= 2
    assert {p.id for p in ps.policies} >= {"t1", "long", "bool", "owner"}
