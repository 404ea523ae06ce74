"""`vigil quarantine list|add|lift`: operators quarantine and lift from the CLI; the engine
quarantines by itself; both are audited with who did it; the state survives a restart."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from tests.behaviour_support import T0, engine, habit, request, write_workspace
from vigil.cli.main import app

WHO = "data-agent-1"
runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_add_list_lift_and_the_engine_obeys(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", store="sqlite")
    code, out = cli(
        "quarantine",
        "add",
        f'Agent::"{WHO}"',
        "-w",
        str(ws),
        "--by",
        "hannah.weiss",
        "--reason",
        "leak",
        "--json",
    )
    assert code == 0 and json.loads(out)["by"] == "hannah.weiss"
    code, out = cli("quarantine", "add", f"Agent::{WHO}", "-w", str(ws), "--by", "someone-else", "--json")
    assert code == 0 and json.loads(out)["by"] == "hannah.weiss"  # idempotent: the first entry stays
    code, out = cli("quarantine", "list", "-w", str(ws))
    assert code == 0 and WHO in out and "hannah.weiss" in out
    e = engine(ws)  # a restart: the quarantine is in the store
    r = e.decide(request(WHO, "read", "data-table-0", T0), now=T0)
    assert not r.allowed and r.reason_codes == ("quarantined",) and r.advice == ("quarantined",)
    code, out = cli(
        "quarantine", "lift", f'Agent::"{WHO}"', "-w", str(ws), "--by", "kenji.watanabe", "--note", "rotated"
    )
    assert code == 0 and "lifted" in out
    e.quarantine.refresh()
    assert e.decide(
        request(WHO, "read", "data-table-0", T0 + timedelta(minutes=1)), now=T0 + timedelta(minutes=1)
    ).allowed
    code, out = cli("quarantine", "list", "-w", str(ws), "--history", "--json")
    data = json.loads(out)
    assert data["quarantined"] == []
    assert [(c["kind"], c["by"]) for c in data["changes"]] == [  # newest first
        ("quarantine_lifted", "kenji.watanabe"),
        ("quarantine_added", "hannah.weiss"),
    ]
    code, out = cli(
        "quarantine", "lift", f'Agent::"{WHO}"', "-w", str(ws), "--by", "kenji.watanabe", "--json"
    )
    assert code == 5 and json.loads(out)["error"]["code"] == "not_quarantined"
    e.close()


def test_automatic_quarantine_is_listed_with_its_reason(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", store="sqlite")
    e = engine(ws)
    last = habit(e, WHO)
    t = (last + timedelta(days=3)).replace(hour=4)
    for i in range(6):
        when = t + timedelta(seconds=i)
        e.decide(request(WHO, "read", "data-table-0", when, ip="198.51.100.3", region="sa-east-1"), now=when)
    e.close()
    _code, out = cli("quarantine", "list", "-w", str(ws), "--json")
    [entry] = json.loads(out)
    assert entry["subject"]["id"] == WHO and entry["by"] == "vigil" and "new_region" in entry["reason"]


def test_bad_subjects(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", store="sqlite")
    for bad in ("data-agent-1", "::x", 'Agent::""'):
        code, _ = cli("quarantine", "add", bad, "-w", str(ws), "--by", "x")
        assert code == 2, bad
