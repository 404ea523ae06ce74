"""Run Cedar's own authorization test corpus (vendor/conformance/cedar) through vigil's compiled
authorizer and compare decisions, determining policies and erroring policies with the expectations.

Used by tests/test_cedar_conformance.py; ``python tests/cedar_corpus.py`` prints the report table
that docs/conformance.md records.
"""

from __future__ import annotations

import json
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.policy.build import BuildError, build_policy_set
from vigil.policy.cedar import PolicySource
from vigil.policy.json_values import record_to_cedar
from vigil.policy.schema import coerce_json

CORPUS = Path(__file__).resolve().parents[1] / "vendor" / "conformance" / "cedar"


@dataclass
class Report:
    tests: int = 0
    requests: int = 0
    agree: int = 0
    errors_agree: int = 0
    forbid_errored: int = 0
    forbid_errored_cedar_allows: int = 0  # where vigil's stricter rule turns Cedar's allow into deny
    policies: int = 0  # policies built (compiled + fallbacks)
    fallbacks: int = 0
    build_errors: int = 0
    disagreements: list[str] = field(default_factory=list)
    by_decision: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def _require_corpus() -> None:
    if not (CORPUS / "corpus" / "corpus-tests.tar.gz").exists() or not (CORPUS / "tests").is_dir():
        raise FileNotFoundError(f"Cedar corpus not found under {CORPUS} (vendored; see vendor/README.md)")


def hand_written() -> Iterator[tuple[str, dict[str, Any], str, list[Any], str | None]]:
    _require_corpus()
    for f in sorted((CORPUS / "tests").glob("*/*.json")):
        d = json.loads(f.read_text())
        schema = (CORPUS / d["schema"]).read_text() if d.get("schema") else None
        yield (
            str(f.relative_to(CORPUS)),
            d,
            (CORPUS / d["policies"]).read_text(),
            json.loads((CORPUS / d["entities"]).read_text()),
            schema,
        )


def generated() -> Iterator[tuple[str, dict[str, Any], str, list[Any], str | None]]:
    """Read the corpus straight from its tarball (31k small files; never unpacked on disk)."""
    _require_corpus()
    members: dict[str, bytes] = {}
    with tarfile.open(CORPUS / "corpus" / "corpus-tests.tar.gz") as tar:
        for m in tar:
            if m.isfile():
                fh = tar.extractfile(m)
                if fh is not None:
                    members[m.name] = fh.read()
    for name in sorted(n for n in members if n.endswith(".json") and not n.endswith(".entities.json")):
        d = json.loads(members[name])
        schema = members[d["schema"]].decode() if d.get("schema") else None
        yield name, d, members[d["policies"]].decode(), json.loads(members[d["entities"]]), schema


def run(cases: Iterator[tuple[str, dict[str, Any], str, list[Any], str | None]]) -> Report:
    rep = Report()
    t0 = time.perf_counter()
    for name, d, policies, entities, schema in cases:
        rep.tests += 1
        try:
            ps = build_policy_set(
                [PolicySource("policies.cedar", policies)], entities, schema, require_valid=False
            )
        except BuildError as e:
            rep.build_errors += 1
            rep.disagreements.append(f"{name}: build error {e}")
            continue
        rep.policies += len(ps.policies)
        rep.fallbacks += len(ps.fallbacks)
        for r in d["requests"]:
            rep.requests += 1
            p = (r["principal"]["type"], r["principal"]["id"])
            a = (r["action"]["type"], r["action"]["id"])
            res = (r["resource"]["type"], r["resource"]["id"])
            ctx = r["context"]
            try:
                if ps.schema is not None:
                    ctype = ps.schema.context_type(a)
                    if ctype is not None:
                        ctx = coerce_json(ctx, ctype)
                context = record_to_cedar(ctx)
            except VigilError as e:
                rep.disagreements.append(f"{name} {r['description']}: context refused: {e}")
                continue
            ans = ps.authorizer.is_authorized(p, a, res, context)
            rep.by_decision[r["decision"]] += 1
            forbid_errored = any(e.forbid for e in ans.errors)
            if forbid_errored:
                rep.forbid_errored += 1
                if r["decision"] == "allow":
                    rep.forbid_errored_cedar_allows += 1
            same = ans.allowed == (r["decision"] == "allow") and set(ans.policies) == set(r["reason"])
            if same:
                rep.agree += 1
            else:
                rep.disagreements.append(
                    f"{name} {r['description']}: vigil {ans.allowed} {sorted(ans.policies)}, "
                    f"expected {r['decision']} {sorted(r['reason'])}"
                )
            if {e.policy_id for e in ans.errors} == set(r["errors"]):
                rep.errors_agree += 1
    rep.seconds = time.perf_counter() - t0
    return rep


def markdown(hand: Report, gen: Report) -> str:
    rows = [
        "| set | tests | requests | decision + reasons agree | erroring policies agree | forbid errored "
        "(of which Cedar allows) | fallbacks | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in (("hand-written (`tests/`)", hand), ("generated corpus", gen)):
        rows.append(
            f"| {label} | {r.tests:,} | {r.requests:,} | {r.agree:,} / {r.requests:,} | "
            f"{r.errors_agree:,} / {r.requests:,} | {r.forbid_errored:,} ({r.forbid_errored_cedar_allows:,}) | "
            f"{r.fallbacks} | {r.seconds:.1f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    h = run(hand_written())
    g = run(generated())
    print(markdown(h, g))
    for line in (h.disagreements + g.disagreements)[:20]:
        print(line, file=sys.stderr)
