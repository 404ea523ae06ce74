"""vigil's own grants as escalation steps: what the compiled Cedar policies of a workspace let an
identity do to other identities and to privilege itself (docs/escalation.md, "Cedar workspaces").

:class:`GrantEvaluator` decides one (principal, action, resource) for *every* request context at
once. It runs each policy's compiled ``match`` (the functions the authorizer runs) with a context
that raises :class:`ReadsContext` on any read. A policy that finishes without touching the context
has the same result under every context (evaluation is deterministic): it is decided. A policy
that touches it *depends on the context* for this request. So:

* ``always``: a permit is satisfied without reading the context and no forbid can fire (a
  satisfied forbid, or an erroring one, which vigil reads as a deny, means ``never``);
* ``depends``: only permits that read the context could allow it, or a forbid that reads the
  context could deny it (unless it is one of ``[escalation] context_guards``); ``requires`` names
  them and the first context attribute each read;
* ``never``: otherwise.

Policies evaluated by cedarpy (fallbacks) and policies that use ``context`` as a whole value are
taken to depend on the context (conservative: a step is conditional, never missed).

:func:`workspace_graph` builds the :class:`~vigil.escalation.edges.Graph` of a workspace from it,
so :func:`~vigil.escalation.query.analyse` and :func:`~vigil.escalation.report.report` answer for
Cedar identities exactly as for IAM principals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.errors import EscalationLimitError, VigilError
from vigil.escalation.edges import ADMIN, Edge, Graph
from vigil.escalation.iam_export import Principal
from vigil.escalation.settings import BECOME_METHODS, JOIN_METHODS, EscalationSettings
from vigil.model.uid import EntityUid
from vigil.policy.compiler import CompiledPolicy
from vigil.policy.entities import EMPTY_ANCESTORS, MISSING_ATTRS, EntityStore
from vigil.policy.values import EvalError

ALWAYS, DEPENDS, NEVER = "always", "depends", "never"


class ReadsContext(Exception):
    """Raised by the tripwire context when a policy reads ``context.<attr>``."""

    def __init__(self, attr: Any) -> None:
        super().__init__(attr)
        self.attr = attr


class _Tripwire(dict):  # type: ignore[type-arg]
    """A context record every read of which raises :class:`ReadsContext`."""

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        raise ReadsContext(key)

    def __contains__(self, key: object) -> bool:
        raise ReadsContext(key)

    def get(self, key: Any, default: Any = None) -> Any:
        raise ReadsContext(key)


_TRIPWIRE = _Tripwire()
# `C` used other than as C[...] or `... in C`: the context as a whole value (compared, passed on)
_BARE_CONTEXT = re.compile(r"\bC\b(?!\[)")


def uid_text(uid: EntityUid) -> str:
    """``Type::"id"`` as Cedar writes it."""
    return uid[0] + '::"' + uid[1].replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a request fares under every context: ``verdict`` ``always``, ``depends`` or ``never``;
    ``via`` the permits that allow it (``always``: decided ones; ``depends``: those that might);
    ``requires`` what the context must do (empty for ``always``)."""

    verdict: str
    via: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()


_NEVER = Outcome(NEVER)


def _reads_whole_context(pol: CompiledPolicy) -> bool:
    if pol.fallback_reason is not None:
        return True
    for line in pol.source.splitlines():
        if line.startswith("def "):
            continue
        text = re.sub(r"\bin C\b", "", line)
        if _BARE_CONTEXT.search(text):
            return True
    return False


