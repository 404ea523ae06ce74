"""``vigil identity ...`` through typer's runner on a copy of the agent-fleet workspace with its
real SQLite state: every command, its exit status from the error table, JSON output, and the
change log and chained audit log entries (with ``by``) each change writes. Refusals change
nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.identity_support import BOT, OWNER, PURPOSE, SA, fleet, pem_private, private_key, write_key
from vigil.audit.verify import load_public_key, verify_log
from vigil.cli.main import app
from vigil.operations.service import StateDesk

runner = CliRunner()


def run(ws: Path, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, ["identity", *args[:1], "-w", str(ws), *args[1:], "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return fleet(tmp_path / "ws")


def test_a_lifecycle_from_the_command_line(ws: Path, tmp_path: Path) -> None:
    ed = write_key(tmp_path, "ed", "ed25519", "pem")
    p256 = write_key(tmp_path, "p256", "p256", "jwk")
    added = run(
        ws,
        "add",
        BOT,
        "--owner",
        OWNER,
        "--purpose",
        PURPOSE,
        "--public-key",
        str(ed),
        "--expires",
        "2099-01-01",
        "--by",
        "alice",
        "--now",
        "2026-11-02T09:00:00Z",
    )
    assert added["uid"] == BOT and added["status"] == "active" and added["kind"] == "agent"
    assert added["owner"] == OWNER and added["created_by"] == "alice"
    assert added["created"] == "2026-11-02T09:00:00Z" and added["expires"] == "2099-01-01T00:00:00Z"
    old_kid = added["keys"][0]["kid"]
    assert added["keys"][0]["key"] == "Ed25519"
    rotated = run(ws, "add-key", BOT, "--public-key", str(p256), "--by", "alice")
    new_kid = rotated["keys"][1]["kid"]
    assert [k["kid"] for k in rotated["keys"]] == [old_kid, new_kid]  # both valid: overlap
    after = run(ws, "remove-key", BOT, old_kid, "--by", "alice")
    assert [k["kid"] for k in after["keys"]] == [new_kid] and after["rotated"] is not None
    bound = run(
        ws,
        "bind",
        BOT,
        "--issuer",
        "spiffe://example.org",
        "--subject",
        "spiffe://example.org/support/triage",
        "--by",
        "bob",
    )
    assert bound["bindings"] == [
        {
            "issuer": "spiffe://example.org",
            "subject": "spiffe://example.org/support/triage",
            "added": bound["bindings"][0]["added"],
            "by": "bob",
        }
    ]
    assert run(ws, "suspend", BOT, "--reason", "key leaked", "--by", "bob")["status"] == "suspended"
    assert run(ws, "list", "--status", "suspended")[0]["uid"] == BOT
    assert run(ws, "list", "--status", "active") == []
    assert run(ws, "resume", BOT, "--by", "carol")["status"] == "active"
    assert (
        run(
            ws,
            "unbind",
            BOT,
            "--issuer",
            "spiffe://example.org",
            "--subject",
            "spiffe://example.org/support/triage",
            "--by",
            "bob",
        )["bindings"]
        == []
    )
    retired = run(ws, "retire", BOT, "--reason", "replaced", "--by", "carol")
    assert retired["status"] == "retired" and retired["status_reason"] == "replaced"
    shown = run(ws, "show", BOT)
    assert shown == {**retired, "last_used": shown["last_used"]}

    # every change is in the change log and in the chained audit log, with who made it
    with StateDesk(ws) as desk:
        kinds = [(c.kind, c.by) for c in desk.changes()]
    assert kinds == [
        ("identity_added", "alice"),
        ("identity_key_added", "alice"),
        ("identity_key_removed", "alice"),
        ("identity_bound", "bob"),
        ("identity_suspended", "bob"),
        ("identity_resumed", "carol"),
        ("identity_unbound", "bob"),
        ("identity_retired", "carol"),
    ]
    log = ws / ".vigil" / "audit.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    ops = [(e["type"], e["by"], e["subject"]) for e in events if e.get("type", "").startswith("identity_")]
    assert [(k, b) for k, b, _ in ops] == kinds
    assert all(s == {"type": "Agent", "id": "support-triage-bot"} for _, _, s in ops)
    assert verify_log(log, load_public_key(ws / ".vigil" / "audit-signing.pub")).ok


def test_refusals_exit_with_their_table_status_and_change_nothing(ws: Path, tmp_path: Path) -> None:
    run(ws, "add", SA, "--owner", OWNER, "--purpose", PURPOSE, "--by", "alice")
    state = (ws / ".vigil" / "state.db").read_bytes()
    private = tmp_path / "private.pem"
    private.write_bytes(pem_private(private_key("ed25519")))
    cases = [
        (("add", SA, "--owner", OWNER, "--purpose", PURPOSE), 6, "identity_exists"),
        (("add", 'Agent::"x"', "--purpose", PURPOSE), 2, "invalid_owner"),
        (("add", 'Agent::"x"', "--owner", "not-an-email", "--purpose", PURPOSE), 2, "invalid_owner"),
        (("add", 'Agent::"x"', "--owner", OWNER), 2, "invalid_argument"),
        (("add", 'Agent::"x', "--owner", OWNER, "--purpose", PURPOSE), 2, "invalid_uid"),
        (("add", 'Human::"ann"', "--owner", OWNER, "--purpose", PURPOSE), 2, "not_an_identity_type"),
        (
            ("add", 'Agent::"x"', "--owner", OWNER, "--purpose", PURPOSE, "--expires", "2020-01-01"),
            2,
            "invalid_date",
        ),
        (
            ("add", 'Agent::"x"', "--owner", OWNER, "--purpose", PURPOSE, "--expires", "soon"),
            2,
            "invalid_date",
        ),
        (
            ("add", 'Agent::"x"', "--owner", OWNER, "--purpose", PURPOSE, "--public-key", str(private)),
            2,
            "invalid_key",
        ),
        (
            (
                "add",
                'Agent::"x"',
                "--owner",
                OWNER,
                "--purpose",
                PURPOSE,
                "--public-key",
                str(tmp_path / "nope"),
            ),
            2,
            "invalid_key",
        ),
        (("suspend", 'Agent::"nobody"'), 5, "identity_not_found"),
        (("resume", SA), 6, "invalid_transition"),
        (("remove-key", SA, "no-such-kid"), 5, "key_not_found"),
        (
            ("unbind", SA, "--issuer", "https://k8s.example", "--subject", "system:serviceaccount:a:b"),
            5,
            "binding_not_found",
        ),
        (("bind", SA, "--issuer", "ftp://x", "--subject", "s"), 2, "invalid_binding"),
        (("suspend", SA, "--by", " "), 2, "invalid_argument"),
        (("list", "--status", "sleeping"), 2, "invalid_argument"),
    ]
    for args, code, error in cases:
        out = run(ws, *args, code=code)
        assert out["error"]["code"] == error, (args, out)
    assert (ws / ".vigil" / "state.db").read_bytes() == state  # nothing was written
    run(ws, "retire", SA)
    for args in (("resume", SA), ("suspend", SA), ("retire", SA)):
        assert run(ws, *args, code=6)["error"]["code"] == "invalid_transition"


def test_tables_for_people(ws: Path, tmp_path: Path) -> None:
    key = write_key(tmp_path, "rsa", "rsa", "jwk")
    result = runner.invoke(
        app,
        [
            "identity",
            "add",
            "-w",
            str(ws),
            SA,
            "--owner",
            OWNER,
            "--purpose",
            PURPOSE,
            "--public-key",
            str(key),
        ],
    )
    assert result.exit_code == 0 and "registered" in result.stdout
    shown = runner.invoke(app, ["identity", "show", "-w", str(ws), SA])
    assert shown.exit_code == 0 and "RSA 2048" in shown.stdout and OWNER in shown.stdout
    listed = runner.invoke(app, ["identity", "list", "-w", str(ws)])
    assert "ml-training-pipeline" in listed.stdout
    bad = runner.invoke(app, ["identity", "suspend", "-w", str(ws), 'Agent::"nobody"'])
    assert bad.exit_code == 5 and "identity_not_found" in bad.stderr
    with StateDesk(ws) as desk:  # the default --by is the login name
        assert desk.changes()[0].by


def test_a_change_the_audit_log_cannot_record_is_refused_and_changes_nothing(
    ws: Path, tmp_path: Path
) -> None:
    """With ``[audit] required`` and an audit log that cannot be opened, ``identity add`` exits 4
    (audit_unavailable) and registers nothing (the audit log is checked before the store is
    written; found when the registry met the fail-closed operator events)."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    toml = ws / "vigil.toml"
    toml.write_text(toml.read_text() + f'\n[audit]\nrequired = true\npath = "{blocker / "audit.jsonl"}"\n')
    result = runner.invoke(
        app, ["identity", "add", BOT, "-w", str(ws), "--owner", OWNER, "--purpose", PURPOSE, "--json"]
    )
    assert result.exit_code == 4, result.output
    assert "audit_unavailable" in result.output
    with StateDesk(ws) as desk:
        assert desk.identities.list() == []
