"""The running server over real HTTP: statuses, caller authentication, admin, operations, startup.

Every error is ``{"error": {"code", "message"}}`` with the status the AuthZEN 1.0 certification
scenario asks for, and every response echoes ``X-Request-ID``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_server_support import ADMIN_KEY, API_KEY, ServerProcess, copy_workspace, serve_argv

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
GOOD = {
    "subject": {"type": "user", "id": RICK},
    "action": {"name": "can_create_todo"},
    "resource": {"type": "todo", "id": "t1"},
}
MAX_BODY = 65_536


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = copy_workspace("authzen-todo", tmp_path_factory.mktemp("http"))
    (ws / "vigil.toml").write_text(f"[server]\nmax_body_bytes = {MAX_BODY}\nmax_evaluations = 100\n")
    return ws


@pytest.fixture(scope="module")
def server(workspace: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(workspace).wait_ready()
    yield proc
    assert proc.stop()


@pytest.fixture()
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# -- AuthZEN statuses ---------------------------------------------------------------------------
def test_permit_and_request_id(client: httpx.Client) -> None:
    r = client.post("/access/v1/evaluation", json=GOOD, headers={"X-Request-ID": "req-1"})
    assert r.status_code == 200 and r.json()["decision"] is True
    assert r.headers["x-request-id"] == "req-1"
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("content", "headers", "code"),
    [
        (json.dumps(GOOD), {}, "invalid_content_type"),
        (json.dumps(GOOD), {"Content-Type": "text/plain"}, "invalid_content_type"),
        (json.dumps(GOOD), {"Content-Type": "application/x-www-form-urlencoded"}, "invalid_content_type"),
        ("", {"Content-Type": "application/json"}, "invalid_json"),
        ("{not json", {"Content-Type": "application/json"}, "invalid_json"),
        ("[1]", {"Content-Type": "application/json"}, "invalid_request"),
        ("{}", {"Content-Type": "application/json"}, "invalid_request"),
        (
            json.dumps({**GOOD, "subject": {"type": "user"}}),
            {"Content-Type": "application/json"},
            "invalid_request",
        ),
        (json.dumps({**GOOD, "action": {}}), {"Content-Type": "application/json"}, "invalid_request"),
        (
            json.dumps({**GOOD, "resource": {"id": "x"}}),
            {"Content-Type": "application/json"},
            "invalid_request",
        ),
        (json.dumps({**GOOD, "subject": "rick"}), {"Content-Type": "application/json"}, "invalid_request"),
        (json.dumps({**GOOD, "context": {"x": None}}), {"Content-Type": "application/json"}, "invalid_value"),
    ],
)
@pytest.mark.parametrize("path", ["/access/v1/evaluation", "/access/v1/search/resource"])
def test_bad_bodies_are_400(
    client: httpx.Client, path: str, content: str, headers: dict[str, str], code: str
) -> None:
    r = client.post(path, content=content.encode(), headers={**headers, "X-Request-ID": "bad-1"})
    assert_error(r, 400, code)
    assert r.headers["x-request-id"] == "bad-1"


def test_invalid_utf8_is_400(client: httpx.Client) -> None:
    r = client.post(
        "/access/v1/evaluation",
        content=b'{"subject": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 400, "invalid_json")


def test_unknown_fields_are_ignored(client: httpx.Client) -> None:
    r = client.post(
        "/access/v1/evaluation",
        json={**GOOD, "extra": {"deep": [1, 2]}, "subject": {**GOOD["subject"], "x": 1}},
    )
    assert r.status_code == 200 and r.json()["decision"] is True


def test_unauthenticated_is_401(server: ServerProcess) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-key-0123456789"},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": f"Bearer {ADMIN_KEY}"},
        {"Authorization": "Bearer"},
    ):
        r = httpx.post(
            server.url + "/access/v1/evaluation", json=GOOD, headers={**headers, "X-Request-ID": "u"}
        )
        assert_error(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["x-request-id"] == "u"


def test_unknown_path_is_404_and_wrong_method_405(client: httpx.Client) -> None:
    r = client.get("/access/v1/nothing", headers={"X-Request-ID": "nf"})
    assert_error(r, 404, "not_found")
    assert r.headers["x-request-id"] == "nf"
    r = client.get("/access/v1/evaluation", headers={"X-Request-ID": "m"})
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST" and r.headers["x-request-id"] == "m"
    assert_error(client.post("/healthz"), 405, "method_not_allowed")


def test_oversize_body_is_413(client: httpx.Client) -> None:
    big = {**GOOD, "context": {"pad": "x" * (MAX_BODY + 10)}}
    r = client.post("/access/v1/evaluation", json=big, headers={"X-Request-ID": "big"})
    assert_error(r, 413, "request_too_large")
    assert r.headers["x-request-id"] == "big"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield b'{"pad": "'
        for _ in range(MAX_BODY // 1000 + 2):
            yield b"x" * 1000
        yield b'"}'

    r = client.post("/access/v1/evaluation", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(r, 413, "request_too_large")
    # The connection is still usable for the next request.
    assert client.post("/access/v1/evaluation", json=GOOD).status_code == 200


def test_batch_too_large_is_413(client: httpx.Client) -> None:
    r = client.post("/access/v1/evaluations", json={**GOOD, "evaluations": [{}] * 101})
    assert_error(r, 413, "request_too_large")


def test_batch_over_http(client: httpx.Client) -> None:
    body = {
        **GOOD,
        "evaluations": [{}, {"subject": {"type": "user", "id": "nobody"}}, {"action": 5}],
        "options": {"evaluations_semantic": "execute_all"},
    }
    r = client.post("/access/v1/evaluations", json=body)
    assert r.status_code == 200
    items = r.json()["evaluations"]
    assert [i["decision"] for i in items] == [True, False, False]
    assert items[1]["context"]["reason_codes"] == ["unknown_identity"]
    assert items[2]["context"]["error"]["code"] == "invalid_request"


def test_metadata(server: ServerProcess) -> None:
    r = httpx.get(server.url + "/.well-known/authzen-configuration", headers={"X-Request-ID": "md"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "md"
    meta = r.json()
    assert meta["policy_decision_point"] == server.url
    for key in (
        "access_evaluation",
        "access_evaluations",
        "search_subject",
        "search_resource",
        "search_action",
    ):
        assert meta[f"{key}_endpoint"].startswith(server.url + "/access/v1/")


# -- operations ---------------------------------------------------------------------------------
def test_health_ready_and_metrics(server: ServerProcess, client: httpx.Client) -> None:
    client.post("/access/v1/evaluation", json=GOOD)
    client.post("/access/v1/evaluation", json={**GOOD, "subject": {"type": "user", "id": "nobody"}})
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["policy_revision"]
    text = httpx.get(server.url + "/metrics").text
    assert 'vigil_decisions_total{decision="allow",reason="policy_permit"}' in text
    assert 'vigil_decisions_total{decision="deny",reason="unknown_identity"}' in text
    assert 'vigil_http_request_duration_seconds_bucket{endpoint="evaluation"' in text
    assert "vigil_decision_duration_seconds_count" in text
    assert "vigil_http_in_flight" in text and "vigil_reloads_total" in text and "vigil_errors_total" in text


def test_openapi_lists_every_endpoint(server: ServerProcess) -> None:
    doc = httpx.get(server.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in (
        "/access/v1/evaluation",
        "/access/v1/evaluations",
        "/access/v1/search/subject",
        "/access/v1/search/resource",
        "/access/v1/search/action",
        "/.well-known/authzen-configuration",
        "/admin/v1/reload",
        "/admin/v1/status",
        "/admin/v1/stats",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/ext_authz/{path}",
    ):
        assert path in doc["paths"], path


# -- admin --------------------------------------------------------------------------------------
def test_admin_needs_the_admin_key(server: ServerProcess) -> None:
    for key in (None, API_KEY):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        assert_error(httpx.get(server.url + "/admin/v1/status", headers=headers), 401, "unauthenticated")
        assert_error(httpx.post(server.url + "/admin/v1/reload", headers=headers), 401, "unauthenticated")


def _metric(server: ServerProcess, sample: str) -> float:
    """The value of one exposition line (``name{labels}``) of ``/metrics``, 0 when absent."""
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_admin_status_stats_and_reload(server: ServerProcess, workspace: Path) -> None:
    """Counts are taken before and after this test's own traffic: the module's server is shared
    with other tests, whose requests and reloads must not matter (the test passes run alone)."""
    failed_sample, ok_sample = 'vigil_reloads_total{result="failed"}', 'vigil_reloads_total{result="ok"}'
    reloads_before = (_metric(server, failed_sample), _metric(server, ok_sample))
    with server.client(ADMIN_KEY) as admin:
        status = admin.get("/admin/v1/status").json()
        # The workspace's own counts: 6 policies (all compiled), the entities of its files.
        entities = sum(len(json.loads(f.read_text())) for f in (workspace / "entities").glob("*.json"))
        assert (status["policies"], status["compiled"], status["fallbacks"]) == (6, 6, [])
        assert status["entities"] == entities == 5
        before = admin.get("/admin/v1/stats").json()["since_start"]
        nobody = {"subject": {"type": "user", "id": "nobody"}}
        with server.client() as c:
            assert c.post("/access/v1/evaluation", json=GOOD).json()["decision"] is True
            assert c.post("/access/v1/evaluation", json={**GOOD, **nobody}).json()["decision"] is False
            batch = {**GOOD, "evaluations": [{}, nobody, {}]}  # each item counts
            got = c.post("/access/v1/evaluations", json=batch).json()["evaluations"]
            assert [e["decision"] for e in got] == [True, False, True]
        stats = admin.get("/admin/v1/stats").json()
        after = stats["since_start"]
        assert after["allow"] == before.get("allow", 0) + 3, (before, stats)
        assert after["deny"] == before.get("deny", 0) + 2, (before, stats)
        reasons = {k: v - before["by_reason"].get(k, 0) for k, v in after["by_reason"].items()}
        assert {k: v for k, v in reasons.items() if v} == {"policy_permit": 3, "unknown_identity": 2}
        assert "p99" in stats["engine_latency_us"]

        policy = workspace / "policies" / "todo.cedar"
        original = policy.read_text()
        try:
            policy.write_text(original + "\npermit (principal, action, resource) when { nonsense };\n")
            r = admin.post("/admin/v1/reload")
            assert_error(r, 422, "invalid_workspace")
            assert r.json()["error"]["revision"] == status["policy_revision"]
            assert r.json()["error"]["problems"]
            # Still serving the last good workspace.
            with server.client() as c:
                assert c.post("/access/v1/evaluation", json=GOOD).json()["decision"] is True
            policy.write_text(
                original + '\nforbid (principal, action == Action::"can_create_todo", resource);\n'
            )
            r = admin.post("/admin/v1/reload")
            assert r.status_code == 200 and r.json()["ok"] is True
            assert r.json()["revision"] != status["policy_revision"]
            with server.client() as c:
                assert c.post("/access/v1/evaluation", json=GOOD).json()["decision"] is False
        finally:
            policy.write_text(original)
            assert admin.post("/admin/v1/reload").status_code == 200
        reloads_after = (_metric(server, failed_sample), _metric(server, ok_sample))
        assert reloads_after == (reloads_before[0] + 1, reloads_before[1] + 2)


def test_access_log_is_json_without_secrets(server: ServerProcess, client: httpx.Client) -> None:
    client.post("/access/v1/evaluation?token=secret-query", json=GOOD, headers={"X-Request-ID": "log-1"})
    httpx.post(
        server.url + "/access/v1/evaluation",
        json=GOOD,
        headers={"Authorization": "Bearer not-a-real-key-123456"},
    )
    with server.client(ADMIN_KEY) as admin:
        admin.get("/admin/v1/status")
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any('"log-1"' in line for line in server.lines):
        time.sleep(0.05)
    log = server.log()
    assert (
        API_KEY not in log
        and ADMIN_KEY not in log
        and "not-a-real-key" not in log
        and "secret-query" not in log
    )
    access = [json.loads(line) for line in server.lines if '"access"' in line]
    entry = next(a for a in access if a.get("request_id") == "log-1")
    assert (
        entry["status"] == 200
        and entry["endpoint"] == "evaluation"
        and entry["path"] == "/access/v1/evaluation"
    )


# -- startup ------------------------------------------------------------------------------------
def _serve(workspace: Path, *args: str, keys: str | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("VIGIL_API_KEYS", "VIGIL_ADMIN_KEYS")}
    if keys is not None:
        env["VIGIL_API_KEYS"] = keys
    return subprocess.run(
        serve_argv(workspace, *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_without_a_key(workspace: Path) -> None:
    r = _serve(workspace)
    assert r.returncode == 2 and "no API key configured" in r.stderr


def test_insecure_mode_is_refused_off_loopback(workspace: Path) -> None:
    r = _serve(workspace, "--insecure-no-auth", "--host", "0.0.0.0")
    assert r.returncode == 2 and "non-loopback" in r.stderr


def test_short_keys_are_refused(workspace: Path) -> None:
    r = _serve(workspace, keys="short")
    assert r.returncode == 3 and "at least 16" in r.stderr


def test_keys_file_and_insecure_mode(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-todo", tmp_path)
    (ws / "keys.txt").write_text("# the PEP\nfile-key-0123456789abcdef\n")
    (ws / "vigil.toml").write_text('[server]\napi_keys_file = "keys.txt"\n')
    proc = ServerProcess(ws, keys=None, admin_keys=None).wait_ready()
    try:
        r = httpx.post(
            proc.url + "/access/v1/evaluation",
            json=GOOD,
            headers={"Authorization": "Bearer file-key-0123456789abcdef"},
        )
        assert r.status_code == 200
        assert (
            httpx.get(
                proc.url + "/admin/v1/status", headers={"Authorization": "Bearer file-key-0123456789abcdef"}
            ).status_code
            == 401
        )
    finally:
        assert proc.stop()
    (ws / "vigil.toml").write_text("")
    proc = ServerProcess(ws, keys=None, admin_keys=None, args=("--insecure-no-auth",)).wait_ready()
    try:
        assert httpx.post(proc.url + "/access/v1/evaluation", json=GOOD).status_code == 200
        assert sum("INSECURE" in line for line in proc.lines) >= 3
    finally:
        assert proc.stop()


def test_address_in_use_is_refused(server: ServerProcess, workspace: Path) -> None:
    r = _serve(workspace, "--port", str(server.port), keys=API_KEY)
    # --port given twice: the last wins, so this binds the running server's port.
    assert r.returncode == 2 and "cannot listen" in r.stderr
