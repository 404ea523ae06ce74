"""The audit log over HTTP: a server whose audit log cannot be written denies and is not ready;
admin-key use is audited in the chained log."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.test_server_support import ADMIN_KEY, API_KEY, ServerProcess, copy_workspace
from vigil.audit.verify import verify_log

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
REQUEST = {
    "subject": {"type": "user", "id": RICK},
    "action": {"name": "can_create_todo"},
    "resource": {"type": "todo", "id": "t"},
}


def test_a_full_disk_denies_every_decision_and_readyz_answers_503(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-todo", tmp_path)
    (ws / "vigil.toml").write_text('[audit]\nrequired = true\npath = "/dev/full"\nflush_interval_ms = 10\n')
    server = ServerProcess(ws).wait_ready()
    try:
        with server.client(API_KEY) as api, server.client(ADMIN_KEY) as admin:
            assert api.get("/readyz").status_code == 200
            api.post("/access/v1/evaluation", json=REQUEST)  # its write fails
            deadline = time.monotonic() + 10
            while api.get("/readyz").status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.02)
            r = api.get("/readyz")
            assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable"
            answers = [api.post("/access/v1/evaluation", json=REQUEST).json() for _ in range(50)]
            assert [a["decision"] for a in answers] == [False] * 50
            assert {tuple(a["context"]["reason_codes"]) for a in answers} == {("audit_unavailable",)}
            status = admin.get("/admin/v1/status").json()
            assert status["audit_write_errors"] >= 1 and status["audit_healthy"] is False
            # an operator change the log cannot record is refused, not made silently
            r = admin.post("/admin/v1/quarantine/add", json={"subject": REQUEST["subject"], "by": "ops"})
            assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable"
            assert admin.get("/admin/v1/quarantine").json()["quarantined"] == []
            r = admin.post("/admin/v1/reload")
            assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable"
    finally:
        server.stop()
    failures = [line for line in server.lines if "cannot be written" in line]
    assert len(failures) == 1 and "No space left on device" in failures[0]


def test_admin_key_use_and_operator_changes_are_audited(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-todo", tmp_path)
    server = ServerProcess(ws).wait_ready()
    try:
        with server.client(ADMIN_KEY) as admin:
            r = admin.post(
                "/admin/v1/quarantine/add",
                json={"subject": REQUEST["subject"], "by": "ops.oncall", "reason": "token leaked"},
            )
            assert r.status_code == 200, r.text
            assert (
                admin.post(
                    "/admin/v1/quarantine/lift", json={"subject": {"type": "user", "id": "x"}, "by": "a"}
                ).status_code
                == 404
            )
            assert admin.post("/admin/v1/reload").status_code == 200
    finally:
        assert server.stop()
    log = ws / ".vigil" / "audit.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [(e["type"], e.get("by")) for e in events if e["type"] != "checkpoint"]
    import hashlib

    fp = "key:" + hashlib.sha256(ADMIN_KEY.encode()).hexdigest()[:12]
    assert kinds == [
        ("quarantine_added", "ops.oncall"),
        ("admin_api", fp),
        ("admin_api", fp),
        ("reloaded", fp),
        ("admin_api", fp),
    ]
    api_uses = [e for e in events if e["type"] == "admin_api"]
    assert [(e["endpoint"], e["status"]) for e in api_uses] == [
        ("admin_quarantine_add", 200),
        ("admin_quarantine_lift", 404),
        ("admin_reload", 200),
    ]
    assert ADMIN_KEY not in log.read_text()
    assert verify_log(log, None).ok
