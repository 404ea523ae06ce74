"""Input hygiene of the transports (duplicate JSON keys and headers, ext_authz paths, request ids),
the change log's paging, reload's restart list, and the client's address behind Envoy."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tests.behaviour_support import engine, habit, request, write_workspace
from tests.test_ops_store import InProcessServer
from tests.test_server_support import ADMIN_KEY, API_KEY, ServerProcess, copy_workspace
from vigil.audit.sink import MemorySink
from vigil.cli.main import app as cli_app
from vigil.errors import RequestError
from vigil.model.jsonkeys import check_unique_keys
from vigil.operations.service import StateDesk
from vigil.protocol.ext_authz import ClientSource, match_route, parse_routes
from vigil.server.app import ServerConfig, VigilApp
from vigil.workspace.settings import ExtAuthzSettings

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
PEP = {"x-vigil-api-key": API_KEY}
EVAL = {
    "subject": {"type": "identity", "id": RICK},
    "action": {"name": "GET"},
    "resource": {"type": "route", "id": "/todos"},
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ws = copy_workspace("authzen-api-gateway", tmp_path_factory.mktemp("ops-gw"))
    proc = ServerProcess(ws).wait_ready()
    yield proc
    assert proc.stop()


def _post(server: ServerProcess, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        server.url + "/access/v1/evaluation",
        content=body,
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json", **headers},
    )


# -- duplicate JSON keys ---------------------------------------------------------------------------
def test_duplicate_keys_are_invalid_json(gateway: ServerProcess) -> None:
    ok = json.dumps(EVAL).encode()
    assert _post(gateway, ok).status_code == 200
    dup_top = ok[:-1] + b', "subject": {"type": "identity", "id": "someone-else"}}'
    dup_inner = (
        b'{"subject": {"type": "identity", "id": "x", "id": "'
        + RICK.encode()
        + b'"}'
        + ok[ok.index(b', "action"') :]
    )
    dup_escaped = ok[:-1] + b', "\\u0073ubject": {"type": "identity", "id": "y"}}'
    for body in (dup_top, dup_inner, dup_escaped):
        r = _post(gateway, body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["code"] == "invalid_json"
    batch = {"evaluations": [EVAL], **EVAL}
    text = json.dumps(batch).encode()
    r = httpx.post(
        gateway.url + "/access/v1/evaluations",
        content=text[:-1] + b', "evaluations": []}',
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


def test_duplicate_key_check_has_no_false_positives() -> None:
    cases = [
        b'{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}',
        b'{"a":"x\\":y","b":"\\":"}',  # '":' inside strings
        b'{\n  "a" : 1,\n  "b" :\t{"c" : "d"}\n}',  # pretty, whitespace before the colon
        b"{}",
        b'{"k": []}',
    ]
    for raw in cases:
        check_unique_keys(raw, json.loads(raw))
    for raw in (b'{"a":1,"a":1}', b'{"a" :1, "b": {"x": 1, "x" : 2}}', b'{"a":"\\":","a":2}'):
        with pytest.raises(RequestError) as e:
            check_unique_keys(raw, json.loads(raw))
        assert e.value.code == "invalid_json"


def test_the_cli_refuses_duplicate_keys(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-api-gateway", tmp_path)
    body = json.dumps(EVAL)[:-1] + ', "action": {"name": "DELETE"}}'
    r = CliRunner().invoke(cli_app, ["decide", body, "-w", str(ws), "--json"])
    assert r.exit_code == 2 and json.loads(r.output)["error"]["code"] == "invalid_json"


# -- duplicate identity headers ----------------------------------------------------------------------
def test_a_repeated_authorization_header_is_400(gateway: ServerProcess) -> None:
    headers = [
        ("Authorization", f"Bearer {API_KEY}"),
        ("Authorization", "Bearer someone-elses-key-0123456789"),
        ("Content-Type", "application/json"),
    ]
    r = httpx.post(gateway.url + "/access/v1/evaluation", content=json.dumps(EVAL), headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "duplicate_header"


def _envoy(server: ServerProcess, method: str, path: str, headers: list[tuple[str, str]]) -> httpx.Response:
    return httpx.request(
        method,
        server.url + "/ext_authz" + path,
        headers=[("content-length", "0"), *PEP.items(), *headers],
        content=b"",
    )


def test_ext_authz_refuses_repeated_subject_headers(gateway: ServerProcess) -> None:
    assert _envoy(gateway, "GET", "/todos", [("x-user-pid", RICK)]).status_code == 200
    r = _envoy(gateway, "GET", "/todos", [("x-user-pid", "nobody"), ("x-user-pid", RICK)])
    assert r.status_code == 400 and r.json()["error"]["code"] == "duplicate_header"
    r = _envoy(
        gateway,
        "GET",
        "/todos",
        [("x-user-pid", RICK), ("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8")],
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/users/a%2Fb",
        "/users/a%2fb",
        "/users/a%5Cb",
        "/users/..",
        "/users/.",
        "/users/%2e%2e",
        "/users/%2E",
        "/todos/../users/x",
        "/users/a\\b",
    ],
)
def test_ext_authz_refuses_encoded_slashes_and_dot_segments(gateway: ServerProcess, path: str) -> None:
    # http.client sends the path as written (httpx would remove dot segments itself)
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        conn.request("GET", "/ext_authz" + path, headers={"x-user-pid": RICK, **PEP, "content-length": "0"})
        r = conn.getresponse()
        body = json.loads(r.read())
    finally:
        conn.close()
    assert r.status == 400, body
    assert body["error"]["code"] == "invalid_path"


@pytest.mark.parametrize(
    "path",
    [
        "/users/..;/admin",  # a segment parameter: '..' to servers that strip ';...'
        "/users/a;jsessionid=1",
        "/users/%252e%252e",  # double encoding: '%2e%2e' once decoded, '..' twice
        "/users/a%252Fb",
        "/users/%FF",  # not UTF-8: would read as U+FFFD, like %FE
        "/users/%c0%ae%c0%ae",  # overlong '.'
        "/users/a%00b",  # control characters
        "/users/a%7Fb",
    ],
)
def test_paths_an_upstream_could_read_otherwise_are_refused(path: str) -> None:
    routes = parse_routes(["GET /users/{id} => read user::{id}", "GET /{rest...} => read doc::{rest}"])
    with pytest.raises(RequestError) as info:
        match_route(routes, "GET", path)
    assert info.value.code == "invalid_path"


def test_route_matching_still_decodes_plain_escapes() -> None:
    routes = parse_routes(["GET /users/{id} => read user::{id}"])
    m = match_route(routes, "GET", "/users/rick%40the-citadel.com")
    assert m is not None and m.resource == ("user", "rick@the-citadel.com")
    m = match_route(routes, "GET", "/users/a..b")
    assert m is not None and m.resource == ("user", "a..b")


# -- X-Request-ID ------------------------------------------------------------------------------------
def test_request_ids_are_capped(gateway: ServerProcess) -> None:
    body = json.dumps(EVAL).encode()
    assert _post(gateway, body, **{"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    for bad in ("x" * 129, "a b", "<script>", "a;b"):
        echoed = _post(gateway, body, **{"X-Request-ID": bad}).headers["x-request-id"]
        assert echoed != bad and len(echoed) == 32 and all(c in "0123456789abcdef" for c in echoed)


# -- the change log: newest first, with a cursor ------------------------------------------------------
def test_changes_page_newest_first(gateway: ServerProcess) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    for i in range(5):
        subject = {"type": "identity", "id": f"page-{i}"}
        r = httpx.post(
            gateway.url + "/admin/v1/quarantine/add", json={"subject": subject, "by": "ops"}, headers=admin
        )
        assert r.status_code == 200
    page = httpx.get(gateway.url + "/admin/v1/changes?limit=2", headers=admin).json()
    ids = [c["subject"]["id"] for c in page["changes"]]
    assert ids == ["page-4", "page-3"] and page["next"]
    page2 = httpx.get(gateway.url + f"/admin/v1/changes?limit=2&before={page['next']}", headers=admin).json()
    assert [c["subject"]["id"] for c in page2["changes"]] == ["page-2", "page-1"]
    seqs = [c["seq"] for c in page["changes"] + page2["changes"]]
    assert seqs == sorted(seqs, reverse=True)
    for bad in ("limit=0", "limit=x", "before=-1", "limit=1&limit=2", "what=1", "limit=1001"):
        r = httpx.get(gateway.url + "/admin/v1/changes?" + bad, headers=admin)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument", bad


def test_cli_history_pages_newest_first(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-api-gateway", tmp_path)
    with StateDesk(ws) as desk:
        for i in range(3):
            desk.add(("identity", f"h-{i}"), by="ops")
    runner = CliRunner()
    r = runner.invoke(cli_app, ["quarantine", "list", "-w", str(ws), "--history", "--limit", "2", "--json"])
    data = json.loads(r.output)
    assert [c["subject"]["id"] for c in data["changes"]] == ["h-2", "h-1"]
    r = runner.invoke(
        cli_app,
        [
            "quarantine",
            "list",
            "-w",
            str(ws),
            "--history",
            "--limit",
            "2",
            "--before",
            str(data["next"]),
            "--json",
        ],
    )
    assert [c["subject"]["id"] for c in json.loads(r.output)["changes"]] == ["h-0"]


# -- reload says what needs a restart ----------------------------------------------------------------
def test_reload_lists_settings_that_need_a_restart(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-api-gateway", tmp_path)
    server = ServerProcess(ws).wait_ready()
    try:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        r = httpx.post(server.url + "/admin/v1/reload", headers=admin)
        assert r.status_code == 200 and r.json()["restart_needed"] == []
        toml = (ws / "vigil.toml").read_text().replace("port = 8181", "port = 9999\nmax_body_bytes = 2048")
        (ws / "vigil.toml").write_text(toml + "\n[store]\nbusy_timeout_ms = 500\n")
        r = httpx.post(server.url + "/admin/v1/reload", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["restart_needed"] == ["server.max_body_bytes", "server.port", "store.busy_timeout_ms"]
    finally:
        assert server.stop()


# -- the client behind Envoy ---------------------------------------------------------------------------
def _source(**kw: object) -> ClientSource:
    return ClientSource(ExtAuthzSettings(**kw))  # type: ignore[arg-type]


def test_client_address_is_taken_from_the_right() -> None:
    xff = {b"x-forwarded-for": b"6.6.6.6, 10.0.0.1, 192.0.2.7"}
    assert _source().address(xff, "127.0.0.1") == "192.0.2.7"  # what Envoy appended
    assert _source(trusted_hops=1).address(xff, "127.0.0.1") == "10.0.0.1"
    assert _source(trusted_hops=2).address(xff, None) == "6.6.6.6"
    assert _source(trusted_hops=3).address(xff, None) is None  # fewer entries than trusted hops
    assert _source().address({}, "127.0.0.1") == "127.0.0.1"  # no proxy: the peer
    assert _source().address({b"x-forwarded-for": b"not-an-ip"}, "127.0.0.1") is None
    src = _source(client_address_header="x-envoy-external-address")
    assert src.address({b"x-envoy-external-address": b"198.51.100.4", **xff}, None) == "198.51.100.4"
    assert src.address(xff, "127.0.0.1") is None


def test_behaviour_signals_work_through_ext_authz(tmp_path: Path) -> None:
    who = "payments-agent-0"
    routes = 'routes = ["GET /tables/{t} => read Database::{t}"]'
    extra = f'[ext_authz]\n{routes}\nsubject_header = "x-agent"\nsubject_type = "Agent"\nregion_header = "x-region"\n'
    ws = write_workspace(tmp_path / "ws", extra=extra)
    clock = [0.0]
    audit = MemorySink()
    e = engine(ws, clock=lambda: clock[0], audit=audit)
    last = habit(e, who)
    usual = request(who, "read", "payments-table-0", last)["context"]
    clock[0] = (last + timedelta(minutes=5)).timestamp()
    server = InProcessServer(VigilApp(e, ServerConfig(api_keys=None, admin_keys=None)))
    try:

        def check(ip_chain: str, ua: str, region: str) -> list[str]:
            r = httpx.get(
                server.url + "/ext_authz/tables/payments-table-0",
                headers={"x-agent": who, "x-forwarded-for": ip_chain, "user-agent": ua, "x-region": region},
            )
            assert r.status_code in (200, 403), r.text
            assert "signals" not in r.json()["context"]  # a PEP sees codes, never the baseline
            record = audit.records[-1]  # the operator's view: the audit event of that decision
            assert record.id == r.json()["context"]["id"]
            return list(record.signals)

        quiet = check(usual["ip"], usual["user_agent"], usual["region"])
        assert not {"new_network", "new_user_agent", "new_region"} & set(quiet), quiet
        loud = check("203.0.113.9", "curl/8.4", "ap-southeast-2")
        assert {"new_network", "new_user_agent", "new_region"} <= set(loud), loud
        # a client cannot claim its usual address: Envoy appends the real one, which is what counts
        spoofed = check(f"{usual['ip']}, 203.0.113.10", usual["user_agent"], usual["region"])
        assert "new_network" in spoofed, spoofed
    finally:
        server.stop()


def test_a_body_too_deep_to_check_for_repeated_keys_is_refused() -> None:
    """orjson reads deeper than the standard library: a duplicate beside a deep part must not pass."""
    deep = "[" * 1_000 + "]" * 1_000
    text = (
        f'{{"subject": {{"type": "user", "id": "a"}}, "subject": {{"type": "user", "id": "b"}}, "x": {deep}}}'
    )
    parsed = orjson.loads(text)
    with pytest.raises(RequestError) as info:
        check_unique_keys(text, parsed)
    assert info.value.code == "invalid_json"
