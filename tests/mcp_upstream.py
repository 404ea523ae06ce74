"""A small upstream MCP server for the gateway tests and bench (the SDK's MCPServer):
``python tests/mcp_upstream.py stdio``, ``... http PORT`` (JSON responses) or ``... http-sse PORT``
(an SSE stream per request).
With ``MCP_UPSTREAM_LOG`` set, each tool call appends its name to that file (so a test can tell
that nothing was forwarded)."""

from __future__ import annotations

import os
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("files")
_LOG = os.environ.get("MCP_UPSTREAM_LOG")


def _note(name: str) -> None:
    if _LOG:
        with open(_LOG, "a") as f:
            f.write(name + "\n")


@server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
def read_file(path: str) -> str:
    """Read a file (pretend)."""
    _note("read_file")
    return f"contents of {path}"


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def delete_file(path: str) -> str:
    """Delete a file (pretend)."""
    _note("delete_file")
    return f"deleted {path}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    _note("add")
    return a + b


@server.tool()
def echo(value: Any = None) -> str:
    """Echo any JSON value back."""
    _note("echo")
    return repr(value)


@server.resource("file:///reports/q3.txt")
def q3_report() -> str:
    return "q3: fine"


@server.prompt()
def greet(name: str) -> str:
    return f"Say hello to {name}."


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:  # "http PORT": JSON responses; "http-sse PORT": an SSE stream per request
        server.run(
            "streamable-http", host="127.0.0.1", port=int(sys.argv[2]), json_response=sys.argv[1] == "http"
        )
