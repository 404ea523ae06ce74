"""Who an actor can give admin permissions to, asked one principal at a time.

A grant (``iam:AttachUserPolicy`` on ``*``, ``iam:CreatePolicyVersion`` on policies many principals
attach) may cover thousands of principals; the graph never lists them. It asks ``get(arn)`` about
the few principals the actor can become, and ``first(exclude)`` for one example when it can become
none of them.
"""

from __future__ import annotations

from vigil.escalation.iam_export import Estate
from vigil.escalation.permissions import Grant


class Direct:
    """Grantees given directly: principal ARN -> grant (service-linked roles left out: nobody can
    change their permissions)."""

    def __init__(self, found: dict[str, Grant], estate: Estate) -> None:
        self.found = found
        self.estate = estate

    def get(self, arn: str) -> Grant | None:
        gr = self.found.get(arn)
        if gr is None or self.estate.principals[arn].service_linked:
            return None
        return gr

    def first(self, exclude: set[str]) -> tuple[str, Grant] | None:
        for arn, gr in self.found.items():
            if arn not in exclude and not self.estate.principals[arn].service_linked:
                return arn, gr
        return None


class Holders:
    """Grantees through managed policies: whoever has one of the policies ``found`` (policy ARN
    -> grant) attached."""

    def __init__(self, found: dict[str, Grant], estate: Estate, attached: dict[str, list[str]]) -> None:
        self.found = found
        self.estate = estate
        self.attached = attached

    def get(self, arn: str) -> Grant | None:
        for pol in self.estate.principals[arn].managed:
            gr = self.found.get(pol)
            if gr is not None:
                return gr
        return None

    def first(self, exclude: set[str]) -> tuple[str, Grant] | None:
        for pol, gr in self.found.items():
            for holder in self.attached.get(pol, ()):
                if holder not in exclude:
                    return holder, gr
        return None


Grantees = Direct | Holders
