"""`vigil approvals list|approve|deny`: a step-up ticket made by the engine, decided from the CLI,
seen by the engine; JSON output, exit codes, audit of who decided."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

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
    code, out = cli(
        "approvals", "list", "-w", str(ws), "--state", "approved", "--now", at(retry_at), "--json"
    )
    assert [i["id"] for i in json.loads(out)] == [tid]
    code, out = cli("quarantine", "list", "-w", str(ws), "--history", "--json")
    changes = json.loads(out)["changes"]
    assert [(c["kind"], c["by"]) for c in changes] == [  # newest first
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
