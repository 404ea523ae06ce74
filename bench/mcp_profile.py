"""Where the MCP gateway's time per ``tools/call`` goes: timing spans and a CPU sampling profile.

    .venv/bin/python bench/mcp_profile.py [--calls 2000] [--no-fast-calls]

Runs the test upstream (``tests/mcp_upstream.py``) and the gateway (``http_app`` on uvicorn, a
static token, the audit log on) each in its own process, and one SDK client calling ``files.add``
through the gateway. The gateway process measures, per call (p50):

- ``request``: the whole HTTP request inside the ASGI app (the SDK's streamable HTTP transport,
  session manager, JSON-RPC dispatch, our handler, the response);
- ``fast``: the fast path's ``Gateway.fast_tool_call`` (docs/mcp.md "Overhead"); inside it
  ``decide`` (the decision, in a worker thread) and ``link`` (the raw JSON-RPC exchange with the
  upstream, its own work included);
- ``handler``: the SDK path's ``call_tool`` handler (``--no-fast-calls``, or a call the fast path
  does not take); inside it ``decide`` and ``forward`` (the call through the SDK's client);
- ``auth``: the bearer token check of the SDK's middleware;

and samples its own CPU time every 0.5 ms (``ITIMER_PROF``; the main thread's stack), attributed
to the packages on the stack: the share of samples in which each appears (inclusive). The
upstream process's and the gateway process's CPU seconds per call are printed for scale.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AREAS = ("mcp/client", "mcp/server", "mcp/shared", "starlette", "uvicorn", "anyio", "httpx", "httpcore",
         "h11", "pydantic", "vigil/", "vigil/mcp/", "asyncio", "opentelemetry", "concurrent")  # fmt: skip


def serve(ws: str, upstream: str, port: int, fast: bool) -> None:
    """The gateway with spans and the sampler; reports on stderr when interrupted."""
    import uvicorn

    from vigil.engine import Engine
    from vigil.mcp import Gateway, StaticTokens, UpstreamSpec
    from vigil.mcp import identity as ident
    from vigil.mcp.passthrough import Link
    from vigil.mcp.serve import http_app

    spans: dict[str, list[float]] = {
        k: [] for k in ("request", "fast", "handler", "decide", "link", "forward", "auth")
    }
    engine = Engine.from_workspace(ws)
    gw = Gateway(engine, [UpstreamSpec("files", url=upstream)], StaticTokens({"tok": ("Agent", "admin")}))

    def timed(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def run(*args: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*args)
            finally:
                spans[name].append(time.perf_counter() - t)

        return run

    gw._decide = timed("decide", gw._decide)  # type: ignore[method-assign]
    gw._forward = timed("forward", gw._forward)  # type: ignore[method-assign]
    gw.call_tool = timed("handler", gw.call_tool)  # type: ignore[method-assign]
    gw.fast_tool_call = timed("fast", gw.fast_tool_call)  # type: ignore[method-assign]
    call = Link.call
    Link.call = lambda self, *a: timed("link", call)(self, *a)  # type: ignore[method-assign]
    verify = ident.Verifier.verify_token
    ident.Verifier.verify_token = lambda self, tok: timed("auth", verify)(self, tok)  # type: ignore[method-assign]
    app = http_app(
        gw,
        resource_url=f"http://127.0.0.1:{port}/mcp",
        authorization_server="http://127.0.0.1:1",
        fast_calls=fast,
    )

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            await timed("request", app)(scope, receive, send)
        else:
            await app(scope, receive, send)

    inclusive: collections.Counter[str] = collections.Counter()
    samples = [0]

    def sample(sig: int, frame: Any) -> None:
        samples[0] += 1
        seen = set()
        while frame is not None:
            name = frame.f_code.co_filename
            for area in AREAS:
                if area in name and area not in seen:
                    seen.add(area)
                    inclusive[area] += 1
            frame = frame.f_back

    def start(*_: Any) -> None:
        for v in spans.values():
            v.clear()
        inclusive.clear()
        samples[0] = 0
        signal.signal(signal.SIGPROF, sample)
        signal.setitimer(signal.ITIMER_PROF, 0.0005, 0.0005)

    def report() -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        for k, v in spans.items():
            if v:
                print(f"span {k:8} p50 {statistics.median(v) * 1e3:6.3f} ms  (n={len(v)})", file=sys.stderr)
        n = samples[0] or 1
        shares = ", ".join(f"{k.rstrip('/')} {c * 100 / n:.0f}%" for k, c in inclusive.most_common())
        print(f"CPU samples {samples[0]}, inclusive: {shares}", file=sys.stderr)

    signal.signal(signal.SIGUSR1, start)
    atexit.register(report)
    assert threading.current_thread() is threading.main_thread()
    uvicorn.run(outer, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--no-fast-calls", action="store_true", help="the SDK's path only")
    ap.add_argument("--serve", nargs=3, metavar=("WS", "UPSTREAM", "PORT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(a.serve[0], a.serve[1], int(a.serve[2]), not a.no_fast_calls)
        return
    import anyio
    from tests.mcp_support import UpstreamProcess, client, free_port, wait_port, write_workspace

    ws = write_workspace(Path(tempfile.mkdtemp()) / "ws", audit='sink = "jsonl"\npath = "audit.jsonl"')
    up = UpstreamProcess()
    port = free_port()
    gw = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(ws), up.url, str(port)]
        + (["--no-fast-calls"] if a.no_fast_calls else []),
        stderr=subprocess.PIPE,
        text=True,
    )
    load0 = os.getloadavg()[0]

    async def drive() -> tuple[float, float, float]:
        async with client(f"http://127.0.0.1:{port}/mcp", "tok") as c:
            await c.list_tools()  # as agents do (the gateway learns the tools it forwards fast)
            for _ in range(200):
                await c.call_tool("files.add", {"a": 1, "b": 2})
            gw.send_signal(signal.SIGUSR1)
            g0, u0 = cpu_seconds(gw.pid), cpu_seconds(up.proc.pid)
            lat = []
            for _ in range(a.calls):
                t = time.perf_counter()
                await c.call_tool("files.add", {"a": 1, "b": 2})
                lat.append(time.perf_counter() - t)
            g1, u1 = cpu_seconds(gw.pid), cpu_seconds(up.proc.pid)
        return statistics.median(lat), (g1 - g0) / a.calls, (u1 - u0) / a.calls

    try:
        wait_port(port)
        p50, gcpu, ucpu = anyio.run(drive)
    finally:
        gw.send_signal(signal.SIGINT)
        _, err = gw.communicate(timeout=30)
        up.stop()
    print(f"calls: {a.calls}, load average {load0:.2f} -> {os.getloadavg()[0]:.2f}, cores: {os.cpu_count()}")
    print(f"client p50 through the gateway {p50 * 1e3:.3f} ms")
    print(f"CPU per call: gateway process {gcpu * 1e3:.3f} ms, upstream process {ucpu * 1e3:.3f} ms")
    print("\n".join(line for line in err.splitlines() if line.startswith(("span", "CPU samples"))))


if __name__ == "__main__":
    main()
