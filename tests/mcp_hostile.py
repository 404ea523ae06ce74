"""A hostile-ish upstream MCP server for the fast path's tests: the SDK's MCPServer (JSON responses)
behind a layer that shapes some answers. ``python tests/mcp_hostile.py PORT``.

- ``raw`` (arguments ``status``, ``content_type``, ``body``): not run; answered with that status,
  content type and body (``{id}`` in the body is replaced by the request's id as JSON);
- ``ran_then`` (same arguments): run (logged), then answered like ``raw``;
- ``big`` (``n``): a text of ``n`` bytes;
- ``echo``: as the test upstream's.

With ``MCP_UPSTREAM_LOG`` set, each tool that runs appends its name to that file."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("hostile")
_LOG = os.environ.get("MCP_UPSTREAM_LOG")


def _note(name: str) -> None:
    if _LOG:
        with open(_LOG, "a") as f:
            f.write(name + "\n")


@server.tool()
def raw(status: int, content_type: str, body: str) -> str:
    """Never runs (the layer answers it)."""
    raise AssertionError


@server.tool()
def ran_then(status: int, content_type: str, body: str) -> str:
    """Runs; the layer then answers what it was told."""
    _note("ran_then")
    return "ran"


@server.tool()
def big(n: int) -> str:
    _note("big")
    return "x" * n


@server.tool()
def echo(value: Any = None) -> str:
    _note("echo")
    return repr(value)


_inner = server.streamable_http_app(json_response=True)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http" or scope["method"] != "POST":
        await _inner(scope, receive, send)
        return
    chunks = []
    while True:
        m = await receive()
        chunks.append(m.get("body", b""))
        if not m.get("more_body"):
            break
    body = b"".join(chunks)
    try:
        msg = json.loads(body)
    except ValueError:
        msg = None
    params = msg.get("params") if isinstance(msg, dict) else None
    name = params.get("name") if isinstance(params, dict) else None
    done = False

    async def replay() -> dict[str, Any]:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    if name in ("raw", "ran_then") and isinstance(msg, dict):
        args = params.get("arguments") or {}
        if name == "ran_then":

            async def drop(message: Any) -> None:
                pass

            await _inner(scope, replay, drop)
        out = str(args["body"]).replace("{id}", json.dumps(msg.get("id"))).encode()
        headers = [(b"content-length", b"%d" % len(out))]
        if args["content_type"]:
            headers.append((b"content-type", str(args["content_type"]).encode()))
        await send({"type": "http.response.start", "status": int(args["status"]), "headers": headers})
        await send({"type": "http.response.body", "body": out})
        return
    await _inner(scope, replay, send)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="on")
