"""The entity store: every entity's attributes, tags and transitive ancestors, computed once at load.

Entities arrive as Cedar entity JSON (``uid``, ``attrs``, ``parents``, optional ``tags``), already
normalized by :mod:`vigil.policy.cedar` (schema-typed when a schema exists, action entities from the
schema added). Lookups on the decision path are plain dict reads.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from vigil.errors import ValueConversionError
from vigil.policy.extensions import IPAddr
from vigil.policy.json_values import entity_uid, record_to_cedar
from vigil.policy.values import EntityUid, EvalError, Record, entity_display

EMPTY_ANCESTORS: Final[frozenset[EntityUid]] = frozenset()


class Entity:
    """One entity: uid, attributes (a Cedar record), parents, transitive ancestors, tags."""

    __slots__ = (
        "ancestors",
        "attrs",
        "candidates",
        "parents",
        "resource_info",
        "resource_status",
        "status_sets",
        "tags",
        "uid",
    )

    def __init__(
        self,
        uid: EntityUid,
        attrs: Record,
        parents: tuple[EntityUid, ...],
        tags: Record | None = None,
    ) -> None:
        self.uid = uid
        self.attrs = attrs
        self.parents = parents
        self.tags = tags
        self.ancestors: frozenset[EntityUid] = EMPTY_ANCESTORS
        # Caches the authorizer keeps on the entity itself (one dict lookup fewer per decision):
        # candidate policies by action when this entity is the principal, and which resource
        # guards it fails / passes when it is the resource: the guards evaluated so far, and the
        # guard sets (keys) they cover (None with a status: every guard, decided at load).
        self.candidates: dict[EntityUid, Any] | None = None
        self.resource_status: tuple[frozenset[int], frozenset[int]] | None = None
        self.status_sets: set[int] | None = None
        # The behaviour model's facts about this entity as a resource (stable hash, bitmap
        # position, type, segment), computed on its first request: kept here, in memory the
        # decision has just read, instead of in a table of its own.
        self.resource_info: Any = None

    def with_attrs(self, attrs: Record) -> Entity:
        """A copy of this entity with ``attrs`` (same parents, ancestors and tags)."""
        e = Entity(self.uid, attrs, self.parents, self.tags)
        e.ancestors = self.ancestors
        return e  # caches deliberately not copied: they depend on the stored attributes


class _Settled(dict):  # type: ignore[type-arg]
    """``done`` of :func:`_close_ancestors` that also knows the settled entities' ancestors."""

    def __init__(self, settled: Mapping[EntityUid, Entity]) -> None:
        super().__init__()
        self.settled = settled

    def __contains__(self, uid: object) -> bool:
        return dict.__contains__(self, uid) or uid in self.settled

    def get(self, uid: Any, default: Any = None) -> Any:
        got = dict.get(self, uid)
        if got is not None:
            return got
        ent = self.settled.get(uid)
        return ent.ancestors if ent is not None else default


class _Outside(Mapping[EntityUid, Entity]):
    """The stored entities except those being closed again (settled for :func:`_close_ancestors`)."""

    def __init__(self, by_uid: dict[EntityUid, Entity], closing: dict[EntityUid, Entity]) -> None:
        self.by_uid = by_uid
        self.closing = closing

    def __getitem__(self, uid: EntityUid) -> Entity:
        if uid in self.closing:
            raise KeyError(uid)
        return self.by_uid[uid]

    def get(self, uid: Any, default: Any = None) -> Any:
        if uid in self.closing:
            return default
        return self.by_uid.get(uid, default)

    def __contains__(self, uid: object) -> bool:
        return uid not in self.closing and uid in self.by_uid

    def __iter__(self) -> Any:
        return (u for u in self.by_uid if u not in self.closing)

    def __len__(self) -> int:
        return len(self.by_uid) - len(self.closing)


class MissingAttrs(Record):
    """The attributes of an entity that does not exist: every read fails as in Cedar."""

    __slots__ = ()


MISSING_ATTRS: Final = MissingAttrs()


