"""``vigil paths --before OLD``: what an IAM change gives away (and takes away)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.escalation_support import allow, arn, export, group, role, trust, user
from vigil.cli.main import app

runner = CliRunner()
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"


def _write(tmp: Path, name: str, data: dict[str, Any]) -> str:
    path = tmp / name
    path.write_text(json.dumps(data))
    return str(path)


def _estate(team_statements: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return export(
        users=[
            user("boss", managed=(ADMIN_ARN,)),
            user("dev", groups=("team",)),
            user("ci", allow("s3:GetObject")),
        ],
        groups=[group("team", *team_statements)],
        roles=[role("deploy", trust({"AWS": arn("user", "ci")}), allow("s3:*"))],
    )


def test_a_change_that_widens_access_through_a_group(tmp_path: Path) -> None:
    old = _write(tmp_path, "old.json", _estate((allow("s3:GetObject"),)))
    new = _write(tmp_path, "new.json", _estate((allow("iam:CreateAccessKey", arn("user", "boss")),)))
    res = runner.invoke(app, ["paths", "--iam", new, "--before", old, "--json"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.stdout)
    assert data["widened"] is True
    gained = {e["name"]: e for e in data["gained"]}
    assert set(gained) == {"dev", "team"}
    assert gained["dev"]["before"] == "none" and gained["dev"]["after"] == "reaches_admin"
    assert [s["method"] for s in gained["dev"]["path"]["steps"]][-2:] == ["iam-002", "admin"]
    text = runner.invoke(app, ["paths", "--iam", new, "--before", old], env={"COLUMNS": "200"})
    assert text.exit_code == 1 and "dev (user) gains: none -> reaches_admin" in text.stdout


def test_a_change_that_only_narrows(tmp_path: Path) -> None:
    old = _write(tmp_path, "old.json", _estate((allow("iam:CreateAccessKey", arn("user", "boss")),)))
    new = _write(tmp_path, "new.json", _estate((allow("s3:GetObject"),)))
    res = runner.invoke(app, ["paths", "--iam", new, "--before", old, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["widened"] is False and not data["gained"]
    assert {e["name"] for e in data["lost"]} == {"dev", "team"}


def test_no_change(tmp_path: Path) -> None:
    old = _write(tmp_path, "old.json", _estate(()))
    res = runner.invoke(app, ["paths", "--iam", old, "--before", old])
    assert res.exit_code == 0 and "no principal's reach to admin changed" in res.stdout


def test_a_new_principal_that_reaches_admin_is_a_gain(tmp_path: Path) -> None:
    base = _estate(())
    old = _write(tmp_path, "old.json", base)
    base["UserDetailList"].append(user("intruder", allow("iam:PutUserPolicy", arn("user", "intruder"))))
    new = _write(tmp_path, "new.json", base)
    data = json.loads(runner.invoke(app, ["paths", "--iam", new, "--before", old, "--json"]).stdout)
    assert [(e["name"], e["before"], e["after"]) for e in data["gained"]] == [
        ("intruder", "absent", "reaches_admin")
    ]
