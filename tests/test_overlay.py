"""Caller-supplied attributes (``subject.properties`` / ``resource.properties``) and ``[overlay]``.

A caller may add attributes an entity does not store (default ``"add"``), never replace a stored
one unless ``[overlay]`` says so; a refused overlay is ``overlay_not_allowed`` (400) and changes
nothing; an applied overlay is in the decision record and its audit event.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import vigil
from tests.test_server_support import copy_workspace
from vigil.audit import MemorySink
from vigil.audit.events import decision_event, encode_event, encode_events, event_lines
from vigil.errors import HTTP_STATUS, OverlayError, WorkspaceError
from vigil.workspace.settings import parse_settings

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"  # admin
MORTY = "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"  # editor
JERRY = "CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"  # viewer
DELETE = {"name": "can_delete_todo"}


def _engine(tmp: Path, overlay_toml: str | None = None) -> vigil.Engine:
    ws = copy_workspace("authzen-todo", tmp)
    if overlay_toml is not None:
        (ws / "vigil.toml").write_text('[store]\nbackend = "memory"\n\n' + overlay_toml, encoding="utf-8")
    return vigil.Engine.from_workspace(ws, audit=MemorySink())


@pytest.fixture
def todo(tmp_path: Path) -> Iterator[vigil.Engine]:
    with _engine(tmp_path) as engine:
        yield engine


def _delete(
    subject_props: dict[str, Any] | None = None, owner: str = "rick@the-citadel.com"
) -> dict[str, Any]:
    subject: dict[str, Any] = {"type": "user", "id": JERRY}
    if subject_props is not None:
        subject["properties"] = subject_props
    return {
        "subject": subject,
        "action": DELETE,
        "resource": {"type": "todo", "id": "1", "properties": {"ownerID": owner}},
    }


def test_viewer_cannot_grant_itself_admin_through_properties(todo: vigil.Engine) -> None:
    """The security hole: a viewer sending ``roles: ["admin"]`` was allowed to delete any todo."""
    assert todo.decide(_delete()).allowed is False  # a viewer may not delete
    profiles = {uid: p.requests for uid, p in todo.profiles.profiles.items()}
    with pytest.raises(OverlayError) as info:
        todo.decide(_delete({"roles": ["admin"]}))
    assert info.value.code == "overlay_not_allowed"
    assert HTTP_STATUS[info.value.code] == 400
    assert info.value.details["attributes"] == ["roles"]
    assert info.value.details["where"] == "subject.properties"
    # nothing was decided, audited or learned for the refused request
    assert len(todo.audit.records) == 1  # type: ignore[attr-defined]
    assert {uid: p.requests for uid, p in todo.profiles.profiles.items()} == profiles


def test_refused_overlay_is_a_denied_item_in_a_batch(todo: vigil.Engine) -> None:
    records = todo.decide_many([_delete({"roles": ["admin"]}), _delete()])
    assert [r.allowed for r in records] == [False, False]
    assert records[0].error is not None and records[0].error["code"] == "overlay_not_allowed"
    assert records[0].reason_codes == ("invalid_request",)


def test_adding_an_attribute_the_entity_does_not_store_is_allowed(todo: vigil.Engine) -> None:
    record = todo.decide(_delete({"nickname": "j"}))
    assert record.allowed is False  # still a viewer
    assert record.overlay is not None and set(record.overlay) == {"subject", "resource"}


def test_todo_type_takes_only_owner_id(todo: vigil.Engine) -> None:
    req = _delete()
    req["resource"]["properties"]["secret"] = "x"
    with pytest.raises(OverlayError) as info:
        todo.decide(req)
    assert info.value.details == {
        "where": "resource.properties",
        "entity_type": "todo",
        "attributes": ["secret"],
    }


def test_per_type_allow_list_may_replace_a_stored_attribute(tmp_path: Path) -> None:
    toml = '[overlay]\ndefault = "none"\n\n[overlay.types.user]\nallow = ["email"]\n\n[overlay.types.todo]\nmode = "add"\n'
    with _engine(tmp_path, toml) as engine:
        # Morty (editor) deletes a todo owned by the email he claims: the PEP owns `email` here
        req = {
            "subject": {"type": "user", "id": MORTY, "properties": {"email": "beth@the-smiths.com"}},
            "action": DELETE,
            "resource": {"type": "todo", "id": "1", "properties": {"ownerID": "beth@the-smiths.com"}},
        }
        assert engine.decide(req).allowed is True
        req["subject"]["properties"] = {"roles": ["admin"]}
        with pytest.raises(OverlayError):
            engine.decide(req)
        req["subject"]["properties"] = {"nickname": "m"}  # "none": not even an addition
        with pytest.raises(OverlayError):
            engine.decide(req)


def test_replace_mode_keeps_the_old_behaviour(tmp_path: Path) -> None:
    with _engine(tmp_path, '[overlay]\ndefault = "replace"\n') as engine:
        assert engine.decide(_delete({"roles": ["admin"]})).allowed is True


def test_applied_overlay_is_in_the_audit_event_identically_on_both_encoders(todo: vigil.Engine) -> None:
    record = todo.decide(_delete({"nickname": "j"}))
    event = decision_event(record)
    assert event["overlay"] == {
        "subject": {"nickname": "j"},
        "resource": {"ownerID": "rick@the-citadel.com"},
    }
    line = encode_event(record)
    assert orjson.loads(line)["overlay"] == event["overlay"]
    assert line == orjson.dumps(event)
    assert encode_events([record]) == [line]
    lines = event_lines()  # the C writer where built: records with an overlay take the fallback
    lines.add(record)
    chunk, n = lines.take()
    assert n == 1 and chunk == line + b"\n"
    plain = todo.decide(_delete())
    assert plain.overlay is not None  # the todo's ownerID
    assert "overlay" not in decision_event(
        todo.decide({**_delete(), "resource": {"type": "todo", "id": "1"}})
    )


def test_overlay_settings_are_checked() -> None:
    s = parse_settings('[overlay]\ndefault = "none"\n[overlay.types.todo]\nallow = ["ownerID"]\n')
    assert s.overlay.mode_of("todo") == ("none", ("ownerID",))
    assert s.overlay.mode_of("user") == ("none", ())
    assert parse_settings("").overlay.default == "add"
    for bad in (
        '[overlay]\ndefault = "all"\n',
        '[overlay]\nmode = "add"\n',
        '[overlay.types.todo]\nmode = "sometimes"\n',
        '[overlay.types.todo]\nallow = "ownerID"\n',
        "[overlay.types.todo]\nextra = 1\n",
        "[overlay]\ntypes = 3\n",
    ):
        with pytest.raises(WorkspaceError):
            parse_settings(bad)


def test_search_follows_the_same_rules(todo: vigil.Engine) -> None:
    from vigil.protocol.search import Searcher

    search = Searcher(todo)
    body = {
        "subject": {"type": "user", "id": JERRY, "properties": {"roles": ["admin"]}},
        "action": DELETE,
        "resource": {"type": "todo"},
    }
    with pytest.raises(OverlayError):
        search.resource(body)
    body["subject"]["properties"] = {"nickname": "j"}
    assert search.resource(body)["results"] == []


def test_restating_a_stored_value_replaces_nothing(todo: vigil.Engine) -> None:
    """A PEP that sends an entity's attributes as stored (CloudTrail imports do) is not refused."""
    same = {"roles": ["viewer"], "email": "jerry@the-smiths.com"}
    assert todo.decide(_delete(same)).allowed is False
    with pytest.raises(OverlayError) as info:
        todo.decide(_delete({**same, "email": "rick@the-citadel.com"}))
    assert info.value.details["attributes"] == ["email"]


