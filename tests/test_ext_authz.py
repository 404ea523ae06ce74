"""Envoy ext_authz: route mapping, subjects, and the real server answering requests shaped as
Envoy sends them, over both transports with the same cases: the HTTP service (original method and
path under ``path_prefix``, the original headers, an empty body, the PEP key added with
``headers_to_add``) and the gRPC ``Authorization/Check`` service (a ``CheckRequest`` from a real
gRPC client, the PEP key in the call's metadata)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from tests.envoy_grpc import Answer, grpc_check, http_check
from tests.test_server_support import API_KEY, ServerProcess, copy_workspace
from vigil.errors import WorkspaceError
from vigil.protocol.ext_authz import SubjectError, match_route, parse_routes, verify_jwt

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"  # admin, evil_genius
BETH = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"  # viewer
PEP = {"x-vigil-api-key": API_KEY}

# -- routes (no server) -------------------------------------------------------------------------
ROUTES = parse_routes(
    [
        "GET /todos => read todo::list",
        "PUT /todos/{todoId} => update todo::{todoId}",
        "* /files/{rest...} => {@method} file::{rest}",
        "DELETE /todos/{todoId} => {@method} route::{@route}",
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/todos", ("read", ("todo", "list"))),
        ("GET", "/todos/", ("read", ("todo", "list"))),
        ("GET", "/todos?x=1", ("read", ("todo", "list"))),
        ("PUT", "/todos/42", ("update", ("todo", "42"))),
        ("PATCH", "/files/a/b/c", ("PATCH", ("file", "a/b/c"))),
        ("DELETE", "/todos/7", ("DELETE", ("route", "/todos/{todoId}"))),
        ("POST", "/todos", None),
        ("PUT", "/todos", None),
        ("PUT", "/todos/1/2", None),
        ("GET", "/files", None),
        ("GET", "/", None),
    ],
)
def test_match_route(method: str, path: str, expected: tuple[str, tuple[str, str]] | None) -> None:
    m = match_route(ROUTES, method, path)
    assert (None if m is None else (m.action, m.resource)) == expected


@pytest.mark.parametrize(
    "line",
    [
        "GET /todos read todo::x",
        "GET todos => read todo::x",
        "get1 /todos => read todo::x",
        "GET /todos/{id => read todo::x",
        "GET /todos/{a...}/x => read todo::{a}",
        "GET /todos => read todo::{id}",
        "GET /todos => read todo::{@nope}",
        "GET /todos => read todo",
    ],
)
def test_bad_route_lines_are_refused(line: str) -> None:
    with pytest.raises(WorkspaceError) as e:
        parse_routes(["GET /ok => read todo::x", line])
    assert e.value.problems and all("[2]" in p for p in e.value.problems)


# -- JWTs (no server) ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signing_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "k1"})


def token(key: ECKey, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "sub": RICK,
        "iss": "https://idp.example",
        "aud": "todo-api",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode({"alg": "ES256", "kid": "k1"}, body, key)


def test_verify_jwt(signing_key: ECKey) -> None:
    keys = KeySet.import_key_set(KeySet([signing_key]).as_dict(private=False))
    ok = dict(claim="sub", issuer="https://idp.example", audience="todo-api")
    assert verify_jwt(token(signing_key), keys, **ok) == RICK
    other = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    bad = [
        token(signing_key, exp=int(time.time()) - 3600),
        token(signing_key, iss="https://evil.example"),
        token(signing_key, aud="other"),
        token(other),
        token(signing_key, sub=5),
        token(signing_key)[:-4] + "AAAA",
        "not.a.jwt",
        jwt.encode({"alg": "HS256"}, {"sub": RICK, "exp": int(time.time()) + 60}, _oct_key()),
    ]
    for t in bad:
        with pytest.raises(SubjectError):
            verify_jwt(t, keys, **ok)


def _b64(data: dict[str, Any]) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def public_keys(signing_key: ECKey) -> KeySet:
    return KeySet.import_key_set(KeySet([signing_key]).as_dict(private=False))


OK = dict(claim="sub", issuer="https://idp.example", audience="todo-api")


def test_jwt_without_exp_is_refused(signing_key: ECKey, public_keys: KeySet) -> None:
    now = int(time.time())
    body = {"sub": RICK, "iss": "https://idp.example", "aud": "todo-api", "iat": now}
    unexpiring = jwt.encode({"alg": "ES256", "kid": "k1"}, body, signing_key)
    with pytest.raises(SubjectError):
        verify_jwt(unexpiring, public_keys, **OK)


def test_jwt_not_yet_valid_is_refused_beyond_the_leeway(signing_key: ECKey, public_keys: KeySet) -> None:
    now = 1_900_000_000
    early = token(signing_key, iat=now, nbf=now + 3600, exp=now + 7200)
    with pytest.raises(SubjectError):
        verify_jwt(early, public_keys, now=now, **OK)
    # 30 s of clock skew are tolerated; the same token is good once its time has come.
    assert (
        verify_jwt(token(signing_key, iat=now, nbf=now + 20, exp=now + 300), public_keys, now=now, **OK)
        == RICK
    )
    assert verify_jwt(early, public_keys, now=now + 3601, **OK) == RICK


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_jwt_is_refused(public_keys: KeySet, alg: str) -> None:
    now = int(time.time())
    claims = {"sub": RICK, "iss": "https://idp.example", "aud": "todo-api", "iat": now, "exp": now + 300}
    for header in ({"alg": alg}, {"alg": alg, "kid": "k1"}, {"alg": alg, "typ": "JWT"}):
        for signature in ("", "AAAA"):
            with pytest.raises(SubjectError):
                verify_jwt(f"{_b64(header)}.{_b64(claims)}.{signature}", public_keys, **OK)


def test_oversize_token_is_refused_before_verification(signing_key: ECKey, public_keys: KeySet) -> None:
    """A genuine, well-signed token is still refused past 16 KiB (the cost of verifying is bounded)."""

    def padded(n: int) -> str:
        return token(signing_key, pad="x" * n)

    n = 11_000
    while len(padded(n + 1)) <= 16_384:
        n += 1
    while len(padded(n)) > 16_384:
        n -= 1
    at_limit, over = padded(n), padded(n + 3)
    assert len(at_limit) <= 16_384 < len(over)
    assert verify_jwt(at_limit, public_keys, **OK) == RICK
    with pytest.raises(SubjectError, match="too long"):
        verify_jwt(over, public_keys, **OK)


def _oct_key() -> Any:
    from joserfc.jwk import OctKey

    return OctKey.import_key("a-shared-secret-that-must-not-work-0123456789")


# -- the server, over both transports -------------------------------------------------------------
@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ws = copy_workspace("authzen-api-gateway", tmp_path_factory.mktemp("gw"))
    proc = ServerProcess(ws, args=("--grpc-port", "0")).wait_ready()
    yield proc
    assert proc.stop()


Check = Any  # (method, path, headers) -> Answer


@pytest.fixture(params=["http", "grpc"])
def envoy(request: pytest.FixtureRequest, gateway: ServerProcess) -> Check:
    """What Envoy's ext_authz filter sends to the gateway, over one transport."""
    if request.param == "http":
        return lambda method, path, headers: http_check(gateway.url, method, path, headers)
    return lambda method, path, headers: grpc_check(gateway.grpc_port, method, path, headers)


