"""SQLite store (stdlib ``sqlite3``): the embedded default, one file, zero servers.

The file is created on the first write, so loading a workspace (``vigil check``) writes nothing.
WAL journal, ``synchronous = NORMAL``: the CLI and a running server can use the same file at once,
and ``version()`` (SQLite's ``data_version`` plus this connection's commits) tells the server when
the CLI changed something. Any SQLite failure raises :class:`~vigil.store.base.StoreError`.

Waiting is bounded: a call waits for this store's lock and for SQLite's locks at most
``busy_timeout_s`` (``[store] busy_timeout_ms``), or less inside a
:func:`~vigil.store.base.bounded` block. After a call on the decision path (``bounded(...,
fail_fast=True)``) failed, decision-path calls fail at once for ``BREAKER_S`` (a locked file costs
the decision path one short wait a second, not one per request); other calls (operators,
snapshots) still try, and any success closes the breaker.

A marker file beside the database (``<name>.marker``) is written when the database is created:
:func:`check_state` refuses a workspace whose marker exists but whose database is gone (a lost
database would otherwise silently lift every quarantine).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

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
    StoreError,
    Ticket,
    fail_fast,
    hold,
    wait_limit,
)
from vigil.store.rows import (
    IDENTITIES_QUERY,
    IDENTITY_BINDINGS_QUERY,
    IDENTITY_KEYS_QUERY,
    identity_binding_rows,
    identity_entries,
    identity_key_rows,
    identity_row,
    revocation,
    revocation_row,
    ticket_row,
)
from vigil.store.rows import IDENTITY_COLUMNS as _IDENTITY_COLUMNS
from vigil.store.rows import TICKET_COLUMNS as _TICKET_COLUMNS
from vigil.store.rows import ticket as ticket_from_row

SCHEMA_VERSION = 1
BREAKER_S = 1.0
PROFILE_CHUNK = 256
MARKER_SUFFIX = ".marker"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (subject_type, subject_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tickets (
    id TEXT PRIMARY KEY,
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,
    action_type TEXT NOT NULL, action_id TEXT NOT NULL,
    resource_type TEXT NOT NULL, resource_id TEXT NOT NULL,
    created REAL NOT NULL, expires REAL NOT NULL, risk INTEGER NOT NULL,
    signals TEXT NOT NULL, why TEXT NOT NULL, state TEXT NOT NULL,
    decided_by TEXT, decided_at REAL, note TEXT NOT NULL,
    network TEXT NOT NULL DEFAULT '', region TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '', uses INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS tickets_by_subject ON tickets (subject_type, subject_id);
CREATE INDEX IF NOT EXISTS tickets_by_state ON tickets (state);
CREATE TABLE IF NOT EXISTS quarantines (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,
    since REAL NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (subject_type, subject_id)
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL,
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, by TEXT NOT NULL, detail TEXT NOT NULL
);
"""
# The identity registry (added after schema version 1 was first written: a file from before gets
# these tables when it is opened). Its generation is the meta row 'identity_generation'.
_IDENTITY_SCHEMA = """
CREATE TABLE IF NOT EXISTS identities (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,
    owner TEXT NOT NULL, purpose TEXT NOT NULL, kind TEXT NOT NULL,
    created REAL NOT NULL, created_by TEXT NOT NULL, expires REAL,
    status TEXT NOT NULL, status_since REAL NOT NULL, status_by TEXT NOT NULL,
    status_reason TEXT NOT NULL, rotated REAL,
    PRIMARY KEY (subject_type, subject_id)
);
CREATE TABLE IF NOT EXISTS identity_keys (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, position INTEGER NOT NULL,
    kid TEXT NOT NULL, jwk TEXT NOT NULL, added REAL NOT NULL, by TEXT NOT NULL,
    PRIMARY KEY (subject_type, subject_id, position)
);
CREATE TABLE IF NOT EXISTS identity_bindings (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, position INTEGER NOT NULL,
    issuer TEXT NOT NULL, external_subject TEXT NOT NULL, added REAL NOT NULL, by TEXT NOT NULL,
    PRIMARY KEY (subject_type, subject_id, position)
);
CREATE TABLE IF NOT EXISTS identity_usage (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, last_used REAL, tokens TEXT NOT NULL,
    PRIMARY KEY (subject_type, subject_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revocations (
    kind TEXT NOT NULL, key TEXT NOT NULL, jti TEXT NOT NULL,
    actor_type TEXT, actor_id TEXT, subject_type TEXT, subject_id TEXT,
    until REAL, revoked REAL NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
"""
_IDENTITY_TABLES = ("identities", "identity_keys", "identity_bindings", "identity_usage", "revocations")
# Columns added after schema version 1 was first written: a state file from before gets them
# (with their defaults) when it is opened, instead of being refused.
_ADDED_TICKET_COLUMNS = (
    ("network", "TEXT NOT NULL DEFAULT ''"),
    ("region", "TEXT NOT NULL DEFAULT ''"),
    ("user_agent", "TEXT NOT NULL DEFAULT ''"),
    ("uses", "INTEGER NOT NULL DEFAULT 1"),
)
T = TypeVar("T")


