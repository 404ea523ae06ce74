"""What audit durability and the hash chain cost a decision, and what ``batched`` loses on kill -9.

    .venv/bin/python bench/audit_durability.py [--decisions 20000] [--sync-decisions 2000] [--threads 4]

On a copy of ``examples/authzen-todo`` (one allowed request, repeated), ``Engine.decide`` with the
workspace's ``[audit]`` sink in four configurations: durability ``batched``/``sync`` x ``chain``
on/off (checkpoints every 1,000 events when the chain is on). ``batched`` runs on one thread;
``sync`` on one thread and on ``--threads`` threads (one fsync serves every decision waiting: group
commit). Prints decisions/s and p50/p99 latency of ``decide`` (µs).

Then the loss window of ``batched``: a child process decides in a loop on one thread, printing
each answered decision's id, and is killed with SIGKILL after a second; the answered decisions
missing from the log are counted, and the span between the first missing and the last answered
one is printed (about the flush interval, 200 ms by default).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import orjson

from vigil.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
ONE = {
    "subject": {"type": "user", "id": RICK},
    "action": {"name": "can_create_todo"},
    "resource": {"type": "todo", "id": "t"},
}


def _workspace(root: Path, audit: str) -> Path:
    ws = root / "ws"
    shutil.rmtree(ws, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / "authzen-todo", ws, ignore=shutil.ignore_patterns(".vigil"))
    # behaviour off: the audit step is what varies
    (ws / "vigil.toml").write_text(f'[behaviour]\nmode = "off"\n[audit]\n{audit}\n')
    return ws


def run(root: Path, audit: str, n: int, threads: int) -> tuple[float, float, float]:
    """(decisions/s, p50 µs, p99 µs) of ``n`` decisions over ``threads`` threads."""
    engine = Engine.from_workspace(_workspace(root, audit))
    for _ in range(200):
        engine.decide(ONE)
    per = n // threads
    times: list[list[int]] = [[] for _ in range(threads)]

    def work(out: list[int]) -> None:
        clock = time.perf_counter_ns
        for _ in range(per):
            t0 = clock()
            engine.decide(ONE)
            out.append(clock() - t0)

    workers = [threading.Thread(target=work, args=(times[i],)) for i in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    engine.close()
    all_times = sorted(t for ts in times for t in ts)
    p50 = statistics.median(all_times) / 1000
    p99 = all_times[int(len(all_times) * 0.99)] / 1000
    return per * threads / wall, p50, p99


_CHILD = textwrap.dedent(
    """
    import sys, time
    from vigil.engine import Engine
    engine = Engine.from_workspace(sys.argv[1])
    one = {"subject": {"type": "user", "id": sys.argv[2]}, "action": {"name": "can_create_todo"},
           "resource": {"type": "todo", "id": "t"}}
    while True:
        r = engine.decide(one)
        sys.stdout.write(f"{r.id} {time.monotonic()}\\n")
        sys.stdout.flush()
    """
)


def loss_window(root: Path) -> tuple[int, int, float]:
    """(answered, answered but not in the log, seconds from the first missing to the last answered)."""
    ws = _workspace(root, 'durability = "batched"')
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(ws), RICK], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    answered: list[tuple[str, float]] = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        line = proc.stdout.readline().split()
        answered.append((line[0].decode(), float(line[1])))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    logged = {orjson.loads(x).get("id") for x in (ws / ".vigil" / "audit.jsonl").read_bytes().splitlines()}
    missing = [(rid, t) for rid, t in answered if rid not in logged]
    span = answered[-1][1] - missing[0][1] if missing else 0.0
    return len(answered), len(missing), span


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=20_000)
    ap.add_argument("--sync-decisions", type=int, default=2_000)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        print(f"{'configuration':38} {'decisions/s':>12} {'p50 µs':>9} {'p99 µs':>9}")
        rows = [
            ("batched, chain off", 'durability = "batched"\nchain = false', args.decisions, 1),
            ("batched, chain on", 'durability = "batched"\nchain = true', args.decisions, 1),
            ("sync, chain off, 1 thread", 'durability = "sync"\nchain = false', args.sync_decisions, 1),
            ("sync, chain on, 1 thread", 'durability = "sync"\nchain = true', args.sync_decisions, 1),
            (
                f"sync, chain on, {args.threads} threads",
                'durability = "sync"\nchain = true',
                args.sync_decisions,
                args.threads,
            ),
        ]
        for name, audit, n, threads in rows:
            rate, p50, p99 = run(root, audit, n, threads)
            print(f"{name:38} {rate:12,.0f} {p50:9.1f} {p99:9.1f}")
        answered, missing, span = loss_window(root)
        print(
            f"batched, SIGKILL after 1.5 s: {answered} answered, {missing} not in the log "
            f"(the last {span * 1000:.0f} ms of answers)"
        )


if __name__ == "__main__":
    main()