class EntityStore:
    """All entities by uid, with ancestors precomputed (the transitive closure of ``parents``)."""

    __slots__ = ("by_uid", "changes", "children")

    def __init__(self, entities: Iterable[Entity]) -> None:
        self.changes = 0  # batches applied since load (search indexes rebuild when it moves)
        self.by_uid: dict[EntityUid, Entity] = {}
        for e in entities:
            self.by_uid[e.uid] = e
        _close_ancestors(self.by_uid)
        _share_equal_values(self.by_uid)
        self.children: dict[EntityUid, set[EntityUid]] = {}
        for e in self.by_uid.values():
            for a in e.ancestors:
                self.children.setdefault(a, set()).add(e.uid)

    @classmethod
    def from_json(cls, items: Iterable[Mapping[str, Any]]) -> EntityStore:
        """A store from Cedar entity JSON objects; raises ValueConversionError on a malformed one."""
        return cls(entity_from_json(item, i) for i, item in enumerate(items))

    def __len__(self) -> int:
        return len(self.by_uid)

    def copy(self) -> EntityStore:
        """The same entities as new objects (attributes, parents, ancestors and tags shared: never
        changed in place) with nothing cached on them: for a new authorizer while this store's
        may still be deciding (a reload)."""
        new = EntityStore.__new__(EntityStore)
        new.changes = 0
        by_uid: dict[EntityUid, Entity] = {}
        for uid, e in self.by_uid.items():
            c = Entity(e.uid, e.attrs, e.parents, e.tags)
            c.ancestors = e.ancestors
            by_uid[uid] = c
        new.by_uid = by_uid
        new.children = {uid: set(kids) for uid, kids in self.children.items()}
        return new

    def apply(
        self, upserts: Sequence[Entity], deletes: Iterable[EntityUid]
    ) -> tuple[list[Entity], list[Entity]]:
        """Put ``upserts`` in (replacing entities with the same uid) and take ``deletes`` out, then
        close the ancestors of what changed: the new entities and the descendants of every entity
        put in or taken out. Returns (the entities taken out or replaced, the stored entities whose
        ancestors changed). The caller checks the batch first: this never fails halfway."""
        by_uid = self.by_uid
        children = self.children
        touched: set[EntityUid] = set()
        gone: list[Entity] = []
        for uid in deletes:
            old = by_uid.pop(uid, None)
            if old is not None:
                gone.append(old)
                touched.update(children.get(uid, ()))
                for a in old.ancestors:
                    kids = children.get(a)
                    if kids is not None:
                        kids.discard(uid)
        fresh: dict[EntityUid, Entity] = {}
        for e in upserts:
            old = by_uid.get(e.uid)
            if old is not None:
                gone.append(old)
                for a in old.ancestors:
                    kids = children.get(a)
                    if kids is not None:
                        kids.discard(e.uid)
            touched.update(children.get(e.uid, ()))
            fresh[e.uid] = e
        _share_equal_values(fresh)
        by_uid.update(fresh)
        moved: list[Entity] = []
        closing: dict[EntityUid, Entity] = dict(fresh)
        before: dict[EntityUid, frozenset[EntityUid]] = {}
        for uid in touched:
            ent = by_uid.get(uid)
            if ent is not None and uid not in fresh:
                closing[uid] = ent
                before[uid] = ent.ancestors
        settled = _Outside(by_uid, closing)
        # the new ancestor sets, computed on stand-ins: a decision running now reads the old ones
        stand_ins = {uid: Entity(uid, e.attrs, e.parents, e.tags) for uid, e in closing.items()}
        _close_ancestors(stand_ins, settled)
        for uid, ent in closing.items():
            new = stand_ins[uid].ancestors
            old_anc = before.get(uid)
            if old_anc is not None:
                if old_anc == new:
                    continue
                for a in old_anc - new:
                    kids = children.get(a)
                    if kids is not None:
                        kids.discard(uid)
                moved.append(ent)
            ent.ancestors = new
            for a in new:
                children.setdefault(a, set()).add(uid)
        self.changes += 1
        return gone, moved

    def get(self, uid: EntityUid) -> Entity | None:
        """The entity, or None when it does not exist."""
        return self.by_uid.get(uid)

    def attrs(self, uid: Any) -> Record:
        """The attributes of entity ``uid``; raises EvalError when it does not exist."""
        e = self.by_uid.get(uid)
        if e is None:
            raise EvalError("entity", f"entity `{entity_display(uid)}` does not exist")
        return e.attrs

    def ancestors(self, uid: Any) -> frozenset[EntityUid]:
        """The transitive ancestors of ``uid`` (empty when it does not exist)."""
        e = self.by_uid.get(uid)
        return EMPTY_ANCESTORS if e is None else e.ancestors

    def tags(self, uid: Any) -> Record | None:
        """The tags of entity ``uid`` (None when it has none); raises EvalError when it does not exist."""
        e = self.by_uid.get(uid)
        if e is None:
            raise EvalError("entity", f"entity `{entity_display(uid)}` does not exist")
        return e.tags

    def exists(self, uid: Any) -> bool:
        """Whether ``uid`` names an entity of the store."""
        return uid in self.by_uid


