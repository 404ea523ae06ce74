"""The analyser on the labelled iam-vulnerable snapshot (the issue's acceptance figures) and
``vigil paths`` through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.escalation_support import allow, export, user
from tests.vendored import DATASETS, require
from vigil.cli.main import app
from vigil.evaluation.paths import evaluate, markdown

SNAPSHOT = DATASETS / "iam-vulnerable-authz-snapshot" / "account_authorization_details.json"
runner = CliRunner()


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    require(SNAPSHOT)
    return evaluate(DATASETS)


@pytest.mark.parametrize("part", ["tuning", "held_out"])
def test_precision_and_recall_at_least_95_percent(result: dict[str, Any], part: str) -> None:
    r = result[part]["default"]
    assert r["precision"] >= 0.95 and r["recall"] >= 0.95, r


def test_requires_resource_answered_conditional(result: dict[str, Any]) -> None:
    assert result["all"]["requires_resource_conditional"]["share"] >= 0.9


def test_every_trap_by_name(result: dict[str, Any]) -> None:
    traps = result["traps"]
    names = {n.split("-")[0] for n in traps}
    assert names == {"fp1", "fp2", "fp3", "fp4", "fp5", "fn1", "fn2", "fn3", "fn4"}
    assert all(t["ok"] for t in traps.values()), {n: t for n, t in traps.items() if not t["ok"]}


def test_each_positive_path_uses_its_labelled_method(result: dict[str, Any]) -> None:
    used = result["all"]["labelled_method_used"]
    assert used["used"] == used["n"]


def test_analysed_in_under_ten_seconds(result: dict[str, Any]) -> None:
    assert result["analysis_seconds"] < 10


def test_the_report_is_markdown(result: dict[str, Any]) -> None:
    text = markdown(result)
    assert "| held_out | default |" in text and "fp1-allow-and-deny-user" in text


def _run(*args: str, code: int = 0) -> Any:
    res = runner.invoke(app, ["paths", *args], env={"COLUMNS": "250"})
    assert res.exit_code == code, res.output
    return res


def test_cli_lists_principals_that_reach_admin() -> None:
    out = _run("--iam", str(SNAPSHOT), "--at", "2026-12-01T00:00:00Z").stdout
    assert "privesc4-CreateAccessKey-user" in out and "reaches_admin" in out
    assert "fp1-allow-and-deny-user" not in out
    assert "fp1-allow-and-deny-user" in _run("--iam", str(SNAPSHOT), "--all").stdout


def test_cli_json_for_one_principal() -> None:
    data = json.loads(
        _run("--iam", str(SNAPSHOT), "--from", "privesc-AssumeRole-starting-role", "--json").stdout
    )
    (entry,) = data["principals"]
    assert entry["verdict"] == "reaches_admin" and entry["kind"] == "role"
    steps = entry["paths"][0]["steps"]
    assert [s["method"] for s in steps] == ["sts-001", "sts-001", "admin"]
    assert set(steps[0]) == {"from", "to", "method", "action", "via", "requires"}
    assert steps[0]["via"][0].startswith("trust AssumeRolePolicyDocument")


def test_cli_paths_to_a_named_target() -> None:
    out = _run(
        "--iam",
        str(SNAPSHOT),
        "--from",
        "privesc-AssumeRole-starting-role",
        "--to",
        "privesc-AssumeRole-ending-role",
    ).stdout
    assert "assumes privesc-AssumeRole-intermediate-role" in out


def test_cli_summary_json_counts_verdicts() -> None:
    data = json.loads(_run("--iam", str(SNAPSHOT), "--all", "--json").stdout)
    assert sum(data["summary"].values()) == len(data["principals"]) == 127


def test_cli_require_credentials_makes_delegated_grants_conditional(tmp_path: Path) -> None:
    f = tmp_path / "e.json"
    f.write_text(
        json.dumps(
            export(
                users=[
                    user("a"),
                    user("b", allow("iam:AttachUserPolicy", "arn:aws:iam::123456789012:user/a")),
                ]
            )
        )
    )
    default = json.loads(_run("--iam", str(f), "--from", "b", "--json").stdout)
    narrow = json.loads(_run("--iam", str(f), "--from", "b", "--json", "--require-credentials").stdout)
    assert default["principals"][0]["verdict"] == "reaches_admin"
    assert narrow["principals"][0]["verdict"] == "conditional"


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["--iam", "/nonexistent.json"], 2, "invalid_iam_export"),
        (["--iam", "{bad}"], 2, "invalid_iam_export"),
        (["--iam", "{snap}", "--from", "nobody"], 5, "principal_not_found"),
        (["--iam", "{snap}", "--to", "obama"], 2, "invalid_argument"),
        (["--iam", "{snap}", "--at", "yesterday"], 2, "invalid_time"),
    ],
)
def test_cli_errors_use_the_error_table(tmp_path: Path, args: list[str], code: int, error: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"UserDetailList": [{"Arn": 5}]}')
    args = [a.replace("{snap}", str(SNAPSHOT)).replace("{bad}", str(bad)) for a in args]
    res = _run(*args, "--json", code=code)
    assert json.loads(res.stdout)["error"]["code"] == error
    plain = _run(*args, code=code)
    assert error in plain.stderr


def test_the_output_does_not_depend_on_the_hash_seed() -> None:
    """The example grantee of a grant on many principals was the first of a set (its order moves
    with PYTHONHASHSEED: seeds 11 and 13 picked fp1-allow-and-deny-user, whose own Deny keeps an
    admin policy given to it from making it admin). Now: the same one for every seed, a
    principal without an explicit Deny first."""
    import os
    import subprocess
    import sys

    vigil = Path(sys.executable).parent / "vigil"
    outs = set()
    for seed in ("11", "13", "7"):
        p = subprocess.run(
            [str(vigil), "paths", "--iam", str(SNAPSHOT), "--at", "2026-12-01T00:00:00Z"],
            env={**os.environ, "PYTHONHASHSEED": seed, "COLUMNS": "250"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr
        assert "fp1-allow-and-deny-user" not in p.stdout
        outs.add(p.stdout)
    assert len(outs) == 1
