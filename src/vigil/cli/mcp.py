"""``vigil mcp proxy``: the MCP gateway in front of upstream MCP servers (docs/mcp.md)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from vigil.errors import EXIT_STATUS, VigilError, WorkspaceError

if TYPE_CHECKING:
    from vigil.mcp.gateway import UpstreamSpec

mcp_app = typer.Typer(help="The MCP gateway.", no_args_is_help=True)


def _fail(code: str, message: str) -> typer.Exit:
    Console(stderr=True, highlight=False).print(f"[red]error[/] [bold]{code}[/]: {escape(message)}")
    return typer.Exit(EXIT_STATUS.get(code, 2))


@mcp_app.command("proxy")
def proxy(
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", help="Workspace folder.", show_default=False)
    ],
    upstream: Annotated[
        list[str] | None,
        typer.Option("--upstream", help="NAME=URL of a streamable HTTP MCP server (repeatable)."),
    ] = None,
    upstream_cmd: Annotated[
        list[str] | None,
        typer.Option("--upstream-cmd", help="NAME='command args' of a stdio MCP server (repeatable)."),
    ] = None,
    audience: Annotated[
        list[str] | None,
        typer.Option(
            "--audience",
            help="An aud a JWT must name to be accepted here (repeatable; default: the public URL).",
        ),
    ] = None,
    token: Annotated[
        list[str] | None,
        typer.Option("--token", help="TOKEN=Type::id: a static bearer token and its subject (tests, demos)."),
    ] = None,
    tokens_file: Annotated[
        Path | None, typer.Option("--tokens", help='JSON file {"TOKEN": "Type::id", ...}.')
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Listen port.")] = 8766,
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", help="The gateway's URL as clients see it (default http://H:P/mcp)."),
    ] = None,
    authorization_server: Annotated[
        str | None,
        typer.Option(
            "--authorization-server",
            help="The OAuth authorization server the metadata points at (default: the workspace's token service).",
        ),
    ] = None,
    approve_hint: Annotated[
        str | None,
        typer.Option("--approve-hint", help="Shown with a step-up ticket ({ticket} = its id)."),
    ] = None,
    stdio: Annotated[bool, typer.Option("--stdio", help="Serve one client on stdin/stdout instead.")] = False,
    fast_calls: Annotated[
        bool,
        typer.Option(
            "--fast-calls/--no-fast-calls",
            help="Forward tools/call on the fast path where it is exact (docs/mcp.md, Overhead); off: the SDK's path only.",
        ),
    ] = True,
) -> None:
    """Serve MCP at http://H:P/mcp (or on stdio) in front of the upstreams; every call is decided."""
    from vigil.engine import Engine
    from vigil.mcp import AnyOf, Gateway, OAuthTokens, StaticTokens
    from vigil.mcp.identity import Authenticate, load_tokens, parse_tokens
    from vigil.mcp.serve import http_app, run_stdio_blocking, serve_http

    url = public_url or f"http://{host}:{port}/mcp"
    try:
        specs = _upstreams(upstream or [], upstream_cmd or [])
        known = load_tokens(tokens_file) if tokens_file is not None else {}
        static = StaticTokens(known | parse_tokens(token or []))
        engine = Engine.from_workspace(workspace)
        # JWTs the workspace's verifier accepts (vigil's own, trusted issuers'), issued for this
        # gateway; static tokens, when given, are tried first
        jwts = OAuthTokens(engine.verifier, audience or [url])
        authenticate: Authenticate = AnyOf(static, jwts) if len(static) else jwts
    except WorkspaceError as e:
        raise _fail(e.code, "; ".join(e.problems) or e.message) from None
    except VigilError as e:
        raise _fail(e.code, e.message) from None
    hint = approve_hint if approve_hint is not None else f"vigil approvals approve {{ticket}} -w {workspace}"
    try:
        if stdio:
            env_token = os.environ.get("VIGIL_MCP_TOKEN")
            try:
                agent = authenticate(env_token)
            except VigilError as e:
                raise _fail(
                    e.code, f"--stdio needs VIGIL_MCP_TOKEN set to a token this gateway accepts: {e.message}"
                ) from None
            run_stdio_blocking(Gateway(engine, specs, authenticate, approve_hint=hint, stdio_agent=agent))
            return
        gateway = Gateway(engine, specs, authenticate, approve_hint=hint)
        serve_http(
            http_app(
                gateway,
                resource_url=url,
                authorization_server=authorization_server,
                host=host,
                fast_calls=fast_calls,
            ),
            host,
            port,
        )
    finally:
        engine.close()


def _upstreams(urls: list[str], commands: list[str]) -> list[UpstreamSpec]:
    from vigil.mcp.gateway import UpstreamSpec

    specs: list[UpstreamSpec] = []
    seen: set[str] = set()
    for item, is_url in [(u, True) for u in urls] + [(c, False) for c in commands]:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise VigilError(f"{item!r}: expected NAME=VALUE", code="invalid_argument")
        if not name.replace("_", "").replace("-", "").isalnum():
            raise VigilError(
                f"upstream name {name!r}: letters, digits, '-' and '_' only", code="invalid_argument"
            )
        if name in seen:
            raise VigilError(f"upstream name {name!r} given twice", code="invalid_argument")
        seen.add(name)
        if is_url:
            specs.append(UpstreamSpec(name, url=value))
        else:
            specs.append(UpstreamSpec(name, command=tuple(shlex.split(value))))
    if not specs:
        raise VigilError("give at least one --upstream or --upstream-cmd", code="invalid_argument")
    return specs
