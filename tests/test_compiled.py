"""The compiled hot path (setup.py): present where the build could compile it, and reported."""

from __future__ import annotations

import os

import pytest

from vigil.compiled import C_MODULES, HOT_MODULES, accelerated


def test_every_hot_module_is_reported() -> None:
    state = accelerated()
    assert tuple(state) == HOT_MODULES + C_MODULES
    assert all(isinstance(v, bool) for v in state.values())


@pytest.mark.skipif(os.environ.get("VIGIL_PURE") == "1", reason="pure-Python run (VIGIL_PURE=1)")
def test_hot_path_runs_compiled() -> None:
    # The benchmarks and the speed figures in docs/ are of the compiled modules: a build that
    # silently fell back to pure Python must not pass as the measured one.
    missing = [name for name, ok in accelerated().items() if not ok]
    assert not missing, f"interpreted: {missing}; set VIGIL_PURE=1 for a pure-Python run"


@pytest.mark.skipif(os.environ.get("VIGIL_PURE") != "1", reason="compiled run")
def test_pure_run_is_pure() -> None:
    # `make unit-pure` points PYTHONPATH at a copy of the sources without extension modules
    assert not any(accelerated().values())
