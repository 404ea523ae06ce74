"""Quarantine: an identity whose requests are all denied (``quarantined``) until an owner lifts it.

vigil quarantines an identity by itself after repeated high-risk decisions (``[behaviour]
quarantine_after`` within ``quarantine_window_s``); an operator can also quarantine one by hand
(``vigil quarantine add``). Only a human lifts it (``vigil quarantine lift --by NAME``). Every
change is written to the store's change log with who made it.

Entries live in the store; the engine reads a flag on the identity's profile (no extra lookup per
decision), kept in step with the store: at once for changes made through this engine, within about
a second (the profile snapshot thread's tick) for changes made by another process. If the store
cannot record a quarantine (automatic or by hand), the identity is quarantined in memory anyway
(fail closed), the entry is marked not durable (:meth:`Quarantine.durable`) and, when automatic,
the failure is counted in ``store_errors``.
"""

from __future__ import annotations

import threading
from typing import Any

from vigil.behaviour.book import ProfileBook
from vigil.errors import NotFoundError, RequestError
from vigil.model.uid import EntityUid
from vigil.operations.approvals import check_actor
from vigil.store.base import QuarantineEntry, Store, StoreError, bounded, hold

MAX_REASON = 4_000


def quarantine_dict(e: QuarantineEntry) -> dict[str, Any]:
    """An entry as JSON-ready data."""
    from vigil.audit.events import rfc3339

    return {
        "subject": {"type": e.subject[0], "id": e.subject[1]},
        "since": rfc3339(e.since),
        "by": e.by,
        "reason": e.reason,
    }


class Quarantine:
    """Quarantined identities over a :class:`~vigil.store.base.Store`, mirrored on profiles.

    ``_lock`` guards the in-memory mirror only and is never held while the store is used, so the
    decision path (``add_automatic``) never waits behind an operator's or the refresh thread's
    store call; ``_io`` orders this object's store writes.
    """

    decision_timeout_s = 0.02  # the engine sets [store] decision_timeout_ms

    def __init__(self, store: Store, book: ProfileBook | None) -> None:
        self.store = store
        self.book = book
        self._lock = threading.RLock()
        self._io = threading.RLock()
        self._active: dict[EntityUid, QuarantineEntry] = {}
        self._unsaved: dict[EntityUid, QuarantineEntry] = {}  # the store failed: held in memory
        self._version = -1
        self._local = 0  # changes made through this object (a refresh started before one is stale)
        self.store_errors = 0
        self.refresh()

    def refresh(self) -> None:
        """Re-read the store when another process changed it; sync the profile flags. Raises
        StoreError when the store cannot be read (the mirror is then left as it was)."""
        with self._lock:
            local = self._local
        version = self.store.version()
        if version == self._version:
            return
        stored = self.store.quarantines()
        with self._lock:
            if local != self._local:
                return  # changed here meanwhile: the next refresh reads again
            active = {e.subject: e for e in stored}
            for uid, e in self._unsaved.items():
                active.setdefault(uid, e)
            self._active = active
            self._version = version
            if self.book is not None:
                for uid, p in list(self.book.profiles.items()):
                    p.quarantined = uid in active

    def __contains__(self, subject: object) -> bool:
        return subject in self._active

    def __len__(self) -> int:
        return len(self._active)

    def get(self, subject: EntityUid) -> QuarantineEntry | None:
        return self._active.get(subject)

    def durable(self, subject: EntityUid) -> bool:
        """False when ``subject``'s quarantine holds in memory only (the store could not save it)."""
        return subject not in self._unsaved

    def list(self) -> list[QuarantineEntry]:
        """Quarantined identities, oldest first (raises StoreError when the store cannot be read)."""
        self.refresh()
        return sorted(self._active.values(), key=lambda e: (e.since, e.subject))

    def add(self, subject: EntityUid, *, by: str, reason: str, now: float) -> QuarantineEntry:
        """Quarantine ``subject`` (idempotent: an existing saved entry is returned unchanged; an
        unsaved one is saved again). Raises RequestError for a bad ``by``/``reason`` and StoreError
        when it cannot be recorded: the quarantine then holds in this process's memory only
        (:meth:`durable` is False) until a later add or refresh saves it or a restart drops it."""
        actor = check_actor(by)
        if type(reason) is not str or len(reason) > MAX_REASON:
            raise RequestError(
                f"'reason' must be a string of at most {MAX_REASON} characters", code="invalid_argument"
            )
        with self._lock:
            existing = self._active.get(subject)
            if existing is not None and subject not in self._unsaved:
                return existing
            entry = existing or QuarantineEntry(subject, now, actor, reason)
            self._set(subject, entry)  # first: if the store fails, the quarantine still holds here
            self._unsaved[subject] = entry
            self._local += 1
        with hold(self._io, "quarantine"):
            self.store.put_quarantine(entry)
            self.store.append_change(
                entry.since, "quarantine_added", subject, entry.by, {"reason": entry.reason}
            )
            version = self.store.version()
        with self._lock:
            self._unsaved.pop(subject, None)
            self._version = version
            self._local += 1
        return entry

    def add_automatic(self, subject: EntityUid, *, reason: str, now: float) -> QuarantineEntry:
        """Quarantine decided by vigil itself on the decision path: never raises and waits for the
        store at most ``decision_timeout_s``; a store failure leaves the quarantine in memory (fail
        closed, :meth:`durable` False) and is counted."""
        try:
            with bounded(self.decision_timeout_s, fail_fast=True):
                return self.add(subject, by="vigil", reason=reason[:MAX_REASON], now=now)
        except StoreError:
            self.store_errors += 1
            return self._active[subject]

    def lift(self, subject: EntityUid, *, by: str, now: float, note: str = "") -> QuarantineEntry:
        """Lift the quarantine of ``subject``; returns the lifted entry. Raises NotFoundError
        (``not_quarantined``), RequestError or StoreError (then nothing is lifted)."""
        actor = check_actor(by)
        if type(note) is not str or len(note) > MAX_REASON:
            raise RequestError(
                f"'note' must be a string of at most {MAX_REASON} characters", code="invalid_argument"
            )
        with hold(self._io, "quarantine"):
            self.refresh()
            entry = self._active.get(subject)
            if entry is None:
                raise NotFoundError(
                    f"{subject[0]}::{subject[1]!r} is not quarantined", code="not_quarantined"
                )
            self.store.remove_quarantine(subject)
            self.store.append_change(
                now, "quarantine_lifted", subject, actor, {"note": note, "since": entry.since, "by": entry.by}
            )
            version = self.store.version()
            with self._lock:
                self._active.pop(subject, None)
                self._unsaved.pop(subject, None)
                self._local += 1
                p = self.book.profiles.get(subject) if self.book is not None else None
                if p is not None:
                    p.quarantined = False
                    p.high = None  # a fresh start: old high-risk decisions do not count again
                    p.dirty = True
                self._version = version
            return entry

    def _set(self, subject: EntityUid, entry: QuarantineEntry) -> None:
        self._active[subject] = entry
        p = self.book.profiles.get(subject) if self.book is not None else None
        if p is not None:
            p.quarantined = True
