"""The compiled Cedar authorizer: candidate index + compiled policies -> a Cedar response.

Semantics are Cedar's: deny unless some permit is satisfied and no forbid is; an erroring policy
is skipped and reported. The determining policies are the satisfied forbids when any, else the
satisfied permits. vigil's one stricter rule (an erroring forbid denies) is applied by the engine,
which sees ``errors`` with their effects in :class:`Answer`.

The index answers "which policies can apply to this principal and action" once per pair, from the
scopes and the principal/action-only guards, and keeps the answer in a bounded cache.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from vigil.policy.compiler import CompiledPolicy, MatchFn
from vigil.policy.entities import EMPTY_ANCESTORS, MISSING_ATTRS, Entity, EntityStore
from vigil.policy.values import EntityUid, EvalError, Record

CACHE_LIMIT: Final = 100_000
PER_ENTITY_LIMIT: Final = 1_024  # actions cached per principal
STATUS_LIMIT: Final = 64  # guard sets one resource remembers it has been decided under
# Resource guards are all decided at load when entities x distinct guards is at most this
# (measured: ~0.4 us a guard evaluation on the shared workload, so <= ~0.5 s; beyond, each guard
# on first use per entity).
EAGER_GUARD_LIMIT: Final = 1_000_000


class PolicyError:
    """A policy that raised an error during evaluation."""

    __slots__ = ("forbid", "kind", "message", "policy_id")

    def __init__(self, policy_id: str, forbid: bool, kind: str, message: str) -> None:
        self.policy_id = policy_id
        self.forbid = forbid
        self.kind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"PolicyError({self.policy_id!r}, {self.kind!r}, {self.message!r})"


class Answer:
    """Cedar's response: decision, determining policy ids, errors."""

    __slots__ = ("allowed", "errors", "policies")

    def __init__(self, allowed: bool, policies: tuple[str, ...], errors: tuple[PolicyError, ...]) -> None:
        self.allowed = allowed
        self.policies = policies
        self.errors = errors


_NO_ERRORS: Final[tuple[PolicyError, ...]] = ()
Candidate = tuple[str, MatchFn]
# A candidate with a resource guard: (id, match when the guard passed, match when unknown, guard index).
Guarded = tuple[str, MatchFn, MatchFn, int]
# (forbids, guarded forbids, permits, guarded permits, guard-set key): the key names the set of
# resource guards of the guarded entries (-1: none), under which a resource keeps their results.
Candidates = tuple[
    tuple[Candidate, ...], tuple[Guarded, ...], tuple[Candidate, ...], tuple[Guarded, ...], int
]
# (the resource guards an entity fails, those it passes)
Status = tuple[frozenset[int], frozenset[int]]
_NOTHING: Final[frozenset[int]] = frozenset()
# Guard-set keys are unique across authorizers: a stale key on an entity never means another set.
_GUARD_SET_KEYS: Final = itertools.count()
_ANY: Final = "*"
# A policy evaluated through cedarpy: (policy, principal, action, resource, context) -> bool.
FallbackFn = Callable[..., bool]


class OverlayEnv:
    """Entity environment with per-call attribute overlays (AuthZEN ``properties``)."""

    __slots__ = ("overlay", "store")

    def __init__(self, store: EntityStore, overlay: dict[EntityUid, Record]) -> None:
        self.store = store
        self.overlay = overlay

    def attrs(self, uid: Any) -> Record:
        got = self.overlay.get(uid)
        return got if got is not None else self.store.attrs(uid)

    def ancestors(self, uid: Any) -> frozenset[EntityUid]:
        return self.store.ancestors(uid)

    def tags(self, uid: Any) -> Record | None:
        return self.store.tags(uid)

    def exists(self, uid: Any) -> bool:
        return uid in self.overlay or self.store.exists(uid)


