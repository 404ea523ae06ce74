"""End to end, as a user would: register an agent's key with the CLI, get a token from a real
``vigil serve`` with private_key_jwt, exchange a human's token from a local trusted issuer (a real
JWKS server on loopback) for a delegated one, decide over HTTP (AuthZEN and Envoy ext_authz):
allowed only where both may; suspend the agent and see the next decision denied. Then revocation
and signing-key rotation through the CLI, and a fuzz of the token endpoint over HTTP (no 500)."""

from __future__ import annotations

import json
import secrets
from base64 import urlsafe_b64decode
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.test_server_support import ADMIN_KEY, API_KEY, ServerProcess
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
from vigil.cli.main import app

BOT = 'Agent::"triage-bot"'
EXT = '\n[ext_authz]\nsubject = "token"\nroutes = [\n  "GET /tickets/{id} => read Ticket::{id}",\n  "PUT /tickets/{id} => update Ticket::{id}",\n]\n'
runner = CliRunner()


def cli(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if result.stdout.strip() else None


class Setup:
    server: ServerProcess
    idp: JwksServer
    ws: Path
    key: Any


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    s = Setup()
    base = tmp_path_factory.mktemp("token-e2e")
    with JwksServer(new_key("rsa")) as idp:
        s.idp = idp
        s.ws = workspace(base / "ws", trust_toml(idp.issuer, idp.url) + EXT)
        s.key = new_key("ed25519")
        key_file = base / "bot.jwk.json"
        key_file.write_text(json.dumps(s.key.as_dict(private=False)))
        added = cli(
            "identity", "add", "-w", str(s.ws), BOT, "--owner", "ops@example.com",
            "--purpose", "triages tickets", "--public-key", str(key_file), "--by", "ops",
        )  # fmt: skip
        assert added["keys"][0]["kid"] == s.key.kid  # the RFC 7638 thumbprint on both sides
        s.server = ServerProcess(s.ws).wait_ready()
        yield s
        assert s.server.stop()
        assert '"unhandled exception"' not in s.server.log()


def _token(c: httpx.Client, form: dict[str, str]) -> httpx.Response:
    return c.post("/oauth2/token", data=form)


def _evaluate(api: httpx.Client, action: str, ticket: str, token: str, sub: str = "alice") -> dict[str, Any]:
    body = {
        "subject": {"type": "User", "id": sub, "properties": {"token": token}},
        "action": {"name": action},
        "resource": {"type": "Ticket", "id": ticket},
    }
    r = api.post("/access/v1/evaluation", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _envoy(c: httpx.Client, method: str, path: str, token: str) -> httpx.Response:
    return c.request(
        method, "/ext_authz" + path, headers={"authorization": f"Bearer {token}", "x-vigil-api-key": API_KEY}
    )


def test_an_agent_acts_for_a_human_and_is_cut_off_by_suspension(setup: Setup) -> None:
    s = setup
    with s.server.client(None) as anon, s.server.client(API_KEY) as api, s.server.client(ADMIN_KEY) as admin:
        meta = anon.get("/.well-known/oauth-authorization-server").json()
        assert meta["issuer"] == ISSUER and meta["token_endpoint_auth_methods_supported"] == [
            "private_key_jwt"
        ]
        assert anon.get("/oauth2/jwks").json()["keys"]
        # the agent proves who it is with its registered key and gets a 10-minute token
        r = _token(anon, credentials_form(BOT, s.key, audience=ISSUER))
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store" and r.json()["expires_in"] == 600
        actor_token = r.json()["access_token"]
        # a replayed assertion is refused
        form = credentials_form(BOT, s.key)
        assert _token(anon, form).status_code == 200
        r = _token(anon, form)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        # the human's token from the organisation's issuer, exchanged for a delegated one
        human = sign(human_claims(s.idp.issuer, sub="alice"), s.idp.keys[0])
        r = _token(anon, exchange_form(human, actor_token))
        assert r.status_code == 200, r.text
        delegated = r.json()["access_token"]
        assert claims_of(delegated)["act"] == {"sub": BOT}
        # AuthZEN: allowed only where both may
        assert _evaluate(api, "read", "t1", delegated)["decision"] is True
        denied = _evaluate(api, "update", "t1", delegated)
        assert denied["decision"] is False and denied["context"]["reason_codes"] == ["delegation_denied"]
        assert _evaluate(api, "update", "t1", human)["decision"] is True  # alice herself may
        mismatch = _evaluate(api, "read", "t1", delegated, sub="bob")
        assert mismatch["context"]["reason_codes"] == ["token_subject_mismatch"]
        # Envoy ext_authz: the bearer token is the subject
        assert _envoy(anon, "GET", "/tickets/t1", delegated).status_code == 200
        r = _envoy(anon, "PUT", "/tickets/t1", delegated)
        assert r.status_code == 403 and r.headers["x-vigil-reason"] == "delegation_denied"
        r = _envoy(anon, "GET", "/tickets/t1", delegated[:-6] + "AAAAAA")
        assert r.status_code == 401 and r.headers["x-vigil-reason"] == "invalid_token"
        # suspend the agent: the next decision is denied, over both protocols
        r = admin.post(
            "/admin/v1/identities/" + quote(BOT, safe="") + "/suspend", json={"by": "ops", "reason": "e2e"}
        )
        assert r.status_code == 200, r.text
        after = _evaluate(api, "read", "t1", delegated)
        assert after["decision"] is False and after["context"]["reason_codes"] == ["identity_inactive"]
        assert _envoy(anon, "GET", "/tickets/t1", delegated).status_code == 403
        r = _token(anon, credentials_form(BOT, s.key))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        assert (
            admin.post(
                "/admin/v1/identities/" + quote(BOT, safe="") + "/resume", json={"by": "ops"}
            ).status_code
            == 200
        )


def test_revocation_and_key_rotation_from_the_command_line(setup: Setup) -> None:
    s = setup
    with s.server.client(None) as anon, s.server.client(API_KEY) as api, s.server.client(ADMIN_KEY) as admin:
        agent = _token(anon, credentials_form(BOT, s.key, audience=AUDIENCE)).json()["access_token"]
        human = sign(human_claims(s.idp.issuer), s.idp.keys[0])
        delegated = _token(
            anon,
            exchange_form(
                human, _token(anon, credentials_form(BOT, s.key, audience=ISSUER)).json()["access_token"]
            ),
        ).json()["access_token"]
        assert _evaluate(api, "read", "t1", delegated)["decision"] is True
        jti = claims_of(delegated)["jti"]
        out = cli("identity", "revoke-token", jti, "-w", str(s.ws), "--reason", "test", "--by", "ops")
        assert out["jti"] == jti and out["new"] is True
        assert admin.post("/admin/v1/reload").status_code == 200  # (or wait for the ~1 s refresh)
        r = _evaluate(api, "read", "t1", delegated)
        assert r["decision"] is False and r["context"]["error"]["code"] == "token_revoked"
        # the admin API revokes a delegation at once
        other = _token(
            anon,
            exchange_form(
                human, _token(anon, credentials_form(BOT, s.key, audience=ISSUER)).json()["access_token"]
            ),
        ).json()["access_token"]
        assert _evaluate(api, "read", "t1", other)["decision"] is True
        r = admin.post(
            "/admin/v1/delegations/revoke", json={"by": "ops", "actor": BOT, "subject": 'User::"alice"'}
        )
        assert r.status_code == 200, r.text
        assert _evaluate(api, "read", "t1", other)["decision"] is False
        listed = cli("identity", "revocations", "-w", str(s.ws))["revocations"]
        assert {x["kind"] for x in listed} == {"token", "delegation"}
        # signing keys: rotate with the CLI; old tokens keep verifying, new ones use the new key
        before = cli("oauth", "keys", "-w", str(s.ws))["keys"]
        kid = cli("oauth", "rotate-key", "-w", str(s.ws), "--by", "ops")["kid"]
        keys = {k["kid"]: k["state"] for k in cli("oauth", "keys", "-w", str(s.ws))["keys"]}
        assert keys[kid] == "signing" and keys[before[0]["kid"]] == "retiring"
        assert {k["kid"] for k in anon.get("/oauth2/jwks").json()["keys"]} == set(keys)
        fresh = _token(anon, credentials_form(BOT, s.key, audience=AUDIENCE)).json()["access_token"]
        assert json.loads(urlsafe_b64decode(fresh.split(".")[0] + "=="))["kid"] == kid
        bot_req = {
            "subject": {"type": "Agent", "id": "triage-bot"},
            "action": {"name": "read"},
            "resource": {"type": "Ticket", "id": "t1"},
        }
        for tok in (agent, fresh):
            body = {**bot_req, "subject": {**bot_req["subject"], "properties": {"token": tok}}}
            assert api.post("/access/v1/evaluation", json=body).json()["decision"] is True


def test_client_assertion_for_an_unregistered_key_over_http(setup: Setup) -> None:
    with setup.server.client(None) as anon:
        form = credentials_form(BOT, new_key())
        r = _token(anon, form)
        assert (
            r.status_code == 401 and r.json()["error"] == "invalid_client" and "error_description" in r.json()
        )
        r = anon.post("/oauth2/token", json={"grant_type": "client_credentials"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "grant_type",
                "client_assertion",
                "client_assertion_type",
                "subject_token",
                "actor_token",
                "audience",
                "client_id",
            ]
        ),
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(
                ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange", BOT, "a.b.c"]
            ),
        ),
        max_size=6,
    ),
    st.binary(max_size=200),
)
def test_the_token_endpoint_never_answers_500(setup: Setup, form: dict[str, str], raw: bytes) -> None:
    with setup.server.client(None) as anon:
        for r in (
            anon.post("/oauth2/token", data=form),
            anon.post(
                "/oauth2/token", content=raw, headers={"content-type": "application/x-www-form-urlencoded"}
            ),
            anon.post(
                "/oauth2/token",
                data={**form, "client_assertion": assertion(BOT, new_key()), "jti": secrets.token_hex(4)},
            ),
        ):
            assert r.status_code in (400, 401), r.text
            assert r.json()["error"]
