"""Instructions per decision (callgrind), steady state: a number that other work on the machine
cannot move, for comparing two builds of the decision path.

    .venv/bin/python bench/callgrind_decide.py [--shared ../shared] [--warmup 20000] [--count 5000]
                                               [--registry none|active|gated] [--no-gc]

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

``--registry``: ``none`` (the default) leaves the identity registry empty; ``active`` registers
every principal of the workload (no expiry, none inactive: the gate is one comparison, as with an
empty registry, over the same objects as ``gated``); ``gated`` registers every principal with an
expiry a year ahead and suspends one more identity (never a principal), so each decision pays the
gate's full price (the expiry comparison and the inactive-set lookup). ``gated`` minus ``active``
is that price; both differ from ``none`` by what thousands more live objects do to the garbage
collector's passes inside ``decide``.

``--no-gc``: the garbage collector is off while deciding, so the count is the decision code's own
(a full collection inside the measured window, or not, moves it by thousands of instructions a
decision: compare builds or variants with it).

``--sharing``: the behaviour model hands its request counts and learned values to an outbox
(as with ``[cluster] redis``, docs/deployment.md "Behaviour across processes"), and every 5
decisions (250 ms of this bench's clock) the batch is collected and taken in again as if another
process had sent the same counts, so each decision pays what sharing adds at its most: its
identity queued once a batch, and the other process's counts merged into its profile once a batch.
(Collecting and taking in run outside ``decide``, on the batch thread in a server: not counted.)

``--run`` (what the two valgrind runs execute): generate ``--warmup`` requests, build the engine,
decide the first ``--decide`` of them, exit.
"""

from __future__ import annotations

import argparse
import gc
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


def run(
    shared: str,
    n: int,
    decide_n: int,
    audit: bool = False,
    registry: str = "none",
    gc_off: bool = False,
    sharing: bool = False,
) -> None:
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
        if registry != "none":
            year = (START + timedelta(days=365)).isoformat() if registry == "gated" else None
            for pid in sorted({q["principal"] for q in wl.requests[:n]} | {"bench-suspended"}):
                engine.identities.add(
                    ("Agent", pid), owner="bench@example.com", purpose="bench", by="bench", expires=year
                )
            if registry == "gated":
                engine.identities.suspend(("Agent", "bench-suspended"), by="bench")
            gated = bool(engine.registry.inactive) and engine.registry.next_expiry < float("inf")
            assert gated == (registry == "gated")
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
        exchange = _sharing(engine) if sharing else None
        if gc_off:
            gc.collect()
            gc.disable()
        for i, (req, now) in enumerate(requests[:decide_n]):
            decide(req, now=now)
            if exchange is not None and i % 5 == 4:
                exchange()
        engine.close()


def _sharing(engine: Any) -> Any:
    """Attach an outbox to ``engine``'s behaviour model; returns the batch step (see --sharing)."""
    from vigil.behaviour.shared import Outbox, Pending, collect, take_rates

    outbox = Outbox()
    beh = engine._state.behaviour
    beh.rates_out = outbox.rates
    beh.learned_out = outbox.learned
    pending = Pending()

    def exchange() -> None:
        rates, _ = collect(outbox)
        take_rates(engine.profiles, beh, pending, rates)

    return exchange


def callgrind(
    shared: str,
    n: int,
    decide_n: int,
    audit: bool = False,
    registry: str = "none",
    gc_off: bool = False,
    sharing: bool = False,
) -> int:
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
            "--registry",
            registry,
            *(["--no-gc"] if gc_off else []),
            *(["--sharing"] if sharing else []),
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
    ap.add_argument("--registry", choices=("none", "active", "gated"), default="none", help="see above")
    ap.add_argument("--no-gc", action="store_true", help="the garbage collector off while deciding")
    ap.add_argument(
        "--sharing", action="store_true", help="with behaviour sharing's outbox and merges (see above)"
    )
    ap.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--decide", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run:
        run(args.shared, args.warmup, args.decide, args.audit, args.registry, args.no_gc, args.sharing)
        return 0
    n = args.warmup + args.count
    base = callgrind(args.shared, n, args.warmup, args.audit, args.registry, args.no_gc, args.sharing)
    total = callgrind(args.shared, n, n, args.audit, args.registry, args.no_gc, args.sharing)
    print(
        json.dumps(
            {
                "audit": args.audit,
                "warmup": args.warmup,
                "count": args.count,
                "registry": args.registry,
                "gc": not args.no_gc,
                "sharing": args.sharing,
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
