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
