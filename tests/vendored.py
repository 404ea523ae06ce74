"""Where the tests find the third-party data vendored under ``vendor/`` (see ``vendor/README.md``).

A missing folder is a broken checkout, never a reason to skip: :func:`require` fails the test with
the folder it looked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "vendor"
CEDAR = VENDOR / "conformance" / "cedar"
AUTHZEN = VENDOR / "conformance" / "authzen"
DATASETS = VENDOR / "datasets"


def require(path: Path) -> Path:
    """``path``, or a test failure naming it when it is missing (the data is part of the repository)."""
    if not path.exists():
        pytest.fail(
            f"vendored test data missing: {path} (it is committed under vendor/; see vendor/README.md)",
            pytrace=False,
        )
    return path
