"""IAM policy documents as typed statements (IAM JSON policy element reference).

:func:`parse_document` reads one document (an object, or the URL-encoded JSON text the raw API
returns) into :class:`Statement` values: effect, ``Action``/``NotAction``,
``Resource``/``NotResource``, ``Principal``/``NotPrincipal`` (trust policies) and the static truth
of the ``Condition`` block. Each statement remembers where it came from (:class:`Source`) so that a
path can name the statement that grants each step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from vigil.errors import IamExportError
from vigil.escalation.conditions import ConditionVerdict, Truth, judge
from vigil.escalation.patterns import action_matches


@dataclass(frozen=True, slots=True)
class Source:
    """Where a statement lives: ``kind`` is ``inline``, ``managed``, ``boundary`` or ``trust``;
    ``policy`` the inline policy name or the managed policy ARN; ``owner`` the principal holding an
    inline or trust policy; ``version`` the managed policy version."""

    kind: str
    policy: str
    owner: str = ""
    version: str = ""

    def describe(self) -> str:
        """A one-line human name (``managed arn:aws:iam::1:policy/p (v2)``)."""
        text = f"{self.kind} {self.policy}"
        if self.owner and self.kind in ("inline", "trust"):
            text += f" of {self.owner}"
        if self.version:
            text += f" ({self.version})"
        return text


@dataclass(frozen=True, slots=True)
class Principals:
    """A trust statement's ``Principal`` (or ``NotPrincipal``): ``anyone`` for ``"*"``, the AWS
    principal texts (ARNs, account ids, ``*``), service and federated principals."""

    anyone: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Statement:
    """One policy statement. ``actions`` is None when the statement uses ``NotAction`` (then
    ``not_actions`` is set); the same for resources. Identity is by object (statements are shared
    between principals that attach the same policy)."""

    effect: str
    source: Source
    index: int
    sid: str = ""
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    principal: Principals | None = None
    not_principal: Principals | None = None
    condition: ConditionVerdict = field(default_factory=lambda: ConditionVerdict(Truth.ALWAYS))

    @property
    def allow(self) -> bool:
        """True for ``Effect: Allow``."""
        return self.effect == "Allow"

    def covers_action(self, action: str) -> bool:
        """True when the statement's ``Action``/``NotAction`` applies to ``action`` (cached: a
        managed policy's statements are shared by every principal attaching it)."""
        return _covers(self, action)

    def describe(self) -> str:
        """``<source> statement <sid or #index>``: how a path names the statement."""
        label = self.sid if self.sid else f"#{self.index}"
        return f"{self.source.describe()} statement {label}"


@lru_cache(maxsize=1 << 18)
def _covers(stmt: Statement, action: str) -> bool:
    if stmt.actions is not None:
        return action_matches(stmt.actions, action)
    assert stmt.not_actions is not None
    return not action_matches(stmt.not_actions, action)


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        return tuple(raw)
    raise IamExportError(f"{where} is not a string or a list of strings")


def _principals(raw: Any, where: str) -> Principals:
    if raw == "*":
        return Principals(anyone=True)
    if not isinstance(raw, dict):
        raise IamExportError(f'{where} is not "*" or an object')
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    for key, value in raw.items():
        values = _strings(value, f"{where}.{key}")
        if key == "AWS":
            aws = values
        elif key == "Service":
            service = values
        elif key == "Federated":
            federated = values
        elif key == "CanonicalUser":
            continue
        else:
            raise IamExportError(f"{where} has an unknown principal type {key!r}")
    return Principals(anyone="*" in aws, aws=aws, service=service, federated=federated)


def _statement(raw: Any, source: Source, index: int, now: datetime, where: str) -> Statement:
    if not isinstance(raw, dict):
        raise IamExportError(f"the statement at {where} is not an object")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise IamExportError(f"the statement at {where} has Effect {effect!r}, not Allow or Deny")
    sid = raw.get("Sid", "")
    if not isinstance(sid, str):
        raise IamExportError(f"the Sid at {where} is not a string")
    actions = not_actions = resources = not_resources = None
    if "Action" in raw:
        actions = _strings(raw["Action"], f"{where}.Action")
    if "NotAction" in raw:
        not_actions = _strings(raw["NotAction"], f"{where}.NotAction")
    if (actions is None) == (not_actions is None):
        raise IamExportError(f"the statement at {where} needs exactly one of Action and NotAction")
    if "Resource" in raw:
        resources = _strings(raw["Resource"], f"{where}.Resource")
    if "NotResource" in raw:
        not_resources = _strings(raw["NotResource"], f"{where}.NotResource")
    if resources is not None and not_resources is not None:
        raise IamExportError(f"the statement at {where} has both Resource and NotResource")
    principal = not_principal = None
    if "Principal" in raw:
        principal = _principals(raw["Principal"], f"{where}.Principal")
    if "NotPrincipal" in raw:
        not_principal = _principals(raw["NotPrincipal"], f"{where}.NotPrincipal")
    condition = judge(raw.get("Condition"), now, f"{where}.Condition")
    return Statement(
        effect=effect,
        source=source,
        index=index,
        sid=sid,
        actions=actions,
        not_actions=not_actions,
        resources=resources,
        not_resources=not_resources,
        principal=principal,
        not_principal=not_principal,
        condition=condition,
    )


def parse_document(raw: Any, source: Source, now: datetime, where: str) -> tuple[Statement, ...]:
    """The statements of one policy document, conditions judged at ``now``.

    ``raw`` is an object or its URL-encoded JSON text. Statements whose condition can never hold
    are kept (a path never uses them; ``explain`` can show them). Raises :class:`IamExportError`
    naming ``where`` for anything that is not a policy document.
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(unquote(raw))
        except (ValueError, RecursionError) as e:
            raise IamExportError(f"the policy document at {where} is not JSON") from e
    if not isinstance(raw, dict):
        raise IamExportError(f"the policy document at {where} is not an object")
    statements = raw.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise IamExportError(f"the policy document at {where} has no Statement list")
    return tuple(_statement(s, source, i, now, f"{where}.Statement[{i}]") for i, s in enumerate(statements))
