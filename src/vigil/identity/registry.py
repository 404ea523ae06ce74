"""The identity registry: every registered identity's lifecycle record, mirrored in memory over an
:class:`~vigil.store.base.IdentityStore`, and the *gate* the decision path reads.

Reads are in memory. Writes go through :meth:`Registry.create` and :meth:`Registry.update`: the
record is rebuilt from the freshest stored state and written only if no other writer (another
process included) changed the registry meanwhile (the store's generation), retried a few times,
so a change is never made from a stale read. Keys (by ``kid``) and bindings (issuer + subject)
belong to one identity each.

The gate: :attr:`Registry.inactive`, the identities denied at decision time (suspended, retired,
expired), and :attr:`Registry.next_expiry`, the earliest expiry still ahead. Both are published
together, as a frozenset and a float, to the listener given to :meth:`Registry.listen` (the
engine), after every change, refresh and :meth:`Registry.expire`. The decision path reads the two
values only: one float comparison, plus one set lookup while any identity is inactive; when a
decision's time reaches ``next_expiry`` it calls :meth:`Registry.expire` (memory only, no store).
Expiry is judged at decision times and only moves forward (a decision stamped earlier than one
already seen does not bring an expired identity back).

Usage: ``last_used`` comes from decisions without a store write per decision: the engine hands a
``used(uid)`` reader of what it already keeps in memory (behaviour profiles), :meth:`note_used`
adds other uses, and :meth:`flush_usage` writes what changed in one transaction (the engine: every
``[store] snapshot_interval_s`` and at close). :meth:`note_token_issued` counts issued tokens per
hour (the hook for the token service) for the report's "tokens issued in the last 24 h".
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Final

from vigil.identity.errors import IdentityConflict, IdentityNotFound
from vigil.identity.lifecycle import is_active, state_at
from vigil.identity.parse import uid_text
from vigil.model.uid import EntityUid
from vigil.store.base import ACTIVE, IdentityEntry, IdentityKey, IdentityStore, IdentityUsage, StoreError

RETRIES: Final = 5
HOUR: Final = 3_600
DAY_HOURS: Final = 24
GateListener = Callable[[frozenset[EntityUid], float], None]


class Registry:
    """Registered identities over ``store`` (see the module documentation). Thread-safe."""

    def __init__(self, store: IdentityStore, *, used: Callable[[EntityUid], float] | None = None) -> None:
        self.store = store
        self._used = used
        self._io = threading.RLock()  # orders refreshes and writes (never taken by decisions)
        self._gate_lock = threading.RLock()  # gate computations (memory only)
        self._listener: GateListener | None = None
        self._entries: dict[EntityUid, IdentityEntry] = {}  # replaced, never changed in place
        self._kids: dict[str, EntityUid] = {}
        self._bound: dict[tuple[str, str], EntityUid] = {}
        self.generation = -1
        self.inactive: frozenset[EntityUid] = frozenset()
        self.next_expiry = math.inf
        self._gate_time = 0.0
        self._expiring: list[tuple[float, EntityUid]] = []
        self._expiry_pos = 0
        self._stored_use: dict[EntityUid, float] = {}
        self._noted: dict[EntityUid, float] = {}
        self._tokens: dict[EntityUid, dict[int, int]] = {}
        self._tokens_dirty: set[EntityUid] = set()
        self._tokens_lock = threading.Lock()
        self.usage_errors = 0
        self.refresh()
        self._load_usage()

    # -- reading -----------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Read the store again when any process changed the registry since the last read (one
        cheap generation read otherwise); True when it did. Raises StoreError."""
        with self._io:
            if self.store.identity_generation() == self.generation:
                return False
            generation, items = self.store.identities()
            self._install(generation, {e.subject: e for e in items})
            return True

    def get(self, uid: EntityUid) -> IdentityEntry | None:
        return self._entries.get(uid)

    def require(self, uid: EntityUid) -> IdentityEntry:
        """The record of ``uid``; raises IdentityNotFound (``identity_not_found``)."""
        entry = self._entries.get(uid)
        if entry is None:
            raise IdentityNotFound(f"{uid_text(uid)} is not registered", code="identity_not_found")
        return entry

    def entries(self) -> list[IdentityEntry]:
        """Every record, by uid."""
        return sorted(self._entries.values(), key=lambda e: e.subject)

    @property
    def bindings(self) -> Mapping[tuple[str, str], EntityUid]:
        """Every binding, ``(issuer, subject)`` -> identity (a mapping replaced, never changed in
        place, when the registry changes)."""
        return self._bound

    def __contains__(self, uid: object) -> bool:
        return uid in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[EntityUid]:
        return iter(sorted(self._entries))

    def find_key(self, kid: str) -> tuple[IdentityEntry, IdentityKey] | None:
        """The identity holding the key ``kid`` and the key, or None."""
        uid = self._kids.get(kid)
        entry = self._entries.get(uid) if uid is not None else None
        if entry is None:
            return None
        key = next((k for k in entry.keys if k.kid == kid), None)
        return (entry, key) if key is not None else None

    def find_binding(self, issuer: str, subject: str) -> IdentityEntry | None:
        """The identity an external ``issuer`` names ``subject``, or None."""
        uid = self._bound.get((issuer, subject))
        return self._entries.get(uid) if uid is not None else None

    def state(self, uid: EntityUid, now: float) -> str | None:
        """``active``, ``suspended``, ``retired``, ``expired``; None when not registered."""
        entry = self._entries.get(uid)
        return state_at(entry, now) if entry is not None else None

    def is_active(self, uid: EntityUid, now: float) -> bool:
        """Whether ``uid`` may act at ``now``: True for an identity that is not registered (the
        registry is opt-in), else active and not expired."""
        entry = self._entries.get(uid)
        return entry is None or is_active(entry, now)

    # -- writing -----------------------------------------------------------------------------
    def create(self, entry: IdentityEntry) -> IdentityEntry:
        """Register ``entry``; raises IdentityConflict (``identity_exists``, ``key_exists``,
        ``binding_exists``, ``registry_busy``) or StoreError, and then nothing was written."""

        def build(before: IdentityEntry | None) -> IdentityEntry:
            if before is not None:
                raise IdentityConflict(
                    f"{uid_text(entry.subject)} is already registered ({before.status})",
                    code="identity_exists",
                )
            return entry

        return self._commit(entry.subject, build)[1]

    def update(
        self, uid: EntityUid, change: Callable[[IdentityEntry], IdentityEntry]
    ) -> tuple[IdentityEntry, IdentityEntry]:
        """Apply ``change`` (a :mod:`vigil.identity.lifecycle` function) to the freshest record of
        ``uid`` and write it; returns (before, after). Raises what ``change`` raises,
        IdentityNotFound, IdentityConflict or StoreError, and then nothing was written. ``change``
        may run more than once (again on a fresher record when another writer came first)."""

        def build(before: IdentityEntry | None) -> IdentityEntry:
            if before is None:
                raise IdentityNotFound(f"{uid_text(uid)} is not registered", code="identity_not_found")
            return change(before)

        before, after = self._commit(uid, build)
        assert before is not None
        return before, after

    def _commit(
        self, uid: EntityUid, build: Callable[[IdentityEntry | None], IdentityEntry]
    ) -> tuple[IdentityEntry | None, IdentityEntry]:
        with self._io:
            for _ in range(RETRIES):
                self.refresh()
                before = self._entries.get(uid)
                after = build(before)
                if after.subject != uid:
                    raise ValueError("a change cannot rename an identity")
                self._check_unique(after)
                generation = self.store.put_identity(after, generation=self.generation)
                if generation is not None:
                    entries = dict(self._entries)
                    entries[uid] = after
                    self._install(generation, entries)
                    return before, after
            raise IdentityConflict(
                "other writers kept changing the registry; nothing was written (try again)",
                code="registry_busy",
            )

    def _check_unique(self, entry: IdentityEntry) -> None:
        for k in entry.keys:
            owner = self._kids.get(k.kid)
            if owner is not None and owner != entry.subject:
                raise IdentityConflict(
                    f"the key {k.kid} is registered to {uid_text(owner)}: a key identifies one identity",
                    code="key_exists",
                    kid=k.kid,
                )
        for b in entry.bindings:
            owner = self._bound.get((b.issuer, b.subject))
            if owner is not None and owner != entry.subject:
                raise IdentityConflict(
                    f"{b.subject} from {b.issuer} is bound to {uid_text(owner)}", code="binding_exists"
                )

    def _install(self, generation: int, entries: dict[EntityUid, IdentityEntry]) -> None:
        kids: dict[str, EntityUid] = {}
        bound: dict[tuple[str, str], EntityUid] = {}
        for uid, e in entries.items():
            for k in e.keys:
                kids[k.kid] = uid
            for b in e.bindings:
                bound[(b.issuer, b.subject)] = uid
        with self._gate_lock:
            self._entries = entries
            self._kids = kids
            self._bound = bound
            self.generation = generation
            self._publish()

    # -- the gate ----------------------------------------------------------------------------
    def listen(self, listener: GateListener | None) -> None:
        """Call ``listener(inactive, next_expiry)`` now and after every change of the gate."""
        with self._gate_lock:
            self._listener = listener
            if listener is not None:
                listener(self.inactive, self.next_expiry)

    def expire(self, now: float) -> None:
        """Judge expiry at ``now`` (the decision path calls it when ``now`` reaches
        :attr:`next_expiry`): identities whose expiry has come join :attr:`inactive`. Memory only."""
        with self._gate_lock:
            if now <= self._gate_time:
                return
            self._gate_time = now
            exp = self._expiring
            pos = self._expiry_pos
            newly = []
            while pos < len(exp) and exp[pos][0] <= now:
                newly.append(exp[pos][1])
                pos += 1
            self._expiry_pos = pos
            if newly:
                self.inactive = self.inactive.union(newly)
            self.next_expiry = exp[pos][0] if pos < len(exp) else math.inf
            self._notify()

    def _publish(self) -> None:
        t = self._gate_time
        inactive = set()
        expiring = []
        for uid, e in self._entries.items():
            if e.status != ACTIVE:
                inactive.add(uid)
            elif e.expires is not None:
                if e.expires <= t:
                    inactive.add(uid)
                else:
                    expiring.append((e.expires, uid))
        expiring.sort()
        self._expiring = expiring
        self._expiry_pos = 0
        self.inactive = frozenset(inactive)
        self.next_expiry = expiring[0][0] if expiring else math.inf
        self._notify()

    def _notify(self) -> None:
        if self._listener is not None:
            self._listener(self.inactive, self.next_expiry)

    # -- usage -------------------------------------------------------------------------------
    def _load_usage(self) -> None:
        try:
            rows = self.store.identity_usage()
        except StoreError:
            self.usage_errors += 1
            return
        for u in rows:
            if u.last_used is not None:
                self._stored_use[u.subject] = u.last_used
            if u.tokens:
                self._tokens[u.subject] = dict(u.tokens)

    def note_used(self, uid: EntityUid, when: float) -> None:
        """Record a use of ``uid`` at ``when`` (memory; written by :meth:`flush_usage`)."""
        if when > self._noted.get(uid, 0.0):
            self._noted[uid] = when

    def last_used(self, uid: EntityUid) -> float | None:
        """The latest use of ``uid`` known (stored, noted, or read from the ``used`` reader)."""
        t = max(self._stored_use.get(uid, 0.0), self._noted.get(uid, 0.0))
        if self._used is not None:
            t = max(t, self._used(uid))
        return t if t > 0.0 else None

    def note_token_issued(self, uid: EntityUid, when: float) -> None:
        """Count one token issued to ``uid`` at ``when`` (the token service's hook)."""
        hour = int(when // HOUR)
        with self._tokens_lock:
            buckets = self._tokens.setdefault(uid, {})
            buckets[hour] = buckets.get(hour, 0) + 1
            for h in [h for h in buckets if h <= hour - DAY_HOURS]:
                del buckets[h]
            self._tokens_dirty.add(uid)

    def tokens_issued(self, uid: EntityUid, now: float) -> int:
        """Tokens issued to ``uid`` in the hour of ``now`` and the 23 hours before it."""
        hour = int(now // HOUR)
        with self._tokens_lock:
            buckets = self._tokens.get(uid)
            if not buckets:
                return 0
            return sum(n for h, n in buckets.items() if hour - DAY_HOURS < h <= hour)

    def flush_usage(self) -> int:
        """Write the usage of registered identities that changed since the last flush (one
        transaction); returns how many rows were written. Raises StoreError (the changes stay
        in memory for the next flush)."""
        items = []
        with self._tokens_lock:
            dirty = set(self._tokens_dirty)
            tokens = {uid: tuple(sorted(self._tokens.get(uid, {}).items())) for uid in dirty}
        for uid in list(self._entries):
            t = self.last_used(uid)
            newer = t is not None and t > self._stored_use.get(uid, 0.0)
            if newer or uid in dirty:
                stored_tokens = tokens.get(uid)
                if stored_tokens is None:
                    with self._tokens_lock:
                        stored_tokens = tuple(sorted(self._tokens.get(uid, {}).items()))
                items.append(IdentityUsage(uid, t, stored_tokens))
        if not items:
            return 0
        self.store.save_identity_usage(items)
        with self._tokens_lock:
            self._tokens_dirty -= dirty
        for u in items:
            if u.last_used is not None:
                self._stored_use[u.subject] = max(u.last_used, self._stored_use.get(u.subject, 0.0))
        return len(items)
