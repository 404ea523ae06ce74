"""``vigil.protocol.authzen`` and ``vigil.protocol.search`` without a server: batch semantics, bodies, pagination."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings

import vigil
from tests.profiles import examples
from tests.strategies import ACTIONS, cases
from tests.test_differential import Reference, _engine, parses
from tests.test_server_support import copy_workspace
from vigil.audit import MemorySink
from vigil.errors import RequestError, VigilError
from vigil.protocol import authzen
from vigil.protocol.search import PageTokenError, Searcher

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
BETH = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"


@pytest.fixture(scope="module")
def todo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[vigil.Engine]:
    ws = copy_workspace("authzen-todo", tmp_path_factory.mktemp("todo"))
    with vigil.Engine.from_workspace(ws, audit=MemorySink()) as engine:
        yield engine


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searcher]:
    ws = copy_workspace("authzen-search", tmp_path_factory.mktemp("search"))
    with vigil.Engine.from_workspace(ws, audit=MemorySink()) as engine:
        yield Searcher(engine, max_results=5)


def user(pid: str) -> dict[str, Any]:
    return {"type": "user", "id": pid}


USER_A = {"type": "User", "id": "a"}
CREATE = {"name": "can_create_todo"}
TODO = {"type": "todo", "id": "t1"}


# -- bodies (§10.1) -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "ctype", "code"),
    [
        (b'{"a": 1}', None, "invalid_content_type"),
        (b'{"a": 1}', b"text/plain", "invalid_content_type"),
        (b'{"a": 1}', b"application/jsonx", "invalid_content_type"),
        (b"", b"application/json", "invalid_json"),
        (b"{", b"application/json", "invalid_json"),
        (b'{"a": "\xff"}', b"application/json", "invalid_json"),
        (b'{"a": "\\ud800"}', b"application/json", "invalid_json"),
        (b"[1, 2]", b"application/json", "invalid_request"),
        (b'"text"', b"application/json", "invalid_request"),
        (b"null", b"application/json", "invalid_request"),
    ],
)
def test_parse_body_refuses(body: bytes, ctype: bytes | None, code: str) -> None:
    with pytest.raises(RequestError) as e:
        authzen.parse_body(body, ctype)
    assert e.value.code == code


def test_parse_body_accepts_charset_and_case() -> None:
    assert authzen.parse_body(b'{"a": 1}', b"Application/JSON; charset=utf-8") == {"a": 1}


# -- single and batch (§6, §7) ------------------------------------------------------------------
def test_evaluation_missing_field_raises(todo: vigil.Engine) -> None:
    with pytest.raises(RequestError):
        authzen.evaluation(todo, {"subject": user(RICK), "action": CREATE})


def test_empty_or_absent_evaluations_is_a_single_decision(todo: vigil.Engine) -> None:
    req = {"subject": user(RICK), "action": CREATE, "resource": TODO}
    for body in (req, {**req, "evaluations": []}):
        response, records = authzen.evaluations(todo, body)
        assert response["decision"] is True and len(records) == 1


def test_defaults_are_replaced_whole_not_merged(todo: vigil.Engine) -> None:
    body = {
        "subject": {"type": "user", "id": RICK, "properties": {"x": "y"}},
        "action": CREATE,
        "resource": TODO,
        # The item's subject has no properties and another id: nothing of the default survives.
        "evaluations": [{"subject": user(BETH)}, {}],
    }
    response, records = authzen.evaluations(todo, body)
    assert [e["decision"] for e in response["evaluations"]] == [False, True]
    assert records[0].principal == ("user", BETH)


def test_item_override_of_resource_without_id_fails_that_item_only(todo: vigil.Engine) -> None:
    body = {
        "subject": user(RICK),
        "action": CREATE,
        "resource": TODO,
        "evaluations": [{"resource": {"type": "todo"}}, {}],
    }
    response, _ = authzen.evaluations(todo, body)
    first, second = response["evaluations"]
    assert first["decision"] is False and first["context"]["error"]["code"] == "invalid_request"
    assert second["decision"] is True


def test_per_item_errors_are_denies_in_place(todo: vigil.Engine) -> None:
    body = {
        "evaluations": [{"subject": user(RICK), "action": CREATE, "resource": TODO}, 42, {"subject": 1}, {}]
    }
    response, _ = authzen.evaluations(todo, body)
    decisions = [e["decision"] for e in response["evaluations"]]
    assert decisions == [True, False, False, False]
    for item in response["evaluations"][1:]:
        assert item["context"]["reason_codes"] == ["invalid_request"]
        assert set(item["context"]["error"]) >= {"code", "message"}


@pytest.mark.parametrize(
    ("semantic", "expected"),
    [
        ("execute_all", [True, False, True, False]),
        ("deny_on_first_deny", [True, False]),
        ("permit_on_first_permit", [True]),
    ],
)
def test_evaluations_semantic(todo: vigil.Engine, semantic: str, expected: list[bool]) -> None:
    items = [{"subject": user(p)} for p in (RICK, BETH, RICK, BETH)]
    body = {
        "action": CREATE,
        "resource": TODO,
        "evaluations": items,
        "options": {"evaluations_semantic": semantic},
    }
    response, _ = authzen.evaluations(todo, body)
    assert [e["decision"] for e in response["evaluations"]] == expected


def test_deny_on_first_deny_stops_at_an_error(todo: vigil.Engine) -> None:
    items = [{"subject": user(RICK)}, {"subject": "bad"}, {"subject": user(RICK)}]
    body = {
        "action": CREATE,
        "resource": TODO,
        "evaluations": items,
        "options": {"evaluations_semantic": "deny_on_first_deny"},
    }
    response, _ = authzen.evaluations(todo, body)
    assert [e["decision"] for e in response["evaluations"]] == [True, False]


def test_permit_on_first_permit_all_denied_returns_all(todo: vigil.Engine) -> None:
    items = [{"subject": user(BETH)}, {"subject": user(BETH)}]
    body = {
        "action": CREATE,
        "resource": TODO,
        "evaluations": items,
        "options": {"evaluations_semantic": "permit_on_first_permit"},
    }
    response, _ = authzen.evaluations(todo, body)
    assert [e["decision"] for e in response["evaluations"]] == [False, False]


@pytest.mark.parametrize(
    "body",
    [
        {"evaluations": {}},
        {"evaluations": "x"},
        {"evaluations": [{}], "options": []},
        {"evaluations": [{}], "options": {"evaluations_semantic": "first"}},
        {"evaluations": [{}], "options": {"evaluations_semantic": 1}},
    ],
)
def test_malformed_batches_are_400(todo: vigil.Engine, body: dict[str, Any]) -> None:
    with pytest.raises(RequestError):
        authzen.evaluations(todo, body)


def test_batch_limit(todo: vigil.Engine) -> None:
    with pytest.raises(VigilError) as e:
        authzen.evaluations(todo, {"evaluations": [{}] * 3}, max_items=2)
    assert e.value.code == "request_too_large"


def test_metadata_lists_every_endpoint() -> None:
    meta = authzen.metadata("https://pdp.example.com/")
    assert meta["policy_decision_point"] == "https://pdp.example.com"
    assert meta["access_evaluation_endpoint"] == "https://pdp.example.com/access/v1/evaluation"
    for key in ("access_evaluations", "search_subject", "search_resource", "search_action"):
        assert meta[f"{key}_endpoint"].startswith("https://pdp.example.com/access/v1/")


# -- search (§8) -------------------------------------------------------------------------------
VIEW_101 = {
    "subject": {"type": "user"},
    "action": {"name": "view"},
    "resource": {"type": "record", "id": "101"},
}


def test_subject_search_ignores_a_subject_id(search: Searcher) -> None:
    a = search.subject(VIEW_101)
    b = search.subject({**VIEW_101, "subject": {"type": "user", "id": "nobody"}})
    assert a == b
    assert [r["id"] for r in a["results"]] == ["alice", "bob", "carol", "dan"]


def test_unknown_ids_and_types_give_empty_results(search: Searcher) -> None:
    assert search.subject({**VIEW_101, "resource": {"type": "record", "id": "999"}})["results"] == [
        {"type": "user", "id": "alice"},
        {"type": "user", "id": "dan"},
    ]  # managers view any record, known or not
    assert search.subject({**VIEW_101, "subject": {"type": "robot"}}) == {"results": []}
    unknown = {
        "subject": {"type": "user", "id": "zed"},
        "action": {"name": "view"},
        "resource": {"type": "record"},
    }
    assert search.resource(unknown) == {"results": []}
    assert search.action(
        {"subject": {"type": "user", "id": "zed"}, "resource": {"type": "record", "id": "101"}}
    ) == {"results": []}


def test_resource_search_is_transitive_through_parents(search: Searcher) -> None:
    # bob (employee, Legal) views his own records and every Legal record (children of department::Legal).
    body: dict[str, Any] = {
        "subject": {"type": "user", "id": "bob"},
        "action": {"name": "view"},
        "resource": {"type": "record"},
    }
    ids: list[str] = []
    while True:
        got = search.resource(body)
        ids += [r["id"] for r in got["results"]]
        if not got.get("page", {}).get("next_token"):
            break
        body = {**body, "page": {"token": got["page"]["next_token"]}}
    assert ids == ["101", "102", "103", "105", "108", "112", "114", "116", "117", "119", "120"]


def test_pagination_walks_every_result_once(search: Searcher) -> None:
    body: dict[str, Any] = {
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "view"},
        "resource": {"type": "record"},
        "page": {"limit": 4},
    }
    seen: list[str] = []
    pages = 0
    while True:
        got = search.resource(body)
        assert next(iter(got)) == "page"  # page first (§8.3)
        seen += [r["id"] for r in got["results"]]
        pages += 1
        token = got["page"]["next_token"]
        if not token:
            break
        body = {**body, "page": {"limit": 4, "token": token}}
    assert pages == 5 and len(seen) == 20 == len(set(seen))


def test_default_page_size_forces_a_page(search: Searcher) -> None:
    got = search.resource(
        {
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "view"},
            "resource": {"type": "record"},
        }
    )
    assert got["page"]["count"] == 5 and got["page"]["total"] == 20 and got["page"]["next_token"]


def test_page_token_is_bound_to_its_request(search: Searcher) -> None:
    body = {
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "view"},
        "resource": {"type": "record"},
        "page": {"limit": 2},
    }
    token = search.resource(body)["page"]["next_token"]
    with pytest.raises(PageTokenError):
        search.resource(
            {**body, "subject": {"type": "user", "id": "bob"}, "page": {"limit": 2, "token": token}}
        )
    with pytest.raises(PageTokenError):
        search.resource({**body, "page": {"limit": 3, "token": token}})
    for bad in ("!!", "e30", "x" * 600, 5):
        with pytest.raises(RequestError):
            search.resource({**body, "page": {"limit": 2, "token": bad}})


@pytest.mark.parametrize(
    "body",
    [
        {"action": {"name": "view"}, "resource": {"type": "record", "id": "1"}},
        {"subject": {"id": "x"}, "action": {"name": "view"}, "resource": {"type": "record", "id": "1"}},
        {"subject": {"type": "user"}, "resource": {"type": "record", "id": "1"}},
        {"subject": {"type": "user"}, "action": {"name": "view"}, "resource": {"type": "record"}},
        {
            "subject": {"type": "user"},
            "action": {"name": "view"},
            "resource": {"type": "record", "id": "1"},
            "page": {"limit": -1},
        },
        {
            "subject": {"type": "user"},
            "action": {"name": "view"},
            "resource": {"type": "record", "id": "1"},
            "context": [],
        },
    ],
)
def test_malformed_subject_searches_are_400(search: Searcher, body: dict[str, Any]) -> None:
    with pytest.raises(RequestError):
        search.subject(body)


def test_search_checks_are_not_audited(tmp_path: Path) -> None:
    sink = MemorySink()
    with vigil.Engine.from_workspace(copy_workspace("authzen-search", tmp_path), audit=sink) as engine:
        Searcher(engine).subject(VIEW_101)
    assert sink.records == []


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        # An action named only as a resource (the search-vs-decide test's counterexample): the
        # permit admits any action, so `read` is permitted and must be listed.
        (
            'forbid(principal, action, resource == Action::"read");\npermit(principal, action, resource);',
            ["read"],
        ),
        # Actions named only in a condition.
        (
            'permit(principal, action, resource) when { action in [Action::"list", Action::"write"] };',
            ["list", "write"],
        ),
        # A fallback policy (cedarpy has no typed tree for it: an extension call with two
        # arguments): its compiled form has no action scope, the search must read it from the text.
        (
            'permit(principal, action == Action::"read", resource) when { true || duration("1h", "x") == duration("1h") };',
            ["read"],
        ),
        # NS::Action::"read" is not the action "read" (decide reads AuthZEN names as Action).
        ('permit(principal, action == NS::Action::"read", resource);', []),
    ],
)
def test_action_search_lists_every_action_the_policies_name(
    tmp_path: Path, policies: str, expected: list[str]
) -> None:
    """Without a schema or action entities, an action search considers every `Action` uid the
    policies name, wherever they name it; each is decided (decide agrees with every answer)."""
    (tmp_path / "vigil.toml").write_text('[store]\nbackend = "memory"\n', encoding="utf-8")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.cedar").write_text(policies, encoding="utf-8")
    (tmp_path / "entities").mkdir()
    (tmp_path / "entities" / "e.json").write_text(
        '[{"uid": {"type": "User", "id": "a"}, "attrs": {}, "parents": []}]', encoding="utf-8"
    )
    with vigil.Engine.from_workspace(tmp_path, audit=MemorySink()) as engine:
        got = Searcher(engine).action({"subject": USER_A, "resource": USER_A})
        assert [x["name"] for x in got["results"]] == expected
        for name in expected:
            assert _decide(engine, ("User", "a"), name, ("User", "a"), {})
        if not expected:
            assert not _decide(engine, ("User", "a"), "read", ("User", "a"), {})


# -- search agrees with decide, on generated workspaces -------------------------------------------


def _all_results(call: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = call(body)
        out += got["results"]
        token = got.get("page", {}).get("next_token")
        if not token:
            return out
        body = {**body, "page": {"token": token}}


def _decide(
    engine: vigil.Engine, subject: tuple[str, str], action: str, resource: tuple[str, str], ctx: Any
) -> bool:
    record = engine.decide(
        {
            "subject": {"type": subject[0], "id": subject[1]},
            "action": {"name": action},
            "resource": {"type": resource[0], "id": resource[1]},
            "context": ctx,
        }
    )
    return bool(record.allowed)


@settings(max_examples=examples(80))
@given(cases(max_requests=2, namespaced=False))
def test_search_results_are_exactly_what_decide_permits(case: Any) -> None:
    """Every result of a subject, resource and action search is permitted by ``decide`` on the same
    request, and every entity of the searched type (every known action) left out is denied."""
    assume(parses(case))
    try:
        Reference(case)
    except ValueError:
        assume(False)  # an entity set Cedar refuses: no workspace
    uids = [
        (e["uid"]["type"], e["uid"]["id"]) for e in case.entities if not e["uid"]["type"].endswith("Action")
    ]
    with tempfile.TemporaryDirectory() as d, _engine(case, Path(d)) as engine:
        searcher = Searcher(engine, max_results=3)  # small pages: pagination is walked too
        for request in case.requests:
            ctx, action = request.context, request.action
            p, r = request.principal, request.resource
            subjects = _all_results(
                searcher.subject,
                {
                    "subject": {"type": p[0]},
                    "action": {"name": action},
                    "resource": {"type": r[0], "id": r[1]},
                    "context": ctx,
                },
            )
            found = {(x["type"], x["id"]) for x in subjects}
            assert len(found) == len(subjects)  # no result twice
            for uid in {u for u in uids if u[0] == p[0]} | found:
                assert (uid in found) == _decide(engine, uid, action, r, ctx), (uid, subjects)
            resources = _all_results(
                searcher.resource,
                {
                    "subject": {"type": p[0], "id": p[1]},
                    "action": {"name": action},
                    "resource": {"type": r[0]},
                    "context": ctx,
                },
            )
            found = {(x["type"], x["id"]) for x in resources}
            assert len(found) == len(resources)
            for uid in {u for u in uids if u[0] == r[0]} | found:
                assert (uid in found) == _decide(engine, p, action, uid, ctx), (uid, resources)
            actions = _all_results(
                searcher.action,
                {
                    "subject": {"type": p[0], "id": p[1]},
                    "resource": {"type": r[0], "id": r[1]},
                    "context": ctx,
                },
            )
            names = {x["name"] for x in actions}
            assert len(names) == len(actions)
            for name in names:
                assert _decide(engine, p, name, r, ctx), (name, actions)
            # Known actions (what an action search considers, without a schema): `Action` entities
            # and the `Action` uids the policies name anywhere, scopes or conditions (not
            # `NS::Action::"read"`). A permit that admits any action permits names outside this
            # set too; those no search can list.
            known_in_policies = {a for a in ACTIONS if re.search(rf'(?<![\w:])Action::"{a}"', case.text)}
            known = known_in_policies | {
                e["uid"]["id"] for e in case.entities if e["uid"]["type"] == "Action"
            }
            for name in known - names:
                assert not _decide(engine, p, name, r, ctx), (name, actions)