class Authorizer:
    """Decides Cedar requests with compiled policies over one entity store (immutable)."""

    def __init__(
        self,
        policies: Sequence[CompiledPolicy],
        store: EntityStore,
        eager_guard_limit: int = EAGER_GUARD_LIMIT,
    ) -> None:
        """``eager_guard_limit``: decide every resource guard for every entity now when entities x
        distinct guards is at most this, else each on first use (the decisions are the same)."""
        self.policies = tuple(policies)
        self.store = store
        self._by_uid = store.by_uid
        self._cache: dict[tuple[EntityUid, EntityUid], Candidates] = {}
        self._scope_cache: dict[tuple[EntityUid, EntityUid], Candidates] = {}
        # Equal candidate lists, one object: principals alike (same team, role, ...) share them,
        # so the decisions of many identities read the same few structures (cache-friendly).
        self._shared: dict[Candidates, Candidates] = {}
        self._rguard_index, self._rguards = _distinct_guards(self.policies)
        self._guard_sets: dict[tuple[int, ...], int] = {}
        self._guards_read_entities = any(q.guards_read_entities for q in self.policies)
        self._statuses: dict[Status, Status] = {}
        self._epoch = 0  # moves at every forget()
        _clear_caches(store.by_uid.values())
        if self._rguards and len(self._rguards) * len(store.by_uid) <= eager_guard_limit:
            self._decide_guards_now()
        self._order = {id(p): i for i, p in enumerate(self.policies)}
        # Index by (action key, principal key); a key is ("eq", uid), ("in", uid) or ANY.
        self._index: dict[tuple[Any, Any], list[CompiledPolicy]] = {}
        for p in self.policies:
            pkey: Any = _ANY
            if p.principal.entity is not None:
                pkey = ("eq" if p.principal.kind == "eq" else "in", p.principal.entity)
            akeys: list[Any] = (
                [_ANY] if p.actions is None else [("in" if p.action_in else "eq", a) for a in p.actions]
            )
            for akey in akeys:
                self._index.setdefault((akey, pkey), []).append(p)

    # -- index ------------------------------------------------------------------------------
    def _scope_matches(self, principal: EntityUid, action: EntityUid) -> list[CompiledPolicy]:
        """Policies whose principal and action scopes match, in policy-set order."""
        index = self._index
        p_keys = [_ANY, ("eq", principal), ("in", principal)]
        p_keys.extend(("in", a) for a in self.store.ancestors(principal))
        a_keys = [_ANY, ("eq", action), ("in", action)]
        a_keys.extend(("in", a) for a in self.store.ancestors(action))
        seen: set[int] = set()
        found: list[CompiledPolicy] = []
        for ak in a_keys:
            for pk in p_keys:
                for pol in index.get((ak, pk), ()):
                    if id(pol) in seen:
                        continue
                    s = pol.principal
                    if s.entity_type is not None and principal[0] != s.entity_type:
                        continue
                    seen.add(id(pol))
                    found.append(pol)
        order = self._order
        found.sort(key=lambda p: order[id(p)])
        return found

    def candidates(self, principal: EntityUid, action: EntityUid) -> Candidates:
        """Forbids and permits that may apply to this pair, after their guards (cached: on the
        principal's entity when it exists, else in a bounded table)."""
        pe = self._by_uid.get(principal)
        if pe is not None and pe.candidates is not None:
            cached: Candidates | None = pe.candidates.get(action)
            if cached is not None:
                return cached
        elif pe is None:
            got = self._cache.get((principal, action))
            if got is not None:
                return got
        pa = pe.attrs if pe is not None else MISSING_ATTRS
        panc = pe.ancestors if pe is not None else EMPTY_ANCESTORS
        forbids: list[Candidate] = []
        permits: list[Candidate] = []
        g_forbids: list[Guarded] = []
        g_permits: list[Guarded] = []
        for pol in self._scope_matches(principal, action):
            passed_p = False
            if pol.guard is not None:
                try:
                    passed = pol.guard(principal, action, pa, panc, self.store)
                except (EvalError, KeyError, TypeError):
                    passed = False  # keep the policy whole: its evaluation reports the error
                else:
                    if not passed:
                        continue
                    passed_p = True
            if pol.resource_guard is not None:
                if passed_p:
                    when_true, when_unknown = pol.residual_r, pol.residual
                else:
                    when_true, when_unknown = pol.match_r, pol.match
                assert when_true is not None and when_unknown is not None
                entry = (pol.id, when_true, when_unknown, self._rguard_index[id(pol)])
                (g_forbids if pol.forbid else g_permits).append(entry)
            else:
                fn = pol.residual if passed_p and pol.residual is not None else pol.match
                (forbids if pol.forbid else permits).append((pol.id, fn))
        result = (
            tuple(forbids),
            tuple(g_forbids),
            tuple(permits),
            tuple(g_permits),
            self._guard_set(g_forbids, g_permits),
        )
        shared = self._shared.get(result)
        if shared is not None:
            result = shared
        elif len(self._shared) < CACHE_LIMIT:
            self._shared[result] = result
        if pe is not None:
            if pe.candidates is None:
                pe.candidates = {}
            if len(pe.candidates) < PER_ENTITY_LIMIT:
                pe.candidates[action] = result
        else:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[(principal, action)] = result
        return result

    def scope_candidates(self, principal: EntityUid, action: EntityUid) -> Candidates:
        """Forbids and permits by scope alone, with full conditions (for calls with overlays)."""
        key = (principal, action)
        got = self._scope_cache.get(key)
        if got is not None:
            return got
        forbids: list[Candidate] = []
        permits: list[Candidate] = []
        for pol in self._scope_matches(principal, action):
            (forbids if pol.forbid else permits).append((pol.id, pol.match))
        result: Candidates = (tuple(forbids), (), tuple(permits), (), -1)
        if len(self._scope_cache) >= CACHE_LIMIT:
            self._scope_cache.clear()
        self._scope_cache[key] = result
        return result

    def forget(self, entities: Sequence[Entity]) -> None:
        """After an entity change: forget what was kept about ``entities`` (the stored ones whose
        ancestors changed), and about every entity when a guard reads other entities than the
        request's own. New entities arrive with nothing kept."""
        self._epoch += 1  # a guard status being computed now is not kept (resource_status)
        self._cache.clear()
        self._scope_cache.clear()
        _clear_caches(list(self.store.by_uid.values()) if self._guards_read_entities else entities)

    def _guard_set(self, g_forbids: list[Guarded], g_permits: list[Guarded]) -> int:
        """The key of the set of resource guards in these guarded entries (-1 when none)."""
        if not g_forbids and not g_permits:
            return -1
        gset = tuple(sorted({g[3] for g in g_forbids} | {g[3] for g in g_permits}))
        key = self._guard_sets.get(gset)
        if key is None:
            key = next(_GUARD_SET_KEYS)
            if len(self._guard_sets) < CACHE_LIMIT:
                self._guard_sets[gset] = key
        return key

    def resource_status(
        self, entity: Entity, gkey: int, g_forbids: Sequence[Guarded], g_permits: Sequence[Guarded]
    ) -> Status:
        """The resource guards ``entity`` fails (a policy cannot apply to it as the resource) and
        those it passes, now covering every guard of these guarded entries (set ``gkey``).

        Each guard is evaluated at most once per entity: the status kept on the entity grows by
        the guards of each new guard set it is decided under, and remembers which sets it covers
        (bounded). A guard that raises is in neither set: the policy is then evaluated whole and
        reports the error.
        """
        epoch = self._epoch
        kept = entity.resource_status
        failed: set[int] = set()
        ok: set[int] = set()
        if kept is not None:
            failed.update(kept[0])
            ok.update(kept[1])
        self._judge(entity, [e[3] for e in g_forbids], failed, ok)
        self._judge(entity, [e[3] for e in g_permits], failed, ok)
        guards = self._rguards
        status = self._intern((frozenset(failed), frozenset(ok)))
        if epoch != self._epoch:
            return status  # entities changed meanwhile (forget): this answer only, nothing kept
        entity.resource_status = status
        if len(failed) + len(ok) == len(guards):
            entity.status_sets = None  # every guard decided: covers every set
            return status
        sets = entity.status_sets
        if sets is None:
            sets = entity.status_sets = set()
        if len(sets) < STATUS_LIMIT:
            sets.add(gkey)
        return status

    def _intern(self, status: Status) -> Status:
        """One object for equal statuses (the many resources alike share it; bounded)."""
        shared = self._statuses.get(status)
        if shared is not None:
            return shared
        if len(self._statuses) < CACHE_LIMIT:
            self._statuses[status] = status
        return status

    def _judge(self, entity: Entity, indices: Iterable[int], failed: set[int], ok: set[int]) -> None:
        """Evaluate on ``entity`` the guards of ``indices`` not in ``failed`` or ``ok`` yet, adding
        each to the set it belongs in; a guard that raises goes in neither."""
        uid = entity.uid
        attrs = entity.attrs
        anc = entity.ancestors
        store = self.store
        guards = self._rguards
        for ri in indices:
            if ri in failed or ri in ok:
                continue
            with contextlib.suppress(EvalError, KeyError, TypeError):
                (ok if guards[ri](uid, attrs, anc, store) else failed).add(ri)

    def _decide_guards_now(self) -> None:
        """Every resource guard on every entity, at load, when that is cheap (entities x distinct
        guards <= the authorizer's eager_guard_limit): a first decision on a resource then
        evaluates none."""
        everything = range(len(self._rguards))
        for ent in self.store.by_uid.values():
            failed: set[int] = set()
            ok: set[int] = set()
            self._judge(ent, everything, failed, ok)
            ent.resource_status = self._intern((frozenset(failed), frozenset(ok)))
            ent.status_sets = None

    # -- evaluation -------------------------------------------------------------------------
    def is_authorized(
        self,
        principal: EntityUid,
        action: EntityUid,
        resource: EntityUid,
        context: Record,
        overlay: dict[EntityUid, Record] | None = None,
        principal_entity: Entity | None = None,
        resource_entity: Entity | None = None,
    ) -> Answer:
        """Cedar's answer for one request. ``overlay`` replaces attributes of entities for this call;
        ``principal_entity`` and ``resource_entity`` save a lookup when the caller already has them
        (None: looked up here)."""
        by_uid = self._by_uid
        pe: Entity | None = principal_entity if principal_entity is not None else by_uid.get(principal)
        re_: Entity | None = resource_entity if resource_entity is not None else by_uid.get(resource)
        env: Any
        if overlay:
            env = OverlayEnv(self.store, overlay)
            forbids, g_forbids, permits, g_permits, _ = self.scope_candidates(principal, action)
            pa = overlay.get(principal)
            if pa is None:
                pa = pe.attrs if pe is not None else MISSING_ATTRS
            ra = overlay.get(resource)
            if ra is None:
                ra = re_.attrs if re_ is not None else MISSING_ATTRS
            excluded = passed = _NOTHING
        else:
            env = self.store
            cached = pe.candidates if pe is not None else None
            got = cached.get(action) if cached is not None else None
            forbids, g_forbids, permits, g_permits, gkey = got or self.candidates(principal, action)
            pa = pe.attrs if pe is not None else MISSING_ATTRS
            if re_ is not None:
                ra = re_.attrs
                if gkey < 0:
                    excluded = passed = _NOTHING
                else:
                    status = re_.resource_status
                    covered = re_.status_sets
                    if status is None or (covered is not None and gkey not in covered):
                        status = self.resource_status(re_, gkey, g_forbids, g_permits)
                    excluded, passed = status
            else:
                ra = MISSING_ATTRS
                excluded = passed = _NOTHING
        panc = pe.ancestors if pe is not None else EMPTY_ANCESTORS
        ranc = re_.ancestors if re_ is not None else EMPTY_ANCESTORS
        errors: list[PolicyError] | None = None
        # The four loops below are one loop written out: this is the hottest code in vigil.
        hit: list[str] | None = None
        for pid, fn in forbids:
            try:
                if fn(principal, action, resource, context, pa, ra, panc, ranc, env):
                    if hit is None:
                        hit = [pid]
                    else:
                        hit.append(pid)
            except (EvalError, KeyError, TypeError) as e:
                if errors is None:
                    errors = []
                errors.append(_error(pid, True, e))
        for pid, when_true, when_unknown, ri in g_forbids:
            if ri in excluded:
                continue
            fn = when_true if ri in passed else when_unknown
            try:
                if fn(principal, action, resource, context, pa, ra, panc, ranc, env):
                    if hit is None:
                        hit = [pid]
                    else:
                        hit.append(pid)
            except (EvalError, KeyError, TypeError) as e:
                if errors is None:
                    errors = []
                errors.append(_error(pid, True, e))
        permitted: list[str] | None = None
        for pid, fn in permits:
            try:
                if fn(principal, action, resource, context, pa, ra, panc, ranc, env):
                    if permitted is None:
                        permitted = [pid]
                    else:
                        permitted.append(pid)
            except (EvalError, KeyError, TypeError) as e:
                if errors is None:
                    errors = []
                errors.append(_error(pid, False, e))
        for pid, when_true, when_unknown, ri in g_permits:
            if ri in excluded:
                continue
            fn = when_true if ri in passed else when_unknown
            try:
                if fn(principal, action, resource, context, pa, ra, panc, ranc, env):
                    if permitted is None:
                        permitted = [pid]
                    else:
                        permitted.append(pid)
            except (EvalError, KeyError, TypeError) as e:
                if errors is None:
                    errors = []
                errors.append(_error(pid, False, e))
        errs = _NO_ERRORS if errors is None else tuple(errors)
        if hit is not None:
            return Answer(False, tuple(hit), errs)
        if permitted is not None:
            return Answer(True, tuple(permitted), errs)
        return Answer(False, (), errs)


