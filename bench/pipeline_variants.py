"""Where a decision's time goes on the shared workload: the full pipeline against variants with
the audit sink and/or the behaviour model switched off, and the python-reference, in one process.

    .venv/bin/python bench/pipeline_variants.py [--shared ../shared] [--rounds 8] [--chunk 2000]

Loads the shared workload through the shared harness's own vigil adapter (shadow mode), warms up
on 500 requests as ``peers_bench.py`` does, then times ``adapter.decide`` on interleaved chunks
of *fresh* requests, one chunk per variant per round (re-deciding requests a profile has already
learned is ~30% cheaper, so every variant gets requests no variant has seen). GC is off inside a
chunk, as in the harness. Prints p50/p90/p99 per variant and their ratios to the reference.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

VARIANTS = ("full", "audit off", "behaviour off", "both off", "python-reference")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=2_000)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(args.shared) / "bench"))
    import workload  # type: ignore[import-not-found]
    from adapters.reference import ReferencePython  # type: ignore[import-not-found]
    from adapters.vigil import Vigil  # type: ignore[import-not-found]

    from vigil.audit.sink import NullSink

    need = 500 + args.rounds * len(VARIANTS) * args.chunk
    wl = workload.generate(n_requests=max(need, 1_000))
    adapter = Vigil()
    adapter.load(wl)
    reference = ReferencePython()
    reference.load(wl)
    qs = wl.requests
    for q in qs[:500]:
        adapter.decide(q)
    engine = adapter._engine
    audit = engine._audit
    null = NullSink()
    model = engine._state.behaviour
    lat: dict[str, list[int]] = {v: [] for v in VARIANTS}
    pc = time.perf_counter_ns
    pos = 500
    try:
        for _ in range(args.rounds):
            for v in VARIANTS:
                items = qs[pos : pos + args.chunk]
                pos += args.chunk
                engine._audit = null if v in ("audit off", "both off") else audit
                model.off = v in ("behaviour off", "both off")
                decide = reference.decide if v == "python-reference" else adapter.decide
                out = lat[v]
                gc.collect()
                gc.disable()
                try:
                    for q in items:
                        t0 = pc()
                        decide(q)
                        out.append(pc() - t0)
                finally:
                    gc.enable()
    finally:
        engine._audit = audit
        model.off = False

    def pct(v: list[int], q: float) -> float:
        return v[min(len(v) - 1, int(len(v) * q))] / 1000

    for v in lat.values():
        v.sort()
    ref50, ref99 = pct(lat["python-reference"], 0.5), pct(lat["python-reference"], 0.99)
    result = {
        v: {
            "n": len(x),
            "p50_us": pct(x, 0.5),
            "p90_us": pct(x, 0.9),
            "p99_us": pct(x, 0.99),
            "p50_x_reference": round(pct(x, 0.5) / ref50, 3),
            "p99_x_reference": round(pct(x, 0.99) / ref99, 3),
        }
        for v, x in lat.items()
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
