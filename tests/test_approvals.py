"""`vigil approvals list|approve|deny`: a step-up ticket made by the engine, decided from the CLI,
seen by the engine; JSON output, exit codes, audit of who decided."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import vigil
from tests.behaviour_support import engine, habit, request, write_workspace
from vigil.cli.main import app

WHO = "payments-agent-0"
runner = CliRunner()


@pytest.fixture
def stepped_up(tmp_path: Path) -> tuple[Path, vigil.Engine, datetime, str]:
    ws = write_workspace(tmp_path / "ws", store="sqlite")
    e = engine(ws)
    last = habit(e, WHO)
    t = (last + timedelta(days=3)).replace(hour=3)
    r = e.decide(request(WHO, "read", "payments-table-0", t, ip="10.10.99.9", user_agent="curl/8"), now=t)
    assert r.advice == ("step_up",) and r.ticket is not None
    return ws, e, t, r.ticket["id"]


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def at(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_list_approve_and_the_engine_lets_the_retry_through(
    stepped_up: tuple[Path, vigil.Engine, datetime, str],
) -> None:
    ws, e, t, tid = stepped_up
    code, out = cli("approvals", "list", "-w", str(ws), "--now", at(t), "--json")
    assert code == 0
    items = json.loads(out)
    assert [i["id"] for i in items] == [tid] and items[0]["state"] == "pending"
    assert items[0]["subject"] == {"type": "Agent", "id": WHO} and items[0]["signals"]
    code, out = cli("approvals", "list", "-w", str(ws), "--now", at(t))
    assert code == 0 and tid[:6] in out and "pending" in out
    code, out = cli(
        "approvals",
        "approve",
        tid,
        "-w",
        str(ws),
        "--by",
        "priya.raman",
        "--note",
        "ok",
        "--now",
        at(t + timedelta(minutes=2)),
        "--json",
    )
    assert (
        code == 0
        and json.loads(out)["state"] == "approved"
        and json.loads(out)["decided_by"] == "priya.raman"
    )
    retry_at = t + timedelta(minutes=3)
    r = e.decide(
        request(WHO, "read", "payments-table-0", retry_at, ip="10.10.99.9", user_agent="curl/8"), now=retry_at
    )
    assert r.allowed and "approved" in r.reason_codes
    code, out = cli("approvals", "list", "-w", str(ws), "--state", "used", "--now", at(retry_at), "--json")
    assert [i["id"] for i in json.loads(out)] == [tid] and json.loads(out)[0]["uses"] == 0
    code, out = cli("quarantine", "list", "-w", str(ws), "--history", "--json")
    changes = json.loads(out)["changes"]
    assert [(c["kind"], c["by"]) for c in changes] == [  # newest first
        ("ticket_used", "vigil"),
        ("ticket_approved", "priya.raman"),
        ("ticket_created", "vigil"),
    ]
    e.close()


def test_deny_then_closed_and_unknown_tickets(stepped_up: tuple[Path, vigil.Engine, datetime, str]) -> None:
    ws, e, t, tid = stepped_up
    code, out = cli("approvals", "deny", tid, "-w", str(ws), "--by", "priya.raman", "--now", at(t))
    assert code == 0 and "denied" in out
    code, out = cli(
        "approvals", "approve", tid, "-w", str(ws), "--by", "priya.raman", "--now", at(t), "--json"
    )
    assert code == 6 and json.loads(out)["error"]["code"] == "ticket_closed"
    code, out = cli("approvals", "approve", "tkt_nope", "-w", str(ws), "--by", "x", "--json")
    assert code == 5 and json.loads(out)["error"]["code"] == "ticket_not_found"
    code, out = cli("approvals", "list", "-w", str(ws), "--state", "denied", "--json")
    assert [i["id"] for i in json.loads(out)] == [tid]
    code, out = cli("approvals", "list", "-w", str(ws), "--state", "sideways")
    assert code == 2
    e.close()


def test_a_ticket_expires(stepped_up: tuple[Path, vigil.Engine, datetime, str]) -> None:
    ws, e, t, tid = stepped_up
    late = at(t + timedelta(days=2))
    code, out = cli("approvals", "list", "-w", str(ws), "--state", "expired", "--now", late, "--json")
    assert [i["id"] for i in json.loads(out)] == [tid]
    code, out = cli("approvals", "approve", tid, "-w", str(ws), "--by", "priya.raman", "--now", late)
    assert code == 6 and "expired" in out
    e.close()


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["approvals", "approve", "tkt_x", "--by", "x"], 2),  # no workspace
        (["approvals", "approve", "tkt_x", "-w", "WS", "--by", ""], 2),  # nobody
        (["approvals", "list", "-w", "WS", "--now", "yesterday"], 2),
        (["approvals", "list", "-w", "/nonexistent/ws"], 3),
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], status: int) -> None:
    ws = write_workspace(tmp_path / "ws", store="sqlite")
    code, _ = cli(*[str(ws) if a == "WS" else a for a in args])
    assert code == status


def test_works_while_the_policies_are_broken(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", store="sqlite")
    (ws / "policies" / "p.cedar").write_text("permit (principal, action, resource")  # syntax error
    code, out = cli("approvals", "list", "-w", str(ws), "--json")
    assert code == 0 and json.loads(out) == []


# -- approvals bound to the context, single-use, not learned ----------------------------------------
def _approve(e: vigil.Engine, tid: str, at: datetime, **kw: Any) -> None:
    e.approvals.approve(tid, by="priya.raman", now=at.timestamp(), ttl_s=3_600, **kw)


def test_ticket_records_its_context_and_the_approver_sees_it(
    stepped_up: tuple[Path, vigil.Engine, datetime, str],
) -> None:
    ws, e, t, _tid = stepped_up
    code, out = cli("approvals", "list", "-w", str(ws), "--now", at(t), "--json")
    assert json.loads(out)[0]["context"] == {
        "network": "10.10.99.0/24",
        "region": "eu-west-1",
        "user_agent": "curl/8",
    }
    code, out = cli("approvals", "list", "-w", str(ws), "--now", at(t))
    assert code == 0 and "10.10.99.0/24" in out and "curl/8" in out
    e.close()


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"ip": "192.0.2.7"},  # another network
        {"region": "ap-northeast-1"},
        {"user_agent": "python-requests/2.31"},
        {"user_agent": "curl/8.1"},  # the same family, another string
    ],
)
def test_approval_applies_only_to_the_bound_context(
    stepped_up: tuple[Path, vigil.Engine, datetime, str], elsewhere: dict[str, Any]
) -> None:
    _ws, e, t, tid = stepped_up
    _approve(e, tid, t)
    retry_at = t + timedelta(minutes=3)
    fields: dict[str, Any] = {"ip": "10.10.99.9", "user_agent": "curl/8", **elsewhere}
    r = e.decide(request(WHO, "read", "payments-table-0", retry_at, **fields), now=retry_at)
    assert "approved" not in r.reason_codes  # (denied, or allowed on its own lower risk)
    # the approval was not used up by that: the same network (another host in the /24), same context
    req = request(WHO, "read", "payments-table-0", retry_at, ip="10.10.99.200", user_agent="curl/8")
    r = e.decide(req, now=retry_at)
    assert r.allowed and "approved" in r.reason_codes
    e.close()


def test_approval_is_single_use_unless_more_uses_are_granted(
    stepped_up: tuple[Path, vigil.Engine, datetime, str],
) -> None:
    _ws, e, t, tid = stepped_up
    _approve(e, tid, t)
    retry_at = t + timedelta(minutes=3)
    req = request(WHO, "read", "payments-table-0", retry_at, ip="10.10.99.9", user_agent="curl/8")
    assert "approved" in e.decide(req, now=retry_at).reason_codes
    second = e.decide(req, now=retry_at + timedelta(seconds=1))
    assert not second.allowed and second.ticket is not None and second.ticket["id"] != tid
    _approve(e, second.ticket["id"], retry_at, uses=2)
    later = retry_at + timedelta(seconds=2)
    assert ["approved" in e.decide(req, now=later).reason_codes for _ in range(3)] == [True, True, False]
    with pytest.raises(vigil.VigilError) as info:
        _approve(e, "tkt_x", t, uses=0)
    assert info.value.code == "invalid_argument"
    e.close()


def test_cli_approve_with_uses(stepped_up: tuple[Path, vigil.Engine, datetime, str]) -> None:
    ws, e, t, tid = stepped_up
    code, out = cli(
        "approvals", "approve", tid, "-w", str(ws), "--by", "p", "--uses", "3", "--now", at(t), "--json"
    )
    assert code == 0 and json.loads(out)["uses"] == 3
    retry_at = t + timedelta(minutes=3)
    req = request(WHO, "read", "payments-table-0", retry_at, ip="10.10.99.9", user_agent="curl/8")
    assert all("approved" in e.decide(req, now=retry_at).reason_codes for _ in range(3))
    assert not e.decide(req, now=retry_at).allowed
    e.close()


def test_a_request_let_through_on_an_approval_is_not_learned(
    stepped_up: tuple[Path, vigil.Engine, datetime, str],
) -> None:
    _ws, e, t, tid = stepped_up
    _approve(e, tid, t, uses=5)
    retry_at = t + timedelta(minutes=3)
    req = request(WHO, "read", "payments-table-0", retry_at, ip="10.10.99.9", user_agent="curl/8")
    first = e.decide(req, now=retry_at)
    assert "approved" in first.reason_codes
    # had the approval taught the profile the new network and user agent, the same request would
    # now be less risky; it is exactly as risky, and still needs the approval
    again = e.decide(req, now=retry_at + timedelta(seconds=30))
    assert "approved" in again.reason_codes and again.risk == first.risk
    assert set(again.signals) == set(first.signals)
    e.close()


def test_bound_context_network_keys() -> None:
    from vigil.operations.approvals import bound_context

    assert bound_context({}) == ("", "", "")
    assert bound_context({"ip": "10.1.2.3"})[0] == "10.1.2.0/24"
    assert bound_context({"ip": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}}})[0] == "10.1.2.0/24"
    assert bound_context({"ip": "2001:db8:1:2:3::4"})[0] == "2001:db8:1:2::/64"
    assert bound_context({"ip": "::ffff:10.1.2.3"})[0] == "10.1.2.0/24"
    assert bound_context({"ip": "not an ip"})[0] == "?not an ip"
    assert bound_context({"region": 3, "user_agent": ["x"]})[1:] == ("?3", "?['x']")


def test_sqlite_state_file_from_before_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    from vigil.store.sqlite import SqliteStore

    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE tickets (
            id TEXT PRIMARY KEY,
            subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,
            action_type TEXT NOT NULL, action_id TEXT NOT NULL,
            resource_type TEXT NOT NULL, resource_id TEXT NOT NULL,
            created REAL NOT NULL, expires REAL NOT NULL, risk INTEGER NOT NULL,
            signals TEXT NOT NULL, why TEXT NOT NULL, state TEXT NOT NULL,
            decided_by TEXT, decided_at REAL, note TEXT NOT NULL
        );
        INSERT INTO tickets VALUES ('tkt_old', 'Agent', 'a', 'Action', 'read', 'Database', 'd',
            1.0, 2.0, 70, '["new_network"]', 'why', 'pending', NULL, NULL, '');
        """
    )
    db.commit()
    db.close()
    store = SqliteStore(path)
    old = store.get_ticket("tkt_old")
    assert old is not None and (old.network, old.region, old.user_agent, old.uses) == ("", "", "", 1)
    from dataclasses import replace

    store.put_ticket(replace(old, id="tkt_new", network="10.0.0.0/24", uses=2))
    got = store.get_ticket("tkt_new")
    assert got is not None and got.network == "10.0.0.0/24" and got.uses == 2
    store.close()
