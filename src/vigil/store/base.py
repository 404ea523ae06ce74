"""Storage interfaces for vigil's runtime state: behaviour profiles, approval tickets, quarantines
and the log of who changed them (ARCHITECTURE section 5).

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


class Store(ProfileStore, TicketStore, QuarantineStore, ChangeLog, Protocol):
    """Everything vigil keeps between restarts, besides the workspace and the audit log."""

    def version(self) -> int:
        """A number that changes whenever any process commits a change."""
        ...

    def close(self) -> None: ...
