"""The MCP gateway end to end: the SDK's client -> vigil's gateway -> real upstream MCP servers
(streamable HTTP in a subprocess, stdio started by the gateway)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.mcp_support import (
    UPSTREAM,
    GatewayServer,
    UpstreamProcess,
    client,
    free_port,
    gateway,
    run,
    stdio_spec,
    wait_port,
    write_workspace,
)
from vigil.audit import MemorySink
from vigil.engine import Engine
from vigil.mcp import UpstreamSpec
from vigil.protocol import mcp as pm


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


def _denied(e: pytest.ExceptionInfo[MCPError]) -> dict[str, Any]:
    assert e.value.code == -32001, e.value
    data = e.value.data
    assert isinstance(data, dict)
    return data


def test_arguments_decide_calls_and_every_call_is_audited(
    served: tuple[GatewayServer, Engine, MemorySink],
) -> None:
    gw, _, sink = served

    async def go() -> None:
        async with client(gw.url, "tok-reader") as c:
            r = await c.call_tool("files.read_file", {"path": "/srv/reports/q3.txt"})
            assert not r.is_error and r.content[0].text == "contents of /srv/reports/q3.txt"  # type: ignore[union-attr]
            with pytest.raises(MCPError) as e:
                await c.call_tool("files.read_file", {"path": "/home/priya/notes"})
            assert _denied(e)["reasons"] == ["no_matching_permit"]
            with pytest.raises(MCPError) as e:
                await c.call_tool("files.delete_file", {"path": "/srv/reports/q3.txt"})
            assert _denied(e)["reasons"] == ["policy_forbid"]
            assert (await c.call_tool("files.add", {"a": 2, "b": 40})).structured_content == {"result": 42}
        async with client(gw.url, "tok-admin") as c:
            with pytest.raises(MCPError) as e:
                await c.call_tool("files.read_file", {"path": "/etc/shadow"})
            assert _denied(e)["reasons"] == ["policy_forbid"]
            r = await c.call_tool("files.delete_file", {"path": "/tmp/x"})
            assert r.content[0].text == "deleted /tmp/x"  # type: ignore[union-attr]

    run(go)
    calls = [
        (r.principal[1], r.resource, r.allowed, r.context["arguments"].get("path")) for r in sink.records
    ]
    assert calls == [
        ("reader", ("Tool", "files.read_file"), True, "/srv/reports/q3.txt"),
        ("reader", ("Tool", "files.read_file"), False, "/home/priya/notes"),
        ("reader", ("Tool", "files.delete_file"), False, "/srv/reports/q3.txt"),
        ("reader", ("Tool", "files.add"), True, None),
        ("admin", ("Tool", "files.read_file"), False, "/etc/shadow"),
        ("admin", ("Tool", "files.delete_file"), True, "/tmp/x"),
    ]
    first = sink.records[0]
    assert first.context is not None
    mcp = first.context["mcp"]
    assert mcp["client"] == "test-agent" and mcp["client_version"] == "1.0" and mcp["method"] == "tools/call"
    assert mcp["session"]  # the streamable HTTP session id
    assert first.context["user_agent"] == "test-agent/1.0"


def test_values_cedar_cannot_hold_are_denied_with_a_clear_code(
    served: tuple[GatewayServer, Engine, MemorySink],
) -> None:
    gw, _, sink = served

    async def go() -> list[dict[str, Any]]:
        out = []
        async with client(gw.url, "tok-admin") as c:
            for value in (1.5, None, 2**70, {"__entity": {"type": "Agent", "id": "admin"}}):
                with pytest.raises(MCPError) as e:
                    await c.call_tool("files.echo", {"value": value})
                out.append(_denied(e))
            ok = await c.call_tool("files.echo", {"value": {"a": [1, "x", True, {"b": -3}]}})
            assert not ok.is_error
        return out

    for data in run(go):
        assert data["reasons"] == ["invalid_request"]
        assert data["error"]["code"] == "invalid_value" and "arguments.value" in data["error"]["message"]
    assert [r.reason_codes for r in sink.records[:4]] == [("invalid_request",)] * 4
    assert sink.records[4].allowed


def test_no_token_or_a_bad_one_is_refused_with_the_metadata_pointer(
    served: tuple[GatewayServer, Engine, MemorySink],
) -> None:
    gw, _, sink = served
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    base = gw.url.removesuffix("/mcp")
    for auth in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        r = httpx.post(gw.url, json=body, headers=headers | auth)
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer") and "resource_metadata=" in challenge
        meta_url = challenge.split('resource_metadata="')[1].split('"')[0]
        meta = httpx.get(meta_url).json()
        assert meta["resource"] == gw.url and meta["authorization_servers"] == ["http://127.0.0.1:8765/"]
    # every refusal is in the audit log, the refused token only as a fingerprint
    refused = [e for e in sink.operator_events if e["type"] == "authentication_refused"]
    assert [e["reason"] for e in refused] == ["no_token", "unauthenticated", "no_token"]
    assert all(e["peer"] == "127.0.0.1" and e["path"] == "/mcp" and e["by"] == "vigil.mcp" for e in refused)
    assert len(refused[1]["token"]) == 16 and "nope" not in str(refused)
    assert not sink.records  # no decision was made
    meta = httpx.get(base + "/.well-known/oauth-protected-resource").json()
    assert meta["resource"] == gw.url

    async def go() -> None:
        with pytest.raises(Exception):  # noqa: B017 - the SDK reports the 401 as its own error
            async with client(gw.url, "wrong-token") as c:
                await c.list_tools()

    run(go)


def test_an_agent_the_workspace_does_not_know_sees_nothing_and_is_denied(
    served: tuple[GatewayServer, Engine, MemorySink],
) -> None:
    gw, _, _ = served

    async def go() -> None:
        async with client(gw.url, "tok-nobody") as c:
            assert (await c.list_tools()).tools == []
            with pytest.raises(MCPError) as e:
                await c.call_tool("files.add", {"a": 1, "b": 1})
            assert _denied(e)["reasons"] == ["unknown_identity"]

    run(go)


def test_quarantine_cuts_a_live_session(served: tuple[GatewayServer, Engine, MemorySink]) -> None:
    gw, engine, _ = served

    async def go() -> None:
        async with client(gw.url, "tok-admin") as c, client(gw.url, "tok-admin", name="other") as c2:
            assert (await c.call_tool("files.add", {"a": 1, "b": 1})).structured_content == {"result": 2}
            assert len((await c2.list_tools()).tools) == 4
            engine.desk.add(("Agent", "admin"), by="priya.raman", reason="went rogue")
            for session in (c, c2):
                with pytest.raises(MCPError) as e:
                    await session.call_tool("files.add", {"a": 1, "b": 1})
                data = _denied(e)
                assert data["reasons"] == ["quarantined"] and data["advice"] == ["quarantined"]
                assert (await session.list_tools()).tools == []
        async with client(gw.url, "tok-reader") as c:  # others are not affected
            assert (await c.call_tool("files.add", {"a": 1, "b": 1})).structured_content == {"result": 2}

    run(go)


def test_unknown_names_and_a_dead_upstream_are_json_rpc_errors(
    tmp_path: Path, upstream: UpstreamProcess
) -> None:
    sink = MemorySink()
    engine = Engine.from_workspace(write_workspace(tmp_path / "ws"), audit=sink)
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    gw = GatewayServer(
        gateway(engine, [UpstreamSpec("files", url=upstream.url), UpstreamSpec("gone", url=dead)])
    )
    try:

        async def go() -> None:
            async with client(gw.url, "tok-admin") as c:
                assert {t.name.split(".")[0] for t in (await c.list_tools()).tools} == {"files"}
                for name in ("files.nope", "nope", "gone.add", "nope.add"):
                    with pytest.raises(MCPError) as e:
                        await c.call_tool(name, {})
                    assert e.value.code in (-32602, -32002), (name, e.value)
                assert (await c.call_tool("files.add", {"a": 1, "b": 2})).structured_content == {"result": 3}

        run(go)
        assert all(r.resource != ("Tool", "gone.add") or not r.allowed for r in sink.records)
    finally:
        gw.stop()
        engine.close()


def test_a_stdio_upstream_beside_an_http_one(tmp_path: Path, upstream: UpstreamProcess) -> None:
    engine = Engine.from_workspace(write_workspace(tmp_path / "ws"), audit=MemorySink())
    gw = GatewayServer(gateway(engine, [UpstreamSpec("files", url=upstream.url), stdio_spec("local")]))
    try:

        async def go() -> None:
            async with client(gw.url, "tok-admin") as c:
                names = {t.name for t in (await c.list_tools()).tools}
                assert {"files.add", "local.add", "local.read_file"} <= names
                r = await c.call_tool("local.add", {"a": 20, "b": 22})
                assert r.structured_content == {"result": 42}
                prompts = {p.name for p in (await c.list_prompts()).prompts}
                assert prompts == {"files.greet", "local.greet"}
                got = await c.get_prompt("local.greet", {"name": "Ada"})
                assert "Ada" in got.messages[0].content.text  # type: ignore[union-attr]
                resources = {str(r.uri) for r in (await c.list_resources()).resources}
                assert "local:file:///reports/q3.txt" in resources
            async with client(gw.url, "tok-reader") as c:
                assert {p.name for p in (await c.list_prompts()).prompts} == set()
                with pytest.raises(MCPError) as e:
                    await c.get_prompt("local.greet", {"name": "Ada"})
                assert _denied(e)["reasons"] == ["no_matching_permit"]
                read = await c.read_resource("local:file:///reports/q3.txt")
                assert read.contents[0].text == "q3: fine"  # type: ignore[union-attr]

        run(go)
    finally:
        gw.stop()
        engine.close()


def test_step_up_then_approval_then_the_retry_goes_through(tmp_path: Path, upstream: UpstreamProcess) -> None:
    behaviour = '[behaviour]\nmode = "enforce"\nlearning_days = 0\nlearning_requests = 50\n'
    ws = write_workspace(tmp_path / "ws", behaviour=behaviour)
    t0 = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
    now = [t0.timestamp()]
    engine = Engine.from_workspace(ws, audit=MemorySink(), clock=lambda: now[0])
    # a habit: files.add in office hours from another network and client, two weeks long
    habit = pm.Caller(("Agent", "admin"), "s0", "habit", "1.0", "10.1.2.3")
    for d in range(14):
        day = t0 + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for k in range(30):
            now[0] = (day + timedelta(hours=9 + k % 8, minutes=(k * 7) % 50)).timestamp()
            assert pm.decide_call(
                engine, habit, pm.Item("Tool", "files.add", {}), "tools/call", {"a": k}
            ).allowed
    now[0] = (t0 + timedelta(days=20, hours=3)).timestamp()  # 3 am, a new client on a new network
    gw = GatewayServer(gateway(engine, [UpstreamSpec("files", url=upstream.url)]))
    try:

        async def go() -> None:
            async with client(gw.url, "tok-admin") as c:
                with pytest.raises(MCPError) as e:
                    await c.call_tool("files.delete_file", {"path": "/tmp/x"})
                data = _denied(e)
                assert data["reasons"] == ["risk_step_up"] and data["advice"] == ["step_up"]
                tid = data["ticket"]["id"]
                assert data["ticket"]["approve"] == f"vigil approvals approve {tid}"
                assert tid in e.value.message
                with pytest.raises(MCPError):  # not approved yet: still denied
                    await c.call_tool("files.delete_file", {"path": "/tmp/x"})
                engine.desk.approve(tid, by="priya.raman", note="cleanup")
                with pytest.raises(MCPError) as e:  # the approval covers these arguments only
                    await c.call_tool("files.delete_file", {"path": "/srv/everything"})
                assert _denied(e)["reasons"] == ["risk_step_up"]
                r = await c.call_tool("files.delete_file", {"path": "/tmp/x"})
                assert r.content[0].text == "deleted /tmp/x"  # type: ignore[union-attr]

        run(go)
        last = engine.audit.records[-1]  # type: ignore[attr-defined]
        assert last.allowed and "approved" in last.reason_codes
    finally:
        gw.stop()
        engine.close()


def test_arguments_are_masked_in_the_audit_log(tmp_path: Path, upstream: UpstreamProcess) -> None:
    audit = 'sink = "jsonl"\npath = "audit.jsonl"\nmask = ["context.arguments.b"]\nflush_interval_ms = 10'
    engine = Engine.from_workspace(write_workspace(tmp_path / "ws", audit=audit))
    gw = GatewayServer(gateway(engine, [UpstreamSpec("files", url=upstream.url)]))
    try:

        async def go() -> None:
            async with client(gw.url, "tok-reader") as c:
                await c.call_tool("files.add", {"a": 1, "b": 8675309})
                with pytest.raises(MCPError):
                    await c.call_tool("files.echo", {"value": "x", "b": 8675309})

        run(go)
    finally:
        gw.stop()
        engine.close()
    text = (tmp_path / "ws" / "audit.jsonl").read_text()
    events = [json.loads(line) for line in text.splitlines() if '"decision"' in line or '"allowed"' in line]
    args = [e["context"]["arguments"] for e in events if e.get("context")]
    assert args == [{"a": 1, "b": "***"}, {"value": "x", "b": "***"}]
    assert "8675309" not in text


def test_malformed_json_rpc_is_answered_with_json_rpc_errors(
    served: tuple[GatewayServer, Engine, MemorySink],
) -> None:
    gw, _, sink = served
    headers = {"Accept": "application/json, text/event-stream", "Authorization": "Bearer tok-admin"}
    bodies: list[Any] = [
        b"{not json",
        b"[]",
        b'"just a string"',
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 5}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": "x"},
        {"jsonrpc": "1.0", "id": 3, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 4, "method": "no/such"},
    ]
    for body in bodies:
        kw: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
        r = httpx.post(gw.url, headers=headers | {"Content-Type": "application/json"}, **kw)
        assert r.status_code in (200, 400, 404, 406), (body, r.status_code)
        if r.headers.get("content-type", "").startswith("application/json") and r.content:
            assert "error" in r.json() or "jsonrpc" in r.json(), r.text
    assert not any(rec.allowed for rec in sink.records)

    async def still_serving() -> None:
        async with client(gw.url, "tok-admin") as c:
            assert len((await c.list_tools()).tools) == 4

    run(still_serving)


def test_the_cli_serves_stdio_in_front_of_a_stdio_upstream(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws")
    cmd = f"{sys.executable} {UPSTREAM} stdio"
    vigil = Path(sys.executable).parent / "vigil"
    params = StdioServerParameters(
        command=str(vigil),
        args=[
            "mcp",
            "proxy",
            "-w",
            str(ws),
            "--stdio",
            "--upstream-cmd",
            f"local={cmd}",
            "--token",
            "t1=Agent::reader",
        ],
        env={**os.environ, "VIGIL_MCP_TOKEN": "t1"},
    )

    async def go() -> None:
        async with Client(params, mode="legacy", cache=None) as c:
            assert {t.name for t in (await c.list_tools()).tools} == {"local.read_file"}
            r = await c.call_tool("local.read_file", {"path": "/srv/reports/a"})
            assert r.content[0].text == "contents of /srv/reports/a"  # type: ignore[union-attr]
            with pytest.raises(MCPError) as e:
                await c.call_tool("local.read_file", {"path": "/etc/passwd"})
            assert _denied(e)["reasons"] == ["policy_forbid"]

    run(go)


def test_the_cli_refuses_stdio_without_a_known_token(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws")
    vigil = Path(sys.executable).parent / "vigil"
    env = {k: v for k, v in os.environ.items() if k != "VIGIL_MCP_TOKEN"}
    p = subprocess.run(
        [str(vigil), "mcp", "proxy", "-w", str(ws), "--stdio", "--upstream", "a=http://127.0.0.1:1/mcp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "unauthenticated" in p.stderr
    p = subprocess.run(
        [str(vigil), "mcp", "proxy", "-w", str(ws), "--upstream", "a.b=http://x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "invalid_argument" in p.stderr


def test_an_approval_covers_the_same_arguments_only() -> None:
    from vigil.operations.approvals import bound_context

    a = bound_context({"user_agent": "agent/1", "arguments": {"path": "/tmp/x", "n": 1}})
    b = bound_context({"user_agent": "agent/1", "arguments": {"n": 1, "path": "/tmp/x"}})
    c = bound_context({"user_agent": "agent/1", "arguments": {"path": "/srv/all"}})
    assert a == b and a != c and a[2].startswith("agent/1 #args=")
    assert bound_context({"user_agent": "agent/1"}) == ("", "", "agent/1")


def test_an_upstream_that_dies_mid_session_is_an_error_and_the_rest_keeps_serving(tmp_path: Path) -> None:
    doomed = UpstreamProcess()
    engine = Engine.from_workspace(write_workspace(tmp_path / "ws"), audit=MemorySink())
    gw = GatewayServer(gateway(engine, [UpstreamSpec("files", url=doomed.url), stdio_spec("local")]))
    try:

        async def go() -> None:
            async with client(gw.url, "tok-admin") as c:
                assert (await c.call_tool("files.add", {"a": 1, "b": 1})).structured_content == {"result": 2}
                doomed.stop()
                with pytest.raises(MCPError) as e:
                    await c.call_tool("files.add", {"a": 1, "b": 1})
                assert e.value.code == -32002 and e.value.data == {"reasons": ["upstream_unavailable"]}
                assert (await c.call_tool("local.add", {"a": 1, "b": 1})).structured_content == {"result": 2}
                assert "local.add" in {t.name for t in (await c.list_tools()).tools}

        run(go)
        assert gw.thread.is_alive()
    finally:
        gw.stop()
        engine.close()


def test_a_session_id_carries_no_identity(served: tuple[GatewayServer, Engine, MemorySink]) -> None:
    """Each request is authenticated by its own token: another agent's session id gives nothing."""
    gw, _, sink = served
    base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    admin = base | {"Authorization": "Bearer tok-admin"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    r = httpx.post(gw.url, json=init, headers=admin)
    assert r.status_code == 200
    sid = r.headers["mcp-session-id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    httpx.post(gw.url, json=note, headers=admin | {"mcp-session-id": sid})
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "files.delete_file", "arguments": {"path": "/tmp/x"}},
    }
    r = httpx.post(
        gw.url, json=call, headers=base | {"Authorization": "Bearer tok-reader", "mcp-session-id": sid}
    )
    assert r.status_code >= 400 or "error" in r.json(), r.text
    assert not [x for x in sink.records if x.allowed and x.resource == ("Tool", "files.delete_file")]
    assert all(x.principal == ("Agent", "reader") for x in sink.records)


