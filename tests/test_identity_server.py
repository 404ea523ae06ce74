"""The identity registry through the admin HTTP API of a real server on loopback: the same use
cases as the CLI, typed errors (400/404/409 with the stable code), and a suspended principal
denied at the next AuthZEN evaluation; a change made by the CLI in another process reaches the
server at its reload."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.identity_support import OWNER, PURPOSE, fleet, jwk_public, pem_public, private_key
from tests.test_server_support import ADMIN_KEY, API_KEY, ServerProcess

READ = {
    "subject": {"type": "ServiceAccount", "id": "ml-training-pipeline"},
    "action": {"name": "read"},
    "resource": {"type": "Database", "id": "ml-training-sets-prod"},
    "context": {"ip": "10.40.8.8", "region": "eu-west-1", "hour": 0},
}
SA = 'ServiceAccount::"ml-training-pipeline"'
PATH = "/admin/v1/identities/" + quote(SA, safe="")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ws = fleet(tmp_path_factory.mktemp("identity-server") / "ws", '[behaviour]\nmode = "shadow"\n')
    proc = ServerProcess(ws).wait_ready()
    proc.workspace = ws  # type: ignore[attr-defined]
    yield proc
    assert proc.stop()
    assert '"unhandled exception"' not in proc.log()


def _decision(api: object) -> dict:  # type: ignore[type-arg]
    r = api.post("/access/v1/evaluation", json=READ)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_register_suspend_and_the_next_evaluation_is_denied(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin, server.client(API_KEY) as api:
        assert _decision(api)["decision"] is True
        r = admin.post(
            "/admin/v1/identities",
            json={
                "uid": SA,
                "owner": OWNER,
                "purpose": PURPOSE,
                "by": "ops.alice",
                "expires": "2099-01-01",
                "public_key": jwk_public(private_key("p256")),
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (
            body["status"] == "active"
            and body["created_by"] == "ops.alice"
            and body["keys"][0]["key"] == "EC P-256"
        )
        assert _decision(api)["decision"] is True
        r = admin.post(PATH + "/suspend", json={"by": "ops.bob", "reason": "token leaked"})
        assert r.status_code == 200 and r.json()["status"] == "suspended"
        denied = _decision(api)
        assert denied["decision"] is False and denied["context"]["reason_codes"] == ["identity_inactive"]
        assert admin.get(PATH).json()["status_reason"] == "token leaked"
        assert [
            i["uid"] for i in admin.get("/admin/v1/identities?status=suspended").json()["identities"]
        ] == [SA]
        r = admin.post(PATH + "/resume", json={"by": "ops.bob"})
        assert r.status_code == 200 and _decision(api)["decision"] is True
        # keys (a PEM string and a JWK object) and bindings
        r = admin.post(
            PATH + "/keys", json={"by": "ops.alice", "key": pem_public(private_key("ed25519")).decode()}
        )
        assert r.status_code == 200 and len(r.json()["keys"]) == 2
        old = r.json()["keys"][0]["kid"]
        r = admin.post(PATH + "/keys/remove", json={"by": "ops.alice", "kid": old})
        assert r.status_code == 200 and [k["key"] for k in r.json()["keys"]] == ["Ed25519"]
        binding = {"issuer": "https://kubernetes.default.svc", "subject": "system:serviceaccount:ml:training"}
        r = admin.post(PATH + "/bindings", json={"by": "ops.alice", **binding})
        assert r.status_code == 200 and r.json()["bindings"][0]["subject"] == binding["subject"]
        r = admin.post(PATH + "/bindings/remove", json={"by": "ops.alice", **binding})
        assert r.status_code == 200 and r.json()["bindings"] == []
        report = admin.get("/admin/v1/identities/report?unused_days=7").json()
        assert report["totals"]["identities"] == 1 and report["unused_days"] == 7
        assert report["totals"]["unregistered"] == 39  # the fleet's other agents and service accounts
        metrics = admin.get("/metrics").text
        assert 'vigil_identities{state="registered"} 1' in metrics
        changes = [c["kind"] for c in admin.get("/admin/v1/changes").json()["changes"]]
        assert changes[:3] == ["identity_unbound", "identity_bound", "identity_key_removed"]


def test_errors_are_typed(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin, server.client(API_KEY) as api:
        other = "/admin/v1/identities/" + quote('Agent::"analytics-sql-agent"', safe="")
        cases = [
            (
                admin.post("/admin/v1/identities", json={"uid": 'Agent::"x"', "purpose": "p", "by": "a"}),
                400,
                "invalid_owner",
            ),
            (
                admin.post(
                    "/admin/v1/identities",
                    json={
                        "uid": 'Agent::"x"',
                        "owner": OWNER,
                        "purpose": "p",
                        "by": "a",
                        "expires": "yesterday",
                    },
                ),
                400,
                "invalid_date",
            ),
            (
                admin.post(
                    "/admin/v1/identities",
                    json={
                        "uid": 'Agent::"x"',
                        "owner": OWNER,
                        "purpose": "p",
                        "by": "a",
                        "public_key": {"kty": "oct", "k": "c2VjcmV0"},
                    },
                ),
                400,
                "invalid_key",
            ),
            (
                admin.post(
                    "/admin/v1/identities", json={"uid": "nope", "owner": OWNER, "purpose": "p", "by": "a"}
                ),
                400,
                "invalid_uid",
            ),
            (
                admin.post(
                    "/admin/v1/identities",
                    json={"uid": 'Agent::"x"', "owner": OWNER, "purpose": "p", "by": "a", "colour": "red"},
                ),
                400,
                "invalid_request",
            ),
            (
                admin.post(
                    "/admin/v1/identities",
                    json={
                        "uid": 'Agent::"x"',
                        "owner": OWNER,
                        "purpose": "p",
                        "by": "a",
                        "public_key": "/etc/passwd",
                    },
                ),
                400,
                "invalid_key",
            ),
            (admin.get(other), 404, "identity_not_found"),
            (admin.post(other + "/suspend", json={"by": "a"}), 404, "identity_not_found"),
            (admin.post(PATH + "/keys/remove", json={"by": "a", "kid": "nope"}), 404, "key_not_found"),
            (admin.post(PATH + "/frobnicate", json={"by": "a"}), 404, "not_found"),
            (admin.get("/admin/v1/identities/" + quote('Agent::"bad', safe="")), 400, "invalid_uid"),
            (admin.get("/admin/v1/identities/%FF"), 400, "invalid_uid"),
            (admin.post(PATH + "/suspend", json={"reason": "no by"}), 400, "invalid_argument"),
            (admin.get("/admin/v1/identities?colour=red"), 400, "invalid_argument"),
            (admin.get("/admin/v1/identities/report?unused_days=0"), 400, "invalid_argument"),
            (admin.get(PATH + "/suspend"), 405, "method_not_allowed"),
        ]
        for r, status, code in cases:
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
        admin.post(
            "/admin/v1/identities",
            json={"uid": 'Agent::"analytics-sql-agent"', "owner": OWNER, "purpose": "p", "by": "a"},
        )
        r = admin.post(
            "/admin/v1/identities",
            json={"uid": 'Agent::"analytics-sql-agent"', "owner": OWNER, "purpose": "p", "by": "a"},
        )
        assert (r.status_code, r.json()["error"]["code"]) == (409, "identity_exists")
        assert admin.post(other + "/retire", json={"by": "a"}).status_code == 200
        r = admin.post(other + "/resume", json={"by": "a"})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "invalid_transition")
        assert api.get("/admin/v1/identities").status_code == 401  # the decision key is not an admin key


def test_a_cli_change_reaches_the_server_at_reload(server: ServerProcess, tmp_path: Path) -> None:
    ws: Path = server.workspace  # type: ignore[attr-defined]
    uid = 'Agent::"data-quality-agent"'
    request = {**READ, "subject": {"type": "Agent", "id": "data-quality-agent"}}
    with server.client(ADMIN_KEY) as admin, server.client(API_KEY) as api:
        before = api.post("/access/v1/evaluation", json=request).json()["context"]["reason_codes"]
        assert "identity_inactive" not in before
        cli = [sys.executable, "-m", "vigil.cli.main", "identity"]
        for args in (
            ["add", "-w", str(ws), uid, "--owner", OWNER, "--purpose", PURPOSE, "--by", "cli"],
            ["suspend", "-w", str(ws), uid, "--by", "cli"],
        ):
            done = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
        assert admin.post("/admin/v1/reload").status_code == 200
        after = api.post("/access/v1/evaluation", json=request).json()
        assert after["decision"] is False and after["context"]["reason_codes"] == ["identity_inactive"]
        shown = admin.get("/admin/v1/identities/" + quote(uid, safe="")).json()
        assert shown["status"] == "suspended" and shown["status_by"] == "cli"
    events = [json.loads(x) for x in (ws / ".vigil" / "audit.jsonl").read_text().splitlines() if x.strip()]
    assert ("identity_suspended", "cli") in [(e.get("type"), e.get("by")) for e in events]
