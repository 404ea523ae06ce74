"""``[escalation] aws_iam`` (issue 15, "precomputed when the workspace (or the IAM import) loads"):
the users' and roles' reach of an ``aws iam get-account-authorization-details`` export, given to
policies as ``context.vigil.reach`` for the ``IamUser`` / ``IamRole`` principals the CloudTrail
importer names by ARN. On the vendored iam-vulnerable snapshot, with its labels."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vigil.audit import MemorySink
from vigil.engine import Engine
from vigil.errors import WorkspaceError
from vigil.escalation.iam_export import load_export
from vigil.escalation.reach import aws_reach
from vigil.importers.cloudtrail import to_request

SNAPSHOT = Path(__file__).resolve().parent.parent / "vendor" / "datasets" / "iam-vulnerable-authz-snapshot"
POLICIES = """
@id("permit-all")
permit (principal, action, resource);

@id("no-writes-for-who-can-become-admin")
forbid (principal, action == Action::"s3:PutObject", resource)
when { context.vigil has reach && context.vigil.reach.verdict == "reaches_admin" };
"""


def _labels() -> dict[str, str]:
    data = json.loads((SNAPSHOT / "principal_labels.json").read_text())
    return {p["arn"]: p["label"] for p in data["principals"]}


def _pick() -> tuple[str, str]:
    """A role that reaches admin (labelled so) and a role with no escalation (labelled so)."""
    reach, _ = aws_reach(load_export(SNAPSHOT / "account_authorization_details.json", datetime.now(UTC)))
    labels = _labels()
    up = next(
        u[1]
        for u, v in reach.items()
        if u[0] == "IamRole"
        and v["reach"]["verdict"] == "reaches_admin"
        and labels.get(u[1]) == "escalation_to_admin"
    )
    down = next(
        u[1]
        for u, v in reach.items()
        if u[0] == "IamRole" and v["reach"]["verdict"] == "none" and labels.get(u[1]) == "no_escalation"
    )
    return up, down


def _workspace(root: Path, roles: tuple[str, ...], toml: str) -> Path:
    (root / "policies").mkdir(parents=True)
    (root / "entities").mkdir()
    (root / "iam").mkdir()
    shutil.copy(SNAPSHOT / "account_authorization_details.json", root / "iam" / "export.json")
    (root / "policies" / "p.cedar").write_text(POLICIES)
    entities: list[dict[str, Any]] = [
        {"uid": {"type": "IamRole", "id": r}, "attrs": {}, "parents": []} for r in roles
    ]
    (root / "entities" / "e.json").write_text(json.dumps(entities))
    (root / "vigil.toml").write_text(toml + '\n[store]\nbackend = "memory"\n\n[audit]\nsink = "none"\n')
    return root


def _put(role: str) -> dict[str, Any]:
    account = role.split(":")[4]
    return to_request(
        {
            "eventTime": "2026-10-05T10:00:00Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": "PutObject",
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "10.1.2.3",
            "userIdentity": {
                "type": "AssumedRole",
                "arn": f"arn:aws:sts::{account}:assumed-role/{role.rsplit('/', 1)[1]}/session",
                "accountId": account,
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role}},
            },
            "requestParameters": {"bucketName": "prod-data", "key": "report.csv"},
        }
    )


def test_a_cloudtrail_call_of_a_role_that_can_become_admin_meets_its_reach(tmp_path: Path) -> None:
    up, down = _pick()
    toml = '[behaviour]\nmode = "off"\n\n[escalation]\nreach = true\naws_iam = "iam/export.json"\n'
    engine = Engine.from_workspace(_workspace(tmp_path, (up, down), toml), audit=MemorySink())
    try:
        reach = engine.workspace.reach
        assert reach is not None
        assert reach.reach(("IamRole", up)) == {
            "verdict": "reaches_admin",
            "distance": reach.reach(("IamRole", up))["distance"],  # type: ignore[index]
            "privileged": reach.reach(("IamRole", up))["privileged"],  # type: ignore[index]
        }
        assert reach.reach(("IamRole", up))["distance"] >= 1  # type: ignore[index]
        assert reach.reach(("IamRole", down))["verdict"] == "none"  # type: ignore[index]
        denied = engine.decide(_put(up))
        assert not denied.allowed and denied.policies == ("no-writes-for-who-can-become-admin",)
        assert engine.decide(_put(down)).allowed
    finally:
        engine.close()


def test_without_the_export_nobody_has_reach(tmp_path: Path) -> None:
    up, down = _pick()
    toml = '[behaviour]\nmode = "off"\n\n[escalation]\nreach = true\n'
    engine = Engine.from_workspace(_workspace(tmp_path, (up, down), toml), audit=MemorySink())
    try:
        assert engine.decide(_put(up)).allowed  # no reach: the forbid's `has` guard is false
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("escalation", "problem"),
    [
        ('reach = true\naws_iam = "iam/missing.json"', "cannot read the IAM export"),
        ('reach = true\naws_iam = "policies/p.cedar"', "is not JSON"),
        ('aws_iam = "iam/export.json"', "aws_iam needs reach = true"),
        ("reach = true\naws_iam = 3", "aws_iam must be the path"),
    ],
)
def test_a_bad_export_refuses_the_workspace(tmp_path: Path, escalation: str, problem: str) -> None:
    toml = f'[behaviour]\nmode = "off"\n\n[escalation]\n{escalation}\n'
    with pytest.raises(WorkspaceError, match=problem):
        Engine.from_workspace(_workspace(tmp_path, (), toml), audit=MemorySink())


def test_a_cloudtrail_call_that_is_a_step_of_a_path_to_admin_raises_escalation_path(tmp_path: Path) -> None:
    """The snapshot's privesc4 user can create an access key for users that can become admin:
    that CloudTrail call is an ``escalation_path`` step; a key for a user on no path is not."""
    estate = load_export(SNAPSHOT / "account_authorization_details.json", datetime.now(UTC))
    records, steps = aws_reach(estate)
    actor = next(arn for arn in estate.principals if arn.endswith(":user/privesc4-CreateAccessKey-user"))
    mine = steps[("IamUser", actor)]
    account = actor.split(":")[4]
    onto = sorted(
        r[1] for (a, r) in mine if a == ("Action", "iam:CreateAccessKey") and r[1].split(":")[4] == account
    )
    assert onto, "the CreateAccessKey step leads somewhere"
    target = onto[0]
    bystander = next(
        arn
        for arn, p in estate.principals.items()
        if p.kind == "user"
        and records[("IamUser", arn)]["reach"]["verdict"] == "none"
        and arn not in onto
        and arn.split(":")[4] == account
    )
    toml = '[behaviour]\nmode = "shadow"\n\n[escalation]\nreach = true\naws_iam = "iam/export.json"\n'
    root = _workspace(tmp_path, (), toml)
    users = [
        {"uid": {"type": "IamUser", "id": u}, "attrs": {}, "parents": []} for u in (actor, target, bystander)
    ]
    (root / "entities" / "e.json").write_text(json.dumps(users))
    engine = Engine.from_workspace(root, audit=MemorySink())
    try:

        def create_key_for(user: str) -> Any:
            account = actor.split(":")[4]
            return engine.decide(
                to_request(
                    {
                        "eventTime": "2026-10-05T10:00:00Z",
                        "eventSource": "iam.amazonaws.com",
                        "eventName": "CreateAccessKey",
                        "awsRegion": "us-east-1",
                        "sourceIPAddress": "10.1.2.3",
                        "userIdentity": {
                            "type": "IAMUser",
                            "arn": actor,
                            "accountId": account,
                            "userName": "x",
                        },
                        "requestParameters": {"userName": user.rsplit("/", 1)[1]},
                    }
                )
            )

        on_path = create_key_for(target)
        assert "escalation_path" in on_path.signals, on_path.explanations()
        why = " ".join(on_path.explanations())
        assert "iam-002" in why and target in why
        assert "escalation_path" not in create_key_for(bystander).signals
    finally:
        engine.close()
