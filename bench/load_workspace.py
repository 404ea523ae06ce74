"""Measure loading the shared benchmark's workspace: wall time and memory.

    .venv/bin/python bench/load_workspace.py [--shared ../shared]

Builds the same workspace the shared harness's vigil adapter builds (200 Cedar policies,
1,000 identities, 10,000 resources), then times ``vigil.Engine.from_workspace`` in a fresh
child process and reports its wall time, the Python heap it allocated (tracemalloc) and the
process's peak RSS. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, tracemalloc
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import vigil
from vigil.audit import NullSink
tracemalloc.start()
t0 = time.perf_counter()
engine = vigil.Engine.from_workspace(sys.argv[1], audit=NullSink())
elapsed = time.perf_counter() - t0
current, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t1 = time.perf_counter()
engine2 = vigil.Engine.from_workspace(sys.argv[1], audit=NullSink())
untraced = time.perf_counter() - t1
print(json.dumps({
    "load_s_traced": round(elapsed, 3),
    "load_s": round(untraced, 3),
    "heap_retained_mb": round(current / 2**20, 1),
    "heap_peak_mb": round(peak / 2**20, 1),
    "rss_before_mb": round(rss0 / 1024, 1),
    "rss_peak_mb": round(rss1 / 1024, 1),
    "policies": engine.status()["policies"],
    "entities": engine.status()["entities"],
}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    args = ap.parse_args()
    bench = Path(args.shared) / "bench"
    sys.path.insert(0, str(bench))
    import workload  # type: ignore[import-not-found]
    from peers.translate import cedar_entities  # type: ignore[import-not-found]

    wl = workload.generate(n_requests=0)
    with tempfile.TemporaryDirectory(prefix="vigil-load-") as tmp:
        ws = Path(tmp)
        (ws / "policies").mkdir()
        (ws / "entities").mkdir()
        (ws / "vigil.toml").write_text('[behaviour]\nmode = "shadow"\n')
        (ws / "policies" / "bench.cedar").write_text(
            (bench / "peers" / "cedar" / "policies.cedar").read_text()
        )
        (ws / "entities" / "bench.json").write_text(json.dumps(cedar_entities(wl)))
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(ws)], capture_output=True, text=True, check=True
        )
        print(out.stdout.strip())


if __name__ == "__main__":
    main()