def test_refused_token_fingerprints_are_keyed_by_the_workspaces_secret(
    tmp_path: Path, upstream: UpstreamProcess
) -> None:
    import hashlib
    import hmac

    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream", "Authorization": "Bearer refused-token"}
    fingerprints = []
    for name in ("a", "a", "b"):  # the same workspace twice (a restart), then another
        ws = tmp_path / name
        if not ws.exists():
            write_workspace(ws)
        sink = MemorySink()
        engine = Engine.from_workspace(ws, audit=sink)
        gw = GatewayServer(gateway(engine, [UpstreamSpec("files", url=upstream.url)]))
        try:
            assert httpx.post(gw.url, json=body, headers=headers).status_code == 401
        finally:
            gw.stop()
            engine.close()
        [event] = [e for e in sink.operator_events if e["type"] == "authentication_refused"]
        fingerprints.append(event["token"])
    key = tmp_path / "a" / ".vigil" / "token-fingerprint.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]
    assert fingerprints[0] == hmac.new(key.read_bytes(), b"refused-token", hashlib.sha256).hexdigest()[:16]
    assert fingerprints[0] != hashlib.sha256(b"refused-token").hexdigest()[:16]  # not the bare hash


def test_sigterm_flushes_the_gateways_audit_log(tmp_path: Path, upstream: UpstreamProcess) -> None:
    """uvicorn raises SIGTERM again after its graceful shutdown: the gateway's audit log must
    still be flushed (here nothing is flushed before the signal: a one-minute flush interval)."""
    ws = write_workspace(tmp_path / "ws", audit='path = "audit.jsonl"\nflush_interval_ms = 60000')
    port = free_port()
    vigil = Path(sys.executable).parent / "vigil"
    proc = subprocess.Popen(
        [str(vigil), "mcp", "proxy", "-w", str(ws), "--port", str(port), "--upstream", f"files={upstream.url}",
         "--token", "tok-admin=Agent::admin"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_port(port)

        async def go() -> None:
            async with client(f"http://127.0.0.1:{port}/mcp", "tok-admin") as c:
                for i in range(3):
                    assert not (await c.call_tool("files.add", {"a": i, "b": 1})).is_error

        run(go)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 143), err
    calls = [json.loads(x) for x in (ws / "audit.jsonl").read_text().splitlines() if '"tools/call"' in x]
    assert len(calls) == 3, err
