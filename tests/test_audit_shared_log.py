"""Several writers on one chained audit log (a server and the CLI's operator commands): each follows
what the others appended, and accepts nothing else. A hand edit of the log between two writes (the
unsigned tail edited, cut, or lines appended that do not chain) makes the writer refuse the log: an
alarm, every later write fails (with ``[audit] required``, decisions are denied), and nothing of
the edit is signed by it."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import orjson
import pytest

from tests.audit_helpers import log_events, log_lines, record, rewrite, until
from tests.test_server_support import copy_workspace
from vigil.audit.follow import ForeignEdit
from vigil.audit.keys import load_or_create_key
from vigil.audit.logfile import GENESIS, AuditFile
from vigil.audit.sink import JsonlSink
from vigil.audit.verify import verify_log
from vigil.engine import Engine

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
ONE = {
    "subject": {"type": "user", "id": RICK},
    "action": {"name": "can_create_todo"},
    "resource": {"type": "todo", "id": "t"},
}


def _sink(tmp_path: Path, **options: object) -> JsonlSink:
    """A writer on ``tmp_path/audit.jsonl``: one write per flush, checkpoints only at close."""
    return JsonlSink(
        tmp_path / "audit.jsonl",
        batch=1,
        flush_interval_s=60,
        signing_key=tmp_path / "audit.key",
        checkpoint_events=1_000,
        **options,  # type: ignore[arg-type]
    )


def _write(sink: JsonlSink, *numbers: int, who: str = "a") -> None:
    for n in numbers:
        assert sink.emit(record(n, who))
    sink.flush()


def _deny_last(path: Path, same_length: bool = False) -> None:
    """Hand-edit the log's last line: the decision turned into a deny."""
    lines = log_lines(path)
    lines[-1] = lines[-1].replace(
        b'"decision":"allow"', b'"decision":"dnied"' if same_length else b'"decision":"deny"'
    )
    rewrite(path, lines)


def _line(n: int) -> bytes:
    """An encoded event line as the sink hands it to the file (not chained yet)."""
    return b'{"v":1,"type":"decision","id":"d-%d","context":{"n":%d}}\n' % (n, n)


def _refused(sink: JsonlSink, n: int) -> None:
    """``sink`` refuses the log: its next event is not written, and it stays refused."""
    sink.emit(record(n, "late"))
    sink.flush()
    assert not sink.healthy and sink.file.alarms == 1
    assert sink.file.tampered
    assert not sink.emit(record(n + 1, "late"))  # batched: refused while unhealthy
    sink.close()
    assert all(not str(e.get("id", "")).startswith("late-") for e in log_events(sink.path))


def test_two_writers_follow_each_other_and_one_chain_verifies(tmp_path: Path) -> None:
    a, b = _sink(tmp_path), _sink(tmp_path, mark=b',"replay":true')
    _write(a, 1, 2)
    _write(b, 3)
    _write(a, 4)
    _write(b, 5, 6)
    a.close()
    b.close()
    result = verify_log(tmp_path / "audit.jsonl", load_or_create_key(tmp_path / "audit.key").public_key())
    assert result.ok and result.events == 6, result.problem
    assert a.file.alarms == b.file.alarms == 0


def test_an_edit_of_the_writers_own_tail_before_another_writer_appends_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's unsigned last event is edited; the CLI opens the log and appends (it cannot
    know); the server's next write finds its own last line changed and refuses the log."""
    caplog.set_level(logging.WARNING, logger="vigil.audit")
    server = _sink(tmp_path)
    _write(server, 1, 2, 3)
    _deny_last(tmp_path / "audit.jsonl")
    cli = _sink(tmp_path)
    _write(cli, 4, who="cli")
    cli.close()
    _refused(server, 5)
    alarms = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(alarms) == 1  # once, not once per retry
    assert "the line this writer wrote last" in alarms[0].getMessage()


def test_an_edit_of_the_same_length_is_refused(tmp_path: Path) -> None:
    """The size does not change: the writer still checks its last line's hash."""
    server = _sink(tmp_path)
    _write(server, 1, 2)
    _deny_last(tmp_path / "audit.jsonl", same_length=True)
    _refused(server, 3)


def test_a_cut_log_is_refused(tmp_path: Path) -> None:
    """The unsigned tail removed: signing on would make the cut undetectable."""
    server = _sink(tmp_path)
    _write(server, 1, 2, 3)
    rewrite(tmp_path / "audit.jsonl", log_lines(tmp_path / "audit.jsonl")[:-1])
    _refused(server, 4)


def test_a_cut_then_regrown_log_is_refused(tmp_path: Path) -> None:
    """The last event removed and another writer appended since: the file is as long as before,
    but the line at the writer's head is not its own."""
    server = _sink(tmp_path)
    _write(server, 1, 2, 3)
    rewrite(tmp_path / "audit.jsonl", log_lines(tmp_path / "audit.jsonl")[:-1])
    cli = _sink(tmp_path)
    _write(cli, 4, 5, who="cli")
    cli.close()
    _refused(server, 6)


