"""PostgreSQL store (psycopg 3 and its connection pool): the shared state of several vigil processes
or nodes, with the same semantics as the SQLite store (the one conformance suite runs on both).

**Schema and migrations.** Tables live in ``[store] schema`` (created when missing) or the
connection's default schema. The first call of a process migrates: inside one transaction holding
an advisory lock (per schema), it reads ``schema_version`` and applies the versioned steps of
``MIGRATIONS`` not applied yet; a second process starting at the same time waits on the lock and
then finds nothing to do. A database whose schema is newer than this vigil is refused.

**One order of writes.** Every write transaction (but profile snapshots and usage rows, below)
first increments the single row of ``vigil_meta`` (``version``, what
:meth:`PostgresStore.version` reads). That row lock orders those writes of all processes: the
change log's ``seq`` is assigned in commit order, so a reader that catches up with
``changes(after=last_seen)`` never skips a change committed late with a lower ``seq``. The cost:
those writes are serial, one commit (one fsync, ~7 ms on this machine's disk) at a time across
the cluster; vigil makes them per operator change, step-up ticket and approval use, not per
decision. Profile snapshots and identity usage rows, the bulk of the writes, stay outside that
order (they are not in the change log and no running process mirrors them).

**Bounded waits.** A call waits for a pooled connection and for its statements at most
``busy_timeout_s`` (``[store] busy_timeout_ms``), or less inside a
:func:`~vigil.store.base.bounded` block (``SET LOCAL statement_timeout``); past it, or on any
database error, it raises :class:`~vigil.store.base.StoreError` (``store_unavailable``). After a
decision-path call failed, decision-path calls fail at once for ``BREAKER_S``, as with SQLite.

**Reconnection.** A pooled connection the server terminated (``pg_terminate_backend``, a restart)
fails at its first statement: the pool discards it and opens a new one in the background, and the
call is tried again on another connection (only when nothing of it ran), so a call after an outage
either succeeds on a new connection or fails with ``store_unavailable`` in bounded time; nothing
has to be restarted. (The pool's own check on checkout is not used: after a failed check it backs
off for a second.)
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

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

BREAKER_S = 1.0
PROFILE_CHUNK = 256
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
# pg_advisory_xact_lock(MIGRATE_LOCK, hashtext(schema)): one migrating process per schema
MIGRATE_LOCK = 0x56494731  # "VIG1"

# The versioned steps of the schema: (version, statements). Append, never edit a step once released.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE vigil_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL, identity_generation BIGINT NOT NULL
);
INSERT INTO vigil_meta (id, version, identity_generation) VALUES (1, 0, 0);
CREATE TABLE profiles (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, blob BYTEA NOT NULL,
    PRIMARY KEY (subject_type, subject_id)
);
CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,
    action_type TEXT NOT NULL, action_id TEXT NOT NULL,
    resource_type TEXT NOT NULL, resource_id TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL, risk INTEGER NOT NULL,
    signals TEXT NOT NULL, why TEXT NOT NULL, state TEXT NOT NULL,
    decided_by TEXT, decided_at DOUBLE PRECISION, note TEXT NOT NULL,
    network TEXT NOT NULL DEFAULT '', region TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '', uses INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX tickets_by_subject ON tickets (subject_type, subject_id);
CREATE INDEX tickets_by_state ON tickets (state);
CREATE TABLE quarantines (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (subject_type, subject_id)
);
CREATE TABLE changes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL, subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, by TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE identities (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,
    owner TEXT NOT NULL, purpose TEXT NOT NULL, kind TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL, created_by TEXT NOT NULL, expires DOUBLE PRECISION,
    status TEXT NOT NULL, status_since DOUBLE PRECISION NOT NULL, status_by TEXT NOT NULL,
    status_reason TEXT NOT NULL, rotated DOUBLE PRECISION,
    PRIMARY KEY (subject_type, subject_id)
);
CREATE TABLE identity_keys (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, position INTEGER NOT NULL,
    kid TEXT NOT NULL, jwk TEXT NOT NULL, added DOUBLE PRECISION NOT NULL, by TEXT NOT NULL,
    PRIMARY KEY (subject_type, subject_id, position)
);
CREATE TABLE identity_bindings (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, position INTEGER NOT NULL,
    issuer TEXT NOT NULL, external_subject TEXT NOT NULL, added DOUBLE PRECISION NOT NULL,
    by TEXT NOT NULL,
    PRIMARY KEY (subject_type, subject_id, position)
);
CREATE TABLE identity_usage (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, last_used DOUBLE PRECISION,
    tokens TEXT NOT NULL,
    PRIMARY KEY (subject_type, subject_id)
);
""",
    ),
    (
        2,
        """
ALTER TABLE vigil_meta ADD COLUMN revocation_generation BIGINT NOT NULL DEFAULT 0;
CREATE TABLE revocations (
    kind TEXT NOT NULL, key TEXT NOT NULL, jti TEXT NOT NULL,
    actor_type TEXT, actor_id TEXT, subject_type TEXT, subject_id TEXT,
    until DOUBLE PRECISION, revoked DOUBLE PRECISION NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
""",
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_TICKET_PARAMS = ", ".join(["%s"] * 20)
_TICKET_UPDATE = ", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in _TICKET_COLUMNS.split(",")[1:])
_CHANGE_COLUMNS = "seq, time, kind, subject_type, subject_id, by, detail"
T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]


