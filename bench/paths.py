"""Escalation analysis speed: build + query time on generated IAM estates.

    .venv/bin/python bench/paths.py [--sizes 100,1000,10000] [--seed 1] [--json-out FILE]

For each size N, a sparse estate (``vigil.escalation.synthetic.SPARSE``: 40% users, 50% roles,
10% groups, N/5 customer-managed policies; mostly narrow grants, a few wildcards, denies,
boundaries, trust policies naming the account, a principal, ``*`` or a service) is written as an
export file, then timed: reading the export, building the graph, verdicts for every principal
(``analyse``), one principal's paths (``paths`` of the first principal reaching admin) and the
whole JSON report. Also the vendored iam-vulnerable snapshot and that snapshot scaled 20x (the
issue's "< 10 s" and "< 60 s"). Prints one JSON object per estate.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.escalation import analyse, build_graph, load_export, report
from vigil.escalation.synthetic import SPARSE, generate

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SNAPSHOT = (
    Path(__file__).resolve().parents[1]
    / "vendor/datasets/iam-vulnerable-authz-snapshot/account_authorization_details.json"
)


def _scaled(data: dict[str, Any], times: int) -> dict[str, Any]:
    """The snapshot ``times`` over, each copy in its own account id (so trust stays per copy)."""
    text = json.dumps(data)
    out: dict[str, Any] = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    for i in range(times):
        copy_i = json.loads(
            text.replace("200611803367", f"{900000000000 + i}").replace("012345678901", f"{800000000000 + i}")
        )
        for key in out:
            items = copy_i.get(key, [])
            if key == "Policies" and i > 0:
                items = [p for p in items if ":iam::aws:policy/" not in p["Arn"]]
            out[key].extend(copy.deepcopy(items))
    return out


def measure(name: str, data: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.json"
        path.write_text(json.dumps(data))
        t0 = time.perf_counter()
        estate = load_export(path, NOW)
        t1 = time.perf_counter()
        graph = build_graph(estate)
        t2 = time.perf_counter()
        analysis = analyse(graph)
        t3 = time.perf_counter()
        first = next((a for a in graph.principals if analysis.verdict(a) == "reaches_admin"), None)
        paths = analysis.paths(first, limit=5) if first else []
        t4 = time.perf_counter()
        body = report(analysis)
        t5 = time.perf_counter()
    verdicts = body["summary"]
    return {
        "estate": name,
        "principals": len(graph.principals),
        "policies": len(estate.policies),
        "edges": sum(1 for _ in graph.edges()),
        "read_s": round(t1 - t0, 3),
        "build_s": round(t2 - t1, 3),
        "verdicts_s": round(t3 - t2, 3),
        "paths_one_principal_s": round(t4 - t3, 4),
        "paths_found": len(paths),
        "report_all_s": round(t5 - t4, 3),
        "total_s": round(t5 - t0, 3),
        "verdicts": verdicts,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--no-snapshot", action="store_true")
    args = ap.parse_args()
    results = []
    if not args.no_snapshot:
        snap = json.loads(SNAPSHOT.read_text())
        for name, data in (("iam-vulnerable snapshot", snap), ("snapshot x20", _scaled(snap, 20))):
            results.append(measure(name, data))
            print(json.dumps(results[-1]), flush=True)
    for n in (int(x) for x in args.sizes.split(",")):
        data = generate(
            args.seed,
            users=n * 4 // 10,
            roles=n * 5 // 10,
            groups=n // 10,
            policies=max(3, n // 5),
            shape=SPARSE,
        )
        results.append(measure(f"generated {n}", data))
        print(json.dumps(results[-1]), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
