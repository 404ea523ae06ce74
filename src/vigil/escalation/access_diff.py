"""What a policy (or entity) change gives and takes away, computed on the real entities
(``vigil policy diff``; docs/escalation.md, "What a workspace change gives away").

Every request (principal, action, resource) of the two workspaces is decided for every context at
once by :class:`~vigil.escalation.cedar_grants.GrantEvaluator` (``always``, ``depends`` on the
context, ``never``) with the old and the new compiled policies over the old and the new entities.
Principals: the entities of the identity types; actions: every action the policies or the schema
name, except action groups; resources: every entity that is not an action.

Requests whose outcome cannot have changed are not evaluated: the policies whose scopes match the
(principal, action) are the same compiled code with the same constants in both workspaces, and the
principal, the action and the resource are the same entities in both (when a policy reads other
entities, through an attribute that names one or an entity the policy names: none of those leads,
through entity references, to an entity that changed).

The changes are grouped for reading: per (principal, action, before, after) the resources, then
principals with the same resources, then actions with the same principals and resources.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.errors import VigilError
from vigil.escalation.cedar_grants import ALWAYS, DEPENDS, NEVER, GrantEvaluator, Outcome, uid_text
from vigil.model.uid import EntityUid
from vigil.policy.compiler import CompiledPolicy
from vigil.policy.entities import EntityStore

RANK = {NEVER: 0, DEPENDS: 1, ALWAYS: 2}
MAX_REQUESTS = 20_000_000
_READS_ENTITIES = re.compile(r"\bE\b")


@dataclass(frozen=True, slots=True)
class Side:
    """One workspace: its compiled policies, its entities and its ``context_guards``."""

    policies: Sequence[CompiledPolicy]
    store: EntityStore
    context_guards: frozenset[str] = frozenset()
    # every entity uid the policies name (PolicySet.named_uids()); None: unknown
    named: frozenset[EntityUid] | None = None


def _is_action(uid: EntityUid) -> bool:
    return uid[0] == "Action" or uid[0].endswith("::Action")


def _fingerprint(p: CompiledPolicy) -> Any:
    """Equal for two compiled policies that decide every request alike (None: unknown)."""
    if p.fallback_reason is not None:
        return None
    values = tuple((type(v).__name__, repr(v)) for v in p.constants)
    return (p.id, p.forbid, p.source, p.principal, p.actions, p.action_in, p.resource, values)


def _reads_entities(p: CompiledPolicy) -> bool:
    return p.fallback_reason is not None or any(
        _READS_ENTITIES.search(line) for line in p.source.splitlines() if not line.startswith("def ")
    )


def _same(a: Any, b: Any) -> bool:
    """Cedar values equal, with Python's ``True == 1`` told apart (types compared throughout)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    return bool(a == b)


def changed_entities(old: EntityStore, new: EntityStore) -> set[EntityUid]:
    """Uids present in one store only, or with other attributes, ancestors or tags."""
    out = set(old.by_uid) ^ set(new.by_uid)
    for uid in set(old.by_uid) & set(new.by_uid):
        a, b = old.by_uid[uid], new.by_uid[uid]
        if not (_same(a.attrs, b.attrs) and a.ancestors == b.ancestors and _same(a.tags, b.tags)):
            out.add(uid)
    return out


def _refs(value: Any, out: set[EntityUid]) -> None:
    """Every entity uid inside a Cedar value (over-approximated: any pair of strings)."""
    t = type(value)
    if t is tuple:
        if len(value) == 2 and type(value[0]) is str and type(value[1]) is str:
            out.add(value)
            return
        for v in value:
            _refs(v, out)
    elif t is frozenset or t is list:
        for v in value:
            _refs(v, out)
    elif t is dict:
        for v in value.values():
            _refs(v, out)


def tainted(stores: Sequence[EntityStore], changed: set[EntityUid]) -> set[EntityUid]:
    """The changed entities and every entity whose attributes or tags lead (through entity
    references, transitively, in either store) to one: what a policy could read differently when
    it starts from it."""
    referrers: dict[EntityUid, set[EntityUid]] = {}
    for store in stores:
        for uid, e in store.by_uid.items():
            found: set[EntityUid] = set()
            _refs(e.attrs, found)
            if e.tags is not None:
                _refs(e.tags, found)
            for f in found:
                referrers.setdefault(f, set()).add(uid)
    out = set(changed)
    todo = list(changed)
    while todo:
        for r in referrers.get(todo.pop(), ()):
            if r not in out:
                out.add(r)
                todo.append(r)
    return out


