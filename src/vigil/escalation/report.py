"""The answer of ``vigil paths`` as JSON-ready data:
``{"principals": [{"id", "name", "kind", "verdict", "distance", "paths": [{"conditional",
"steps": [{"from", "to", "method", "action", "via", "requires"}]}]}], "summary": {...}}``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from vigil.escalation.query import VERDICTS, Analysis


def principal_report(analysis: Analysis, arn: str, *, limit: int = 1) -> dict[str, Any]:
    """One principal's entry: verdict, distance to admin (steps; None when unreachable) and up to
    ``limit`` paths, shortest first."""
    p = analysis.graph.principals[arn]
    verdict = analysis.verdict(arn)
    paths = analysis.paths(arn, limit=limit) if limit > 1 else []
    if not paths:
        shortest = analysis.shortest(arn)
        paths = [shortest] if shortest is not None else []
    distance = None
    if paths:
        distance = 0 if verdict == "admin" else len(paths[0].steps)
    return {
        "id": arn,
        "name": p.name,
        "kind": p.kind,
        "verdict": verdict,
        "distance": distance,
        "paths": [q.to_dict() for q in paths],
    }


def report(analysis: Analysis, arns: Iterable[str] | None = None, *, limit: int = 1) -> dict[str, Any]:
    """The entries of ``arns`` (default: every principal) and a count per verdict."""
    chosen = list(analysis.graph.principals) if arns is None else list(arns)
    entries = [principal_report(analysis, a, limit=limit) for a in chosen]
    counts = Counter(e["verdict"] for e in entries)
    return {"principals": entries, "summary": {v: counts.get(v, 0) for v in VERDICTS}}
