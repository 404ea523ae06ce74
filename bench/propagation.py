"""How long a quarantine (and its lift) made by one vigil process takes to be enforced by another,
on the real PostgreSQL store and Redis (``[store] backend = "postgres"``, ``[cluster] redis``).

    .venv/bin/python bench/propagation.py [--trials 1000] [--pg URL] [--redis URL] [--poll-ms 0.5]

Process A is this one (an ``Engine``); process B is a child (another ``Engine`` on the same
workspace, schema and channel). Each trial: B is told to watch, then A quarantines an identity
(``Engine.desk.add``: store write + change log + announcement) and B calls
``Engine.decide`` for that identity every ``--poll-ms`` until it is denied ``quarantined``; the time
from just before A's call to B's first deny (both read ``time.monotonic``, one clock for both
processes) is one sample. Then the same for the lift (until B allows again), a suspension of the
identity in the registry (until B denies ``identity_inactive``) and its resumption; then
``--reloads`` reloads of A (until B has reloaded too). Prints p50/p90/p99/max (ms) of each. Behaviour is ``off`` and the audit sink ``none``, so only propagation is measured.
A fresh PostgreSQL schema and Redis channel are made for the run and the schema is dropped after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

import vigil

WHO = ("Agent", "a0")
REQUEST = {
    "subject": {"type": "Agent", "id": "a0"},
    "action": {"name": "read"},
    "resource": {"type": "Database", "id": "db"},
}

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import vigil
    ws, poll = sys.argv[1], float(sys.argv[2]) / 1000
    request = json.loads(sys.argv[3])
    e = vigil.Engine.from_workspace(ws)
    while e.cluster is None or not e.cluster.connected:
        time.sleep(0.01)
    print("ready", flush=True)
    for line in sys.stdin:
        word, _, arg = line.strip().partition(" ")
        if word == "reloads":
            while e.reloads < int(arg):
                time.sleep(poll)
        else:
            want = word == "allow"
            while e.decide(request).allowed is not want:
                time.sleep(poll)
        print(repr(time.monotonic()), flush=True)
    e.close()
    """
)


def workspace(root: Path, pg: str, schema: str, redis_url: str, channel: str) -> Path:
    (root / "policies").mkdir(parents=True)
    (root / "entities").mkdir()
    (root / "policies" / "p.cedar").write_text("permit (principal, action, resource);\n")
    entities = [
        {"uid": {"type": "Agent", "id": "a0"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Database", "id": "db"}, "attrs": {}, "parents": []},
    ]
    (root / "entities" / "e.json").write_text(json.dumps(entities))
    (root / "vigil.toml").write_text(
        '[behaviour]\nmode = "off"\n\n'
        f'[store]\nbackend = "postgres"\nurl = "{pg}"\nschema = "{schema}"\n\n'
        f'[cluster]\nredis = "{redis_url}"\nchannel = "{channel}"\n\n'
        '[audit]\nsink = "none"\n'
    )
    return root


def summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return (
        f"{name:<11} n={len(ms):>5}  p50 {q[49]:6.2f} ms  p90 {q[89]:6.2f} ms  "
        f"p99 {q[98]:6.2f} ms  max {ms[-1]:6.2f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--poll-ms", type=float, default=0.5)
    ap.add_argument("--reloads", type=int, default=50)
    args = ap.parse_args()
    schema = f"vigil_bench_{uuid.uuid4().hex[:10]}"
    channel = schema
    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace(Path(tmp) / "ws", args.pg, schema, args.redis, channel)
        a = vigil.Engine.from_workspace(ws)
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(ws), str(args.poll_ms), json.dumps(REQUEST)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        stdin, stdout = child.stdin, child.stdout
        try:
            assert child.stdout.readline().strip() == "ready"
            while a.cluster is None or not a.cluster.connected:
                time.sleep(0.01)
            samples: dict[str, list[float]] = {k: [] for k in ("quarantine", "lift", "suspend", "resume")}

            def trial(command: str, change: Callable[[], object], out: list[float]) -> None:
                stdin.write(command + "\n")
                stdin.flush()
                t0 = time.monotonic()
                change()
                out.append(float(stdout.readline()) - t0)

            a.identities.add(WHO, owner="bench@example.com", purpose="propagation bench", by="bench")
            for _ in range(args.trials):
                trial(
                    "deny", lambda: a.desk.add(WHO, by="bench", reason="b"), samples["quarantine"]
                )
                trial("allow", lambda: a.desk.lift(WHO, by="bench"), samples["lift"])
                trial("deny", lambda: a.identities.suspend(WHO, by="bench", reason="b"), samples["suspend"])
                trial("allow", lambda: a.identities.resume(WHO, by="bench"), samples["resume"])
            reloads: list[float] = []
            for n in range(1, args.reloads + 1):
                trial(f"reloads {n}", lambda: a.reload(by="bench"), reloads)
            print(
                f"propagation over PostgreSQL + Redis (loopback), {args.trials} trials each, "
                f"B polls every {args.poll_ms} ms"
            )
            for name, values in samples.items():
                print(summary(name, values))
            print(summary("reload", reloads))
            print(f"A cluster: {a.cluster.status()}")
        finally:
            child.stdin.close()
            child.wait(10)
            a.close()
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