@pytest.mark.parametrize(
    ("pid", "method", "path", "allowed"),
    [
        (RICK, "GET", "/todos", True),
        (BETH, "GET", "/users/rick%40the-citadel.com", True),
        (RICK, "POST", "/todos", True),
        (BETH, "POST", "/todos", False),
        (RICK, "PUT", "/todos/7240d0db", True),
        (BETH, "PUT", "/todos/7240d0db", False),
        (RICK, "DELETE", "/todos/7240d0db?force=1", True),
        (BETH, "DELETE", "/todos/7240d0db", False),
        ("unknown-pid", "GET", "/todos", False),
    ],
)
def test_header_subject(envoy: Check, pid: str, method: str, path: str, allowed: bool) -> None:
    r: Answer = envoy(method, path, {**PEP, "x-user-pid": pid, "x-request-id": "envoy-1"})
    assert r.status == (200 if allowed else 403), r.body
    assert r.headers["x-vigil-decision"] == ("allow" if allowed else "deny")
    assert r.headers["x-vigil-decision-id"]
    if r.body is not None:  # the body a client sees (HTTP: always; gRPC: on a deny)
        assert r.headers["x-vigil-decision-id"] == r.body["context"]["id"]
        assert r.headers["x-vigil-reason"] == ",".join(r.body["context"]["reason_codes"])
    if r.transport == "http":
        assert r.headers["x-request-id"] == "envoy-1"


