"""Resource guards: shared between policies only when they are the same test, and decided the
same at load and on first use (``Authorizer(eager_guard_limit=0)``), against cedarpy."""

from __future__ import annotations

import json
from typing import Any

import cedarpy
import pytest

from vigil.policy.build import build_policy_set
from vigil.policy.cedar import PolicySource
from vigil.policy.evaluator import Authorizer

# Pairs of guards that differ only in a constant (an entity, a set holding 1 or true, a string):
# sharing one of them for both would decide one policy with the other's constant. The team-*
# copies are the same guard: they must share.
POLICIES = """\
@id("in-a") permit(principal, action == Action::"read", resource) when { resource in Folder::"a" };
@id("in-b") permit(principal, action == Action::"write", resource) when { resource in Folder::"b" };
@id("set-1") permit(principal, action == Action::"read", resource)
  when { resource has tags && resource.tags.contains(1) && principal.level > 1 };
@id("set-true") permit(principal, action == Action::"write", resource)
  when { resource has tags && resource.tags.contains(true) && principal.level > 1 };
@id("label-x") forbid(principal, action == Action::"read", resource)
  when { resource has label && resource.label == "x" && principal.level < 3 };
@id("label-y") forbid(principal, action == Action::"write", resource)
  when { resource has label && resource.label == "y" && principal.level < 3 };
@id("team-1") permit(principal in Team::"t1", action == Action::"delete", resource)
  when { resource has env && ["dev", "staging"].contains(resource.env) };
@id("team-2") permit(principal in Team::"t2", action == Action::"delete", resource)
  when { resource has env && ["dev", "staging"].contains(resource.env) };
@id("erroring") forbid(principal, action == Action::"delete", resource) when { resource.level > 2 };
"""


def _uid(t: str, i: str) -> dict[str, str]:
    return {"type": t, "id": i}


ENTITIES: list[dict[str, Any]] = [
    {"uid": _uid("Folder", "a"), "attrs": {}, "parents": []},
    {"uid": _uid("Folder", "b"), "attrs": {}, "parents": []},
    {"uid": _uid("Team", "t1"), "attrs": {}, "parents": []},
    {"uid": _uid("Team", "t2"), "attrs": {}, "parents": []},
    {"uid": _uid("Agent", "p1"), "attrs": {"level": 2}, "parents": [_uid("Team", "t1")]},
    {"uid": _uid("Agent", "p2"), "attrs": {"level": 4}, "parents": [_uid("Team", "t2")]},
    {
        "uid": _uid("Doc", "d1"),
        "attrs": {"tags": [1], "label": "x", "env": "dev"},
        "parents": [_uid("Folder", "a")],
    },
    {
        "uid": _uid("Doc", "d2"),
        "attrs": {"tags": [True], "label": "y", "env": "prod"},
        "parents": [_uid("Folder", "b")],
    },
    {
        "uid": _uid("Doc", "d3"),
        "attrs": {"tags": [1, True], "level": 3},
        "parents": [_uid("Folder", "a"), _uid("Folder", "b")],
    },
    {"uid": _uid("Doc", "d4"), "attrs": {"env": "staging", "level": "high"}, "parents": []},
]


def _cedar(principal: str, action: str, resource: str) -> tuple[bool, frozenset[str]]:
    got = cedarpy.is_authorized(
        {
            "principal": f'Agent::"{principal}"',
            "action": f'Action::"{action}"',
            "resource": f'Doc::"{resource}"',
            "context": {},
        },
        POLICIES,
        json.dumps(ENTITIES),
    )
    return got.allowed, frozenset(got.diagnostics.reasons)


def _requests() -> list[tuple[str, str, str]]:
    return [
        (p, a, r)
        for p in ("p1", "p2")
        for a in ("read", "write", "delete")
        for r in ("d1", "d2", "d3", "d4", "missing")
    ]


