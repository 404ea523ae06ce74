"""The gateway: the SDK's low-level ``Server`` towards agents, the SDK's ``Client`` towards each
upstream. Each handler parses, calls one function of :mod:`vigil.protocol.mcp`, and maps the
outcome; nothing is forwarded without an allowing decision, and every failure is a JSON-RPC error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR
from mcp_types import methods as _methods
from pydantic import ValidationError

from vigil.engine import Engine
from vigil.errors import VigilError
from vigil.mcp.identity import Agent, Authenticate, agent_of
from vigil.mcp.passthrough import Link, Lost, NotForwarded, Seen, client_result, link_for
from vigil.protocol import mcp as pm

_log = logging.getLogger("vigil.mcp")
_T = TypeVar("_T")
Ctx = ServerRequestContext[Any, Any]


@dataclass(frozen=True, slots=True)
class UpstreamSpec:
    """One upstream MCP server: a streamable HTTP ``url`` or a stdio ``command``."""

    name: str
    url: str = ""
    command: tuple[str, ...] = ()

    def target(self) -> str | StdioServerParameters:
        if self.url:
            return self.url
        return StdioServerParameters(command=self.command[0], args=list(self.command[1:]))


@dataclass(slots=True)
class _Upstream:
    spec: UpstreamSpec
    client: Client | None = None
    tools: dict[str, types.Tool] = field(default_factory=dict)
    resources: dict[str, types.Resource] = field(default_factory=dict)
    prompts: dict[str, types.Prompt] = field(default_factory=dict)
    # the fast tools/call forward on the SDK client's session (vigil.mcp.passthrough), when exact
    link: Link | None = None


class Gateway:
    """MCP in front of ``upstreams``, every call decided by ``engine`` for the agent that
    ``authenticate`` names (backed by its token when it has one: the delegation chain is checked
    with every call). ``approve_hint`` is shown with a step-up ticket (``{ticket}`` is replaced by
    its id): where a human approves it. ``stdio_agent``: the one agent of a stdio session."""

    def __init__(
        self,
        engine: Engine,
        upstreams: Sequence[UpstreamSpec],
        authenticate: Authenticate,
        *,
        approve_hint: str = "",
        stdio_agent: Agent | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.engine = engine
        self.authenticate = authenticate
        self.approve_hint = approve_hint
        self.stdio_agent = stdio_agent
        self.timeout_s = timeout_s
        self._upstreams = {u.name: _Upstream(u) for u in upstreams}
        self.fast_calls = 0
        """How many ``tools/call`` were served on the fast path (:meth:`fast_tool_call`)."""

    # -- upstream connections -----------------------------------------------------------------
    @asynccontextmanager
    async def connected(self) -> AsyncIterator[Gateway]:
        """Connect every upstream for the lifetime of the block; one that cannot be reached stays
        down (its items are not listed, calls to it fail with :data:`pm.UNAVAILABLE`). Each
        upstream's client lives in a task of its own, so one that dies takes nothing else down."""
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            for up in self._upstreams.values():
                ready = anyio.Event()
                tg.start_soon(_hold, up, ready, stop)
                await ready.wait()
            try:
                yield self
            finally:
                stop.set()

    # -- the MCP server -----------------------------------------------------------------------
    def server(self) -> Server[Any]:
        return Server(
            "vigil-mcp-gateway",
            version="0.1.0",
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self.list_resources,
            on_read_resource=self.read_resource,
            on_list_prompts=self.list_prompts,
            on_get_prompt=self.get_prompt,
        )

    def caller(self, ctx: Ctx) -> pm.Caller:
        """The caller of this request; raises MCPError when nobody is authenticated."""
        request = ctx.request
        if request is not None:
            # this HTTP request's own token (the bearer middleware's user), never one remembered
            # by the session: every request of a session is authenticated afresh
            agent = agent_of(getattr(request.scope.get("user"), "access_token", None))
        else:
            agent = self.stdio_agent
        if agent is None:
            raise MCPError(pm.DENIED, "denied by vigil: unauthenticated", {"reasons": ["unauthenticated"]})
        session = ""
        ip = None
        if request is not None:
            session = request.headers.get("mcp-session-id", "")
            if request.client is not None:
                ip = request.client.host
        client, version = "", ""
        params = ctx.session.client_params
        if params is not None:
            client, version = params.client_info.name, params.client_info.version
        return pm.Caller(agent.subject, session, client, version, ip, agent.actors, agent.token)

    # tools
    async def list_tools(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller = self.caller(ctx)
        await self._refresh("tools")
        tools = {f"{u.spec.name}.{n}": t for u in self._live() for n, t in u.tools.items()}
        items = [pm.Item("Tool", name, pm.annotations_of(_hints(t))) for name, t in tools.items()]
        shown = pm.visible(self.engine, caller, items)
        return types.ListToolsResult(tools=[tools[i.name].model_copy(update={"name": i.name}) for i in shown])

    async def call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        caller = self.caller(ctx)
        up, name = await self._find(params.name, "tools")
        tool = up.tools[name]
        item = pm.Item("Tool", params.name, pm.annotations_of(_hints(tool)))
        await self._decide(caller, item, "tools/call", params.arguments)
        client = up.client
        return await self._forward(up, lambda: _call_tool(_need(client), name, params.arguments))

    # resources
    async def list_resources(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        caller = self.caller(ctx)
        await self._refresh("resources")
        found = {f"{u.spec.name}:{uri}": r for u in self._live() for uri, r in u.resources.items()}
        shown = pm.visible(self.engine, caller, [pm.Item("Resource", n, {}) for n in found])
        return types.ListResourcesResult(
            resources=[found[i.name].model_copy(update={"uri": i.name}) for i in shown]
        )

    async def read_resource(
        self, ctx: Ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        caller = self.caller(ctx)
        up, uri = await self._find(str(params.uri), "resources", sep=":")
        await self._decide(caller, pm.Item("Resource", str(params.uri), {}), "resources/read", None)
        client = up.client
        return await self._forward(up, lambda: _need(client).read_resource(uri))

    # prompts
    async def list_prompts(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        caller = self.caller(ctx)
        await self._refresh("prompts")
        found = {f"{u.spec.name}.{n}": p for u in self._live() for n, p in u.prompts.items()}
        shown = pm.visible(self.engine, caller, [pm.Item("Prompt", n, {}) for n in found])
        return types.ListPromptsResult(
            prompts=[found[i.name].model_copy(update={"name": i.name}) for i in shown]
        )

    async def get_prompt(self, ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        caller = self.caller(ctx)
        up, name = await self._find(params.name, "prompts")
        await self._decide(caller, pm.Item("Prompt", params.name, {}), "prompts/get", params.arguments)
        client = up.client
        return await self._forward(up, lambda: _need(client).get_prompt(name, params.arguments))

    # -- steps --------------------------------------------------------------------------------
    async def _decide(self, caller: pm.Caller, item: pm.Item, method: str, arguments: Any) -> None:
        """Decide in a worker thread (the engine may wait on its store or audit log); raises the
        JSON-RPC error of a deny."""
        record = await asyncio.to_thread(pm.decide_call, self.engine, caller, item, method, arguments)
        if not record.allowed:
            code, message, data = pm.denial(record, approve_hint=self.approve_hint)
            raise MCPError(code, message, data)

    # -- the fast path of tools/call ------------------------------------------------------------
    def fast_target(self, published: str) -> tuple[_Upstream, types.Tool] | None:
        """The upstream and tool of a published tool name when a call of it can take the fast
        path (the upstream is connected, its link ready, the tool listed); None otherwise."""
        prefix, found, name = published.partition(".")
        up = self._upstreams.get(prefix)
        if not found or up is None or up.client is None or up.link is None or not up.link.ready():
            return None
        tool = up.tools.get(name)
        return None if tool is None else (up, tool)

    async def fast_tool_call(
        self, caller: pm.Caller, published: str, arguments: Any, version: str
    ) -> dict[str, Any] | None:
        """``tools/call`` of ``published`` on the fast path, for an agent session of protocol
        ``version``: the JSON-RPC response's member, ``{"result": ...}`` or ``{"error": ...}``, as
        the SDK's path answers it; None when the call cannot take it (:meth:`fast_target`):
        nothing was decided, the SDK's path serves it.

        Decided exactly as :meth:`call_tool` decides (same function, same audit); forwarded on
        the upstream's :class:`Link` and its answer read as the SDK's client reads it
        (:func:`client_result`) and written as the SDK's server writes it. A call that did not
        run upstream (no connection, or the upstream's session is gone) is sent again through the
        SDK's client; an upstream's JSON-RPC error passes through, and the errors the SDK's
        client makes of the connection failing mark the upstream down as :meth:`_forward` does
        (as does a lost connection on the link); a lost answer otherwise fails only that call
        (:data:`pm.UNAVAILABLE`); a timeout is ``upstream_timeout``."""
        target = self.fast_target(published)
        if target is None:
            return None
        up, tool = target
        name = tool.name
        item = pm.Item("Tool", published, pm.annotations_of(_hints(tool)))
        self.fast_calls += 1
        try:
            await self._decide(caller, item, "tools/call", arguments)
            link = up.link
            try:
                if link is None:
                    raise NotForwarded("the link closed")
                message = await asyncio.wait_for(link.call(name, arguments), self.timeout_s)
            except NotForwarded:
                client = up.client
                result = await self._forward(up, lambda: _call_tool(_need(client), name, arguments))
                return {"result": _agent_result(result, version)}
            except TimeoutError:
                raise _timeout(up, self.timeout_s) from None
            except Lost as e:
                _log.warning("upstream %r: fast forward failed: %s", up.spec.name, e)
                if e.unanswered:  # the SDK's client would wait for an answer until the timeout
                    raise _timeout(up, self.timeout_s) from None
                if e.down:
                    _mark_down(up)
                raise MCPError(
                    pm.UNAVAILABLE, f"upstream {up.spec.name!r} failed", {"reasons": ["upstream_unavailable"]}
                ) from None
            error = message.get("error")
            if error is None:
                try:
                    model = client_result(message["result"], link.protocol_version)
                except Exception as e:  # what the SDK's client refuses, _forward marks down
                    failure: BaseException = e
                else:
                    return {"result": _agent_result(model, version)}
            elif error["code"] in _TRANSPORT_ERRORS:  # as _forward treats them
                failure = MCPError.from_error_data(types.ErrorData.model_validate(error))
            else:
                return {"error": error}
            _log.warning("upstream %r failed: %r; marked down", up.spec.name, failure)
            _mark_down(up)
            raise MCPError(
                pm.UNAVAILABLE, f"upstream {up.spec.name!r} failed", {"reasons": ["upstream_unavailable"]}
            )
        except MCPError as e:
            return {"error": _error_of(e)}

    def _live(self) -> list[_Upstream]:
        return [u for u in self._upstreams.values() if u.client is not None]

    async def _find(self, published: str, kind: str, sep: str = ".") -> tuple[_Upstream, str]:
        """The upstream and its own name for a published name; refreshes that upstream's list once
        when the name is not known yet. Raises MCPError (invalid params, or unavailable)."""
        prefix, found, name = published.partition(sep)
        up = self._upstreams.get(prefix)
        if not found or up is None:
            raise MCPError(pm.INVALID_PARAMS, f"unknown {kind[:-1]} {published[:200]!r}")
        if up.client is None:
            raise MCPError(
                pm.UNAVAILABLE, f"upstream {prefix!r} is not reachable", {"reasons": ["upstream_unavailable"]}
            )
        if name not in getattr(up, kind):
            await self._refresh_one(up, kind)
            if name not in getattr(up, kind):
                raise MCPError(pm.INVALID_PARAMS, f"unknown {kind[:-1]} {published[:200]!r}")
        return up, name

    async def _refresh(self, kind: str) -> None:
        await asyncio.gather(*(self._refresh_one(u, kind) for u in self._live()))

    async def _refresh_one(self, up: _Upstream, kind: str) -> None:
        client = up.client
        if client is None:
            return
        try:
            if kind == "tools":
                up.tools = {t.name: t for t in await _pages(client.list_tools)}
                # behaviour classes each call by what the tool says it does (read-only, destructive)
                # (what this upstream lists now replaces what it listed before)
                self.engine.note_tools(
                    {
                        ("Tool", f"{up.spec.name}.{n}"): pm.annotations_of(_hints(t))
                        for n, t in up.tools.items()
                    },
                    source=up.spec.name,
                )
            elif kind == "resources":
                up.resources = {str(r.uri): r for r in await _pages(client.list_resources)}
            else:
                up.prompts = {p.name: p for p in await _pages(client.list_prompts)}
        except MCPError as e:
            if e.code != -32601:  # method not found: the upstream has none of these
                _log.warning("listing %s of upstream %r failed: %s", kind, up.spec.name, e)
            setattr(up, kind, {})
        except Exception as e:
            _log.warning("listing %s of upstream %r failed: %s", kind, up.spec.name, e)
            setattr(up, kind, {})

    async def _forward(self, up: _Upstream, send: Callable[[], Awaitable[_T]]) -> _T:
        """The upstream's answer; its own JSON-RPC errors pass through as sent. A lost
        connection marks the upstream down (not listed, calls refused) and is :data:`pm.UNAVAILABLE`."""
        try:
            return await asyncio.wait_for(send(), self.timeout_s)
        except TimeoutError:  # a slow call, not a lost connection: the upstream stays up
            raise _timeout(up, self.timeout_s) from None
        except MCPError as e:
            if e.code not in _TRANSPORT_ERRORS:
                raise  # the upstream's own JSON-RPC error, as it sent it
            failure: BaseException = e
        except Exception as e:
            failure = e
        _log.warning("upstream %r failed: %r; marked down", up.spec.name, failure)
        _mark_down(up)
        raise MCPError(
            pm.UNAVAILABLE, f"upstream {up.spec.name!r} failed", {"reasons": ["upstream_unavailable"]}
        )


# what the SDK's client raises when the connection, not the upstream, failed: connection closed
# and its internal error ("session terminated before the request completed")
_TRANSPORT_ERRORS = frozenset({-32000, -32603})


def _timeout(up: _Upstream, timeout_s: float) -> MCPError:
    return MCPError(
        pm.UNAVAILABLE,
        f"upstream {up.spec.name!r} did not answer within {timeout_s:g} s",
        {"reasons": ["upstream_timeout"]},
    )


def _mark_down(up: _Upstream) -> None:
    """``up`` is down until the gateway restarts: not listed, calls refused, no fast link."""
    up.client = None
    link, up.link = up.link, None
    if link is not None:
        link.close()


def _agent_result(result: types.CallToolResult, version: str) -> dict[str, Any]:
    """``result`` as the SDK's server writes a ``tools/call`` result on a session of protocol
    ``version`` (``ServerRunner._serialize``); raises its internal error for one it refuses."""
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    try:
        return _methods.serialize_server_result("tools/call", version, dumped)
    except (ValidationError, ValueError, KeyError):
        raise MCPError(INTERNAL_ERROR, "Handler returned an invalid result") from None


def _error_of(e: MCPError) -> dict[str, Any]:
    """The JSON-RPC error object of ``e``, as the SDK's server writes it."""
    error = e.error.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dict(error)


async def _hold(up: _Upstream, ready: anyio.Event, stop: anyio.Event) -> None:
    """Keep ``up``'s client connected until ``stop``; a failure to connect or a connection that
    dies marks it down and is logged, never raised into the gateway. A streamable HTTP upstream's
    client gets an HTTP client of ours whose response hook watches the session (:class:`Seen`),
    and the fast :class:`Link` onto that session when it can be exact."""
    try:
        if up.spec.url:
            seen = Seen()
            async with create_mcp_http_client() as http:
                http.event_hooks = {"request": [], "response": [seen.response]}
                transport = streamable_http_client(up.spec.url, http_client=http)
                async with Client(transport, cache=None, mode="legacy") as client:
                    up.client = client
                    up.link = link_for(up.spec.url, seen, client.protocol_version)
                    ready.set()
                    await stop.wait()
        else:
            async with Client(up.spec.target(), cache=None, mode="legacy") as client:
                up.client = client
                ready.set()
                await stop.wait()
    except Exception as e:  # any failure of that upstream's connection: it is down
        _log.warning("upstream %r is down: %r", up.spec.name, e)
    finally:
        _mark_down(up)
        ready.set()


async def _call_tool(client: Client, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
    """``tools/call`` on the upstream, its result passed through as it came: the agent's own
    client checks it against the tool's output schema (``Client.call_tool`` would validate it
    here a second time, and list the upstream's tools first to learn the schemas)."""
    request = types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments=arguments))
    return await client.session.send_request(request, types.CallToolResult)


def _need(client: Client | None) -> Client:
    if client is None:
        raise VigilError("the upstream is not connected", code="upstream_unavailable")
    return client


def _hints(tool: types.Tool) -> dict[str, Any] | None:
    ann = tool.annotations
    if ann is None:
        return None
    return ann.model_dump(by_alias=True, exclude_none=True)


async def _pages(fetch: Callable[..., Awaitable[Any]]) -> list[Any]:
    """Every item of a paginated list (at most 100 pages)."""
    out: list[Any] = []
    cursor: str | None = None
    for _ in range(100):
        page = await fetch(cursor=cursor)
        out.extend(
            getattr(page, "tools", None)
            or getattr(page, "resources", None)
            or getattr(page, "prompts", None)
            or []
        )
        cursor = page.next_cursor
        if not cursor:
            break
    return out