def _distinct_guards(
    policies: Sequence[CompiledPolicy],
) -> tuple[dict[int, int], tuple[Callable[..., bool], ...]]:
    """Each guarded policy's guard index (by ``id`` of the policy) and the distinct resource
    guards: policies with equal guards (``resource_guard_key``) share one index, so an entity
    evaluates it once for all of them."""
    index: dict[int, int] = {}
    guards: list[Callable[..., bool]] = []
    by_key: dict[Any, int] = {}
    for pol in policies:
        guard = pol.resource_guard
        if guard is None:
            continue
        key = pol.resource_guard_key
        ri = by_key.get(key) if key is not None else None
        if ri is None:
            ri = len(guards)
            guards.append(guard)
            if key is not None:
                by_key[key] = ri
        index[id(pol)] = ri
    return index, tuple(guards)


def _clear_caches(entities: Any) -> None:
    """Forget what an earlier authorizer kept on these entities (candidates, guard results)."""
    for ent in entities:
        ent.candidates = None
        ent.resource_status = None
        ent.status_sets = None


def _error(policy_id: str, forbid: bool, e: Exception) -> PolicyError:
    if isinstance(e, EvalError):
        return PolicyError(policy_id, forbid, e.kind, str(e))
    if isinstance(e, KeyError):
        attr = e.args[0] if e.args else "?"
        return PolicyError(policy_id, forbid, "attribute", f"attribute `{attr}` does not exist")
    return PolicyError(policy_id, forbid, "type", f"type error: {e}")