@pytest.mark.parametrize("eager_guard_limit", [10**9, 0], ids=["at-load", "on-first-use"])
def test_guards_decide_as_cedar(eager_guard_limit: int) -> None:
    ps = build_policy_set([PolicySource("p.cedar", POLICIES)], list(ENTITIES))
    authorizer = Authorizer(ps.authorizer.policies, ps.authorizer.store, eager_guard_limit=eager_guard_limit)
    by_cedar_id = {p.id: p.cedar_id for p in authorizer.policies}
    for _ in range(2):  # first contact, then what the entity kept
        for principal, action, resource in _requests():
            ans = authorizer.is_authorized(("Agent", principal), ("Action", action), ("Doc", resource), {})
            got = (ans.allowed, frozenset(by_cedar_id.get(p, p) for p in ans.policies))
            assert got == _cedar(principal, action, resource), (principal, action, resource)


def test_equal_guards_are_shared_and_different_ones_are_not() -> None:
    ps = build_policy_set([PolicySource("p.cedar", POLICIES)], list(ENTITIES))
    authorizer = ps.authorizer
    index = {p.id: authorizer._rguard_index.get(id(p)) for p in authorizer.policies}
    assert index["team-1"] is not None and index["team-1"] == index["team-2"]
    for a, b in (("in-a", "in-b"), ("set-1", "set-true"), ("label-x", "label-y")):
        assert index[a] is not None and index[b] is not None and index[a] != index[b], (a, b)


# Constant names (K0, K1, ...) inside string literals and attribute names: the key renames only the
# code's name tokens, so these guards stay apart (a regex over the code text once made A and B one
# guard, allowing B's write where Cedar denies it), and a literal "K1" with no constant of that
# name neither crashes the load nor shares.
NAME_POLICIES = """\
@id("A") permit(principal, action == Action::"read", resource)
  when { resource.owner == User::"x" && resource.name == "K0" };
@id("B") permit(principal, action == Action::"write", resource in Folder::"f")
  when { resource.owner == User::"x" && resource.name == "K1" };
@id("C") permit(principal, action == Action::"delete", resource) when { resource has K0 && resource.K0 == true };
@id("D") permit(principal, action == Action::"share", resource) when { resource has K1 && resource.K1 == true };
@id("E") permit(principal, action == Action::"tag", resource) when { resource has grade && resource.grade == "K7" };
"""
NAME_ENTITIES: list[dict[str, Any]] = [
    {"uid": _uid("Agent", "p"), "attrs": {}, "parents": []},
    {"uid": _uid("User", "x"), "attrs": {}, "parents": []},
    {"uid": _uid("Folder", "f"), "attrs": {}, "parents": []},
    {
        "uid": _uid("Doc", "d"),
        "attrs": {"owner": {"__entity": _uid("User", "x")}, "name": "K0", "K0": True, "grade": "K7"},
        "parents": [_uid("Folder", "f")],
    },
]


@pytest.mark.parametrize("eager_guard_limit", [10**9, 0], ids=["at-load", "on-first-use"])
def test_constant_names_in_strings_and_attributes_never_merge_guards(eager_guard_limit: int) -> None:
    ps = build_policy_set([PolicySource("p.cedar", NAME_POLICIES)], list(NAME_ENTITIES))
    authorizer = Authorizer(ps.authorizer.policies, ps.authorizer.store, eager_guard_limit=eager_guard_limit)
    for action in ("read", "write", "delete", "share", "tag"):
        ans = authorizer.is_authorized(("Agent", "p"), ("Action", action), ("Doc", "d"), {})
        want = cedarpy.is_authorized(
            {
                "principal": 'Agent::"p"',
                "action": f'Action::"{action}"',
                "resource": 'Doc::"d"',
                "context": {},
            },
            NAME_POLICIES,
            json.dumps(NAME_ENTITIES),
        )
        assert ans.allowed == want.allowed, action
