"""What an IAM change gives away: principals whose reach to admin grows (or shrinks) between two
exports of the same account.

:func:`diff` compares two analyses principal by principal (by ARN). A principal *gains* when its
verdict moves up the order ``none`` < ``conditional`` < ``reaches_admin`` < ``admin`` (a principal
new in the second export gains when it is not ``none``), and *loses* when it moves down. Each gain
carries the path that is new: the shortest path to admin after the change.
"""

from __future__ import annotations

from typing import Any

from vigil.escalation.query import Analysis

_RANK = {"none": 0, "conditional": 1, "reaches_admin": 2, "admin": 3}


def diff(before: Analysis, after: Analysis) -> dict[str, Any]:
    """``{"widened": bool, "gained": [...], "lost": [...]}``; each entry ``{"id", "name", "kind",
    "before", "after", "path"}`` (``before`` is ``absent`` for a principal new in ``after``;
    ``path`` is the shortest path after the change, or None)."""
    gained: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] = []
    for arn, p in after.graph.principals.items():
        now = after.verdict(arn)
        was = before.verdict(arn) if arn in before.graph.principals else "absent"
        if was == now:
            continue
        path = after.shortest(arn)
        entry = {
            "id": arn,
            "name": p.name,
            "kind": p.kind,
            "before": was,
            "after": now,
            "path": path.to_dict() if path is not None else None,
        }
        if _RANK[now] > _RANK.get(was, 0):
            gained.append(entry)
        elif _RANK[now] < _RANK.get(was, 0):
            lost.append(entry)
    for arn, p in before.graph.principals.items():
        if arn not in after.graph.principals and before.verdict(arn) != "none":
            lost.append(
                {
                    "id": arn,
                    "name": p.name,
                    "kind": p.kind,
                    "before": before.verdict(arn),
                    "after": "absent",
                    "path": None,
                }
            )
    order = lambda e: (-_RANK.get(e["after"], 0), e["id"])  # noqa: E731
    gained.sort(key=order)
    lost.sort(key=lambda e: e["id"])
    return {"widened": bool(gained), "gained": gained, "lost": lost}
