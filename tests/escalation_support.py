"""Small hand-written IAM exports for the escalation tests."""

from __future__ import annotations

from typing import Any

ACCT = "123456789012"


def arn(kind: str, name: str, account: str = ACCT) -> str:
    return f"arn:aws:iam::{account}:{kind}/{name}"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


ADMIN = doc(allow("*"))


def user(
    name: str,
    *statements: dict[str, Any],
    groups: tuple[str, ...] = (),
    managed: tuple[str, ...] = (),
    boundary: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "UserName": name,
        "UserId": f"AIDA{name.upper()}",
        "Arn": arn("user", name),
        "GroupList": list(groups),
        "UserPolicyList": [{"PolicyName": f"{name}-inline", "PolicyDocument": doc(*statements)}]
        if statements
        else [],
        "AttachedManagedPolicies": [{"PolicyName": m.rsplit("/", 1)[-1], "PolicyArn": m} for m in managed],
    }
    if boundary:
        out["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": boundary}
    return out


def role(
    name: str,
    trust: dict[str, Any],
    *statements: dict[str, Any],
    managed: tuple[str, ...] = (),
    profile: bool = False,
    boundary: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "RoleName": name,
        "RoleId": f"AROA{name.upper()}",
        "Arn": arn("role", name),
        "AssumeRolePolicyDocument": trust,
        "InstanceProfileList": [{"InstanceProfileName": name}] if profile else [],
        "RolePolicyList": [{"PolicyName": f"{name}-inline", "PolicyDocument": doc(*statements)}]
        if statements
        else [],
        "AttachedManagedPolicies": [{"PolicyName": m.rsplit("/", 1)[-1], "PolicyArn": m} for m in managed],
    }
    if boundary:
        out["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": boundary}
    return out


def group(name: str, *statements: dict[str, Any], managed: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "GroupName": name,
        "GroupId": f"AGPA{name.upper()}",
        "Arn": arn("group", name),
        "GroupPolicyList": [{"PolicyName": f"{name}-inline", "PolicyDocument": doc(*statements)}]
        if statements
        else [],
        "AttachedManagedPolicies": [{"PolicyName": m.rsplit("/", 1)[-1], "PolicyArn": m} for m in managed],
    }


def trust(principal: Any, *, effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    return doc({"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole", **extra})


def policy(name: str, *versions: dict[str, Any], default: str = "v1", account: str = ACCT) -> dict[str, Any]:
    p_arn = f"arn:aws:iam::{account}:policy/{name}"
    return {
        "PolicyName": name,
        "Arn": p_arn,
        "DefaultVersionId": default,
        "PolicyVersionList": [
            {"VersionId": f"v{i}", "IsDefaultVersion": f"v{i}" == default, "Document": d}
            for i, d in enumerate(versions, 1)
        ],
    }


def export(
    users: list[Any] = (), roles: list[Any] = (), groups: list[Any] = (), policies: list[Any] = ()
) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "UserDetailList": list(users),
        "GroupDetailList": list(groups),
        "RoleDetailList": list(roles),
        "Policies": list(policies),
    }
