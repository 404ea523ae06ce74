"""Revoked tokens and delegations, mirrored in memory over the state store (``revocations``).

The verifier reads two frozensets on every verification (cached ones included):
:attr:`Revocations.jtis` and :attr:`Revocations.delegations` (``(actor, subject)`` pairs). A
revocation written here is in effect at once on this node; one written by another process (the
CLI) at the next :meth:`Revocations.refresh` (the engine's tick, about once a second, or a reload).
Entries are kept until the token they revoke would have expired (a delegation revocation: kept).
"""

from __future__ import annotations

import threading

from vigil.model.uid import EntityUid
from vigil.store.base import Revocation, RevocationStore


class Revocations:
    """What is revoked, over ``store`` (thread-safe)."""

    def __init__(self, store: RevocationStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self.generation = -1
        self.jtis: frozenset[str] = frozenset()
        self.delegations: frozenset[tuple[EntityUid, EntityUid]] = frozenset()
        self._items: list[Revocation] = []
        self.refresh()

    def refresh(self) -> bool:
        """Read the store again when a revocation was written since the last read; True when it
        was. Raises StoreError."""
        with self._lock:
            if self.store.revocation_generation() == self.generation:
                return False
            generation, items = self.store.revocations()
            self._install(generation, items)
            return True

    def _install(self, generation: int, items: list[Revocation]) -> None:
        self.generation = generation
        self._items = items
        self.jtis = frozenset(r.jti for r in items if r.kind == "token")
        self.delegations = frozenset(
            (r.actor, r.subject)
            for r in items
            if r.kind == "delegation" and r.actor is not None and r.subject is not None
        )

    def items(self) -> list[Revocation]:
        return list(self._items)

    def add(self, revocation: Revocation) -> bool:
        """Record ``revocation`` and apply it at once; False when it was recorded already.
        Raises StoreError (nothing applied)."""
        with self._lock:
            added = self.store.put_revocation(revocation)
            generation, items = self.store.revocations()
            self._install(generation, items)
            return added

    def prune(self, now: float) -> int:
        """Forget revocations of tokens that have expired by ``now``; raises StoreError."""
        n = self.store.prune_revocations(now)
        if n:
            self.refresh()
        return n
