"""Template links (``links.json``) end to end: a workspace with templates decides through
``vigil.Engine`` exactly as cedarpy decides the same linked policy set.

``links.json`` is documented (README, ``cedar.link_templates``) as
``[{"template", "id", "values": {"?principal": ...}}]``; cedarpy's own ``template_id``/``new_id``
form is accepted too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cedarpy
import pytest

from vigil import Engine
from vigil.audit.sink import MemorySink
from vigil.errors import WorkspaceError

POLICIES = """\
@id("owner-edits")
permit(principal == ?principal, action in [Action::"read", Action::"write"], resource in ?resource);

permit(principal in ?principal, action == Action::"read", resource)
when { resource.public };

forbid(principal, action == Action::"write", resource) when { resource has locked && resource.locked };

@id("ops-reads")
permit(principal in Group::"ops", action == Action::"read", resource);
"""

ENTITIES: list[dict[str, Any]] = [
    {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Group", "id": "eng"}]},
    {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": [{"type": "Group", "id": "ops"}]},
    {"uid": {"type": "User", "id": "carol"}, "attrs": {}, "parents": []},
    {"uid": {"type": "Group", "id": "eng"}, "attrs": {}, "parents": []},
    {"uid": {"type": "Group", "id": "ops"}, "attrs": {}, "parents": []},
    {"uid": {"type": "Folder", "id": "f1"}, "attrs": {"public": False}, "parents": []},
    {
        "uid": {"type": "Doc", "id": "d1"},
        "attrs": {"public": False},
        "parents": [{"type": "Folder", "id": "f1"}],
    },
    {
        "uid": {"type": "Doc", "id": "d2"},
        "attrs": {"public": True, "locked": True},
        "parents": [{"type": "Folder", "id": "f1"}],
    },
    {"uid": {"type": "Doc", "id": "d3"}, "attrs": {"public": True}, "parents": []},
]

# The documented form: a template by its @id or its Cedar id, slot values as {type, id} or text.
DOCUMENTED_LINKS: list[dict[str, Any]] = [
    {
        "template": "owner-edits",
        "id": "alice-owns-f1",
        "values": {
            "?principal": {"type": "User", "id": "alice"},
            "?resource": {"type": "Folder", "id": "f1"},
        },
    },
    {
        "template": "owner-edits",
        "id": "carol-owns-d3",
        "values": {"?principal": 'User::"carol"', "?resource": 'Doc::"d3"'},
    },
    {
        "template": "policy1",
        "id": "eng-reads-public",
        "values": {"?principal": {"type": "Group", "id": "eng"}},
    },
]


def _native(link: dict[str, Any]) -> dict[str, Any]:
    return {"template_id": link["template"], "new_id": link["id"], "values": link["values"]}


def _workspace(root: Path, links: list[dict[str, Any]]) -> Path:
    (root / "vigil.toml").write_text('[behaviour]\nmode = "shadow"\n\n[store]\nbackend = "memory"\n')
    (root / "policies").mkdir()
    # Two files: template ids run on across files as Cedar numbers the concatenated text.
    first, rest = POLICIES.split("\n\n", 1)
    (root / "policies" / "a.cedar").write_text(first + "\n")
    (root / "policies" / "b.cedar").write_text(rest)
    (root / "entities").mkdir()
    (root / "entities" / "e.json").write_text(json.dumps(ENTITIES))
    (root / "links.json").write_text(json.dumps(links))
    return root


def _requests() -> list[tuple[str, str, tuple[str, str]]]:
    users = ("alice", "bob", "carol")
    docs = (("Doc", "d1"), ("Doc", "d2"), ("Doc", "d3"), ("Folder", "f1"))
    return [(u, a, d) for u in users for a in ("read", "write", "delete") for d in docs]


def _cedar_answers(links: list[dict[str, Any]]) -> dict[Any, tuple[bool, frozenset[str]]]:
    ps = cedarpy.PolicySet.from_str(POLICIES).with_linked_batch([_native(x) for x in links])
    entities = cedarpy.Entities.from_json_str(json.dumps(ENTITIES))
    out = {}
    for user, action, res in _requests():
        request = {
            "principal": f'User::"{user}"',
            "action": f'Action::"{action}"',
            "resource": f'{res[0]}::"{res[1]}"',
            "context": {"vigil": {"risk": 0, "signals": []}},
        }
        result = cedarpy.is_authorized(request, ps, entities)
        assert not result.diagnostics.errors
        out[(user, action, res)] = (result.allowed, frozenset(result.diagnostics.reasons))
    return out


# cedarpy reports static policies by Cedar id; vigil by their @id (links by their own new id).
_STATIC_IDS = {"policy2": "policy2", "policy3": "ops-reads"}


def _engine_answers(root: Path) -> dict[Any, tuple[bool, frozenset[str]]]:
    out = {}
    with Engine.from_workspace(root, audit=MemorySink()) as engine:
        for user, action, res in _requests():
            record = engine.decide(
                {
                    "subject": {"type": "User", "id": user},
                    "action": {"name": action},
                    "resource": {"type": res[0], "id": res[1]},
                }
            )
            out[(user, action, res)] = (record.allowed, frozenset(record.policies))
    return out


@pytest.mark.parametrize("form", ["documented", "cedarpy"])
def test_workspace_with_template_links_decides_as_cedar(tmp_path: Path, form: str) -> None:
    links = DOCUMENTED_LINKS if form == "documented" else [_native(x) for x in DOCUMENTED_LINKS]
    got = _engine_answers(_workspace(tmp_path, links))
    expected = {
        k: (allowed, frozenset(_STATIC_IDS.get(p, p) for p in reasons))
        for k, (allowed, reasons) in _cedar_answers(DOCUMENTED_LINKS).items()
    }
    assert got == expected
    # The links matter: each one grants something no static policy does.
    assert got[("alice", "write", ("Doc", "d1"))] == (True, frozenset({"alice-owns-f1"}))
    assert got[("carol", "write", ("Doc", "d3"))] == (True, frozenset({"carol-owns-d3"}))
    assert got[("alice", "read", ("Doc", "d3"))] == (True, frozenset({"eng-reads-public"}))
    assert got[("alice", "write", ("Doc", "d2"))][0] is False  # the forbid wins over the link
    assert got[("carol", "read", ("Doc", "d1"))] == (False, frozenset())


def test_without_links_templates_grant_nothing(tmp_path: Path) -> None:
    got = _engine_answers(_workspace(tmp_path, []))
    assert {p for _allowed, policies in got.values() for p in policies} <= {"ops-reads", "policy2"}


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ({"template": "owner-edits", "values": {}}, "missing 'id'"),
        ({"id": "x", "values": {}}, "missing 'template'"),
        ({"template": "owner-edits", "id": "x"}, "missing 'values'"),
        ({"template": "policy1", "template_id": "policy1", "id": "x", "values": {}}, "not both"),
        ("policy1", "expected an object"),
        (
            {"template": "nope", "id": "x", "values": {"?principal": 'User::"a"'}},
            "template links",
        ),
    ],
)
def test_bad_links_are_refused_with_the_file(tmp_path: Path, link: Any, message: str) -> None:
    root = _workspace(tmp_path, [link])
    with pytest.raises(WorkspaceError) as info:
        Engine.from_workspace(root, audit=MemorySink())
    assert message in str(info.value) + " ".join(info.value.problems)
