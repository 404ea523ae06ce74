"""``context.vigil.reach`` in a delegated decision: every party of the chain is judged with its own
reach (docs/escalation.md, "At decision time")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_token_service import BOT, Clock, Env, _delegated
from tests.token_support import JwksServer, new_key, trust_toml, workspace
from vigil.audit.sink import MemorySink
from vigil.engine import Engine
from vigil.store import MemoryStore

# alice may update tickets: admin. The bots may act for alice: they reach admin.
ESCALATION = """
[escalation]
reach = true
privilege_actions = { act_for = "assume" }
admin = ['Action::"update"']
principals = ["User", "Agent"]
"""
FORBID = """
@id("no-t1-reads-by-admin-reach")
forbid (principal, action == Action::"read", resource == Ticket::"t1")
when { context.vigil has reach && context.vigil.reach.verdict == "reaches_admin" };
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with JwksServer(new_key("rsa")) as idp:
        ws = workspace(tmp_path / "ws", trust_toml(idp.issuer, idp.url) + ESCALATION)
        (ws / "policies" / "reach.cedar").write_text(FORBID)
        clock = Clock()
        engine = Engine.from_workspace(ws, clock=clock, store=MemoryStore(), audit=MemorySink())
        keys: dict[str, Any] = {BOT: new_key("ed25519")}
        engine.identities.add(
            BOT,
            owner="ops@example.com",
            purpose="tests",
            by="ops",
            public_key=keys[BOT].as_dict(private=False),
        )
        yield Env(engine, idp, clock, keys, ws)
        engine.close()


def test_each_party_of_a_delegation_is_judged_with_its_own_reach(env: Env) -> None:
    reach = env.engine.workspace.reach
    assert reach is not None
    assert reach.reach(("User", "alice"))["verdict"] == "admin"  # type: ignore[index]
    assert reach.reach(("Agent", "triage-bot"))["verdict"] == "reaches_admin"  # type: ignore[index]
    alice = ("User", "alice")
    assert env.decide(alice, "read", "t1", env.human_token()).allowed  # alice herself: admin
    tok = _delegated(env)
    r = env.decide(alice, "read", "t1", tok)  # the bot acting for her reaches admin: its own reach
    assert not r.allowed and r.reason_codes == ("delegation_denied",), r.reason_codes
