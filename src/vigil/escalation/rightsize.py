"""Least agency from observed use: a narrower Cedar policy set that keeps every observed allowed
request allowed (``vigil rightsize``; docs/escalation.md, "Right-sizing").

Each permit is kept with one more ``when`` clause that lists the (principal, action, resource)
requests it was observed to allow; a permit that allowed none is removed; forbids, templates and
everything else are kept as written. Adding a ``when`` clause to a permit can only narrow it and
the forbids are unchanged, so the result never allows more than the original, and an observed
request that a permit allowed is still allowed by it (its own triple is listed, the rest of the
policy is unchanged, the context is the same).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from vigil.escalation.cedar_grants import uid_text
from vigil.model.uid import EntityUid
from vigil.policy.cedar import split_statements

Triple = tuple[EntityUid, EntityUid, EntityUid]


def restriction(triples: Iterable[Triple]) -> str:
    """A Cedar condition true exactly for these (principal, action, resource) requests: per
    principal, its actions grouped by the set of resources they were used on.

    Written to pass Cedar's strict validation: every entity comparison sits behind an ``is`` test
    of its type (the validator does not type the right of ``&&`` when the left is false for a
    request environment), and sets of resources hold one type each."""
    by_principal: dict[EntityUid, dict[EntityUid, set[EntityUid]]] = {}
    for p, a, r in triples:
        by_principal.setdefault(p, {}).setdefault(a, set()).add(r)
    parts = []
    for p in sorted(by_principal):
        by_resources: dict[frozenset[EntityUid], list[EntityUid]] = {}
        for a, used in by_principal[p].items():
            by_resources.setdefault(frozenset(used), []).append(a)
        for rs, acts in sorted(by_resources.items(), key=lambda kv: (sorted(kv[1]), sorted(kv[0]))):
            actions = ", ".join(uid_text(a) for a in sorted(acts))
            by_type: dict[str, list[EntityUid]] = {}
            for r in sorted(rs):
                by_type.setdefault(r[0], []).append(r)
            resources = " || ".join(
                f"(resource is {t} && [{', '.join(uid_text(r) for r in us)}].contains(resource))"
                for t, us in sorted(by_type.items())
            )
            parts.append(
                f"    (principal is {p[0]} && principal == {uid_text(p)} && [{actions}].contains(action) && "
                f"({resources}))"
            )
    return " ||\n".join(parts) if parts else "false"


@dataclass(frozen=True, slots=True)
class Narrowed:
    """The narrowed files (path -> text) and the policy ids narrowed, removed and kept as written."""

    files: Mapping[str, str]
    narrowed: tuple[str, ...]
    removed: tuple[str, ...]
    kept: tuple[str, ...]


def narrow(
    files: Sequence[tuple[str, str]],
    permits: Mapping[str, str],
    used: Mapping[str, set[Triple]],
) -> Narrowed:
    """Rewrite the policy ``files`` ((path, text), in workspace order: Cedar numbers the
    statements ``policy0``, ``policy1``, ... across them). ``permits``: cedar id -> reported id of
    every static permit (others are kept as written); ``used``: reported id -> the requests it
    was observed to allow."""
    out: dict[str, str] = {}
    narrowed: list[str] = []
    removed: list[str] = []
    kept: list[str] = []
    n = 0
    for path, text in files:
        pieces: list[str] = []
        end = 0
        for _, stmt in split_statements(text):
            start = text.index(stmt, end)
            pieces.append(text[end:start])
            end = start + len(stmt)
            cedar_id = f"policy{n}"
            n += 1
            pid = permits.get(cedar_id)
            if pid is None:
                pieces.append(stmt)
                kept.append(cedar_id)
                continue
            triples = used.get(pid, set())
            body = stmt.rstrip()
            if not triples:
                removed.append(pid)
                lines = "\n".join("// " + ln for ln in body.strip("\n").splitlines())
                pieces.append(f"\n// rightsize: removed {pid}, which allowed no observed request\n{lines}")
                continue
            narrowed.append(pid)
            head = body[:-1] if body.endswith(";") else body
            pieces.append(
                f"{head}\n// rightsize: only the requests this policy was observed to allow\n"
                f"when {{\n{restriction(triples)}\n}};"
            )
        pieces.append(text[end:])
        out[path] = "".join(pieces)
    return Narrowed(out, tuple(narrowed), tuple(removed), tuple(kept))