class GrantEvaluator:
    """Decides requests for every context at once with a policy set's compiled policies (see
    the module docstring). ``context_guards``: forbid ids assumed not to fire where they read the
    context. Stateless apart from caches; never raises for a built policy set."""

    def __init__(
        self, policies: Sequence[CompiledPolicy], store: EntityStore, context_guards: Iterable[str] = ()
    ) -> None:
        self.policies = tuple(policies)
        self.store = store
        self.context_guards = frozenset(context_guards)
        self._whole = {id(p) for p in self.policies if _reads_whole_context(p)}
        self._by_action: dict[EntityUid, tuple[CompiledPolicy, ...]] = {}
        self._cands: dict[tuple[EntityUid, frozenset[EntityUid], EntityUid], tuple[CompiledPolicy, ...]] = {}
        self._order: dict[tuple[int, ...], tuple[CompiledPolicy, ...]] = {}

    def for_action(self, action: EntityUid) -> tuple[CompiledPolicy, ...]:
        """The policies whose action scope matches ``action``."""
        hit = self._by_action.get(action)
        if hit is None:
            anc = self.store.ancestors(action)
            hit = tuple(
                p
                for p in self.policies
                if p.actions is None
                or action in p.actions
                or (p.action_in and any(a in anc for a in p.actions))
            )
            self._by_action[action] = hit
        return hit

    def candidates(
        self, principal: EntityUid, ancestors: frozenset[EntityUid], action: EntityUid
    ) -> tuple[CompiledPolicy, ...]:
        """The policies whose principal and action scopes match (the principal with these
        ancestors, which may differ from the stored ones: a membership it could gain)."""
        key = (principal, ancestors, action)
        hit = self._cands.get(key)
        if hit is None:
            out = []
            for p in self.for_action(action):
                s = p.principal
                if s.entity_type is not None and principal[0] != s.entity_type:
                    continue
                if s.entity is not None:
                    if s.kind == "eq":
                        if principal != s.entity:
                            continue
                    elif principal != s.entity and s.entity not in ancestors:
                        continue
                if p.guard is not None and p.fallback_reason is None:
                    # the leading conditions on the principal and action alone (never the context)
                    pe = self.store.get(principal)
                    attrs = pe.attrs if pe is not None else MISSING_ATTRS
                    try:
                        if not p.guard(principal, action, attrs, ancestors, self.store):
                            continue
                    except (EvalError, KeyError, TypeError):
                        pass  # evaluated whole: its error is reported as the policy's
                out.append(p)
            hit = tuple(out)
            if len(self._cands) < 200_000:
                self._cands[key] = hit
        return hit

    def may_permit(self, principal: EntityUid, ancestors: frozenset[EntityUid], action: EntityUid) -> bool:
        """False when no permit can apply to this principal and action (on any resource)."""
        return any(not p.forbid for p in self.candidates(principal, ancestors, action))

    def resource_types(
        self, principal: EntityUid, ancestors: frozenset[EntityUid], action: EntityUid
    ) -> frozenset[str] | None:
        """The entity types a resource must have for some permit to apply to this principal and
        action (the permits' resource scopes: ``is T``, ``== T::"x"``); None when a permit admits
        any type. A resource of another type is ``never`` allowed, so it need not be decided."""
        types: set[str] = set()
        for p in self.candidates(principal, ancestors, action):
            if p.forbid:
                continue
            s = p.resource
            t = s.entity_type
            if t is None and s.kind == "eq" and s.entity is not None:
                t = s.entity[0]
            if t is None or p.fallback_reason is not None:
                return None
            types.add(t)
        return frozenset(types)

    def never_satisfied(
        self, pol: CompiledPolicy, principal: EntityUid, action: EntityUid, resource: EntityUid
    ) -> bool:
        """True when ``pol`` is false, or errs, for this request under every context (decided
        without reading it); False when it holds or reads the context."""
        if id(pol) in self._whole:
            return False
        store = self.store
        pe, re_ = store.get(principal), store.get(resource)
        try:
            return not pol.match(
                principal,
                action,
                resource,
                _TRIPWIRE,
                pe.attrs if pe is not None else MISSING_ATTRS,
                re_.attrs if re_ is not None else MISSING_ATTRS,
                pe.ancestors if pe is not None else EMPTY_ANCESTORS,
                re_.ancestors if re_ is not None else EMPTY_ANCESTORS,
                store,
            )
        except ReadsContext:
            return False
        except (EvalError, KeyError, TypeError):
            return True

    def decide(
        self,
        principal: EntityUid,
        action: EntityUid,
        resource: EntityUid,
        *,
        ancestors: frozenset[EntityUid] | None = None,
    ) -> Outcome:
        """How (principal, action, resource) fares under every context. ``ancestors`` stand in for
        the principal's stored ones (a membership it could gain)."""
        store = self.store
        pe = store.get(principal)
        panc = ancestors if ancestors is not None else (pe.ancestors if pe is not None else EMPTY_ANCESTORS)
        pa = pe.attrs if pe is not None else MISSING_ATTRS
        re_ = store.get(resource)
        ra = re_.attrs if re_ is not None else MISSING_ATTRS
        ranc = re_.ancestors if re_ is not None else EMPTY_ANCESTORS
        cands = self.candidates(principal, panc, action)
        # permits first: when none can hold, the forbids need not run (nothing allows it)
        key = tuple(id(p) for p in cands)  # the policies live as long as the evaluator
        order = self._order.get(key)
        if order is None:
            order = tuple(p for p in cands if not p.forbid) + tuple(p for p in cands if p.forbid)
            self._order[key] = order
        if not order or order[0].forbid:
            return _NEVER  # nothing can permit it
        permits: list[str] = []
        maybe: list[str] = []
        need: list[str] = []  # what a context must satisfy (permits that read it)
        avoid: list[str] = []  # what it must not trip (forbids that read it)
        for pol in order:
            if pol.forbid and not permits and not maybe:
                return _NEVER
            read: Any = None
            if id(pol) in self._whole:
                read = "" if pol.fallback_reason is None else None
                state: bool | None = None
            else:
                try:
                    state = bool(pol.match(principal, action, resource, _TRIPWIRE, pa, ra, panc, ranc, store))
                except ReadsContext as e:
                    state, read = None, e.attr
                except (EvalError, KeyError, TypeError):
                    if pol.forbid:
                        return _NEVER  # an erroring forbid denies (vigil's stricter rule)
                    continue  # an erroring permit is skipped
            what = "the context" if not read else f"context.{read}"
            if pol.fallback_reason is not None:
                what = "the context (evaluated by cedarpy: not inspected)"
            if pol.forbid:
                if state:
                    return _NEVER
                if state is None and pol.id not in self.context_guards:
                    avoid.append(f"not denied by {pol.id} (reads {what})")
            elif state:
                permits.append(pol.id)
            elif state is None:
                maybe.append(pol.id)
                need.append(f"a request context satisfying {pol.id} (reads {what})")
        if permits:
            return Outcome(DEPENDS if avoid else ALWAYS, tuple(permits), tuple(avoid))
        if maybe:
            return Outcome(DEPENDS, tuple(maybe), (" or ".join(need), *avoid))
        return _NEVER


