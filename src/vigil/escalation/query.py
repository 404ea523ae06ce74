"""Questions asked of an escalation graph: each principal's verdict, and its paths to admin or to
a named principal, as steps a person can read.

Distances come from two breadth-first searches backwards from :data:`ADMIN` (unconditional edges
only, then every edge), so answering for every principal is linear in the edges. Paths are
enumerated forwards from a source, pruned by that distance, shortest first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vigil.errors import PrincipalNotFoundError
from vigil.escalation.edges import ADMIN, Edge, Graph, fold

VERDICTS = ("admin", "reaches_admin", "conditional", "none")
# paths looked at per principal before giving up on finding `limit` distinct ones
_MAX_CANDIDATES = 2000


@dataclass(frozen=True, slots=True)
class Step:
    """One readable step: ``source`` does ``action`` (method ``method``) and so reaches ``target``;
    ``via`` the granting statements, ``requires`` what the step needs that the export cannot show."""

    source: str
    target: str
    method: str
    action: str
    via: tuple[str, ...]
    requires: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: ``{"from", "to", "method", "action", "via", "requires"}``."""
        return {
            "from": self.source,
            "to": self.target,
            "method": self.method,
            "action": self.action,
            "via": list(self.via),
            "requires": list(self.requires),
        }


@dataclass(frozen=True, slots=True)
class Path:
    """A path: its edges and their readable steps."""

    edges: tuple[Edge, ...]
    steps: tuple[Step, ...]

    @property
    def conditional(self) -> bool:
        """True when some step needs something the export does not show."""
        return any(s.requires for s in self.steps)

    @property
    def methods(self) -> tuple[str, ...]:
        """The method ids of the steps, in order."""
        return tuple(s.method for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """``{"conditional", "steps": [...]}``."""
        return {"conditional": self.conditional, "steps": [s.to_dict() for s in self.steps]}


_ACTION_TEXT = {
    "member": "is a member of",
    "runs-as": "runs as",
    "admin": "holds admin-equivalent permissions",
    "iam-002": "creates an access key for",
    "iam-004": "creates a console login profile for",
    "iam-006": "resets the console password of",
    "iam-012": "rewrites the trust policy of, then assumes,",
    "iam-013": "adds a user to",
    "sts-001": "assumes",
    "iam-001": "creates a new default version of a policy attached to",
    "rhino:2": "switches to an admin version of a policy attached to",
    "iam-005": "writes an inline admin policy onto",
    "iam-007": "writes an inline admin policy onto",
    "iam-011": "writes an inline admin policy onto",
    "iam-008": "attaches an admin managed policy to",
    "iam-009": "attaches an admin managed policy to",
    "iam-010": "attaches an admin managed policy to",
    "boundary-user": "removes the permission boundary of",
    "boundary-role": "removes the permission boundary of",
    # vigil's own grants ([escalation] privilege_actions)
    "assume": "acts as",
    "create_key": "creates a key for, so authenticates as,",
    "add_member": "adds itself to a group, becoming",
    "grant": "grants itself a group or role, becoming",
}


def action_text(method: str, kind: str) -> str:
    """What a step of ``method`` does, in words (pass-role and existing-resource methods are named
    after their service)."""
    text = _ACTION_TEXT.get(method)
    if text is not None:
        return text
    return f"passes or uses a role through {method.split('-')[0]} ({method}) to become"


def expand(edge: Edge) -> list[Step]:
    """The readable steps of one edge (a grant becomes: write onto the grantee, the become steps
    to it, the grantee holding admin)."""
    if edge.kind != "grant":
        return [
            Step(
                edge.source,
                edge.target,
                edge.method,
                action_text(edge.method, edge.kind),
                edge.via,
                edge.requires,
            )
        ]
    own_requires = tuple(r for r in edge.requires if all(r not in t.requires for t in edge.through))
    steps = [
        Step(
            edge.source,
            edge.grantee,
            edge.method,
            action_text(edge.method, edge.kind),
            edge.via,
            own_requires,
        )
    ]
    for t in edge.through:
        steps.extend(expand(t))
    last = "then holds admin-equivalent permissions"
    if edge.delegated:
        last += " (for whoever holds its credentials: the actor decides who is admin)"
    steps.append(Step(edge.grantee, ADMIN, "admin", last, (), ()))
    return steps


def _distances(graph: Graph, *, conditional: bool) -> dict[str, tuple[int, Edge | None]]:
    dist: dict[str, tuple[int, Edge | None]] = {ADMIN: (0, None)}
    queue = deque([ADMIN])
    while queue:
        node = queue.popleft()
        d = dist[node][0]
        for e in graph.into.get(node, ()):
            if e.source in dist or (e.conditional and not conditional):
                continue
            dist[e.source] = (d + 1, e)
            queue.append(e.source)
    return dist


@dataclass(slots=True)
class Analysis:
    """Verdicts and shortest paths to admin for every principal of a graph."""

    graph: Graph
    strict: dict[str, tuple[int, Edge | None]]
    loose: dict[str, tuple[int, Edge | None]]

    def verdict(self, arn: str) -> str:
        """``admin``, ``reaches_admin``, ``conditional`` or ``none`` for the principal ``arn``."""
        hit = self.strict.get(arn)
        if hit is not None:
            edge = hit[1]
            return "admin" if edge is not None and edge.kind == "holds" else "reaches_admin"
        return "conditional" if arn in self.loose else "none"

    def shortest(self, arn: str) -> Path | None:
        """The shortest path to admin (unconditional if there is one), or None."""
        table = self.strict if arn in self.strict else self.loose
        if arn not in table:
            return None
        edges: list[Edge] = []
        node = arn
        while node != ADMIN:
            edge = table[node][1]
            assert edge is not None
            edges.append(edge)
            node = edge.target
        return _path(edges, self.graph)

    def paths(self, arn: str, *, limit: int = 5, slack: int = 1) -> list[Path]:
        """Up to ``limit`` simple paths from ``arn`` to admin, shortest first, at most ``slack``
        steps longer than the shortest (unconditional paths before conditional ones)."""
        out: list[Path] = []
        for table in (self.strict, self.loose):
            if arn not in table:
                continue
            bound = table[arn][0] + slack
            for tried, edges in enumerate(_enumerate(self.graph, arn, ADMIN, table, bound)):
                if tried >= _MAX_CANDIDATES or len(out) >= 4 * limit:
                    break
                p = _path(edges, self.graph)
                if table is self.loose and not p.conditional:
                    continue
                if all(p.edges != q.edges and p.methods != q.methods for q in out):
                    out.append(p)
        out.sort(key=lambda q: (q.conditional, sum(e.delegated for e in q.edges), len(q.steps)))
        return out[:limit]


def _path(edges: list[Edge], graph: Graph) -> Path:
    edges = fold(edges, graph.principals)
    steps: list[Step] = []
    for e in edges:
        steps.extend(expand(e))
    return Path(tuple(edges), tuple(steps))


def _enumerate(
    graph: Graph, source: str, target: str, table: dict[str, tuple[int, Edge | None]], bound: int
) -> Iterator[list[Edge]]:
    """Simple paths source -> target of at most ``bound`` edges, by increasing length, pruned by the
    distances in ``table``."""
    strict = all(e is None or not e.conditional for _, e in table.values())
    for length in range(1, bound + 1):
        stack: list[tuple[str, list[Edge], frozenset[str]]] = [(source, [], frozenset((source,)))]
        while stack:
            node, edges, seen = stack.pop()
            if node == target:
                if len(edges) == length:
                    yield edges
                continue
            left = length - len(edges)
            for e in graph.out.get(node, ()):
                if strict and e.conditional:
                    continue
                d = table.get(e.target) if e.target != target else (0, None)
                if d is None or d[0] > left - 1 or e.target in seen:
                    continue
                stack.append((e.target, [*edges, e], seen | {e.target}))


def _preference(e: Edge) -> tuple[bool, bool, bool]:
    return (e.delegated, e.conditional, e.kind != "holds")


def analyse(graph: Graph) -> Analysis:
    """Verdicts and distances to admin for every principal of ``graph``. Among equally short
    paths the search prefers steps that hold admin, then unconditional ones, then steps the actor
    takes itself over delegated grants (it orders each node's incoming edges so)."""
    for edges in graph.into.values():
        edges.sort(key=_preference)
    return Analysis(graph, _distances(graph, conditional=False), _distances(graph, conditional=True))


def paths_between(
    graph: Graph, source: str, target: str, *, limit: int = 5, where: str = "the IAM export"
) -> list[Path]:
    """Up to ``limit`` shortest become-paths from ``source`` to the principal ``target`` (conditional
    steps allowed and marked).

    Raises :class:`PrincipalNotFoundError` when either is not a principal of the graph.
    """
    for arn in (source, target):
        if arn not in graph.principals:
            raise PrincipalNotFoundError(f"no principal {arn!r} in {where}", principal=arn)
    # distances to target over become edges, backwards
    dist: dict[str, tuple[int, Edge | None]] = {target: (0, None)}
    queue = deque([target])
    while queue:
        node = queue.popleft()
        for e in graph.into.get(node, ()):
            if e.kind == "become" and e.source not in dist:
                dist[e.source] = (dist[node][0] + 1, e)
                queue.append(e.source)
    if source not in dist or source == target:
        return []
    out: list[Path] = []
    for edges in _enumerate(graph, source, target, dist, dist[source][0] + 1):
        if all(e.kind == "become" for e in edges):
            out.append(_path(edges, graph))
            if len(out) >= limit:
                break
    return sorted(out, key=lambda q: (q.conditional, len(q.steps)))


def resolve(graph: Graph, text: str, where: str = "the IAM export") -> str:
    """The ARN of the principal ``text`` names: an ARN, or a user, role or group name that only one
    principal has.

    Raises :class:`PrincipalNotFoundError` when nothing (or more than one principal) matches.
    """
    if text in graph.principals:
        return text
    named = [arn for arn, p in graph.principals.items() if p.name == text]
    if len(named) == 1:
        return named[0]
    if named:
        what = "the ARN" if where == "the IAM export" else 'its uid (Type::"id")'
        raise PrincipalNotFoundError(f"{text!r} names {len(named)} principals; give {what}", principal=text)
    raise PrincipalNotFoundError(f"no principal {text!r} in {where}", principal=text)
