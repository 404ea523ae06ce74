"""``[escalation]`` of ``vigil.toml``: which Cedar actions change privilege, and what admin is
(parsed and checked here, called by :mod:`vigil.workspace.settings`; docs/escalation.md).

```toml
[escalation]
# action id (or Cedar uid text for a namespaced action) -> escalation method
privilege_actions = { assume_role = "assume", act_for = "assume", create_key = "create_key", add_member = "add_member" }
# admin: holding one of these actions on any entity, or being in (or being) one of these entities
admin = ['Action::"grant"', 'Team::"platform-admins"']
# forbids (by policy id) an identity acting normally passes where they read the request context
context_guards = ["forbid-outside-allowed-network"]
# the entity types that act (default: [identity] types)
principals = ["Agent", "ServiceAccount"]
# context.vigil.reach and the escalation_path signal at decision time (off by default)
reach = true
# the most requests the graph build may decide for it (refused beyond: escalation_too_large)
reach_max_checks = 250000
# also the reach of AWS principals (IamUser / IamRole entities named by ARN, as the CloudTrail
# importer names them), from an `aws iam get-account-authorization-details` export (workspace-relative)
aws_iam = "iam/account-authorization-details.json"
```

Methods: ``assume`` (the principal acts as the resource, an identity), ``create_key`` (it can
authenticate as the resource, an identity), ``add_member`` and ``grant`` (the resource is a group
or role, an entity identities are ``in``: the principal can put itself in it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vigil.model.uid import EntityUid

METHODS = ("assume", "create_key", "add_member", "grant")
BECOME_METHODS = frozenset(("assume", "create_key"))
JOIN_METHODS = frozenset(("add_member", "grant"))
DEFAULT_PRIVILEGE_ACTIONS: Mapping[str, str] = {
    "assume": "assume",
    "assume_role": "assume",
    "act_for": "assume",
    "create_key": "create_key",
    "add_member": "add_member",
}
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TYPE = re.compile(rf"{_NAME}(?:::{_NAME})*\Z")
_UID = re.compile(rf'({_NAME}(?:::{_NAME})*)::"((?:[^"\\]|\\["\\])*)"\Z')
_KEYS = ("privilege_actions", "admin", "context_guards", "principals", "reach", "reach_max_checks", "aws_iam")
DEFAULT_REACH_MAX_CHECKS = 250_000
_MAX_CHECKS_CEILING = 1_000_000_000


@dataclass(frozen=True, slots=True)
class EscalationSettings:
    """``[escalation]``: ``privilege_actions`` action uid -> method; ``admin`` the uids that make
    an identity admin (actions it holds on any entity, entities it is or is ``in``);
    ``context_guards`` forbid policy ids assumed not to fire where they read the context;
    ``principals`` the entity types that act (empty: ``[identity] types``); ``reach``: compute
    each identity's reach when the workspace loads, for ``context.vigil.reach`` and the
    ``escalation_path`` signal (docs/escalation.md, "At decision time"); ``reach_max_checks``: the
    most requests that computation may decide (beyond it the workspace is refused); ``aws_iam``:
    an IAM export (path relative to the workspace, "" none) whose users' and roles' reach is added
    for ``IamUser`` / ``IamRole`` entities named by ARN."""

    privilege_actions: Mapping[EntityUid, str] = field(
        default_factory=lambda: {("Action", k): v for k, v in DEFAULT_PRIVILEGE_ACTIONS.items()}
    )
    admin: tuple[EntityUid, ...] = ()
    context_guards: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()
    reach: bool = False
    reach_max_checks: int = DEFAULT_REACH_MAX_CHECKS
    aws_iam: str = ""

    @property
    def admin_actions(self) -> frozenset[EntityUid]:
        """The admin entries that are actions (type ``Action`` or ``NS::Action``)."""
        return frozenset(u for u in self.admin if _is_action(u[0]))

    @property
    def admin_entities(self) -> frozenset[EntityUid]:
        """The admin entries that are groups or identities."""
        return frozenset(u for u in self.admin if not _is_action(u[0]))


def _is_action(etype: str) -> bool:
    return etype == "Action" or etype.endswith("::Action")


def parse_uid_text(text: Any) -> EntityUid | None:
    """``Type::"id"`` -> ``(type, id)`` (``\\"`` and ``\\\\`` escapes), None when malformed."""
    if type(text) is not str or len(text) > 2_048:
        return None
    m = _UID.match(text)
    if m is None:
        return None
    eid = m.group(2).replace('\\"', '"').replace("\\\\", "\\")
    return (m.group(1), eid) if eid else None


def _action_uid(text: str) -> EntityUid | None:
    if _TYPE.match(text) and "::" not in text:
        return ("Action", text)
    uid = parse_uid_text(text)
    return uid if uid is not None and _is_action(uid[0]) else None


def parse_escalation(body: Any, path: str, problems: list[str]) -> EscalationSettings:
    """The ``[escalation]`` table; problems are appended (``path: [escalation] ...``)."""
    where = f"{path}: [escalation]"
    if not isinstance(body, dict):
        problems.append(f"{where} must be a table")
        return EscalationSettings()
    for key in body:
        if key not in _KEYS:
            problems.append(f"{path}: unknown key {key!r} in [escalation]")
    out = EscalationSettings()
    actions: dict[EntityUid, str] | None = None
    raw = body.get("privilege_actions")
    if raw is not None:
        actions = {}
        if not isinstance(raw, dict):
            problems.append(f"{where} privilege_actions must be a table of action = method")
        else:
            for name, method in raw.items():
                uid = _action_uid(name)
                if uid is None:
                    problems.append(
                        f"{where} privilege_actions: {name!r} is not an action id (create_key) "
                        'or action uid (NS::Action::"create_key")'
                    )
                elif method not in METHODS:
                    problems.append(
                        f"{where} privilege_actions: {name} = {method!r}: the method must be one of "
                        + ", ".join(METHODS)
                    )
                else:
                    actions[uid] = method
    admin: list[EntityUid] = []
    raw = body.get("admin", [])
    if not isinstance(raw, list):
        problems.append(
            f"{where} admin must be a list of Cedar uids ('Action::\"grant\"', 'Team::\"admins\"')"
        )
        raw = []
    for item in raw:
        uid = parse_uid_text(item)
        if uid is None:
            problems.append(f"{where} admin: {str(item)[:80]!r} is not a Cedar uid like 'Team::\"admins\"'")
        else:
            admin.append(uid)
    guards = _strings(body, "context_guards", where, problems)
    principals = _strings(body, "principals", where, problems)
    for t in principals:
        if not _TYPE.match(t):
            problems.append(f"{where} principals: {t!r} is not an entity type name")
    reach = body.get("reach", False)
    if type(reach) is not bool:
        problems.append(f"{where} reach must be true or false")
        reach = False
    max_checks = body.get("reach_max_checks", DEFAULT_REACH_MAX_CHECKS)
    if type(max_checks) is not int or not 1 <= max_checks <= _MAX_CHECKS_CEILING:
        problems.append(f"{where} reach_max_checks must be an integer from 1 to {_MAX_CHECKS_CEILING}")
        max_checks = DEFAULT_REACH_MAX_CHECKS
    aws_iam = body.get("aws_iam", "")
    if type(aws_iam) is not str or len(aws_iam) > 4_096 or "\0" in aws_iam:
        problems.append(f"{where} aws_iam must be the path of an IAM export (a string)")
        aws_iam = ""
    elif aws_iam and not reach:
        problems.append(f"{where} aws_iam needs reach = true (it adds AWS principals' reach)")
    return EscalationSettings(
        privilege_actions=out.privilege_actions if actions is None else actions,
        admin=tuple(dict.fromkeys(admin)),
        context_guards=guards,
        principals=principals,
        reach=reach,
        reach_max_checks=max_checks,
        aws_iam=aws_iam,
    )


def _strings(body: dict[str, Any], key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    raw = body.get(key, [])
    if not isinstance(raw, list) or not all(type(x) is str and x for x in raw):
        problems.append(f"{where} {key} must be a list of non-empty strings")
        return ()
    return tuple(raw)
