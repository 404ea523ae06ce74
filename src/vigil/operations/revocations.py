"""Operator use cases on revocation: revoke a token by its ``jti``, revoke a delegation (every token
whose chain holds an actor acting for a subject), list what is revoked.

Served to the CLI (``vigil identity revoke-token``, ``revoke-delegation``, ``revocations``)
through :class:`~vigil.operations.service.StateDesk` and to the admin API through the engine (in
effect at the next decision on that node; another process on the same SQLite state sees it at its
next refresh tick). Each revocation is written to the store, its change log and the audit log
(``token_revoked``, ``delegation_revoked``, with ``by``); revoking what is revoked already changes
nothing and is not an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from vigil.errors import RequestError
from vigil.identity.parse import parse_identity_uid, parse_reason, uid_text
from vigil.identity.report import time_text
from vigil.identity.tokens.revocation import Revocations
from vigil.model.uid import EntityUid
from vigil.operations.approvals import check_actor
from vigil.operations.events import uid_dict
from vigil.store.base import ChangeLog, Revocation

MAX_JTI: Final = 256
TOKEN_SUBJECT: Final = ("Token", "")  # the change log's subject of a token revocation: ("Token", jti)


def parse_jti(value: Any) -> str:
    """A token id: 1..256 printable characters; raises RequestError (``invalid_argument``)."""
    if (
        type(value) is not str
        or not 0 < len(value) <= MAX_JTI
        or not value.isprintable()
        or value != value.strip()
    ):
        raise RequestError("a jti is 1..256 printable characters", code="invalid_argument")
    return value


def revocation_dict(r: Revocation) -> dict[str, Any]:
    """A revocation as JSON-ready data."""
    out: dict[str, Any] = {"kind": r.kind}
    if r.kind == "token":
        out["jti"] = r.jti
    else:
        out["actor"] = uid_text(r.actor) if r.actor else ""
        out["subject"] = uid_text(r.subject) if r.subject else ""
    out.update(
        revoked=time_text(r.revoked),
        by=r.by,
        reason=r.reason,
        until=time_text(r.until) if r.until is not None else None,
    )
    return out


class RevocationDesk:
    """Revocations over ``revocations`` (see the module documentation); ``audit``,
    ``recordable`` and ``clock`` as for :class:`~vigil.operations.identities.IdentityDesk`."""

    def __init__(
        self,
        revocations: Revocations,
        changes: ChangeLog,
        *,
        audit: Callable[..., Any],
        clock: Callable[[], float],
        recordable: Callable[[], None] = lambda: None,
    ) -> None:
        self.revocations = revocations
        self._changes = changes
        self._audit = audit
        self._clock = clock
        self._recordable = recordable

    def revoke_token(
        self, jti: Any, *, by: Any, reason: Any = "", until: float | None = None, now: float | None = None
    ) -> tuple[Revocation, bool]:
        """Revoke the token ``jti`` (kept until ``until``, its expiry, when given). Returns the
        revocation and whether it is new. Raises RequestError, StoreError or AuditError."""
        t = self._clock() if now is None else now
        r = Revocation(
            "token",
            jti=parse_jti(jti),
            until=until,
            revoked=t,
            by=check_actor(by),
            reason=parse_reason(reason),
        )
        self._recordable()
        added = self.revocations.add(r)
        if added:
            self._changes.append_change(
                t, "token_revoked", (TOKEN_SUBJECT[0], r.jti), r.by, {"reason": r.reason}
            )
            self._audit("token_revoked", r.by, jti=r.jti, reason=r.reason)
        return r, added

    def revoke_delegation(
        self, actor: Any, subject: Any, *, by: Any, reason: Any = "", now: float | None = None
    ) -> tuple[Revocation, bool]:
        """Revoke every token whose chain holds ``actor`` acting for ``subject`` (uids). Returns the
        revocation and whether it is new. Raises UidError, RequestError, StoreError or AuditError."""
        t = self._clock() if now is None else now
        a: EntityUid = parse_identity_uid(actor)
        s: EntityUid = parse_identity_uid(subject)
        r = Revocation(
            "delegation", actor=a, subject=s, revoked=t, by=check_actor(by), reason=parse_reason(reason)
        )
        self._recordable()
        added = self.revocations.add(r)
        if added:
            self._changes.append_change(
                t, "delegation_revoked", s, r.by, {"actor": uid_text(a), "reason": r.reason}
            )
            self._audit("delegation_revoked", r.by, subject=uid_dict(s), actor=uid_dict(a), reason=r.reason)
        return r, added

    def list(self) -> list[Revocation]:
        """Every revocation held, oldest first (read again from the store)."""
        self.revocations.refresh()
        return self.revocations.items()
