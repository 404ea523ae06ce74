"""HTTP load benchmark of ``vigil serve`` on loopback, with wrk (Debian's package) as the client.

Usage (from the repository root)::

    .venv/bin/python bench/http/run_bench.py [--workspace examples/authzen-todo] [--seconds 10]
        [--connections 16] [--rounds 2] [--out bench/results/http.json]

Starts the real server (``vigil serve --echo-endpoint``, API key auth on, audit to a JSON-lines file
in a temporary copy of the workspace, access log on) in its own process, then, alternating so both
see the same machine state:

1. ``echo``: ``POST /bench/echo`` with an evaluation body -- the stack's floor (routing, auth,
   JSON parse and serialize; no decision);
2. ``evaluation``: ``POST /access/v1/evaluation``, cycling through the todo interop requests;
3. ``evaluations``: ``POST /access/v1/evaluations`` with 100 items a request;
4. ``latency``: single evaluations at half the measured evaluation throughput, for p50/p99 under a
   moderate load. wrk paces each connection with ``delay()`` (whole milliseconds) *after* each
   response, so a connection's period is the delay plus the response time: the number of
   connections is calibrated in short runs until the achieved rate is within 10% of the target
   (the result records both rates).

wrk runs with one thread (one core for the client, one for the server). Every run is bounded by
``--seconds``. Results are printed as a Markdown table and written as JSON.
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

ROOT = Path(__file__).resolve().parents[2]
LUA = Path(__file__).with_name("vigil.lua")
VECTORS = (
    ROOT.parent / "shared" / "conformance" / "authzen" / "todo" / "decisions-authorization-api-1_0-01.json"
)


def _bodies(tmp: Path) -> tuple[Path, Path]:
    cases = json.loads(VECTORS.read_text())["evaluation"]
    singles = [json.dumps(c["request"], separators=(",", ":")) for c in cases]
    single_file = tmp / "single.txt"
    single_file.write_text("\n".join(singles) + "\n")
    items = [c["request"] for c in cases]
    batch = {"evaluations": [items[i % len(items)] for i in range(100)]}
    batch_file = tmp / "batch.txt"
    batch_file.write_text(json.dumps(batch, separators=(",", ":")) + "\n")
    return single_file, batch_file


def _start(workspace: Path, key: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = dict(os.environ, VIGIL_API_KEYS=key)
    err = log.open("wb")
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "vigil"),
            "serve",
            "--workspace",
            str(workspace),
            "--port",
            "0",
            "--echo-endpoint",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if '"listening"' in line:
                port = json.loads(line)["port"]
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                return proc, int(port)
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(
    port: int,
    path: str,
    bodies: Path,
    key: str,
    seconds: int,
    conns: int,
    rate: int,
    out: Path,
    pid: int,
    delay_ms: int = -1,
) -> dict[str, Any]:
    env = dict(
        os.environ,
        VIGIL_BENCH_KEY=key,
        VIGIL_BENCH_BODIES=str(bodies),
        VIGIL_BENCH_PATH=path,
        VIGIL_BENCH_RATE=str(rate),
        VIGIL_BENCH_CONNECTIONS=str(conns),
        VIGIL_BENCH_OUT=str(out),
        VIGIL_BENCH_DELAY_MS=str(delay_ms),
    )
    cmd = [
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}{path}",
    ]
    cpu0 = _cpu_seconds(pid)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, timeout=seconds + 30)
    cpu = _cpu_seconds(pid) - cpu0
    data: dict[str, Any] = json.loads(out.read_text())
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["connections"] = conns
    # Server CPU per request: independent of what else the machine runs (this one is shared).
    data["server_cpu_us_per_request"] = cpu * 1e6 / max(1, data["requests"])
    data["server_cpu_share"] = cpu / (data["duration_us"] / 1e6)
    return data


PACE_MS = 2  # each connection's pause after a response in the paced run


def _paced_connections(port: int, bodies: Path, key: str, target: int, out: Path, pid: int) -> int:
    """Connections that, each pausing ``PACE_MS`` after every response, send about ``target``
    requests/s: start from the pause alone, then correct by the achieved rate of 2-second runs
    (at most six) until it is within 10% of the target; else the closest seen."""
    conns = max(1, round(target * PACE_MS / 1000))
    best = (float("inf"), conns)
    for _ in range(6):
        got = _wrk(port, "/access/v1/evaluation", bodies, key, 2, conns, target, out, pid, PACE_MS)["rps"]
        best = min(best, (abs(got - target), conns))
        if abs(got - target) <= 0.1 * target:
            return conns
        conns = max(1, min(1024, round(conns * target / max(got, 1.0))))
    return best[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default=str(ROOT / "examples" / "authzen-todo"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "http.json"))
    ap.add_argument(
        "--audit",
        choices=("jsonl", "none"),
        default="jsonl",
        help="jsonl: the default audit log (a JSON-lines file, written by a thread); none: [audit] sink = none",
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    key = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as t:
        tmp = Path(t)
        ws = tmp / "workspace"
        shutil.copytree(args.workspace, ws, ignore=shutil.ignore_patterns(".vigil"))
        if args.audit == "none":
            with (ws / "vigil.toml").open("a") as f:
                f.write('\n[audit]\nsink = "none"\n')
        single, batch = _bodies(tmp)
        proc, port = _start(ws, key, tmp / "server.log")
        try:
            runs: dict[str, list[dict[str, Any]]] = {
                "echo": [],
                "evaluation": [],
                "evaluations": [],
                "latency": [],
            }
            c, s = args.connections, args.seconds
            _wrk(port, "/access/v1/evaluation", single, key, 2, c, 0, tmp / "warm.json", proc.pid)  # warm-up
            for _ in range(args.rounds):
                runs["echo"].append(_wrk(port, "/bench/echo", single, key, s, c, 0, tmp / "r.json", proc.pid))
                runs["evaluation"].append(
                    _wrk(port, "/access/v1/evaluation", single, key, s, c, 0, tmp / "r.json", proc.pid)
                )
            for _ in range(args.rounds):
                runs["evaluations"].append(
                    _wrk(port, "/access/v1/evaluations", batch, key, s, c, 0, tmp / "r.json", proc.pid)
                )
            best_eval = max(r["rps"] for r in runs["evaluation"])
            half = int(best_eval / 2)
            paced = _paced_connections(port, single, key, half, tmp / "r.json", proc.pid)
            runs["latency"].append(
                _wrk(
                    port,
                    "/access/v1/evaluation",
                    single,
                    key,
                    s,
                    paced,
                    half,
                    tmp / "r.json",
                    proc.pid,
                    PACE_MS,
                )
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        audit_file = ws / ".vigil" / "audit.jsonl"
        audit_lines = sum(1 for _ in audit_file.open("rb")) if audit_file.exists() else 0
    echo = max(r["rps"] for r in runs["echo"])
    ev = max(r["rps"] for r in runs["evaluation"])
    batch_rps = max(r["rps"] for r in runs["evaluations"])
    lat = runs["latency"][0]

    def cpu(name: str) -> float:
        return float(min(r["server_cpu_us_per_request"] for r in runs[name]))

    summary = {
        "server_cpu_us_echo": round(cpu("echo"), 1),
        "server_cpu_us_evaluation": round(cpu("evaluation"), 1),
        "server_cpu_us_per_decision_in_batches": round(cpu("evaluations") / 100, 1),
        "cpu_bound_echo_rps": round(1e6 / cpu("echo")),
        "cpu_bound_evaluation_rps": round(1e6 / cpu("evaluation")),
        "cpu_bound_evaluation_vs_echo": round(cpu("echo") / cpu("evaluation"), 3),
        "cpu_bound_batch_decisions_per_s": round(1e8 / cpu("evaluations")),
        "echo_rps": round(echo),
        "evaluation_rps": round(ev),
        "evaluation_vs_echo": round(ev / echo, 3),
        "evaluation_vs_echo_per_round": [
            round(e["rps"] / f["rps"], 3) for e, f in zip(runs["evaluation"], runs["echo"], strict=True)
        ],
        "evaluation_p50_ms_full_load": min(r["p50_us"] for r in runs["evaluation"]) / 1000,
        "evaluation_p99_ms_full_load": min(r["p99_us"] for r in runs["evaluation"]) / 1000,
        "half_rate_target_rps": int(ev / 2),
        "half_rate_achieved_rps": round(lat["rps"]),
        "half_rate_connections": lat["connections"],
        "half_rate_p50_ms": lat["p50_us"] / 1000,
        "half_rate_p99_ms": lat["p99_us"] / 1000,
        "evaluations_batches_per_s": round(batch_rps, 1),
        "evaluations_decisions_per_s": round(batch_rps * 100),
        "errors": sum(r["errors_status"] + r["errors_socket"] for rs in runs.values() for r in rs),
        "audit_events_written": audit_lines,
    }
    result = {
        "command": " ".join([".venv/bin/python", "bench/http/run_bench.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
        "settings": {
            "seconds": args.seconds,
            "connections": args.connections,
            "rounds": args.rounds,
            "wrk_threads": 1,
        },
        "summary": summary,
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| measure | value |\n|---|---|")
    for k, v in summary.items():
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
