"""vigil.Guard with the agent's token instead of (or beside) a named subject: tokens minted by
vigil's own OAuth authorization server (private_key_jwt; token exchange for an agent acting for a
human of a trusted issuer on a real JWKS server on loopback), verified in process by the engine.
A token that does not verify is a Denied before the function runs; a delegated token gets what
both the human and the agent may."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import vigil
from tests.token_support import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    assertion,
    claims_of,
    credentials_form,
    exchange_form,
    human_claims,
    new_key,
    sign,
    trust_toml,
)
from vigil.audit import MemorySink
from vigil.client import PDPClient
from vigil.engine import Engine
from vigil.store import MemoryStore

FORM = b"application/x-www-form-urlencoded"
BOT = 'Agent::"triage-bot"'
POLICIES = """
permit (principal == User::"alice", action == Action::"call_tool", resource);
permit (principal is Agent, action == Action::"call_tool", resource == Tool::"files.read")
when { context.arguments.path like "/srv/*" };
permit (principal == Agent::"triage-bot", action == Action::"act_for", resource == User::"alice");
"""
ENTITIES = """[
 {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []},
 {"uid": {"type": "Agent", "id": "triage-bot"}, "attrs": {}, "parents": []}
]"""


class Env:
    engine: Engine
    sink: MemorySink
    idp: JwksServer
    key: Any
    t: float

    def mint(self, form: dict[str, str], now: float | None = None) -> str:
        return str(self.engine.tokens.token_request(urlencode(form).encode(), FORM, now)["access_token"])

    def agent_token(self, audience: str = AUDIENCE) -> str:
        form = credentials_form(BOT, self.key, audience=audience)
        form["client_assertion"] = assertion(BOT, self.key, now=self.t)
        return self.mint(form)

    def delegated(self) -> str:
        human = sign(human_claims(self.idp.issuer, sub="alice", now=self.t), self.idp.keys[0])
        return self.mint(exchange_form(human, self.agent_token(audience=ISSUER)))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env()
    e.t = float(int(time.time()))
    with JwksServer(new_key("rsa")) as idp:
        e.idp = idp
        ws = tmp_path / "ws"
        (ws / "policies").mkdir(parents=True)
        (ws / "entities").mkdir()
        (ws / "policies" / "p.cedar").write_text(POLICIES)
        (ws / "entities" / "e.json").write_text(ENTITIES)
        (ws / "vigil.toml").write_text(
            f'[behaviour]\nmode = "off"\n\n[identity]\nissuer = "{ISSUER}"\naudiences = ["{AUDIENCE}"]\n'
            + trust_toml(idp.issuer, idp.url)
        )
        e.sink = MemorySink()
        e.engine = Engine.from_workspace(ws, clock=lambda: e.t, store=MemoryStore(), audit=e.sink)
        e.key = new_key("ed25519")
        e.engine.identities.add(
            BOT, owner="ops@example.com", purpose="tests", by="ops", public_key=e.key.as_dict()
        )
        yield e
        e.engine.close()


def test_a_guard_named_by_its_token_is_decided_as_the_tokens_subject(env: Env) -> None:
    token = env.agent_token()
    guard = vigil.Guard(env.engine, token=token)
    calls: list[str] = []

    @guard.tool("files.read")
    def read(path: str) -> str:
        calls.append(path)
        return path

    assert read("/srv/a") == "/srv/a"
    with pytest.raises(vigil.Denied) as e:
        read("/etc/shadow")
    assert e.value.reason_codes == ("no_matching_permit",)
    assert calls == ["/srv/a"]
    assert [(r.principal, r.allowed) for r in env.sink.records] == [
        (("Agent", "triage-bot"), True),
        (("Agent", "triage-bot"), False),
    ]
    # a subject named beside the token must be the token's
    other = vigil.Guard(env.engine, subject={"type": "User", "id": "alice"}, token=token)
    with pytest.raises(vigil.Denied) as e:
        other.check("files.read", {"path": "/srv/a"})
    assert e.value.reason_codes == ("token_subject_mismatch",)


def test_tokens_that_do_not_verify_are_denied_before_the_function_runs(env: Env) -> None:
    calls: list[str] = []
    token = env.agent_token()
    current = [token]
    guard = vigil.Guard(env.engine, token=lambda: current[0])  # read at each call (refresh)

    @guard.tool("files.read")
    async def read(path: str) -> str:
        calls.append(path)
        return path

    import asyncio

    assert asyncio.run(read("/srv/a")) == "/srv/a"
    env.engine.revocations.revoke_token(claims_of(token)["jti"], by="ops", reason="leaked")
    head, body, sig = env.agent_token().split(".")
    cases = {
        "token_revoked": token,
        "invalid_token": f"{head}.{body}.{'A' * 8}{sig[8:]}",
        "token_wrong_issuer": sign(
            human_claims("https://idp.evil.example", aud=AUDIENCE, now=env.t), new_key("ed25519")
        ),
    }
    for code, bad in cases.items():
        current[0] = bad
        with pytest.raises(vigil.Denied) as e:
            asyncio.run(read("/srv/a"))
        assert e.value.reason_codes == ("unverified_identity",), code
        assert e.value.error is not None and e.value.error["code"] == code
    current[0] = env.agent_token()
    env.t += 700  # expired
    with pytest.raises(vigil.Denied) as e:
        asyncio.run(read("/srv/a"))
    assert e.value.error is not None and e.value.error["code"] == "token_expired"
    assert calls == ["/srv/a"]


def test_a_delegated_token_gets_what_both_parties_may(env: Env) -> None:
    token = env.delegated()
    guard = vigil.Guard(env.engine, token=token)
    guard.check("files.read", {"path": "/srv/a"})  # both may
    with pytest.raises(vigil.Denied) as e:  # alice may, the bot may not
        guard.check("files.delete", {"path": "/srv/a"})
    assert e.value.reason_codes == ("delegation_denied",)
    with pytest.raises(vigil.Denied) as e:  # the bot's own permit needs /srv/*
        guard.check("files.read", {"path": "/home/alice"})
    assert e.value.reason_codes == ("delegation_denied",)
    records = [r for r in env.sink.records if r.action[1] == "call_tool"]  # not the exchange's act_for
    assert [r.principal for r in records] == [("User", "alice")] * 3
    assert all(r.delegation == (("Agent", "triage-bot"),) for r in records)


def test_a_remote_guard_sends_the_token_as_a_subject_property(env: Env) -> None:
    token = env.agent_token()
    guard = vigil.Guard(PDPClient("http://127.0.0.1:9"), token=token)
    request = guard.request("files.read", "call_tool", {"path": "/srv/a"})
    assert request["subject"] == {"type": "Agent", "id": "triage-bot", "properties": {"token": token}}
    # a token whose sub is no vigil uid needs subject= (the PDP verifies either way)
    human = sign(human_claims(env.idp.issuer, sub="alice", now=env.t), env.idp.keys[0])
    with pytest.raises(vigil.Denied) as e:
        vigil.Guard(PDPClient("http://127.0.0.1:9"), token=human).check("files.read", {"path": "/srv/a"})
    assert e.value.reason_codes == ("unverified_identity",)
    with pytest.raises(TypeError):
        vigil.Guard(env.engine)


def test_a_remote_guard_is_decided_by_vigil_serve_with_the_token(tmp_path: Path) -> None:
    """``vigil.Guard(PDPClient, token=...)`` against a real ``vigil serve``: tokens from its own
    token endpoint over HTTP, the delegated one narrowed by the server as in process."""
    import httpx

    from tests.test_server_support import API_KEY, ServerProcess

    with JwksServer(new_key("rsa")) as idp:
        ws = tmp_path / "ws"
        (ws / "policies").mkdir(parents=True)
        (ws / "entities").mkdir()
        (ws / "policies" / "p.cedar").write_text(POLICIES)
        (ws / "entities" / "e.json").write_text(ENTITIES)
        (ws / "vigil.toml").write_text(
            f'[behaviour]\nmode = "off"\n\n[identity]\nissuer = "{ISSUER}"\naudiences = ["{AUDIENCE}"]\n'
            + trust_toml(idp.issuer, idp.url)
        )
        key = new_key("ed25519")
        with Engine.from_workspace(ws) as engine:  # registered in the workspace's state database
            engine.identities.add(
                BOT, owner="ops@example.com", purpose="tests", by="ops", public_key=key.as_dict()
            )
        server = ServerProcess(ws).wait_ready()
        try:
            with httpx.Client(base_url=server.url) as anon:
                own = anon.post("/oauth2/token", data=credentials_form(BOT, key, audience=AUDIENCE)).json()
                actor = anon.post("/oauth2/token", data=credentials_form(BOT, key, audience=ISSUER)).json()
                human = sign(human_claims(idp.issuer, sub="alice"), idp.keys[0])
                delegated = anon.post(
                    "/oauth2/token", data=exchange_form(human, actor["access_token"])
                ).json()
            client = PDPClient(server.url, api_key=API_KEY, timeout_s=5)
            bot = vigil.Guard(client, token=own["access_token"])
            bot.check("files.read", {"path": "/srv/a"})
            with pytest.raises(vigil.Denied) as e:
                bot.check("files.read", {"path": "/etc/shadow"})
            assert e.value.reason_codes == ("no_matching_permit",) and e.value.decision_id
            for_alice = vigil.Guard(client, token=delegated["access_token"])  # sub: User::"alice"
            for_alice.check("files.read", {"path": "/srv/a"})
            with pytest.raises(vigil.Denied) as e:
                for_alice.check("files.delete", {"path": "/srv/a"})
            assert e.value.reason_codes == ("delegation_denied",)
            with pytest.raises(vigil.Denied) as e:  # a token the server refuses
                vigil.Guard(client, token=own["access_token"][:-6] + "AAAAAA").check(
                    "files.read", {"path": "/srv/a"}
                )
            assert e.value.reason_codes == ("unverified_identity",)
            assert e.value.error is not None and e.value.error["code"] == "invalid_token"
            client.close()
        finally:
            server.stop()
