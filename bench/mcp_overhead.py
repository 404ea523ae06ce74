"""What the MCP gateway adds to a ``tools/call`` on loopback, and the decision's own share.

    .venv/bin/python bench/mcp_overhead.py [--calls 2000] [--warmup 200] [--audit jsonl|none]

An upstream MCP server (``tests/mcp_upstream.py``, the SDK's MCPServer over streamable HTTP) runs in
a subprocess; the gateway (``vigil.mcp``, uvicorn) in another; one SDK client calls ``files.add``
``--calls`` times directly, then through the gateway (interleaved in blocks of 100 so drift hits
both), and prints p50/p99 of each, the p50 difference (target <= 2 ms), and the decision's own
p50 (``pm.decide_call`` in process on the same workspace, which is what the gateway runs in a
worker thread per call, with the same audit configuration).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mcp_support import UpstreamProcess, client, free_port, wait_port, write_workspace  # noqa: E402
from vigil.engine import Engine  # noqa: E402
from vigil.protocol import mcp as pm  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--audit", choices=["jsonl", "none"], default="jsonl")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    audit = 'sink = "jsonl"\npath = "audit.jsonl"' if a.audit == "jsonl" else 'sink = "none"'
    ws = write_workspace(tmp / "ws", audit=audit)
    up = UpstreamProcess()
    port = free_port()
    vigil = Path(sys.executable).parent / "vigil"
    gw = subprocess.Popen(
        [
            str(vigil),
            "mcp",
            "proxy",
            "-w",
            str(ws),
            "--upstream",
            f"files={up.url}",
            "--token",
            "tok=Agent::admin",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        direct, proxied = anyio.run(measure, up.url, f"http://127.0.0.1:{port}/mcp", a.calls, a.warmup)
    finally:
        gw.terminate()
        gw.wait(10)
        up.stop()
    decision = decision_share(ws, a.calls)
    d50, p50 = statistics.median(direct), statistics.median(proxied)
    print(f"calls each: {a.calls} (after {a.warmup} warm-up), audit: {a.audit}, cores: {os.cpu_count()}")
    print(f"direct   p50 {d50 * 1e3:7.3f} ms   p99 {pct(direct, 0.99) * 1e3:7.3f} ms")
    print(f"gateway  p50 {p50 * 1e3:7.3f} ms   p99 {pct(proxied, 0.99) * 1e3:7.3f} ms")
    print(f"added    p50 {(p50 - d50) * 1e3:7.3f} ms   (target <= 2 ms)")
    print(f"decision p50 {statistics.median(decision) * 1e6:7.1f} us   (pm.decide_call in process)")


async def measure(
    direct_url: str, gateway_url: str, calls: int, warmup: int
) -> tuple[list[float], list[float]]:
    direct: list[float] = []
    proxied: list[float] = []
    async with client(direct_url, None) as d, client(gateway_url, "tok") as g:
        for _ in range(warmup):
            await d.call_tool("add", {"a": 1, "b": 2})
            await g.call_tool("files.add", {"a": 1, "b": 2})
        done = 0
        while done < calls:
            n = min(100, calls - done)
            for _ in range(n):
                t = time.perf_counter()
                await d.call_tool("add", {"a": 1, "b": 2})
                direct.append(time.perf_counter() - t)
            for _ in range(n):
                t = time.perf_counter()
                await g.call_tool("files.add", {"a": 1, "b": 2})
                proxied.append(time.perf_counter() - t)
            done += n
    return direct, proxied


def decision_share(ws: Path, calls: int) -> list[float]:
    engine = Engine.from_workspace(ws)
    caller = pm.Caller(("Agent", "admin"), "bench-session", "bench", "1.0", "127.0.0.1")
    item = pm.Item("Tool", "files.add", {})
    out = []
    try:
        for i in range(calls + 200):
            t = time.perf_counter()
            record = pm.decide_call(engine, caller, item, "tools/call", {"a": i, "b": 2})
            if i >= 200:
                out.append(time.perf_counter() - t)
            assert record.allowed
    finally:
        engine.close()
    return out


if __name__ == "__main__":
    main()
