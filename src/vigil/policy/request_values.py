"""The Cedar values of one request's JSON parts: its context and its property overlays.

Shared by every caller that evaluates policies (the engine's decisions, search), so both read
a request exactly the same way: typed by the schema when there is one, then converted by the one
JSON rule of :mod:`vigil.policy.json_values`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vigil.errors import OverlayError
from vigil.policy.entities import Entity
from vigil.policy.json_values import record_to_cedar
from vigil.policy.overlay import OverlaySettings
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
    rules: OverlaySettings,
) -> tuple[dict[EntityUid, Record], dict[str, Record]]:
    """Per-call attributes for ``(uid, properties, where)`` items: the stored attributes with the
    properties laid over them key by key (typed by the schema when there is one). Items with no
    properties are skipped.

    Returns ``(overlay by uid, the supplied values by side)``, the side being ``where`` up to its
    first dot (``"subject"``). Raises ValueConversionError naming ``where`` for a bad value, then
    OverlayError (``overlay_not_allowed``) when ``rules`` do not let a caller supply a property.
    """
    overlay: dict[EntityUid, Record] = {}
    applied: dict[str, Record] = {}
    for uid, props, where in items:
        if props is None:
            continue
        entity = entities.get(uid)
        stored: Mapping[str, Any] = entity.attrs if entity is not None else {}
        value: Any = props
        if schema is not None:
            etype = schema.entity_types.get(uid[0])
            if etype is not None and etype.attributes is not None:
                value = coerce_json(props, etype.attributes)
        supplied = record_to_cedar(value, where)
        check_overlay(rules, uid[0], stored, supplied, where)
        merged = Record(overlay.get(uid) or stored)
        merged.update(supplied)
        overlay[uid] = merged
        applied[where.split(".", 1)[0]] = supplied
    return overlay, applied


def _same(a: Any, b: Any) -> bool:
    """Whether two Cedar values are the same value: of one type all the way down (Python's ``==``
    says ``True == 1``; Cedar's ``true`` and ``1`` differ, and an overlay must not swap one for the
    other). Sets keep booleans and integers apart already (``values.make_set``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def check_overlay(
    rules: OverlaySettings, entity_type: str, stored: Mapping[str, Any], props: Mapping[str, Any], where: str
) -> None:
    """Returns None when ``rules`` let a caller supply every property of ``props`` (Cedar values)
    for an entity of ``entity_type`` whose stored attributes are ``stored``; raises OverlayError
    naming the refused attributes otherwise. ``"add"``: attributes the entity does not store, or
    stores with the same value (that replaces nothing); ``"replace"``: any; ``"none"``: none; the
    type's ``allow`` list: those, whatever the mode."""
    mode, allow = rules.mode_of(entity_type)
    if mode == "replace":
        return
    if mode == "add":
        refused = sorted(
            k for k, v in props.items() if k in stored and k not in allow and not _same(stored[k], v)
        )
    else:
        refused = sorted(k for k in props if k not in allow)
    if refused:
        names = ", ".join(repr(k)[:80] for k in refused[:5])
        etype = repr(entity_type[:80])
        if mode == "add":
            message = (
                f"{where} may not replace the stored attributes {names} of {etype}: "
                "[overlay] lets a caller only add attributes to this type"
            )
        else:
            message = f"{where} may not set {names}: [overlay] lets a caller set no properties of {etype}"
        raise OverlayError(message, where=where, entity_type=entity_type, attributes=refused[:20])
