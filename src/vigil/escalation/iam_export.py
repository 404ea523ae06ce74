"""Read an AWS IAM export (``aws iam get-account-authorization-details`` JSON) into an :class:`Estate`.

The four lists of the GetAccountAuthorizationDetails response are read: ``UserDetailList``,
``GroupDetailList``, ``RoleDetailList`` (trust policies, instance profiles, permission boundaries)
and ``Policies`` (managed policies with every version). Policy documents may be objects or the
URL-encoded text the raw API returns. Anything else is refused with :class:`IamExportError` naming
the JSON path; the reader never raises anything but that.

A managed policy that principals attach but the export leaves out (an AWS-managed policy filtered
away) is kept as *missing*; the few AWS-managed policies that matter for admin
(``AdministratorAccess``, ``IAMFullAccess``) are known by name and filled in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vigil.errors import IamExportError
from vigil.escalation.policy import Source, Statement, parse_document

_KNOWN_AWS_MANAGED: dict[str, dict[str, Any]] = {
    "AdministratorAccess": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    "IAMFullAccess": {"Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]},
}


@dataclass(slots=True)
class ManagedPolicy:
    """A managed policy: its versions' statements and which one is the default. ``aws_managed`` for
    the ``arn:aws:iam::aws:policy/`` namespace (customers cannot version those)."""

    arn: str
    name: str
    default_version: str
    versions: dict[str, tuple[Statement, ...]]
    aws_managed: bool
    missing: bool = False

    @property
    def statements(self) -> tuple[Statement, ...]:
        """The default version's statements (empty for a policy the export does not contain)."""
        return self.versions.get(self.default_version, ())


@dataclass(slots=True)
class Principal:
    """A user, group or role. ``kind`` is ``user``, ``group`` or ``role``; ``inline`` the statements
    of its inline policies; ``managed`` the ARNs of its attached managed policies; ``groups`` (users)
    the ARNs of its groups; ``trust`` (roles) the trust policy; ``boundary`` a permission-boundary
    policy ARN; ``instance_profile`` (roles) whether an instance profile holds the role."""

    arn: str
    name: str
    kind: str
    account: str
    id: str = ""
    inline: tuple[Statement, ...] = ()
    managed: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    trust: tuple[Statement, ...] = ()
    boundary: str | None = None
    instance_profile: bool = False
    service_linked: bool = False


@dataclass(slots=True)
class Estate:
    """One or more accounts' IAM principals and managed policies, keyed by ARN."""

    principals: dict[str, Principal] = field(default_factory=dict)
    policies: dict[str, ManagedPolicy] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Principal]:
        """The principals of one kind (``user``, ``group``, ``role``) in export order."""
        return [p for p in self.principals.values() if p.kind == kind]

    def attached_to(self) -> dict[str, list[str]]:
        """Managed policy ARN -> ARNs of the principals it is attached to."""
        out: dict[str, list[str]] = {}
        for p in self.principals.values():
            for arn in p.managed:
                out.setdefault(arn, []).append(p.arn)
        return out


