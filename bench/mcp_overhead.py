"""What the MCP gateway adds to a ``tools/call`` on loopback, and the decision's own share.

    .venv/bin/python bench/mcp_overhead.py [--calls 2000] [--warmup 200] [--audit jsonl|none]
                                           [--auth jwt|static] [--compare]

An upstream MCP server (``tests/mcp_upstream.py``, the SDK's MCPServer over streamable HTTP) runs in
a subprocess; the gateway (``vigil mcp proxy``) in another; one SDK client calls ``files.add``
``--calls`` times directly, then through the gateway (interleaved in blocks of 100 so drift hits
both), and prints p50/p99 of each, the p50 difference (target <= 2 ms), the CPU time the gateway
and the upstream processes spent per call (less sensitive to other load than latencies), the load
average, and the decision's own p50 (``pm.decide_call`` in process on the same workspace, which is
what the gateway runs in a worker thread per call, with the same audit configuration and token).

``--auth jwt`` (default): the agent presents a token minted by the workspace's own token service
(client credentials), verified by the gateway and backing each decision; ``static``: a static token.

``--compare``: a second gateway with ``--no-fast-calls`` (the SDK's path only) on the same upstream,
its blocks interleaved with the others': an A/B of the fast path on the same machine state.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mcp_support import UpstreamProcess, client, free_port, wait_port, write_workspace  # noqa: E402
from tests.token_support import assertion, credentials_form, new_key  # noqa: E402

from vigil.engine import Engine  # noqa: E402
from vigil.protocol import mcp as pm  # noqa: E402

ISSUER = "http://127.0.0.1:8181"
AGENT = 'Agent::"admin"'


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mint(ws: Path, audience: str) -> str:
    """A token of the workspace's token service for the agent (client credentials)."""
    from urllib.parse import urlencode

    key = new_key("ed25519")
    engine = Engine.from_workspace(ws)
    try:
        engine.identities.add(
            AGENT, owner="ops@example.com", purpose="bench", by="bench", public_key=key.as_dict()
        )
        form = credentials_form(AGENT, key, audience=audience)
        form["client_assertion"] = assertion(AGENT, key, aud=ISSUER + "/oauth2/token")
        answer = engine.tokens.token_request(urlencode(form).encode(), b"application/x-www-form-urlencoded")
        return str(answer["access_token"])
    finally:
        engine.close()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--audit", choices=["jsonl", "none"], default="jsonl")
    ap.add_argument("--auth", choices=["jwt", "static"], default="jwt")
    ap.add_argument("--compare", action="store_true", help="also a gateway with --no-fast-calls")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    audit = 'sink = "jsonl"\npath = "audit.jsonl"' if a.audit == "jsonl" else 'sink = "none"'
    ports = [free_port() for _ in range(2 if a.compare else 1)]
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    audiences = ", ".join(f'"{u}"' for u in urls)
    identity = f'[behaviour]\nmode = "off"\n\n[identity]\nissuer = "{ISSUER}"\naudiences = [{audiences}]\n'
    ws = write_workspace(tmp / "ws", audit=audit, behaviour=identity)
    tokens = [mint(ws, u) if a.auth == "jwt" else "tok" for u in urls]
    up = UpstreamProcess()
    vigil = Path(sys.executable).parent / "vigil"
    gws = []
    for i, port in enumerate(ports):
        argv = [
            str(vigil),
            "mcp",
            "proxy",
            "-w",
            str(ws),
            "--upstream",
            f"files={up.url}",
            "--port",
            str(port),
        ]
        if a.auth == "static":
            argv += ["--token", "tok=Agent::admin"]
        if i == 1:
            argv.append("--no-fast-calls")
        gws.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    load0 = os.getloadavg()[0]
    try:
        for port in ports:
            wait_port(port)
        direct, proxied, cpu = anyio.run(
            measure, up.url, urls, tokens, a.calls, a.warmup, [g.pid for g in gws], up.proc.pid
        )
    finally:
        for gw in gws:
            gw.terminate()
            gw.wait(10)
        up.stop()
    load1 = os.getloadavg()[0]
    decision = decision_share(ws, a.calls, tokens[0] if a.auth == "jwt" else None)
    d50 = statistics.median(direct)
    print(
        f"calls each: {a.calls} (after {a.warmup} warm-up), audit: {a.audit}, auth: {a.auth}, "
        f"cores: {os.cpu_count()}, load average {load0:.2f} -> {load1:.2f}"
    )
    print(f"direct   p50 {d50 * 1e3:7.3f} ms   p99 {pct(direct, 0.99) * 1e3:7.3f} ms")
    for label, lat, c in zip(("gateway", "sdk-only"), proxied, cpu[:-1], strict=False):
        p50 = statistics.median(lat)
        print(
            f"{label:8} p50 {p50 * 1e3:7.3f} ms   p99 {pct(lat, 0.99) * 1e3:7.3f} ms   "
            f"added p50 {(p50 - d50) * 1e3:6.3f} ms   CPU per call {c * 1e3:.3f} ms"
        )
    print("(target: the gateway's added p50 <= 2 ms; sdk-only: the same gateway with --no-fast-calls)")
    print(f"CPU per call: upstream process {cpu[-1] * 1e3:.3f} ms")
    print(f"decision p50 {statistics.median(decision) * 1e6:7.1f} us   (pm.decide_call in process)")


async def measure(
    direct_url: str,
    gateway_urls: list[str],
    tokens: list[str],
    calls: int,
    warmup: int,
    gateway_pids: list[int],
    upstream_pid: int,
) -> tuple[list[float], list[list[float]], list[float]]:
    """Latencies direct and through each gateway (blocks of 100 interleaved), and the CPU seconds
    per call each gateway spent (over its calls), then the upstream (over all calls it served)."""
    direct: list[float] = []
    proxied: list[list[float]] = [[] for _ in gateway_urls]
    async with AsyncExitStack() as stack:
        d = await stack.enter_async_context(client(direct_url, None))
        gs = [
            await stack.enter_async_context(client(u, t)) for u, t in zip(gateway_urls, tokens, strict=True)
        ]
        for _ in range(warmup):
            await d.call_tool("add", {"a": 1, "b": 2})
            for g in gs:
                await g.call_tool("files.add", {"a": 1, "b": 2})
        pids = [*gateway_pids, upstream_pid]
        cpu0 = [cpu_seconds(p) for p in pids]
        done = 0
        while done < calls:
            n = min(100, calls - done)
            for _ in range(n):
                t = time.perf_counter()
                await d.call_tool("add", {"a": 1, "b": 2})
                direct.append(time.perf_counter() - t)
            for g, out in zip(gs, proxied, strict=True):
                for _ in range(n):
                    t = time.perf_counter()
                    await g.call_tool("files.add", {"a": 1, "b": 2})
                    out.append(time.perf_counter() - t)
            done += n
        served = [calls] * len(gs) + [(1 + len(gs)) * calls]
        cpu = [(cpu_seconds(p) - c0) / n for p, c0, n in zip(pids, cpu0, served, strict=True)]
    return direct, proxied, cpu


def decision_share(ws: Path, calls: int, token: str | None) -> list[float]:
    engine = Engine.from_workspace(ws)
    caller = pm.Caller(("Agent", "admin"), "bench-session", "bench", "1.0", "127.0.0.1", token=token)
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
