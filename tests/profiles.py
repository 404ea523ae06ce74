"""The hypothesis profiles every test file runs under (loaded by ``tests/conftest.py``).

- ``ci`` (the default): derandomized (the same examples on every run and machine), no example
  database, no deadline (2 shared cores), blobs printed so a failure can be reproduced with
  ``@reproduce_failure``.
- ``fuzz``: a random seed per run (pytest's ``--hypothesis-seed=N`` fixes one, and hypothesis prints
  the seed of a failing run); used by ``make fuzz`` and whenever ``VIGIL_HYPOTHESIS_EXAMPLES`` is set.

``VIGIL_HYPOTHESIS_PROFILE`` picks a profile by name. ``VIGIL_HYPOTHESIS_EXAMPLES=N`` replaces every
test's example count with N (see :func:`examples`).
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from hypothesis import HealthCheck, settings

EXAMPLES_ENV = "VIGIL_HYPOTHESIS_EXAMPLES"
PROFILE_ENV = "VIGIL_HYPOTHESIS_PROFILE"

_COMMON = dict(
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
settings.register_profile("ci", derandomize=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("fuzz", derandomize=False, **_COMMON)  # type: ignore[arg-type]


def profile_name() -> str:
    return os.environ.get(PROFILE_ENV) or ("fuzz" if os.environ.get(EXAMPLES_ENV) else "ci")


def load() -> str:
    name = profile_name()
    settings.load_profile(name)
    import_all_of_vigil()
    return name


def import_all_of_vigil() -> None:
    """Import every module of vigil now, before any test.

    Hypothesis now and then draws a constant found in the source of the local (non-test) modules
    loaded so far, scanning ``sys.modules`` again whenever it grows. Which of vigil's modules a run
    happened to have imported therefore changed the derandomized examples: a test could fail alone
    and pass in the full run (tests/test_authzen_batch.py's search test did). With all of vigil
    loaded up front every run, one test or the whole suite, draws from the same constants.
    """
    import vigil

    for module in pkgutil.walk_packages(vigil.__path__, "vigil."):
        importlib.import_module(module.name)


def examples(default: int) -> int:
    """A test's example count: ``default`` (kept moderate for CI), or ``VIGIL_HYPOTHESIS_EXAMPLES``."""
    value = os.environ.get(EXAMPLES_ENV)
    return int(value) if value else default
