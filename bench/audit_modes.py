"""What the audit event costs a decision, by where it is encoded, on the shared workload.

    .venv/bin/python bench/audit_modes.py [--shared ../shared] [--rounds 6] [--chunk 2000]

Loads the shared workload through the shared harness's own vigil adapter (shadow mode), warms up
on 500 requests, then times ``adapter.decide`` on interleaved chunks of *fresh* requests, one chunk
per mode per round, with the engine's audit sink swapped for:

- ``batch N``: ``JsonlSink(batch=N)``, the deciding thread encodes N events at a time (256, 128,
  32 (the default), 16, 8, 4);
- ``writer``: ``JsonlSink(batch=4096, flush_interval_s=0.002)``, the writer thread encodes every
  2 ms (the deciding thread only appends);
- ``writer + 256``: the same, but the deciding thread encodes once 256 events are pending (when
  decisions come faster than the writer keeps up, e.g. batches of evaluations);
- ``off``: ``NullSink`` (``[audit] sink = "none"``);

and the python-reference in the same process. GC is off inside a chunk, as in the harness
(``--gc`` leaves it on: records an audit mode keeps alive longer cost collections too).
``wall_us_per_decision`` is the chunk's wall time per decision, including what the writer thread
did meanwhile and encoding and writing what is still pending at the end of the chunk. Prints
p50/p90/p99/p99.9 and the mean per mode, and p50/p99 as multiples of the reference's.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--chunk", type=int, default=2_000)
    ap.add_argument("--gc", action="store_true", help="leave the garbage collector on while timing")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(args.shared) / "bench"))
    import workload  # type: ignore[import-not-found]
    from adapters.reference import ReferencePython  # type: ignore[import-not-found]
    from adapters.vigil import Vigil  # type: ignore[import-not-found]

    from vigil.audit.sink import JsonlSink, NullSink

    tmp = Path(tempfile.mkdtemp(prefix="vigil-audit-modes-"))
    modes: dict[str, Callable[[], Any] | None] = {
        "batch 256": lambda: JsonlSink(tmp / "b256.jsonl", batch=256),
        "batch 128": lambda: JsonlSink(tmp / "b128.jsonl", batch=128),
        "batch 32": lambda: JsonlSink(tmp / "b32.jsonl", batch=32),
        "batch 16": lambda: JsonlSink(tmp / "b16.jsonl", batch=16),
        "batch 8": lambda: JsonlSink(tmp / "b8.jsonl", batch=8),
        "batch 4": lambda: JsonlSink(tmp / "b4.jsonl", batch=4),
        "writer": lambda: JsonlSink(tmp / "w.jsonl", batch=4_096, flush_interval_s=0.002),
        "writer + 256": lambda: JsonlSink(tmp / "h.jsonl", batch=256, flush_interval_s=0.002),
        "off": NullSink,
        "python-reference": None,
    }
    wl = workload.generate(n_requests=500 + args.rounds * len(modes) * args.chunk)
    adapter = Vigil()
    adapter.load(wl)
    reference = ReferencePython()
    reference.load(wl)
    engine = adapter._engine
    sinks = {m: (make() if make is not None else None) for m, make in modes.items()}
    qs = wl.requests
    for q in qs[:500]:
        adapter.decide(q)
    lat: dict[str, list[int]] = {m: [] for m in modes}
    wall: dict[str, int] = dict.fromkeys(modes, 0)
    pc = time.perf_counter_ns
    pos = 500
    for _ in range(args.rounds):
        for m in modes:
            items = qs[pos : pos + args.chunk]
            pos += args.chunk
            sink = sinks[m]
            if sink is not None:
                engine._audit = sink
            decide = reference.decide if sink is None else adapter.decide
            out = lat[m]
            gc.collect()
            if not args.gc:
                gc.disable()
            try:
                w0 = pc()
                for q in items:
                    t0 = pc()
                    decide(q)
                    out.append(pc() - t0)
                if isinstance(sink, JsonlSink):
                    sink._drain()  # encode and write what is pending (no fsync): timed in wall
                wall[m] += pc() - w0
            finally:
                gc.enable()
    for sink in sinks.values():
        if sink is not None:
            sink.close()

    def pct(v: list[int], q: float) -> float:
        return v[min(len(v) - 1, int(len(v) * q))] / 1000

    for v in lat.values():
        v.sort()
    ref = lat["python-reference"]
    ref50, ref99 = pct(ref, 0.5), pct(ref, 0.99)
    result = {
        m: {
            "n": len(x),
            "p50_us": pct(x, 0.5),
            "p90_us": pct(x, 0.9),
            "p99_us": pct(x, 0.99),
            "p999_us": pct(x, 0.999),
            "mean_us": round(sum(x) / len(x) / 1000, 2),
            "wall_us_per_decision": round(wall[m] / len(x) / 1000, 2),
            "p50_x_reference": round(pct(x, 0.5) / ref50, 3),
            "p99_x_reference": round(pct(x, 0.99) / ref99, 3),
        }
        for m, x in lat.items()
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