def check_settings(settings: EscalationSettings, policies: Sequence[CompiledPolicy]) -> None:
    """Raises :class:`VigilError` (``invalid_workspace``) when ``context_guards`` names a policy
    that is not a forbid of the workspace."""
    forbids = {p.id for p in policies if p.forbid}
    bad = [g for g in settings.context_guards if g not in forbids]
    if bad:
        problems = [
            f"vigil.toml: [escalation] context_guards: {g!r} is not the id of a forbid policy" for g in bad
        ]
        raise VigilError(problems[0], code="invalid_workspace", problems=problems)


def _principal(uid: EntityUid, kind: str | None = None, name: str | None = None) -> Principal:
    return Principal(arn=uid_text(uid), name=name or uid[1], kind=kind or uid[0], account="")


class _Builder:
    def __init__(
        self,
        policies: Sequence[CompiledPolicy],
        store: EntityStore,
        settings: EscalationSettings,
        identity_types: Sequence[str],
        max_checks: int | None = None,
    ) -> None:
        check_settings(settings, policies)
        self.max_checks = max_checks
        self.checks = 0
        self.store = store
        self.settings = settings
        self.ev = GrantEvaluator(policies, store, settings.context_guards)
        types = set(settings.principals or identity_types)
        self.identities = sorted(u for u in store.by_uid if u[0] in types)
        groups: set[EntityUid] = set()
        for u in self.identities:
            groups.update(store.ancestors(u))
        groups.update(settings.admin_entities)
        self.groups = sorted(g for g in groups if g not in set(self.identities))
        # admin actions are probed on resources before identities (named in the explanation)
        known = set(self.identities)
        self.resources = sorted(
            (u for u in store.by_uid if not (u[0] == "Action" or u[0].endswith("::Action"))),
            key=lambda u: (u in known, u),
        )
        self.become = [(a, m) for a, m in settings.privilege_actions.items() if m in BECOME_METHODS]
        self.join = [(a, m) for a, m in settings.privilege_actions.items() if m in JOIN_METHODS]
        self.graph = Graph({uid_text(u): _principal(u) for u in self.identities})
        # node id -> (the identity, the group it joined or None)
        self.nodes: dict[str, tuple[EntityUid, EntityUid | None]] = {
            uid_text(u): (u, None) for u in self.identities
        }

    def _decide(self, x: EntityUid, action: EntityUid, r: EntityUid, anc: frozenset[EntityUid]) -> Outcome:
        """``GrantEvaluator.decide``, counted; raises EscalationLimitError past ``max_checks``."""
        self.checks += 1
        if self.max_checks is not None and self.checks > self.max_checks:
            raise EscalationLimitError(
                f"the escalation graph needs more than {self.max_checks} checks "
                "([escalation] reach_max_checks)",
                max_checks=self.max_checks,
            )
        return self.ev.decide(x, action, r, ancestors=anc)

    def build(self) -> Graph:
        for x in self.identities:
            self._edges_from(x, self.store.ancestors(x), uid_text(x), joins=True)
        return self.graph

    def _edges_from(self, x: EntityUid, anc: frozenset[EntityUid], node: str, *, joins: bool) -> None:
        g = self.graph
        if self._holds_admin(x, anc, node):
            return
        for action, method in self.become:
            if not self.ev.may_permit(x, anc, action):
                continue
            types = self.ev.resource_types(x, anc, action)
            for t in self.identities:
                if t == x or (types is not None and t[0] not in types):
                    continue
                o = self._decide(x, action, t, anc)
                if o.verdict != NEVER:
                    g.add(Edge(node, uid_text(t), "become", method, _via(o, action), o.requires))
        if not joins:
            return
        for action, method in self.join:
            if not self.ev.may_permit(x, anc, action):
                continue
            types = self.ev.resource_types(x, anc, action)
            for grp in self.groups:
                if grp in anc or grp == x or (types is not None and grp[0] not in types):
                    continue
                o = self._decide(x, action, grp, anc)
                if o.verdict == NEVER:
                    continue
                member = f"{uid_text(x)} in {uid_text(grp)}"
                if member not in g.principals:
                    g.principals[member] = Principal(
                        arn=member, name=f"{x[1]} (in {uid_text(grp)})", kind="membership", account=""
                    )
                    g.out.setdefault(member, [])
                    self.nodes[member] = (x, grp)
                    self._edges_from(x, anc | {grp} | self.store.ancestors(grp), member, joins=False)
                g.add(Edge(node, member, "become", method, _via(o, action), o.requires))

    def _holds_admin(self, x: EntityUid, anc: frozenset[EntityUid], node: str) -> bool:
        """Adds the edge to admin when ``x`` (with ancestors ``anc``) is admin; True when it is
        unconditionally (it then gets no other step)."""
        hit = next((e for e in sorted(self.settings.admin_entities) if e == x or e in anc), None)
        if hit is not None:
            how = "is" if hit == x else "member of"
            self.graph.add(Edge(node, ADMIN, "holds", "admin", (f"{how} {uid_text(hit)}",)))
            return True
        best: Edge | None = None
        for action in sorted(self.settings.admin_actions):
            if not self.ev.may_permit(x, anc, action):
                continue
            types = self.ev.resource_types(x, anc, action)
            for r in self.resources:
                if types is not None and r[0] not in types:
                    continue
                o = self._decide(x, action, r, anc)
                if o.verdict == NEVER:
                    continue
                held = tuple(f"{p} allows {uid_text(action)} on {uid_text(r)}" for p in o.via)
                e = Edge(node, ADMIN, "holds", "admin", held, o.requires)
                if best is None or (best.requires and not e.requires):
                    best = e
                if not e.requires:
                    break
            if best is not None and not best.requires:
                break
        if best is not None:
            self.graph.add(best)
            return not best.requires
        return False


