"""Hypothesis-generated bodies against the running server: random JSON, wrong types, huge and
deeply nested values, invalid UTF-8. Never a 500, never a crash, never ``decision: true`` for a
malformed request. Bounded: a fixed number of examples per property, no deadline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.profiles import examples
from tests.test_server_support import ServerProcess, copy_workspace

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
GOOD = {
    "subject": {"type": "user", "id": RICK},
    "action": {"name": "can_create_todo"},
    "resource": {"type": "todo", "id": "t"},
}
ENDPOINTS = [
    "/access/v1/evaluation",
    "/access/v1/evaluations",
    "/access/v1/search/subject",
    "/access/v1/search/resource",
    "/access/v1/search/action",
]
FUZZ = settings(max_examples=examples(120), suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ws = copy_workspace("authzen-todo", tmp_path_factory.mktemp("fuzz"))
    (ws / "vigil.toml").write_text('[server]\nmax_body_bytes = 262144\n[audit]\nsink = "none"\n')
    proc = ServerProcess(ws).wait_ready()
    yield proc
    assert proc.proc.poll() is None, "the server crashed:\n" + proc.log()
    assert proc.stop()
    assert '"unhandled exception"' not in proc.log()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
entity_like = st.fixed_dictionaries(
    {},
    optional={
        "type": json_values | st.sampled_from(["user", "todo", ""]),
        "id": json_values | st.just(RICK),
        "name": json_values | st.sampled_from(["can_create_todo", ""]),
        "properties": json_values,
    },
)
request_like = st.fixed_dictionaries(
    {},
    optional={
        "subject": entity_like | json_values,
        "action": entity_like | json_values,
        "resource": entity_like | json_values,
        "context": json_values,
        "evaluations": st.lists(
            st.dictionaries(
                st.sampled_from(["subject", "action", "resource", "context"]),
                entity_like | json_values,
                max_size=3,
            ),
            max_size=4,
        )
        | json_values,
        "options": json_values | st.fixed_dictionaries({"evaluations_semantic": json_values}),
        "page": json_values
        | st.fixed_dictionaries({}, optional={"limit": json_values, "token": json_values}),
    },
)


def _check(response: httpx.Response) -> Any:
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 400, 413), response.text
    body = response.json()
    if response.status_code != 200:
        assert set(body["error"]) >= {"code", "message"}
    return body


def _malformed(request: Any) -> bool:
    """True when an evaluation request is missing or mistypes a required part."""
    if not isinstance(request, dict):
        return True
    for field, keys in (("subject", ("type", "id")), ("resource", ("type", "id")), ("action", ("name",))):
        part = request.get(field)
        if not isinstance(part, dict) or not all(isinstance(part.get(k), str) for k in keys):
            return True
        if not all(part.get(k) for k in keys if k != "id"):
            return True
    return False


@FUZZ
@given(body=request_like, endpoint=st.sampled_from(ENDPOINTS))
def test_random_requests(client: httpx.Client, body: dict[str, Any], endpoint: str) -> None:
    response = client.post(
        endpoint, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    got = _check(response)
    if endpoint.endswith("/evaluation") and _malformed(body):
        assert response.status_code == 400 or got.get("decision") is not True
    if endpoint.endswith("/evaluations") and response.status_code == 200 and "evaluations" in got:
        items = body.get("evaluations")
        defaults = {k: body[k] for k in ("subject", "action", "resource", "context") if k in body}
        for item, result in zip(items, got["evaluations"], strict=False):
            effective = {**defaults, **item} if isinstance(item, dict) else item
            if _malformed(effective):
                assert result["decision"] is False


@FUZZ
@given(body=json_values, endpoint=st.sampled_from(ENDPOINTS))
def test_any_json(client: httpx.Client, body: Any, endpoint: str) -> None:
    _check(
        client.post(endpoint, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    )


@FUZZ
@given(raw=st.binary(max_size=200), endpoint=st.sampled_from(ENDPOINTS))
def test_raw_bytes(client: httpx.Client, raw: bytes, endpoint: str) -> None:
    response = client.post(endpoint, content=raw, headers={"Content-Type": "application/json"})
    _check(response)


@FUZZ
@given(
    field=st.sampled_from(["subject", "action", "resource", "context"]),
    junk=st.sampled_from(
        [
            b'"\xff\xfe"',
            b'"\\ud800"',
            b'"\xed\xa0\x80"',
            b"1e999",
            b"-1e400",
            b"123456789012345678901234567890",
            b"NaN",
            b"Infinity",
            b'{"a":1,"a":2}',
            b"[" * 300 + b"]" * 300,
            b'"' + b"x" * 70000 + b'"',
        ]
    ),
)
def test_hostile_values(client: httpx.Client, field: str, junk: bytes) -> None:
    body = json.dumps({**GOOD, field: "__X__"}).encode().replace(b'"__X__"', junk)
    response = client.post(
        "/access/v1/evaluation", content=body, headers={"Content-Type": "application/json"}
    )
    got = _check(response)
    if field != "context":  # a hostile value where an entity or the action belongs: never a permit
        assert response.status_code == 400 or got["decision"] is not True


@pytest.mark.parametrize("depth", [31, 33, 200, 5000])
def test_deep_nesting(client: httpx.Client, depth: int) -> None:
    nested: Any = 1
    for _ in range(min(depth, 900)):
        nested = {"a": nested}
    content = (
        json.dumps({**GOOD, "context": {"n": nested}}).encode()
        if depth <= 900
        else (b'{"context":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}")
    )
    response = client.post(
        "/access/v1/evaluation", content=content, headers={"Content-Type": "application/json"}
    )
    _check(response)


def test_huge_batch_of_malformed_items(client: httpx.Client) -> None:
    body = {"evaluations": [{"subject": i} for i in range(1000)]}
    response = client.post("/access/v1/evaluations", json=body)
    got = _check(response)
    assert all(item["decision"] is False for item in got["evaluations"])
