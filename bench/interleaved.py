"""What the interleaved benchmark scripts (``pipeline_variants.py``, ``audit_modes.py``) share: the
shared workload loaded through the shared harness's own vigil adapter and its python-reference,
chunks of *fresh* requests timed one call at a time (GC off inside a chunk, as in the harness,
unless asked), and the summary with p50/p99 as multiples of the reference's.

Fresh requests matter: re-deciding requests a profile has already learned is ~30% cheaper, so
every chunk gets requests no chunk has seen.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REFERENCE = "python-reference"
WARMUP = 500
DEFAULT_SHARED = str(Path(__file__).resolve().parents[2] / "shared")


def load(shared: str, n_requests: int) -> tuple[Any, Any, list[Any]]:
    """``(vigil adapter, reference adapter, requests)``: the shared workload with ``n_requests``
    requests after the ``WARMUP`` ones the adapter has already decided."""
    sys.path.insert(0, str(Path(shared) / "bench"))
    import workload  # type: ignore[import-not-found]
    from adapters.reference import ReferencePython  # type: ignore[import-not-found]
    from adapters.vigil import Vigil  # type: ignore[import-not-found]

    wl = workload.generate(n_requests=max(WARMUP + n_requests, 1_000))
    adapter = Vigil()
    adapter.load(wl)
    reference = ReferencePython()
    reference.load(wl)
    for q in wl.requests[:WARMUP]:
        adapter.decide(q)
    return adapter, reference, wl.requests[WARMUP:]


def time_chunk(
    decide: Callable[[Any], Any],
    items: list[Any],
    out: list[int],
    *,
    gc_on: bool = False,
    after: Callable[[], Any] | None = None,
    chunk_p99: list[int] | None = None,
) -> int:
    """Time ``decide`` on each item, appending the ns of each call to ``out`` (and the chunk's own
    p99 to ``chunk_p99``); returns the chunk's wall ns, ``after()`` included (work left pending
    by the calls)."""
    pc = time.perf_counter_ns
    gc.collect()
    if not gc_on:
        gc.disable()
    start = len(out)
    try:
        w0 = pc()
        for q in items:
            t0 = pc()
            decide(q)
            out.append(pc() - t0)
        if after is not None:
            after()
        return pc() - w0
    finally:
        gc.enable()
        if chunk_p99 is not None and len(out) > start:
            mine = sorted(out[start:])
            chunk_p99.append(mine[min(len(mine) - 1, int(len(mine) * 0.99))])


def summary(
    lat: dict[str, list[int]],
    wall: dict[str, int] | None = None,
    chunk_p99: dict[str, list[int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per name: sample count, p50/p90/p99/p99.9 and mean in µs, wall µs per call when ``wall``
    is given, and p50/p99 as multiples of the ``REFERENCE`` entry's. With ``chunk_p99``, also the
    median over chunks of each chunk's p99 and its multiple of the reference's: a burst of machine
    noise (this VM has them, lasting tens of ms) lands in a chunk or two and moves the pooled p99
    of whichever variant ran then; the median of the chunks' p99 does not follow it."""

    def pct(v: list[int], q: float) -> float:
        return v[min(len(v) - 1, int(len(v) * q))] / 1000

    for v in lat.values():
        v.sort()
    ref50, ref99 = pct(lat[REFERENCE], 0.5), pct(lat[REFERENCE], 0.99)
    result: dict[str, dict[str, Any]] = {}
    for name, x in lat.items():
        row: dict[str, Any] = {
            "n": len(x),
            "p50_us": pct(x, 0.5),
            "p90_us": pct(x, 0.9),
            "p99_us": pct(x, 0.99),
            "p999_us": pct(x, 0.999),
            "mean_us": round(sum(x) / len(x) / 1000, 2),
        }
        if wall is not None:
            row["wall_us_per_decision"] = round(wall[name] / len(x) / 1000, 2)
        row["p50_x_reference"] = round(row["p50_us"] / ref50, 3)
        row["p99_x_reference"] = round(row["p99_us"] / ref99, 3)
        if chunk_p99 is not None and chunk_p99.get(name) and chunk_p99.get(REFERENCE):
            mine, ref = sorted(chunk_p99[name]), sorted(chunk_p99[REFERENCE])
            row["chunk_p99_median_us"] = mine[len(mine) // 2] / 1000
            row["chunk_p99_median_x_reference"] = round(mine[len(mine) // 2] / ref[len(ref) // 2], 3)
        result[name] = row
    return result
