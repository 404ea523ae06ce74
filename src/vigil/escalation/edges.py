"""The escalation graph as data: :class:`Edge` (one step), :class:`Graph` (adjacency both ways),
the node ids that are not principals (:data:`ADMIN`, shared nodes) and :func:`fold`, which merges
the steps through a shared node into one. Built by :mod:`vigil.escalation.graph`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vigil.escalation.iam_export import Principal

ADMIN = "admin"
# A resource pattern matching at least this many principals goes through a shared node.
HUB_MIN = 16


@dataclass(frozen=True, slots=True)
class Edge:
    """One escalation step (see the module docstring for ``kind``)."""

    source: str
    target: str
    kind: str
    method: str
    via: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    grantee: str = ""
    through: tuple[Edge, ...] = ()
    delegated: bool = False

    @property
    def conditional(self) -> bool:
        """True when the step needs something the export does not show (``requires``)."""
        return bool(self.requires)


@dataclass(slots=True)
class Graph:
    """Principals (ARN -> :class:`Principal`), their outgoing edges, and the reverse adjacency."""

    principals: dict[str, Principal]
    out: dict[str, list[Edge]] = field(default_factory=dict)
    into: dict[str, list[Edge]] = field(default_factory=dict)
    _keys: dict[tuple[str, str, str, str], Edge] = field(default_factory=dict)

    def add(self, edge: Edge) -> None:
        """Add ``edge``; of two edges with the same ends, method and grantee the unconditional one
        (else the first) is kept."""
        key = (edge.source, edge.target, edge.method, edge.grantee)
        old = self._keys.get(key)
        if old is not None:
            if not (old.conditional and not edge.conditional):
                return
            self.remove(old)
        self._keys[key] = edge
        self.out.setdefault(edge.source, []).append(edge)
        self.into.setdefault(edge.target, []).append(edge)

    def remove(self, edge: Edge) -> None:
        """Remove ``edge`` (which must be in the graph)."""
        self.out[edge.source].remove(edge)
        self.into[edge.target].remove(edge)
        del self._keys[(edge.source, edge.target, edge.method, edge.grantee)]

    def edges(self) -> Iterable[Edge]:
        """Every edge, grouped by source."""
        for edges in self.out.values():
            yield from edges


def service_node(service: str, instance_profile: bool) -> str:
    """The node id standing for "an existing resource of ``service`` running as one of the roles
    that trust it" (with an instance profile when ``instance_profile``)."""
    return f"service:{service}" + (" (instance profile)" if instance_profile else "")


def fold(edges: Iterable[Edge], principals: Mapping[str, Principal]) -> list[Edge]:
    """``edges`` with each step into a shared node (a wildcard's hub, a service's existing
    resources) merged with the step out of it: one step from principal to principal, with the
    first step's method and both steps' statements and requirements."""
    out: list[Edge] = []
    for e in edges:
        prev = out[-1] if out else None
        if prev is not None and prev.target == e.source and e.source not in principals and e.source != ADMIN:
            out[-1] = Edge(
                prev.source,
                e.target,
                prev.kind,
                prev.method,
                _requires_t(prev.via, e.via),
                _requires_t(prev.requires, e.requires),
                e.grantee,
                e.through,
                prev.delegated,
            )
        else:
            out.append(e)
    return out


def _requires_t(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*a, *b)))