def _change(r: tuple[Any, ...]) -> Change:
    return Change(r[0], r[1], r[2], (r[3], r[4]), r[5], orjson.loads(r[6]))


def redact(url: str) -> str:
    """``url`` without its password (for messages)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def migrate(conn: Conn, schema: str) -> int:
    """Bring ``schema`` (``""``: the connection's current schema) to ``SCHEMA_VERSION`` in the
    caller's transaction, under the schema's advisory lock; returns the version found before.
    Raises StoreError when the stored version is newer than this vigil knows."""
    name = schema or str(_one(conn, "SELECT current_schema()"))
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (MIGRATE_LOCK, name))
    if schema:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
    )
    found = int(_one(conn, "SELECT COALESCE(MAX(version), 0) FROM schema_version"))
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the PostgreSQL schema {name!r} has schema version {found}; this vigil knows up to "
            f"{SCHEMA_VERSION}"
        )
    for version, statements in MIGRATIONS:
        if version > found:
            conn.execute(statements.encode())
            conn.execute(
                "INSERT INTO schema_version (version, applied) VALUES (%s, %s)", (version, time.time())
            )
    return found


def _one(conn: Conn, query: str, args: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query.encode(), args).fetchone()
    return None if row is None else row[0]


class PostgresStore:
    """A :class:`~vigil.store.base.Store` in a PostgreSQL database (thread-safe: a connection pool).

    ``url`` a libpq connection URL (``postgresql://user@host:5432/db``); ``schema`` the schema of
    vigil's tables (``""``: the connection's default); ``pool_size`` the most connections this
    process opens."""

    def __init__(
        self, url: str, *, schema: str = "", busy_timeout_s: float = 1.0, pool_size: int = 4
    ) -> None:
        if schema and not SCHEMA_NAME.match(schema):
            raise StoreError(f"{schema!r} is not a schema name (lowercase letters, digits, _)")
        self.url = url
        self.schema = schema
        self.busy_timeout_s = busy_timeout_s
        options = f"-c statement_timeout={max(int(busy_timeout_s * 1000), 1)}"
        if schema:
            options += f" -c search_path={schema}"
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            kwargs={
                "options": options,
                "connect_timeout": max(2, int(busy_timeout_s + 0.999)),
                "application_name": f"vigil/{schema}" if schema else "vigil",
            },
            min_size=1,
            max_size=max(pool_size, 1),
            open=False,
            timeout=busy_timeout_s,
            reconnect_timeout=float("inf"),
            name=f"vigil-{schema or 'store'}",
        )
        self._lock = threading.Lock()
        self._ready = False  # migrated (once per process)
        self._closed = False
        self._broken_until = 0.0

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r}, schema={self.schema!r})"

    # -- connection --------------------------------------------------------------------------------
    def _wait(self) -> float:
        limit = wait_limit()
        return self.busy_timeout_s if limit is None else max(min(limit, self.busy_timeout_s), 0.001)

    def _where(self) -> str:
        return f"store {redact(self.url)}" + (f" (schema {self.schema})" if self.schema else "")

    def _start(self) -> None:
        """Open the pool and migrate, once (raises StoreError)."""
        with self._lock:
            if self._closed:
                raise StoreError(f"{self._where()} is closed")
            if self._ready:
                return
            self._pool.open(wait=False)
            with self._pool.connection(timeout=max(self.busy_timeout_s, 5.0)) as conn, conn.transaction():
                conn.execute(b"SET LOCAL statement_timeout = 60000")  # may wait for another migrator
                migrate(conn, self.schema)
            self._ready = True

    def _run(self, fn: Callable[[Conn], T], *, write: bool, snapshot: bool = False) -> T:
        """``fn`` in one transaction on a pooled connection (``write``: first take the write order;
        ``snapshot``: every statement reads one snapshot); psycopg errors become StoreError.

        A connection the server closed (terminated, restarted) fails at the first statement,
        before ``fn`` ran: the pool drops it and the call is tried again on another (a new one once
        the pool's idle ones are used up), until the wait is over. A failure inside ``fn`` is
        never retried (a write might have happened)."""
        if fail_fast() and time.monotonic() < self._broken_until:
            raise StoreError(f"{self._where()} is unavailable (it failed within the last second)")
        wait = self._wait()
        deadline = time.monotonic() + wait
        try:
            if not self._ready:
                self._start()
            while True:
                started = False
                conn: Conn | None = None
                try:
                    left = max(deadline - time.monotonic(), 0.001)
                    with self._pool.connection(timeout=left) as conn, conn.transaction():
                        if snapshot:
                            conn.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        if wait < self.busy_timeout_s:
                            ms = max(int((deadline - time.monotonic()) * 1000), 1)
                            conn.execute(f"SET LOCAL statement_timeout = {ms:d}".encode())
                        if write:
                            conn.execute(b"UPDATE vigil_meta SET version = version + 1 WHERE id = 1")
                        started = True
                        out = fn(conn)
                    break
                except psycopg.OperationalError:
                    gone = conn is not None and (conn.broken or conn.closed)
                    if started or not gone or time.monotonic() >= deadline:
                        raise
        except psycopg.Error as e:
            if fail_fast():
                self._broken_until = time.monotonic() + BREAKER_S
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreError(f"{self._where()}: {first}") from None
        except StoreError:
            if fail_fast():
                self._broken_until = time.monotonic() + BREAKER_S
            raise
        self._broken_until = 0.0
        return out

    def _read(self, fn: Callable[[Conn], T]) -> T:
        return self._run(fn, write=False)

    def _write(self, fn: Callable[[Conn], T]) -> T:
        return self._run(fn, write=True)

    def version(self) -> int:
        """Moves with every write that takes the write order: tickets, quarantines, the change log
        and registry records. Profile snapshots and usage rows do not take it (no one mirrors
        them from the store while running, and they are the bulk of the writes): they commit in
        parallel, each process's own snapshots."""
        return int(self._read(lambda c: _one(c, "SELECT version FROM vigil_meta WHERE id = 1")))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._pool.close(timeout=1.0)

    # -- profiles --------------------------------------------------------------------------------
    def load_profiles(self) -> Iterator[tuple[EntityUid, bytes]]:
        rows: list[Any] = self._read(
            lambda c: c.execute(b"SELECT subject_type, subject_id, blob FROM profiles").fetchall()
        )
        return (((t, i), bytes(b)) for t, i, b in rows)

    def save_profiles(self, items: Iterable[tuple[EntityUid, bytes]]) -> int:
        """One transaction per ``PROFILE_CHUNK`` rows (no long hold of the write order)."""
        rows = [(uid[0], uid[1], bytes(blob)) for uid, blob in items]
        written = 0
        for i in range(0, len(rows), PROFILE_CHUNK):
            chunk = rows[i : i + PROFILE_CHUNK]

            def run(c: Conn, chunk: list[tuple[str, str, bytes]] = chunk) -> int:
                with c.cursor() as cur:
                    cur.executemany(
                        b"INSERT INTO profiles (subject_type, subject_id, blob) VALUES (%s, %s, %s) "
                        b"ON CONFLICT (subject_type, subject_id) DO UPDATE SET blob = EXCLUDED.blob",
                        chunk,
                    )
                return len(chunk)

            written += self._run(run, write=False)  # outside the write order (see version())
        return written

    # -- tickets ---------------------------------------------------------------------------------
    def put_ticket(self, ticket: Ticket) -> None:
        row = ticket_row(ticket)
        self._write(
            lambda c: c.execute(
                f"INSERT INTO tickets ({_TICKET_COLUMNS}) VALUES ({_TICKET_PARAMS}) "
                f"ON CONFLICT (id) DO UPDATE SET {_TICKET_UPDATE}".encode(),
                row,
            )
        )

    def decide_ticket(self, decided: Ticket, now: float) -> bool:
        # the state is tested by the UPDATE itself (a row lock), not on a copy read before it
        row = ticket_row(decided)
        query = (
            f"UPDATE tickets SET ({_TICKET_COLUMNS}) = ({_TICKET_PARAMS}) "
            "WHERE id = %s AND state = %s AND expires > %s"
        ).encode()
        return self._write(lambda c: c.execute(query, (*row, decided.id, PENDING, now)).rowcount == 1)

    def use_ticket(self, ticket_id: str, now: float) -> Ticket | None:
        def run(c: Conn) -> Ticket | None:
            row = c.execute(
                "UPDATE tickets SET uses = uses - 1, state = CASE WHEN uses > 1 THEN %s ELSE %s END "
                f"WHERE id = %s AND state = %s AND uses > 0 AND expires > %s RETURNING {_TICKET_COLUMNS}".encode(),
                (APPROVED, USED, ticket_id, APPROVED, now),
            ).fetchone()
            return None if row is None else ticket_from_row(row)

        return self._write(run)

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        row = self._read(
            lambda c: c.execute(
                f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE id = %s".encode(), (ticket_id,)
            ).fetchone()
        )
        return ticket_from_row(row) if row is not None else None

    def tickets(self, *, state: str | None = None, subject: EntityUid | None = None) -> list[Ticket]:
        where = []
        args: list[Any] = []
        if state is not None:
            where.append("state = %s")
            args.append(state)
        if subject is not None:
            where.append("subject_type = %s AND subject_id = %s")
            args.extend(subject)
        query = f"SELECT {_TICKET_COLUMNS} FROM tickets"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY created, id"
        rows: list[Any] = self._read(lambda c: c.execute(query.encode(), args).fetchall())
        return [ticket_from_row(r) for r in rows]

    # -- quarantine ------------------------------------------------------------------------------
    def put_quarantine(self, entry: QuarantineEntry) -> None:
        self._write(
            lambda c: c.execute(
                b"INSERT INTO quarantines (subject_type, subject_id, since, by, reason) "
                b"VALUES (%s, %s, %s, %s, %s) ON CONFLICT (subject_type, subject_id) DO UPDATE SET "
                b"since = EXCLUDED.since, by = EXCLUDED.by, reason = EXCLUDED.reason",
                (entry.subject[0], entry.subject[1], entry.since, entry.by, entry.reason),
            )
        )

    def remove_quarantine(self, subject: EntityUid) -> bool:
        return self._write(
            lambda c: (
                c.execute(
                    b"DELETE FROM quarantines WHERE subject_type = %s AND subject_id = %s", subject
                ).rowcount
                > 0
            )
        )

    def quarantines(self) -> list[QuarantineEntry]:
        rows: list[Any] = self._read(
            lambda c: c.execute(
                b"SELECT subject_type, subject_id, since, by, reason FROM quarantines "
                b"ORDER BY since, subject_type, subject_id"
            ).fetchall()
        )
        return [QuarantineEntry((r[0], r[1]), r[2], r[3], r[4]) for r in rows]

    # -- change log ------------------------------------------------------------------------------
    def append_change(
        self, time: float, kind: str, subject: EntityUid, by: str, detail: dict[str, Any]
    ) -> Change:
        text = orjson.dumps(detail).decode()
        seq = self._write(
            lambda c: int(
                _one(
                    c,
                    "INSERT INTO changes (time, kind, subject_type, subject_id, by, detail) "
                    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING seq",
                    (time, kind, subject[0], subject[1], by, text),
                )
            )
        )
        return Change(seq, time, kind, subject, by, dict(detail))

    def changes(self, *, after: int = 0, limit: int = 1_000) -> list[Change]:
        rows: list[Any] = self._read(
            lambda c: c.execute(
                f"SELECT {_CHANGE_COLUMNS} FROM changes WHERE seq > %s ORDER BY seq LIMIT %s".encode(),
                (after, max(limit, 0)),
            ).fetchall()
        )
        return [_change(r) for r in rows]

    def recent_changes(self, *, before: int | None = None, limit: int = 100) -> list[Change]:
        rows: list[Any] = self._read(
            lambda c: c.execute(
                f"SELECT {_CHANGE_COLUMNS} FROM changes WHERE seq < %s ORDER BY seq DESC LIMIT %s".encode(),
                (before if before is not None else 2**62, max(limit, 0)),
            ).fetchall()
        )
        return [_change(r) for r in rows]

    # -- identity registry -----------------------------------------------------------------------
    def identity_generation(self) -> int:
        return int(self._read(lambda c: _one(c, "SELECT identity_generation FROM vigil_meta WHERE id = 1")))

    def identities(self) -> tuple[int, list[IdentityEntry]]:
        def run(c: Conn) -> tuple[int, list[IdentityEntry]]:
            # one snapshot for the four reads (_run's snapshot=True)
            generation = int(_one(c, "SELECT identity_generation FROM vigil_meta WHERE id = 1"))
            rows = c.execute(IDENTITIES_QUERY.encode()).fetchall()
            key_rows = c.execute(IDENTITY_KEYS_QUERY.encode()).fetchall()
            binding_rows = c.execute(IDENTITY_BINDINGS_QUERY.encode()).fetchall()
            return generation, identity_entries(rows, key_rows, binding_rows)

        return self._run(run, write=False, snapshot=True)

    def put_identity(self, entry: IdentityEntry, *, generation: int) -> int | None:
        uid = entry.subject
        row = identity_row(entry)
        update = ", ".join(f"{c} = EXCLUDED.{c}" for c in _IDENTITY_COLUMNS.split(", ")[2:])

        def run(c: Conn) -> int | None:
            new = _one(
                c,
                "UPDATE vigil_meta SET identity_generation = identity_generation + 1 "
                "WHERE id = 1 AND identity_generation = %s RETURNING identity_generation",
                (generation,),
            )
            if new is None:
                return None
            c.execute(
                f"INSERT INTO identities ({_IDENTITY_COLUMNS}) VALUES ({', '.join(['%s'] * 13)}) "
                f"ON CONFLICT (subject_type, subject_id) DO UPDATE SET {update}".encode(),
                row,
            )
            c.execute(b"DELETE FROM identity_keys WHERE subject_type = %s AND subject_id = %s", uid)
            c.execute(b"DELETE FROM identity_bindings WHERE subject_type = %s AND subject_id = %s", uid)
            with c.cursor() as cur:
                if entry.keys:
                    cur.executemany(
                        b"INSERT INTO identity_keys (subject_type, subject_id, position, kid, jwk, added, by) "
                        b"VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        identity_key_rows(entry),
                    )
                if entry.bindings:
                    cur.executemany(
                        b"INSERT INTO identity_bindings (subject_type, subject_id, position, issuer, "
                        b"external_subject, added, by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        identity_binding_rows(entry),
                    )
            return int(new)

        return self._write(run)

    def identity_usage(self) -> list[IdentityUsage]:
        rows: list[Any] = self._read(
            lambda c: c.execute(
                b"SELECT subject_type, subject_id, last_used, tokens FROM identity_usage "
                b"ORDER BY subject_type, subject_id"
            ).fetchall()
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

        def run(c: Conn) -> int:
            with c.cursor() as cur:
                cur.executemany(
                    b"INSERT INTO identity_usage (subject_type, subject_id, last_used, tokens) "
                    b"VALUES (%s, %s, %s, %s) ON CONFLICT (subject_type, subject_id) DO UPDATE SET "
                    b"last_used = CASE WHEN identity_usage.last_used IS NULL "
                    b"OR EXCLUDED.last_used > identity_usage.last_used THEN EXCLUDED.last_used "
                    b"ELSE identity_usage.last_used END, tokens = EXCLUDED.tokens",
                    rows,
                )
            return len(rows)

        return self._run(run, write=False)  # outside the write order (see version())

    # -- revocations -----------------------------------------------------------------------------
    def revocation_generation(self) -> int:
        return int(self._read(lambda c: _one(c, "SELECT revocation_generation FROM vigil_meta WHERE id = 1")))

    def revocations(self) -> tuple[int, list[Revocation]]:
        def run(c: Conn) -> tuple[int, list[Revocation]]:
            generation = int(_one(c, "SELECT revocation_generation FROM vigil_meta WHERE id = 1"))
            rows = c.execute(
                b"SELECT kind, jti, actor_type, actor_id, subject_type, subject_id, until, revoked, "
                b"by, reason FROM revocations ORDER BY revoked, key"
            ).fetchall()
            return generation, [revocation(r) for r in rows]

        return self._run(run, write=False, snapshot=True)

    def put_revocation(self, revocation: Revocation) -> bool:
        row = revocation_row(revocation)

        def run(c: Conn) -> bool:
            cur = c.execute(
                b"INSERT INTO revocations (kind, key, jti, actor_type, actor_id, subject_type, "
                b"subject_id, until, revoked, by, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                b"ON CONFLICT (kind, key) DO NOTHING",
                row,
            )
            if cur.rowcount != 1:
                return False
            c.execute(b"UPDATE vigil_meta SET revocation_generation = revocation_generation + 1 WHERE id = 1")
            return True

        return self._write(run)

    def prune_revocations(self, before: float) -> int:
        def run(c: Conn) -> int:
            n = c.execute(
                b"DELETE FROM revocations WHERE until IS NOT NULL AND until < %s", (before,)
            ).rowcount
            if n:
                c.execute(
                    b"UPDATE vigil_meta SET revocation_generation = revocation_generation + 1 WHERE id = 1"
                )
            return int(n)

        return self._write(run)