def test_no_route_denies(envoy: Check) -> None:
    r = envoy("PATCH", "/todos/1", {**PEP, "x-user-pid": RICK})
    assert r.status == 403 and r.headers["x-vigil-reason"] == "no_route"
    r = envoy("GET", "/admin", {**PEP, "x-user-pid": RICK})
    assert r.status == 403


def test_missing_subject_is_401(envoy: Check) -> None:
    r = envoy("GET", "/todos", PEP)
    assert r.status == 401 and r.headers["x-vigil-reason"] == "unauthenticated_subject"


def test_pep_key_is_required(envoy: Check) -> None:
    for headers in (
        {},
        {"x-vigil-api-key": "wrong-key-0123456789abc"},
        {"authorization": f"Bearer {API_KEY}"},
    ):
        r = envoy("GET", "/todos", {**headers, "x-user-pid": RICK})
        assert r.status == 401 and r.body is not None and r.body["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "path", ["/todos/%2e%2e/admin", "/todos/a%2Fb", "/todos/..;/x", "/todos/%FF", "/todos/%2e/x"]
)
def test_ambiguous_paths_are_refused(envoy: Check, path: str) -> None:
    r = envoy("PUT", path, {**PEP, "x-user-pid": RICK})
    assert r.status == 400 and r.body is not None and r.body["error"]["code"] == "invalid_path"


def test_repeated_identity_header_is_refused(envoy: Check) -> None:
    r = envoy("GET", "/todos", {**PEP, "x-user-pid": [RICK, BETH]})
    assert r.status == 400 and r.body is not None and r.body["error"]["code"] == "duplicate_header"


def test_client_address_reaches_the_decision(gateway: ServerProcess, envoy: Check) -> None:
    """The address Envoy appended to x-forwarded-for becomes context.ip: seen in the audit event."""
    r = envoy("GET", "/todos", {**PEP, "x-user-pid": RICK, "x-forwarded-for": "203.0.113.7"})
    assert r.status == 200
    audit = gateway.workspace / ".vigil" / "audit.jsonl"
    wanted = r.headers["x-vigil-decision-id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in audit.read_text().splitlines() if wanted in x]
        if lines:
            assert lines[0]["context"]["ip"] == "203.0.113.7"
            return
        time.sleep(0.1)
    raise AssertionError("decision not audited")


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_jwt_subject(tmp_path: Path, signing_key: ECKey, transport: str) -> None:
    ws = copy_workspace("authzen-api-gateway", tmp_path)
    (ws / "jwks.json").write_text(json.dumps(KeySet([signing_key]).as_dict(private=False)))
    toml = (ws / "vigil.toml").read_text()
    toml = toml.replace(
        'subject = "header"',
        'subject = "jwt"\njwks_file = "jwks.json"\n'
        'jwt_issuer = "https://idp.example"\njwt_audience = "todo-api"',
    )
    (ws / "vigil.toml").write_text(toml)
    proc = ServerProcess(ws, args=("--grpc-port", "0")).wait_ready()
    try:

        def check(method: str, path: str, bearer: str | None) -> Answer:
            headers = dict(PEP)
            if bearer is not None:
                headers["authorization"] = f"Bearer {bearer}"
            if transport == "http":
                return http_check(proc.url, method, path, headers)
            return grpc_check(proc.grpc_port, method, path, headers)

        assert check("POST", "/todos", token(signing_key)).status == 200
        assert check("POST", "/todos", token(signing_key, sub=BETH)).status == 403
        for bad in (
            None,
            "garbage",
            token(signing_key, exp=int(time.time()) - 3600),
            token(ECKey.generate_key("P-256", parameters={"kid": "k1"})),
        ):
            r = check("GET", "/todos", bad)
            assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert "garbage" not in proc.log()
    finally:
        assert proc.stop()


def test_bad_route_table_refuses_to_start(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-api-gateway", tmp_path)
    (ws / "vigil.toml").write_text('[ext_authz]\nroutes = ["GET /x read"]\n')
    proc = ServerProcess(ws)
    assert proc.proc.wait(timeout=60) == 3
    proc._reader.join(timeout=5)
    assert "expected 'METHOD /path" in proc.log()
