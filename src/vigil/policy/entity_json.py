"""Cedar entity JSON that needs no schema and no reading by cedarpy: the *plain* subset.

Without a schema, Cedar reads an entity list (``uid``, ``attrs``, ``parents``, optional ``tags``) as
written: nothing is typed from a schema and no action entity is added. For entities in the plain
subset below, vigil's own reader (:func:`vigil.policy.entities.entity_from_json`) then builds the
same values cedarpy would, at a fraction of the cost (cedarpy parses the whole list, renders it
back to JSON, and the JSON is parsed again). Anything outside the subset (and anything vigil's
reader refuses) goes through cedarpy, as before, which says exactly what is wrong, or accepts it.

The subset, value by value: booleans, integers, strings, arrays of values (sets), records whose
keys are not an escape's (``{"type", "id"}`` is a record without a schema, for both readers), and
the escapes
``{"__entity": {"type", "id"}}`` and ``{"__extn": {"fn": "ip"|"decimal", "arg": text}}``. An entity
has exactly ``uid``, ``attrs`` (an object), ``parents`` (an array of uids) and optionally ``tags``
(an object); its type is a Cedar name, and no uid appears twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from vigil.policy.json_values import valid_type_name

_ENTITY_KEYS: Final = frozenset({"uid", "attrs", "parents"})
_ENTITY_KEYS_TAGS: Final = frozenset({"uid", "attrs", "parents", "tags"})
_ESCAPES: Final = frozenset({"__entity", "__extn", "__expr"})
_PLAIN_EXTN: Final = frozenset({"ip", "decimal"})
_MAX_DEPTH: Final = 32


def plain_entities(items: Sequence[Any]) -> bool:
    """Whether every item is in the plain subset (and no uid repeats)."""
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    for item in items:
        if type(item) is not dict:
            return False
        keys = item.keys()
        if keys not in (_ENTITY_KEYS, _ENTITY_KEYS_TAGS):
            return False
        uid = _uid(item["uid"], names)
        if uid is None or uid in seen:
            return False
        seen.add(uid)
        attrs = item["attrs"]
        if type(attrs) is not dict or not _record(attrs, 1):
            return False
        parents = item["parents"]
        if type(parents) is not list:
            return False
        for p in parents:
            if _uid(p, names) is None:
                return False
        tags = item.get("tags")
        if tags is not None and (type(tags) is not dict or not _record(tags, 1)):
            return False
    return True


def _uid(spec: Any, names: set[str]) -> tuple[str, str] | None:
    if type(spec) is dict and len(spec) == 1 and "__entity" in spec:
        spec = spec["__entity"]
    if type(spec) is not dict or len(spec) != 2:
        return None
    etype = spec.get("type")
    eid = spec.get("id")
    if type(etype) is not str or type(eid) is not str:
        return None
    if etype not in names:
        if not valid_type_name(etype):
            return None
        names.add(etype)
    return (etype, eid)


def _record(value: dict[Any, Any], depth: int) -> bool:
    for v in value.values():
        t = type(v)
        if t is str or t is int or t is bool:
            continue
        if not _value(v, depth + 1):
            return False
    return True


def _value(value: Any, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    t = type(value)
    if t is str or t is int or t is bool:
        return True
    if t is list:
        return all(_value(v, depth + 1) for v in value)
    if t is not dict:
        return False  # null, a float: cedarpy says what is wrong
    if len(value) == 1:
        key = next(iter(value))
        if key == "__entity":
            return _uid(value, set()) is not None
        if key == "__extn":
            spec = value[key]
            return (
                type(spec) is dict
                and len(spec) == 2
                and spec.get("fn") in _PLAIN_EXTN
                and type(spec.get("arg")) is str
            )
    if not _ESCAPES.isdisjoint(value.keys()):
        return False
    return _record(value, depth)
