"""The MCP gateway example (examples/mcp-agent, ``make demo``): the scripted agent's story runs end
to end against real processes (vigil serve, vigil mcp proxy, the guarded tool server), within the
demo's time budget, and leaves nothing running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _running(pattern: str) -> list[str]:
    """Command lines of live processes containing ``pattern`` (read from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if pattern in cmd:
                out.append(cmd)
    return out


def test_the_mcp_agent_demo(tmp_path: Path) -> None:
    work = tmp_path / "mcp-demo"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "mcp-agent" / "demo.py"), "--workdir", str(work)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    denied = [line.split(": ")[-1] for line in out.splitlines() if line.startswith("  DENIED")]
    assert denied[0] == "policy_forbid"  # /etc/passwd, by the gateway's policy
    assert denied[1] == "risk_step_up"  # the first delete: a ticket
    assert "quarantined" in denied[-2]  # the rogue client is quarantined ...
    assert denied[-1] == "quarantined"  # ... and the first session is cut
    assert "denied by the tool server's vigil guard: policy_forbid" in out
    assert "is approved by priya.raman" in out
    assert "files.delete_report(name='q1-draft.txt') -> deleted q1-draft.txt" in out
    assert "and it now sees 0 tools" in out
    assert elapsed < 60, elapsed
    assert not _running(str(work)), "the demo left processes running"
    audit = (work / "workspace" / "audit.jsonl").read_text()
    assert '"tools/call"' in audit and "drop@evil.example" in audit