def entity_from_json(item: Any, index: int = 0) -> Entity:
    """One Cedar entity JSON object as an :class:`Entity`; raises ValueConversionError when malformed."""
    where = f"entity #{index}"
    if type(item) is not dict:
        raise ValueConversionError(f"{where}: expected an object")
    uid = entity_uid(_unescape(item.get("uid")), f"{where}.uid")
    where = f"entity {entity_display(uid)}"
    attrs = record_to_cedar(item.get("attrs", {}), f"{where}.attrs")
    parents_json = item.get("parents", [])
    if type(parents_json) is not list:
        raise ValueConversionError(f"{where}.parents: expected an array")
    parents = tuple(entity_uid(_unescape(p), f"{where}.parents[]") for p in parents_json)
    tags_json = item.get("tags")
    tags = None if tags_json is None else record_to_cedar(tags_json, f"{where}.tags")
    return Entity(uid, attrs, parents, tags)


def _unescape(value: Any) -> Any:
    if type(value) is dict and "__entity" in value and len(value) == 1:
        return value["__entity"]
    return value


def _share_equal_values(by_uid: dict[EntityUid, Entity]) -> None:
    """Entities with equal attributes (same names, order, types, values and text) or equal ancestor
    sets share one object, and equal text values are one (interned) string: a store of thousands of resources alike then has a few hundred
    attribute records, which a decision reads hot from cache. Stored attributes are never
    changed in place (overlays copy), so sharing is invisible. Attributes holding a record
    (unhashable) keep their own."""
    attrs: dict[tuple[Any, ...], Record] = {}
    ancestors: dict[frozenset[EntityUid], frozenset[EntityUid]] = {}
    for ent in by_uid.values():
        ent.ancestors = ancestors.setdefault(ent.ancestors, ent.ancestors)
        # Text values interned: a condition comparing two entities' attributes (resource.team ==
        # principal.team) or one with a policy's literal (interned by the compiler) then matches
        # by identity, without reading the stored string (a cache miss on most decisions).
        values = ent.attrs
        for k, v in values.items():
            if type(v) is str:
                values[k] = sys.intern(v)
        # the type is part of the key (True == 1 in Python, not in Cedar), and an address's
        # text (equal addresses may be written differently; the text is what is shown)
        key = tuple([(k, type(v), v, v.text if type(v) is IPAddr else None) for k, v in ent.attrs.items()])
        with contextlib.suppress(TypeError):  # a record inside: not hashable, not shared
            ent.attrs = attrs.setdefault(key, ent.attrs)


def _close_ancestors(
    by_uid: dict[EntityUid, Entity], settled: Mapping[EntityUid, Entity] | None = None
) -> None:
    """Fill every entity's ``ancestors`` with the transitive closure of its parents (cycle-safe).

    Linear in the entities and their ancestor sets: each entity is closed once, after its parents;
    entities with the same parents share one set (the many resources of one folder). ``settled``:
    entities outside ``by_uid`` whose ancestors are already right (a change closes only the
    entities it touches)."""
    done: dict[EntityUid, frozenset[EntityUid]] = {}
    if settled is not None:
        done = _Settled(settled)
    by_parents: dict[tuple[EntityUid, ...], frozenset[EntityUid]] = {}
    cyclic = False
    for start in by_uid:
        if start in done:
            continue
        # Iterative DFS with an explicit stack: hierarchies can be deep.
        stack: list[tuple[EntityUid, int]] = [(start, 0)]
        on_path: set[EntityUid] = {start}
        while stack:
            uid, i = stack[-1]
            ent = by_uid.get(uid)
            parents = ent.parents if ent is not None else ()
            if i < len(parents):
                stack[-1] = (uid, i + 1)
                p = parents[i]
                if p in done or p not in by_uid:
                    continue
                if p in on_path:
                    cyclic = True
                    continue
                on_path.add(p)
                stack.append((p, 0))
                continue
            got = by_parents.get(parents)
            if got is None:
                acc: set[EntityUid] = set(parents)
                for p in parents:
                    acc |= done.get(p, EMPTY_ANCESTORS)
                got = frozenset(acc) if acc else EMPTY_ANCESTORS
                if not cyclic:  # a set closed inside a cycle may still grow below
                    by_parents[parents] = got
            done[uid] = got
            on_path.discard(uid)
            stack.pop()
    # A cycle leaves members computed before their peers; more passes settle them.
    changed = cyclic
    while changed:
        changed = False
        for uid, anc in done.items():
            grown = set(anc)
            for a in anc:
                grown |= done.get(a, EMPTY_ANCESTORS)
            if len(grown) != len(anc):
                done[uid] = frozenset(grown)
                changed = True
    for uid, ent in by_uid.items():
        ent.ancestors = done.get(uid, EMPTY_ANCESTORS)
