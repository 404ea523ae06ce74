"""Behaviour profiles at scale: bytes per identity, and decision latency at 1k vs 100k identities.

    .venv/bin/python bench/behaviour_profiles.py [--identities 100000] [--requests 20000] [--peers] [--out bench/results/behaviour.json]

1. Realistic histories: 240 identities of three archetypes (office-hours agents, always-on
   services, nightly batch jobs) each live 21 days of their own traffic (stable addresses,
   a handful of tables and actions, their own hours, some drift) through the behaviour model,
   which learns their profiles.
2. Memory: N profiles (those 240 histories, each restored N/240 times from its snapshot, so every
   profile is its own set of objects, as after a restart) are loaded into a ProfileBook; the
   Python heap they take (tracemalloc) divided by N is the bytes per identity. The compressed
   snapshot size is what the SQLite store keeps per identity.
3. Latency: two engines on the same workspace (permit-all, behaviour enforced), one with 1,000
   identities' profiles, one with N, decide the same kind of requests (an identity's usual
   request, a week or more after its history, at its usual hour, in bursts of 5 a minute apart:
   a busy fleet's steady state) in interleaved rounds; p50/p90 of ``Engine.decide`` are reported
   for both, and the behaviour step's p50 as the difference to rounds with the model switched off
   (as ``[behaviour] mode = "off"``). Flat means the step is O(1) in the number of identities; what grows
   with N is the cost of touching memory that is no longer in the CPU caches.

``--peers``: every identity has a ``team`` attribute (12 teams), so each belongs to a peer group
whose shared profile its learnable requests also teach (issue 17); without it no identity has one.

Prints one JSON object (and writes it with --out).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import vigil
from vigil.audit import NullSink
from vigil.behaviour import BehaviourModel, Profile, ProfileBook
from vigil.store import MemoryStore
from vigil.workspace.settings import BehaviourSettings

T0 = datetime(2026, 10, 5, tzinfo=UTC)
ARCHETYPES = ("office", "service", "batch")
HISTORIES = 240
DAYS = 21
BURST = 5


def history(
    k: int, rng: random.Random
) -> tuple[list[tuple[str, str, str, dict[str, Any], float]], dict[str, Any]]:
    """One identity's 21 days: (action, resource type, resource, context, epoch) requests."""
    kind = ARCHETYPES[k % 3]
    team = k % 12
    ips = [f"10.{team}.{k % 250}.{rng.randrange(2, 250)}" for _ in range(rng.randint(1, 4))]
    tables = [f"t{team}-{i}" for i in rng.sample(range(40), rng.randint(3, 12))]
    actions = rng.sample(["read", "list", "write", "invoke"], rng.randint(1, 3))
    out = []
    for day in range(DAYS):
        base = T0 + timedelta(days=day)
        if kind == "office":
            if base.weekday() >= 5:
                continue
            hours = [rng.uniform(8, 18) for _ in range(rng.randint(10, 40))]
        elif kind == "service":
            hours = [rng.uniform(0, 24) for _ in range(rng.randint(40, 120))]
        else:
            start = 1 + rng.random()
            hours = [start + i / 120 for i in range(rng.randint(30, 80))]
        for h in sorted(hours):
            t = base + timedelta(hours=h)
            table = rng.choice(tables) if rng.random() > 0.01 else f"t{team}-new-{day}"
            ctx = {"ip": rng.choice(ips), "region": "eu-west-1", "user_agent": "boto3/1.34.1"}
            out.append((rng.choice(actions), "Database", table, ctx, t.timestamp()))
    usual = {"ip": ips[0], "action": actions[0], "table": tables[0], "kind": kind}
    return out, usual


def learn_histories(model: BehaviourModel) -> tuple[list[bytes], list[dict[str, Any]]]:
    rng = random.Random(7)
    blobs, usual = [], []
    for k in range(HISTORIES):
        events, u = history(k, rng)
        p: Profile | None = None
        for action, rtype, res, ctx, t in events:
            _a, f = model.assess(p, ("Action", action), (rtype, res), ctx, t, True)
            if f is not None:
                if p is None:
                    p = Profile(f.t)
                model.learn(p, f, True, True)
        assert p is not None
        blobs.append(p.to_blob())
        u["last"] = events[-1][4]
        usual.append(u)
    return blobs, usual


