"""Effective IAM permissions of one principal, as AWS evaluates them where reachability depends on it.

For a request (action, resource) the answer is a :class:`Grant`: allowed (``ALWAYS``), allowed only
under request conditions (``DEPENDS``, naming them), or not allowed (``NEVER``). Rules (IAM policy
evaluation logic): an explicit deny in any identity policy wins; otherwise some allow must match;
a permission boundary, when set, must allow too. A deny whose condition depends on the request makes
the grant conditional; statements whose condition can never hold are ignored.

Speed: a :class:`PermissionSet` is shared by every principal with the same statements (interned
by statement identity), the statements that cover an action are found once per (set, action), and
:meth:`PermissionSet.targets` answers "on which of these N resources" through a
:class:`ResourceIndex` (exact ARNs by dict, each distinct wildcard pattern matched once over the
index and cached) instead of testing every resource against every statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vigil.escalation.conditions import Truth
from vigil.escalation.patterns import has_variable, has_wildcard, matches, substitute
from vigil.escalation.policy import Statement


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer for one action on one resource: ``truth``, the allowing statements ``via`` and the
    request conditions the answer ``depends_on`` (empty unless ``truth`` is DEPENDS)."""

    truth: Truth
    via: tuple[Statement, ...] = ()
    depends_on: tuple[str, ...] = ()

    @property
    def possible(self) -> bool:
        """True when the request is allowed, at least under some request conditions."""
        return self.truth is not Truth.NEVER


NO = Grant(Truth.NEVER)


def combine(grants: Iterable[Grant]) -> Grant:
    """All of ``grants`` at once: NEVER if any is, DEPENDS if any is, else ALWAYS (the union of
    their statements and conditions)."""
    via: list[Statement] = []
    depends: list[str] = []
    truth = Truth.ALWAYS
    for g in grants:
        if g.truth is Truth.NEVER:
            return NO
        if g.truth is Truth.DEPENDS:
            truth = Truth.DEPENDS
        via.extend(g.via)
        depends.extend(g.depends_on)
    return Grant(truth, tuple(dict.fromkeys(via)), tuple(dict.fromkeys(depends)))


class ResourceIndex:
    """A fixed list of resource ARNs, for answering "which of them does this pattern match" once per
    distinct pattern."""

    def __init__(self, arns: Sequence[str]) -> None:
        self.arns: tuple[str, ...] = tuple(dict.fromkeys(arns))
        self._exact = frozenset(self.arns)
        self._cache: dict[str, frozenset[str]] = {}

    def matching(self, pattern: str) -> frozenset[str]:
        """The indexed ARNs matched by the IAM wildcard ``pattern`` (cached)."""
        if not has_wildcard(pattern):
            return frozenset((pattern,)) if pattern in self._exact else frozenset()
        hit = self._cache.get(pattern)
        if hit is None:
            if pattern == "*":
                hit = self._exact
            else:
                hit = frozenset(a for a in self.arns if matches(pattern, a))
            self._cache[pattern] = hit
        return hit


def _resource_match(stmt: Statement, resource: str, variables: dict[str, str | None]) -> tuple[bool, bool]:
    """(matches, exact): whether ``stmt`` applies to ``resource``, and False when a policy variable
    could not be resolved (the match then depends on the request)."""
    exact = True
    patterns = stmt.resources if stmt.resources is not None else stmt.not_resources
    if patterns is None:  # identity statement without Resource: AWS refuses it; it grants nothing
        return False, True
    hit = False
    for p in patterns:
        if has_variable(p):
            p, known = substitute(p, variables)
            exact = exact and known
        if matches(p, resource):
            hit = True
            break
    return (hit if stmt.resources is not None else not hit), exact


def _grant_of(stmt: Statement, exact: bool) -> Grant:
    if stmt.condition.truth is Truth.DEPENDS or not exact:
        depends = stmt.condition.depends_on or ("a policy variable in " + stmt.describe(),)
        return Grant(Truth.DEPENDS, (stmt,), depends)
    return Grant(Truth.ALWAYS, (stmt,))


