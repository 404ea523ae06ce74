"""Evaluations/s of ``vigil serve --workers 2`` against ``--workers 1`` on loopback, with wrk.

Usage (from the repository root)::

    .venv/bin/python bench/http/workers.py [--workspace examples/authzen-todo] [--seconds 10]
        [--connections 16] [--rounds 3] [--workers 2] [--redis redis://127.0.0.1:6379/0]
        [--endpoints single,batch] [--out bench/results/http_workers.json]

Starts two servers on copies of the workspace (``[store]`` SQLite, the default; ``--redis``: with
``[cluster] redis`` on a channel of its own, so the behaviour batches of docs/deployment.md run
too), one with one worker and one with ``--workers``, then alternates ``POST
/access/v1/evaluation`` runs between them (wrk with one thread, ``--connections`` connections,
cycling through the todo interop requests, as bench/http/run_bench.py does) so both see the same
machine state; then the same with ``POST /access/v1/evaluations``, 100 evaluations a request
(``--endpoints``: which of the two). wrk shares this machine's cores with the servers: with one
evaluation a request it spends about as much CPU per request as a worker does, so two workers
cannot have two cores; a batch divides wrk's share by 100, and shows how the workers scale when the
client is not on their cores. Prints the best evaluations/s of each, their ratio, the ratio of each round, the
server CPU time per evaluation of each (all its processes: what other work on the machine does not
move, so the scaling the cores would allow is ``cores / cpu-per-evaluation``), and the machine's
load average (the machine may be shared: the load says how much).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import ROOT, _bodies, _cpu_seconds, _wrk

# endpoint -> (path, evaluations a request: run_bench._bodies writes batches of 100)
ENDPOINTS: dict[str, tuple[str, int]] = {
    "single": ("/access/v1/evaluation", 1),
    "batch": ("/access/v1/evaluations", 100),
}


def _start(workspace: Path, key: str, log: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    env = dict(os.environ, VIGIL_API_KEYS=key)
    argv = [str(ROOT / ".venv" / "bin" / "vigil"), "serve", "--workspace", str(workspace), "--port", "0"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = [x for x in log.read_text().splitlines() if '"listening"' in x]
        if len(lines) >= workers:
            port = int(json.loads(lines[0])["port"])
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return proc, port
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the supervisor and its workers)."""
    out = [pid]
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for c in children:
            out += _tree(int(c))
    return out


def _tree_cpu(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        try:
            total += _cpu_seconds(p)
        except OSError:  # a process that just ended
            continue
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default=str(ROOT / "examples" / "authzen-todo"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--redis", default="", help="a redis:// URL: run with [cluster] redis (behaviour shared)")
    ap.add_argument(
        "--endpoints", default="single,batch", help="single (one evaluation a request), batch (100)"
    )
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "http_workers.json"))
    args = ap.parse_args()
    endpoints = [e for e in args.endpoints.split(",") if e]
    if not endpoints or set(endpoints) - set(ENDPOINTS):
        raise SystemExit(f"--endpoints: a comma-separated list of {', '.join(ENDPOINTS)}")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    key = secrets.token_urlsafe(32)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as t:
        tmp = Path(t)
        single, batch = _bodies(tmp)
        bodies = {"single": single, "batch": batch}
        servers: dict[int, tuple[subprocess.Popen[bytes], int]] = {}
        try:
            for n in (1, args.workers):
                ws = tmp / f"ws{n}"
                shutil.copytree(args.workspace, ws, ignore=shutil.ignore_patterns(".vigil"))
                with (ws / "vigil.toml").open("a") as f:
                    f.write('\n[store]\nbackend = "sqlite"\n')
                    if args.redis:
                        f.write(
                            f'\n[cluster]\nredis = "{args.redis}"\nchannel = "bench_{secrets.token_hex(6)}"\n'
                        )
                servers[n] = _start(ws, key, tmp / f"server{n}.log", n)
            runs: dict[str, dict[int, list[dict[str, Any]]]] = {
                e: {1: [], args.workers: []} for e in endpoints
            }
            for endpoint in endpoints:
                path, per_request = ENDPOINTS[endpoint]
                for proc, port in servers.values():  # warm-up
                    _wrk(port, path, bodies[endpoint], key, 2, args.connections, 0, tmp / "w.json", proc.pid)
                for _ in range(args.rounds):
                    for n, (proc, port) in servers.items():
                        cpu0 = _tree_cpu(proc.pid)
                        run = _wrk(
                            port,
                            path,
                            bodies[endpoint],
                            key,
                            args.seconds,
                            args.connections,
                            0,
                            tmp / "r.json",
                            proc.pid,
                        )
                        run["evaluations_per_request"] = per_request
                        run["evaluations_per_s"] = run["rps"] * per_request
                        # every server process's CPU (the supervisor's _wrk measures alone is idle)
                        run["server_cpu_us_per_evaluation"] = (
                            (_tree_cpu(proc.pid) - cpu0) * 1e6 / max(1, run["requests"] * per_request)
                        )
                        runs[endpoint][n].append(run)
        finally:
            for proc, _ in servers.values():
                proc.send_signal(signal.SIGTERM)
            for proc, _ in servers.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    summary: dict[str, Any] = {}
    for endpoint, by_n in runs.items():
        one = max(r["evaluations_per_s"] for r in by_n[1])
        many = max(r["evaluations_per_s"] for r in by_n[args.workers])
        summary[endpoint] = {
            "evaluations_per_s_1_worker": round(one),
            f"evaluations_per_s_{args.workers}_workers": round(many),
            "ratio_best": round(many / one, 3),
            "ratio_per_round": [
                round(b["evaluations_per_s"] / a["evaluations_per_s"], 3)
                for a, b in zip(by_n[1], by_n[args.workers], strict=True)
            ],
            "server_cpu_us_per_evaluation_1_worker": round(
                min(r["server_cpu_us_per_evaluation"] for r in by_n[1]), 1
            ),
            f"server_cpu_us_per_evaluation_{args.workers}_workers": round(
                min(r["server_cpu_us_per_evaluation"] for r in by_n[args.workers]), 1
            ),
            "errors": sum(r["errors_status"] + r["errors_socket"] for rs in by_n.values() for r in rs),
        }
    result = {
        "command": " ".join([".venv/bin/python", "bench/http/workers.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "loadavg_at_start": load0, "loadavg_at_end": os.getloadavg()},
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "summary": summary,
        "runs": {str(k): v for k, v in runs.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for endpoint, figures in summary.items():
        print(
            f"\n{endpoint} ({ENDPOINTS[endpoint][1]} evaluation(s) a request)\n| measure | value |\n|---|---|"
        )
        for k, v in figures.items():
            print(f"| {k} | {v} |")
    print(f"load average: start {load0}, end {os.getloadavg()}")


if __name__ == "__main__":
    main()
