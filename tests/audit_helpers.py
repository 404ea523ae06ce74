"""What the audit tests share: decision records to emit, chained logs written through the real
sink, reading and rewriting a log's lines, running ``vigil audit verify``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from vigil.audit.keys import public_key_path
from vigil.audit.sink import JsonlSink
from vigil.cli.main import app
from vigil.model.decision import DecisionRecord


def record(
    n: int, who: str = "a", *, context: dict[str, object] | None = None, allowed: bool = True
) -> DecisionRecord:
    """Decision ``<who>-<n>`` of ``Agent::<who>`` reading ``Doc::<n>`` (context ``{"n": n}`` unless given)."""
    return DecisionRecord(
        f"{who}-{n}",
        allowed,
        ("policy_permit",) if allowed else ("no_matching_permit",),
        ("p1",) if allowed else (),
        (),
        0,
        (),
        (),
        "rev",
        1000,
        1_764_000_000.0 + n,
        ("Agent", who),
        ("Action", "read"),
        ("Doc", str(n)),
        context if context is not None else {"n": n},
    )


def chained_log(tmp_path: Path, n: int = 10, *, every: int = 4, **options: Any) -> tuple[Path, Path]:
    """A log of ``n`` decisions written one write each, a checkpoint every ``every`` events and one
    at close; returns (log, signing key)."""
    key = tmp_path / "keys" / "audit-signing.key"
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, batch=1, flush_interval_s=60, signing_key=key, checkpoint_events=every, **options)
    for i in range(n):
        assert sink.emit(record(i))
        sink.flush()
    sink.close()
    return path, key


def log_lines(path: Path) -> list[bytes]:
    """The lines of ``path`` without their newlines."""
    return path.read_bytes().splitlines()


def log_events(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` parsed."""
    return [orjson.loads(x) for x in log_lines(path)]


def rewrite(path: Path, new_lines: list[bytes]) -> None:
    """Replace the file's content by ``new_lines``, each ended by a newline (a hand edit)."""
    path.write_bytes(b"".join(x + b"\n" for x in new_lines))


def verify_cli(path: Path, key: Path | None, *options: str) -> tuple[int, str]:
    """``vigil audit verify path [--public-key <key's .pub>] options...``: (exit code, output on one line)."""
    args = ["audit", "verify", str(path), *options]
    if key is not None:
        args += ["--public-key", str(public_key_path(key))]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output.replace("\n", "")


def until(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False
