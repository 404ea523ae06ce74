"""All profiles of an engine, in memory, snapshotted to the store off the decision path.

Profiles are read and updated in memory only (a dict lookup per decision). A background thread
writes the profiles that changed every ``snapshot_interval_s`` and calls ``on_tick`` about once a
second (the engine uses it to notice quarantines and approvals made by another process); the last
snapshot is written at :meth:`ProfileBook.close`. A snapshot that cannot be written is counted
(``snapshot_errors``) and retried at the next tick: decisions never wait for the store.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Final

from vigil.behaviour.profile import Profile, inherited
from vigil.model.uid import EntityUid
from vigil.store.base import ProfileStore, StoreError

MAX_IDENTITIES: Final = 10_000_000
TICK_S: Final = 1.0


class ProfileBook:
    """Profiles by identity (bounded to ``limit`` identities), persisted through ``store``."""

    def __init__(
        self,
        store: ProfileStore | None,
        *,
        limit: int = MAX_IDENTITIES,
        strings: dict[str, str] | None = None,
    ) -> None:
        self.profiles: dict[EntityUid, Profile] = {}
        self.limit = limit
        self.untracked = 0
        self.store = store
        self.strings: dict[str, str] = strings if strings is not None else {}
        self.snapshot_errors = 0
        self.snapshots = 0
        self.load_errors = 0
        self.last_error = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if store is not None:
            self._load(store)

    def _load(self, store: ProfileStore) -> None:
        for uid, blob in store.load_profiles():
            try:
                p = self.profiles[uid] = Profile.from_blob(blob, self.strings)
                p.uid = uid
            except ValueError as e:
                self.load_errors += 1
                self.last_error = f"profile of {uid!r}: {e}"

    # -- the view the engine (and ``test_bad_input``) reads ------------------------------------
    @property
    def _by_identity(self) -> dict[EntityUid, Profile]:
        return self.profiles

    def get(self, uid: EntityUid) -> Profile | None:
        return self.profiles.get(uid)

    def create(self, uid: EntityUid, now: float) -> Profile | None:
        """A new profile for ``uid``; None (counted in ``untracked``) past ``limit`` identities."""
        if len(self.profiles) >= self.limit:
            self.untracked += 1
            return None
        p = self.profiles[uid] = Profile(now)
        p.uid = uid
        return p

    def inherit(self, uid: EntityUid, parent: Profile, now: float) -> Profile | None:
        """A new profile for ``uid`` that starts from ``parent``'s baseline
        (:func:`~vigil.behaviour.profile.inherited`); None (counted in ``untracked``) past
        ``limit`` identities."""
        if len(self.profiles) >= self.limit:
            self.untracked += 1
            return None
        p = self.profiles[uid] = inherited(parent, now, self.strings)
        p.uid = uid
        return p

    def __len__(self) -> int:
        return len(self.profiles)

    def __iter__(self) -> Iterator[EntityUid]:
        return iter(list(self.profiles))

    # -- persistence ----------------------------------------------------------------------------
    def snapshot(self) -> int:
        """Write every changed profile now; returns how many were written."""
        store = self.store
        if store is None:
            return 0
        with self._lock:
            batch: list[tuple[EntityUid, bytes]] = []
            changed: list[Profile] = []
            saved: list[int] = []
            for uid, p in list(self.profiles.items()):
                requests = p.allowed + p.denied
                if p.dirty or requests != p.saved:
                    p.dirty = False  # cleared first: a change during serialization marks it again
                    changed.append(p)
                    saved.append(p.saved)
                    p.saved = requests
                    batch.append((uid, p.to_blob()))
            try:
                store.save_profiles(batch)
            except StoreError as e:
                for p, before in zip(changed, saved, strict=True):
                    p.dirty = True
                    p.saved = before
                self.snapshot_errors += 1
                self.last_error = e.message
                return 0
            if batch:
                self.snapshots += 1
            return len(batch)

    def start(self, interval_s: float, on_tick: Callable[[], None] | None = None) -> None:
        """Start the background snapshot thread (idempotent)."""
        if self._thread is not None or self.store is None:
            return
        ref = weakref.ref(self)
        stop = self._stop

        def run() -> None:
            waited = 0.0
            while not stop.wait(TICK_S):
                book = ref()
                if book is None:
                    return
                waited += TICK_S
                try:
                    if on_tick is not None:
                        on_tick()
                    if waited >= interval_s:
                        waited = 0.0
                        book.snapshot()
                except StoreError as e:
                    book.snapshot_errors += 1
                    book.last_error = e.message
                del book

        self._thread = threading.Thread(target=run, name="vigil-profile-snapshots", daemon=True)
        self._thread.start()
        atexit.register(_close_at_exit, ref)

    def close(self) -> None:
        """Stop the thread and write the last snapshot."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None
        self.snapshot()


def _close_at_exit(ref: weakref.ref[ProfileBook]) -> None:
    book = ref()
    if book is not None:
        book.close()