@pytest.mark.parametrize("prev", ["genesis", "other"])
def test_appended_lines_that_do_not_chain_onto_the_writers_head_are_refused(
    tmp_path: Path, prev: str
) -> None:
    server = _sink(tmp_path)
    _write(server, 1, 2)
    lines = log_lines(tmp_path / "audit.jsonl")
    forged = orjson.loads(lines[-1])
    forged["id"], forged["seq"] = "forged", 3
    forged["prev"] = GENESIS if prev == "genesis" else hashlib.sha256(lines[0]).hexdigest()
    rewrite(tmp_path / "audit.jsonl", [*lines, orjson.dumps(forged)])
    _refused(server, 3)


def test_a_partial_line_left_by_a_crashed_writer_is_cut_under_the_lock(tmp_path: Path) -> None:
    """Another writer died in the middle of a write: the next writer cuts the partial line (it was
    never acknowledged) instead of gluing its own line onto it."""
    server = _sink(tmp_path)
    _write(server, 1)
    with open(tmp_path / "audit.jsonl", "ab") as f:
        f.write(b'{"v":1,"type":"decision","id":"torn')
    _write(server, 2)
    server.close()
    assert server.healthy and server.file.alarms == 0
    assert verify_log(tmp_path / "audit.jsonl", None).ok


def test_a_writer_refuses_for_good_and_raises_foreign_edit(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    f = AuditFile(path, signing_key=load_or_create_key(tmp_path / "k.key"))
    f.write([_line(1)])
    path.write_bytes(path.read_bytes().replace(b'"n":1', b'"n":7'))
    with pytest.raises(ForeignEdit):
        f.write([_line(2)])
    size = path.stat().st_size
    with pytest.raises(ForeignEdit):
        f.write([_line(3)], final=True)  # no checkpoint over the edit
    f.close()
    assert path.stat().st_size == size and b'"checkpoint"' not in path.read_bytes()


def test_required_audit_denies_once_the_log_was_edited(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-todo", tmp_path)
    (ws / "vigil.toml").write_text("[audit]\nrequired = true\nflush_interval_ms = 10\n")
    log = ws / ".vigil" / "audit.jsonl"
    with Engine.from_workspace(ws) as engine:
        assert engine.decide(ONE).allowed
        engine.audit.flush()
        rewrite(log, [x.replace(b'"decision":"allow"', b'"decision":"deny"') for x in log_lines(log)])
        engine.decide(ONE)  # batched: answered before its write, which fails
        assert until(lambda: not engine.audit_ready())
        assert {engine.decide(ONE).reason_codes for _ in range(5)} == {("audit_unavailable",)}
        assert engine.status()["audit_alarms"] == 1
    assert b'"checkpoint"' not in log.read_bytes()  # the edit was never signed


def test_a_writer_follows_several_rotations_by_another(tmp_path: Path) -> None:
    """Between two writes of one writer the other rotated the log more than once: the lines after
    its own run through the rotated files in between."""
    a, b = _sink(tmp_path, rotate_bytes=1_500), _sink(tmp_path, rotate_bytes=1_500)
    _write(a, 0, 1)
    for n in range(2, 20):
        _write(b, n, who="b")
    assert len(list(tmp_path.glob("audit.jsonl.*"))) >= 3
    _write(a, 20)
    a.close()
    b.close()
    assert a.healthy and a.file.alarms == 0
    result = verify_log(tmp_path / "audit.jsonl", load_or_create_key(tmp_path / "audit.key").public_key())
    assert result.ok and result.events == 21, result.problem


def test_an_edit_before_another_writer_rotated_the_log_is_refused(tmp_path: Path) -> None:
    a, b = _sink(tmp_path, rotate_bytes=1_500), _sink(tmp_path, rotate_bytes=1_500)
    _write(a, 0, 1)
    _deny_last(tmp_path / "audit.jsonl")
    for n in range(2, 20):
        _write(b, n, who="b")
    b.close()
    _refused(a, 20)


def _chained(body: str, seq: int, prev: str) -> bytes:
    return ("{" + body + f',"seq":{seq},"prev":"{prev}"' + "}").encode()


HEAD = "ab" * 32


def test_an_event_line_is_followed_by_its_chained_end_and_anything_else_by_its_json() -> None:
    from vigil.audit.follow import _step

    line = _chained('"v":1,"type":"decision","id":"x"', 8, HEAD)
    assert _step(line, HEAD, 7, "t") == (hashlib.sha256(line).hexdigest(), 8)
    # the same fields in another order: not a writer's layout, read as JSON, same answer
    other = ('{"prev":"' + HEAD + '","seq":8,"type":"decision"}').encode()
    assert _step(other, HEAD, 7, "t")[1] == 8
    # a checkpoint keeps the sequence number: always read as JSON
    cp = _chained('"v":1,"type":"checkpoint"', 7, HEAD)
    assert _step(cp, HEAD, 7, "t")[1] == 7
    for bad in (_chained('"type":"decision"', 9, HEAD), _chained('"type":"decision"', 8, "cd" * 32)):
        with pytest.raises(ForeignEdit):
            _step(bad, HEAD, 7, "t")
    # a line that is not JSON but ends as a writer's would: its chain is checked, its JSON is
    # left to `vigil audit verify` (documented in follow._step)
    assert _step(_chained('"type":"decision",,', 8, HEAD), HEAD, 7, "t")[1] == 8
