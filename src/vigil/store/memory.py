"""In-memory store: for tests, embedding and ``[store] backend = "memory"`` (nothing survives a restart)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from vigil.model.uid import EntityUid
from vigil.store.base import (
    APPROVED,
    PENDING,
    USED,
    Change,
    IdentityEntry,
    IdentityUsage,
    QuarantineEntry,
    Revocation,
    Ticket,
)


class MemoryStore:
    """A :class:`~vigil.store.base.Store` held in dicts (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._profiles: dict[EntityUid, bytes] = {}
        self._tickets: dict[str, Ticket] = {}
        self._quarantines: dict[EntityUid, QuarantineEntry] = {}
        self._changes: list[Change] = []
        self._identities: dict[EntityUid, IdentityEntry] = {}
        self._identity_generation = 0
        self._usage: dict[EntityUid, IdentityUsage] = {}
        self._version = 0
        self._revocations: dict[tuple[str, str], Revocation] = {}
        self._revocation_generation = 0

    def version(self) -> int:
        return self._version

    def close(self) -> None:
        return None

    # -- profiles --------------------------------------------------------------------------------
    def load_profiles(self) -> Iterator[tuple[EntityUid, bytes]]:
        with self._lock:
            items = list(self._profiles.items())
        return iter(items)

    def save_profiles(self, items: Iterable[tuple[EntityUid, bytes]]) -> int:
        n = 0
        with self._lock:
            for uid, blob in items:
                self._profiles[uid] = bytes(blob)
                n += 1
        return n

    # -- tickets ---------------------------------------------------------------------------------
    def put_ticket(self, ticket: Ticket) -> None:
        with self._lock:
            self._tickets[ticket.id] = ticket
            self._version += 1

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        return self._tickets.get(ticket_id)

    def decide_ticket(self, decided: Ticket, now: float) -> bool:
        with self._lock:
            t = self._tickets.get(decided.id)
            if t is None or t.state != PENDING or now >= t.expires:
                return False
            self._tickets[decided.id] = decided
            self._version += 1
            return True

    def use_ticket(self, ticket_id: str, now: float) -> Ticket | None:
        with self._lock:
            t = self._tickets.get(ticket_id)
            if t is None or t.state != APPROVED or t.uses < 1 or now >= t.expires:
                return None
            used = replace(t, uses=t.uses - 1, state=APPROVED if t.uses > 1 else USED)
            self._tickets[ticket_id] = used
            self._version += 1
            return used

    def tickets(self, *, state: str | None = None, subject: EntityUid | None = None) -> list[Ticket]:
        with self._lock:
            items = list(self._tickets.values())
        return sorted(
            (
                t
                for t in items
                if (state is None or t.state == state) and (subject is None or t.subject == subject)
            ),
            key=lambda t: (t.created, t.id),
        )

    # -- quarantine ------------------------------------------------------------------------------
    def put_quarantine(self, entry: QuarantineEntry) -> None:
        with self._lock:
            self._quarantines[entry.subject] = entry
            self._version += 1

    def remove_quarantine(self, subject: EntityUid) -> bool:
        with self._lock:
            found = self._quarantines.pop(subject, None) is not None
            if found:
                self._version += 1
            return found

    def quarantines(self) -> list[QuarantineEntry]:
        with self._lock:
            return sorted(self._quarantines.values(), key=lambda e: (e.since, e.subject))

    # -- change log ------------------------------------------------------------------------------
    def append_change(
        self, time: float, kind: str, subject: EntityUid, by: str, detail: dict[str, Any]
    ) -> Change:
        with self._lock:
            change = Change(len(self._changes) + 1, time, kind, subject, by, dict(detail))
            self._changes.append(change)
            self._version += 1
            return change

    def changes(self, *, after: int = 0, limit: int = 1_000) -> list[Change]:
        with self._lock:
            return [c for c in self._changes if c.seq > after][:limit]

    def recent_changes(self, *, before: int | None = None, limit: int = 100) -> list[Change]:
        with self._lock:
            end = len(self._changes) if before is None else max(min(before - 1, len(self._changes)), 0)
            return self._changes[max(end - limit, 0) : end][::-1] if limit > 0 else []

    # -- identity registry -----------------------------------------------------------------------
    def identity_generation(self) -> int:
        return self._identity_generation

    def identities(self) -> tuple[int, list[IdentityEntry]]:
        with self._lock:
            return self._identity_generation, sorted(self._identities.values(), key=lambda e: e.subject)

    def put_identity(self, entry: IdentityEntry, *, generation: int) -> int | None:
        with self._lock:
            if generation != self._identity_generation:
                return None
            self._identities[entry.subject] = entry
            self._identity_generation += 1
            self._version += 1
            return self._identity_generation

    def identity_usage(self) -> list[IdentityUsage]:
        with self._lock:
            return sorted(self._usage.values(), key=lambda u: u.subject)

    def save_identity_usage(self, items: Iterable[IdentityUsage]) -> int:
        n = 0
        with self._lock:
            for u in items:
                before = self._usage.get(u.subject)
                if (
                    before is not None
                    and before.last_used is not None
                    and (u.last_used is None or u.last_used < before.last_used)
                ):
                    u = IdentityUsage(u.subject, before.last_used, u.tokens)
                self._usage[u.subject] = u
                n += 1
        return n

    # -- revocations -----------------------------------------------------------------------------
    def revocation_generation(self) -> int:
        return self._revocation_generation

    def revocations(self) -> tuple[int, list[Revocation]]:
        with self._lock:
            return self._revocation_generation, list(self._revocations.values())

    def put_revocation(self, revocation: Revocation) -> bool:
        with self._lock:
            k = (revocation.kind, revocation.key)
            if k in self._revocations:
                return False
            self._revocations[k] = revocation
            self._revocation_generation += 1
            self._version += 1
            return True

    def prune_revocations(self, before: float) -> int:
        with self._lock:
            gone = [k for k, r in self._revocations.items() if r.until is not None and r.until < before]
            for k in gone:
                del self._revocations[k]
            if gone:
                self._revocation_generation += 1
            return len(gone)