def _migrate(db: sqlite3.Connection) -> None:
    """Add the ticket columns and the identity tables a state file written by an earlier vigil
    lacks (raises sqlite3.Error)."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not all(t in tables for t in _IDENTITY_TABLES):
        db.executescript(_IDENTITY_SCHEMA)
    have = {row[1] for row in db.execute("PRAGMA table_info(tickets)")}
    for name, decl in _ADDED_TICKET_COLUMNS:
        if name not in have:
            try:
                db.execute(f"ALTER TABLE tickets ADD COLUMN {name} {decl}")
            except sqlite3.OperationalError as e:
                if "duplicate column" not in str(e):  # another process migrated it meanwhile
                    raise


def _schema_version(db: sqlite3.Connection) -> tuple[Any, ...] | None:
    """The stored schema version row, or None when the database has no schema yet."""
    try:
        row: tuple[Any, ...] | None = db.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return None
        raise
    return row


def marker_path(path: Path) -> Path:
    """The marker file that says a database existed at ``path``."""
    return path.with_name(path.name + MARKER_SUFFIX)


def check_state(path: Path, *, new_state: bool = False) -> None:
    """Refuse a lost database: raises StoreError when the marker of ``path`` exists and ``path``
    does not, unless ``new_state`` (then the marker is removed: the next write starts afresh)."""
    marker = marker_path(path)
    if path.exists() or not marker.exists():
        return
    if new_state:
        try:
            marker.unlink()
        except OSError as e:
            raise StoreError(f"cannot remove the marker {str(marker)!r}: {e.strerror}") from None
        return
    raise StoreError(
        f"the state database {str(path)!r} is missing but existed before ({marker.name} is there): "
        "quarantines, approvals and profiles would silently start empty; restore the file, or "
        "start with a new state explicitly (vigil serve --new-state)"
    )


class SqliteStore:
    """A :class:`~vigil.store.base.Store` in one SQLite file (thread-safe: one connection, one lock)."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 1.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._writes = 0
        self._closed = False
        self._busy_ms = -1  # the busy timeout last set on the connection
        self._broken_until = 0.0  # monotonic time until which bounded calls fail at once

    # -- connection --------------------------------------------------------------------------------
    def _open(self, create: bool) -> sqlite3.Connection | None:
        if self._db is not None:
            return self._db
        if self._closed:
            raise StoreError(f"store {str(self.path)!r} is closed")
        if not create and not self.path.exists():
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # created 0600 before SQLite opens it (its -wal and -shm files take the same mode)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
            db = sqlite3.connect(
                self.path, timeout=self._wait(), check_same_thread=False, isolation_level=None
            )
            try:
                db.execute("PRAGMA synchronous = NORMAL")
                row = _schema_version(db)  # an existing database is opened without writing
                if row is None:
                    db.execute("PRAGMA journal_mode = WAL")
                    db.executescript(_SCHEMA + _IDENTITY_SCHEMA)
                    db.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                    row = _schema_version(db)
                _migrate(db)  # writes only when an earlier vigil's file lacks a column or table
            except BaseException:
                db.close()
                raise
            if row is None or int(row[0]) != SCHEMA_VERSION:
                db.close()
                raise StoreError(f"store {str(self.path)!r} has schema version {row and row[0]!r}")
            marker = marker_path(self.path)
            if not marker.exists():
                marker.write_text(f"vigil state database {self.path.name} created {time.time():.0f}\n")
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open store {str(self.path)!r}: {e}") from None
        self._db = db
        self._busy_ms = -1
        return db

    def _wait(self) -> float:
        limit = wait_limit()
        return self.busy_timeout_s if limit is None else min(limit, self.busy_timeout_s)

    def _enter(self) -> None:
        """Before a call: fail at once on the decision path while the breaker is open."""
        if fail_fast() and time.monotonic() < self._broken_until:
            raise StoreError(f"store {str(self.path)!r} is unavailable (it failed within the last second)")

    def _failed(self, e: BaseException | str) -> StoreError:
        if fail_fast():
            self._broken_until = time.monotonic() + BREAKER_S
        if isinstance(e, str):
            return StoreError(e)
        return StoreError(f"store {str(self.path)!r}: {e}")

    def _busy(self, db: sqlite3.Connection) -> None:
        ms = int(self._wait() * 1000)
        if ms != self._busy_ms:
            db.execute(f"PRAGMA busy_timeout = {ms:d}")
            self._busy_ms = ms

    def _read(self, fn: Callable[[sqlite3.Connection], T], empty: T) -> T:
        self._enter()
        try:
            with hold(self._lock, f"store {str(self.path)!r}"):
                db = self._open(create=False)
                if db is None:
                    return empty
                self._busy(db)
                out = fn(db)
        except sqlite3.Error as e:
            raise self._failed(e) from None
        except StoreError as e:
            raise self._failed(e.message) from None
        self._broken_until = 0.0
        return out

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        self._enter()
        try:
            with hold(self._lock, f"store {str(self.path)!r}"):
                db = self._open(create=True)
                assert db is not None
                self._busy(db)
                db.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                self._writes += 1
        except sqlite3.Error as e:
            raise self._failed(e) from None
        except StoreError as e:
            raise self._failed(e.message) from None
        self._broken_until = 0.0
        return out

    def version(self) -> int:
        def dv(db: sqlite3.Connection) -> int:
            return int(db.execute("PRAGMA data_version").fetchone()[0])

        return (self._read(dv, 0) << 32) | (self._writes & 0xFFFFFFFF)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._closed = True

    # -- profiles --------------------------------------------------------------------------------
    def load_profiles(self) -> Iterator[tuple[EntityUid, bytes]]:
        rows: list[Any] = self._read(
            lambda db: db.execute("SELECT subject_type, subject_id, blob FROM profiles").fetchall(), []
        )
        return (((t, i), bytes(b)) for t, i, b in rows)

    def save_profiles(self, items: Iterable[tuple[EntityUid, bytes]]) -> int:
        """One transaction per ``PROFILE_CHUNK`` rows: a large snapshot never holds the lock long
        enough to make a decision's ticket or quarantine miss ``decision_timeout_ms``."""
        rows = [(uid[0], uid[1], blob) for uid, blob in items]
        written = 0
        for i in range(0, len(rows), PROFILE_CHUNK):
            chunk = rows[i : i + PROFILE_CHUNK]

            def run(db: sqlite3.Connection, chunk: list[tuple[str, str, bytes]] = chunk) -> int:
                db.executemany(
                    "INSERT OR REPLACE INTO profiles (subject_type, subject_id, blob) VALUES (?, ?, ?)", chunk
                )
                return len(chunk)

            written += self._write(run)
        return written

    # -- tickets ---------------------------------------------------------------------------------
    def put_ticket(self, ticket: Ticket) -> None:
        row = ticket_row(ticket)
        self._write(
            lambda db: db.execute(
                f"INSERT OR REPLACE INTO tickets ({_TICKET_COLUMNS}) VALUES ({', '.join('?' * 20)})", row
            )
        )

    def decide_ticket(self, decided: Ticket, now: float) -> bool:
        # the state is tested by the UPDATE itself, inside the write transaction, not on a copy
        # read before it (another process may have decided the ticket meanwhile)
        row = ticket_row(decided)
        sql = (
            f"UPDATE tickets SET ({_TICKET_COLUMNS}) = ({', '.join('?' * 20)}) "
            "WHERE id = ? AND state = ? AND expires > ?"
        )
        return self._write(lambda db: db.execute(sql, (*row, decided.id, PENDING, now)).rowcount == 1)

    def use_ticket(self, ticket_id: str, now: float) -> Ticket | None:
        def run(db: sqlite3.Connection) -> Ticket | None:
            cur = db.execute(
                "UPDATE tickets SET uses = uses - 1, state = CASE WHEN uses > 1 THEN ? ELSE ? END "
                "WHERE id = ? AND state = ? AND uses > 0 AND expires > ?",
                (APPROVED, USED, ticket_id, APPROVED, now),
            )
            if cur.rowcount != 1:
                return None
            row = db.execute(f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
            return ticket_from_row(row)

        return self._write(run)

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        row = self._read(
            lambda db: db.execute(
                f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE id = ?", (ticket_id,)
            ).fetchone(),
            None,
        )
        return ticket_from_row(row) if row is not None else None

    def tickets(self, *, state: str | None = None, subject: EntityUid | None = None) -> list[Ticket]:
        where = []
        args: list[Any] = []
        if state is not None:
            where.append("state = ?")
            args.append(state)
        if subject is not None:
            where.append("subject_type = ? AND subject_id = ?")
            args.extend(subject)
        sql = f"SELECT {_TICKET_COLUMNS} FROM tickets"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created, id"
        rows: list[Any] = self._read(lambda db: db.execute(sql, args).fetchall(), [])
        return [ticket_from_row(r) for r in rows]

    # -- quarantine ------------------------------------------------------------------------------
    def put_quarantine(self, entry: QuarantineEntry) -> None:
        self._write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO quarantines (subject_type, subject_id, since, by, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                (entry.subject[0], entry.subject[1], entry.since, entry.by, entry.reason),
            )
        )

    def remove_quarantine(self, subject: EntityUid) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "DELETE FROM quarantines WHERE subject_type = ? AND subject_id = ?", (subject[0], subject[1])
            )
            return cur.rowcount > 0

        return self._write(run)

    def quarantines(self) -> list[QuarantineEntry]:
        rows: list[Any] = self._read(
            lambda db: db.execute(
                "SELECT subject_type, subject_id, since, by, reason FROM quarantines "
                "ORDER BY since, subject_type, subject_id"
            ).fetchall(),
            [],
        )
        return [QuarantineEntry((r[0], r[1]), r[2], r[3], r[4]) for r in rows]

    # -- change log ------------------------------------------------------------------------------
    def append_change(
        self, time: float, kind: str, subject: EntityUid, by: str, detail: dict[str, Any]
    ) -> Change:
        text = orjson.dumps(detail).decode()

        def run(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO changes (time, kind, subject_type, subject_id, by, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (time, kind, subject[0], subject[1], by, text),
            )
            return int(cur.lastrowid or 0)

        seq = self._write(run)
        return Change(seq, time, kind, subject, by, dict(detail))

    def changes(self, *, after: int = 0, limit: int = 1_000) -> list[Change]:
        rows: list[Any] = self._read(
            lambda db: db.execute(
                "SELECT seq, time, kind, subject_type, subject_id, by, detail FROM changes "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall(),
            [],
        )
        return [Change(r[0], r[1], r[2], (r[3], r[4]), r[5], orjson.loads(r[6])) for r in rows]

    def recent_changes(self, *, before: int | None = None, limit: int = 100) -> list[Change]:
        rows: list[Any] = self._read(
            lambda db: db.execute(
                "SELECT seq, time, kind, subject_type, subject_id, by, detail FROM changes "
                "WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                (before if before is not None else 2**62, max(limit, 0)),
            ).fetchall(),
            [],
        )
        return [Change(r[0], r[1], r[2], (r[3], r[4]), r[5], orjson.loads(r[6])) for r in rows]

    # -- identity registry -----------------------------------------------------------------------
    def identity_generation(self) -> int:
        return self._read(_generation, 0)

    def identities(self) -> tuple[int, list[IdentityEntry]]:
        def run(db: sqlite3.Connection) -> tuple[int, list[IdentityEntry]]:
            db.execute("BEGIN")  # one snapshot for the four reads
            try:
                generation = _generation(db)
                rows = db.execute(IDENTITIES_QUERY).fetchall()
                key_rows = db.execute(IDENTITY_KEYS_QUERY).fetchall()
                binding_rows = db.execute(IDENTITY_BINDINGS_QUERY).fetchall()
            finally:
                db.execute("COMMIT")
            return generation, identity_entries(rows, key_rows, binding_rows)

        empty: tuple[int, list[IdentityEntry]] = (0, [])
        return self._read(run, empty)

    def put_identity(self, entry: IdentityEntry, *, generation: int) -> int | None:
        uid = entry.subject
        row = identity_row(entry)

        def run(db: sqlite3.Connection) -> int | None:
            current = _generation(db)
            if current != generation:
                return None
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('identity_generation', ?)",
                (str(current + 1),),
            )
            db.execute(
                f"INSERT OR REPLACE INTO identities ({_IDENTITY_COLUMNS}) VALUES ({', '.join('?' * 13)})", row
            )
            db.execute("DELETE FROM identity_keys WHERE subject_type = ? AND subject_id = ?", uid)
            db.executemany(
                "INSERT INTO identity_keys (subject_type, subject_id, position, kid, jwk, added, by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                identity_key_rows(entry),
            )
            db.execute("DELETE FROM identity_bindings WHERE subject_type = ? AND subject_id = ?", uid)
            db.executemany(
                "INSERT INTO identity_bindings (subject_type, subject_id, position, issuer, "
                "external_subject, added, by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                identity_binding_rows(entry),
            )
            return current + 1

        return self._write(run)

    def identity_usage(self) -> list[IdentityUsage]:
        rows: list[Any] = self._read(
            lambda db: db.execute(
                "SELECT subject_type, subject_id, last_used, tokens FROM identity_usage "
                "ORDER BY subject_type, subject_id"
            ).fetchall(),
            [],
        )
        return [
            IdentityUsage((r[0], r[1]), r[2], tuple((int(h), int(n)) for h, n in orjson.loads(r[3])))
            for r in rows
        ]

    def save_identity_usage(self, items: Iterable[IdentityUsage]) -> int:
        rows = [
            (u.subject[0], u.subject[1], u.last_used, orjson.dumps([list(t) for t in u.tokens]).decode())
            for u in items
        ]
        if not rows:
            return 0

        def run(db: sqlite3.Connection) -> int:
            db.executemany(
                "INSERT INTO identity_usage (subject_type, subject_id, last_used, tokens) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (subject_type, subject_id) DO UPDATE SET "
                "last_used = CASE WHEN identity_usage.last_used IS NULL "
                "OR excluded.last_used > identity_usage.last_used THEN excluded.last_used "
                "ELSE identity_usage.last_used END, tokens = excluded.tokens",
                rows,
            )
            return len(rows)

        return self._write(run)

    # -- revocations -----------------------------------------------------------------------------
    def revocation_generation(self) -> int:
        return self._read(_revocation_generation, 0)

    def revocations(self) -> tuple[int, list[Revocation]]:
        def run(db: sqlite3.Connection) -> tuple[int, list[Revocation]]:
            db.execute("BEGIN")
            try:
                generation = _revocation_generation(db)
                rows = db.execute(
                    "SELECT kind, jti, actor_type, actor_id, subject_type, subject_id, until, revoked, "
                    "by, reason FROM revocations ORDER BY revoked, key"
                ).fetchall()
            finally:
                db.execute("COMMIT")
            return generation, [revocation(r) for r in rows]

        empty: tuple[int, list[Revocation]] = (0, [])
        return self._read(run, empty)

    def put_revocation(self, revocation: Revocation) -> bool:
        row = revocation_row(revocation)

        def run(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "INSERT OR IGNORE INTO revocations (kind, key, jti, actor_type, actor_id, subject_type, "
                "subject_id, until, revoked, by, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            if cur.rowcount != 1:
                return False
            _bump_revocations(db)
            return True

        return self._write(run)

    def prune_revocations(self, before: float) -> int:
        def run(db: sqlite3.Connection) -> int:
            n = db.execute(
                "DELETE FROM revocations WHERE until IS NOT NULL AND until < ?", (before,)
            ).rowcount
            if n:
                _bump_revocations(db)
            return int(n)

        return self._write(run)


def _revocation_generation(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = 'revocation_generation'").fetchone()
    return int(row[0]) if row is not None else 0


def _bump_revocations(db: sqlite3.Connection) -> None:
    db.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('revocation_generation', ?)",
        (str(_revocation_generation(db) + 1),),
    )


def _generation(db: sqlite3.Connection) -> int:
    """The identity registry's generation (meta row; 0 before the first record)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'identity_generation'").fetchone()
    return int(row[0]) if row is not None else 0
