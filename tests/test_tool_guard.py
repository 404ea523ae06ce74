"""vigil.guard / vigil.Guard on plain and async functions, in process and against a real vigil
over HTTP through vigil.client.PDPClient; the client's fail-closed answers against real sockets
(a refused port, a server that never answers, a 500, garbage) and its response reading fuzzed."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vigil
from tests.test_server_support import API_KEY, ServerProcess
from vigil.client import PDPClient, read_answer

POLICIES = """
@id("read-reports")
permit (principal is Agent, action == Action::"call_tool", resource == Tool::"files.read")
when { context.arguments.path like "/srv/reports/*" };

@id("query-small")
permit (principal in Team::"analytics", action == Action::"call_tool", resource == Tool::"db.query")
when { context.arguments.limit <= 1000 };

@id("no-drop")
forbid (principal, action, resource == Tool::"db.query")
when { context.arguments.sql like "*DROP*" };
"""

ENTITIES = [
    {"uid": {"type": "Team", "id": "analytics"}, "attrs": {}, "parents": []},
    {
        "uid": {"type": "Agent", "id": "analyst"},
        "attrs": {},
        "parents": [{"type": "Team", "id": "analytics"}],
    },
    {"uid": {"type": "Agent", "id": "intruder"}, "attrs": {}, "parents": []},
    {"uid": {"type": "Tool", "id": "files.read"}, "attrs": {}, "parents": []},
    {"uid": {"type": "Tool", "id": "db.query"}, "attrs": {}, "parents": []},
]


def workspace(root: Path) -> Path:
    ws = root / "tools-ws"
    (ws / "policies").mkdir(parents=True)
    (ws / "entities").mkdir()
    (ws / "policies" / "tools.cedar").write_text(POLICIES)
    (ws / "entities" / "fleet.json").write_text(json.dumps(ENTITIES))
    (ws / "vigil.toml").write_text('[behaviour]\nmode = "off"\n[store]\nbackend = "memory"\n')
    return ws


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[vigil.Engine]:
    with vigil.Engine.from_workspace(workspace(tmp_path_factory.mktemp("guard"))) as e:
        yield e


def tools(decider: Any, agent: str) -> tuple[Any, Any, list[str]]:
    calls: list[str] = []
    guard = vigil.Guard(decider, subject={"type": "Agent", "id": agent})

    @guard.tool("files.read")
    def read(path: str, encoding: str = "utf-8") -> str:
        calls.append(path)
        return f"contents of {path}"

    @guard.tool("db.query")
    async def query(sql: str, limit: int = 100) -> list[str]:
        calls.append(sql)
        return [sql]

    return read, query, calls


def test_an_allowed_call_runs_and_a_denied_one_does_not(engine: vigil.Engine) -> None:
    read, _, calls = tools(engine, "analyst")
    assert read("/srv/reports/q3.csv") == "contents of /srv/reports/q3.csv"
    with pytest.raises(vigil.Denied) as e:
        read("/etc/shadow")
    assert e.value.reason_codes == ("no_matching_permit",) and e.value.decision_id
    assert e.value.tool == "files.read" and e.value.action == "call_tool"
    assert calls == ["/srv/reports/q3.csv"]
    assert read.__name__ == "read"  # functools.wraps: frameworks read the name and signature


def test_async_tools_and_defaults_reach_the_policy(engine: vigil.Engine) -> None:
    _, query, calls = tools(engine, "analyst")
    assert asyncio.run(query("SELECT 1")) == ["SELECT 1"]  # limit 100 by default
    with pytest.raises(vigil.Denied):
        asyncio.run(query("SELECT 1", limit=5000))
    with pytest.raises(vigil.Denied) as e:
        asyncio.run(query("DROP TABLE users", 10))
    assert e.value.reason_codes == ("policy_forbid",)
    _, intruder_query, _ = tools(engine, "intruder")
    with pytest.raises(vigil.Denied):
        asyncio.run(intruder_query("SELECT 1"))
    assert calls == ["SELECT 1"]


def test_every_failure_to_decide_is_a_denial(engine: vigil.Engine) -> None:
    read, _, calls = tools(engine, "analyst")
    with pytest.raises(vigil.Denied) as e:
        read(object())  # type: ignore[arg-type]  # not a Cedar value
    assert e.value.reason_codes and e.value.reason_codes[0] in ("invalid_request", "invalid_value")

    def who() -> dict[str, str]:
        raise RuntimeError("identity provider down")

    broken = vigil.Guard(engine, subject=who).tool("files.read")(lambda path: calls.append(path))
    with pytest.raises(vigil.Denied) as e:
        broken("/srv/reports/q3.csv")
    assert e.value.reason_codes == ("internal_error",)
    assert calls == []
    with pytest.raises(TypeError):  # a wrong call is the caller's error, as without the guard
        read()  # type: ignore[call-arg]


def test_the_functions_own_exceptions_pass_through(engine: vigil.Engine) -> None:
    @vigil.guard(engine, subject={"type": "Agent", "id": "analyst"}, tool="files.read")
    def read(path: str) -> str:
        raise FileNotFoundError(path)

    with pytest.raises(FileNotFoundError):
        read("/srv/reports/missing.csv")


# -- remote: a real vigil over HTTP ---------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(workspace(tmp_path_factory.mktemp("guard-remote"))).wait_ready()
    yield proc
    assert proc.stop()


def test_the_same_guard_against_a_remote_vigil(server: ServerProcess) -> None:
    with PDPClient(server.url, api_key=API_KEY, timeout_s=5) as client:
        read, query, calls = tools(client, "analyst")
        assert read("/srv/reports/q3.csv")
        with pytest.raises(vigil.Denied) as e:
            read("/etc/shadow")
        assert e.value.reason_codes == ("no_matching_permit",) and e.value.decision_id
        assert asyncio.run(query("SELECT 1")) == ["SELECT 1"]
        with pytest.raises(vigil.Denied):
            asyncio.run(query("DROP TABLE t"))
        assert calls == ["/srv/reports/q3.csv", "SELECT 1"]
        answers = client.evaluate_many(
            [
                vigil.Guard(client, subject={"type": "Agent", "id": a}).request(
                    "files.read", "call_tool", {"path": p}
                )
                for a, p in [
                    ("analyst", "/srv/reports/a"),
                    ("analyst", "/etc/x"),
                    ("intruder", "/srv/reports/a"),
                ]
            ]
        )
        assert [a.allowed for a in answers] == [True, False, True]
    with PDPClient(server.url, api_key="wrong-key-0123456789", timeout_s=5) as client:
        read, _, _ = tools(client, "analyst")
        with pytest.raises(vigil.Denied) as e:
            read("/srv/reports/q3.csv")
        assert e.value.reason_codes == ("unauthenticated",)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_pdp_denies() -> None:
    with PDPClient(f"http://127.0.0.1:{_free_port()}", timeout_s=1) as client:
        assert client.evaluate({"subject": {}}).reason_codes == ("pdp_unavailable",)
        assert [a.reason_codes for a in client.evaluate_many([{}, {}])] == [("pdp_unavailable",)] * 2
        read, _, calls = tools(client, "analyst")
        with pytest.raises(vigil.Denied) as e:
            read("/srv/reports/q3.csv")
        assert e.value.reason_codes == ("pdp_unavailable",) and calls == []


def test_a_pdp_that_never_answers_denies_within_the_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        port = listener.getsockname()[1]
        with PDPClient(f"http://127.0.0.1:{port}", timeout_s=0.3) as client:
            t0 = time.monotonic()
            assert client.evaluate({}).reason_codes == ("pdp_unavailable",)
            assert time.monotonic() - t0 < 3
            answer = asyncio.run(_aevaluate(client))
            assert answer.reason_codes == ("pdp_unavailable",)
    finally:
        listener.close()


async def _aevaluate(client: PDPClient) -> Any:
    try:
        return await client.aevaluate({})
    finally:
        await client.aclose()


class _Canned(BaseHTTPRequestHandler):
    status = 200
    body = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(self.status)
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (500, b'{"decision": true}', "pdp_error"),
        (200, b"not json", "pdp_error"),
        (200, b'{"decision": "true"}', "pdp_error"),
        (200, b'{"decision": 1}', "pdp_error"),
        (200, b"[true]", "pdp_error"),
        (400, b'{"error": {"code": "invalid_request", "message": "x"}}', "invalid_request"),
        (403, b"{}", "pdp_error"),
    ],
)
def test_unusable_answers_deny(status: int, body: bytes, code: str) -> None:
    handler = type("H", (_Canned,), {"status": status, "body": body})
    httpd = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with PDPClient(f"http://127.0.0.1:{httpd.server_port}", timeout_s=5) as client:
            answer = client.evaluate({})
            assert not answer.allowed and answer.reason_codes == (code,)
            assert [a.allowed for a in client.evaluate_many([{}, {}])] == [False, False]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_step_up_ticket_reaches_the_caller() -> None:
    answer = read_answer(
        {
            "decision": False,
            "context": {
                "id": "d1",
                "reason_codes": ["step_up_required"],
                "ticket": {"id": "tkt_1", "expires": "2026-12-07T12:00:00Z"},
            },
        }
    )
    assert answer.ticket == {"id": "tkt_1", "expires": "2026-12-07T12:00:00Z"}
    with pytest.raises(vigil.Denied) as e:
        vigil.toolguard._raise_unless_allowed(
            "t", "call_tool", {"decision": False, "context": {"ticket": answer.ticket}}
        )
    assert e.value.ticket == answer.ticket and "tkt_1" in str(e.value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@given(body=st.one_of(_json, st.fixed_dictionaries({"decision": _json, "context": _json})))
def test_reading_any_answer_never_raises_and_allows_only_on_true(body: Any) -> None:
    answer = read_answer(body)
    assert answer.allowed == (isinstance(body, dict) and body.get("decision") is True)
    assert all(isinstance(c, str) for c in answer.reason_codes) and answer.reason_codes


def test_bad_client_settings_are_refused() -> None:
    for url, timeout in (("ftp://x", 1.0), ("http://x", 0.0), ("http://x", float("nan"))):
        with pytest.raises(ValueError):
            PDPClient(url, timeout_s=timeout)
