"""Instructions per decision (callgrind), steady state: a number that other work on the machine
cannot move, for comparing two builds of the decision path.

    .venv/bin/python bench/callgrind_decide.py [--shared ../shared] [--warmup 20000] [--count 5000]

Runs itself twice under ``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``), once deciding only the
``--warmup`` requests and once deciding ``--count`` more, collecting only inside ``Engine.decide``
of the compiled build (``--toggle-collect``: the profile-snapshot thread and the loading do not
count), and prints the difference divided by ``--count`` as JSON. The engine is the shared
benchmark's workspace (its Cedar policies and entities, ``[behaviour] mode = "shadow"``) with the
audit sink off, a memory store, and every request decided at a fixed time (``now``: 50 ms apart
from a fixed start), so two runs of one build count the same instructions. ``--audit`` gives the
engine a JSON-lines sink (batched, chained, signed; ``[audit] batch`` 32): what ``emit`` costs the
deciding thread is then counted too. Its writer thread never runs during the run (a flush
interval and a buffer larger than the run): otherwise it contends for the buffer at times that
differ from run to run (measured: +-1,000 instructions a decision). What still moves between runs
of one build with ``--audit`` (measured: up to ~300 instructions a decision) is in the
authorizer's caches, not in the sink: for a change to ``emit``, compare its inclusive cost in the
two profiles (``callgrind_annotate --inclusive=yes``).

``--run`` (what the two valgrind runs execute): generate ``--warmup`` requests, build the engine,
decide the first ``--decide`` of them, exit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

TOGGLE = "__pyx_pw_5vigil_6engine_6Engine_??decide"  # the compiled Engine.decide (its Python entry)
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def run(shared: str, n: int, decide_n: int, audit: bool = False) -> None:
    sys.path.insert(0, str(Path(shared) / "bench"))
    import workload  # type: ignore[import-not-found]
    from peers.translate import CEDAR_TYPE, cedar_entities  # type: ignore[import-not-found]

    import vigil

    wl = workload.generate(n_requests=n)
    with tempfile.TemporaryDirectory(prefix="vigil-callgrind-") as d:
        ws = Path(d)
        (ws / "policies").mkdir()
        (ws / "entities").mkdir()
        (ws / "vigil.toml").write_text(
            '[behaviour]\nmode = "shadow"\n\n[store]\nbackend = "memory"\n\n[audit]\nsink = "none"\n'
        )
        peers = Path(shared) / "bench" / "peers"
        (ws / "policies" / "bench.cedar").write_text((peers / "cedar" / "policies.cedar").read_text())
        (ws / "entities" / "bench.json").write_text(json.dumps(cedar_entities(wl)))
        sink = None
        if audit:
            from vigil.audit.sink import JsonlSink

            sink = JsonlSink(
                ws / "audit.jsonl", capacity=4 * n, flush_interval_s=1e6, signing_key=ws / "audit.key"
            )
        engine = vigil.Engine.from_workspace(ws, clock=START.timestamp, audit=sink)
        rtype = {rid: CEDAR_TYPE[r["type"]] for rid, r in wl.resources.items()}
        requests: list[tuple[dict[str, Any], datetime]] = []
        for i, q in enumerate(wl.requests[:n]):
            ctx = q["context"]
            requests.append(
                (
                    {
                        "subject": {"type": "Agent", "id": q["principal"]},
                        "action": {"name": q["action"]},
                        "resource": {"type": rtype[q["resource"]], "id": q["resource"]},
                        "context": {
                            "hour": ctx["hour"],
                            "risk": ctx["risk"],
                            "approved": ctx["approved"],
                            "ip": {"__extn": {"fn": "ip", "arg": ctx["ip"]}},
                        },
                    },
                    START + timedelta(milliseconds=50 * i),
                )
            )
        decide = engine.decide
        for req, now in requests[:decide_n]:
            decide(req, now=now)
        engine.close()


def callgrind(shared: str, n: int, decide_n: int, audit: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="vigil-cg-") as d:
        out = Path(d) / "callgrind.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            f"--toggle-collect={TOGGLE}",
            sys.executable,
            __file__,
            "--run",
            "--shared",
            shared,
            "--warmup",
            str(n),
            "--count",
            "0",
            "--decide",
            str(decide_n),
            *(["--audit"] if audit else []),
        ]
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True)
        m = re.search(r"^(?:summary|totals):\s*(\d+)", out.read_text(), re.M)
        if m is None:
            raise SystemExit(f"no totals in {out}")
        return int(m.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--warmup", type=int, default=20_000)
    ap.add_argument("--count", type=int, default=5_000)
    ap.add_argument("--audit", action="store_true", help="with the JSON-lines audit sink on")
    ap.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--decide", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run:
        run(args.shared, args.warmup, args.decide, args.audit)
        return 0
    n = args.warmup + args.count
    base = callgrind(args.shared, n, args.warmup, args.audit)
    total = callgrind(args.shared, n, n, args.audit)
    print(
        json.dumps(
            {
                "audit": args.audit,
                "warmup": args.warmup,
                "count": args.count,
                "instructions_warmup": base,
                "instructions_total": total,
                "instructions_per_decision": round((total - base) / args.count, 1),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
