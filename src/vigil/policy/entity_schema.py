"""Plain entity JSON that fits a Cedar schema as written: read by vigil, with the schema's actions.

With a schema, cedarpy reads an entity list by it: every entity must conform (its type declared,
its parents of the types it may be in, every attribute declared and of its declared type, the
required ones present, tags of the declared tag type), values may be written in the forms only a
schema makes unambiguous (``{"type", "id"}`` for an entity, ``"10.0.0.1"`` for an ``ipaddr``), and
the schema's action entities are added. Reading a large estate that way costs cedarpy a parse of
the whole list, a rendering of it back to JSON and a parse of that (2-3x the load without a schema).

:func:`schema_entities` says whether vigil may read the list itself: every entity is in the plain
subset (:mod:`vigil.policy.entity_json`: explicit escapes only, so a value means the same with or
without a schema) and conforms to the schema, checked here type by type; an action entity in the
list is the schema's own (declared, no attributes, no tags, exactly its declared parents). Then
the entities Cedar would give are the list's non-action entities and the schema's actions.
Anything else (a schema-only form, a value that does not fit, an enumerated entity type, an
extension other than ``ip``/``decimal``) is left to cedarpy, which reads it or says exactly what
is wrong: this module only ever declines, it never reports an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from vigil.policy.schema import Schema, SchemaType

_LONG_MIN: Final = -(2**63)
_LONG_MAX: Final = 2**63 - 1
_EXTENSION_FN: Final = {"ipaddr": "ip", "decimal": "decimal"}
_MAX_DEPTH: Final = 32


def is_action_type(entity_type: str) -> bool:
    """Whether ``entity_type`` names actions (``Action`` or ``NS::Action``)."""
    return entity_type == "Action" or entity_type.endswith("::Action")


def schema_entities(items: Sequence[Any], schema: Schema) -> list[Any] | None:
    """The entities Cedar reads from ``items`` (already known to be in the plain subset) by
    ``schema``: the non-action items as written and the schema's action entities; None (never an
    exception) when an item does not conform as written, or this check does not decide it."""
    if not schema_plain(items, schema):
        return None
    return [it for it in items if not is_action_type(_uid(it["uid"])[0])] + schema_actions(schema)


def schema_plain(items: Sequence[Any], schema: Schema) -> bool:
    """Whether every item (already known to be in the plain subset) conforms to ``schema`` as
    written. False (never an exception) for anything this check does not decide."""
    types = schema.entity_types
    enums = {name: frozenset(info.enum) for name, info in types.items() if info.enum is not None}
    ancestors = _action_ancestors(schema)
    for item in items:
        etype, eid = _uid(item["uid"])
        if is_action_type(etype):
            if not _the_schemas_action(item, (etype, eid), ancestors):
                return False
            continue
        info = types.get(etype)
        if info is None or info.enum is not None or info.attributes is None:
            return False
        allowed = info.parents
        for parent in item["parents"]:
            ptype, pid = _uid(parent)
            if ptype not in allowed or (ptype in enums and pid not in enums[ptype]):
                return False
        if not _fits_record(item["attrs"], info.attributes, enums, 0):
            return False
        tags = item.get("tags")
        if tags:
            if info.tags is None:
                return False
            for value in tags.values():
                if not _fits(value, info.tags, enums, 0):
                    return False
    return True


def schema_actions(schema: Schema) -> list[dict[str, Any]]:
    """The schema's action entities as Cedar entity JSON (no attributes, their direct parents)."""
    return [
        {
            "uid": {"type": uid[0], "id": uid[1]},
            "attrs": {},
            "parents": [{"type": p[0], "id": p[1]} for p in info.parents],
        }
        for uid, info in schema.actions.items()
    ]


def _uid(spec: Any) -> tuple[str, str]:
    if len(spec) == 1:
        spec = spec["__entity"]
    return spec["type"], spec["id"]


def _the_schemas_action(
    item: Mapping[str, Any],
    uid: tuple[str, str],
    ancestors: Mapping[tuple[str, str], frozenset[tuple[str, str]]],
) -> bool:
    """Cedar accepts an action entity in the list when the schema declares it, it has no
    attributes and no tags, and its parents are all its ancestors in the schema, no more."""
    want = ancestors.get(uid)
    if want is None or item["attrs"] or item.get("tags"):
        return False
    parents = [_uid(p) for p in item["parents"]]
    return len(parents) == len(want) and set(parents) == want


def _action_ancestors(schema: Schema) -> dict[tuple[str, str], frozenset[tuple[str, str]]]:
    """Each declared action's ancestors (its parents, theirs, ...), by the schema."""
    out: dict[tuple[str, str], frozenset[tuple[str, str]]] = {}
    for uid in schema.actions:
        seen: set[tuple[str, str]] = set()
        todo = list(schema.actions[uid].parents)
        while todo:
            parent = todo.pop()
            if parent in seen:
                continue
            seen.add(parent)
            info = schema.actions.get(parent)
            if info is not None:
                todo.extend(info.parents)
        out[uid] = frozenset(seen)
    return out


def _fits_record(
    value: Mapping[str, Any], record: SchemaType, enums: Mapping[str, frozenset[str]], depth: int
) -> bool:
    declared = record.attributes
    if declared is None:
        return False
    for name, (_, required) in declared.items():
        if required and name not in value:
            return False
    for name, v in value.items():
        entry = declared.get(name)
        if entry is None or not _fits(v, entry[0], enums, depth + 1):
            return False
    return True


def _fits(value: Any, t: SchemaType, enums: Mapping[str, frozenset[str]], depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    kind = t.kind
    vt = type(value)
    if kind == "String":
        return vt is str
    if kind == "Long":
        return vt is int and _LONG_MIN <= value <= _LONG_MAX
    if kind == "Bool":
        return vt is bool
    if kind == "Set":
        element = t.element
        return vt is list and element is not None and all(_fits(v, element, enums, depth + 1) for v in value)
    if vt is not dict:
        return False
    if kind == "Record":
        if len(value) == 1 and next(iter(value)) in ("__entity", "__extn", "__expr"):
            return False
        return _fits_record(value, t, enums, depth)
    if len(value) != 1:
        return False
    if kind == "Entity":
        spec = value.get("__entity")
        if spec is None or spec["type"] != t.name:
            return False
        members = enums.get(spec["type"])
        return members is None or spec["id"] in members  # an enumerated type's ids are its list
    if kind == "Extension":
        spec = value.get("__extn")
        return spec is not None and spec["fn"] == _EXTENSION_FN.get(t.name or "")
    return False
