"""The Cedar values of one request's JSON parts: its context and its property overlays.

Shared by every caller that evaluates policies (the engine's decisions, search), so both read
a request exactly the same way: typed by the schema when there is one, then converted by the one
JSON rule of :mod:`vigil.policy.json_values`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vigil.policy.entities import Entity
from vigil.policy.json_values import record_to_cedar
from vigil.policy.schema import Schema, coerce_json
from vigil.policy.values import EntityUid, Record


def typed_context(
    schema: Schema | None,
    action: EntityUid,
    raw: Mapping[str, Any],
    action_properties: Mapping[str, Any] | None = None,
) -> Record:
    """The Cedar context record: ``raw`` typed by the action's context type (with a schema), plus
    ``action_properties``; raises ValueConversionError for a value with no Cedar equivalent."""
    value: Any = raw
    if schema is not None and raw:
        ctype = schema.context_type(action)
        if ctype is not None:
            value = coerce_json(raw, ctype)
    context = record_to_cedar(value, "context")
    if action_properties is not None:
        context["action_properties"] = record_to_cedar(action_properties, "action.properties")
    return context


def property_overlay(
    schema: Schema | None,
    entities: Mapping[EntityUid, Entity],
    items: Iterable[tuple[EntityUid, Mapping[str, Any] | None, str]],
) -> dict[EntityUid, Record]:
    """Per-call attributes for ``(uid, properties, where)`` items: the stored attributes with the
    properties laid over them key by key (typed by the schema when there is one). Items with no
    properties are skipped. Raises ValueConversionError naming ``where`` for a bad value."""
    overlay: dict[EntityUid, Record] = {}
    for uid, props, where in items:
        if props is None:
            continue
        value: Any = props
        if schema is not None:
            etype = schema.entity_types.get(uid[0])
            if etype is not None and etype.attributes is not None:
                value = coerce_json(props, etype.attributes)
        entity = entities.get(uid)
        merged = Record(overlay.get(uid) or (entity.attrs if entity is not None else ()))
        merged.update(record_to_cedar(value, where))
        overlay[uid] = merged
    return overlay
