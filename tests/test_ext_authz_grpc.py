"""The gRPC ext_authz service beyond the cases it shares with HTTP (tests/test_ext_authz.py): the
``CheckRequest`` reading (raw ``header_map`` or the joined ``headers`` map, missing parts, limits),
fail-closed answers, and a fuzzed servicer that never raises and never allows without a decision."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from google.rpc import code_pb2
from hypothesis import given
from hypothesis import strategies as st

from tests.envoy_grpc import API_KEY_HEADER, answer, check_request, grpc_call, grpc_check
from tests.test_server_support import API_KEY, ServerProcess, copy_workspace
from vigil.engine import Engine
from vigil.protocol.ext_authz import ExtAuthzTable
from vigil.server.grpc_ext_authz import MAX_HEADERS, AuthorizationService, response

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"  # admin
BETH = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"  # viewer
PEP = {API_KEY_HEADER: API_KEY}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    ws = copy_workspace("authzen-api-gateway", tmp_path_factory.mktemp("grpc-unit"))
    with Engine.from_workspace(ws) as e:
        yield e


@pytest.fixture(scope="module")
def service(engine: Engine) -> AuthorizationService:
    return AuthorizationService(engine, ExtAuthzTable(engine), None)


def test_joined_headers_map_is_read_when_there_is_no_header_map(service: AuthorizationService) -> None:
    ok = service.verdict(check_request("POST", "/todos", {"x-user-pid": RICK}, raw=False))
    assert ok.status == 200 and ok.record is not None and ok.record.allowed
    no = service.verdict(check_request("POST", "/todos", {"x-user-pid": BETH}, raw=False))
    assert no.status == 403 and no.record is not None and not no.record.allowed


def test_a_check_request_without_an_http_request_is_refused(service: AuthorizationService) -> None:
    for request in (pb.CheckRequest(), check_request("", "/todos", {}), check_request("GET", "", {})):
        v = service.verdict(request)
        assert v.status == 400 and v.body["error"]["code"] == "invalid_request" and v.record is None
        r = response(v)
        assert r.status.code == code_pb2.INVALID_ARGUMENT and r.denied_response.status.code == 400


def test_too_many_headers_are_refused(service: AuthorizationService) -> None:
    headers: dict[str, Any] = {f"x-h{i}": "v" for i in range(MAX_HEADERS + 1)}
    v = service.verdict(check_request("GET", "/todos", {"x-user-pid": RICK, **headers}))
    assert v.status == 400 and v.record is None


class _Exploding:
    """An engine whose decisions fail (the compiled Engine's methods cannot be patched)."""

    def __init__(self, engine: Engine) -> None:
        self.workspace = engine.workspace

    def decide(self, request: Any, **_: Any) -> Any:
        raise MemoryError("simulated")


def test_an_unexpected_failure_is_a_deny(engine: Engine) -> None:
    """The engine raising anything (a bug, an exhausted resource) answers 403 internal_error and
    reports it: Envoy never sees a failed call it might be configured to let through."""
    reported: list[BaseException] = []
    broken: Any = _Exploding(engine)
    service = AuthorizationService(broken, ExtAuthzTable(broken), None, report=reported.append)
    v = service.verdict(check_request("GET", "/todos", {"x-user-pid": RICK}))
    assert v.status == 403 and v.body["error"]["code"] == "internal_error"
    assert [type(e) for e in reported] == [MemoryError]
    r = response(v)
    assert r.status.code == code_pb2.PERMISSION_DENIED and not r.HasField("ok_response")


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(
    method=st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "get"]), _text),
    path=st.one_of(
        st.sampled_from(["/todos", "/todos/1", "/users/x", "/todos/%2e%2e", "/", "//", "/todos?x=1"]),
        _text,
        _text.map(lambda t: "/todos/" + t),
    ),
    pid=st.one_of(st.sampled_from([RICK, BETH, ""]), _text),
    extra=st.dictionaries(
        st.sampled_from(["x-user-pid", "x-forwarded-for", "user-agent", "authorization", "host", "x-other"]),
        st.one_of(_text, st.lists(_text, min_size=2, max_size=3)),
        max_size=4,
    ),
    raw=st.booleans(),
)
def test_the_servicer_never_raises_and_never_allows_without_a_decision(
    service: AuthorizationService, method: str, path: str, pid: str, extra: dict[str, Any], raw: bool
) -> None:
    v = service.verdict(check_request(method, path, {"x-user-pid": pid, **extra}, raw=raw))
    assert v.status in (200, 400, 401, 403)
    if v.status == 200:
        assert v.record is not None and v.record.allowed
    r = response(v)
    assert (r.status.code == code_pb2.OK) == (v.status == 200) == r.HasField("ok_response")


# -- over the wire --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ws = copy_workspace("authzen-api-gateway", tmp_path_factory.mktemp("grpc-gw"))
    proc = ServerProcess(ws, args=("--grpc-port", "0")).wait_ready()
    yield proc
    assert proc.stop()


def test_a_real_client_gets_envoys_answers(gateway: ServerProcess) -> None:
    allowed = grpc_check(gateway.grpc_port, "PUT", "/todos/7240d0db", {**PEP, "x-user-pid": RICK})
    assert allowed.grpc_code == code_pb2.OK and allowed.headers["x-vigil-decision"] == "allow"
    denied = grpc_check(gateway.grpc_port, "PUT", "/todos/7240d0db", {**PEP, "x-user-pid": BETH})
    assert denied.grpc_code == code_pb2.PERMISSION_DENIED and denied.status == 403
    assert denied.headers["content-type"] == "application/json"
    assert set(denied.body or {}) == {"decision", "context"}  # what a PEP sees, no explanations
    joined = grpc_check(gateway.grpc_port, "POST", "/todos", {**PEP, "x-user-pid": RICK}, raw=False)
    assert joined.status == 200


def test_an_empty_check_request_is_answered_not_failed(gateway: ServerProcess) -> None:
    r = answer(grpc_call(gateway.grpc_port, pb.CheckRequest(), [(API_KEY_HEADER, API_KEY)]))
    assert r.status == 400 and r.grpc_code == code_pb2.INVALID_ARGUMENT


def test_a_repeated_api_key_is_refused(gateway: ServerProcess) -> None:
    request = check_request("GET", "/todos", {"x-user-pid": RICK})
    with pytest.raises(grpc.RpcError) as e:
        grpc_call(gateway.grpc_port, request, [(API_KEY_HEADER, API_KEY), (API_KEY_HEADER, API_KEY)])
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_decisions_are_counted_and_logged(gateway: ServerProcess) -> None:
    before = gateway.client().get("/metrics").text
    grpc_check(gateway.grpc_port, "GET", "/todos", {**PEP, "x-user-pid": RICK})
    after = gateway.client().get("/metrics").text
    assert _decisions(after) == _decisions(before) + 1
    deadline = time.monotonic() + 10  # access lines are flushed every 0.2 s
    while not any('"endpoint":"grpc_ext_authz"' in line for line in gateway.lines):
        assert time.monotonic() < deadline, gateway.log()
        time.sleep(0.05)


def _decisions(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("vigil_decisions_total{")
    )


def test_an_unusable_grpc_port_stops_the_server(tmp_path: Path, gateway: ServerProcess) -> None:
    ws = copy_workspace("authzen-api-gateway", tmp_path)
    proc = ServerProcess(ws, args=("--grpc-port", str(gateway.grpc_port)))
    assert proc.proc.wait(timeout=60) != 0
    proc._reader.join(timeout=5)
    assert "cannot listen for gRPC" in proc.log()
