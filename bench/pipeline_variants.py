"""Where a decision's time goes on the shared workload: the full pipeline against variants with
the audit sink and/or the behaviour model switched off, and the python-reference, in one process.

    .venv/bin/python bench/pipeline_variants.py [--shared ../shared] [--rounds 8] [--chunk 2000]

Times ``adapter.decide`` of the shared harness's own vigil adapter (shadow mode) on interleaved
chunks of fresh requests, one chunk per variant per round (``interleaved.py``). Prints
p50/p90/p99/p99.9 and the mean per variant and p50/p99 as multiples of the reference's.
"""

from __future__ import annotations

import argparse
import json

from interleaved import DEFAULT_SHARED, REFERENCE, load, summary, time_chunk

VARIANTS = ("full", "audit off", "behaviour off", "both off", REFERENCE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=DEFAULT_SHARED)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=2_000)
    args = ap.parse_args(argv)
    adapter, reference, qs = load(args.shared, args.rounds * len(VARIANTS) * args.chunk)

    from vigil.audit.sink import NullSink

    engine = adapter._engine
    audit = engine._audit
    null = NullSink()
    model = engine._state.behaviour
    lat: dict[str, list[int]] = {v: [] for v in VARIANTS}
    rounds_p99: dict[str, list[int]] = {v: [] for v in VARIANTS}
    pos = 0
    try:
        for _ in range(args.rounds):
            for v in VARIANTS:
                items = qs[pos : pos + args.chunk]
                pos += args.chunk
                engine._audit = null if v in ("audit off", "both off") else audit
                model.off = v in ("behaviour off", "both off")
                decide = reference.decide if v == REFERENCE else adapter.decide
                time_chunk(decide, items, lat[v], chunk_p99=rounds_p99[v])
    finally:
        engine._audit = audit
        model.off = False
    print(json.dumps(summary(lat, None, rounds_p99), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
