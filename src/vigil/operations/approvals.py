"""Step-up approval tickets: an agent is never blocked on a human.

A request whose behaviour risk reaches the step-up threshold is denied at once with advice
``step_up`` and a ticket (id, subject, action, resource, expiry, why). A human approves or denies
the ticket (``vigil approvals approve|deny``, or the admin HTTP API); once approved, the same
subject, action and resource, *from the same context*, are let through (reason ``approved``), so
the agent simply retries. A retry while the ticket is still pending gets the same ticket back.
Every change is written to the store's change log with who made it.

A ticket is bound to the context it was requested from (:func:`bound_context`: the /24 network
of ``context.ip``, /64 for IPv6, ``context.region`` and ``context.user_agent``, each ``""`` when
absent; a request with ``context.arguments``, such as an MCP tool call, also binds a fingerprint
of its arguments, kept after the user agent as ``" #args=<16 hex>"``): the approver sees that context, and the approval lets through only requests from it (a
stolen credential used from elsewhere is not let through by the owner's approval). An approval is
single-use unless the approver grants more uses (``uses``); it lapses ``approval_ttl_s`` after it
was given either way. A request let through on an approval is not learned as normal behaviour.

Tickets live in the store; this class keeps the pending and approved ones in memory, keyed by
(subject, action, resource, bound context), and re-reads them when the store's version shows that
another process (the CLI) changed something.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

import orjson

from vigil.errors import ConflictError, NotFoundError, RequestError
from vigil.model.uid import EntityUid
from vigil.store.base import (
    APPROVED,
    DENIED,
    EXPIRED,
    PENDING,
    TICKET_STATES,
    USED,
    Store,
    Ticket,
    bounded,
    hold,
    uid_text,
)

Bound = tuple[str, str, str]
"""The context a ticket is bound to: (network, region, user agent), ``""`` for an absent field."""
Key = tuple[EntityUid, EntityUid, EntityUid, str, str, str]
MAX_ACTOR: Final = 256
MAX_NOTE: Final = 2_000
MAX_USES: Final = 10_000
MAX_BOUND: Final = 1_024
NO_CONTEXT: Final[Bound] = ("", "", "")


def bound_context(context: Mapping[str, Any]) -> Bound:
    """``(network, region, user_agent)`` of a raw request context, as a ticket binds them.

    The network is the /24 of an IPv4 ``context.ip`` (a string or a Cedar ``ip`` escape) and the
    /64 of an IPv6 one (an IPv4-mapped address counts as IPv4); region and user agent are the
    strings as sent. An absent field is ``""``; a value that is not what it should be is kept as
    ``"?"`` and its text, so it still has to match exactly. Never raises.
    """
    agent = _text(context.get("user_agent"))
    arguments = context.get("arguments")
    if arguments is not None:
        # a tool call's arguments (the MCP gateway's context.arguments): the approval covers
        # this call only, not the same tool with other arguments
        agent = f"{agent[: MAX_BOUND - 30]} #args={_fingerprint(arguments)}"
    return _network(context.get("ip")), _text(context.get("region")), agent


def _fingerprint(value: Any) -> str:
    """The first 16 hex digits of the SHA-256 of ``value`` as sorted-key JSON (``repr`` for what
    JSON cannot encode); never raises."""
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        data = repr(value).encode("utf-8", "backslashreplace")
    return hashlib.sha256(data).hexdigest()[:16]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if type(value) is str:
        return value[:MAX_BOUND]
    return "?" + repr(value)[: MAX_BOUND - 1]


def _network(value: Any) -> str:
    if value is None:
        return ""
    text = value
    if type(value) is dict:
        ext = value.get("__extn")
        if type(ext) is dict and ext.get("fn") == "ip":
            text = ext.get("arg")
    if type(text) is not str or not text or len(text) > 64 or not text.isascii():
        return _text(value) if type(value) is not str else "?" + value[: MAX_BOUND - 1]
    try:
        ip = ipaddress.ip_interface(text).ip
    except ValueError:
        return "?" + text
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def check_uses(uses: Any) -> int:
    """How many requests an approval lets through (1..MAX_USES); raises RequestError otherwise."""
    if type(uses) is not int or not 1 <= uses <= MAX_USES:
        raise RequestError(f"'uses' must be an integer from 1 to {MAX_USES}", code="invalid_argument")
    return uses


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
        "context": {"network": t.network, "region": t.region, "user_agent": t.user_agent},
        "uses": t.uses,
    }


def _key(t: Ticket) -> Key:
    return (t.subject, t.action, t.resource, t.network, t.region, t.user_agent)


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
            pending[_key(t)] = t
        for t in self.store.tickets(state=APPROVED):
            approved[_key(t)] = t
        self._pending = pending
        self._approved = approved
        self._version = version

    # -- the decision path -------------------------------------------------------------------
    def granted(
        self, subject: EntityUid, action: EntityUid, resource: EntityUid, bound: Bound, now: float
    ) -> Ticket | None:
        """Use the approved, unexpired ticket for this subject, action and resource from the
        ``bound`` context, if any: returns it with one use fewer (``used`` after its last use,
        recorded in the change log as ``ticket_used``), or None (also when another process took
        its last use first: the store takes uses atomically). Raises StoreError when the store
        cannot record the use within ``decision_timeout_s`` (the caller denies)."""
        key: Key = (subject, action, resource, bound[0], bound[1], bound[2])
        with bounded(self.decision_timeout_s, fail_fast=True), hold(self._lock, "approvals"):
            self._sync()
            t = self._approved.get(key)
            if t is None or now >= t.expires or t.uses < 1:
                return None
            used = self.store.use_ticket(t.id, now)
            if used is None:  # used up, or closed, by another process since the mirror was read
                self._version = -1  # read the store again next time
                return None
            left = used.uses
            self.store.append_change(
                now,
                "ticket_used",
                subject,
                "vigil",
                {
                    "ticket": t.id,
                    "action": uid_text(action),
                    "resource": uid_text(resource),
                    "uses_left": left,
                },
            )
            if left:
                self._approved[key] = used
            else:
                del self._approved[key]
            self._version = self.store.version()
            return used

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
        bound: Bound = NO_CONTEXT,
    ) -> Ticket:
        """The pending ticket for this subject, action and resource from the ``bound`` context
        (:func:`bound_context`): the open one, or a new one (expiring ``ttl_s`` from ``now``).
        Raises StoreError when the store cannot record it within ``decision_timeout_s``."""
        key: Key = (subject, action, resource, bound[0], bound[1], bound[2])
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
                network=bound[0],
                region=bound[1],
                user_agent=bound[2],
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

    def approve(
        self, ticket_id: str, *, by: str, now: float, ttl_s: float, note: str = "", uses: int = 1
    ) -> Ticket:
        """Approve a pending ticket: ``uses`` requests with the same subject, action and resource,
        from the context the ticket is bound to, are allowed until ``now + ttl_s``. Raises
        NotFoundError, ConflictError (``ticket_closed``) or RequestError (``invalid_argument``)."""
        return self._decide(ticket_id, APPROVED, by=by, now=now, ttl_s=ttl_s, note=note, uses=uses)

    def deny(self, ticket_id: str, *, by: str, now: float, note: str = "") -> Ticket:
        """Deny a pending ticket (the request stays denied; the agent's next retry opens a new one)."""
        return self._decide(ticket_id, DENIED, by=by, now=now, ttl_s=0.0, note=note)

    def _decide(
        self, ticket_id: str, state: str, *, by: str, now: float, ttl_s: float, note: str, uses: int = 1
    ) -> Ticket:
        actor = check_actor(by)
        note = _note(note)
        uses = check_uses(uses)
        with self._lock:
            t = self.get(ticket_id)
            decided = replace(
                t,
                expires=now + ttl_s if state == APPROVED else t.expires,
                state=state,
                decided_by=actor,
                decided_at=now,
                note=note,
                uses=uses if state == APPROVED else 0,
            )
            if t.state_at(now) != PENDING or not self.store.decide_ticket(decided, now):
                t = self.get(ticket_id)  # as another process may just have decided it
                current = t.state_at(now)
                raise ConflictError(
                    f"ticket {t.id!r} is {current}{' by ' + repr(t.decided_by) if t.decided_by else ''}",
                    code="ticket_closed",
                )
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
                    **({"uses": uses} if state == APPROVED else {}),
                },
            )
            key = _key(t)
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
    "USED",
    "Approvals",
    "bound_context",
    "check_actor",
    "check_uses",
    "new_ticket_id",
    "ticket_dict",
]