def universe(
    old: Side, new: Side, identity_types: Iterable[str]
) -> tuple[list[EntityUid], list[EntityUid], list[EntityUid]]:
    """(principals, actions, resources) the diff enumerates."""
    types = set(identity_types)
    uids = set(old.store.by_uid) | set(new.store.by_uid)
    principals = sorted(u for u in uids if u[0] in types)
    actions: set[EntityUid] = {u for u in uids if _is_action(u)}
    for side in (old, new):
        for p in side.policies:
            actions.update(p.actions or ())
    groups: set[EntityUid] = set()
    for a in actions:
        groups.update(old.store.ancestors(a))
        groups.update(new.store.ancestors(a))
    resources = sorted(u for u in uids if not _is_action(u))
    return principals, sorted(actions - groups), resources


def access_diff(
    old: Side, new: Side, identity_types: Iterable[str], *, max_requests: int = MAX_REQUESTS
) -> dict[str, Any]:
    """``{"gained": [group], "lost": [group], "enumerated": {...}}``; a group is ``{"before",
    "after", "principals", "actions", "resources", "via"}`` (uid texts; ``via`` the permits that
    allow it after a gain, before a loss). Raises VigilError (``invalid_argument``) when more than
    ``max_requests`` requests would have to be evaluated (those skipped do not count)."""
    started = time.perf_counter()
    principals, actions, resources = universe(old, new, identity_types)
    total = len(principals) * len(actions) * len(resources)
    ev_old = GrantEvaluator(old.policies, old.store, old.context_guards)
    ev_new = GrantEvaluator(new.policies, new.store, new.context_guards)
    changed = changed_entities(old.store, new.store)
    dirty = tainted((old.store, new.store), changed)
    literals = None if old.named is None or new.named is None else old.named | new.named
    # a policy that reads other entities may read a changed one through a literal it names
    literal_dirty = literals is None or bool(literals & dirty)
    fps_old = {id(p): _fingerprint(p) for p in old.policies}
    fps_new = {id(p): _fingerprint(p) for p in new.policies}
    reads_old = {id(p) for p in old.policies if _reads_entities(p)}
    reads_new = {id(p) for p in new.policies if _reads_entities(p)}
    rows: dict[tuple[EntityUid, EntityUid, str, str], tuple[set[EntityUid], set[str]]] = {}
    evaluated = 0
    for p in principals:
        anc_old = old.store.ancestors(p)
        anc_new = new.store.ancestors(p)
        for a in actions:
            c_old = ev_old.candidates(p, anc_old, a)
            c_new = ev_new.candidates(p, anc_new, a)
            if not any(not x.forbid for x in c_old) and not any(not x.forbid for x in c_new):
                continue  # no permit can apply in either: never and never
            same = (
                p not in changed
                and a not in changed
                and [fps_old[id(x)] for x in c_old] == [fps_new[id(x)] for x in c_new]
                and None not in (fps_old[id(x)] for x in c_old)
            )
            targets: list[EntityUid] = resources
            if same:
                if not changed:
                    continue
                if not any(id(x) in reads_old for x in c_old) and not any(id(x) in reads_new for x in c_new):
                    targets = [r for r in resources if r in changed]
                elif not literal_dirty and p not in dirty and a not in dirty:
                    # what they read starts at the principal, the action, the resource or a
                    # literal: only a resource that leads to a changed entity can answer otherwise
                    targets = [r for r in resources if r in dirty]
            quick = None
            if not same and p not in dirty and a not in dirty and not literal_dirty:
                quick = _differing_permits(c_old, c_new, fps_old, fps_new)
            if evaluated + len(targets) > max_requests:
                raise VigilError(
                    f"the diff would evaluate more than {max_requests:,} of its {total:,} requests "
                    f"({len(principals)} principals x {len(actions)} actions x {len(resources)} resources)",
                    code="invalid_argument",
                )
            for r in targets:
                if (
                    quick is not None
                    and r not in dirty
                    and all(ev_old.never_satisfied(x, p, a, r) for x in quick[0])
                    and all(ev_new.never_satisfied(x, p, a, r) for x in quick[1])
                ):
                    # the policies that differ are permits that allow nothing here, and the
                    # others are the same code on the same entities: the same answer
                    continue
                evaluated += 1
                o_old = ev_old.decide(p, a, r)
                o_new = ev_new.decide(p, a, r)
                if o_old.verdict == o_new.verdict:
                    continue
                key = (p, a, o_old.verdict, o_new.verdict)
                row = rows.setdefault(key, (set(), set()))
                row[0].add(r)
                row[1].update(_via(o_old, o_new))
    gained, lost = _group(rows)
    return {
        "gained": gained,
        "lost": lost,
        "enumerated": {
            "principals": len(principals),
            "actions": len(actions),
            "resources": len(resources),
            "requests": total,
            "evaluated": evaluated,
            "seconds": round(time.perf_counter() - started, 3),
        },
    }


