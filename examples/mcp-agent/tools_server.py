"""An MCP server built with the official SDK (``MCPServer``, the SDK's FastMCP) whose tools are
guarded in process by ``vigil.guard``: each call is an access decision on the tool and its
arguments before the function runs, against the engine of ``tools-workspace/``.

    python examples/mcp-agent/tools_server.py stdio          # for a local MCP client
    python examples/mcp-agent/tools_server.py http 9000      # streamable HTTP at :9000/mcp
    python examples/mcp-agent/tools_server.py http 9000 WS   # with another guard workspace

The guard is the server's own line of defence: whoever calls (the vigil gateway, or a client that
bypasses it), a path outside ``/srv/reports/`` or mail outside ``example.com`` never runs. A denied
call (``vigil.Denied``) is a tool error that says why (the SDK shows a ``ToolError``'s message to
the client and hides any other exception's).
"""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

import vigil

HERE = Path(__file__).resolve().parent
engine = vigil.Engine.from_workspace(sys.argv[3] if len(sys.argv) > 3 else HERE / "tools-workspace")
guard = vigil.Guard(engine, subject={"type": "Service", "id": "report-tools"})
server = MCPServer("report-tools")

REPORTS = {
    "q1.txt": "Q1: revenue up 4%, churn flat.",
    "q2.txt": "Q2: revenue up 6%, two enterprise deals.",
    "q3.txt": "Q3: revenue flat, support backlog down by a third.",
    "q1-draft.txt": "Q1 (draft, superseded)",
}
SENT: list[str] = []
F = TypeVar("F", bound=Callable[..., Any])


def tool(name: str, **hints: bool) -> Callable[[F], F]:
    """An MCP tool of this server, guarded by vigil: ``guard.tool(name)`` decides each call on its
    arguments first; a denial becomes a ToolError the client reads."""

    def wrap(fn: F) -> F:
        checked = guard.tool(name)(fn)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return checked(*args, **kwargs)
            except vigil.Denied as e:
                raise ToolError(
                    f"denied by the tool server's vigil guard: {', '.join(e.reason_codes)}"
                ) from None

        server.tool(annotations=ToolAnnotations(**hints))(run)
        return run  # type: ignore[return-value]

    return wrap


@tool("list_reports", read_only_hint=True)
def list_reports() -> list[str]:
    """The reports on file."""
    return sorted(REPORTS)


@tool("read_report", read_only_hint=True)
def read_report(name: str) -> str:
    """One report's text."""
    return REPORTS.get(name, f"no report {name}")


@tool("read_file", read_only_hint=True)
def read_file(path: str) -> str:
    """A file under /srv/reports (pretend)."""
    return f"contents of {path}"


@tool("delete_report", destructive_hint=True)
def delete_report(name: str) -> str:
    """Delete a report."""
    return f"deleted {name}" if REPORTS.pop(name, None) is not None else f"no report {name}"


@tool("send_report", open_world_hint=True)
def send_report(name: str, to: str, body: str = "") -> str:
    """Mail a report to someone."""
    SENT.append(to)
    return f"sent {name} to {to}"


def _exit(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    # uvicorn raises SIGTERM again after its graceful shutdown: exit through the `finally` below
    # instead of dying there, so the guard's last audit events are written
    signal.signal(signal.SIGTERM, _exit)
    try:
        if sys.argv[1:2] == ["http"]:
            server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]), json_response=True)
        else:
            server.run("stdio")
    finally:
        engine.close()