def _via(o: Outcome, action: EntityUid) -> tuple[str, ...]:
    return tuple(f"{p} allows {uid_text(action)}" for p in o.via)


def workspace_graph(
    policies: Sequence[CompiledPolicy],
    store: EntityStore,
    settings: EscalationSettings,
    identity_types: Sequence[str] = ("Agent", "ServiceAccount", "Workload"),
    max_checks: int | None = None,
) -> Graph:
    """The escalation graph of a workspace's policies over its entities.

    Nodes: every entity whose type is in ``settings.principals`` (else ``identity_types``), keyed by
    uid text; ``X in G`` nodes for a membership ``X`` can give itself (kind ``membership``); and
    :data:`ADMIN`. Raises VigilError (``invalid_workspace``) for ``context_guards`` that name no
    forbid policy; EscalationLimitError (``escalation_too_large``) when building it would decide
    more than ``max_checks`` requests (None: no limit).
    """
    return _Builder(policies, store, settings, identity_types, max_checks).build()


def build_workspace_graph(
    policies: Sequence[CompiledPolicy],
    store: EntityStore,
    settings: EscalationSettings,
    identity_types: Sequence[str],
    max_checks: int | None = None,
) -> tuple[Graph, dict[str, tuple[EntityUid, EntityUid | None]], int]:
    """:func:`workspace_graph`, with each node's identity (and, for a membership node, the group
    it joins) and the number of requests decided. Raises as :func:`workspace_graph`."""
    b = _Builder(policies, store, settings, identity_types, max_checks)
    graph = b.build()
    return graph, b.nodes, b.checks


def identities(graph: Graph) -> list[str]:
    """The node ids of the graph that are identities (not memberships)."""
    return [k for k, p in graph.principals.items() if p.kind != "membership"]


def names(graph: Graph) -> Mapping[str, str]:
    """Node id -> display name."""
    return {k: p.name for k, p in graph.principals.items()}
