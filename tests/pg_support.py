"""The real PostgreSQL and Redis the tests use (127.0.0.1 on this machine and in CI): each test gets
its own schema (created and dropped here) or channel prefix, so parallel runs never collide.

An unreachable server fails the test (it never skips): CI and every developer machine run both.
``VIGIL_TEST_PG`` / ``VIGIL_TEST_REDIS`` name other servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

PG_URL = os.environ.get("VIGIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("VIGIL_TEST_REDIS", "redis://127.0.0.1:6379/0")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable (the store tests need it): {e}")


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A schema name no one uses; the schema (if anything created it) is dropped afterwards."""
    name = unique("vigil_t")
    try:
        yield name
    finally:
        with admin() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def terminate(schema: str) -> int:
    """Terminate every server connection of the stores on ``schema`` (their application_name is
    ``vigil``; the search_path option names the schema). Returns how many."""
    with admin() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (f"vigil/{schema}",),
        ).fetchall()
    return len(rows)
