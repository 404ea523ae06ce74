"""Shared pieces of the MCP gateway tests and bench: an upstream MCP server in a subprocess, a
workspace, the gateway served by uvicorn in a thread, and an MCP client with a bearer token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from vigil.engine import Engine
from vigil.mcp import Gateway, StaticTokens, UpstreamSpec
from vigil.mcp.serve import http_app

HERE = Path(__file__).parent
UPSTREAM = HERE / "mcp_upstream.py"
TOKENS = {
    "tok-reader": ("Agent", "reader"),
    "tok-admin": ("Agent", "admin"),
    "tok-nobody": ("Agent", "ghost"),
}

POLICIES = """
@id("reader-reads-reports")
permit (principal == Agent::"reader", action == Action::"call_tool", resource)
when { resource has readOnlyHint && resource.readOnlyHint && context.arguments.path like "/srv/reports/*" };

@id("anyone-adds")
permit (principal, action == Action::"call_tool", resource == Tool::"files.add");

@id("admin-all")
permit (principal == Agent::"admin", action, resource);

@id("reader-reads-resources")
permit (principal == Agent::"reader", action == Action::"read_resource", resource);

@id("never-etc")
forbid (principal, action == Action::"call_tool", resource)
when { context.arguments has path && context.arguments.path like "/etc/*" };

@id("no-secret-delete")
forbid (principal, action == Action::"call_tool", resource == Tool::"files.delete_file")
unless { resource.owner == principal };
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


class UpstreamProcess:
    """The test upstream over streamable HTTP in a subprocess."""

    def __init__(self, log: Path | None = None, mode: str = "http") -> None:
        self.port = free_port()
        env = dict(os.environ)
        if log is not None:
            env["MCP_UPSTREAM_LOG"] = str(log)
        self.proc = subprocess.Popen(
            [sys.executable, str(UPSTREAM), mode, str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def stdio_spec(name: str = "local") -> UpstreamSpec:
    return UpstreamSpec(name, command=(sys.executable, str(UPSTREAM), "stdio"))


def write_workspace(
    root: Path, *, policies: str = POLICIES, behaviour: str = "", audit: str = 'sink = "none"'
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "policies").mkdir(exist_ok=True)
    (root / "entities").mkdir(exist_ok=True)
    (root / "policies" / "p.cedar").write_text(policies)
    entities: list[dict[str, Any]] = [
        {"uid": {"type": "Agent", "id": a}, "attrs": {}, "parents": []} for a in ("reader", "admin")
    ]
    entities.append(
        {
            "uid": {"type": "Tool", "id": "files.delete_file"},
            "attrs": {"owner": {"__entity": {"type": "Agent", "id": "admin"}}, "destructiveHint": True},
            "parents": [],
        }
    )
    (root / "entities" / "e.json").write_text(json.dumps(entities))
    toml = behaviour or '[behaviour]\nmode = "off"\n'
    toml += '\n[store]\nbackend = "memory"\n\n[audit]\n' + audit + "\n"
    (root / "vigil.toml").write_text(toml)
    return root


class GatewayServer:
    """``http_app(gateway)`` served by uvicorn in a thread on a free port."""

    def __init__(
        self,
        gateway: Gateway,
        port: int | None = None,
        authorization_server: str | None = "http://127.0.0.1:8765",
        fast_calls: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        app = http_app(
            gateway, resource_url=self.url, authorization_server=authorization_server, fast_calls=fast_calls
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        end = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > end or not self.thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def gateway(
    engine: Engine, upstreams: list[UpstreamSpec], tokens: dict[str, tuple[str, str]] | None = None
) -> Gateway:
    return Gateway(
        engine, upstreams, StaticTokens(tokens or TOKENS), approve_hint="vigil approvals approve {ticket}"
    )


@asynccontextmanager
async def client(url: str, token: str | None, name: str = "test-agent") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    from mcp_types import Implementation

    async with create_mcp_http_client(headers=headers) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(
            transport, mode="legacy", cache=None, client_info=Implementation(name=name, version="1.0")
        ) as c:
            yield c


def run(fn: Callable[[], Any]) -> Any:
    import anyio

    return anyio.run(fn)
