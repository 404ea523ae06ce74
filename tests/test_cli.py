"""The `vigil` command line: check, decide, replay, policy fmt, --version (CliRunner and the real script)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from vigil import __version__
from vigil.cli import render
from vigil.cli.main import app
from vigil.compiled import summary

FLEET = Path(__file__).resolve().parents[1] / "examples" / "agent-fleet"
runner = CliRunner()

READ = {
    "subject": {"type": "ServiceAccount", "id": "ml-training-pipeline"},
    "action": {"name": "read"},
    "resource": {"type": "Database", "id": "ml-training-sets-prod"},
    "context": {"time": "2026-11-27T00:00:00Z", "ip": "10.40.8.8", "region": "eu-west-1", "hour": 0},
}
SUSPENDED = {
    "subject": {"type": "ServiceAccount", "id": "legacy-report-cron"},
    "action": {"name": "read"},
    "resource": {"type": "Database", "id": "warehouse-prod"},
    "context": {"time": "2026-11-27T00:05:00Z", "ip": "10.40.8.25", "region": "eu-west-1", "hour": 0},
}


def copy_fleet(dest: Path) -> Path:
    shutil.copytree(FLEET, dest, ignore=shutil.ignore_patterns(".vigil", "events.jsonl"))
    return dest


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_fleet(tmp_path_factory.mktemp("cli") / "agent-fleet")


@pytest.fixture(scope="module")
def events_500(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("events") / "events-500.jsonl"
    with (FLEET / "events.jsonl").open("rb") as src:
        path.write_bytes(b"".join(itertools.islice(src, 500)))
    return path


def invoke(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=input)


def assert_authzen_response(obj: Any) -> None:
    assert set(obj) == {"decision", "context"} and isinstance(obj["decision"], bool)
    ctx = obj["context"]
    assert isinstance(ctx["id"], str) and ctx["id"]
    assert isinstance(ctx["reason_codes"], list) and ctx["reason_codes"]
    assert isinstance(ctx["risk"], int) and 0 <= ctx["risk"] <= 100
    assert isinstance(ctx["signals"], list) and isinstance(ctx["advice"], list)


def test_version() -> None:
    result = invoke("--version")
    # the version and whether the hot path runs compiled (vigil.compiled)
    assert result.exit_code == 0 and result.stdout.strip() == f"vigil {__version__} ({summary()})"


# -- check --------------------------------------------------------------------------------------
def test_check_table(fleet: Path) -> None:
    result = invoke("check", "--workspace", str(fleet))
    assert result.exit_code == 0, result.output
    # Each figure on its own row ("22" alone would be found inside "223").
    rows = {
        cells[0]: cells[1]
        for line in result.stdout.splitlines()
        if len(cells := [c.strip() for c in line.strip("│┃ ").split("│")]) == 2 and cells[0]
    }
    assert rows["policies"] == "22"
    assert rows["compiled"] == "22"
    assert rows["fallback (cedarpy)"] == "0"
    assert rows["entities"].startswith("223 ")
    assert rows["schema"] == "yes"
    assert "policy revision" in rows
    assert "without an @id" not in result.stdout
    assert not (fleet / ".vigil").exists()  # check writes nothing, not even audit


def test_check_json(fleet: Path) -> None:
    result = invoke("check", "-w", str(fleet), "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert (report["policies"], report["compiled"], report["fallback"]) == (22, 22, 0)
    assert report["entities"] == 223 and report["schema"] is True
    assert len(report["policy_files"]) == 6 and report["policies_without_id"] == []
    assert len(report["policy_revision"]) == 16


def test_check_warns_about_policies_without_id(tmp_path: Path) -> None:
    ws = copy_fleet(tmp_path / "ws")
    (ws / "policies" / "90-anonymous.cedar").write_text(
        'permit (principal, action == Action::"list", resource is McpTool);\n'
    )
    result = invoke("check", "-w", str(ws))
    assert result.exit_code == 0, result.output
    assert "without an @id" in result.stdout and "policies/90-anonymous.cedar:1" in result.stdout
    report = json.loads(invoke("check", "-w", str(ws), "--json").stdout)
    assert report["policies_without_id"] == [
        {"policy": "policy22", "location": "policies/90-anonymous.cedar:1"}
    ]


def test_check_refuses_a_bad_workspace_with_every_problem(tmp_path: Path) -> None:
    ws = copy_fleet(tmp_path / "ws")
    (ws / "policies" / "99-bad.cedar").write_text(
        "permit (principal, action, resource) when { x == };\n\nforbid (principal, action resource);\n"
    )
    result = invoke("check", "-w", str(ws))
    assert result.exit_code == 3
    assert "policies/99-bad.cedar:1:" in result.stdout and "policies/99-bad.cedar:3:" in result.stdout
    data = json.loads(invoke("check", "-w", str(ws), "--json").stdout)
    assert data["ok"] is False and data["error"]["code"] == "invalid_workspace"
    assert len(data["error"]["problems"]) == 2
    assert invoke("check", "-w", str(tmp_path / "missing")).exit_code == 3


def test_check_lists_fallbacks() -> None:
    report = {
        "workspace": "ws", "policy_revision": "r", "policy_files": ["policies/a.cedar"], "policies": 2,
        "compiled": 1, "fallback": 1, "entities": 0, "entity_files": [], "schema": False,
        "behaviour_mode": "enforce", "policies_without_id": [], "validation_warnings": [],
        "fallbacks": [{"policy": "p-odd", "reason": "unsupported: [thing]", "location": "policies/a.cedar:7"}],
    }  # fmt: skip
    console = Console(record=True, width=200)
    render.render_check(console, report)
    text = console.export_text()
    assert "p-odd" in text and "unsupported: [thing]" in text and "policies/a.cedar:7" in text


# -- decide -------------------------------------------------------------------------------------
def test_decide_allow_readably(fleet: Path) -> None:
    result = invoke("decide", "-w", str(fleet), json.dumps(READ), "--now", "2026-11-27T00:00:00Z")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "ALLOW" in out and "policy_permit" in out and "permitted by policy" in out
    assert "permit-team-reads" in out and "policies/10-reads.cedar:" in out
    assert "decision id" in out and "latency" in out and "µs" in out


def test_decide_deny_exits_zero(fleet: Path) -> None:
    result = invoke("decide", "-w", str(fleet), json.dumps(SUSPENDED))
    assert result.exit_code == 0, result.output
    assert (
        "DENY" in result.stdout
        and "policy_forbid" in result.stdout
        and "forbidden by policy" in result.stdout
    )
    assert "forbid-suspended-identity" in result.stdout and "policies/00-guardrails.cedar:" in result.stdout


def test_decide_json_from_file_and_stdin(fleet: Path, tmp_path: Path) -> None:
    req = tmp_path / "req.json"
    req.write_text(json.dumps(SUSPENDED))
    for args, stdin in ((["@" + str(req)], None), (["-"], json.dumps(SUSPENDED))):
        result = invoke("decide", "-w", str(fleet), "--json", *args, input=stdin)
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert_authzen_response(body)
        assert body["decision"] is False and body["context"]["policies"] == ["forbid-suspended-identity"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["not json"], "invalid_request"),
        (['{"subject": 1}'], "invalid_request"),
        (["@/nonexistent/req.json"], "invalid_request"),
        ([json.dumps(READ), "--now", "yesterday"], "invalid_time"),
        ([json.dumps(READ), "--now", "2026-11-27T00:00:00"], "invalid_time"),
    ],
)
def test_decide_bad_request_exits_2(fleet: Path, args: list[str], code: str) -> None:
    result = invoke("decide", "-w", str(fleet), *args)
    assert result.exit_code == 2 and code in result.stderr
    body = json.loads(invoke("decide", "-w", str(fleet), "--json", *args).stdout)
    assert body["error"]["code"] == code


def test_decide_bad_workspace_exits_3(tmp_path: Path) -> None:
    result = invoke("decide", "-w", str(tmp_path / "missing"), json.dumps(READ))
    assert result.exit_code == 3 and "not a directory" in result.stderr


# -- replay -------------------------------------------------------------------------------------
def test_replay_to_file(tmp_path: Path, events_500: Path) -> None:
    ws = copy_fleet(tmp_path / "ws")
    out = tmp_path / "decisions.jsonl"
    result = invoke("replay", "-w", str(ws), "--input", str(events_500), "--output", str(out))
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 500
    for ln in lines:
        assert_authzen_response(json.loads(ln))
    assert "decisions" in result.stdout and "500" in result.stdout and "decisions / s" in result.stdout
    assert not (ws / ".vigil").exists()  # a dry run: no audit log, no state database


def test_replay_to_stdout_with_bad_lines(fleet: Path, tmp_path: Path) -> None:
    src = tmp_path / "mixed.jsonl"
    src.write_text(
        "\n".join([json.dumps(READ), "oops", "", json.dumps({**READ, "context": {}}), json.dumps(SUSPENDED)])
    )
    result = invoke("replay", "-w", str(fleet), "-i", str(src))
    assert result.exit_code == 1
    outputs = [json.loads(ln) for ln in result.stdout.splitlines()]
    assert len(outputs) == 4
    assert outputs[0]["decision"] is True and outputs[3]["decision"] is False
    assert outputs[1] == {
        "line": 2,
        "error": {"code": "invalid_json", "message": outputs[1]["error"]["message"]},
    }
    assert outputs[2]["line"] == 4 and outputs[2]["error"]["code"] == "invalid_time"
    assert "2 bad line(s)" in result.stderr and "bad lines" in result.stderr  # table on stderr
    assert "line 2: invalid_json" in result.stderr


def test_replay_from_stdin(fleet: Path) -> None:
    result = invoke("replay", "-w", str(fleet), "-i", "-", "--quiet", input=json.dumps(READ) + "\n")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["decision"] is True


def test_replay_missing_input_or_workspace(fleet: Path, tmp_path: Path) -> None:
    result = invoke("replay", "-w", str(fleet), "-i", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2 and "cannot read input" in result.stderr
    assert invoke("replay", "-w", str(tmp_path / "missing"), "-i", "-").exit_code == 3


def test_replay_console_script(tmp_path: Path, events_500: Path) -> None:
    """The installed `vigil` script, as a user runs it, on a copy of the example workspace."""
    script = shutil.which("vigil", path=str(Path(sys.executable).parent)) or shutil.which("vigil")
    assert script, "the vigil console script is not installed"
    ws = copy_fleet(tmp_path / "ws")
    out = tmp_path / "decisions.jsonl"
    proc = subprocess.run(
        [script, "replay", "--workspace", str(ws), "--input", str(events_500), "--output", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == len(events_500.read_text().splitlines()) == 500
    decisions = [json.loads(ln) for ln in lines]
    for d in decisions:
        assert_authzen_response(d)
    assert len({d["context"]["id"] for d in decisions}) == 500
    assert "decisions" in proc.stdout and "500" in proc.stdout
    assert "\x1b[" not in proc.stderr  # no progress bar when not a terminal


# -- policy fmt ---------------------------------------------------------------------------------
UGLY = '@id("p")\npermit(principal,action,resource)when{context.hour>=9};\n'


def test_fmt_prints_formatted(tmp_path: Path) -> None:
    f = tmp_path / "a.cedar"
    f.write_text(UGLY)
    result = invoke("policy", "fmt", str(f))
    assert result.exit_code == 0
    assert "permit (principal, action, resource)" in result.stdout and "context.hour >= 9" in result.stdout
    assert f.read_text() == UGLY


def test_fmt_check_and_write(tmp_path: Path) -> None:
    ugly, tidy = tmp_path / "ugly.cedar", tmp_path / "tidy.cedar"
    ugly.write_text(UGLY)
    tidy.write_text(invoke("policy", "fmt", str(ugly)).stdout)
    result = invoke("policy", "fmt", "--check", str(ugly), str(tidy))
    assert (
        result.exit_code == 1 and f"would reformat {ugly}" in result.stderr and str(tidy) not in result.stderr
    )
    assert ugly.read_text() == UGLY
    assert invoke("policy", "fmt", "--write", str(ugly), str(tidy)).exit_code == 0
    assert ugly.read_text() == tidy.read_text()
    assert invoke("policy", "fmt", "--check", str(ugly), str(tidy)).exit_code == 0
    assert invoke("policy", "fmt", "--check", "--write", str(ugly)).exit_code == 2


def test_fmt_parse_error_exits_2_with_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cedar"
    bad.write_text(
        "permit (principal, action, resource);\n\nforbid (principal, action, resource) when { x == };\n"
    )
    result = invoke("policy", "fmt", "--write", str(bad))
    assert result.exit_code == 2 and f"{bad}:3:" in result.stderr
    assert invoke("policy", "fmt", str(tmp_path / "none.cedar")).exit_code == 2


def test_fmt_example_policies_stay_valid(tmp_path: Path) -> None:
    ws = copy_fleet(tmp_path / "ws")
    files = sorted(str(p) for p in (ws / "policies").glob("*.cedar"))
    assert invoke("policy", "fmt", "--write", *files).exit_code == 0
    assert invoke("policy", "fmt", "--check", *files).exit_code == 0
    report = json.loads(invoke("check", "-w", str(ws), "--json").stdout)
    assert report["policies"] == 22 and report["compiled"] == 22


def test_replay_refuses_to_overwrite_its_input(fleet: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(READ) + "\n")
    result = invoke("replay", "-w", str(fleet), "-i", str(src), "-o", str(src))
    assert result.exit_code == 2 and "is the input file" in result.stderr
    assert src.read_text() == json.dumps(READ) + "\n"
