"""State stores: behaviour profiles, approval tickets, quarantines and the log of their changes.

``open_store`` picks the backend the workspace names (``[store] backend``); both backends pass the
same conformance suite. PostgreSQL and Redis come with the multi-node work.
"""

from __future__ import annotations

from pathlib import Path

from vigil.store.base import (
    APPROVED,
    DENIED,
    EXPIRED,
    PENDING,
    TICKET_STATES,
    USED,
    Change,
    QuarantineEntry,
    Store,
    StoreError,
    Ticket,
    uid_text,
)
from vigil.store.memory import MemoryStore
from vigil.store.sqlite import SqliteStore
from vigil.workspace.settings import StoreSettings


def open_store(settings: StoreSettings, root: Path) -> Store:
    """The store ``settings`` name; a relative SQLite path is relative to the workspace ``root``."""
    if settings.backend == "memory":
        return MemoryStore()
    path = Path(settings.path)
    return SqliteStore(path if path.is_absolute() else root / path)


__all__ = [
    "APPROVED",
    "DENIED",
    "EXPIRED",
    "PENDING",
    "TICKET_STATES",
    "USED",
    "Change",
    "MemoryStore",
    "QuarantineEntry",
    "SqliteStore",
    "Store",
    "StoreError",
    "Ticket",
    "open_store",
    "uid_text",
]