class PermissionSet:
    """The identity-policy statements of one principal (its own, its groups', its managed policies'
    default versions) and its permission boundary, if any."""

    __slots__ = ("_by_action", "boundary", "statements")

    def __init__(self, statements: Sequence[Statement], boundary: PermissionSet | None = None) -> None:
        self.statements: tuple[Statement, ...] = tuple(
            s for s in dict.fromkeys(statements) if s.condition.truth is not Truth.NEVER
        )
        self.boundary = boundary
        self._by_action: dict[str, tuple[tuple[Statement, ...], tuple[Statement, ...]]] = {}

    def for_action(self, action: str) -> tuple[tuple[Statement, ...], tuple[Statement, ...]]:
        """(allow statements, deny statements) whose Action/NotAction covers ``action`` (cached)."""
        key = action.lower()
        hit = self._by_action.get(key)
        if hit is None:
            covering = [s for s in self.statements if s.covers_action(action)]
            hit = (tuple(s for s in covering if s.allow), tuple(s for s in covering if not s.allow))
            self._by_action[key] = hit
        return hit

    def check(self, action: str, resource: str, variables: dict[str, str | None] | None = None) -> Grant:
        """Whether ``action`` on ``resource`` is allowed (explicit deny wins, boundary applies)."""
        variables = variables or {}
        allows, denies = self.for_action(action)
        best = NO
        for s in allows:
            hit, exact = _resource_match(s, resource, variables)
            if hit:
                g = _grant_of(s, exact)
                if g.truth is Truth.ALWAYS:
                    best = g
                    break
                if best.truth is Truth.NEVER:
                    best = g
        if best.truth is Truth.NEVER:
            return NO
        best = self._apply_denies(best, denies, resource, variables)
        if best.possible and self.boundary is not None:
            best = combine((best, _strip_via(self.boundary.check(action, resource, variables))))
        return best

    def _apply_denies(
        self, grant: Grant, denies: Sequence[Statement], resource: str, variables: dict[str, str | None]
    ) -> Grant:
        for d in denies:
            hit, exact = _resource_match(d, resource, variables)
            if not hit:
                continue
            if d.condition.truth is Truth.ALWAYS and exact:
                return NO
            reason = "not denied by " + d.describe()
            grant = Grant(Truth.DEPENDS, grant.via, (*grant.depends_on, reason))
        return grant

    def any_resource(self, action: str) -> Grant:
        """Whether ``action`` is allowed on at least some resource (for an action on a resource the
        caller creates or the export cannot show): an allow of any resource, unless a deny covers
        every resource."""
        allows, denies = self.for_action(action)
        best = NO
        for s in allows:
            if s.resources is None and s.not_resources is None:
                continue
            g = _grant_of(s, True)
            if g.truth is Truth.ALWAYS:
                best = g
                break
            if best.truth is Truth.NEVER:
                best = g
        if best.truth is Truth.NEVER:
            return NO
        for d in denies:
            if d.resources is not None and "*" in d.resources:
                if d.condition.truth is Truth.ALWAYS:
                    return NO
                best = Grant(Truth.DEPENDS, best.via, (*best.depends_on, "not denied by " + d.describe()))
        if self.boundary is not None:
            best = combine((best, _strip_via(self.boundary.any_resource(action))))
        return best

    def targets(
        self, action: str, index: ResourceIndex, variables: dict[str, str | None] | None = None
    ) -> dict[str, Grant]:
        """ARN -> grant for every resource of ``index`` on which ``action`` is allowed (at least
        conditionally). Wildcard patterns are matched through the index's cache."""
        variables = variables or {}
        allows, denies = self.for_action(action)
        if not allows:
            return {}
        found: dict[str, Grant] = {}
        for s in allows:
            if s.resources is None and s.not_resources is None:
                continue
            if any(has_variable(p) for p in (s.resources or s.not_resources or ())):
                hits = {a for a in index.arns if _resource_match(s, a, variables)[0]}
                g = _grant_of(s, all(_resource_match(s, a, variables)[1] for a in list(hits)[:1]))
            else:
                if s.resources is not None:
                    hits = set()
                    for p in s.resources:
                        hits |= index.matching(p)
                else:
                    excluded: set[str] = set()
                    for p in s.not_resources or ():
                        excluded |= index.matching(p)
                    hits = set(index.arns) - excluded
                g = _grant_of(s, True)
            for a in hits:
                prev = found.get(a)
                if prev is None or (prev.truth is Truth.DEPENDS and g.truth is Truth.ALWAYS):
                    found[a] = g
        if denies:
            self._remove_denied(found, denies, index, variables)
        if self.boundary is not None:
            bounded = self.boundary.targets(action, index, variables)
            for a in list(found):
                b = bounded.get(a)
                if b is None:
                    del found[a]
                else:
                    found[a] = combine((found[a], _strip_via(b)))
        return found

    def _remove_denied(
        self,
        found: dict[str, Grant],
        denies: Sequence[Statement],
        index: ResourceIndex,
        variables: dict[str, str | None],
    ) -> None:
        """Drop from ``found`` what an unconditional deny covers; mark conditional what a deny
        under request conditions covers. Patterns are matched through the index, like allows."""
        for d in denies:
            patterns = d.resources if d.resources is not None else d.not_resources
            if patterns is None:
                continue
            if any(has_variable(p) for p in patterns):
                for a in list(found):
                    g = self._apply_denies(found[a], (d,), a, variables)
                    if g.possible:
                        found[a] = g
                    else:
                        del found[a]
                continue
            hit: set[str] = set()
            for p in patterns:
                hit |= index.matching(p)
            covered = hit if d.resources is not None else set(found) - hit
            if d.condition.truth is Truth.ALWAYS:
                for a in covered:
                    found.pop(a, None)
            else:
                reason = "not denied by " + d.describe()
                for a in covered:
                    prev = found.get(a)
                    if prev is not None:
                        found[a] = Grant(Truth.DEPENDS, prev.via, (*prev.depends_on, reason))


def _strip_via(g: Grant) -> Grant:
    """A boundary's answer without its statements (a boundary limits; it never grants)."""
    return Grant(g.truth, (), g.depends_on)
