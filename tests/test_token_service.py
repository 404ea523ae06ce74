"""The token service and token-backed decisions through the library API (an Engine on a small
workspace, a real JWKS server on loopback for the humans' issuer): client credentials with
private_key_jwt (replay refused), token exchange (act_for decided by policy, depth limit,
never outliving its inputs), decisions with tokens (delegation: every party checked), revocation,
signing-key rotation, and a hypothesis fuzz of the token endpoint that only ever sees OAuthError."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    workspace,
)
from vigil.audit.sink import MemorySink
from vigil.engine import Engine
from vigil.identity.tokens import OAuthError
from vigil.store import MemoryStore

# The helpers stamp assertions with the wall clock: each test's engine clock starts at it too.
FORM = b"application/x-www-form-urlencoded"
BOT = 'Agent::"triage-bot"'
HELPER = 'Agent::"helper-bot"'


class Clock:
    def __init__(self) -> None:
        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t


class Env:
    def __init__(self, engine: Engine, idp: JwksServer, clock: Clock, keys: dict[str, Any], ws: Path) -> None:
        self.engine, self.idp, self.clock, self.keys, self.ws = engine, idp, clock, keys, ws
        self.human_key = idp.keys[0]

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        return self.engine.tokens.token_request(urlencode(form).encode(), FORM)

    def refused(self, form: dict[str, str], error: str) -> OAuthError:
        with pytest.raises(OAuthError) as info:
            self.token(form)
        assert info.value.code == error, info.value.message
        return info.value

    def agent_token(self, name: str = BOT, audience: str = ISSUER) -> str:
        key = self.keys[name]
        form = credentials_form(name, key, audience=audience)
        form["client_assertion"] = assertion(name, key, now=self.clock.t)
        return str(self.token(form)["access_token"])

    def human_token(self, sub: str = "alice", **over: Any) -> str:
        return sign(human_claims(self.idp.issuer, sub=sub, now=self.clock.t, **over), self.human_key)

    def decide(self, sub: tuple[str, str], action: str, ticket: str, token: str | None) -> Any:
        request = {
            "subject": {"type": sub[0], "id": sub[1]},
            "action": {"name": action},
            "resource": {"type": "Ticket", "id": ticket},
        }
        return self.engine.decide(request, token=token)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with JwksServer(new_key("rsa")) as idp:
        ws = workspace(tmp_path / "ws", trust_toml(idp.issuer, idp.url))
        clock = Clock()
        sink = MemorySink()
        engine = Engine.from_workspace(ws, clock=clock, store=MemoryStore(), audit=sink)
        keys: dict[str, Any] = {}
        for name in (BOT, HELPER, 'Agent::"rogue-bot"', 'Agent::"deep-bot"'):
            keys[name] = new_key("ed25519" if name != HELPER else "p256")
            engine.identities.add(
                name,
                owner="ops@example.com",
                purpose="tests",
                by="ops",
                public_key=keys[name].as_dict(private=False),
            )
        e = Env(engine, idp, clock, keys, ws)
        e.sink = sink  # type: ignore[attr-defined]
        yield e
        engine.close()


# -- metadata and keys ----------------------------------------------------------------------------
def test_metadata_and_jwks(env: Env) -> None:
    meta = env.engine.tokens.metadata()
    assert meta["issuer"] == ISSUER and meta["token_endpoint"] == ISSUER + "/oauth2/token"
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in meta["grant_types_supported"]
    assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    keys = env.engine.tokens.jwks()["keys"]
    assert len(keys) == 1 and "d" not in keys[0] and keys[0]["alg"] == "EdDSA"
    path = env.ws / ".vigil" / "oauth-keys.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# -- client credentials ---------------------------------------------------------------------------
def test_client_credentials_with_private_key_jwt(env: Env) -> None:
    answer = env.token(credentials_form(BOT, env.keys[BOT]))
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 600
    claims = claims_of(answer["access_token"])
    assert claims["iss"] == ISSUER and claims["sub"] == BOT and claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 600 and claims["jti"] and "act" not in claims
    assert env.engine.registry.tokens_issued(("Agent", "triage-bot"), env.clock.t) == 1
    events = [e for e in env.sink.operator_events if e.get("type") == "token_issued"]  # type: ignore[attr-defined]
    assert events and events[-1]["by"] == BOT and events[-1]["jti"] == claims["jti"]


def test_replayed_client_assertion(env: Env) -> None:
    form = credentials_form(BOT, env.keys[BOT])
    env.token(form)
    env.refused(form, "invalid_client")


def test_client_assertion_checks(env: Env) -> None:
    key = env.keys[BOT]
    other = new_key()
    cases = {
        "unregistered key": assertion(BOT, other),
        "another identity's key": assertion(BOT, env.keys[HELPER]),
        "wrong aud": assertion(BOT, key, aud="https://elsewhere.example/token"),
        "iss differs": assertion(BOT, key, iss=HELPER),
        "expired": assertion(BOT, key, now=env.clock.t - 3600),
        "lives too long": assertion(BOT, key, exp=int(env.clock.t) + 3600),
        "no jti": assertion(BOT, key, jti=None),
    }
    for why, value in cases.items():
        form = credentials_form(BOT, key, client_assertion=value)
        err = env.refused(form, "invalid_client")
        assert err.body()["error"] == "invalid_client", why
    env.refused(credentials_form(BOT, key, client_assertion_type=None), "invalid_client")
    env.refused(credentials_form(BOT, key, client_secret="s3cret"), "invalid_client")
    env.refused(credentials_form(BOT, key, client_id=HELPER), "invalid_client")


def test_audience_is_required_and_must_be_served(env: Env) -> None:
    key = env.keys[BOT]
    env.refused(credentials_form(BOT, key, audience=None), "invalid_request")
    env.refused(credentials_form(BOT, key, audience="https://not-ours.example"), "invalid_target")
    env.refused({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type")
    env.refused(credentials_form(BOT, key, scope="admin"), "invalid_scope")


def test_a_suspended_identity_gets_no_token(env: Env) -> None:
    env.engine.identities.suspend(BOT, by="ops", reason="leak")
    env.refused(credentials_form(BOT, env.keys[BOT]), "invalid_client")


def test_a_token_the_audit_log_cannot_record_is_not_issued(env: Env) -> None:
    env.engine._audit_required = True
    env.sink.healthy = False  # type: ignore[attr-defined]
    with pytest.raises(Exception) as info:
        env.token(credentials_form(BOT, env.keys[BOT]))
    assert getattr(info.value, "code", "") == "audit_unavailable"
    assert env.engine.tokens.issued == 0


# -- decisions with tokens ----------------------------------------------------------------------------
def test_an_agent_token_backs_its_own_decisions(env: Env) -> None:
    tok = env.agent_token(audience=AUDIENCE)
    bot = ("Agent", "triage-bot")
    assert env.decide(bot, "read", "t1", tok).allowed
    assert not env.decide(bot, "update", "t1", tok).allowed
    r = env.decide(("Agent", "helper-bot"), "read", "t1", tok)
    assert not r.allowed and r.reason_codes == ("token_subject_mismatch",)
    r = env.decide(bot, "read", "t1", tok[:-4] + "AAAA")
    assert not r.allowed and r.reason_codes == ("unverified_identity",) and r.error["code"] == "invalid_token"


def test_require_token_denies_the_unbacked(env: Env) -> None:
    bot = ("Agent", "triage-bot")
    assert env.decide(bot, "read", "t1", None).allowed
    (env.ws / "vigil.toml").write_text(
        (env.ws / "vigil.toml").read_text().replace("[identity]\n", "[identity]\nrequire_token = true\n")
    )
    assert env.engine.reload().ok
    r = env.decide(bot, "read", "t1", None)
    assert not r.allowed and r.reason_codes == ("unverified_identity",)
    assert env.decide(bot, "read", "t1", env.agent_token(audience=AUDIENCE)).allowed


def _delegated(env: Env, actor: str = BOT, human: str = "alice") -> str:
    form = exchange_form(env.human_token(human), env.agent_token(actor))
    answer = env.token(form)
    assert answer["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    return str(answer["access_token"])


def test_exchange_gives_a_delegated_token_allowed_only_where_both_may(env: Env) -> None:
    tok = _delegated(env)
    claims = claims_of(tok)
    assert claims["sub"] == 'User::"alice"' and claims["act"] == {"sub": BOT}
    alice = ("User", "alice")
    assert env.decide(alice, "read", "t1", tok).allowed  # both may read
    r = env.decide(alice, "update", "t1", tok)  # alice may update, the bot may not
    assert not r.allowed and r.reason_codes == ("delegation_denied",)
    assert r.delegation == (("Agent", "triage-bot"),)
    r = env.decide(alice, "read", "t2", tok)  # a policy reads context.vigil.delegation
    assert not r.allowed and r.delegation == (("Agent", "triage-bot"),)
    event = env.sink.events()[-1]  # type: ignore[attr-defined]
    assert event["delegation"] == [{"type": "Agent", "id": "triage-bot"}]
    assert event["context"]["vigil"]["actor"] == {"__entity": {"type": "Agent", "id": "triage-bot"}}
    assert env.decide(alice, "update", "t1", env.human_token()).allowed  # alice herself may


def test_the_exchange_is_a_decision_denied_by_default(env: Env) -> None:
    form = exchange_form(env.human_token("bob"), env.agent_token())
    err = env.refused(form, "unauthorized_client")  # no policy lets the bot act for bob
    assert "decision" in err.message
    rogue = 'Agent::"rogue-bot"'
    env.refused(exchange_form(env.human_token(), env.agent_token(rogue)), "unauthorized_client")
    acts = [e for e in env.sink.events() if e["action"]["name"] == "act_for"]  # type: ignore[attr-defined]
    assert len(acts) == 2 and all(e["decision"] == "deny" for e in acts)


def test_exchange_input_checks(env: Env) -> None:
    actor = env.agent_token()
    env.refused(exchange_form(env.human_token(aud="other"), actor), "invalid_grant")  # wrong audience
    env.refused(exchange_form(env.human_token(), env.human_token()), "invalid_grant")  # actor not vigil's
    form = exchange_form(env.human_token(), actor)
    del form["actor_token"]
    env.refused(form, "invalid_request")
    env.refused({**exchange_form(env.human_token(), actor), "subject_token_type": "x"}, "invalid_request")


def test_a_chain_nests_and_is_checked_at_every_link(env: Env) -> None:
    first = _delegated(env)  # triage-bot for alice
    second = env.token(exchange_form(first, env.agent_token(HELPER)))["access_token"]
    claims = claims_of(second)
    assert claims["act"] == {"sub": HELPER, "act": {"sub": BOT}}
    alice = ("User", "alice")
    r = env.decide(alice, "read", "t1", second)
    assert r.allowed and r.delegation == (("Agent", "helper-bot"), ("Agent", "triage-bot"))
    env.engine.identities.suspend(BOT, by="ops")  # the inner actor
    r = env.decide(alice, "read", "t1", second)
    assert not r.allowed and r.reason_codes == ("identity_inactive",)


def test_delegation_deeper_than_the_limit(env: Env) -> None:
    (env.ws / "vigil.toml").write_text(
        (env.ws / "vigil.toml").read_text().replace("[identity]\n", "[identity]\nmax_delegation_depth = 1\n")
    )
    assert env.engine.reload().ok
    first = _delegated(env)
    err = env.refused(exchange_form(first, env.agent_token('Agent::"deep-bot"')), "invalid_grant")
    assert "at most 1" in err.message


def test_a_delegated_token_never_outlives_its_inputs(env: Env) -> None:
    human = env.human_token(exp=int(env.clock.t) + 120)
    answer = env.token(exchange_form(human, env.agent_token()))
    assert answer["expires_in"] <= 120


def test_suspending_the_actor_denies_at_the_next_decision(env: Env) -> None:
    tok = _delegated(env)
    alice = ("User", "alice")
    assert env.decide(alice, "read", "t1", tok).allowed
    env.engine.identities.suspend(BOT, by="ops", reason="compromised")
    r = env.decide(alice, "read", "t1", tok)
    assert not r.allowed and r.reason_codes == ("identity_inactive",)
    env.refused(exchange_form(env.human_token(), tok), "invalid_grant")


def test_quarantined_actor_is_denied(env: Env) -> None:
    tok = _delegated(env)
    env.engine.desk.add(("Agent", "triage-bot"), by="ops", reason="odd")
    r = env.decide(("User", "alice"), "read", "t1", tok)
    assert not r.allowed and r.reason_codes == ("quarantined",)


# -- revocation --------------------------------------------------------------------------------------
def test_revoke_token_by_jti(env: Env) -> None:
    tok = env.agent_token(audience=AUDIENCE)
    bot = ("Agent", "triage-bot")
    assert env.decide(bot, "read", "t1", tok).allowed  # now cached
    r, added = env.engine.revocations.revoke_token(claims_of(tok)["jti"], by="ops", reason="leaked")
    assert added and r.kind == "token"
    d = env.decide(bot, "read", "t1", tok)
    assert not d.allowed and d.error["code"] == "token_revoked"
    assert env.engine.revocations.revoke_token(claims_of(tok)["jti"], by="ops")[1] is False
    kinds = [e["type"] for e in env.sink.operator_events if e.get("type") == "token_revoked"]  # type: ignore[attr-defined]
    assert kinds == ["token_revoked"]


def test_revoke_delegation(env: Env) -> None:
    tok = _delegated(env)
    alice = ("User", "alice")
    assert env.decide(alice, "read", "t1", tok).allowed
    env.engine.revocations.revoke_delegation(BOT, 'User::"alice"', by="ops")
    d = env.decide(alice, "read", "t1", tok)
    assert not d.allowed and d.error["code"] == "token_revoked"
    assert env.decide(("Agent", "triage-bot"), "read", "t1", env.agent_token(audience=AUDIENCE)).allowed


# -- signing keys ------------------------------------------------------------------------------------
def test_rotation_keeps_old_tokens_valid_until_the_overlap_ends(env: Env) -> None:
    old = env.agent_token(audience=AUDIENCE)
    old_kid = env.engine.tokens.jwks()["keys"][0]["kid"]
    new_kid = env.engine.rotate_signing_key(by="ops")
    assert new_kid != old_kid
    assert {k["kid"] for k in env.engine.tokens.jwks()["keys"]} == {old_kid, new_kid}
    fresh = env.agent_token(audience=AUDIENCE)
    assert json.loads(__import__("base64").urlsafe_b64decode(fresh.split(".")[0] + "==="))["kid"] == new_kid
    bot = ("Agent", "triage-bot")
    assert env.decide(bot, "read", "t1", old).allowed and env.decide(bot, "read", "t1", fresh).allowed
    env.clock.t += 700  # past the overlap: the old key is no longer published
    assert {k["kid"] for k in env.engine.tokens.jwks()["keys"]} == {new_kid}


# -- fuzz ----------------------------------------------------------------------------------------------
_PARAMS = [
    "grant_type",
    "client_assertion",
    "client_assertion_type",
    "client_id",
    "audience",
    "resource",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "scope",
]
_VALUES = st.one_of(
    st.sampled_from(
        [
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "urn:ietf:params:oauth:token-type:jwt",
            AUDIENCE,
            BOT,
            "a.b.c",
        ]
    ),
    st.text(max_size=40),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.tuples(st.sampled_from(_PARAMS), _VALUES), max_size=8).map(
            lambda kv: urlencode(kv).encode()
        ),
    ),
    st.sampled_from([FORM, b"application/json", None, b"application/x-www-form-urlencoded; charset=utf-8"]),
)
def test_fuzzed_token_requests_only_ever_get_oauth_errors(env: Env, body: bytes, ctype: bytes | None) -> None:
    try:
        env.engine.tokens.token_request(body, ctype)
    except OAuthError as e:
        assert e.body()["error"] in {
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "invalid_target",
        }


def test_cached_verifications_survive_unrelated_registry_changes_not_binding_changes(env: Env) -> None:
    """Adding an identity keeps every cached token verification (no burst of fresh signature
    checks across the fleet); binding or unbinding an external name drops them, since a cached
    token's subject may come from the binding."""
    verifier = env.engine.verifier
    bot = ("Agent", "triage-bot")
    tok = env.agent_token(audience=AUDIENCE)
    assert env.decide(bot, "read", "t1", tok).allowed
    fresh = verifier.fresh
    env.engine.identities.add('Agent::"new-bot"', owner="ops@example.com", purpose="tests", by="ops")
    assert env.decide(bot, "read", "t1", tok).allowed
    assert verifier.fresh == fresh  # served from the cache

    rogue = ("Agent", "rogue-bot")
    human = env.human_token(sub="zed")
    env.engine.identities.bind('Agent::"rogue-bot"', issuer=env.idp.issuer, subject="zed", by="ops")
    assert env.decide(rogue, "read", "t1", human).allowed  # the binding names rogue-bot
    env.engine.identities.unbind('Agent::"rogue-bot"', issuer=env.idp.issuer, subject="zed", by="ops")
    r = env.decide(rogue, "read", "t1", human)
    assert not r.allowed, "a cached verification outlived the binding it came from"


