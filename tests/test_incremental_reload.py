"""A reload reuses what did not change: compiled policies by (template, id, slot values), and the
entities when their files and the schema are byte for byte the same and no entity batch changed
the store since. Whatever is reused, the reloaded workspace decides and names its revision
exactly as a fresh load of the same files does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vigil import Engine
from vigil.audit.sink import MemorySink
from vigil.policy.build import EntitiesNeeded, build_policy_set
from vigil.policy.cedar import PolicySource
from vigil.workspace.loader import load_workspace

POLICIES = """\
@id("readers") permit(principal in Team::"readers", action == Action::"read", resource in Folder::"f1");
@id("labels") permit(principal, action == Action::"write", resource) when { resource has label && resource.label == "open" };
@id("frozen") forbid(principal, action, resource) when { resource has frozen && resource.frozen };
"""


def _uid(t: str, i: str) -> dict[str, str]:
    return {"type": t, "id": i}


ENTITIES: list[dict[str, Any]] = [
    {"uid": _uid("Team", "readers"), "attrs": {}, "parents": []},
    {"uid": _uid("Folder", "f1"), "attrs": {}, "parents": []},
    {"uid": _uid("Agent", "a"), "attrs": {}, "parents": [_uid("Team", "readers")]},
    {"uid": _uid("Agent", "b"), "attrs": {}, "parents": []},
    {"uid": _uid("Doc", "d1"), "attrs": {"label": "open"}, "parents": [_uid("Folder", "f1")]},
    {"uid": _uid("Doc", "d2"), "attrs": {"frozen": True}, "parents": [_uid("Folder", "f1")]},
]


def _workspace(root: Path, policies: str = POLICIES) -> Path:
    (root / "policies").mkdir(parents=True)
    (root / "entities").mkdir()
    (root / "vigil.toml").write_text('[behaviour]\nmode = "off"\n[store]\nbackend = "memory"\n')
    (root / "policies" / "p.cedar").write_text(policies)
    (root / "entities" / "e.json").write_text(json.dumps(ENTITIES))
    return root


def _decisions(engine: Engine) -> list[bool]:
    out = []
    for p in ("a", "b"):
        for a in ("read", "write", "delete"):
            for r in ("d1", "d2"):
                req = {
                    "subject": {"type": "Agent", "id": p},
                    "action": {"name": a},
                    "resource": {"type": "Doc", "id": r},
                }
                out.append(bool(engine.decide(req).allowed))
    return out


def _fresh(root: Path) -> tuple[str, list[bool]]:
    e = Engine.from_workspace(root, audit=MemorySink())
    try:
        return e.workspace.revision, _decisions(e)
    finally:
        e.close()


def test_a_policy_change_reuses_the_entities_and_the_unchanged_policies(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    before = load_workspace(root)
    (root / "policies" / "p.cedar").write_text(
        POLICIES + '@id("b-deletes") permit(principal == Agent::"b", action == Action::"delete", resource);\n'
    )
    after = load_workspace(root, previous=before)
    assert after.entity_source_digest == before.entity_source_digest
    assert after.policy_set.store is not before.policy_set.store  # a copy: new entity objects
    assert after.policy_set.store.by_uid.keys() == before.policy_set.store.by_uid.keys()
    old = {p.id: p for p in before.policy_set.policies}
    for pol in after.policy_set.policies:
        if pol.id in old:
            assert pol is old[pol.id], f"{pol.id} was compiled again"
    assert after.revision == load_workspace(root).revision


def test_a_reloaded_engine_decides_as_a_fresh_load(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    engine = Engine.from_workspace(root, audit=MemorySink())
    try:
        first = _decisions(engine)
        (root / "policies" / "p.cedar").write_text(POLICIES.replace('"open"', '"closed"'))
        assert engine.reload(by="test").ok
        assert (engine.workspace.revision, _decisions(engine)) == _fresh(root)
        assert _decisions(engine) != first  # the label policy changed
        # an entity file change is read (no reuse), and decided as a fresh load
        changed = [dict(e) for e in ENTITIES]
        changed[2] = {**changed[2], "parents": []}
        (root / "entities" / "e.json").write_text(json.dumps(changed))
        assert engine.reload(by="test").ok
        assert (engine.workspace.revision, _decisions(engine)) == _fresh(root)
    finally:
        engine.close()


def test_an_entity_batch_makes_the_next_reload_read_the_files(tmp_path: Path) -> None:
    """A batch (PUT /admin/v1/entities) lives in memory; a reload reads the workspace's files
    again, as documented, so a batch never survives by way of the reuse."""
    root = _workspace(tmp_path / "ws")
    engine = Engine.from_workspace(root, audit=MemorySink())
    try:
        engine.change_entities(
            [{"uid": _uid("Agent", "b"), "attrs": {}, "parents": [_uid("Team", "readers")]}]
        )
        assert engine.decide(
            {
                "subject": {"type": "Agent", "id": "b"},
                "action": {"name": "read"},
                "resource": {"type": "Doc", "id": "d1"},
            }
        ).allowed
        assert engine.reload(by="test").ok
        assert (engine.workspace.revision, _decisions(engine)) == _fresh(root)
    finally:
        engine.close()


def test_a_policy_cedarpy_evaluates_needs_the_entities() -> None:
    """A fallback policy (cedarpy) reads the entities' JSON: a build reusing the store refuses
    (EntitiesNeeded), and the loader then reads the files."""
    sources = [PolicySource("p.cedar", POLICIES)]
    first = build_policy_set(sources, list(ENTITIES))
    with pytest.raises(EntitiesNeeded):
        build_policy_set(
            sources, [], previous=first, reuse_entities=True, force_fallback=frozenset({"policy0"})
        )
    again = build_policy_set(sources, [], previous=first, reuse_entities=True)
    assert again.revision == first.revision