def test_refused_overlay_over_http_is_a_400_and_a_denied_batch_item(todo: vigil.Engine) -> None:
    import asyncio

    import httpx

    from vigil.server.app import ServerConfig, VigilApp
    from vigil.server.logs import JsonLog

    app = VigilApp(todo, ServerConfig(api_keys=None, admin_keys=None), JsonLog(access=False))

    async def post(path: str, body: dict[str, Any]) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pdp") as c:
            return await c.post(path, json=body)

    bad = _delete({"roles": ["admin"]})
    r = asyncio.run(post("/access/v1/evaluation", bad))
    assert r.status_code == 400 and r.json()["error"]["code"] == "overlay_not_allowed"
    r = asyncio.run(post("/access/v1/evaluations", {"evaluations": [bad, _delete()]}))
    assert r.status_code == 200
    items = r.json()["evaluations"]
    assert [i["decision"] for i in items] == [False, False]
    assert items[0]["context"]["error"]["code"] == "overlay_not_allowed"


def test_an_integer_cannot_stand_in_for_a_stored_boolean(tmp_path: Path) -> None:
    """Python says ``True == 1``; Cedar's ``true`` and ``1`` differ. Sending ``suspended: 1`` for a
    stored ``suspended: true`` would replace it (and skip a forbid testing ``== true``)."""
    ws = copy_workspace("authzen-todo", tmp_path)
    users = orjson.loads((ws / "entities" / "users.json").read_bytes())
    for u in users:
        if u["uid"]["id"] == RICK:
            u["attrs"]["suspended"] = True
            u["attrs"]["limits"] = {"admin": True}
    (ws / "entities" / "users.json").write_bytes(orjson.dumps(users))
    (ws / "policies" / "suspended.cedar").write_text(
        '@id("suspended")\nforbid (principal is user, action, resource) when { principal.suspended == true };\n'
    )
    rick = {"type": "user", "id": RICK}
    read = {"subject": rick, "action": {"name": "can_read_todos"}, "resource": {"type": "todo", "id": "1"}}
    with vigil.Engine.from_workspace(ws, audit=MemorySink()) as engine:
        assert engine.decide(read).allowed is False  # the forbid holds
        for props in ({"suspended": 1}, {"suspended": False}, {"limits": {"admin": 1}}):
            with pytest.raises(OverlayError):
                engine.decide({**read, "subject": {**rick, "properties": props}})
        # the same values, restated, still replace nothing
        restated = {**read, "subject": {**rick, "properties": {"suspended": True, "limits": {"admin": True}}}}
        assert engine.decide(restated).allowed is False