def test_every_deny_of_a_delegated_request_carries_the_chain(env: Env) -> None:
    """The decision record (and its audit event) names the chain whichever step denied: an
    inactive actor, a quarantined subject, a suspended subject."""
    chain = (("Agent", "triage-bot"),)
    tok = _delegated(env)  # triage-bot for alice
    alice = ("User", "alice")
    env.engine.desk.add(alice, by="ops", reason="odd")
    r = env.decide(alice, "read", "t1", tok)
    assert not r.allowed and r.reason_codes == ("quarantined",) and r.delegation == chain
    env.engine.desk.lift(alice, by="ops")
    # an agent acting for an agent: the subject (triage-bot) suspended
    inner = env.token(exchange_form(env.agent_token(audience=AUDIENCE), env.agent_token(HELPER)))[
        "access_token"
    ]
    env.engine.identities.suspend(BOT, by="ops")
    r = env.decide(("Agent", "triage-bot"), "read", "t1", inner)
    assert not r.allowed and r.reason_codes == ("identity_inactive",)
    assert r.delegation == (("Agent", "helper-bot"),)
    assert any(e.get("delegation") for e in env.sink.events() if e.get("id") == r.id)  # type: ignore[attr-defined]


def test_a_binding_removed_during_a_fresh_verification_is_not_cached(env: Env) -> None:
    """The verification finishes with the binding it started with, but the cache was dropped
    meanwhile: that answer is not kept, so the next decision verifies afresh (without the
    binding). Forced order: the unbind runs inside the verification."""
    verifier = env.engine.verifier
    rogue = ("Agent", "rogue-bot")
    env.engine.identities.bind('Agent::"rogue-bot"', issuer=env.idp.issuer, subject="zed", by="ops")
    human = env.human_token(sub="zed")
    real = verifier._subject

    def racing(issuer: Any, external: Any) -> Any:
        got = real(issuer, external)
        env.engine.identities.unbind('Agent::"rogue-bot"', issuer=env.idp.issuer, subject="zed", by="ops")
        return got

    verifier._subject = racing  # type: ignore[method-assign]
    try:
        env.decide(rogue, "read", "t1", human)
    finally:
        verifier._subject = real  # type: ignore[method-assign]
    r = env.decide(rogue, "read", "t1", human)
    assert not r.allowed, "a verification made with the removed binding stayed cached"
