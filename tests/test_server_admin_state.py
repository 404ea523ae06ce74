"""Approvals and quarantine through the admin HTTP API of a real server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_server_support import ADMIN_KEY, API_KEY, ServerProcess, copy_workspace

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
REQUEST = {
    "subject": {"type": "user", "id": RICK},
    "action": {"name": "can_create_todo"},
    "resource": {"type": "todo", "id": "t1"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ws: Path = copy_workspace("authzen-todo", tmp_path_factory.mktemp("admin-state"))
    proc = ServerProcess(ws).wait_ready()
    yield proc
    assert proc.stop()


def test_quarantine_add_list_lift_changes_the_decision(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin, server.client(API_KEY) as api:
        assert api.post("/access/v1/evaluation", json=REQUEST).json()["decision"] is True
        r = admin.post(
            "/admin/v1/quarantine/add",
            json={"subject": REQUEST["subject"], "by": "ops.oncall", "reason": "token leaked"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["by"] == "ops.oncall"
        listed = admin.get("/admin/v1/quarantine").json()["quarantined"]
        assert [q["subject"]["id"] for q in listed] == [RICK]
        denied = api.post("/access/v1/evaluation", json=REQUEST).json()
        assert denied["decision"] is False
        assert "quarantined" in denied["context"]["reason_codes"]
        r = admin.post(
            "/admin/v1/quarantine/lift",
            json={"subject": REQUEST["subject"], "by": "ops.lead", "note": "rotated"},
        )
        assert r.status_code == 200, r.text
        assert admin.get("/admin/v1/quarantine").json()["quarantined"] == []
        assert api.post("/access/v1/evaluation", json=REQUEST).json()["decision"] is True
        kinds = [(c["kind"], c["by"]) for c in admin.get("/admin/v1/changes").json()["changes"]]
        assert ("quarantine_added", "ops.oncall") in kinds
        assert ("quarantine_lifted", "ops.lead") in kinds


def test_state_errors_are_typed(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin, server.client(API_KEY) as api:
        assert admin.get("/admin/v1/approvals").json() == {"tickets": []}
        r = admin.post("/admin/v1/approvals/approve", json={"ticket": "tkt_nope", "by": "a"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "ticket_not_found"
        r = admin.post("/admin/v1/approvals/deny", json={"ticket": "tkt_nope"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
        r = admin.post("/admin/v1/quarantine/lift", json={"subject": {"type": "user", "id": "x"}, "by": "a"})
        assert r.status_code == 404
        r = admin.post("/admin/v1/quarantine/add", json={"by": "a"})
        assert r.status_code == 400
        # the decision API key is not an admin key
        assert api.get("/admin/v1/quarantine").status_code == 401


RICK_ENTITY = {
    "uid": {"type": "user", "id": RICK},
    "attrs": {"name": "Rick Sanchez", "email": "rick@the-citadel.com", "roles": ["admin", "evil_genius"]},
    "parents": [],
}


def test_entities_put_and_delete_change_the_next_decision(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin, server.client(API_KEY) as api:
        assert api.post("/access/v1/evaluation", json=REQUEST).json()["decision"] is True
        demoted = {**RICK_ENTITY, "attrs": {**RICK_ENTITY["attrs"], "roles": ["viewer"]}}
        r = admin.put("/admin/v1/entities", json={"entities": [demoted], "by": "idp.sync"})
        assert r.status_code == 200, r.text
        assert r.json()["upserted"] == 1
        assert api.post("/access/v1/evaluation", json=REQUEST).json()["decision"] is False
        r = admin.request("DELETE", "/admin/v1/entities", json={"uids": [RICK_ENTITY["uid"]]})
        assert r.status_code == 200 and r.json()["deleted"] == 1, r.text
        gone = api.post("/access/v1/evaluation", json=REQUEST).json()
        assert gone["decision"] is False and "unknown_identity" in gone["context"]["reason_codes"]
        r = admin.put("/admin/v1/entities", json={"entities": [RICK_ENTITY]})
        assert r.status_code == 200, r.text
        assert api.post("/access/v1/evaluation", json=REQUEST).json()["decision"] is True


def test_a_bad_entity_batch_is_a_400_naming_its_item(server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin, server.client(API_KEY) as api:
        bad = {**RICK_ENTITY, "uid": {"type": "user", "id": "other"}, "attrs": {"roles": [None]}}
        demoted = {**RICK_ENTITY, "attrs": {**RICK_ENTITY["attrs"], "roles": []}}
        r = admin.put("/admin/v1/entities", json={"entities": [demoted, bad]})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "invalid_entities" and err["index"] == 1 and err["field"] == "entities"
        assert api.post("/access/v1/evaluation", json=REQUEST).json()["decision"] is True  # nothing changed
        for body in ({"entities": "x"}, {"uids": [{"type": "user"}]}, {"nope": 1}, [1]):
            method = "DELETE" if "uids" in body else "PUT"
            r = admin.request(method, "/admin/v1/entities", json=body)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] in ("invalid_entities", "invalid_request")
        with server.client(API_KEY) as not_admin:
            assert not_admin.put("/admin/v1/entities", json={"entities": []}).status_code in (401, 403)
