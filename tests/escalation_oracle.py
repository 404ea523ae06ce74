"""A brute-force reference for the escalation graph: a fixpoint over the raw export JSON.

Written apart from ``vigil.escalation`` (it shares only the list of admin probe actions, which is a
definition, not logic): statements are matched straight from the JSON with regular expressions, no
indexes, no caches, no graph. ``reach(export)`` returns the principals that reach admin without
conditions and those that reach it at all, for the rules the synthetic estates exercise (see
``vigil.escalation.synthetic``: date conditions that always or never hold, no policy variables,
only Lambda and EC2 service trust, no instance profiles).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from vigil.escalation.methods import ADMIN_PROBE_ACTIONS


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _glob(pattern: str, value: str, ci: bool) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.S | (re.I if ci else 0)) is not None


def _cond(st: dict[str, Any], now: datetime) -> bool:
    for op, keys in (st.get("Condition") or {}).items():
        for _key, value in keys.items():
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if op == "DateGreaterThan" and not now > when:
                return False
            if op == "DateLessThan" and not now < when:
                return False
    return True


def _covers(st: dict[str, Any], action: str) -> bool:
    if "Action" in st:
        return any(_glob(p, action, True) for p in _list(st["Action"]))
    return not any(_glob(p, action, True) for p in _list(st["NotAction"]))


def _on(st: dict[str, Any], resource: str) -> bool:
    if "Resource" in st:
        return any(_glob(p, resource, False) for p in _list(st["Resource"]))
    if "NotResource" in st:
        return not any(_glob(p, resource, False) for p in _list(st["NotResource"]))
    return False


class Oracle:
    def __init__(self, export: dict[str, Any], now: datetime) -> None:
        self.now = now
        self.policies = {p["Arn"]: p for p in export["Policies"]}
        self.groups = {g["Arn"]: g for g in export["GroupDetailList"]}
        group_by_name = {g["GroupName"]: g["Arn"] for g in export["GroupDetailList"]}
        self.kind: dict[str, str] = {}
        self.raw: dict[str, dict[str, Any]] = {}
        self.member: dict[str, list[str]] = {}
        for kind, key in (
            ("group", "GroupDetailList"),
            ("user", "UserDetailList"),
            ("role", "RoleDetailList"),
        ):
            for p in export[key]:
                self.kind[p["Arn"]] = kind
                self.raw[p["Arn"]] = p
                self.member[p["Arn"]] = [group_by_name[g] for g in p.get("GroupList", [])]
        self.account = {a: a.split(":")[4] for a in self.kind}

    def _default(self, arn: str) -> list[dict[str, Any]]:
        pol = self.policies[arn]
        for v in pol["PolicyVersionList"]:
            if v["VersionId"] == pol["DefaultVersionId"]:
                return [s for s in _list(v["Document"]["Statement"]) if _cond(s, self.now)]
        return []

    def _own(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for key in ("UserPolicyList", "GroupPolicyList", "RolePolicyList"):
            for inline in p.get(key, []):
                out += [s for s in _list(inline["PolicyDocument"]["Statement"]) if _cond(s, self.now)]
        for a in p.get("AttachedManagedPolicies", []):
            out += self._default(a["PolicyArn"])
        return out

    def statements(self, arn: str) -> list[dict[str, Any]]:
        out = self._own(self.raw[arn])
        for g in self.member[arn]:
            out += self._own(self.groups[g])
        return out

    def boundary(self, arn: str) -> list[dict[str, Any]] | None:
        b = self.raw[arn].get("PermissionsBoundary")
        return None if b is None else self._default(b["PermissionsBoundaryArn"])

    @staticmethod
    def _decide(stmts: list[dict[str, Any]], action: str, resource: str) -> bool:
        hits = [s for s in stmts if _covers(s, action) and _on(s, resource)]
        return not any(s["Effect"] == "Deny" for s in hits) and any(s["Effect"] == "Allow" for s in hits)

    def allowed(self, arn: str, action: str, resource: str, *, bounded: bool = True) -> bool:
        if not self._decide(self.statements(arn), action, resource):
            return False
        b = self.boundary(arn) if bounded else None
        return b is None or self._decide(b, action, resource)

    @staticmethod
    def _some(stmts: list[dict[str, Any]], action: str) -> bool:
        allows = [
            s
            for s in stmts
            if s["Effect"] == "Allow" and _covers(s, action) and ("Resource" in s or "NotResource" in s)
        ]
        denies = [
            s
            for s in stmts
            if s["Effect"] == "Deny" and _covers(s, action) and "*" in _list(s.get("Resource", []))
        ]
        return bool(allows) and not denies

    def some(self, arn: str, action: str) -> bool:
        b = self.boundary(arn)
        return self._some(self.statements(arn), action) and (b is None or self._some(b, action))

    def admin(self, arn: str, *, bounded: bool = True) -> bool:
        probe = f"arn:aws:iam::{self.account[arn]}:vigil-probe/any"
        return all(self.allowed(arn, a, probe, bounded=bounded) for a in ADMIN_PROBE_ACTIONS)

    def _version_admin(self, stmts: list[dict[str, Any]]) -> bool:
        probe = "arn:aws:iam::0:vigil-probe/any"
        return all(self._decide(stmts, a, probe) for a in ADMIN_PROBE_ACTIONS)

    def _trusts(self, role: str, x: str) -> bool:
        x_root = f"arn:aws:iam::{self.account[x]}:root"
        doc = self.raw[role]["AssumeRolePolicyDocument"]
        allowed = False
        for s in _list(doc["Statement"]):
            if not _covers(s, "sts:AssumeRole") or not _cond(s, self.now):
                continue
            pr = s.get("Principal")
            names = [] if pr == "*" or not isinstance(pr, dict) else _list(pr.get("AWS", []))
            anyone = pr == "*" or "*" in names
            if s["Effect"] == "Deny":
                if anyone or x in names or x_root in names or self.account[x] in names:
                    return False
                continue
            if anyone or x in names:
                allowed = allowed or not self._identity_denies(x, role)
            elif x_root in names or self.account[x] in names:
                allowed = allowed or self.allowed(x, "sts:AssumeRole", role)
        return allowed

    def _identity_denies(self, x: str, role: str) -> bool:
        return any(
            s["Effect"] == "Deny" and _covers(s, "sts:AssumeRole") and _on(s, role)
            for s in self.statements(x)
        )

    def _service_roles(self, service: str) -> list[str]:
        out = []
        for arn, kind in self.kind.items():
            if kind != "role":
                continue
            for s in _list(self.raw[arn]["AssumeRolePolicyDocument"]["Statement"]):
                pr = s.get("Principal")
                if (
                    s["Effect"] == "Allow"
                    and isinstance(pr, dict)
                    and service in _list(pr.get("Service", []))
                    and _covers(s, "sts:AssumeRole")
                    and _cond(s, self.now)
                ):
                    out.append(arn)
        return out

    def reach(self) -> tuple[set[str], set[str]]:
        """(reaches admin unconditionally, reaches admin at all)."""
        users = [a for a, k in self.kind.items() if k == "user"]
        roles = [a for a, k in self.kind.items() if k == "role"]
        groups = [a for a, k in self.kind.items() if k == "group"]
        customer = [a for a in self.policies if ":iam::aws:policy/" not in a]
        attached = {
            a
            for p in self.raw.values()
            for a in (m["PolicyArn"] for m in p.get("AttachedManagedPolicies", []))
        }
        lambda_roles = self._service_roles("lambda.amazonaws.com")

        def grants(x: str) -> bool:
            for targets, actions in (
                (users, ("iam:PutUserPolicy", "iam:AttachUserPolicy")),
                (roles, ("iam:PutRolePolicy", "iam:AttachRolePolicy")),
                (groups, ("iam:PutGroupPolicy", "iam:AttachGroupPolicy")),
            ):
                if any(self.allowed(x, a, t) for t in targets for a in actions):
                    return True
            for m in customer:
                if m not in attached:
                    continue
                if self.allowed(x, "iam:CreatePolicyVersion", m):
                    return True
                pol = self.policies[m]
                others = [v for v in pol["PolicyVersionList"] if v["VersionId"] != pol["DefaultVersionId"]]
                if any(
                    self._version_admin(_list(v["Document"]["Statement"])) for v in others
                ) and self.allowed(x, "iam:SetDefaultPolicyVersion", m):
                    return True
            for targets, actions in (
                (users, ("iam:DeleteUserPermissionsBoundary", "iam:PutUserPermissionsBoundary")),
                (roles, ("iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary")),
            ):
                for t in targets:
                    unbounded_admin = self.boundary(t) is not None and self.admin(t, bounded=False)
                    if unbounded_admin and any(self.allowed(x, a, t) for a in actions):
                        return True
            return False

        def step(x: str, into: set[str], conditional: bool) -> bool:
            if self.kind[x] == "user" and any(g in into for g in self.member[x]):
                return True
            for u in users:
                if (
                    u != x
                    and u in into
                    and any(
                        self.allowed(x, a, u)
                        for a in ("iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile")
                    )
                ):
                    return True
            for r in roles:
                if r != x and r in into and self.allowed(x, "iam:UpdateAssumeRolePolicy", r):
                    return True
                if r != x and r in into and self.kind[x] != "group" and self._trusts(r, x):
                    return True
            for g in groups:
                if g in into and g not in self.member[x] and self.allowed(x, "iam:AddUserToGroup", g):
                    return True
            creates = self.some(x, "lambda:CreateFunction")
            if creates:
                for r in lambda_roles:
                    if r == x or r not in into or not self.allowed(x, "iam:PassRole", r):
                        continue
                    if self.some(x, "lambda:InvokeFunction") or self.some(x, "lambda:AddPermission"):
                        return True
                    if self.some(x, "lambda:CreateEventSourceMapping") and (
                        conditional or self.some(x, "dynamodb:CreateTable")
                    ):
                        return True
            existing = any(
                self.some(x, a) for a in ("lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration")
            )
            return bool(conditional and existing and any(r in into for r in lambda_roles))

        base = {x for x in self.kind if self.admin(x) or grants(x)}
        out: list[set[str]] = []
        for conditional in (False, True):
            reached = set(base)
            changed = True
            while changed:
                changed = False
                for x in self.kind:
                    if x not in reached and step(x, reached, conditional):
                        reached.add(x)
                        changed = True
            out.append(reached)
        return out[0], out[1]
