"""Session setup: the hypothesis profile every test file runs under (``tests/profiles.py``), and a
guard: a compiled module older than its source would test stale code."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest
from hypothesis import settings

from tests import profiles
from vigil.compiled import C_MODULES, HOT_MODULES

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
        sources = [source, source.with_suffix(".pxd"), source.with_suffix(".pyx")]
        if any(s.exists() and s.stat().st_mtime > built for s in sources):
            out.append(name)
    return out


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = _stale()
    if stale:
        pytest.exit(
            "compiled modules older than their sources: "
            + ", ".join(stale)
            + " -- rebuild with `make build` (python setup.py build_ext --inplace)",
            returncode=4,
        )
