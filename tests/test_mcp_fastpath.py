"""The gateway's fast tools/call path (vigil.mcp.fastpath, .passthrough, .http1) against real
upstreams: it is taken where it is exact, it answers and audits as the SDK's path does, and every
case it cannot serve exactly falls back to the SDK's path."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydantic_core
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
from vigil.mcp import Gateway, UpstreamSpec
from vigil.mcp.http1 import Http1Error, Origin, Pool, Reply, origin_of
from vigil.mcp.passthrough import Link, Lost, NotForwarded, Seen
from vigil.protocol import mcp as pm

BASE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamProcess]:
    up = UpstreamProcess(log=tmp_path_factory.mktemp("up") / "calls.log")
    yield up
    up.stop()


def _served(
    tmp: Path, upstreams: list[UpstreamSpec], fast: bool = True
) -> tuple[GatewayServer, Gateway, MemorySink]:
    sink = MemorySink()
    engine = Engine.from_workspace(write_workspace(tmp), audit=sink)
    gw = gateway(engine, upstreams)
    return GatewayServer(gw, fast_calls=fast), gw, sink


@pytest.fixture
def fast(tmp_path: Path, upstream: UpstreamProcess) -> Iterator[tuple[GatewayServer, Gateway, MemorySink]]:
    served = _served(tmp_path / "ws", [UpstreamSpec("files", url=upstream.url)])
    yield served
    served[0].stop()
    served[1].engine.close()


def _session(url: str, token: str, name: str = "raw", version: str = "1.0") -> str:
    """A session opened over raw HTTP (initialize, the initialized notification, and tools/list:
    the gateway learns an upstream's tools when it lists them)."""
    headers = BASE | {"Authorization": f"Bearer {token}"}
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": name, "version": version},
        },
    }
    r = httpx.post(url, json=init, headers=headers)
    assert r.status_code == 200, r.text
    sid = r.headers["mcp-session-id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers |= {"mcp-session-id": sid}
    assert httpx.post(url, json=note, headers=headers).status_code == 202
    assert (
        httpx.post(url, json={"jsonrpc": "2.0", "id": 0, "method": "tools/list"}, headers=headers).status_code
        == 200
    )
    return sid


def _post(url: str, token: str, sid: str, body: Any, **headers: str) -> httpx.Response:
    h = BASE | {
        "Authorization": f"Bearer {token}",
        "mcp-session-id": sid,
        "MCP-Protocol-Version": "2025-06-18",
    }
    h |= {k.replace("_", "-"): v for k, v in headers.items()}
    kw: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    return httpx.post(url, headers=h, **kw)


def _call(rid: Any, name: str, arguments: Any = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


def _normal(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs from one gateway to the other (decision and ticket ids)."""
    error = answer.get("error")
    if error is not None:
        error = dict(error)
        error["message"] = re.sub(r"tkt_\w+", "TICKET", error["message"])
        data = dict(error.get("data") or {})
        data.pop("decision", None)
        data.pop("ticket", None)
        error["data"] = data
        answer = answer | {"error": error}
    return answer


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("tok-admin", _call(1, "files.add", {"a": 1, "b": 2})),
    ("tok-admin", _call("id-two", "files.read_file", {"path": "/etc/passwd"})),
    ("tok-admin", _call(3, "files.echo", {"value": 0.5})),
    ("tok-admin", _call(4, "files.echo", {"value": None})),
    ("tok-admin", _call(5, "files.echo", {"value": 2**70})),
    ("tok-admin", _call(6, "files.echo", {"value": {"__entity": {"type": "A", "id": "b"}}})),
    ("tok-admin", _call(7, "files.echo", {"value": ["x", {"y": True}], "é": "ü"})),
    ("tok-reader", _call(8, "files.read_file", {"path": "/srv/reports/q3.txt"})),
    ("tok-reader", _call(9, "files.delete_file", {"path": "/tmp/x"})),
    ("tok-reader", _call(10, "files.read_file")),
    ("tok-nobody", _call(11, "files.add", {"a": 1, "b": 2})),
    ("tok-admin", _call(12, "files.add", {"a": "one", "b": 2})),  # the upstream's own error
    ("tok-admin", _call(13, "files.nope", {})),  # unknown: the SDK's path on both
    ("tok-admin", _call(14, "nope", {})),
]


def test_the_fast_path_answers_and_audits_as_the_sdk_path_does(
    tmp_path: Path, upstream: UpstreamProcess
) -> None:
    spec = [UpstreamSpec("files", url=upstream.url)]
    fast_server, fast_gw, fast_sink = _served(tmp_path / "a", spec, fast=True)
    sdk_server, sdk_gw, sdk_sink = _served(tmp_path / "b", spec, fast=False)
    try:
        answers: list[list[dict[str, Any]]] = []
        for server in (fast_server, sdk_server):
            sids = {t: _session(server.url, t, name="twin", version="2.5") for t in {t for t, _ in CALLS}}
            out = []
            for token, body in CALLS:
                r = _post(server.url, token, sids[token], body)
                assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
                assert r.headers["mcp-session-id"] == sids[token]
                out.append(_normal(r.json()))
            answers.append(out)
        assert answers[0] == answers[1]
        assert answers[0][0] == {
            "jsonrpc": "2.0",
            "id": 1,
            "result": {
                "content": [{"type": "text", "text": "3"}],
                "structuredContent": {"result": 3},
                "isError": False,
            },
        }
        assert answers[0][1]["id"] == "id-two" and answers[0][1]["error"]["data"]["reasons"] == [
            "policy_forbid"
        ]
        assert answers[0][4]["error"]["data"]["error"]["code"] == "invalid_value"  # a 70-bit integer
        # every call of a tool the gateway lists took the fast path on one gateway, none on the other
        assert fast_gw.fast_calls == 12 and sdk_gw.fast_calls == 0

        def audited(sink: MemorySink) -> list[tuple[Any, ...]]:
            return [
                (
                    r.principal,
                    r.resource,
                    r.allowed,
                    r.reason_codes,
                    {k: v for k, v in (r.context or {}).items() if k != "mcp"},
                    {k: v for k, v in (r.context or {}).get("mcp", {}).items() if k != "session"},
                    bool((r.context or {}).get("mcp", {}).get("session")),
                )
                for r in sink.records
            ]

        assert audited(fast_sink) == audited(sdk_sink)
        first = audited(fast_sink)[0]
        assert first[5] == {"client": "twin", "client_version": "2.5", "method": "tools/call"}
        assert first[4]["user_agent"] == "twin/2.5" and first[4]["ip"] == "127.0.0.1" and first[6]
    finally:
        for s, g in ((fast_server, fast_gw), (sdk_server, sdk_gw)):
            s.stop()
            g.engine.close()


def test_the_sdk_client_through_the_gateway_takes_the_fast_path(
    fast: tuple[GatewayServer, Gateway, MemorySink],
) -> None:
    server, gw, sink = fast

    async def go() -> None:
        async with client(server.url, "tok-admin") as c:
            await c.list_tools()  # (the gateway knows an upstream's tools once it listed them)
            for i in range(5):
                assert (await c.call_tool("files.add", {"a": i, "b": 1})).structured_content == {
                    "result": i + 1
                }
            with pytest.raises(MCPError) as e:
                await c.call_tool("files.read_file", {"path": "/etc/hosts"})
            assert e.value.code == pm.DENIED and e.value.data["reasons"] == ["policy_forbid"]

    run(go)
    assert gw.fast_calls == 6
    assert [r.allowed for r in sink.records] == [True] * 5 + [False]
    assert sink.records[0].context["mcp"]["client"] == "test-agent"


def test_concurrent_calls_get_their_own_answers(fast: tuple[GatewayServer, Gateway, MemorySink]) -> None:
    """Many calls at once on one upstream session (and lists through the SDK's client beside them):
    each answer goes back to its own request."""
    server, gw, sink = fast

    async def go() -> None:
        import anyio

        async with client(server.url, "tok-admin") as c, client(server.url, "tok-reader") as r:
            await c.list_tools()
            got: dict[int, Any] = {}

            async def one(i: int) -> None:
                got[i] = (await c.call_tool("files.add", {"a": i, "b": 1000})).structured_content

            async def lists() -> None:
                for _ in range(5):
                    assert {t.name for t in (await r.list_tools()).tools} == {"files.read_file", "files.add"}

            async with anyio.create_task_group() as tg:
                for i in range(60):
                    tg.start_soon(one, i)
                tg.start_soon(lists)
            assert got == {i: {"result": i + 1000} for i in range(60)}

    run(go)
    assert gw.fast_calls == 60 and len(sink.records) == 60 and all(r.allowed for r in sink.records)


FALLBACKS: dict[str, tuple[Any, dict[str, str]]] = {
    "an unknown param": (
        {**_call(1, "files.add", {"a": 1, "b": 1}), "params": {"name": "files.add", "task": {}}},
        {},
    ),
    "an extra member": ({**_call(1, "files.add", {"a": 1, "b": 1}), "extra": 1}, {}),
    "a null id": (_call(None, "files.add", {"a": 1, "b": 1}), {}),
    "a boolean id": (_call(True, "files.add", {"a": 1, "b": 1}), {}),
    "a float id": (_call(1.5, "files.add", {"a": 1, "b": 1}), {}),
    "arguments not an object": (_call(1, "files.add", [1, 2]), {}),
    "a name not a string": ({**_call(1, "x"), "params": {"name": 5}}, {}),
    "a batch": ([_call(1, "files.add", {"a": 1, "b": 1})], {}),
    "jsonrpc 1.0": ({**_call(1, "files.add", {"a": 1, "b": 1}), "jsonrpc": "1.0"}, {}),
    "not JSON": (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "files.add"', {}),
    "another host (DNS rebinding)": (_call(1, "files.add", {"a": 1, "b": 1}), {"Host": "evil.example.com"}),
    "another origin": (_call(1, "files.add", {"a": 1, "b": 1}), {"Origin": "http://evil.example.com"}),
    "no JSON accepted": (_call(1, "files.add", {"a": 1, "b": 1}), {"Accept": "text/event-stream"}),
    "not JSON content": (_call(1, "files.add", {"a": 1, "b": 1}), {"Content-Type": "text/plain"}),
    "a modern protocol version": (
        _call(1, "files.add", {"a": 1, "b": 1}),
        {"MCP-Protocol-Version": "2099-01-01"},
    ),
    "an unknown session": (_call(1, "files.add", {"a": 1, "b": 1}), {"mcp-session-id": "0123abcd"}),
    "a modern envelope": (
        {
            **_call(1, "x"),
            "params": {"name": "files.add", "_meta": {"io.modelcontextprotocol/protocolVersion": "x"}},
        },
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_what_the_fast_path_cannot_serve_exactly_goes_to_the_sdk(
    case: str, fast: tuple[GatewayServer, Gateway, MemorySink], upstream: UpstreamProcess
) -> None:
    server, gw, _ = fast
    sid = _session(server.url, "tok-admin")
    body, headers = FALLBACKS[case]
    r = _post(server.url, "tok-admin", sid, body, **headers)
    assert gw.fast_calls == 0, case
    assert r.status_code != 500, (case, r.text)
    if r.status_code == 200:  # the SDK's path served it: the same answer as ever
        assert "error" in r.json() or "result" in r.json()
    # and the session still serves a call on the fast path
    ok = _post(server.url, "tok-admin", sid, _call(99, "files.add", {"a": 1, "b": 1}))
    assert ok.json()["result"]["structuredContent"] == {"result": 2}
    assert gw.fast_calls == 1


def test_another_agents_token_on_a_session_is_refused_and_not_forwarded(
    fast: tuple[GatewayServer, Gateway, MemorySink],
) -> None:
    server, gw, sink = fast
    sid = _session(server.url, "tok-admin")
    r = _post(server.url, "tok-reader", sid, _call(1, "files.delete_file", {"path": "/tmp/x"}))
    assert r.status_code == 404  # the SDK's answer: that session is not the reader's
    assert gw.fast_calls == 0 and not sink.records
    r = _post(server.url, "not-a-token", sid, _call(1, "files.add", {"a": 1, "b": 1}))
    assert r.status_code == 401 and gw.fast_calls == 0


def test_a_session_ended_by_the_agent_is_not_served(fast: tuple[GatewayServer, Gateway, MemorySink]) -> None:
    server, gw, _ = fast
    sid = _session(server.url, "tok-admin")
    assert _post(server.url, "tok-admin", sid, _call(1, "files.add", {"a": 1, "b": 1})).status_code == 200
    h = BASE | {"Authorization": "Bearer tok-admin", "mcp-session-id": sid}
    assert httpx.delete(server.url, headers=h).status_code in (200, 204)
    r = _post(server.url, "tok-admin", sid, _call(2, "files.add", {"a": 1, "b": 1}))
    assert r.status_code == 404 and gw.fast_calls == 1


def test_a_fast_call_holds_the_sessions_idle_countdown_as_the_sdk_does(
    fast: tuple[GatewayServer, Gateway, MemorySink],
) -> None:
    server, gw, _ = fast
    sid = _session(server.url, "tok-admin")
    manager = server.server.config.app  # the Starlette app; find the session manager's transport
    transports = _manager_of(manager)._server_instances
    transport = transports[sid]
    assert transport._requests_in_flight == 0 and transport.idle_scope is not None
    before = transport.idle_scope.deadline
    assert _post(server.url, "tok-admin", sid, _call(1, "files.add", {"a": 1, "b": 1})).status_code == 200
    assert gw.fast_calls == 1
    assert transport._requests_in_flight == 0
    assert before < transport.idle_scope.deadline < float("inf")  # restarted after the call


def _manager_of(app: Any) -> Any:
    from vigil.mcp.fastpath import FastCalls

    seen: list[Any] = []

    def walk(node: Any, depth: int = 0) -> None:
        if depth > 12 or node is None:
            return
        if isinstance(node, FastCalls):
            seen.append(node.manager)
            return
        for attr in ("app", "routes", "endpoint", "middleware_stack", "session_manager"):
            child = getattr(node, attr, None)
            if attr == "session_manager" and child is not None:
                walk(child.asgi_app, depth + 1)
            elif isinstance(child, list):
                for c in child:
                    walk(c, depth + 1)
            elif child is not None and child is not node:
                walk(child, depth + 1)

    walk(app)
    assert seen, "no FastCalls layer found"
    return seen[0]


def test_a_fault_on_the_fast_path_is_the_sdks_internal_error(
    fast: tuple[GatewayServer, Gateway, MemorySink], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, gw, _ = fast
    sid = _session(server.url, "tok-admin")
    real = gw.fast_tool_call

    async def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(gw, "fast_tool_call", broken)
    r = _post(server.url, "tok-admin", sid, _call(7, "files.add", {"a": 1, "b": 1}))
    assert r.status_code == 200
    assert r.json() == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32603, "message": "Internal server error"},
    }
    monkeypatch.setattr(gw, "fast_tool_call", real)
    ok = _post(server.url, "tok-admin", sid, _call(8, "files.add", {"a": 1, "b": 1}))
    assert ok.json()["result"]["structuredContent"] == {"result": 2} and gw.fast_calls == 1


def test_sse_and_stdio_upstreams_are_served_by_the_sdks_client(tmp_path: Path) -> None:
    sse = UpstreamProcess(mode="http-sse")
    server, gw, sink = _served(tmp_path / "ws", [UpstreamSpec("files", url=sse.url), stdio_spec("local")])
    try:
        assert all(up.link is None for up in gw._upstreams.values())

        async def go() -> None:
            async with client(server.url, "tok-admin") as c:
                assert (await c.call_tool("files.add", {"a": 2, "b": 2})).structured_content == {"result": 4}
                assert (await c.call_tool("local.add", {"a": 2, "b": 3})).structured_content == {"result": 5}

        run(go)
        assert gw.fast_calls == 0 and [r.allowed for r in sink.records] == [True, True]
    finally:
        server.stop()
        gw.engine.close()
        sse.stop()


def test_an_upstream_session_that_expired_is_not_called_twice(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    up = UpstreamProcess(log=log)
    server, gw, _ = _served(tmp_path / "ws", [UpstreamSpec("files", url=up.url)])
    try:
        link = gw._upstreams["files"].link
        assert link is not None and link.ready()
        sid = _session(server.url, "tok-admin")
        assert _post(server.url, "tok-admin", sid, _call(1, "files.add", {"a": 1, "b": 1})).status_code == 200
        # the upstream ends the gateway's session (as an idle timeout or a restart would)
        headers = BASE | {
            "mcp-session-id": str(link.seen.session_id),
            "MCP-Protocol-Version": link.protocol_version,
        }
        assert httpx.delete(up.url, headers=headers).status_code in (200, 204)
        r = _post(server.url, "tok-admin", sid, _call(2, "files.add", {"a": 1, "b": 1}))
        # refused before it ran (HTTP 404): the link is off and the call went the SDK's way, whose
        # client got the same 404 and answers what the SDK's path always answered
        assert r.json()["error"] == {"code": -32600, "message": "Session not found"}
        assert log.read_text().splitlines() == ["add"]  # the refused call ran nowhere
        assert gw.fast_calls == 2 and not link.enabled and not link.ready()
        r = _post(server.url, "tok-admin", sid, _call(3, "files.add", {"a": 1, "b": 1}))
        assert "error" in r.json() and gw.fast_calls == 2  # not taken again
    finally:
        server.stop()
        gw.engine.close()
        up.stop()


# -- the link and the HTTP client, on their own ---------------------------------------------------
class _Canned:
    """A stand-in for http1.Pool: answers each post with the next canned reply (or raises it)."""

    def __init__(self, *replies: Reply | Exception) -> None:
        self.replies = list(replies)
        self.sent: list[bytes] = []

    async def post(self, headers: list[tuple[bytes, bytes]], body: bytes) -> Reply:
        self.sent.append(body)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self) -> None:
        pass


def _link(*replies: Reply | Exception) -> Link:
    return Link(_Canned(*replies), Seen("abc", json=True), "2025-06-18")  # type: ignore[arg-type]


def _json(body: bytes, status: int = 200) -> Reply:
    return Reply(status, {"content-type": "application/json"}, body)


_PARSE = {"code": -32700}
_SERVER_ERROR = {"error": {"code": -32603, "message": "Server returned an error response"}}


@pytest.mark.parametrize(
    ("reply", "expected", "enabled"),
    [
        (Http1Error("refused", sent=False), NotForwarded, True),  # nothing sent: the SDK's path
        (Http1Error("reset", sent=True), (Lost, True), True),  # the connection broke: down
        (_json(b"{}", 404), NotForwarded, False),  # the session is gone: the SDK's path
        (_json(b"{}", 406), _SERVER_ERROR, True),  # (it may have run: never sent again)
        (_json(b"{}", 500), _SERVER_ERROR, True),
        (
            _json(b'{"jsonrpc": "2.0", "id": null, "error": {"code": 7, "message": "m"}}', 400),
            {"error": {"code": 7, "message": "m"}},
            True,
        ),
        (Reply(200, {"content-type": "text/event-stream"}, b"data: {}\n\n"), (Lost, False), False),
        (Reply(302, {"location": "/elsewhere"}, b""), (Lost, False), False),
        (Reply(200, {"content-type": "text/html"}, b"x"), {"error": {"code": -32600}}, True),
        (_json(b'{"jsonrpc": "2.0", "id": "vigil-999", "result": {"content": []}}'), (Lost, False), True),
        (_json(b'{"jsonrpc": "2.0", "id": "vigil-1", "result": {}}'), {"result": {}}, True),
        (_json(b'{"jsonrpc": "2.0", "id": "vigil-1", "error": {"code": "x", "message": "m"}}'), _PARSE, True),
        (  # (the SDK's adapter reads the result and ignores the rest)
            _json(b'{"jsonrpc": "2.0", "id": "vigil-1", "result": {"content": []}, "error": {}}'),
            {"result": {"content": []}},
            True,
        ),
        (_json(b"not json"), _PARSE, True),
        (
            Reply(200, {"content-type": "application/json", "content-encoding": "gzip"}, b"x"),
            (Lost, False),
            True,
        ),
    ],
)
def test_the_link_reads_an_answer_as_the_sdks_client_reads_it(
    reply: Reply | Exception, expected: Any, enabled: bool
) -> None:
    """Only a connection that broke is ``down``; an HTTP error status or a body the SDK's client
    cannot parse is the JSON-RPC error that client makes of it; only 404 and no connection at all
    are sent again (through the SDK's client)."""
    link = _link(reply)
    if expected is NotForwarded:
        with pytest.raises(NotForwarded):
            asyncio.run(link.call("add", {"a": 1}))
    elif isinstance(expected, tuple):
        with pytest.raises(Lost) as e:
            asyncio.run(link.call("add", {"a": 1}))
        assert e.value.down is expected[1]
    else:
        got = asyncio.run(link.call("add", {"a": 1}))
        if expected is _PARSE:
            assert got["error"]["code"] == -32700 and got["error"]["message"].startswith("Failed to parse")
        elif "error" in expected and "message" not in expected["error"]:
            assert got["error"]["code"] == expected["error"]["code"]
        else:
            assert got == expected
    assert link.enabled is enabled


def test_a_link_turned_off_for_a_session_is_on_again_for_the_next() -> None:
    link = _link(_json(b"{}", 404))
    with pytest.raises(NotForwarded):
        asyncio.run(link.call("add", {}))
    assert not link.ready()
    link.seen.session_id = "def"  # the SDK's client opened a new upstream session
    assert link.ready()


def test_the_link_passes_the_upstreams_answer_through() -> None:
    answer = b'{"jsonrpc": "2.0", "id": "vigil-1", "result": {"content": [], "n": 123456789012345678901234}}'
    link = _link(_json(answer))
    got = asyncio.run(link.call("add", {"big": 2**70, "f": 0.1}))
    assert set(got) == {"result"}
    assert got["result"]["n"] == 123456789012345678901234  # not rounded through a float
    assert link._ids and b'"big":1180591620717411303424' in link.pool.sent[0]  # type: ignore[attr-defined]
    assert b'"f":0.1' in link.pool.sent[0]  # type: ignore[attr-defined]


def test_a_slow_upstream_is_a_timeout_and_stays_up(tmp_path: Path, upstream: UpstreamProcess) -> None:
    server, gw, sink = _served(tmp_path / "ws", [UpstreamSpec("files", url=upstream.url)])
    try:
        up = gw._upstreams["files"]

        class Slow(_Canned):
            async def post(self, headers: list[tuple[bytes, bytes]], body: bytes) -> Reply:
                await asyncio.sleep(30)
                raise AssertionError

        assert up.link is not None
        up.link.pool = Slow()  # type: ignore[assignment]
        gw.timeout_s = 0.2
        sid = _session(server.url, "tok-admin")
        r = _post(server.url, "tok-admin", sid, _call(1, "files.add", {"a": 1, "b": 1}))
        error = r.json()["error"]
        assert error["code"] == pm.UNAVAILABLE and error["data"] == {"reasons": ["upstream_timeout"]}
        assert up.client is not None and gw.fast_calls == 1 and sink.records[0].allowed
    finally:
        server.stop()
        gw.engine.close()


def test_origins_the_client_serves() -> None:
    assert origin_of("http://127.0.0.1:9000/mcp?x=1") == Origin("127.0.0.1", 9000, "/mcp?x=1")
    assert origin_of("http://[::1]/mcp") == Origin("::1", 80, "/mcp")
    assert Origin("::1", 80, "/").host_header == b"[::1]"
    for url in (
        "https://a/mcp",
        "http://u:p@a/mcp",
        "http://a/mcp#f",
        "http:///mcp",
        "ftp://a",
        "http://a:99999/",
    ):
        assert origin_of(url) is None, url


def test_the_http_client_reads_chunked_and_keeps_connections() -> None:
    async def go() -> None:
        accepted = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            for i in range(3):
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                if i < 2:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                    )
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                await writer.drain()
            writer.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        pool = Pool(Origin("127.0.0.1", port, "/mcp"))
        assert (await pool.post([], b"1")).body == b"abcde"
        assert (await pool.post([], b"2")).body == b"abcde"
        last = await pool.post([(b"X", b"y")], b"3")
        assert last.body == b"ok" and last.headers["connection"] == "close"
        assert accepted == 1 and not pool._idle  # one connection for three, not kept after close
        srv.close()
        with pytest.raises(Http1Error) as e:
            await Pool(Origin("127.0.0.1", port, "/")).post([], b"")
        assert e.value.sent is False

    asyncio.run(go())


# -- malformed input on the fast path's door ------------------------------------------------------
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_bodies = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
        "id": st.none() | st.integers() | st.text(max_size=4) | st.booleans() | st.floats(allow_nan=False),
        "method": st.sampled_from(["tools/call", "tools/list", "x"]),
        "params": _json_values
        | st.fixed_dictionaries(
            {"name": st.sampled_from(["files.add", "files.echo", "files.nope", "x"]) | st.text(max_size=5)},
            optional={"arguments": _json_values, "_meta": _json_values, "extra": _json_values},
        ),
    },
)


_near_calls = st.fixed_dictionaries(
    {
        "jsonrpc": st.just("2.0"),
        "id": st.integers() | st.text(max_size=4),
        "method": st.just("tools/call"),
        "params": st.fixed_dictionaries(
            {"name": st.sampled_from(["files.add", "files.echo", "files.read_file"])},
            optional={
                "arguments": st.dictionaries(st.sampled_from(["a", "b", "value", "path"]), _json_values)
            },
        ),
    }
)


def test_malformed_json_rpc_on_the_fast_path_is_answered_never_crashes(
    fast: tuple[GatewayServer, Gateway, MemorySink],
) -> None:
    server, gw, sink = fast
    sid = _session(server.url, "tok-admin")

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(body=_near_calls | _bodies | _json_values)
    def one(body: Any) -> None:
        r = _post(server.url, "tok-admin", sid, body)
        assert r.status_code in (200, 202, 400), (body, r.status_code, r.text)
        if r.status_code == 200:
            answer = r.json()
            assert answer["jsonrpc"] == "2.0" and ("result" in answer or "error" in answer), answer

    one()
    ok = _post(server.url, "tok-admin", sid, _call(1, "files.add", {"a": 1, "b": 1}))
    assert ok.json()["result"]["structuredContent"] == {"result": 2}
    assert gw.fast_calls > 1  # some of the generated calls were well formed and went the fast way
    assert all(r.principal == ("Agent", "admin") for r in sink.records)


# -- a hostile upstream: per-response problems fail that call as the SDK's path fails it ----------
class HostileProcess(UpstreamProcess):
    """tests/mcp_hostile.py in a subprocess (its tools answer what a test tells them to)."""

    def __init__(self, log: Path | None = None) -> None:
        import subprocess
        import sys

        from tests.mcp_support import free_port, wait_port

        self.port = free_port()
        env = dict(os.environ)
        if log is not None:
            env["MCP_UPSTREAM_LOG"] = str(log)
        here = Path(__file__).parent
        self.proc = subprocess.Popen(
            [sys.executable, str(here / "mcp_hostile.py"), str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}/mcp"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileProcess]:
    up = HostileProcess(log=tmp_path_factory.mktemp("hostile") / "calls.log")
    yield up
    up.stop()


def _raw(status: int, body: str, content_type: str = "application/json") -> dict[str, Any]:
    return {"status": status, "content_type": content_type, "body": body}


_RPC_ERROR = '{"jsonrpc": "2.0", "id": {id}, "error": {"code": -32001, "message": "insufficient scope"}}'
_OK = '{"jsonrpc": "2.0", "id": {id}, "result": %s}'
HOSTILE: dict[str, tuple[str, dict[str, Any]]] = {
    "403 with a JSON-RPC error": ("raw", _raw(403, _RPC_ERROR)),
    "429 with a JSON-RPC error": ("raw", _raw(429, _RPC_ERROR)),
    "500 with a JSON-RPC error": ("raw", _raw(500, _RPC_ERROR)),
    "403 with a JSON-RPC error of id null": ("raw", _raw(403, _RPC_ERROR.replace("{id}", "null"))),
    "400 with a JSON-RPC error after it ran": ("ran_then", _raw(400, _RPC_ERROR)),
    "406 with a JSON-RPC error after it ran": ("ran_then", _raw(406, _RPC_ERROR)),
    "413 with a JSON-RPC error after it ran": ("ran_then", _raw(413, _RPC_ERROR)),
    "421 with plain text after it ran": ("ran_then", _raw(421, "nope", "text/plain")),
    "502 with HTML": ("raw", _raw(502, "<html>bad gateway</html>", "text/html")),
    "403 with JSON that is not JSON-RPC": ("raw", _raw(403, '{"detail": "no"}')),
    "200 with text": ("raw", _raw(200, "hello", "text/plain")),
    "200 with no content type": ("raw", _raw(200, _OK % '{"content": []}', "")),
    "202 to a request": ("raw", _raw(202, "")),
    "a bogus content type of item": ("raw", _raw(200, _OK % '{"content": [{"type": "bogus"}]}')),
    "isError not a boolean": ("raw", _raw(200, _OK % '{"content": [], "isError": "yes"}')),
    "NaN in structuredContent": (
        "raw",
        _raw(200, _OK % '{"content": [], "structuredContent": {"x": NaN, "y": -Infinity}}'),
    ),
    "a null in a content item": (
        "raw",
        _raw(200, _OK % '{"content": [{"type": "text", "text": "a", "annotations": null}]}'),
    ),
    "an image item": (
        "raw",
        _raw(200, _OK % '{"content": [{"type": "image", "data": "AAAA", "mimeType": "image/png"}]}'),
    ),
    "an extra member of the result": ("raw", _raw(200, _OK % '{"content": [], "extra": {"a": [1, 2.5]}}')),
    "a big integer": (
        "raw",
        _raw(200, _OK % '{"content": [], "structuredContent": {"n": 123456789012345678901234}}'),
    ),
    "a plain result": (
        "raw",
        _raw(200, _OK % '{"content": [{"type": "text", "text": "t"}], "isError": true}'),
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_upstreams_answer_is_the_sdk_paths_answer(
    case: str, tmp_path: Path, hostile: HostileProcess
) -> None:
    """Each answer an upstream may give to one call: the fast path answers the agent what the SDK's
    path answers, and keeps the upstream up exactly when the SDK's path keeps it up."""
    tool, arguments = HOSTILE[case]
    spec = [UpstreamSpec("files", url=hostile.url)]
    got = []
    for fast in (True, False):
        server, gw, _ = _served(tmp_path / f"ws{fast}", spec, fast=fast)
        try:
            sid = _session(server.url, "tok-admin")
            r = _post(server.url, "tok-admin", sid, _call(7, f"files.{tool}", arguments))
            assert r.status_code == 200, r.text
            up = gw._upstreams["files"]
            got.append((_normal(r.json()), up.client is not None))
            assert gw.fast_calls == (1 if fast else 0)
            if up.client is not None:  # the next call is served as ever
                ok = _post(server.url, "tok-admin", sid, _call(8, "files.echo", {"value": 1}))
                assert ok.json()["result"]["content"] == [{"type": "text", "text": "1"}], ok.text
        finally:
            server.stop()
            gw.engine.close()
    assert got[0] == got[1], case


def test_a_call_that_may_have_run_is_never_sent_twice(tmp_path: Path) -> None:
    """An error status after the tool ran (400, 406, 413, 415, 421...) is the upstream's answer,
    not a reason to send the call again: the tool ran once, and the link stays on."""
    log = tmp_path / "calls.log"
    up = HostileProcess(log=log)
    server, gw, _ = _served(tmp_path / "ws", [UpstreamSpec("files", url=up.url)])
    try:
        sid = _session(server.url, "tok-admin")
        for i, status in enumerate((400, 405, 406, 413, 415, 421)):
            r = _post(server.url, "tok-admin", sid, _call(i, "files.ran_then", _raw(status, _RPC_ERROR)))
            assert r.json()["error"] == {"code": -32001, "message": "insufficient scope"}
        assert log.read_text().splitlines() == ["ran_then"] * 6
        link = gw._upstreams["files"].link
        assert link is not None and link.ready() and gw.fast_calls == 6
    finally:
        server.stop()
        gw.engine.close()
        up.stop()


def test_a_response_larger_than_64_mib_is_passed_as_the_sdk_passes_it(
    tmp_path: Path, hostile: HostileProcess
) -> None:
    server, gw, _ = _served(tmp_path / "ws", [UpstreamSpec("files", url=hostile.url)])
    try:
        sid = _session(server.url, "tok-admin")
        n = 65 * 1024 * 1024
        r = _post(server.url, "tok-admin", sid, _call(1, "files.big", {"n": n}))
        assert len(r.json()["result"]["content"][0]["text"]) == n
        assert gw._upstreams["files"].client is not None and gw.fast_calls == 1
    finally:
        server.stop()
        gw.engine.close()


@pytest.mark.parametrize("kind", ["application/jsonx", "application/json-seq"])
def test_a_content_type_the_sdks_transport_refuses_is_its_answer(
    kind: str, fast: tuple[GatewayServer, Gateway, MemorySink]
) -> None:
    server, gw, sink = fast
    sid = _session(server.url, "tok-admin")
    body = pydantic_core.to_json(_call(1, "files.add", {"a": 1, "b": 1}))
    r = _post(server.url, "tok-admin", sid, body, Content_Type=kind)
    assert r.status_code == 415 and gw.fast_calls == 0 and not sink.records


def test_the_client_of_a_session_is_the_one_the_sdks_server_knows(
    fast: tuple[GatewayServer, Gateway, MemorySink],
) -> None:
    """A session re-initialized with another client, or opened by an initialize the SDK answered
    with an error, is audited with the client the SDK's server holds (the SDK's path serves it)."""
    server, gw, sink = fast
    init = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "second", "version": "2"},
        },
    }
    sid = _session(server.url, "tok-admin", name="first", version="1")
    _post(server.url, "tok-admin", sid, init)
    _post(server.url, "tok-admin", sid, _call(6, "files.add", {"a": 1, "b": 2}))
    sdk_saw = {k: v for k, v in sink.records[-1].context["mcp"].items() if k != "session"}
    assert gw.fast_calls == 0
    # an initialize the SDK refuses opens no session served here
    bad = init | {"params": init["params"] | {"capabilities": 5}}  # type: ignore[operator]
    headers = BASE | {"Authorization": "Bearer tok-admin"}
    r = httpx.post(server.url, json=bad, headers=headers)
    if "mcp-session-id" in r.headers:
        _post(server.url, "tok-admin", r.headers["mcp-session-id"], _call(7, "files.add", {"a": 1, "b": 2}))
    assert gw.fast_calls == 0, sdk_saw


def test_link_for_an_url_it_cannot_write_is_none() -> None:
    from vigil.mcp.passthrough import link_for

    seen = Seen("abc", json=True)
    assert link_for("http://127.0.0.1:9/mcp", seen, "2025-06-18") is not None
    for url in ("http://127.0.0.1:9/m\u00e9cp", "http://" + "a" * 64 + ".example/mcp"):
        assert link_for(url, seen, "2025-06-18") is None, url


def test_the_http_client_reuses_a_connection_only_when_nothing_else_came(
    tmp_path: Path,
) -> None:
    """An interim 100 Continue is skipped; bytes after a response, or arriving later, mean the
    connection is not reused; a protocol switch and endless headers are errors of that exchange."""
    answers = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokgarbage",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * (200 * 1024) + b"\r\n\r\n",
    ]

    async def go() -> None:
        accepted = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
                    i = int(await reader.readexactly(length))
                    writer.write(answers[i])
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        pool = Pool(Origin("127.0.0.1", srv.sockets[0].getsockname()[1], "/mcp"))
        first = await pool.post([], b"0")
        assert (first.status, first.body) == (200, b"ok") and len(pool._idle) == 1  # (read whole)
        for i in (1, 2):
            got = await pool.post([], b"%d" % i)
            assert (got.status, got.body) == (200, b"ok") and not pool._idle
        for i in (3, 4):
            with pytest.raises(Http1Error) as e:
                await pool.post([], b"%d" % i)
            assert e.value.sent
        assert accepted == 4
        srv.close()

    asyncio.run(go())
