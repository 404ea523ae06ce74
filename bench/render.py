"""Render a shared-harness results JSON as the markdown table docs/benchmarks.md records.

.venv/bin/python bench/render.py bench/results/peers.json
"""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    with open(path) as f:
        d = json.load(f)
    rows = d["results"]
    ref = next((r for r in rows if r["engine"] == "python-reference"), None)
    ced = next((r for r in rows if r["engine"] == "cedarpy"), None)
    print(
        f"Run {d['timestamp']}, {d['machine']['implementation']} {d['machine']['python']}, "
        f"{d['machine']['cpus']} CPUs, workload seed {d['workload']['seed']} "
        f"({d['workload']['requests']:,} requests, allow rate {d['workload']['allow_rate']:.1%}).\n"
    )
    print(
        "| engine | samples | p50 µs | p90 µs | p99 µs | decisions/s | x reference p50 | cedarpy p50 / engine p50 | setup s | agree |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{ced['p50_us'] / r['p50_us']:.1f}" if ced else "-"
        agree = (
            "-"
            if r["sample_mismatches"] is None
            else (f"{r['sample_checked'] - r['sample_mismatches']:,}/{r['sample_checked']:,}")
        )
        print(
            f"| {r['engine']} | {r['samples']:,} | {r['p50_us']:.1f} | {r['p90_us']:.1f} | {r['p99_us']:.1f} | "
            f"{r['decisions_per_s']:,.0f} | {r['x_reference_p50']:.2f} | {ratio} | "
            f"{d['setup_s'].get(r['engine'], 0):.2f} | {agree} |"
        )
    if ref:
        print()


if __name__ == "__main__":
    main(sys.argv[1])
