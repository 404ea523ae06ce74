"""With a schema, plain entities that conform to it as written are read by vigil alone
(policy/entity_schema.py): exactly the entities cedarpy reads by the schema (its actions added),
and never a list cedarpy refuses. Everything else is left to cedarpy."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.schema_strategies import SchemaModel, schema_entities, schema_models
from tests.test_entity_json import _unordered
from vigil.policy import cedar
from vigil.policy.build import BuildError, build_policy_set
from vigil.policy.cedar import PolicySource
from vigil.policy.entities import EntityStore
from vigil.policy.entity_json import plain_entities
from vigil.policy.entity_schema import schema_entities as read_by_schema
from vigil.policy.json_values import to_json
from vigil.policy.schema import parse_schema


def _view(store: EntityStore) -> dict[Any, Any]:
    """Uids, attributes, ancestors and tags; no tags and empty tags are one (cedarpy renders
    ``"tags": {}`` as no tags; the evaluator answers both alike, runtime.has_tag/get_tag)."""
    return {
        uid: (
            _unordered(to_json(dict(e.attrs))),
            sorted(e.ancestors),
            _unordered(to_json(dict(e.tags))) if e.tags else None,
        )
        for uid, e in store.by_uid.items()
    }


def _cedar(items: list[Any], text: str) -> list[Any] | None:
    try:
        return cedar.normalize_entities(copy.deepcopy(items), cedar.parse_schema_handle(text))
    except cedar.CedarError:
        return None


def _mine(items: list[Any], text: str) -> list[Any] | None:
    if not plain_entities(items):
        return None
    return read_by_schema(copy.deepcopy(items), parse_schema(text))


def _same(mine: list[Any], theirs: list[Any]) -> None:
    assert _view(EntityStore.from_json(mine)) == _view(EntityStore.from_json(theirs))


@settings(max_examples=250, deadline=None)
@given(schema_models(), st.data())
def test_vigil_reads_only_what_cedarpy_reads_and_reads_it_the_same(model: SchemaModel, data: Any) -> None:
    items = list(data.draw(schema_entities(model)))
    theirs = _cedar(items, model.text)
    mine = _mine(items, model.text)
    event("as written: " + ("read by vigil" if mine is not None else "left to cedarpy"))
    if mine is not None:
        assert theirs is not None, "vigil read a list cedarpy refuses"
        _same(mine, theirs)
    if theirs is None:
        return
    # cedarpy's own rendering uses the explicit forms only: vigil reads it (unless it holds what
    # this reader leaves alone) and gets the same entities again
    again = _mine(theirs, model.text)
    event("cedarpy's rendering: " + ("read by vigil" if again is not None else "left to cedarpy"))
    if again is not None:
        assert _cedar(theirs, model.text) is not None
        _same(again, theirs)


SCHEMA = """
entity Team in [Team] = { "level": Long };
entity Agent in [Team] = {
  "kind": String, "clearance": Long, "tags": Set<String>, "net": __cedar::ipaddr,
  "owner"?: Team, "limits"?: { "max": Long, "unit"?: String }, "rate"?: decimal,
} tags String;
entity Color enum ["red", "blue"];
action mutate;
action read appliesTo { principal: [Agent], resource: [Team] };
action write in [mutate] appliesTo { principal: [Agent], resource: [Team] };
"""


def _uid(t: str, i: str) -> dict[str, str]:
    return {"type": t, "id": i}


def _agent(**attrs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "ci",
        "clearance": 3,
        "tags": ["a", "b"],
        "net": {"__extn": {"fn": "ip", "arg": "10.1.0.0/16"}},
    }
    base.update(attrs)
    return {"uid": _uid("Agent", "a1"), "attrs": base, "parents": [_uid("Team", "t1")], "tags": {"x": "y"}}


TEAM = {"uid": _uid("Team", "t1"), "attrs": {"level": 1}, "parents": []}


def test_conforming_entities_are_read_by_vigil_with_the_schemas_actions() -> None:
    items = [
        TEAM,
        _agent(
            owner={"__entity": _uid("Team", "t1")},
            limits={"max": 5},
            rate={"__extn": {"fn": "decimal", "arg": "1.5"}},
        ),
        {"uid": _uid("Action", "write"), "attrs": {}, "parents": [_uid("Action", "mutate")]},
    ]
    mine = _mine(items, SCHEMA)
    theirs = _cedar(items, SCHEMA)
    assert mine is not None and theirs is not None
    _same(mine, theirs)
    actions = {
        (e["uid"]["id"], tuple(p["id"] for p in e["parents"])) for e in mine if e["uid"]["type"] == "Action"
    }
    assert actions == {("mutate", ()), ("read", ()), ("write", ("mutate",))}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda a: a["attrs"].pop("kind"), id="a required attribute missing"),
        pytest.param(lambda a: a["attrs"].update(extra=1), id="an undeclared attribute"),
        pytest.param(lambda a: a["attrs"].update(clearance="3"), id="a String for a Long"),
        pytest.param(lambda a: a["attrs"].update(clearance=True), id="a Bool for a Long"),
        pytest.param(lambda a: a["attrs"].update(tags=[1]), id="a Long in a Set<String>"),
        pytest.param(
            lambda a: a["attrs"].update(owner={"__entity": _uid("Agent", "a9")}),
            id="an entity of the wrong type",
        ),
        pytest.param(
            lambda a: a["attrs"].update(limits={"unit": "s"}), id="a record without its required field"
        ),
        pytest.param(
            lambda a: a["attrs"].update(limits={"max": 1, "more": 2}), id="a record with an undeclared field"
        ),
        pytest.param(
            lambda a: a["attrs"].update(rate={"__extn": {"fn": "ip", "arg": "1.2.3.4"}}),
            id="the wrong extension",
        ),
        pytest.param(
            lambda a: a.update(parents=[_uid("Agent", "a2")]), id="a parent of a type it may not be in"
        ),
        pytest.param(lambda a: a.update(tags={"x": 1}), id="a tag of the wrong type"),
        pytest.param(lambda a: a["uid"].update(type="Robot"), id="an undeclared entity type"),
    ],
)
def test_what_does_not_conform_is_left_to_cedarpy_which_refuses_it(change: Any) -> None:
    agent = _agent()
    change(agent)
    items = [TEAM, agent]
    assert _mine(items, SCHEMA) is None
    with pytest.raises(BuildError):
        build_policy_set([PolicySource("p.cedar", "")], items, SCHEMA)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda a: a["attrs"].update(net="10.1.0.0/16"), id="an ipaddr as a bare string"),
        pytest.param(lambda a: a["attrs"].update(owner=_uid("Team", "t1")), id="an entity without __entity"),
        pytest.param(
            lambda a: a["attrs"].update(limits={"max": {"__extn": {"fn": "ip", "arg": "::1"}}}),
            id="a misfit in a record",
        ),
    ],
)
def test_forms_only_a_schema_reads_are_left_to_cedarpy(change: Any) -> None:
    agent = _agent()
    change(agent)
    items = [TEAM, agent]
    assert _mine(items, SCHEMA) is None
    theirs = _cedar(items, SCHEMA)
    if theirs is None:
        with pytest.raises(BuildError):
            build_policy_set([PolicySource("p.cedar", "")], items, SCHEMA)
    else:
        ps = build_policy_set([PolicySource("p.cedar", "")], items, SCHEMA)
        assert _view(ps.store) == _view(EntityStore.from_json(theirs))


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(
            {"uid": _uid("Action", "write"), "attrs": {}, "parents": []}, id="an action without its parent"
        ),
        pytest.param({"uid": _uid("Action", "other"), "attrs": {}, "parents": []}, id="an undeclared action"),
        pytest.param(
            {"uid": _uid("Action", "read"), "attrs": {"a": 1}, "parents": []}, id="an action with attributes"
        ),
        pytest.param({"uid": _uid("Color", "red"), "attrs": {}, "parents": []}, id="an enumerated entity"),
    ],
)
def test_actions_and_enumerations_other_than_the_schemas_are_left_to_cedarpy(extra: dict[str, Any]) -> None:
    items = [TEAM, _agent(), extra]
    assert _mine(items, SCHEMA) is None
    theirs = _cedar(items, SCHEMA)
    if theirs is not None:  # cedarpy reads the enumerated entity: then so does the workspace, through it
        ps = build_policy_set([PolicySource("p.cedar", "")], items, SCHEMA)
        assert _view(ps.store) == _view(EntityStore.from_json(theirs))
        assert ("Color", "red") in ps.store.by_uid


def test_a_schema_workspace_decides_as_before() -> None:
    policies = (
        'permit(principal in Team::"t1", action in Action::"mutate", resource) when { principal.clearance > 2 };\n'
        "forbid(principal, action, resource) when { principal has owner && principal.owner == resource };\n"
    )
    items = [TEAM, _agent(), {**TEAM, "uid": _uid("Team", "t2")}]
    ps = build_policy_set([PolicySource("p.cedar", policies)], items, SCHEMA)
    assert ps.authorizer.is_authorized(("Agent", "a1"), ("Action", "write"), ("Team", "t2"), {}).allowed
    assert not ps.authorizer.is_authorized(("Agent", "a1"), ("Action", "read"), ("Team", "t2"), {}).allowed


ENUM_SCHEMA = """
entity Color enum ["red", "blue"];
entity User in [Color] = { "fav"?: Color, "favs"?: Set<Color> } tags Color;
action g2;
action g1 in [g2];
action read in [g1] appliesTo { principal: [User], resource: [User] };
"""


def _user(**fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"uid": _uid("User", "u"), "attrs": {}, "parents": []}
    item.update(fields)
    return item


def _color(i: str) -> dict[str, Any]:
    return {"__entity": _uid("Color", i)}


@pytest.mark.parametrize(
    "items",
    [
        pytest.param([_user(attrs={"fav": _color("green")})], id="an attribute"),
        pytest.param([_user(attrs={"favs": [_color("red"), _color("green")]})], id="a set element"),
        pytest.param([_user(tags={"t": _color("green")})], id="a tag"),
        pytest.param([_user(parents=[_uid("Color", "green")])], id="a parent"),
        pytest.param(
            [{"uid": _uid("Action", "read"), "attrs": {}, "parents": [_uid("Action", "g1")]}],
            id="an action listed without all its ancestors",
        ),
    ],
)
def test_what_cedarpy_refuses_by_enumerations_and_action_groups_is_never_read(items: list[Any]) -> None:
    assert _mine(items, ENUM_SCHEMA) is None
    assert _cedar(items, ENUM_SCHEMA) is None
    with pytest.raises(BuildError):
        build_policy_set([PolicySource("p.cedar", "")], items, ENUM_SCHEMA)
    with pytest.raises(BuildError):  # with a fallback policy (cedarpy's authorizer over them) too
        build_policy_set(
            [PolicySource("p.cedar", "permit(principal, action, resource);")],
            items,
            ENUM_SCHEMA,
            force_fallback=frozenset({"policy0"}),
        )


def test_members_of_an_enumeration_and_an_action_with_all_its_ancestors_are_read() -> None:
    items = [
        _user(
            attrs={"fav": _color("red"), "favs": [_color("blue")]},
            tags={"t": _color("red")},
            parents=[_uid("Color", "blue")],
        ),
        {"uid": _uid("Action", "read"), "attrs": {}, "parents": [_uid("Action", "g1"), _uid("Action", "g2")]},
    ]
    mine = _mine(items, ENUM_SCHEMA)
    theirs = _cedar(items, ENUM_SCHEMA)
    assert mine is not None and theirs is not None
    _same(mine, theirs)
