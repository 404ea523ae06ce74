"""Session setup: the hypothesis profile every test file runs under (``tests/profiles.py``), and
guards: a compiled module older than its sources would test stale code; an error code raised
anywhere in the suite must be in the one error table (``vigil.errors.ErrorCode``)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests import profiles
from tests.pg_support import PG_URL, fresh_schema
from vigil.compiled import C_MODULES, HOT_MODULES
from vigil.errors import HTTP_STATUS, VigilError
from vigil.store import MemoryStore, SqliteStore, Store

SRC = Path(__file__).resolve().parents[1] / "src"
_CIMPORT = re.compile(r"^\s*from\s+(vigil(?:\.\w+)+)\s+cimport\b", re.M)


def _declarations(source: Path) -> list[Path]:
    """The module's own ``.py``/``.pxd``/``.pyx`` and every ``.pxd`` they cimport, transitively."""
    out: list[Path] = []
    todo = [source, source.with_suffix(".pxd"), source.with_suffix(".pyx")]
    while todo:
        path = todo.pop()
        if path in out or not path.exists():
            continue
        out.append(path)
        if path.suffix in (".pxd", ".pyx"):
            for name in _CIMPORT.findall(path.read_text()):
                todo.append(SRC.joinpath(*name.split(".")).with_suffix(".pxd"))
    return out


# Loaded before any test module is imported, so every @settings(...) inherits it.
PROFILE = profiles.load()


def pytest_report_header(config: pytest.Config) -> str:
    s = settings.default
    seed = config.getoption("hypothesis_seed", None)
    how = (
        "derandomized"
        if s.derandomize
        else f"random seed {seed if seed is not None else '(printed on failure)'}"
    )
    return f"hypothesis profile: {PROFILE} ({how}, database={s.database}, deadline={s.deadline})"


def _stale() -> list[str]:
    out = []
    for name in HOT_MODULES + C_MODULES:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        if origin is None or not origin.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            continue
        built = origin.stat().st_mtime
        source = origin.parent / (name.rsplit(".", 1)[1] + ".py")
        if any(s.stat().st_mtime > built for s in _declarations(source)):
            out.append(name)
    return out


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = _stale()
    if stale:
        pytest.exit(
            "compiled modules older than their sources (or a .pxd they cimport): "
            + ", ".join(stale)
            + " -- rebuild with `make build` (python setup.py build_ext --inplace)",
            returncode=4,
        )


# Every VigilError made while the suite runs (in this process): its code must be in the table.
_RAISED: dict[str, str] = {}
_init = VigilError.__init__


def _recording_init(self: VigilError, message: str, **kwargs: Any) -> None:
    _init(self, message, **kwargs)
    _RAISED.setdefault(self.code, f"{type(self).__name__}: {message[:120]}")


VigilError.__init__ = _recording_init  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    unknown = {code: where for code, where in _RAISED.items() if code not in HTTP_STATUS}
    if unknown:
        print("\nerror codes raised but missing from vigil.errors.ErrorCode:")
        for code, where in sorted(unknown.items()):
            print(f"  {code!r} ({where})")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# The state store conformance suites (tests/test_store.py, tests/test_identity_registry.py).
@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A factory of stores on the same backing state (two SQLite stores share one file; two
    PostgreSQL stores one fresh schema of the real server, dropped afterwards)."""
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
    elif request.param == "postgres":
        from vigil.store.postgres import PostgresStore

        with fresh_schema() as schema:
            stores: list[PostgresStore] = []

            def pg() -> Store:
                s = PostgresStore(PG_URL, schema=schema, pool_size=2)
                stores.append(s)
                return s

            yield pg
            for s in stores:
                s.close()
    else:
        opened: list[SqliteStore] = []

        def factory() -> Store:
            s = SqliteStore(tmp_path / "state.db")
            opened.append(s)
            return s

        yield factory
        for s in opened:
            s.close()