def _str(obj: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise IamExportError(f"{where}.{key} is missing or not a string")
    return value


def _list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise IamExportError(f"{where}.{key} is not a list")
    return value


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise IamExportError(f"{where} is not an object")
    return value


def account_of(arn: str, where: str) -> str:
    """The account id of an IAM ARN (``arn:aws:iam::123456789012:user/x`` -> ``123456789012``).

    Raises :class:`IamExportError` when ``arn`` is not an ARN.
    """
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise IamExportError(f"{where} {arn!r} is not an ARN")
    return parts[4]


def _inline(obj: dict[str, Any], key: str, owner: str, now: datetime, where: str) -> list[Statement]:
    out: list[Statement] = []
    for i, item in enumerate(_list(obj, key, where)):
        w = f"{where}.{key}[{i}]"
        item = _obj(item, w)
        name = _str(item, "PolicyName", w)
        out.extend(
            parse_document(
                item.get("PolicyDocument"), Source("inline", name, owner), now, f"{w}.PolicyDocument"
            )
        )
    return out


def _attached(obj: dict[str, Any], where: str) -> tuple[str, ...]:
    arns: list[str] = []
    for i, item in enumerate(_list(obj, "AttachedManagedPolicies", where)):
        w = f"{where}.AttachedManagedPolicies[{i}]"
        arns.append(_str(_obj(item, w), "PolicyArn", w))
    return tuple(dict.fromkeys(arns))


def _boundary(obj: dict[str, Any], where: str) -> str | None:
    raw = obj.get("PermissionsBoundary")
    if raw is None:
        return None
    return _str(
        _obj(raw, f"{where}.PermissionsBoundary"), "PermissionsBoundaryArn", f"{where}.PermissionsBoundary"
    )


def _policy(raw: Any, now: datetime, where: str) -> ManagedPolicy:
    obj = _obj(raw, where)
    arn = _str(obj, "Arn", where)
    account_of(arn, f"{where}.Arn")
    name = _str(obj, "PolicyName", where, required=False) or arn.rsplit("/", 1)[-1]
    default = _str(obj, "DefaultVersionId", where, required=False)
    versions: dict[str, tuple[Statement, ...]] = {}
    for i, v in enumerate(_list(obj, "PolicyVersionList", where)):
        w = f"{where}.PolicyVersionList[{i}]"
        v = _obj(v, w)
        vid = _str(v, "VersionId", w)
        versions[vid] = parse_document(
            v.get("Document"), Source("managed", arn, version=vid), now, f"{w}.Document"
        )
        if v.get("IsDefaultVersion") is True and not default:
            default = vid
    if not default and len(versions) == 1:
        default = next(iter(versions))
    return ManagedPolicy(arn, name, default, versions, aws_managed=":iam::aws:policy/" in arn)


def _principal(raw: Any, kind: str, now: datetime, where: str, groups_by_name: dict[str, str]) -> Principal:
    obj = _obj(raw, where)
    name_key = {"user": "UserName", "group": "GroupName", "role": "RoleName"}[kind]
    id_key = {"user": "UserId", "group": "GroupId", "role": "RoleId"}[kind]
    arn = _str(obj, "Arn", where)
    name = _str(obj, name_key, where)
    account = account_of(arn, f"{where}.Arn")
    inline_key = {"user": "UserPolicyList", "group": "GroupPolicyList", "role": "RolePolicyList"}[kind]
    p = Principal(
        arn=arn,
        name=name,
        kind=kind,
        account=account,
        id=_str(obj, id_key, where, required=False),
        inline=tuple(_inline(obj, inline_key, arn, now, where)),
        managed=_attached(obj, where),
        boundary=_boundary(obj, where),
    )
    if kind == "user":
        names = [g for g in _list(obj, "GroupList", where)]
        if not all(isinstance(g, str) for g in names):
            raise IamExportError(f"{where}.GroupList is not a list of group names")
        p.groups = tuple(groups_by_name.get(g, f"arn:aws:iam::{account}:group/{g}") for g in names)
    if kind == "role":
        trust_raw = obj.get("AssumeRolePolicyDocument")
        if trust_raw is not None:
            p.trust = parse_document(
                trust_raw,
                Source("trust", "AssumeRolePolicyDocument", arn),
                now,
                f"{where}.AssumeRolePolicyDocument",
            )
        p.instance_profile = bool(_list(obj, "InstanceProfileList", where))
        p.service_linked = "/aws-service-role/" in arn
    return p


def parse_export(data: Any, now: datetime) -> Estate:
    """The estate described by a parsed GetAccountAuthorizationDetails document.

    ``now`` is the instant at which date conditions are judged. Raises :class:`IamExportError` for a
    document of another shape, a duplicate ARN or a malformed policy.
    """
    root = _obj(data, "$")
    if not any(k in root for k in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")):
        raise IamExportError("$ has none of UserDetailList, GroupDetailList, RoleDetailList, Policies")
    estate = Estate()
    for i, raw in enumerate(_list(root, "Policies", "$")):
        pol = _policy(raw, now, f"$.Policies[{i}]")
        estate.policies[pol.arn] = pol
    groups_by_name: dict[str, str] = {}
    for raw in _list(root, "GroupDetailList", "$"):
        if (
            isinstance(raw, dict)
            and isinstance(raw.get("GroupName"), str)
            and isinstance(raw.get("Arn"), str)
        ):
            groups_by_name[raw["GroupName"]] = raw["Arn"]
    for key, kind in (("GroupDetailList", "group"), ("UserDetailList", "user"), ("RoleDetailList", "role")):
        for i, raw in enumerate(_list(root, key, "$")):
            where = f"$.{key}[{i}]"
            p = _principal(raw, kind, now, where, groups_by_name)
            if p.arn in estate.principals:
                raise IamExportError(f"{where}.Arn {p.arn!r} appears twice")
            estate.principals[p.arn] = p
    # Managed policies that are attached (or used as boundaries) but not in the export.
    wanted = {a for p in estate.principals.values() for a in p.managed}
    wanted |= {p.boundary for p in estate.principals.values() if p.boundary}
    for arn in sorted(wanted - estate.policies.keys()):
        name = arn.rsplit("/", 1)[-1]
        known = _KNOWN_AWS_MANAGED.get(name) if ":iam::aws:policy/" in arn else None
        if known is not None:
            stmts = parse_document(known, Source("managed", arn, version="v1"), now, f"<known {name}>")
            estate.policies[arn] = ManagedPolicy(arn, name, "v1", {"v1": stmts}, aws_managed=True)
        else:
            estate.policies[arn] = ManagedPolicy(
                arn, name, "", {}, aws_managed=":iam::aws:policy/" in arn, missing=True
            )
    return estate


def load_export(path: Path, now: datetime) -> Estate:
    """The estate in the export file at ``path`` (see :func:`parse_export`).

    Raises :class:`IamExportError` when the file cannot be read, is not UTF-8 JSON or is not an
    export.
    """
    try:
        text = path.read_bytes()
    except OSError as e:
        raise IamExportError(f"cannot read the IAM export {str(path)!r}: {e.strerror or e}") from e
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise IamExportError(f"the IAM export {str(path)!r} is not JSON: {e}") from e
    except RecursionError as e:
        raise IamExportError(f"the IAM export {str(path)!r} is nested too deeply") from e
    return parse_export(data, now)
