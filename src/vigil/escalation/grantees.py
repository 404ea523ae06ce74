"""Who an actor can give admin permissions to, asked one principal at a time.

A grant (``iam:AttachUserPolicy`` on ``*``, ``iam:CreatePolicyVersion`` on policies many principals
attach) may cover thousands of principals; the graph never lists them. It asks ``get(arn)`` about
the few principals the actor can become, and ``first(exclude)`` for one example when it can become
none of them: the same one whatever the order the grant's principals were found in (a set's, which
changes with the interpreter's hash seed), and one with no explicit Deny statement before one with
(an admin policy given to a principal that denies itself something does not make it admin).
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
        best: tuple[str, Grant] | None = None
        rank: tuple[bool, str] | None = None
        for arn, gr in self.found.items():
            if arn in exclude or self.estate.principals[arn].service_linked:
                continue
            r = (denies(self.estate, arn), arn)
            if rank is None or r < rank:
                best, rank = (arn, gr), r
        return best


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
        best: tuple[str, Grant] | None = None
        rank: tuple[bool, str] | None = None
        for pol, gr in self.found.items():
            for holder in self.attached.get(pol, ()):
                if holder in exclude:
                    continue
                r = (denies(self.estate, holder), holder)
                if rank is None or r < rank:
                    best, rank = (holder, gr), r
        return best


def denies(estate: Estate, arn: str) -> bool:
    """Whether principal ``arn`` (or a group it is in) has an explicit Deny statement, inline or in
    an attached managed policy (False for an ARN the estate does not hold)."""
    p = estate.principals.get(arn)
    if p is None:
        return False
    for holder in (p, *(estate.principals[g] for g in p.groups if g in estate.principals)):
        if any(st.effect == "Deny" for st in holder.inline):
            return True
        for pol in holder.managed:
            mp = estate.policies.get(pol)
            if mp is not None and any(st.effect == "Deny" for st in mp.statements):
                return True
    return False


Grantees = Direct | Holders
