"""What the audit event costs a decision, by where it is encoded, on the shared workload.

    .venv/bin/python bench/audit_modes.py [--shared ../shared] [--rounds 6] [--chunk 2000]

Times ``adapter.decide`` of the shared harness's own vigil adapter (shadow mode) on interleaved
chunks of fresh requests, one chunk per mode per round (``interleaved.py``), with the engine's
audit sink swapped for:

- ``batch N``: ``JsonlSink(batch=N)``, the deciding thread encodes N events at a time (256, 128,
  32 (the default), 16, 8, 4);
- ``writer``: ``JsonlSink(batch=4096, flush_interval_s=0.002)``, the writer thread encodes every
  2 ms (the deciding thread only appends);
- ``writer + 256``: the same, but the deciding thread encodes once 256 events are pending (when
  decisions come faster than the writer keeps up, e.g. batches of evaluations);
- ``batch 32 signed chain`` / ``batch 32 no chain``: the default with the workspace's checkpoint
  signing key, and with ``[audit] chain = false`` (what the hash chain costs);
- ``off``: ``NullSink`` (``[audit] sink = "none"``);

and the python-reference in the same process. GC is off inside a chunk, as in the harness
(``--gc`` leaves it on: records an audit mode keeps alive longer cost collections too).
``wall_us_per_decision`` is the chunk's wall time per decision, including what the writer thread
did meanwhile and encoding and writing what is still pending at the end of the chunk. Prints
p50/p90/p99/p99.9 and the mean per mode, and p50/p99 as multiples of the reference's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interleaved import DEFAULT_SHARED, REFERENCE, load, summary, time_chunk


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=DEFAULT_SHARED)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--chunk", type=int, default=2_000)
    ap.add_argument("--gc", action="store_true", help="leave the garbage collector on while timing")
    ap.add_argument("--modes", help="comma-separated subset of the modes (the reference always runs)")
    args = ap.parse_args(argv)

    from vigil.audit.sink import JsonlSink, NullSink

    tmp = Path(tempfile.mkdtemp(prefix="vigil-audit-modes-"))
    modes: dict[str, Callable[[], Any] | None] = {
        "batch 256": lambda: JsonlSink(tmp / "b256.jsonl", batch=256),
        "batch 128": lambda: JsonlSink(tmp / "b128.jsonl", batch=128),
        "batch 32": lambda: JsonlSink(tmp / "b32.jsonl", batch=32),
        "batch 32 signed chain": lambda: JsonlSink(tmp / "s32.jsonl", batch=32, signing_key=tmp / "audit.key"),
        "batch 32 no chain": lambda: JsonlSink(tmp / "n32.jsonl", batch=32, chain=False),
        "batch 16": lambda: JsonlSink(tmp / "b16.jsonl", batch=16),
        "batch 8": lambda: JsonlSink(tmp / "b8.jsonl", batch=8),
        "batch 4": lambda: JsonlSink(tmp / "b4.jsonl", batch=4),
        "writer": lambda: JsonlSink(tmp / "w.jsonl", batch=4_096, flush_interval_s=0.002),
        "writer + 256": lambda: JsonlSink(tmp / "h.jsonl", batch=256, flush_interval_s=0.002),
        "off": NullSink,
        REFERENCE: None,
    }
    if args.modes:
        wanted = {m.strip() for m in args.modes.split(",")}
        unknown = wanted - set(modes)
        if unknown:
            ap.error(f"unknown modes {sorted(unknown)}; known: {sorted(modes)}")
        modes = {m: make for m, make in modes.items() if m in wanted or m == REFERENCE}
    adapter, reference, qs = load(args.shared, args.rounds * len(modes) * args.chunk)
    engine = adapter._engine
    sinks = {m: (make() if make is not None else None) for m, make in modes.items()}
    lat: dict[str, list[int]] = {m: [] for m in modes}
    wall: dict[str, int] = dict.fromkeys(modes, 0)
    rounds_p99: dict[str, list[int]] = {m: [] for m in modes}
    pos = 0
    for _ in range(args.rounds):
        for m in modes:
            items = qs[pos : pos + args.chunk]
            pos += args.chunk
            sink = sinks[m]
            if sink is None:
                wall[m] += time_chunk(reference.decide, items, lat[m], gc_on=args.gc, chunk_p99=rounds_p99[m])
                continue
            engine._audit = sink
            # what is still pending is encoded and written (no fsync) inside the timed wall
            drain = sink._drain if isinstance(sink, JsonlSink) else None
            wall[m] += time_chunk(
                adapter.decide, items, lat[m], gc_on=args.gc, after=drain, chunk_p99=rounds_p99[m]
            )
    for sink in sinks.values():
        if sink is not None:
            sink.close()
    print(json.dumps(summary(lat, wall, rounds_p99), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
