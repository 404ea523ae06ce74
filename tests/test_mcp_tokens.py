"""The MCP gateway with real tokens: the SDK's client over streamable HTTP -> the gateway -> a real
upstream, the agents holding tokens minted by vigil's own OAuth authorization server (client
credentials with private_key_jwt; token exchange for a delegated token whose subject is a human of
a trusted issuer served by a real JWKS server on loopback).

A token the workspace's verifier refuses (expired, for another audience, a bad signature, revoked,
of an issuer nobody trusts) is a 401 with the RFC 9728 metadata pointer and nothing reaches the
upstream (it logs every tool call it serves). A delegated token is narrowed: the human's rights and
the agent's both apply, in lists and calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

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
    run,
    write_workspace,
)
from tests.token_support import (
    ISSUER,
    JwksServer,
    assertion,
    b64,
    claims_of,
    credentials_form,
    exchange_form,
    human_claims,
    new_key,
    sign,
    trust_toml,
)
from vigil.audit import MemorySink
from vigil.engine import Engine
from vigil.mcp import Agent, AnyOf, Gateway, OAuthTokens, StaticTokens, UpstreamSpec
from vigil.store import MemoryStore

FORM = b"application/x-www-form-urlencoded"
BOT = 'Agent::"triage-bot"'
ROGUE = 'Agent::"rogue-bot"'
OTHER_AUDIENCE = "https://tickets.example"

POLICIES = """
@id("alice-files")
permit (principal == User::"alice", action == Action::"call_tool", resource)
unless { resource == Tool::"files.echo" };

@id("agents-read")
permit (principal is Agent, action == Action::"call_tool", resource == Tool::"files.read_file");

@id("agents-add")
permit (principal is Agent, action == Action::"call_tool", resource == Tool::"files.add");

@id("agents-echo")
permit (principal is Agent, action == Action::"call_tool", resource == Tool::"files.echo");

@id("bots-act-for-alice")
permit (principal is Agent, action == Action::"act_for", resource == User::"alice")
when { principal == Agent::"triage-bot" || principal == Agent::"rogue-bot" };

