"""Choose the HTTP stack by measurement: the same JSON echo on four stacks, under wrk on loopback.

Usage (from the repository root)::

    .venv/bin/python bench/http/compare_stacks.py [--seconds 5] [--rounds 3] [--connections 16]

Stacks: uvicorn (httptools + uvloop) and granian (Rust, ASGI interface, one worker), each running
a bare ASGI callable and a Starlette app (``bench/http/stack_apps.py``). Rounds alternate the
stacks so each sees the same machine state; the best round of each is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE.parents[1] / ".venv" / "bin"
BODY = (
    '{"subject":{"type":"user","id":"CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"},'
    '"action":{"name":"can_read_todos"},"resource":{"type":"todo","id":"todo-1"}}'
)
STACKS = {
    "uvicorn+httptools+uvloop / raw ASGI": [
        "uvicorn",
        "stack_apps:raw",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ],
    "uvicorn+httptools+uvloop / Starlette": [
        "uvicorn",
        "stack_apps:starlette",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ],
    "granian (1 worker) / raw ASGI": ["granian", "--interface", "asgi", "stack_apps:raw"],
    "granian (1 worker) / Starlette": ["granian", "--interface", "asgi", "stack_apps:starlette"],
}


def _start(args: list[str], port: int) -> subprocess.Popen[bytes]:
    cmd = [str(VENV / args[0]), *args[1:], "--port", str(port)]
    cmd += ["--log-level", "warning"] + (["--no-access-log"] if args[0] == "uvicorn" else ["--no-ws"])
    proc = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/echo", data=b"{}", method="POST")
            urllib.request.urlopen(req, timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{args} did not start")


def _wrk(port: int, seconds: int, conns: int, bodies: Path, out: Path) -> dict[str, float]:
    env = dict(os.environ, VIGIL_BENCH_BODIES=str(bodies), VIGIL_BENCH_PATH="/echo", VIGIL_BENCH_OUT=str(out))
    subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{seconds}s",
            "-s",
            str(HERE / "vigil.lua"),
            f"http://127.0.0.1:{port}/echo",
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    data = json.loads(out.read_text())
    return {
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--port", type=int, default=18999)
    args = ap.parse_args()
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as t:
        bodies = Path(t) / "body.txt"
        bodies.write_text(BODY + "\n")
        for _ in range(args.rounds):
            for name, cmd in STACKS.items():
                proc = _start(cmd, args.port)
                try:
                    _wrk(args.port, 1, args.connections, bodies, Path(t) / "w.json")
                    got = _wrk(args.port, args.seconds, args.connections, bodies, Path(t) / "r.json")
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                if name not in best or got["rps"] > best[name]["rps"]:
                    best[name] = got
    print(f"loadavg {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus, python {sys.version.split()[0]}")
    print("| stack | requests/s | p50 ms | p99 ms |\n|---|---|---|---|")
    for name, r in best.items():
        print(f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
