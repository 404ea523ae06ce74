"""Entities in the plain subset (policy/entity_json.py), read by vigil alone, are the entities cedarpy
reads: same uids, attributes, parents, ancestors and tags; anything outside the subset is left to
cedarpy."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import entity_sets
from vigil.policy import cedar
from vigil.policy.entities import EntityStore
from vigil.policy.entity_json import plain_entities
from vigil.policy.json_values import to_json


def _unordered(value: Any) -> Any:
    """A Cedar value's JSON with every set in one canonical order: Cedar has no lists, and a set's
    rendering follows the order it was built in, which two correct readings need not share."""
    if isinstance(value, list):
        return sorted((_unordered(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, dict):
        return {k: _unordered(v) for k, v in value.items()}
    return value


def _view(store: EntityStore) -> dict[Any, Any]:
    return {
        uid: (
            _unordered(to_json(dict(e.attrs))),
            sorted(e.ancestors),  # cedarpy renders every ancestor as a parent: only these count
            None if e.tags is None else _unordered(to_json(dict(e.tags))),
        )
        for uid, e in store.by_uid.items()
    }


@settings(max_examples=300, deadline=None)
@given(entity_sets())
def test_plain_entities_read_as_cedarpy_reads_them(items: tuple[dict[str, Any], ...]) -> None:
    items_list = list(items)
    if not plain_entities(items_list):
        return
    try:
        normalized = cedar.normalize_entities(copy.deepcopy(items_list), None)
    except cedar.CedarError:
        raise AssertionError("cedarpy refuses entities of the plain subset") from None
    assert _view(EntityStore.from_json(items_list)) == _view(EntityStore.from_json(normalized))


JUNK = st.sampled_from(
    [
        None,
        1.5,
        {"__expr": "1"},
        {"__extn": {"fn": "datetime", "arg": "2024-01-01"}},
        {"__entity": {"type": "1bad", "id": "x"}},
        [None],
        {"a": {"b": None}},
    ]
)


@given(entity_sets(), JUNK, st.integers(0, 10))
def test_outside_the_subset_is_not_plain(items: tuple[dict[str, Any], ...], junk: Any, at: int) -> None:
    items_list = [copy.deepcopy(i) for i in items if i["uid"]["type"] not in ("Action", "NS::Action")]
    if not items_list:
        return
    items_list[at % len(items_list)]["attrs"]["junk"] = junk
    assert not plain_entities(items_list)


def test_shapes_outside_the_subset() -> None:
    base = {"uid": {"type": "User", "id": "a"}, "attrs": {}, "parents": []}
    assert plain_entities([base])
    assert not plain_entities([base, copy.deepcopy(base)])  # a uid twice
    assert not plain_entities([{**base, "extra": 1}])
    assert not plain_entities([{"uid": base["uid"], "attrs": {}}])
    assert not plain_entities([{**base, "uid": {"type": "if", "id": "a"}}])  # a reserved word
    assert not plain_entities([{**base, "parents": [{"type": "User"}]}])
    assert not plain_entities([{**base, "tags": []}])
    assert not plain_entities(["x"])
    implicit = {**base, "attrs": {"o": {"type": "User", "id": "b"}}}  # a record, without a schema
    assert plain_entities([implicit])
    normalized = cedar.normalize_entities([copy.deepcopy(implicit)], None)
    assert _view(EntityStore.from_json([implicit])) == _view(EntityStore.from_json(normalized))
    assert plain_entities(
        [{**base, "uid": {"__entity": {"type": "NS::User", "id": "a"}}, "tags": {"t": [1]}}]
    )