def heap_per_identity(blobs: list[bytes], n: int) -> dict[str, float]:
    store = MemoryStore()
    store.save_profiles((("Agent", f"id-{i}"), blobs[i % len(blobs)]) for i in range(n))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    book = ProfileBook(store)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(book) == n
    per = (after - before) / n
    del book
    return {
        "identities": n,
        "heap_bytes_per_identity": round(per),
        "snapshot_bytes_mean": round(statistics.mean(len(b) for b in blobs)),
    }


PEERS = False  # --peers: every identity has a team (12 teams), so peer groups are live


def workspace(root: Path, n: int) -> Path:
    (root / "policies").mkdir(parents=True)
    (root / "entities").mkdir()
    (root / "policies" / "p.cedar").write_text('@id("permit-all")\npermit (principal, action, resource);\n')
    ents = [
        {
            "uid": {"type": "Agent", "id": f"id-{i}"},
            "attrs": {"team": f"t{i % 12}"} if PEERS else {},
            "parents": [],
        }
        for i in range(n)
    ]
    (root / "entities" / "e.json").write_text(json.dumps(ents))
    (root / "vigil.toml").write_text(
        '[behaviour]\nmode = "enforce"\n[store]\nbackend = "memory"\n[audit]\nsink = "none"\n'
    )
    return root


def latency(blobs: list[bytes], usual: list[dict[str, Any]], n_big: int, requests: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="vigil-behaviour-bench-"))
    engines = {}
    for n in (1_000, n_big):
        store = MemoryStore()
        store.save_profiles((("Agent", f"id-{i}"), blobs[i % len(blobs)]) for i in range(n))
        engines[n] = vigil.Engine.from_workspace(workspace(tmp / f"ws{n}", n), audit=NullSink(), store=store)
    rng = random.Random(11)
    # The behaviour step's cost: the same engine with its model switched off (as
    # [behaviour] mode = "off" does) in alternate rounds; the compiled model cannot be patched.
    whole: dict[int, list[int]] = {n: [] for n in engines}
    without: dict[int, list[int]] = {n: [] for n in engines}
    pc = time.perf_counter_ns
    bursts: dict[int, int] = {}
    for rnd in range(40):
        order = list(engines) if rnd % 2 else list(reversed(engines))
        on = rnd % 4 < 2
        for n in order:
            e = engines[n]
            e._state.behaviour.off = not on
            out = whole[n] if on else without[n]
            for k in range(requests // 40):
                # an identity's usual request on a later day, at its usual hour, in short bursts
                # (a busy fleet's steady state: several requests per identity per hour)
                if k % BURST == 0:
                    i = rng.randrange(n)
                    u = usual[i % len(usual)]
                    bursts[i] = weeks = bursts.get(i, 0) + 1  # each burst on a later day
                    start = datetime.fromtimestamp(u["last"], UTC) + timedelta(days=6 + weeks)
                when = start + timedelta(seconds=60 * (k % BURST) + rng.randrange(30))
                req = {
                    "subject": {"type": "Agent", "id": f"id-{i}"},
                    "action": {"name": u["action"]},
                    "resource": {"type": "Database", "id": u["table"]},
                    "context": {
                        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "ip": u["ip"],
                        "region": "eu-west-1",
                        "user_agent": "boto3/1.34.2",
                    },
                }
                t0 = pc()
                e.decide(req, now=when)
                out.append(pc() - t0)
            e._state.behaviour.off = False

    def q(v: list[int], p: float) -> float:
        v = sorted(v)
        return round(v[int(p * (len(v) - 1))] / 1000, 2)

    return {
        str(n): {
            "decide_p50_us": q(whole[n], 0.5),
            "decide_p90_us": q(whole[n], 0.9),
            "decide_without_behaviour_p50_us": q(without[n], 0.5),
            "behaviour_step_p50_us": round(q(whole[n], 0.5) - q(without[n], 0.5), 2),
            "samples": len(whole[n]),
        }
        for n in engines
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--peers", action="store_true", help="identities have a team: peer groups live")
    args = ap.parse_args(argv)
    global PEERS
    PEERS = args.peers
    started = time.perf_counter()
    model = BehaviourModel(BehaviourSettings(mode="enforce"))
    blobs, usual = learn_histories(model)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "histories": HISTORIES,
        "days": DAYS,
        "peers": PEERS,
        "memory": [heap_per_identity(blobs, n) for n in (1_000, args.identities)],
        "latency": latency(blobs, usual, args.identities, args.requests),
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
