"""A batch of entity changes (Cedar entity JSON to put in, uids to take out), checked as a whole.

:func:`read_batch` reads and checks every item before anything changes: the first bad item is
reported with its index (``EntityChangeError``, code ``invalid_entities``), and nothing is applied.
Entities are read as the workspace's are (policy/build.py): without a schema, the plain subset by
vigil alone and the rest through cedarpy; with one, through cedarpy against the schema. Action
entities are the schema's or the workspace's: a batch cannot change them (reload for that).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from vigil.errors import EntityChangeError, ValueConversionError
from vigil.policy import cedar
from vigil.policy.cedar import CedarError
from vigil.policy.entities import Entity, entity_from_json
from vigil.policy.entity_json import plain_entities
from vigil.policy.json_values import entity_uid
from vigil.policy.values import EntityUid, entity_display

MAX_BATCH: Final = 10_000


@dataclass(frozen=True, slots=True)
class EntityBatch:
    """A checked batch: the entities to put in and the uids to take out."""

    upserts: tuple[Entity, ...]
    deletes: tuple[EntityUid, ...]


def read_batch(
    upserts: Any, deletes: Any, *, schema_handle: Any = None, action_type: str = "Action"
) -> EntityBatch:
    """Check ``upserts`` (a list of Cedar entity JSON objects) and ``deletes`` (a list of
    ``{"type", "id"}``); raises EntityChangeError naming the first bad item and its index."""
    ups = _list(upserts, "entities")
    dels = _list(deletes, "uids")
    if len(ups) + len(dels) > MAX_BATCH:
        raise EntityChangeError(f"a batch holds at most {MAX_BATCH} changes, got {len(ups) + len(dels)}")
    seen: dict[EntityUid, int] = {}
    uids: list[EntityUid] = []
    for i, item in enumerate(ups):
        spec = item.get("uid") if type(item) is dict else None
        if type(spec) is dict and len(spec) == 1 and "__entity" in spec:
            spec = spec["__entity"]
        uid = _uid(spec, "entities", i)
        _not_an_action(uid, action_type, "entities", i)
        if uid in seen:
            raise EntityChangeError(
                f"entities[{i}]: {entity_display(uid)} is also entities[{seen[uid]}]",
                index=i,
                field="entities",
            )
        seen[uid] = i
        uids.append(uid)
    gone: list[EntityUid] = []
    for i, spec in enumerate(dels):
        uid = _uid(spec, "uids", i)
        _not_an_action(uid, action_type, "uids", i)
        if uid in seen:
            raise EntityChangeError(
                f"uids[{i}]: {entity_display(uid)} is also put in (entities[{seen[uid]}])",
                index=i,
                field="uids",
            )
        gone.append(uid)
    return EntityBatch(tuple(_entities(ups, uids, schema_handle)), tuple(dict.fromkeys(gone)))


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if type(value) is not list:
        raise EntityChangeError(f"{field}: expected an array", field=field)
    return value


def _uid(spec: Any, field: str, i: int) -> EntityUid:
    try:
        return entity_uid(
            spec, f"{field}[{i}].uid" if field == "entities" else f"{field}[{i}]", check_name=True
        )
    except ValueConversionError as e:
        raise EntityChangeError(e.message, index=i, field=field) from None


def _not_an_action(uid: EntityUid, action_type: str, field: str, i: int) -> None:
    if uid[0] == action_type or uid[0] == "Action" or uid[0].endswith("::Action"):
        raise EntityChangeError(
            f"{field}[{i}]: {entity_display(uid)} is an action: actions change with the workspace (reload)",
            index=i,
            field=field,
        )


def _entities(items: list[Any], uids: Sequence[EntityUid], schema_handle: Any) -> list[Entity]:
    if not items:
        return []
    if schema_handle is None and plain_entities(items):
        out = []
        for i, item in enumerate(items):
            try:
                out.append(entity_from_json(item, i))
            except ValueConversionError as e:
                raise EntityChangeError(f"entities[{i}]: {e.message}", index=i, field="entities") from None
        return out
    origins = [f"entities[{i}]" for i in range(len(items))]
    try:
        normalized = cedar.normalize_entities(copy.deepcopy(items), schema_handle, origins)
    except CedarError as e:
        index = _index_of(str(e), len(items))
        raise EntityChangeError(str(e), index=index, field="entities") from None
    # cedarpy adds the schema's action entities and returns the list in its own order
    position = {uid: i for i, uid in enumerate(uids)}
    out = [Entity(("", ""), {}, ())] * len(uids)
    for item in normalized:
        try:
            ent = entity_from_json(item)
        except ValueConversionError as e:
            raise EntityChangeError(f"entities: {e.message}", field="entities") from None
        i = position.get(ent.uid, -1)
        if i >= 0:
            out[i] = ent
    return out


def _index_of(message: str, n: int) -> int | None:
    if message.startswith("entities["):
        head = message[len("entities[") : message.find("]")]
        if head.isdigit() and int(head) < n:
            return int(head)
    return None
