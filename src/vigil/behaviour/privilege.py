"""Privilege classes of actions: ``read < write < admin``, and which actions are *sensitive*.

The workspace says it: ``[behaviour] read_actions / write_actions / admin_actions`` list action
groups or actions (``"mutating"`` matches ``Action::"mutating"`` and every action ``in`` it; a full
uid ``'Action::"mutating"'`` works too); the highest class that matches wins. ``sensitive_actions``
(plus every admin action) are the steps ``escalation_chain`` counts.

An action the workspace does not classify is classified by its name when ``classify_by_name`` is
on (the default): the verb after any ``service:`` prefix (``iam:CreateAccessKey`` ->
``createaccesskey``). Verbs that read (``get``, ``list``, ``describe``, ...) are read; names that
touch identities, keys, roles, policies or permissions are admin and sensitive; everything else
writes. Without ``classify_by_name`` an unclassified action is read (it can never raise
``privilege_drift``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from vigil.model.uid import EntityUid
from vigil.policy.entities import EntityStore

READ: Final = 0
WRITE: Final = 1
ADMIN: Final = 2
CLASS_NAMES: Final = ("read", "write", "admin")
CACHE_LIMIT: Final = 65_536

_READ_VERBS: Final = (
    "get",
    "list",
    "describe",
    "read",
    "head",
    "search",
    "query",
    "lookup",
    "select",
    "scan",
    "view",
    "download",
    "batchget",
    "filter",
    "check",
    "estimate",
    "simulate",
    "preview",
    "fetch",
    "export",
    "count",
    "watch",
)
# Names that change who may do what: identities, credentials, roles, policies, permissions.
_ADMIN_WORDS: Final = (
    "grant",
    "revoke",
    "policy",
    "role",
    "permission",
    "accesskey",
    "createkey",
    "serviceaccountkey",
    "loginprofile",
    "password",
    "credential",
    "federationtoken",
    "sessiontoken",
    "trustanchor",
    "usertogroup",
    "userfromgroup",
    "createuser",
    "deleteuser",
    "mfadevice",
    "impersonat",
    "iam",
    "acl",
    "sharing",
    "share",
)
# Reads that hand out secrets or credentials: read class, but sensitive (an escalation step).
_SECRET_READS: Final = (
    "secretvalue",
    "passworddata",
    "decrypt",
    "getparameter",
    "getsecret",
    "federationtoken",
    "sessiontoken",
)
# Writes that blind defenders or open a door: write class, but sensitive.
_SENSITIVE_WRITES: Final = (
    "stoplogging",
    "deletetrail",
    "eventselectors",
    "flowlogs",
    "leaveorganization",
    "publickey",
    "securitygroupingress",
    "snapshotattribute",
    "imageattribute",
    "userdata",
    "disable",
    "deletedetector",
    "loggroup",
)


def name_class(action_id: str) -> tuple[int, bool]:
    """``(class, sensitive)`` of an action by its name (see the module docstring)."""
    verb = action_id.rsplit(":", 1)[-1].lower().replace("_", "").replace("-", "")
    if verb.startswith(_READ_VERBS):
        return READ, any(w in verb for w in _SECRET_READS)
    if any(w in verb for w in _ADMIN_WORDS):
        return ADMIN, True
    return WRITE, any(w in verb for w in _SENSITIVE_WRITES)


def tool_class(tool: str, hints: Mapping[str, Any] | None, *, raise_only: bool = False) -> tuple[int, bool]:
    """``(class, sensitive)`` of a tool call (``Action::"call_tool"`` on ``Tool::"NAME.tool"``):
    the tool, not the action, says what the call does. The tool's name after its upstream prefix
    is read as an action's (:func:`name_class`: ``list_files`` read, ``delete_table`` write,
    ``grant_role`` admin); the MCP annotations then decide (``readOnlyHint`` true: read;
    ``destructiveHint`` true: write and sensitive, or admin when the name says so). With
    ``raise_only`` (hints an upstream published, not the operator) they may raise the class and
    sensitivity, never lower them."""
    name = tool.rsplit(".", 1)[-1]
    cls, sensitive = name_class(name)
    if hints:
        if hints.get("readOnlyHint") is True and not raise_only:
            return READ, sensitive
        if hints.get("destructiveHint") is True:
            return max(cls, WRITE), True
    return cls, sensitive


def _names(items: Iterable[str]) -> tuple[set[str], set[EntityUid]]:
    plain: set[str] = set()
    full: set[EntityUid] = set()
    for item in items:
        if "::" in item:
            etype, _, rest = item.rpartition("::")
            full.add((etype, rest.strip('"')))
        else:
            plain.add(item)
    return plain, full


class ActionClasses:
    """Class and sensitivity of every action (workspace groups first, then names); cached."""

    __slots__ = ("_admin", "_by_name", "_read", "_sensitive", "_store", "_write", "cache")

    def __init__(
        self,
        store: EntityStore | None,
        *,
        read: Iterable[str] = (),
        write: Iterable[str] = (),
        admin: Iterable[str] = (),
        sensitive: Iterable[str] = (),
        by_name: bool = True,
    ) -> None:
        self._store = store
        self._read = _names(read)
        self._write = _names(write)
        self._admin = _names(admin)
        self._sensitive = _names(sensitive)
        self._by_name = by_name
        self.cache: dict[EntityUid, tuple[int, bool]] = {}

    def get(self, action: EntityUid) -> tuple[int, bool]:
        """``(class, sensitive)`` of ``action``."""
        got = self.cache.get(action)
        if got is None:
            got = self._classify(action)
            if len(self.cache) >= CACHE_LIMIT:
                self.cache.clear()
            self.cache[action] = got
        return got

    def _classify(self, action: EntityUid) -> tuple[int, bool]:
        uids = {action}
        if self._store is not None:
            uids |= self._store.ancestors(action)

        def matches(names: tuple[set[str], set[EntityUid]]) -> bool:
            plain, full = names
            return any(u in full or u[1] in plain for u in uids)

        sensitive = matches(self._sensitive)
        if matches(self._admin):
            return ADMIN, True
        if matches(self._write):
            return WRITE, sensitive
        if matches(self._read):
            return READ, sensitive
        if self._by_name:
            cls, named_sensitive = name_class(action[1])
            return cls, sensitive or named_sensitive
        return READ, sensitive
