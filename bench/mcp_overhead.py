"""What the MCP gateway adds to a ``tools/call`` on loopback, and the decision's own share.

    .venv/bin/python bench/mcp_overhead.py [--calls 2000] [--warmup 200] [--audit jsonl|none]
                                           [--auth jwt|static]

An upstream MCP server (``tests/mcp_upstream.py``, the SDK's MCPServer over streamable HTTP) runs in
a subprocess; the gateway (``vigil mcp proxy``) in another; one SDK client calls ``files.add``
``--calls`` times directly, then through the gateway (interleaved in blocks of 100 so drift hits
both), and prints p50/p99 of each, the p50 difference (target <= 2 ms), the CPU time the gateway
and the upstream processes spent per call (less sensitive to other load than latencies), the load
average, and the decision's own p50 (``pm.decide_call`` in process on the same workspace, which is
what the gateway runs in a worker thread per call, with the same audit configuration and token).

``--auth jwt`` (default): the agent presents a token minted by the workspace's own token service
(client credentials), verified by the gateway and backing each decision; ``static``: a static token.
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
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    audit = 'sink = "jsonl"\npath = "audit.jsonl"' if a.audit == "jsonl" else 'sink = "none"'
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    identity = f'[behaviour]\nmode = "off"\n\n[identity]\nissuer = "{ISSUER}"\naudiences = ["{url}"]\n'
    ws = write_workspace(tmp / "ws", audit=audit, behaviour=identity)
    token = mint(ws, url) if a.auth == "jwt" else "tok"
    up = UpstreamProcess()
    vigil = Path(sys.executable).parent / "vigil"
    argv = [str(vigil), "mcp", "proxy", "-w", str(ws), "--upstream", f"files={up.url}", "--port", str(port)]
    if a.auth == "static":
        argv += ["--token", "tok=Agent::admin"]
    gw = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    load0 = os.getloadavg()[0]
    try:
        wait_port(port)
        direct, proxied, cpu = anyio.run(
            measure, up.url, url, token, a.calls, a.warmup, (gw.pid, up.proc.pid)
        )
    finally:
        gw.terminate()
        gw.wait(10)
        up.stop()
    load1 = os.getloadavg()[0]
    decision = decision_share(ws, a.calls, token if a.auth == "jwt" else None)
    d50, p50 = statistics.median(direct), statistics.median(proxied)
    print(
        f"calls each: {a.calls} (after {a.warmup} warm-up), audit: {a.audit}, auth: {a.auth}, "
        f"cores: {os.cpu_count()}, load average {load0:.2f} -> {load1:.2f}"
    )
    print(f"direct   p50 {d50 * 1e3:7.3f} ms   p99 {pct(direct, 0.99) * 1e3:7.3f} ms")
    print(f"gateway  p50 {p50 * 1e3:7.3f} ms   p99 {pct(proxied, 0.99) * 1e3:7.3f} ms")
    print(f"added    p50 {(p50 - d50) * 1e3:7.3f} ms   (target <= 2 ms)")
    print(f"CPU per call: gateway process {cpu[0] * 1e3:.3f} ms, upstream process {cpu[1] * 1e3:.3f} ms")
    print(f"decision p50 {statistics.median(decision) * 1e6:7.1f} us   (pm.decide_call in process)")


async def measure(
    direct_url: str, gateway_url: str, token: str, calls: int, warmup: int, pids: tuple[int, int]
) -> tuple[list[float], list[float], tuple[float, float]]:
    """Latencies direct and through the gateway, and the CPU seconds per call the gateway spent
    (over its calls) and the upstream spent (over all calls it served)."""
    direct: list[float] = []
    proxied: list[float] = []
    async with client(direct_url, None) as d, client(gateway_url, token) as g:
        for _ in range(warmup):
            await d.call_tool("add", {"a": 1, "b": 2})
            await g.call_tool("files.add", {"a": 1, "b": 2})
        gw0, up0 = cpu_seconds(pids[0]), cpu_seconds(pids[1])
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
        cpu = ((cpu_seconds(pids[0]) - gw0) / calls, (cpu_seconds(pids[1]) - up0) / (2 * calls))
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