@id("no-delegated-etc")
forbid (principal, action == Action::"call_tool", resource)
when { context.vigil has delegation && context.arguments has path && context.arguments.path like "/etc/*" };
"""

ENTITIES = """[
 {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []},
 {"uid": {"type": "Agent", "id": "triage-bot"}, "attrs": {}, "parents": []},
 {"uid": {"type": "Agent", "id": "rogue-bot"}, "attrs": {}, "parents": []}
]"""


class Clock:
    def __init__(self) -> None:
        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t


class Env:
    engine: Engine
    sink: MemorySink
    idp: JwksServer
    keys: dict[str, Any]
    gw: GatewayServer
    log: Path
    clock: Clock

    def mint(self, form: dict[str, str], now: float | None = None) -> str:
        answer = self.engine.tokens.token_request(urlencode(form).encode(), FORM, now)
        return str(answer["access_token"])

    def agent_token(self, name: str = BOT, audience: str | None = None, now: float | None = None) -> str:
        form = credentials_form(name, self.keys[name], audience=audience or self.gw.url)
        form["client_assertion"] = assertion(name, self.keys[name], now=now or self.clock.t)
        return self.mint(form, now)

    def human_token(self, sub: str = "alice", **over: Any) -> str:
        return sign(human_claims(self.idp.issuer, sub=sub, now=self.clock.t, **over), self.idp.keys[0])

    def delegated(self, actor_name: str = BOT) -> str:
        """alice's token (the trusted issuer's) exchanged with the actor's: it acting for alice."""
        actor = self.agent_token(actor_name, audience=ISSUER)
        return self.mint(exchange_form(self.human_token(), actor, audience=self.gw.url))

    def forwarded(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("mcp-tokens")
    e = Env()
    e.log = base / "upstream.log"
    up = UpstreamProcess(log=e.log)
    try:
        yield from _serve(e, base, up)
    finally:
        up.stop()


def _serve(e: Env, base: Path, up: UpstreamProcess) -> Iterator[Env]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with JwksServer(new_key("rsa")) as idp:
        e.idp = idp
        ws = base / "ws"
        (ws / "policies").mkdir(parents=True)
        (ws / "entities").mkdir()
        (ws / "policies" / "p.cedar").write_text(POLICIES)
        (ws / "entities" / "e.json").write_text(ENTITIES)
        (ws / "vigil.toml").write_text(
            f'[behaviour]\nmode = "off"\n\n[identity]\nissuer = "{ISSUER}"\n'
            f'audiences = ["{url}", "{OTHER_AUDIENCE}"]\n' + trust_toml(idp.issuer, idp.url)
        )
        e.clock = Clock()
        e.sink = MemorySink()
        e.engine = Engine.from_workspace(ws, clock=e.clock, store=MemoryStore(), audit=e.sink)
        try:
            e.keys = {}
            for name in (BOT, ROGUE):
                e.keys[name] = new_key("ed25519")
                e.engine.identities.add(
                    name,
                    owner="ops@example.com",
                    purpose="tests",
                    by="ops",
                    public_key=e.keys[name].as_dict(),
                )
            authenticate = OAuthTokens(e.engine.verifier, [url])
            gateway = Gateway(e.engine, [UpstreamSpec("files", url=up.url)], authenticate)
            # no authorization server given: the metadata names the workspace's own token service
            e.gw = GatewayServer(gateway, port=port, authorization_server=None)
            try:
                yield e
            finally:
                e.gw.stop()
        finally:
            e.engine.close()


def _denied(e: pytest.ExceptionInfo[MCPError]) -> dict[str, Any]:
    assert e.value.code == -32001, e.value
    assert isinstance(e.value.data, dict)
    return e.value.data


def _tools(env: Env, token: str) -> set[str]:
    async def go() -> set[str]:
        async with client(env.gw.url, token) as c:
            return {t.name for t in (await c.list_tools()).tools}

    return run(go)  # type: ignore[no-any-return]


def test_an_agent_with_a_vigil_token_is_decided_as_itself(env: Env) -> None:
    token = env.agent_token()
    assert claims_of(token)["aud"] == env.gw.url
    assert _tools(env, token) == {"files.read_file", "files.add", "files.echo"}

    async def go() -> None:
        async with client(env.gw.url, token) as c:
            r = await c.call_tool("files.read_file", {"path": "/srv/reports/q3.txt"})
            assert r.content[0].text == "contents of /srv/reports/q3.txt"  # type: ignore[union-attr]
            with pytest.raises(MCPError) as e:
                await c.call_tool("files.delete_file", {"path": "/tmp/x"})
            assert _denied(e)["reasons"] == ["no_matching_permit"]

    before = len(env.sink.records)
    run(go)
    got = [(r.principal, r.resource[1], r.allowed, r.delegation) for r in env.sink.records[before:]]
    assert got == [
        (("Agent", "triage-bot"), "files.read_file", True, None),
        (("Agent", "triage-bot"), "files.delete_file", False, None),
    ]


def test_the_metadata_points_at_the_workspaces_token_service(env: Env) -> None:
    r = httpx.post(env.gw.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert r.status_code == 401
    pointer = r.headers["www-authenticate"].split('resource_metadata="')[1].split('"')[0]
    meta = httpx.get(pointer).json()
    assert meta["resource"] == env.gw.url
    assert [a.rstrip("/") for a in meta["authorization_servers"]] == [ISSUER]
    assert env.engine.tokens.metadata()["token_endpoint"] == ISSUER + "/oauth2/token"


def _refused(env: Env, token: str, reason: str | None = None) -> None:
    """``token`` gets 401 with the metadata pointer, over raw HTTP and through the SDK's client;
    nothing is decided and nothing reaches the upstream; each refusal is audited (with ``reason``,
    when given, as the token error's code)."""
    decided, forwarded = len(env.sink.records), env.forwarded()
    audited = len(env.sink.operator_events)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "files.add", "arguments": {"a": 1, "b": 2}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}"}
    r = httpx.post(env.gw.url, json=body, headers=headers)
    assert r.status_code == 401, r.text
    assert 'resource_metadata="' in r.headers["www-authenticate"]

    async def go() -> None:
        with pytest.raises(Exception):  # noqa: B017 - the SDK reports the 401 as its own error
            async with client(env.gw.url, token) as c:
                await c.call_tool("files.add", {"a": 1, "b": 2})

    run(go)
    assert len(env.sink.records) == decided
    assert env.forwarded() == forwarded
    refusals = [e for e in env.sink.operator_events[audited:] if e["type"] == "authentication_refused"]
    assert len(refusals) >= 2 and token not in str(refusals)  # raw HTTP, then the SDK's client
    if reason is not None:
        assert refusals[0]["reason"] == reason, refusals[0]


def test_expired_tokens_are_refused(env: Env) -> None:
    token = env.agent_token()
    assert _tools(env, token)  # valid now (and cached by the verifier)
    env.clock.t += 601 + 30  # past its 600 s and the 30 s skew
    try:
        _refused(env, token, "token_expired")
    finally:
        env.clock.t -= 631
    assert _tools(env, token)


def test_a_token_for_another_audience_is_refused(env: Env) -> None:
    # vigil issues it (the workspace serves that audience too), but not for this gateway
    token = env.agent_token(audience=OTHER_AUDIENCE)
    assert env.engine.verifier.verify(token).subject == ("Agent", "triage-bot")
    _refused(env, token, "token_wrong_audience")


def test_a_bad_signature_is_refused(env: Env) -> None:
    token = env.agent_token()
    head, body, sig = token.split(".")
    _refused(env, f"{head}.{body}.{'A' * 6}{sig[6:]}")
    # a payload changed under a valid signature
    forged = claims_of(token) | {"sub": ROGUE}
    _refused(env, f"{head}.{b64(json.dumps(forged).encode())}.{sig}")


def test_an_unknown_issuer_and_garbage_are_refused(env: Env) -> None:
    stranger = new_key("ed25519")
    token = sign(human_claims("https://idp.evil.example", sub="alice", aud=env.gw.url), stranger)
    _refused(env, token)
    _refused(env, "not-a-jwt")
    # the trusted issuer's own token names its audience ("vigil"), not this gateway
    _refused(env, env.human_token())


def test_a_token_revoked_mid_session_is_refused_at_its_next_use(env: Env) -> None:
    token = env.agent_token(name=ROGUE)

    async def go() -> None:
        async with client(env.gw.url, token) as c:
            assert (await c.call_tool("files.add", {"a": 1, "b": 2})).structured_content == {"result": 3}
            env.engine.revocations.revoke_token(claims_of(token)["jti"], by="ops", reason="leaked")
            forwarded = env.forwarded()
            with pytest.raises(Exception):  # noqa: B017 - a 401 inside a live session
                await c.call_tool("files.add", {"a": 1, "b": 2})
            assert env.forwarded() == forwarded

    run(go)
    _refused(env, token)
    assert _tools(env, env.agent_token(name=ROGUE))  # a new token of the same agent works


def test_a_delegated_token_is_narrowed_by_both_parties(env: Env) -> None:
    token = env.delegated()
    assert claims_of(token)["sub"] == 'User::"alice"' and claims_of(token)["act"] == {"sub": BOT}
    # alice may call all but echo, the bot read, add and echo: the token gets what both may
    assert _tools(env, token) == {"files.read_file", "files.add"}

    async def go() -> None:
        async with client(env.gw.url, token) as c:
            r = await c.call_tool("files.read_file", {"path": "/srv/reports/q3.txt"})
            assert not r.is_error
            with pytest.raises(MCPError) as e:  # alice may, the bot may not
                await c.call_tool("files.delete_file", {"path": "/tmp/x"})
            assert _denied(e)["reasons"] == ["delegation_denied"]
            with pytest.raises(MCPError) as e:  # the bot may, alice may not
                await c.call_tool("files.echo", {"value": "hi"})
            assert _denied(e)["reasons"] == ["no_matching_permit"]
            with pytest.raises(MCPError) as e:  # policies see the delegation
                await c.call_tool("files.read_file", {"path": "/etc/shadow"})
            assert _denied(e)["reasons"] == ["delegation_denied"]

    before, forwarded = len(env.sink.records), env.forwarded()
    run(go)
    assert env.forwarded()[len(forwarded) :] == ["read_file"]
    records = env.sink.records[before:]
    assert [(r.principal, r.resource[1], r.allowed) for r in records] == [
        (("User", "alice"), "files.read_file", True),
        (("User", "alice"), "files.delete_file", False),
        (("User", "alice"), "files.echo", False),
        (("User", "alice"), "files.read_file", False),
    ]
    assert all(r.delegation == (("Agent", "triage-bot"),) for r in records)


def test_revoking_the_delegation_cuts_the_agent_off(env: Env) -> None:
    token = env.delegated(ROGUE)
    assert _tools(env, token) == {"files.read_file", "files.add"}
    env.engine.revocations.revoke_delegation(ROGUE, 'User::"alice"', by="ops", reason="done")
    _refused(env, token)
    assert _tools(env, env.agent_token(ROGUE))  # the agent on its own is not affected
    assert _tools(env, env.delegated())  # nor another agent acting for alice


def test_the_cli_over_stdio_backs_every_decision_with_the_agents_token(tmp_path: Path) -> None:
    """``vigil mcp proxy --stdio`` with a vigil JWT in VIGIL_MCP_TOKEN (audience ``--audience``);
    a token for another audience is refused at start with its code."""
    audience = "urn:vigil:stdio-gateway"
    identity = f'[behaviour]\nmode = "off"\n\n[identity]\nissuer = "{ISSUER}"\naudiences = ["{audience}"]\n'
    ws = write_workspace(
        tmp_path / "ws", behaviour=identity, audit='path = "audit.jsonl"\nflush_interval_ms = 10'
    )
    key = new_key("ed25519")
    with Engine.from_workspace(ws) as engine:  # the token service of that workspace (its signing keys)
        engine.identities.add(
            'Agent::"reader"', owner="ops@example.com", purpose="t", by="ops", public_key=key.as_dict()
        )
        form = credentials_form('Agent::"reader"', key, audience=audience)
        form["client_assertion"] = assertion('Agent::"reader"', key)
        token = str(engine.tokens.token_request(urlencode(form).encode(), FORM)["access_token"])
    vigil = Path(sys.executable).parent / "vigil"
    argv = [
        "mcp",
        "proxy",
        "-w",
        str(ws),
        "--stdio",
        "--upstream-cmd",
        f"local={sys.executable} {UPSTREAM} stdio",
    ]
    params = StdioServerParameters(
        command=str(vigil), args=[*argv, "--audience", audience], env={**os.environ, "VIGIL_MCP_TOKEN": token}
    )

    async def go() -> None:
        async with Client(params, mode="legacy", cache=None) as c:
            r = await c.call_tool("local.read_file", {"path": "/srv/reports/a"})
            assert r.content[0].text == "contents of /srv/reports/a"  # type: ignore[union-attr]
            with pytest.raises(MCPError) as e:
                await c.call_tool("local.read_file", {"path": "/home/x"})
            assert _denied(e)["reasons"] == ["no_matching_permit"]

    run(go)
    events = [json.loads(line) for line in (ws / "audit.jsonl").read_text().splitlines()]
    calls = [e for e in events if e["type"] == "decision" and e["action"]["name"] == "call_tool"]
    assert [(c["subject"]["id"], c["decision"]) for c in calls] == [("reader", "allow"), ("reader", "deny")]
    p = subprocess.run(
        [str(vigil), *argv],
        env={**os.environ, "VIGIL_MCP_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode != 0 and "token_wrong_audience" in p.stderr, p.stderr


def test_a_fresh_jwt_is_verified_off_the_event_loop_a_held_one_inline(env: Env) -> None:
    """A trusted issuer's token (its keys fetched over HTTP) is not ``quick`` until the verifier
    holds its verification; static tokens always are."""
    jwts = OAuthTokens(env.engine.verifier, ["vigil"])  # the trusted issuer's audience
    token = env.human_token(sub="alice")
    assert not jwts.quick(token)
    assert jwts(token) == Agent(("User", "alice"), (), token, env.idp.issuer)
    assert jwts.quick(token)
    assert AnyOf(StaticTokens({"s": ("Agent", "x")}), jwts).quick(token)
    assert not AnyOf(StaticTokens({"s": ("Agent", "x")}), jwts).quick(env.agent_token())
    env.clock.t += 400  # past its exp (300 s) and the skew: no longer held
    try:
        assert not jwts.quick(token)
    finally:
        env.clock.t -= 400
