"""State stores: behaviour profiles, approval tickets, quarantines, identity lifecycle records and
the log of their changes.

``open_store`` picks the backend the workspace names (``[store] backend``); both backends pass the
same conformance suite: memory, SQLite (the embedded default) and PostgreSQL (shared by several
processes or nodes; :mod:`vigil.store.postgres`, imported only when named).
"""

from __future__ import annotations

from pathlib import Path

from vigil.store.base import (
    ACTIVE,
    APPROVED,
    DENIED,
    EXPIRED,
    IDENTITY_STATES,
    PENDING,
    RETIRED,
    SUSPENDED,
    TICKET_STATES,
    USED,
    Change,
    IdentityBinding,
    IdentityEntry,
    IdentityKey,
    IdentityStore,
    IdentityUsage,
    QuarantineEntry,
    Revocation,
    RevocationStore,
    Store,
    StoreError,
    Ticket,
    bounded,
    uid_text,
)
from vigil.store.memory import MemoryStore
from vigil.store.settings import StoreSettings
from vigil.store.sqlite import SqliteStore, check_state


def store_path(settings: StoreSettings, root: Path) -> Path | None:
    """The SQLite file ``settings`` name (relative to the workspace ``root``), None for memory and
    PostgreSQL."""
    if settings.backend in ("memory", "postgres"):
        return None
    path = Path(settings.path)
    return path if path.is_absolute() else root / path


def state_dir(settings: StoreSettings, root: Path) -> Path:
    """Where a workspace keeps state besides the store (the token service's signing keys): the
    SQLite file's directory, else ``.vigil`` in the workspace ``root``."""
    path = store_path(settings, root)
    return path.parent if path is not None else root / ".vigil"


def open_store(settings: StoreSettings, root: Path, *, new_state: bool = False) -> Store:
    """The store ``settings`` name; a relative SQLite path is relative to the workspace ``root``.

    Raises StoreError when the database existed (its marker is there) but is gone, unless
    ``new_state`` (see :func:`vigil.store.sqlite.check_state`)."""
    if settings.backend == "postgres":
        from vigil.store.postgres import PostgresStore  # psycopg is loaded only when used

        return PostgresStore(
            settings.url,
            schema=settings.schema,
            busy_timeout_s=settings.busy_timeout_ms / 1000,
            pool_size=settings.pool_size,
        )
    path = store_path(settings, root)
    if path is None:
        return MemoryStore()
    check_state(path, new_state=new_state)
    return SqliteStore(path, busy_timeout_s=settings.busy_timeout_ms / 1000)


__all__ = [
    "ACTIVE",
    "APPROVED",
    "DENIED",
    "EXPIRED",
    "IDENTITY_STATES",
    "PENDING",
    "RETIRED",
    "SUSPENDED",
    "TICKET_STATES",
    "USED",
    "Change",
    "IdentityBinding",
    "IdentityEntry",
    "IdentityKey",
    "IdentityStore",
    "IdentityUsage",
    "MemoryStore",
    "QuarantineEntry",
    "Revocation",
    "RevocationStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "Ticket",
    "bounded",
    "check_state",
    "open_store",
    "state_dir",
    "store_path",
    "uid_text",
]
