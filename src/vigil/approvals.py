"""Step-up approval tickets: an agent is never blocked on a human.

A request whose behaviour risk reaches the step-up threshold is denied at once with advice
``step_up`` and a ticket (id, subject, action, resource, expiry, why). A human approves or denies
the ticket (``vigil approvals approve|deny``, or the admin HTTP API); once approved, the same
subject, action and resource are let through (reason ``approved``) until the approval expires, so
the agent simply retries. A retry while the ticket is still pending gets the same ticket back.
Every change is written to the store's change log with who made it.

Tickets live in the store; this class keeps the pending and approved ones in memory, keyed by
(subject, action, resource), and re-reads them when the store's version shows that another
process (the CLI) changed something.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any, Final

from vigil.errors import ConflictError, NotFoundError, RequestError
from vigil.policy.values import EntityUid
from vigil.store.base import (
    APPROVED,
    DENIED,
    EXPIRED,
    PENDING,
    TICKET_STATES,
    Store,
    Ticket,
    bounded,
    hold,
    uid_text,
)

Key = tuple[EntityUid, EntityUid, EntityUid]
MAX_ACTOR: Final = 256
MAX_NOTE: Final = 2_000


def new_ticket_id() -> str:
    """A random, unguessable ticket id (``tkt_`` + 16 hex digits)."""
    return "tkt_" + secrets.token_hex(8)


def check_actor(by: Any) -> str:
    """The name of the human (or system) making a change; raises RequestError when unusable."""
    if type(by) is not str or not by.strip() or len(by) > MAX_ACTOR or not by.isprintable():
        raise RequestError(
            f"'by' must name who makes the change (1..{MAX_ACTOR} printable characters)",
            code="invalid_argument",
        )
    return by.strip()


def _note(note: Any) -> str:
    if type(note) is not str or len(note) > MAX_NOTE:
        raise RequestError(
            f"'note' must be a string of at most {MAX_NOTE} characters", code="invalid_argument"
        )
    return note


def ticket_dict(t: Ticket, now: float | None = None) -> dict[str, Any]:
    """A ticket as JSON-ready data (``state`` as of ``now`` when given)."""
    from vigil.audit.events import rfc3339

    return {
        "id": t.id,
        "state": t.state_at(now) if now is not None else t.state,
        "subject": {"type": t.subject[0], "id": t.subject[1]},
        "action": {"type": t.action[0], "name": t.action[1]},
        "resource": {"type": t.resource[0], "id": t.resource[1]},
        "created": rfc3339(t.created),
        "expires": rfc3339(t.expires),
        "risk": t.risk,
        "signals": list(t.signals),
        "why": t.why,
        "decided_by": t.decided_by,
        "decided_at": rfc3339(t.decided_at) if t.decided_at is not None else None,
        "note": t.note,
    }


class Approvals:
    """Approval tickets over a :class:`~vigil.store.base.Store` (thread-safe).

    The decision path (:meth:`granted`, :meth:`request`) waits for the lock and the store at most
    ``decision_timeout_s`` and raises StoreError past it (the engine denies with
    ``store_unavailable``)."""

    decision_timeout_s = 0.02  # the engine sets [store] decision_timeout_ms

    def __init__(self, store: Store, ids: Callable[[], str] | None = None) -> None:
        self.store = store
        self._ids = ids or new_ticket_id
        self._lock = threading.RLock()
        self._pending: dict[Key, Ticket] = {}
        self._approved: dict[Key, Ticket] = {}
        self._version = -1

    def _sync(self) -> None:
        version = self.store.version()
        if version == self._version:
            return
        pending: dict[Key, Ticket] = {}
        approved: dict[Key, Ticket] = {}
        for t in self.store.tickets(state=PENDING):
            pending[(t.subject, t.action, t.resource)] = t
        for t in self.store.tickets(state=APPROVED):
            approved[(t.subject, t.action, t.resource)] = t
        self._pending = pending
        self._approved = approved
        self._version = version

    # -- the decision path -------------------------------------------------------------------
    def granted(
        self, subject: EntityUid, action: EntityUid, resource: EntityUid, now: float
    ) -> Ticket | None:
        """The approved, unexpired ticket for this subject, action and resource, if any. Raises
        StoreError when the store does not answer within ``decision_timeout_s``."""
        with bounded(self.decision_timeout_s, fail_fast=True), hold(self._lock, "approvals"):
            self._sync()
            t = self._approved.get((subject, action, resource))
            return t if t is not None and now < t.expires else None

    def request(
        self,
        subject: EntityUid,
        action: EntityUid,
        resource: EntityUid,
        *,
        risk: int,
        signals: tuple[str, ...],
        why: str,
        now: float,
        ttl_s: float,
    ) -> Ticket:
        """The pending ticket for this subject, action and resource: the open one, or a new one
        (expiring ``ttl_s`` from ``now``). Raises StoreError when the store cannot record it within
        ``decision_timeout_s``."""
        key = (subject, action, resource)
        with bounded(self.decision_timeout_s, fail_fast=True), hold(self._lock, "approvals"):
            self._sync()
            open_ = self._pending.get(key)
            if open_ is not None and now < open_.expires:
                return open_
            t = Ticket(
                id=self._ids(),
                subject=subject,
                action=action,
                resource=resource,
                created=now,
                expires=now + ttl_s,
                risk=risk,
                signals=signals,
                why=why,
            )
            self.store.put_ticket(t)
            self.store.append_change(
                now,
                "ticket_created",
                subject,
                "vigil",
                {"ticket": t.id, "action": uid_text(action), "resource": uid_text(resource), "risk": risk},
            )
            self._pending[key] = t
            self._version = self.store.version()
            return t

    # -- operators ---------------------------------------------------------------------------------
    def get(self, ticket_id: str) -> Ticket:
        """The ticket ``ticket_id``; raises NotFoundError (``ticket_not_found``)."""
        t = self.store.get_ticket(ticket_id) if type(ticket_id) is str else None
        if t is None:
            raise NotFoundError(f"no approval ticket {str(ticket_id)[:80]!r}", code="ticket_not_found")
        return t

    def list(self, *, state: str | None = None, subject: EntityUid | None = None, now: float) -> list[Ticket]:
        """Tickets, oldest first, filtered by their state at ``now`` (``pending``, ``approved``,
        ``denied``, ``expired``) and/or subject."""
        if state is not None and state not in TICKET_STATES:
            raise RequestError(
                f"state must be one of {', '.join(TICKET_STATES)}, got {state!r}", code="invalid_argument"
            )
        items = self.store.tickets(subject=subject)
        return [t for t in items if state is None or t.state_at(now) == state]

    def approve(self, ticket_id: str, *, by: str, now: float, ttl_s: float, note: str = "") -> Ticket:
        """Approve a pending ticket: the same subject, action and resource are allowed until
        ``now + ttl_s``. Raises NotFoundError, ConflictError (``ticket_closed``) or RequestError."""
        return self._decide(ticket_id, APPROVED, by=by, now=now, ttl_s=ttl_s, note=note)

    def deny(self, ticket_id: str, *, by: str, now: float, note: str = "") -> Ticket:
        """Deny a pending ticket (the request stays denied; the agent's next retry opens a new one)."""
        return self._decide(ticket_id, DENIED, by=by, now=now, ttl_s=0.0, note=note)

    def _decide(self, ticket_id: str, state: str, *, by: str, now: float, ttl_s: float, note: str) -> Ticket:
        actor = check_actor(by)
        note = _note(note)
        with self._lock:
            t = self.get(ticket_id)
            current = t.state_at(now)
            if current != PENDING:
                raise ConflictError(
                    f"ticket {t.id!r} is {current}{' by ' + repr(t.decided_by) if t.decided_by else ''}",
                    code="ticket_closed",
                )
            expires = now + ttl_s if state == APPROVED else t.expires
            decided = Ticket(
                id=t.id,
                subject=t.subject,
                action=t.action,
                resource=t.resource,
                created=t.created,
                expires=expires,
                risk=t.risk,
                signals=t.signals,
                why=t.why,
                state=state,
                decided_by=actor,
                decided_at=now,
                note=note,
            )
            self.store.put_ticket(decided)
            self.store.append_change(
                now,
                "ticket_approved" if state == APPROVED else "ticket_denied",
                t.subject,
                actor,
                {
                    "ticket": t.id,
                    "action": uid_text(t.action),
                    "resource": uid_text(t.resource),
                    "note": note,
                },
            )
            key = (t.subject, t.action, t.resource)
            if self._pending.get(key) is not None and self._pending[key].id == t.id:
                del self._pending[key]
            if state == APPROVED:
                self._approved[key] = decided
            self._version = self.store.version()
            return decided


__all__ = [
    "APPROVED",
    "DENIED",
    "EXPIRED",
    "PENDING",
    "Approvals",
    "check_actor",
    "new_ticket_id",
    "ticket_dict",
]
