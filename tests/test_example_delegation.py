"""The delegation example (examples/delegation, ``make demo``): the demo runs and tells its story."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_delegation_demo(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "delegation" / "demo.py"), "--workdir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    lines = [line.split() for line in out.splitlines() if line.startswith("  ")]
    assert [(w[0], w[1], w[3]) for w in lines] == [
        ("ALLOW", "read", "policy_permit"),
        ("DENY", "update", "delegation_denied"),
        ("DENY", "read", "delegation_denied"),
        ("DENY", "read", "identity_inactive"),
    ]
    assert "expires in 600 s" in out