def _differing_permits(
    c_old: Sequence[CompiledPolicy],
    c_new: Sequence[CompiledPolicy],
    fps_old: dict[int, Any],
    fps_new: dict[int, Any],
) -> tuple[list[CompiledPolicy], list[CompiledPolicy]] | None:
    """The candidates of each side whose compiled code has no equal on the other side, when every
    one of them is a compiled permit (None otherwise: a forbid or a fallback differs)."""
    only_old = _unmatched(c_old, fps_old, c_new, fps_new)
    only_new = _unmatched(c_new, fps_new, c_old, fps_old)
    if any(x.forbid or x.fallback_reason is not None for x in (*only_old, *only_new)):
        return None
    return only_old, only_new


def _unmatched(
    side: Sequence[CompiledPolicy],
    fps: dict[int, Any],
    other: Sequence[CompiledPolicy],
    other_fps: dict[int, Any],
) -> list[CompiledPolicy]:
    """The policies of ``side`` with no equal compiled code left on ``other`` (a multiset
    difference: two equal policies on one side need two on the other; None fingerprints never match)."""
    pool: dict[Any, int] = {}
    for x in other:
        fp = other_fps[id(x)]
        if fp is not None:
            pool[fp] = pool.get(fp, 0) + 1
    out: list[CompiledPolicy] = []
    for x in side:
        fp = fps[id(x)]
        if fp is not None and pool.get(fp, 0) > 0:
            pool[fp] -= 1
        else:
            out.append(x)
    return out


def _via(o_old: Outcome, o_new: Outcome) -> tuple[str, ...]:
    return o_new.via if RANK[o_new.verdict] > RANK[o_old.verdict] else o_old.via


def _group(
    rows: dict[tuple[EntityUid, EntityUid, str, str], tuple[set[EntityUid], set[str]]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    by_resources: dict[tuple[EntityUid, str, str, frozenset[EntityUid]], tuple[set[EntityUid], set[str]]] = {}
    for (p, a, before, after), (targets, via) in rows.items():
        entry = by_resources.setdefault((a, before, after, frozenset(targets)), (set(), set()))
        entry[0].add(p)
        entry[1].update(via)
    by_principals: dict[
        tuple[str, str, frozenset[EntityUid], frozenset[EntityUid]], tuple[set[EntityUid], set[str]]
    ] = {}
    for (a, before, after, rs), (who, via) in by_resources.items():
        entry2 = by_principals.setdefault((before, after, frozenset(who), rs), (set(), set()))
        entry2[0].add(a)
        entry2[1].update(via)
    gained: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] = []
    for (before, after, ps, rs), (acts, via) in by_principals.items():
        group = {
            "before": before,
            "after": after,
            "principals": [uid_text(u) for u in sorted(ps)],
            "actions": [uid_text(u) for u in sorted(acts)],
            "resources": [uid_text(u) for u in sorted(rs)],
            "via": sorted(via),
        }
        (gained if RANK[after] > RANK[before] else lost).append(group)
    order = lambda g: (g["principals"], g["actions"], g["before"], g["after"])  # noqa: E731
    return sorted(gained, key=order), sorted(lost, key=order)
