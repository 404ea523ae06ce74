"""The AuthZEN interop vectors (``vendor/conformance/authzen``) replayed over real HTTP.

One ``vigil serve`` process per example workspace, on loopback, with API keys; every case of every
claimed vector file is sent as the upstream runners send it (``Content-Type: application/json``,
a key in ``Authorization``) and compared as they compare (see the vectors' README): decisions by
value, batches by each item's ``decision``, searches order-insensitively. Draft 00 (the legacy
shape, attributes outside ``properties``) is not claimed; ``docs/conformance.md`` gives its count.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_server_support import ServerProcess, copy_workspace, load_vectors

# (vector file, key in the file, endpoint, workspace)
FILES = [
    ("todo/decisions-authorization-api-1_0-01.json", "evaluation", "/access/v1/evaluation", "authzen-todo"),
    ("todo/decisions-authorization-api-1_0-02.json", "evaluation", "/access/v1/evaluation", "authzen-todo"),
    ("todo/decisions-authorization-api-1_0-02.json", "evaluations", "/access/v1/evaluations", "authzen-todo"),
    ("api-gateway/decisions.json", "evaluation", "/access/v1/evaluation", "authzen-api-gateway"),
    ("search/subject/results.json", "evaluation", "/access/v1/search/subject", "authzen-search"),
    ("search/resource/results.json", "evaluation", "/access/v1/search/resource", "authzen-search"),
    ("search/action/results.json", "evaluation", "/access/v1/search/action", "authzen-search"),
    ("idp/results.json", "search", "/access/v1/search/resource", "authzen-search"),
]
EXPECTED_CASES = {
    ("todo/decisions-authorization-api-1_0-01.json", "evaluation"): 40,
    ("todo/decisions-authorization-api-1_0-02.json", "evaluation"): 40,
    ("todo/decisions-authorization-api-1_0-02.json", "evaluations"): 3,
    ("api-gateway/decisions.json", "evaluation"): 25,
    ("search/subject/results.json", "evaluation"): 60,
    ("search/resource/results.json", "evaluation"): 18,
    ("search/action/results.json", "evaluation"): 120,
    ("idp/results.json", "search"): 6,
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    tmp = tmp_path_factory.mktemp("interop")
    started = {
        name: ServerProcess(copy_workspace(name, tmp))
        for name in ("authzen-todo", "authzen-api-gateway", "authzen-search")
    }
    try:
        for server in started.values():
            server.wait_ready()
        yield started
    finally:
        for server in started.values():
            server.stop()


def _sorted_results(value: Any) -> list[Any]:
    results = value.get("results", []) if isinstance(value, dict) else []
    return sorted(results, key=lambda r: (r.get("type", ""), r.get("id", ""), r.get("name", "")))


def _agrees(key: str, endpoint: str, expected: Any, body: Any) -> bool:
    if endpoint.endswith("/evaluation"):
        return bool(body.get("decision", False)) is expected
    if key == "evaluations":
        got = [{"decision": item.get("decision")} for item in body.get("evaluations", [])]
        return got == expected
    return _sorted_results(body) == _sorted_results(expected)


@pytest.mark.parametrize(
    ("relative", "key", "endpoint", "workspace"), FILES, ids=[f"{f[0]}:{f[1]}" for f in FILES]
)
def test_vector_file_passes_over_http(
    servers: dict[str, ServerProcess], relative: str, key: str, endpoint: str, workspace: str
) -> None:
    cases = load_vectors(relative)[key]
    assert len(cases) == EXPECTED_CASES[(relative, key)]
    failures = []
    with servers[workspace].client() as client:
        for i, case in enumerate(cases):
            rid = f"interop-{i}"
            response = client.post(endpoint, json=case["request"], headers={"X-Request-ID": rid})
            assert response.status_code == 200, (i, response.text)
            assert response.headers["x-request-id"] == rid
            if not _agrees(key, endpoint, case["expected"], response.json()):
                failures.append((i, case["request"], case["expected"], response.json()))
    assert not failures, f"{len(failures)} of {len(cases)} cases disagree; first: {failures[0]}"


def test_single_decisions_carry_vigil_context(servers: dict[str, ServerProcess]) -> None:
    case = load_vectors("todo/decisions-authorization-api-1_0-01.json")["evaluation"][0]
    with servers["authzen-todo"].client() as client:
        body = client.post("/access/v1/evaluation", json=case["request"]).json()
    # what a PEP sees: the decision id and reason codes (and advice), never explanations
    assert set(body["context"]) == {"id", "reason_codes", "advice"}
    assert body["context"]["reason_codes"] == ["policy_permit"]


def test_search_vectors_are_answered_from_the_scope_index(
    servers: dict[str, ServerProcess], tmp_path: Path
) -> None:
    """IdP: alice may delete 4 records; the owner grants are scoped, so the index yields exactly the
    permitted records as candidates (no scan of all 20)."""
    import vigil
    from vigil.audit import NullSink
    from vigil.protocol.search import Searcher

    engine = vigil.Engine.from_workspace(copy_workspace("authzen-search", tmp_path), audit=NullSink())
    searcher = Searcher(engine)
    idx = searcher.index()
    authorizer = engine.workspace.policy_set.authorizer
    cands = authorizer.candidates(("user", "alice"), ("Action", "delete"))
    pids = [c[0] for c in cands[2]] + [g[0] for g in cands[3]]
    narrowed = idx.narrow([idx.policies[p].resource for p in pids], "record")
    assert [u[1] for u in narrowed] == ["101", "107", "113", "119"]
    got = searcher.resource(
        {
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "delete"},
            "resource": {"type": "record"},
        }
    )
    assert [r["id"] for r in got["results"]] == ["101", "107", "113", "119"]
