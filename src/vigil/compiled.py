"""Which modules of the decision hot path run compiled.

``setup.py`` compiles :data:`HOT_MODULES` with Cython when Cython and a C compiler are available at
install time (``VIGIL_PURE=1`` skips it); each falls back to its pure-Python source otherwise. The
compiled and the pure-Python modules make the same decisions: the test suite runs against whichever
is installed, and ``docs/benchmarks.md`` reports both speeds.

This module imports nothing from vigil, so ``setup.py`` can read the list before vigil is built.
"""

from __future__ import annotations

import importlib
import importlib.machinery
from typing import Final

# Every decision runs through these (engine, request parse, compiled Cedar runtime, behaviour,
# decision record, audit), plus the HTTP mapping. Everything else stays interpreted: compiling it
# would lengthen the install without changing a measured number (docs/benchmarks.md, "Compiled
# surface": behaviour.context, .privilege, .book, policy.runtime and .values measured no faster
# compiled, on the shared workload and on an estate, and left the list).
HOT_MODULES: Final = (
    "vigil.engine",
    "vigil.pipeline.authorize",
    "vigil.pipeline.combine",
    "vigil.protocol.authzen",
    "vigil.protocol.ext_authz",
    "vigil.model.request",
    "vigil.model.decision",
    "vigil.policy.evaluator",
    "vigil.policy.json_values",
    "vigil.policy.request_values",
    "vigil.policy.extensions",
    "vigil.policy.entities",
    "vigil.behaviour.model",
    "vigil.behaviour.signals",
    "vigil.behaviour.profile",
    "vigil.audit.events",
    "vigil.audit.sink",
    "vigil.server.app",
)

# C-only accelerators (``.pyx`` sources): each has a pure-Python equivalent elsewhere that runs when
# it is missing, and the tests check that both give the same bytes. ``_event_lines`` writes the
# audit event lines (vigil.audit.events.event_lines; orjson without it); ``_chain`` the log's hash
# chain with the GIL released (vigil.audit.logfile's Python loop without it; links OpenSSL).
C_MODULES: Final = ("vigil.audit._event_lines", "vigil.audit._chain")


def accelerated() -> dict[str, bool]:
    """Each hot module's and C accelerator's name -> True when it was loaded from a compiled
    extension (False for an accelerator that is not built).

    Imports the modules. A hot module that fails to import raises as its import would."""
    out = {}
    for name in HOT_MODULES:
        origin = getattr(importlib.import_module(name), "__file__", None) or ""
        out[name] = origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    for name in C_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            out[name] = False
        else:
            out[name] = True
    return out


def summary() -> str:
    """One line for humans: ``compiled hot path: 21/21 modules`` (or which are interpreted)."""
    state = accelerated()
    done = sum(state.values())
    if done == len(state):
        return f"compiled hot path: {done}/{len(state)} modules"
    if not done:
        return "pure Python (no compiled modules; see setup.py)"
    missing = ", ".join(name for name, ok in state.items() if not ok)
    return f"compiled hot path: {done}/{len(state)} modules (interpreted: {missing})"
