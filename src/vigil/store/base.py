"""Storage interfaces for vigil's runtime state: behaviour profiles, approval tickets, quarantines,
the identity registry's lifecycle records and the log of who changed them (ARCHITECTURE section 5).

Each backend implements :class:`Store` (the four small protocols together) and passes the one
conformance suite (``tests/test_store.py``). Records are plain immutable values; a backend stores
and returns them, it never interprets them. ``version()`` changes whenever any process commits a
change, so a running engine can notice a quarantine or an approval made by another process (the
CLI) and refresh its in-memory mirror. An operation a backend cannot do raises
:class:`StoreError`; it never silently does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from vigil.errors import VigilError
from vigil.model.uid import EntityUid

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"
USED = "used"
TICKET_STATES = (PENDING, APPROVED, DENIED, EXPIRED, USED)


class StoreError(VigilError):
    """The state store cannot be read or written."""

    code = "store_unavailable"


# -- bounded waits ---------------------------------------------------------------------------------
# A store call waits for locks (its own, SQLite's) at most as long as the innermost `bounded` block
# of the calling thread allows; outside any block, as long as the backend's own busy timeout.
_limits = threading.local()


@contextmanager
def bounded(seconds: float, *, fail_fast: bool = False) -> Iterator[None]:
    """Within the block, every store call made by this thread waits at most ``seconds`` for a lock
    (nested blocks keep the shortest limit). A call that would wait longer raises StoreError.
    ``fail_fast`` (the decision path): after such a failure, a backend may fail the next calls at
    once for a short while instead of waiting again."""
    prev: float | None = getattr(_limits, "seconds", None)
    prev_fast: bool = getattr(_limits, "fast", False)
    _limits.seconds = seconds if prev is None else min(prev, seconds)
    _limits.fast = prev_fast or fail_fast
    try:
        yield
    finally:
        _limits.seconds = prev
        _limits.fast = prev_fast


def wait_limit() -> float | None:
    """The limit of the innermost :func:`bounded` block of this thread, or None outside any."""
    limit: float | None = getattr(_limits, "seconds", None)
    return limit


def fail_fast() -> bool:
    """Whether this thread is inside a ``bounded(..., fail_fast=True)`` block."""
    return bool(getattr(_limits, "fast", False))


@contextmanager
def hold(lock: Any, what: str) -> Iterator[None]:
    """Hold ``lock`` (a threading lock), waiting at most :func:`wait_limit` (forever outside a
    :func:`bounded` block); raises StoreError when it is not free in time."""
    limit = wait_limit()
    if not lock.acquire(timeout=-1 if limit is None else max(limit, 0.0)):
        raise StoreError(f"{what} is busy (waited {limit:.3f} s)")
    try:
        yield
    finally:
        lock.release()


def uid_text(uid: EntityUid) -> str:
    """``Type::"id"``, as Cedar writes an entity uid."""
    return f'{uid[0]}::"{uid[1]}"'


@dataclass(frozen=True, slots=True)
class Ticket:
    """An approval ticket of a step-up deny.

    ``state`` is ``pending`` until a human approves or denies it; ``expires`` (epoch seconds) is
    when a pending ticket lapses, and after approval, when the approval stops letting the same
    ``subject``, ``action`` and ``resource`` through. ``why`` the signals that raised the risk.
    ``network``, ``region``, ``user_agent``: the context the ticket was requested from (``""``
    when absent), which an approval is bound to. ``uses``: how many requests an approval lets
    through; each one used lowers it, and the last one makes the ticket ``used``.
    """

    id: str
    subject: EntityUid
    action: EntityUid
    resource: EntityUid
    created: float
    expires: float
    risk: int
    signals: tuple[str, ...]
    why: str
    state: str = PENDING
    decided_by: str | None = None
    decided_at: float | None = None
    note: str = ""
    network: str = ""
    region: str = ""
    user_agent: str = ""
    uses: int = 1

    def state_at(self, now: float) -> str:
        """The state at ``now``: a pending or approved ticket past ``expires`` is ``expired``."""
        if self.state in (PENDING, APPROVED) and now >= self.expires:
            return EXPIRED
        return self.state


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """An identity in quarantine since ``since``, put there ``by`` someone (``"vigil"`` when automatic)."""

    subject: EntityUid
    since: float
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class Change:
    """One audited change of state: ``kind`` (``ticket_created``, ``ticket_approved``,
    ``ticket_denied``, ``quarantine_added``, ``quarantine_lifted``), who did it, when, and details."""

    seq: int
    time: float
    kind: str
    subject: EntityUid
    by: str
    detail: dict[str, Any] = field(default_factory=dict)


ACTIVE = "active"
SUSPENDED = "suspended"
RETIRED = "retired"
IDENTITY_STATES = (ACTIVE, SUSPENDED, RETIRED)


@dataclass(frozen=True, slots=True)
class IdentityKey:
    """A public key registered for an identity: ``kid`` its RFC 7638 thumbprint, ``jwk`` the public
    JWK as compact JSON text (sorted members, ``kid`` included), ``added`` when and ``by`` whom."""

    kid: str
    jwk: str
    added: float
    by: str


@dataclass(frozen=True, slots=True)
class IdentityBinding:
    """An external name of an identity: the ``subject`` an external ``issuer`` vouches for (a SPIFFE
    ID, ``system:serviceaccount:ns:name``, an OIDC ``sub``), ``added`` when and ``by`` whom."""

    issuer: str
    subject: str
    added: float
    by: str


@dataclass(frozen=True, slots=True)
class IdentityEntry:
    """The registry's lifecycle record of one identity (``subject``, an entity uid). Attributes stay
    in the workspace's entities; this is what the registry adds: who owns it and why it exists,
    ``status`` (``active``, ``suspended``, ``retired``) since when, by whom and why, an optional
    ``expires`` (epoch seconds), its public keys and external bindings, and ``rotated`` (the last
    time a key was removed while another stayed: a completed rotation)."""

    subject: EntityUid
    owner: str
    purpose: str
    kind: str
    created: float
    created_by: str
    expires: float | None = None
    status: str = ACTIVE
    status_since: float = 0.0
    status_by: str = ""
    status_reason: str = ""
    keys: tuple[IdentityKey, ...] = ()
    bindings: tuple[IdentityBinding, ...] = ()
    rotated: float | None = None


@dataclass(frozen=True, slots=True)
class IdentityUsage:
    """What decisions and the token service note about an identity, written in batches off the
    decision path: ``last_used`` (epoch seconds, None: never) and ``tokens``, tokens issued per
    hour as ``(hour number since the epoch, count)`` pairs (the last day's only)."""

    subject: EntityUid
    last_used: float | None = None
    tokens: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revoked token (``jti``) or delegation (every token whose chain holds ``actor`` acting for
    ``subject``): ``kind`` ``token`` or ``delegation``; ``until`` when it may be forgotten (the
    token's expiry; None: kept), ``revoked`` when and ``by`` whom, and why."""

    kind: str
    jti: str = ""
    actor: EntityUid | None = None
    subject: EntityUid | None = None
    until: float | None = None
    revoked: float = 0.0
    by: str = ""
    reason: str = ""

    @property
    def key(self) -> str:
        """What it revokes, as one text: the jti, or ``actor -> subject``."""
        if self.kind == "token":
            return self.jti
        a, s = self.actor or ("", ""), self.subject or ("", "")
        return f"{uid_text(a)} -> {uid_text(s)}"


class ProfileStore(Protocol):
    def load_profiles(self) -> Iterator[tuple[EntityUid, bytes]]:
        """Every stored profile snapshot."""
        ...

    def save_profiles(self, items: Iterable[tuple[EntityUid, bytes]]) -> int:
        """Insert or replace snapshots (one transaction); returns how many were written."""
        ...


class TicketStore(Protocol):
    def put_ticket(self, ticket: Ticket) -> None:
        """Insert or replace a ticket (by id)."""
        ...

    def get_ticket(self, ticket_id: str) -> Ticket | None: ...

    def tickets(self, *, state: str | None = None, subject: EntityUid | None = None) -> list[Ticket]:
        """Tickets by stored state and/or subject, oldest first."""
        ...

    def decide_ticket(self, decided: Ticket, now: float) -> bool:
        """Replace the ticket ``decided.id`` by ``decided`` only while the stored one is still
        ``pending`` and unexpired at ``now``, in one atomic step (of two deciders, across
        processes, exactly one wins); returns False when it was not (nothing written)."""
        ...

    def use_ticket(self, ticket_id: str, now: float) -> Ticket | None:
        """Take one use of the ``approved`` ticket ``ticket_id`` when it has one left and is
        unexpired at ``now``, in one atomic step (consumers across processes together take at
        most ``uses`` uses): returns the ticket with ``uses`` one fewer (``used`` after its last),
        or None when there was no use to take (nothing written)."""
        ...


class QuarantineStore(Protocol):
    def put_quarantine(self, entry: QuarantineEntry) -> None: ...

    def remove_quarantine(self, subject: EntityUid) -> bool:
        """Remove the entry of ``subject``; False when there was none."""
        ...

    def quarantines(self) -> list[QuarantineEntry]: ...


class ChangeLog(Protocol):
    def append_change(
        self, time: float, kind: str, subject: EntityUid, by: str, detail: dict[str, Any]
    ) -> Change: ...

    def changes(self, *, after: int = 0, limit: int = 1_000) -> list[Change]:
        """Changes with ``seq > after``, oldest first."""
        ...

    def recent_changes(self, *, before: int | None = None, limit: int = 100) -> list[Change]:
        """Changes with ``seq < before`` (all when None), newest first, at most ``limit``."""
        ...


class IdentityStore(Protocol):
    """The identity registry's records. Every write of a record is checked against the registry's
    *generation*, a number that changes with each written record (in any process): a write made
    from an outdated read is refused instead of overwriting a change it did not see."""

    def identity_generation(self) -> int:
        """The registry's generation (0 before the first record is written); a cheap read."""
        ...

    def identities(self) -> tuple[int, list[IdentityEntry]]:
        """The generation and every record (in one consistent read), by subject."""
        ...

    def put_identity(self, entry: IdentityEntry, *, generation: int) -> int | None:
        """Insert or replace the record of ``entry.subject`` if the generation is still
        ``generation``; returns the new generation, or None (nothing written) when another write
        came first."""
        ...

    def identity_usage(self) -> list[IdentityUsage]:
        """Every stored usage row, by subject."""
        ...

    def save_identity_usage(self, items: Iterable[IdentityUsage]) -> int:
        """Insert or replace usage rows (one transaction; the generation does not change).
        A stored ``last_used`` never moves back (the later of the stored and the new one stays)."""
        ...


class RevocationStore(Protocol):
    """Revoked tokens and delegations (``Revocation``), read whole (the list stays short: entries
    past ``until`` are pruned)."""

    def revocation_generation(self) -> int:
        """A number that changes with every revocation written (0 before the first); a cheap read."""
        ...

    def revocations(self) -> tuple[int, list[Revocation]]:
        """The generation and every revocation, oldest first."""
        ...

    def put_revocation(self, revocation: Revocation) -> bool:
        """Record ``revocation``; False (nothing written) when the same one (kind and key) is
        recorded already."""
        ...

    def prune_revocations(self, before: float) -> int:
        """Forget revocations whose ``until`` is before ``before``; returns how many."""
        ...


class Store(ProfileStore, TicketStore, QuarantineStore, ChangeLog, IdentityStore, RevocationStore, Protocol):
    """Everything vigil keeps between restarts, besides the workspace and the audit log."""

    def version(self) -> int:
        """A number that changes whenever any process commits a change."""
        ...

    def close(self) -> None: ...
