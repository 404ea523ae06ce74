"""``vigil audit verify`` fails where the log proves nothing: no signature although a key was given,
and with ``--strict`` unsigned trailing events or no key; ``vigil audit head`` and
``--expect-head`` catch a log cut just after a checkpoint, which the log alone cannot show."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.audit_helpers import chained_log, log_lines, record, rewrite, verify_cli
from vigil.audit.keys import load_or_create_key
from vigil.audit.sink import JsonlSink
from vigil.cli.main import app


def _unsigned_log(tmp_path: Path, n: int = 3) -> Path:
    """A chained log with no checkpoint (written without a signing key)."""
    sink = JsonlSink(tmp_path / "audit.jsonl")
    for i in range(n):
        sink.emit(record(i))
    sink.close()
    return tmp_path / "audit.jsonl"


def _head(path: Path, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "head", str(path), *options])
    return result.exit_code, result.output.strip()


def test_a_log_with_no_checkpoint_fails_when_a_key_is_given(tmp_path: Path) -> None:
    path = _unsigned_log(tmp_path)
    key = tmp_path / "k.key"
    load_or_create_key(key)
    code, out = verify_cli(path, key)
    assert code == 1 and "no checkpoint: none of the 3 events is signed" in out
    code, out = verify_cli(path, None)  # no key: the chain is checked, nothing more can be
    assert code == 0 and "warning" in out


def test_an_empty_log_fails_when_a_key_is_given(tmp_path: Path) -> None:
    """A log cut to nothing is not an intact log."""
    path, key = chained_log(tmp_path, 3)
    path.write_bytes(b"")
    code, out = verify_cli(path, key)
    assert code == 1 and "none of the 0 events is signed" in out


def test_a_key_found_in_the_workspace_counts_as_given(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "vigil.toml").write_text('[audit]\npath = "a.jsonl"\nsigning_key = "k.key"\n')
    load_or_create_key(ws / "k.key")
    _unsigned_log(tmp_path)
    (tmp_path / "audit.jsonl").rename(ws / "a.jsonl")
    result = CliRunner().invoke(app, ["audit", "verify", "--workspace", str(ws)])
    assert result.exit_code == 1 and "no checkpoint" in result.output


def test_strict_fails_on_unsigned_trailing_events_and_on_no_key(tmp_path: Path) -> None:
    path, key = chained_log(tmp_path, 10, every=4)
    assert verify_cli(path, key, "--strict")[0] == 0  # signed to its last event at close
    rewrite(path, log_lines(path)[:-1])  # the final checkpoint gone: events 9 and 10 unsigned
    assert verify_cli(path, key)[0] == 0
    code, out = verify_cli(path, key, "--strict")
    assert code == 1 and "2 event(s) after the last checkpoint are not signed" in out
    code, out = verify_cli(path, None, "--strict")
    assert code == 1 and "no public key given" in out


def test_a_log_cut_at_a_checkpoint_is_caught_only_by_the_anchor(tmp_path: Path) -> None:
    path, key = chained_log(tmp_path, 10, every=4)
    code, anchor = _head(path, "--public-key", str(key.with_suffix(".pub")))
    last = orjson.loads(log_lines(path)[-1])
    assert code == 0 and anchor == f"{last['seq']}:{last['hash']}" == f"10:{last['hash']}"
    assert verify_cli(path, key, "--expect-head", anchor)[0] == 0
    lines = log_lines(path)
    rewrite(
        path, lines[: lines.index(next(x for x in lines if b'"checkpoint"' in x)) + 1]
    )  # cut after the first
    assert verify_cli(path, key, "--strict")[0] == 0  # the log alone looks intact
    code, out = verify_cli(path, key, "--expect-head", anchor)
    assert code == 1 and f"no checkpoint for sequence 10 with hash {last['hash']}" in out
    code, out = verify_cli(path, key, "--expect-head", "4:" + "0" * 64)  # rewritten up to seq 4
    assert code == 1 and "no checkpoint for sequence 4" in out


@pytest.mark.parametrize("anchor", ["10", "x:" + "0" * 64, "10:" + "0" * 63, "10:" + "A" * 64])
def test_a_malformed_anchor_is_a_bad_argument(tmp_path: Path, anchor: str) -> None:
    path, key = chained_log(tmp_path, 2)
    code, out = verify_cli(path, key, "--expect-head", anchor)
    assert code == 2 and "invalid_argument" in out


def test_head_of_an_unsigned_or_broken_log_fails(tmp_path: Path) -> None:
    code, out = _head(_unsigned_log(tmp_path))
    assert code == 1 and "no checkpoint" in out
    path, key = chained_log(tmp_path / "b", 4)
    lines = log_lines(path)
    rewrite(path, [lines[0].replace(b'"n":0', b'"n":9'), *lines[1:]])
    code, out = _head(path, "--public-key", str(key.with_suffix(".pub")), "--json")
    assert code == 1 and "edited" in out
