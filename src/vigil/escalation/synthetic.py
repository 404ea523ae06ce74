"""Random IAM estates in the export format, for property tests and the benchmark.

:func:`generate` returns a GetAccountAuthorizationDetails document (plain JSON data) with users,
groups, roles (trust policies naming the account root, a principal, ``*`` or the Lambda service),
customer-managed policies (some with a second, admin version) and inline policies. Statements mix
exact and wildcard actions (``iam:*``, ``iam:Put*``, ``*``), ``NotAction``, exact and wildcard
resources (``arn:aws:iam::1:user/team-a-*``), ``NotResource``, explicit denies, date conditions
that always or never hold, and permission boundaries. Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

ACCOUNT = "111122223333"

_ACTIONS = (
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:PutUserPolicy",
    "iam:AttachUserPolicy",
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:PutGroupPolicy",
    "iam:AttachGroupPolicy",
    "iam:AddUserToGroup",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeleteUserPermissionsBoundary",
    "sts:AssumeRole",
    "iam:PassRole",
    "lambda:CreateFunction",
    "lambda:InvokeFunction",
    "lambda:UpdateFunctionCode",
    "s3:GetObject",
    "ec2:DescribeInstances",
)
_BENIGN = (
    "s3:GetObject",
    "s3:PutObject",
    "ec2:DescribeInstances",
    "dynamodb:GetItem",
    "logs:PutLogEvents",
    "sqs:SendMessage",
    "lambda:InvokeFunction",
)
_WILD_ACTIONS = ("iam:*", "*", "iam:Put*", "iam:Attach*", "iam:Create*", "lambda:*", "sts:*", "s3:*")
_TEAMS = ("team-a", "team-b", "ops")


@dataclass(frozen=True, slots=True)
class Shape:
    """How dense a generated estate is: probabilities of each kind of statement part."""

    wildcard_action: float = 0.15
    not_action: float = 0.05
    wildcard_resource: float = 0.3
    star_resource: float = 0.3
    not_resource: float = 0.05
    deny: float = 0.15
    condition: float = 0.1
    boundary: float = 0.1
    statements: int = 2
    iam_share: float = 1.0


SMALL = Shape()
# Large estates: mostly narrow grants, as in real accounts (few principals hold wildcards).
SPARSE = Shape(
    wildcard_action=0.02,
    not_action=0.005,
    wildcard_resource=0.1,
    star_resource=0.02,
    not_resource=0.005,
    deny=0.05,
    condition=0.05,
    boundary=0.05,
    iam_share=0.15,
)


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"


class _Gen:
    def __init__(
        self, rng: random.Random, shape: Shape, users: list[str], roles: list[str], groups: list[str]
    ):
        self.rng = rng
        self.shape = shape
        self.users = users
        self.roles = roles
        self.groups = groups
        self.policies: list[str] = []

    def resource(self, action: str) -> list[str] | str:
        r, s = self.rng, self.shape
        if r.random() < s.star_resource or not action.startswith(("iam:", "sts:")) or action.endswith("*"):
            return "*"
        kind = r.choice(("user", "role", "group", "policy"))
        pool = {"user": self.users, "role": self.roles, "group": self.groups, "policy": self.policies}[kind]
        if r.random() < s.wildcard_resource or not pool:
            prefix = r.choice((*_TEAMS, ""))
            return f"arn:aws:iam::{r.choice((ACCOUNT, '*'))}:{kind}/{prefix}*"
        return _arn(kind, r.choice(pool))

    def statement(self, effect: str | None = None) -> dict[str, Any]:
        r, s = self.rng, self.shape
        stmt: dict[str, Any] = {"Effect": effect or ("Deny" if r.random() < s.deny else "Allow")}
        if r.random() < s.wildcard_action:
            actions = [r.choice(_WILD_ACTIONS)]
        elif r.random() < s.iam_share:
            actions = r.sample(_ACTIONS, r.randint(1, 3))
        else:
            actions = r.sample(_BENIGN, r.randint(1, 3))
        if r.random() < s.not_action:
            stmt["NotAction"] = actions
        else:
            stmt["Action"] = actions if len(actions) > 1 else actions[0]
        res = self.resource(actions[0])
        if r.random() < s.not_resource and res != "*":
            stmt["NotResource"] = res
        else:
            stmt["Resource"] = res
        if r.random() < s.condition:
            op = r.choice(("DateGreaterThan", "DateLessThan"))
            stmt["Condition"] = {op: {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
        return stmt

    def document(self, n: int | None = None) -> dict[str, Any]:
        n = n if n is not None else self.rng.randint(1, self.shape.statements)
        return {"Version": "2012-10-17", "Statement": [self.statement() for _ in range(n)]}

    def trust(self, name: str) -> dict[str, Any]:
        r = self.rng
        choice = r.random()
        if choice < 0.35:
            principal: Any = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
        elif choice < 0.6 and (self.users or self.roles):
            kind = "user" if self.users and (not self.roles or r.random() < 0.5) else "role"
            other = r.choice(self.users if kind == "user" else self.roles)
            principal = {"AWS": _arn(kind, other)}
        elif choice < 0.85:
            principal = {"Service": "lambda.amazonaws.com"}
        elif choice < 0.9:
            principal = "*"
        else:
            principal = {"Service": "ec2.amazonaws.com"}
        stmts: list[dict[str, Any]] = [
            {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
        ]
        if r.random() < 0.05 and self.users:
            stmts.append(
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": _arn("user", r.choice(self.users))},
                    "Action": "sts:AssumeRole",
                }
            )
        return {"Version": "2012-10-17", "Statement": stmts}


def _names(prefix: str, n: int, rng: random.Random) -> list[str]:
    return [f"{rng.choice(_TEAMS)}-{prefix}{i}" for i in range(n)]


def generate(
    seed: int, *, users: int = 4, roles: int = 3, groups: int = 2, policies: int = 3, shape: Shape = SMALL
) -> dict[str, Any]:
    """A random estate as an export document (see the module docstring); the same for the same
    arguments."""
    rng = random.Random(seed)
    user_names = _names("user", users, rng)
    role_names = _names("role", roles, rng)
    group_names = _names("group", groups, rng)
    gen = _Gen(rng, shape, user_names, role_names, group_names)
    gen.policies = [f"{rng.choice(_TEAMS)}-policy{i}" for i in range(policies)]
    admin_doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    out_policies: list[dict[str, Any]] = []
    for name in gen.policies:
        versions = [{"VersionId": "v1", "IsDefaultVersion": True, "Document": gen.document()}]
        if rng.random() < 0.15:
            versions.append({"VersionId": "v2", "IsDefaultVersion": False, "Document": admin_doc})
        out_policies.append(
            {
                "PolicyName": name,
                "Arn": _arn("policy", name),
                "DefaultVersionId": "v1",
                "PolicyVersionList": versions,
            }
        )
    out_policies.append(
        {
            "PolicyName": "AdministratorAccess",
            "Arn": "arn:aws:iam::aws:policy/AdministratorAccess",
            "DefaultVersionId": "v1",
            "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": True, "Document": admin_doc}],
        }
    )
    all_policy_arns: list[str] = [str(p["Arn"]) for p in out_policies]

    def attached() -> list[dict[str, str]]:
        k = rng.choice((0, 1, 1, 2))
        chosen = rng.sample(all_policy_arns[:-1], min(k, len(all_policy_arns) - 1))
        if rng.random() < 0.03:
            chosen.append(all_policy_arns[-1])
        return [{"PolicyName": a.rsplit("/", 1)[-1], "PolicyArn": a} for a in chosen]

    def inline(owner: str) -> list[dict[str, Any]]:
        if rng.random() < 0.5:
            return []
        return [{"PolicyName": f"{owner}-inline", "PolicyDocument": gen.document()}]

    def boundary() -> dict[str, str] | None:
        if rng.random() >= shape.boundary or not gen.policies:
            return None
        return {
            "PermissionsBoundaryType": "Policy",
            "PermissionsBoundaryArn": _arn("policy", rng.choice(gen.policies)),
        }

    group_list = [
        {
            "GroupName": g,
            "GroupId": f"AGPA{i}",
            "Arn": _arn("group", g),
            "GroupPolicyList": inline(g),
            "AttachedManagedPolicies": attached(),
        }
        for i, g in enumerate(group_names)
    ]
    user_list = []
    for i, u in enumerate(user_names):
        entry: dict[str, Any] = {
            "UserName": u,
            "UserId": f"AIDA{i}",
            "Arn": _arn("user", u),
            "GroupList": rng.sample(group_names, rng.randint(0, min(2, len(group_names)))),
            "UserPolicyList": inline(u),
            "AttachedManagedPolicies": attached(),
        }
        b = boundary()
        if b:
            entry["PermissionsBoundary"] = b
        user_list.append(entry)
    role_list = []
    for i, name in enumerate(role_names):
        entry = {
            "RoleName": name,
            "RoleId": f"AROA{i}",
            "Arn": _arn("role", name),
            "AssumeRolePolicyDocument": gen.trust(name),
            "InstanceProfileList": [],
            "RolePolicyList": inline(name),
            "AttachedManagedPolicies": attached(),
        }
        b = boundary()
        if b:
            entry["PermissionsBoundary"] = b
        role_list.append(entry)
    return {
        "UserDetailList": user_list,
        "GroupDetailList": group_list,
        "RoleDetailList": role_list,
        "Policies": out_policies,
    }
