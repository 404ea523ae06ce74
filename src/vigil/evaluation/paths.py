"""``make eval-paths``: the escalation analyser scored on the labelled iam-vulnerable snapshot.

The snapshot (``vendor/datasets/iam-vulnerable-authz-snapshot``) labels 127 principals. Scenarios
are split once, by a hash of the scenario name (:func:`split`): a third is *held out* (never looked
at while the rules were tuned), the rest is the *tuning* part. For each part: precision and recall
of "reaches admin" (positives ``escalation_to_admin``; negatives ``no_escalation`` and
``no_escalation_in_snapshot``) read three ways (default: verdict ``admin``/``reaches_admin``; with
conditional: any verdict but ``none``; require_credentials: the default reading on the graph built
with ``require_credentials=True``), the share of ``escalation_requires_resource`` answered
``conditional``, per-method recall, the fp1-fp5/fn1-fn4 traps by name and whether each positive's
paths use its labelled method.

Run: ``python -m vigil.evaluation.paths --datasets vendor/datasets --update-doc docs/escalation.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.escalation import analyse, build_graph, load_export
from vigil.evaluation.report import update_document

SNAPSHOT = "iam-vulnerable-authz-snapshot"
POSITIVE = "escalation_to_admin"
NEGATIVE = ("no_escalation", "no_escalation_in_snapshot")
CONDITIONAL = "escalation_requires_resource"
# The instant date conditions are judged at: fixed, so the figures are reproducible.
AT = datetime(2026, 12, 1, tzinfo=UTC)


def split(scenario: str) -> str:
    """``held_out`` for a third of the scenarios (first SHA-256 byte of the name mod 3 == 0),
    ``tuning`` for the rest. Fixed before the first scored run; never changed."""
    return "held_out" if hashlib.sha256(scenario.encode()).digest()[0] % 3 == 0 else "tuning"


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for reading, key, positive in (
        ("default", "verdict", ("admin", "reaches_admin")),
        ("with_conditional", "verdict", ("admin", "reaches_admin", "conditional")),
        ("require_credentials", "verdict_narrow", ("admin", "reaches_admin")),
    ):
        tp = sum(1 for r in rows if r["label"] == POSITIVE and r[key] in positive)
        fn = sum(1 for r in rows if r["label"] == POSITIVE and r[key] not in positive)
        fp = sum(1 for r in rows if r["label"] in NEGATIVE and r[key] in positive)
        tn = sum(1 for r in rows if r["label"] in NEGATIVE and r[key] not in positive)
        out[reading] = {
            "tp": tp,
            "fn": fn,
            "fp": fp,
            "tn": tn,
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
        }
    cond = [r for r in rows if r["label"] == CONDITIONAL]
    out["requires_resource_conditional"] = {
        "n": len(cond),
        "conditional": sum(1 for r in cond if r["verdict"] == "conditional"),
        "share": _ratio(sum(1 for r in cond if r["verdict"] == "conditional"), len(cond)),
    }
    pos = [r for r in rows if r["label"] == POSITIVE and r["method_id"]]
    out["labelled_method_used"] = {
        "n": len(pos),
        "used": sum(1 for r in pos if r["method_used"]),
        "share": _ratio(sum(1 for r in pos if r["method_used"]), len(pos)),
    }
    per: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "found": 0, "method_used": 0})
    for r in rows:
        if r["label"] in (POSITIVE, CONDITIONAL) and r["method_id"]:
            m = per[r["method_id"]]
            m["n"] += 1
            want = ("admin", "reaches_admin") if r["label"] == POSITIVE else ("conditional",)
            m["found"] += r["verdict"] in want
            m["method_used"] += r["method_used"]
    out["per_method"] = dict(sorted(per.items()))
    return out


def evaluate(datasets: Path) -> dict[str, Any]:
    """The scored report for the snapshot under ``datasets`` (see the module docstring).

    Raises :class:`VigilError` (``invalid_iam_export``, ``invalid_input``) when the data is missing
    or malformed.
    """
    folder = datasets / SNAPSHOT
    labels_path = folder / "principal_labels.json"
    try:
        labels = json.loads(labels_path.read_text(encoding="utf-8"))["principals"]
    except (OSError, ValueError, KeyError) as e:
        raise VigilError(f"cannot read the labels {str(labels_path)!r}: {e}", code="invalid_input") from e
    started = time.perf_counter()
    graph = build_graph(load_export(folder / "account_authorization_details.json", AT))
    analysis = analyse(graph)
    seconds = time.perf_counter() - started
    narrow = analyse(
        build_graph(load_export(folder / "account_authorization_details.json", AT), require_credentials=True)
    )
    rows: list[dict[str, Any]] = []
    for lab in labels:
        arn = lab["arn"]
        verdict = analysis.verdict(arn) if arn in graph.principals else "missing"
        paths = analysis.paths(arn, limit=40, slack=2) if arn in graph.principals else []
        method_id = (lab.get("pathfinding_id") or "").removeprefix("pathfinding:")
        used = any(method_id in p.methods for p in paths) if method_id else False
        rows.append(
            {
                "name": lab["name"],
                "kind": lab["principal_type"],
                "scenario": lab["scenario"],
                "part": split(lab["scenario"]),
                "label": lab["label"],
                "method_id": method_id,
                "verdict": verdict,
                "verdict_narrow": narrow.verdict(arn) if arn in graph.principals else "missing",
                "method_used": used,
                "path": list(shortest.methods) if (shortest := analysis.shortest(arn)) else [],
            }
        )
    traps = {
        r["name"]: {"label": r["label"], "verdict": r["verdict"], "ok": _trap_ok(r)}
        for r in rows
        if r["scenario"][:3] in ("fp1", "fp2", "fp3", "fp4", "fp5", "fn1", "fn2", "fn3", "fn4")
    }
    return {
        "snapshot": f"vendor/datasets/{SNAPSHOT}",
        "judged_at": AT.isoformat(),
        "analysis_seconds": round(seconds, 3),
        "principals": len(graph.principals),
        "edges": sum(1 for _ in graph.edges()),
        "held_out_scenarios": sorted({r["scenario"] for r in rows if r["part"] == "held_out"}),
        "tuning": _score([r for r in rows if r["part"] == "tuning"]),
        "held_out": _score([r for r in rows if r["part"] == "held_out"]),
        "all": _score(rows),
        "traps": traps,
        "misses": [r for r in rows if not _row_ok(r)],
        "rows": rows,
    }


def _trap_ok(r: dict[str, Any]) -> bool:
    if r["label"] == POSITIVE:
        return bool(r["verdict"] in ("admin", "reaches_admin"))
    return bool(r["verdict"] == "none")


def _row_ok(r: dict[str, Any]) -> bool:
    if r["label"] == POSITIVE:
        return bool(r["verdict"] in ("admin", "reaches_admin") and (r["method_used"] or not r["method_id"]))
    if r["label"] in NEGATIVE:
        return bool(r["verdict"] == "none")
    if r["label"] == CONDITIONAL:
        return bool(r["verdict"] == "conditional")
    return True


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(result: dict[str, Any]) -> str:
    """The figures as Markdown (what ``--update-doc`` writes between the markers)."""
    lines = [
        f"Snapshot `{result['snapshot']}`: {result['principals']} principals, {result['edges']} edges, "
        f"analysed in {result['analysis_seconds']} s; date conditions judged at {result['judged_at']}.",
        "",
        "| part | reading | TP | FN | FP | TN | precision | recall | requires-resource answered conditional "
        "| positives whose paths use the labelled method |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for part in ("tuning", "held_out", "all"):
        s = result[part]
        for reading in ("default", "with_conditional", "require_credentials"):
            r = s[reading]
            c, m = s["requires_resource_conditional"], s["labelled_method_used"]
            lines.append(
                f"| {part} | {reading} | {r['tp']} | {r['fn']} | {r['fp']} | {r['tn']} | {_pct(r['precision'])} "
                f"| {_pct(r['recall'])} | {c['conditional']}/{c['n']} | {m['used']}/{m['n']} |"
            )
    lines += [
        "",
        "Held-out scenarios: " + ", ".join(f"`{s}`" for s in result["held_out_scenarios"]) + ".",
        "",
    ]
    lines += ["Traps:", "", "| principal | label | verdict | ok |", "|---|---|---|---|"]
    for name, t in result["traps"].items():
        lines.append(f"| `{name}` | {t['label']} | {t['verdict']} | {'yes' if t['ok'] else '**no**'} |")
    lines += ["", "Per method (labelled positives and requires-resource principals):", ""]
    lines += ["| method | part | n | found | path uses the method |", "|---|---|---|---|---|"]
    for part in ("tuning", "held_out"):
        for mid, m in result[part]["per_method"].items():
            lines.append(f"| `{mid}` | {part} | {m['n']} | {m['found']} | {m['method_used']} |")
    lines += ["", "Misses (label not met, or a positive whose paths do not use its labelled method):", ""]
    lines += [
        "| principal | part | label | verdict | labelled method | shortest path |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["misses"]:
        lines.append(
            f"| `{r['name']}` | {r['part']} | {r['label']} | {r['verdict']} | `{r['method_id'] or '-'}` "
            f"| {' -> '.join(r['path']) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: print the Markdown; ``--json-out`` and ``--update-doc`` write files. Returns
    the exit status (2 for unreadable data)."""
    ap = argparse.ArgumentParser(prog="python -m vigil.evaluation.paths", description=__doc__)
    ap.add_argument("--datasets", type=Path, default=Path("vendor/datasets"))
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--update-doc", type=Path)
    args = ap.parse_args(argv)
    try:
        result = evaluate(args.datasets)
        text = markdown(result)
        if args.json_out:
            args.json_out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        if args.update_doc:
            update_document(args.update_doc, text)
    except VigilError as e:
        sys.stderr.write(f"error {e.code}: {e.message}\n")
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
