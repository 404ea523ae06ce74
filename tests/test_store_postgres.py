"""The PostgreSQL store beyond the conformance suite (tests/test_store.py runs that on it too):
versioned migrations that run by themselves, once, even with two processes starting together;
bounded waits; reconnection after the server terminated the connections. Against the real server
(tests/pg_support.py), each test in its own schema."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from psycopg import sql

from tests.pg_support import PG_URL, admin, fresh_schema, terminate
from vigil.store import QuarantineEntry, StoreError, bounded, open_store
from vigil.store.postgres import SCHEMA_VERSION, PostgresStore, redact
from vigil.workspace.settings import StoreSettings, parse_settings

A = ("Agent", "a")


def _versions(schema: str) -> list[tuple[int]]:
    with admin() as conn:
        q = sql.SQL("SELECT version FROM {}.schema_version ORDER BY version").format(sql.Identifier(schema))
        return [(int(r[0]),) for r in conn.execute(q).fetchall()]


def test_migrations_run_once_and_are_versioned() -> None:
    with fresh_schema() as schema:
        s = PostgresStore(PG_URL, schema=schema)
        try:
            assert s.quarantines() == []  # the first call creates the schema and migrates
            assert _versions(schema) == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        finally:
            s.close()
        again = PostgresStore(PG_URL, schema=schema)
        try:
            again.put_quarantine(QuarantineEntry(A, 1.0, "x", ""))
            assert _versions(schema) == [(v,) for v in range(1, SCHEMA_VERSION + 1)]  # nothing reapplied
        finally:
            again.close()


def test_processes_starting_together_migrate_once() -> None:
    with fresh_schema() as schema:
        stores = [PostgresStore(PG_URL, schema=schema) for _ in range(6)]
        errors: list[BaseException] = []
        go = threading.Barrier(len(stores))

        def start(s: PostgresStore) -> None:
            go.wait()
            try:
                s.put_quarantine(QuarantineEntry(A, 1.0, "x", ""))
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=start, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for s in stores:
            s.close()
        assert errors == []
        assert _versions(schema) == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_a_newer_schema_is_refused() -> None:
    with fresh_schema() as schema:
        PostgresStore(PG_URL, schema=schema).close()
        s = PostgresStore(PG_URL, schema=schema)
        s.quarantines()
        s.close()
        with admin() as conn:
            conn.execute(
                sql.SQL("INSERT INTO {}.schema_version VALUES (99, 0)").format(sql.Identifier(schema))
            )
        newer = PostgresStore(PG_URL, schema=schema)
        try:
            with pytest.raises(StoreError, match="schema version 99"):
                newer.quarantines()
        finally:
            newer.close()


def test_a_held_lock_is_waited_for_a_bounded_time() -> None:
    with fresh_schema() as schema:
        s = PostgresStore(PG_URL, schema=schema, busy_timeout_s=0.5)
        try:
            s.put_quarantine(QuarantineEntry(A, 1.0, "x", ""))
            with admin() as other:
                other.autocommit = False
                other.execute(sql.SQL("LOCK TABLE {}.vigil_meta").format(sql.Identifier(schema)))
                t0 = time.monotonic()
                with pytest.raises(StoreError) as e:
                    s.put_quarantine(QuarantineEntry(A, 2.0, "x", ""))
                assert e.value.code == "store_unavailable"
                assert time.monotonic() - t0 < 2.0
                t0 = time.monotonic()
                with bounded(0.02, fail_fast=True), pytest.raises(StoreError):
                    s.put_quarantine(QuarantineEntry(A, 3.0, "x", ""))
                assert time.monotonic() - t0 < 0.4
                with bounded(0.02, fail_fast=True), pytest.raises(StoreError, match="within the last second"):
                    s.quarantines()  # the breaker: at once
                other.rollback()
            assert [q.since for q in s.quarantines()] == [1.0]  # an operator call: tries again
        finally:
            s.close()


def test_terminated_connections_reconnect_by_themselves() -> None:
    with fresh_schema() as schema:
        s = PostgresStore(PG_URL, schema=schema, busy_timeout_s=1.0)
        try:
            s.put_quarantine(QuarantineEntry(A, 1.0, "x", ""))
            for _ in range(3):
                assert terminate(schema) >= 1
                t0 = time.monotonic()
                # the dead connections are dropped and the call runs on a new one, within its wait
                assert [q.subject for q in s.quarantines()] == [A]
                assert time.monotonic() - t0 < 1.0
                assert terminate(schema) >= 1
                s.put_quarantine(QuarantineEntry(A, 1.0, "x", ""))  # a write too
                deadline = time.monotonic() + 5
                while True:  # recovers by itself
                    try:
                        assert [q.subject for q in s.quarantines()] == [A]
                        break
                    except StoreError:
                        assert time.monotonic() < deadline, "no reconnection within 5 s"
                        time.sleep(0.05)
            s.put_quarantine(QuarantineEntry(("Agent", "b"), 2.0, "x", ""))
            assert len(s.quarantines()) == 2
        finally:
            s.close()


def test_an_unreachable_server_fails_in_bounded_time() -> None:
    s = PostgresStore("postgresql://postgres:secret@127.0.0.1:1/none", busy_timeout_s=0.3)
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError) as e:
            s.quarantines()
        assert e.value.code == "store_unavailable"
        assert "secret" not in e.value.message and "secret" not in repr(s)
        assert time.monotonic() - t0 < 7.0
    finally:
        s.close()
    assert redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_settings_and_open_store(tmp_path: Path) -> None:
    with fresh_schema() as schema:
        text = f'[store]\nbackend = "postgres"\nurl = "{PG_URL}"\nschema = "{schema}"\npool_size = 2\n'
        settings = parse_settings(text).store
        assert "postgresql" not in repr(settings)  # the URL (a password) stays out of repr
        s = open_store(settings, tmp_path)
        try:
            assert isinstance(s, PostgresStore) and s.schema == schema
            assert s.quarantines() == []
        finally:
            s.close()
    from vigil.errors import WorkspaceError

    with pytest.raises(WorkspaceError) as e:
        parse_settings('[store]\nbackend = "postgres"\nschema = "Bad-Name"\n')
    assert any("needs url" in p for p in e.value.problems)
    assert any("schema must be" in p for p in e.value.problems)
    assert StoreSettings().backend == "sqlite"
