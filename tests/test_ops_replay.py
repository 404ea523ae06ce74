"""`vigil replay` is a dry run by default: the workspace's state database and audit log stay as they
were; --audit writes events marked "replay": true; --state opts in to the live store."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_server_support import EXAMPLES
from vigil.cli.main import app
from vigil.operations.service import StateDesk

FLEET = EXAMPLES / "agent-fleet"
runner = CliRunner()


def _fleet(tmp_path: Path) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    shutil.copytree(FLEET, ws, ignore=shutil.ignore_patterns(".vigil", "events.jsonl"))
    events = tmp_path / "events.jsonl"
    with (FLEET / "events.jsonl").open("rb") as src:
        events.write_bytes(b"".join(itertools.islice(src, 300)))
    return ws, events


def _digest(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def test_a_default_replay_leaves_the_workspace_state_alone(tmp_path: Path) -> None:
    ws, events = _fleet(tmp_path)
    state = ws / ".vigil"
    # a workspace with history: a quarantine in its state database and an audit log
    with StateDesk(ws) as desk:
        desk.add(("Agent", "someone"), by="ops")
    (state / "audit.jsonl").write_text('{"v": 1, "type": "decision", "id": "live"}\n')
    before = _digest(state)
    assert "state.db" in before and "audit.jsonl" in before
    out = tmp_path / "decisions.jsonl"
    r = runner.invoke(app, ["replay", "-w", str(ws), "-i", str(events), "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert len(out.read_text().splitlines()) == 300
    assert _digest(state) == before  # byte-identical: nothing trained, nothing audited


def test_a_default_replay_creates_nothing_in_a_fresh_workspace(tmp_path: Path) -> None:
    ws, events = _fleet(tmp_path)
    r = runner.invoke(app, ["replay", "-w", str(ws), "-i", str(events), "-o", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 0, r.output
    assert not (ws / ".vigil").exists()


def test_replay_audit_events_are_marked(tmp_path: Path) -> None:
    ws, events = _fleet(tmp_path)
    audit = tmp_path / "replay-audit.jsonl"
    r = runner.invoke(
        app,
        ["replay", "-w", str(ws), "-i", str(events), "-o", str(tmp_path / "o.jsonl"), "--audit", str(audit)],
    )
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    decisions = [e for e in lines if e["type"] != "checkpoint"]
    assert len(decisions) == 300 and all(e["replay"] is True and e["type"] == "decision" for e in decisions)
    assert not (ws / ".vigil").exists()
    # on a chain of its own, signed by a key beside it
    key = tmp_path / "replay-audit.jsonl.signing.pub"
    r = runner.invoke(app, ["audit", "verify", str(audit), "--public-key", str(key)])
    assert r.exit_code == 0, r.output


def test_replay_with_state_trains_the_live_store_and_marks_its_events(tmp_path: Path) -> None:
    ws, events = _fleet(tmp_path)
    r = runner.invoke(
        app, ["replay", "-w", str(ws), "-i", str(events), "-o", str(tmp_path / "o.jsonl"), "--state"]
    )
    assert r.exit_code == 0, r.output
    assert (ws / ".vigil" / "state.db").exists()
    with StateDesk(ws) as desk:
        assert sum(1 for _ in desk.store.load_profiles()) > 0
    lines = [json.loads(x) for x in (ws / ".vigil" / "audit.jsonl").read_text().splitlines()]
    decisions = [e for e in lines if e["type"] != "checkpoint"]
    assert len(decisions) == 300 and all(e["replay"] is True for e in decisions)


def test_a_relative_audit_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, events = _fleet(tmp_path)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    r = runner.invoke(
        app, ["replay", "-w", str(ws), "-i", str(events), "-o", "o.jsonl", "--audit", "r.jsonl"]
    )
    assert r.exit_code == 0, r.output
    assert (here / "r.jsonl").exists() and not (ws / "r.jsonl").exists()
    r = runner.invoke(app, ["audit", "verify", "r.jsonl", "--public-key", "r.jsonl.signing.pub"])
    assert r.exit_code == 0, r.output


def test_an_audit_log_that_cannot_be_opened_exits_4(tmp_path: Path) -> None:
    """`--audit` under a path that is a file: audit_unavailable, exit status 4, nothing replayed."""
    ws, events = _fleet(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = tmp_path / "o.jsonl"
    r = runner.invoke(
        app, ["replay", "-w", str(ws), "-i", str(events), "-o", str(out), "--audit", str(blocker / "r.jsonl")]
    )
    assert r.exit_code == 4, r.output
    assert "audit_unavailable" in r.output and "cannot open the replay's audit log" in r.output
    assert not out.exists() or out.read_text() == ""


def test_an_operator_action_that_cannot_be_audited_exits_4(tmp_path: Path) -> None:
    """A quarantine from the CLI on a workspace whose audit log cannot be opened: exit status 4."""
    ws, _events = _fleet(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    toml = ws / "vigil.toml"
    toml.write_text(toml.read_text() + f'\n[audit]\npath = "{blocker / "audit.jsonl"}"\n')
    r = runner.invoke(app, ["quarantine", "add", 'Agent::"someone"', "-w", str(ws), "--by", "ops"])
    assert r.exit_code == 4, r.output
    assert "audit_unavailable" in r.output
