"""Entity changes without a reload (EntityStore.apply, Engine.change_entities): the store, the
ancestors and the decisions after a batch are those of a store built from the final entities;
a bad batch changes nothing and names its item."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import entity_sets
from vigil.errors import EntityChangeError
from vigil.policy.entities import EntityStore, entity_from_json

ACTIONS = ("Action", "NS::Action")


def _view(store: EntityStore) -> dict[Any, Any]:
    kids = {a: frozenset(c) for a, c in store.children.items() if c}
    return {
        "entities": {uid: (dict(e.attrs), e.ancestors, e.tags) for uid, e in store.by_uid.items()},
        "children": kids,
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entity_sets(), entity_sets(), st.data())
def test_a_batch_gives_the_store_built_from_the_final_entities(
    before: tuple[dict[str, Any], ...], batch: tuple[dict[str, Any], ...], data: st.DataObject
) -> None:
    def ok(items: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
        out = []
        for it in items:
            try:
                entity_from_json(it)
            except Exception:
                continue
            out.append(it)
        return out

    start = ok(before)
    ups = ok(batch)
    uids = [(i["uid"]["type"], i["uid"]["id"]) for i in start]
    deletes = data.draw(st.lists(st.sampled_from(uids), unique=True) if uids else st.just([]))
    deletes = [d for d in deletes if d not in {(i["uid"]["type"], i["uid"]["id"]) for i in ups}]
    store = EntityStore.from_json(copy.deepcopy(start))
    store.apply([entity_from_json(i) for i in copy.deepcopy(ups)], deletes)
    final: dict[Any, dict[str, Any]] = {(i["uid"]["type"], i["uid"]["id"]): i for i in start}
    for d in deletes:
        final.pop(d, None)
    for i in ups:
        final[(i["uid"]["type"], i["uid"]["id"])] = i
    fresh = EntityStore.from_json(copy.deepcopy(list(final.values())))
    assert _view(store) == _view(fresh)


WORKSPACE_POLICIES = """
@id("read")
permit (principal in Team::"a", action == Action::"read", resource in Folder::"f")
when { resource.level <= principal.level };
@id("frozen")
forbid (principal, action, resource) when { resource.frozen };
"""


def _engine(tmp_path: Path) -> Any:
    import json

    import vigil
    from vigil.audit import NullSink

    ws = tmp_path / "ws"
    (ws / "policies").mkdir(parents=True)
    (ws / "entities").mkdir()
    (ws / "vigil.toml").write_text('[behaviour]\nmode = "shadow"\n[store]\nbackend = "memory"\n')
    (ws / "policies" / "p.cedar").write_text(WORKSPACE_POLICIES)
    ents = [
        {"uid": {"type": "Team", "id": "a"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Team", "id": "b"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Folder", "id": "f"}, "attrs": {}, "parents": []},
        {
            "uid": {"type": "Agent", "id": "x"},
            "attrs": {"level": 3},
            "parents": [{"type": "Team", "id": "b"}],
        },
        {"uid": {"type": "Doc", "id": "d"}, "attrs": {"level": 1, "frozen": False}, "parents": []},
    ]
    (ws / "entities" / "e.json").write_text(json.dumps(ents))
    return vigil.Engine.from_workspace(ws, audit=NullSink())


def _read(engine: Any, doc: str = "d") -> bool:
    req = {
        "subject": {"type": "Agent", "id": "x"},
        "action": {"name": "read"},
        "resource": {"type": "Doc", "id": doc},
        "context": {},
    }
    return bool(engine.decide(req).allowed)


def test_changes_are_seen_by_the_next_decision(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    assert not _read(engine)  # the agent is not in team a, the doc not in folder f
    doc = {
        "uid": {"type": "Doc", "id": "d"},
        "attrs": {"level": 1, "frozen": False},
        "parents": [{"type": "Folder", "id": "f"}],
    }
    engine.change_entities([doc], by="test")
    assert not _read(engine)  # cached candidates of the agent must not hide the next change
    got = engine.change_entities(
        [{"uid": {"type": "Team", "id": "b"}, "attrs": {}, "parents": [{"type": "Team", "id": "a"}]}],
        by="test",
    )
    assert got["upserted"] == 1 and got["changes"] == 2
    assert _read(engine)  # the agent's team is now inside team a: its ancestors moved
    engine.change_entities([{**doc, "attrs": {"level": 1, "frozen": True}}], by="test")
    assert not _read(engine)
    engine.change_entities([{**doc, "uid": {"type": "Doc", "id": "e"}}], by="test")
    assert _read(engine, "e")
    got = engine.change_entities(
        deletes=[{"type": "Doc", "id": "e"}, {"type": "Doc", "id": "nope"}], by="test"
    )
    assert got["deleted"] == 1
    assert not _read(engine, "e")
    assert engine.status()["entity_changes"] == 5


@pytest.mark.parametrize(
    ("upserts", "deletes", "index", "field"),
    [
        (
            [
                {"uid": {"type": "Doc", "id": "n"}, "attrs": {}, "parents": []},
                {"uid": {"type": "Doc", "id": "m"}, "attrs": {"x": None}, "parents": []},
            ],
            None,
            1,
            "entities",
        ),
        (
            [
                {"uid": {"type": "Doc", "id": "n"}, "attrs": {}, "parents": []},
                {"uid": {"type": "Doc", "id": "n"}, "attrs": {}, "parents": []},
            ],
            None,
            1,
            "entities",
        ),
        ([{"uid": {"type": "Action", "id": "read"}, "attrs": {}, "parents": []}], None, 0, "entities"),
        ([{"uid": {"type": "1x", "id": "n"}, "attrs": {}, "parents": []}], None, 0, "entities"),
        (None, [{"type": "Doc", "id": "d"}, {"type": "Doc"}], 1, "uids"),
        (
            [{"uid": {"type": "Doc", "id": "n"}, "attrs": {}, "parents": []}],
            [{"type": "Doc", "id": "n"}],
            0,
            "uids",
        ),
        ("junk", None, None, "entities"),
    ],
)
def test_a_bad_batch_changes_nothing_and_names_its_item(
    tmp_path: Path, upserts: Any, deletes: Any, index: int | None, field: str
) -> None:
    engine = _engine(tmp_path)
    before = dict(engine.workspace.policy_set.store.by_uid)
    with pytest.raises(EntityChangeError) as e:
        engine.change_entities(upserts, deletes, by="test")
    body = e.value.to_dict()
    assert body["code"] == "invalid_entities" and body.get("index") == index and body["field"] == field
    assert engine.workspace.policy_set.store.by_uid == before
    assert engine.status()["entity_changes"] == 0
