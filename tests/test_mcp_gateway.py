"""The MCP gateway end to end: the SDK's client -> vigil's gateway -> real upstream MCP servers
(streamable HTTP in a subprocess, stdio started by the gateway)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from tests.mcp_support import (
    GatewayServer,
    UpstreamProcess,
    client,
    gateway,
    run,
    stdio_spec,
    write_workspace,
)
from vigil.audit import MemorySink
from vigil.engine import Engine
from vigil.mcp import UpstreamSpec


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    up = UpstreamProcess()
    yield up
    up.stop()


@pytest.fixture
def served(tmp_path: Path, upstream: UpstreamProcess) -> Iterator[tuple[GatewayServer, Engine, MemorySink]]:
    sink = MemorySink()
    engine = Engine.from_workspace(write_workspace(tmp_path / "ws"), audit=sink)
    gw = GatewayServer(gateway(engine, [UpstreamSpec("files", url=upstream.url)]))
    yield gw, engine, sink
    gw.stop()
    engine.close()


def test_lists_are_filtered_per_agent(served: tuple[GatewayServer, Engine, MemorySink]) -> None:
    gw, _, _ = served

    async def go() -> tuple[set[str], set[str]]:
        async with client(gw.url, "tok-reader") as c:
            reader = {t.name for t in (await c.list_tools()).tools}
        async with client(gw.url, "tok-admin") as c:
            admin = {t.name for t in (await c.list_tools()).tools}
        return reader, admin

    reader, admin = run(go)
    assert reader == {"files.read_file", "files.add"}
    assert admin == {"files.read_file", "files.add", "files.delete_file", "files.echo"}
