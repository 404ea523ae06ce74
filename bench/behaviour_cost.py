"""The cost of the behaviour step on the shared benchmark's workload: decide with and without it.

    .venv/bin/python bench/behaviour_cost.py [--shared ../shared] [--rounds 40]

Loads the shared workload through the shared harness's own vigil adapter (shadow mode, as
``peers_bench.py`` runs it), warms every identity up on 20,000 requests, then decides the next
40,000 in interleaved chunks of 1,000, alternately with the behaviour step and without it (the
model switched off as ``[behaviour] mode = "off"`` does: no assessment, no learning). Thread CPU
time per decision, so other work on the machine does not count; and wall-clock p50 of each chunk
kind. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(args.shared) / "bench"))
    import workload  # type: ignore[import-not-found]
    from adapters.vigil import Vigil  # type: ignore[import-not-found]

    wl = workload.generate(n_requests=20_000 + 1_000 * args.rounds)
    adapter = Vigil()
    adapter.load(wl)
    qs = wl.requests
    for q in qs[:20_000]:
        adapter.decide(q)
    model = adapter._engine._state.behaviour

    cpu = {"with": 0, "without": 0}
    wall: dict[str, list[int]] = {"with": [], "without": []}
    n = {"with": 0, "without": 0}
    tt, pc = time.thread_time_ns, time.perf_counter_ns
    try:
        for r in range(args.rounds):
            chunk = qs[20_000 + r * 1_000 : 21_000 + r * 1_000]
            for mode in ("with", "without") if r % 2 else ("without", "with"):
                model.off = mode == "without"  # as [behaviour] mode = "off" would
                gc.collect()
                t0 = tt()
                for q in chunk:
                    w0 = pc()
                    adapter.decide(q)
                    wall[mode].append(pc() - w0)
                cpu[mode] += tt() - t0
                n[mode] += len(chunk)
    finally:
        model.off = False

    def p50(v: list[int]) -> float:
        return round(sorted(v)[len(v) // 2] / 1000, 2)

    with_cpu = cpu["with"] / n["with"] / 1000
    without_cpu = cpu["without"] / n["without"] / 1000
    print(
        json.dumps(
            {
                "decisions": n,
                "cpu_us_per_decision": {"with": round(with_cpu, 2), "without": round(without_cpu, 2)},
                "behaviour_cpu_us": round(with_cpu - without_cpu, 2),
                "wall_p50_us": {"with": p50(wall["with"]), "without": p50(wall["without"])},
                "behaviour_wall_p50_us": round(p50(wall["with"]) - p50(wall["without"]), 2),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
