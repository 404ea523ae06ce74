"""The operator use cases on approvals, quarantines and the change log: one :class:`OperatorDesk`
for every way in.

The CLI (``vigil approvals``, ``vigil quarantine``) reaches it through
:class:`~vigil.operations.service.StateDesk` (settings and store only, no policies loaded); the admin
HTTP API through the engine (``Engine.desk``), whose decisions see each change at once. Either way
a change is checked, made, written to the store's change log with ``by`` and, as the same
operator event (:mod:`vigil.operations.events`), to the chained audit log. Where the audit log is
and what happens when it cannot record a change is the host's (its ``recordable`` and ``audit``);
what the change is and what it records is this desk's alone. The identity registry's use cases are
:class:`~vigil.operations.identities.IdentityDesk`, shared the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from vigil.errors import RequestError
from vigil.model.uid import EntityUid
from vigil.operations.approvals import Approvals
from vigil.operations.events import ticket_details, uid_dict
from vigil.operations.identities import Audit
from vigil.operations.quarantine import Quarantine
from vigil.store import Change, QuarantineEntry, Store, Ticket

MAX_CHANGE_PAGE: Final = 1_000
DEFAULT_CHANGE_PAGE: Final = 100


def change_page(before: Any, limit: Any) -> tuple[int | None, int]:
    """A page of the change log, newest first: ``before`` (a ``seq``, exclusive; None: the newest)
    and ``limit`` (1..1000) checked; raises RequestError (``invalid_argument``)."""
    if before is not None and (type(before) is not int or before < 1):
        raise RequestError("'before' must be a positive change number", code="invalid_argument")
    if type(limit) is not int or not 1 <= limit <= MAX_CHANGE_PAGE:
        raise RequestError(f"'limit' must be between 1 and {MAX_CHANGE_PAGE}", code="invalid_argument")
    return before, limit


def check_uid(uid: Any) -> EntityUid:
    """``uid`` when it is a ``(type, id)`` pair of non-empty strings; raises RequestError."""
    if not (
        isinstance(uid, tuple) and len(uid) == 2 and all(type(x) is str and 0 < len(x) <= 1024 for x in uid)
    ):
        raise RequestError("an identity is a (type, id) pair of non-empty strings", code="invalid_argument")
    return uid


class OperatorDesk:
    """Approvals, quarantines and the change log of one state store (see the module documentation).

    ``audit(kind, by, **details)``: writes the operator event after a change (may raise
    AuditError: the change stands, unrecorded); ``recordable()``: called before any change, raises
    AuditError (nothing changed) when the audit log cannot record it; ``approval_ttl()``: how long
    an approval lasts (``[behaviour] approval_ttl_s``, read at each call, so a reload applies).
    Times default to ``clock()``.
    """

    def __init__(
        self,
        approvals: Approvals,
        quarantine: Quarantine,
        store: Store,
        *,
        audit: Audit,
        clock: Callable[[], float],
        approval_ttl: Callable[[], float],
        recordable: Callable[[], None] = lambda: None,
    ) -> None:
        self.approvals = approvals
        self.quarantine = quarantine
        self.store = store
        self._audit = audit
        self._clock = clock
        self._approval_ttl = approval_ttl
        self._recordable = recordable

    def now(self) -> float:
        """The time changes are stamped with when none is given (epoch seconds)."""
        return self._clock()

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    # -- approvals -----------------------------------------------------------------------------
    def tickets(
        self, *, state: str | None = None, subject: EntityUid | None = None, now: float | None = None
    ) -> list[Ticket]:
        """Approval tickets, oldest first, by state at ``now`` and/or subject."""
        return self.approvals.list(state=state, subject=subject, now=self._now(now))

    def approve(
        self, ticket_id: str, *, by: str, note: str = "", now: float | None = None, uses: int = 1
    ) -> Ticket:
        """Approve a pending ticket for ``uses`` requests from its bound context within the
        approval TTL. Raises NotFoundError, ConflictError, RequestError, StoreError or AuditError."""
        self._recordable()
        ttl = self._approval_ttl()
        t = self.approvals.approve(ticket_id, by=by, now=self._now(now), ttl_s=ttl, note=note, uses=uses)
        self._audit("ticket_approved", by, **ticket_details(t), note=note, uses=uses)
        return t

    def deny(self, ticket_id: str, *, by: str, note: str = "", now: float | None = None) -> Ticket:
        """Deny a pending ticket. Raises NotFoundError, ConflictError, RequestError, StoreError or
        AuditError."""
        self._recordable()
        t = self.approvals.deny(ticket_id, by=by, now=self._now(now), note=note)
        self._audit("ticket_denied", by, **ticket_details(t), note=note)
        return t

    # -- quarantine ----------------------------------------------------------------------------
    def quarantined(self) -> list[QuarantineEntry]:
        """Quarantined identities, oldest first."""
        return self.quarantine.list()

    def add(
        self, subject: EntityUid, *, by: str, reason: str = "", now: float | None = None
    ) -> QuarantineEntry:
        """Quarantine ``subject`` by hand (idempotent). Raises RequestError, StoreError (then it
        holds in this process's memory only: :meth:`Quarantine.durable`) or AuditError."""
        check_uid(subject)
        self._recordable()
        q = self.quarantine.add(subject, by=by, reason=reason, now=self._now(now))
        self._audit("quarantine_added", by, subject=uid_dict(subject), reason=reason)
        return q

    def lift(
        self, subject: EntityUid, *, by: str, note: str = "", now: float | None = None
    ) -> QuarantineEntry:
        """Lift the quarantine of ``subject``. Raises NotFoundError, RequestError, StoreError or
        AuditError."""
        check_uid(subject)
        self._recordable()
        q = self.quarantine.lift(subject, by=by, note=note, now=self._now(now))
        self._audit("quarantine_lifted", by, subject=uid_dict(subject), note=note)
        return q

    # -- the change log ------------------------------------------------------------------------
    def changes(self, *, after: int = 0, limit: int = 1_000) -> list[Change]:
        """The audited changes of approvals, quarantines and identities, oldest first."""
        return self.store.changes(after=after, limit=limit)

    def recent_changes(self, *, before: int | None = None, limit: int = DEFAULT_CHANGE_PAGE) -> list[Change]:
        """Changes newest first, with ``seq < before``; raises RequestError or StoreError."""
        before, limit = change_page(before, limit)
        return self.store.recent_changes(before=before, limit=limit)
