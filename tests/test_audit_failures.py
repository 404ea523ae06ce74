"""Audit write failures fail closed; sync durability survives SIGKILL; closing and a full buffer
lose nothing silently; operator events join the chained log; files are private."""

from __future__ import annotations

import errno
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.audit_helpers import log_events, record, until
from tests.test_server_support import ROOT, copy_workspace
from vigil.audit import logfile
from vigil.audit.keys import load_or_create_key
from vigil.audit.sink import JsonlSink
from vigil.audit.verify import verify_log
from vigil.engine import Engine
from vigil.errors import AuditError
from vigil.operations.approvals import Approvals
from vigil.store import Ticket

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
ONE = {
    "subject": {"type": "user", "id": RICK},
    "action": {"name": "can_create_todo"},
    "resource": {"type": "todo", "id": "t"},
}


def _workspace(tmp_path: Path, audit: str) -> Path:
    ws = copy_workspace("authzen-todo", tmp_path)
    (ws / "vigil.toml").write_text(f"[audit]\n{audit}\n")
    return ws


# -- 1. write failures fail closed ---------------------------------------------------------------
def test_a_full_disk_denies_every_later_decision_and_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = _workspace(tmp_path, 'required = true\npath = "/dev/full"\nflush_interval_ms = 10')
    caplog.set_level(logging.WARNING, logger="vigil.audit")
    with Engine.from_workspace(ws) as engine:
        engine.decide(ONE)
        assert until(lambda: not engine.audit_ready())
        records = [engine.decide(ONE) for _ in range(50)]
        assert all(not r.allowed for r in records)
        assert {r.reason_codes for r in records} == {("audit_unavailable",)}
        time.sleep(0.1)  # more failed retries
        status = engine.status()
        assert status["audit_write_errors"] >= 2 and status["audit_healthy"] is False
        assert status["audit_dropped"] >= 50
    failures = [r for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(failures) == 1  # once, not once per event or per retry
    assert "No space left on device" in failures[0].getMessage()


def test_writes_that_fail_then_succeed_recover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _workspace(tmp_path, "required = true\nflush_interval_ms = 10")
    real = logfile._write_all
    failing = threading.Event()
    failing.set()

    def write_all(fd: int, data: bytes) -> None:
        if failing.is_set():
            raise OSError(errno.EIO, "Input/output error")
        real(fd, data)

    with Engine.from_workspace(ws) as engine:
        monkeypatch.setattr(logfile, "_write_all", write_all)
        first = engine.decide(ONE)
        assert first.allowed  # batched: answered before its write
        assert until(lambda: not engine.audit_ready())
        assert not engine.decide(ONE).allowed
        failing.clear()
        assert until(engine.audit_ready)
        after = engine.decide(ONE)
        assert after.allowed
    events = log_events(ws / ".vigil" / "audit.jsonl")
    kinds = [e["type"] for e in events]
    # the first decision was kept and written once writes worked; the refused one was not
    assert [e["id"] for e in events if e["type"] == "decision"] == [first.id, after.id]
    assert "audit_recovered" in kinds
    recovered = next(e for e in events if e["type"] == "audit_recovered")
    assert "Input/output error" in str(recovered["error"]) and recovered["dropped"] == 1
    assert verify_log(ws / ".vigil" / "audit.jsonl", None).ok


def test_a_closed_descriptor_is_a_failure_too(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "a.jsonl", flush_interval_s=0.01)
    assert sink.file.fd is not None
    os.close(sink.file.fd)
    sink.emit(record(1))
    assert until(lambda: not sink.healthy)
    assert sink.write_errors >= 1
    assert not sink.emit(record(2))
    sink.file.fd = None
    sink.close()


def test_sync_durability_denies_when_the_disk_is_full(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 'required = true\npath = "/dev/full"\ndurability = "sync"')
    with Engine.from_workspace(ws) as engine:
        records = [engine.decide(ONE) for _ in range(20)]
        assert {r.reason_codes for r in records} == {("audit_unavailable",)}
        assert not engine.audit_ready()


# -- 2. sync durability --------------------------------------------------------------------------
_DECIDER = textwrap.dedent(
    """
    import sys, threading
    from vigil.engine import Engine
    engine = Engine.from_workspace(sys.argv[1])
    one = {"subject": {"type": "user", "id": sys.argv[2]}, "action": {"name": "can_create_todo"},
           "resource": {"type": "todo", "id": "t"}}
    lock = threading.Lock()
    def work():
        while True:
            r = engine.decide(one)
            with lock:
                sys.stdout.write(("A " if r.allowed else "D ") + r.id + "\\n")
                sys.stdout.flush()
    for _ in range(4):
        threading.Thread(target=work, daemon=True).start()
    threading.Event().wait()
    """
)


def test_sync_durability_every_answered_decision_survives_sigkill(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 'required = true\ndurability = "sync"\nflush_interval_ms = 1000')
    proc = subprocess.Popen(
        [sys.executable, "-c", _DECIDER, str(ws), RICK],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    answered: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline or len(answered) < 50:
        line = proc.stdout.readline()
        if not line:
            break
        kind, rid = line.decode().split()
        if kind == "A":
            answered.append(rid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(answered) >= 50
    logged = {e.get("id") for e in log_events(ws / ".vigil" / "audit.jsonl")}
    missing = [rid for rid in answered if rid not in logged]
    assert not missing, f"{len(missing)} of {len(answered)} answered decisions not in the log"
    assert verify_log(ws / ".vigil" / "audit.jsonl", None).ok


def test_sync_emit_waits_for_the_write_and_one_fsync_serves_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = []
    real = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    sink = JsonlSink(tmp_path / "a.jsonl", durability="sync", flush_interval_s=60)
    results: list[bool] = []

    def work(w: str) -> None:
        for n in range(50):
            ok = sink.emit(record(n, w))
            results.append(ok and f'"{w}-{n}"'.encode() in (tmp_path / "a.jsonl").read_bytes())

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    assert results == [True] * 200  # each emit returned after its line was in the file
    assert len(fsyncs) < 200  # group commit


def test_sync_timeout_denies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = logfile._write_all

    def stuck(fd: int, data: bytes) -> None:
        release.wait(10)
        real(fd, data)

    monkeypatch.setattr(logfile, "_write_all", stuck)
    sink = JsonlSink(tmp_path / "a.jsonl", durability="sync", sync_timeout_s=0.05)
    t0 = time.monotonic()
    assert not sink.emit(record(1))
    assert time.monotonic() - t0 < 2
    assert sink.sync_timeouts == 1
    release.set()
    sink.close()


# -- 5. close deadline, private files ------------------------------------------------------------
def test_a_stuck_disk_cannot_hang_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def stuck(fd: int, data: bytes) -> None:
        release.wait(30)

    caplog.set_level(logging.ERROR, logger="vigil.audit")
    sink = JsonlSink(tmp_path / "a.jsonl", flush_interval_s=60, close_timeout_s=0.3)
    monkeypatch.setattr(logfile, "_write_all", stuck)
    for n in range(7):
        assert sink.emit(record(n))
    t0 = time.monotonic()
    sink.close()
    assert time.monotonic() - t0 < 3
    assert any("7 event(s) not written" in r.getMessage() for r in caplog.records)
    release.set()


def test_state_and_audit_files_are_private(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, "")
    with Engine.from_workspace(ws) as engine:
        engine.decide(ONE)
    vigil_dir = ws / ".vigil"
    for name in ("audit.jsonl", "audit-signing.key", "state.db"):
        assert stat.S_IMODE((vigil_dir / name).stat().st_mode) == 0o600, name
    assert (vigil_dir / "audit-signing.pub").exists()


# -- 6. closing while emitting; a full buffer under concurrency ----------------------------------
def test_emitting_while_close_runs_loses_nothing_silently(tmp_path: Path) -> None:
    for attempt in range(5):
        path = tmp_path / f"a{attempt}.jsonl"
        sink = JsonlSink(path, batch=4, flush_interval_s=0.001)
        accepted: list[str] = []
        refused: list[str] = []
        start = threading.Barrier(5)

        def work(
            w: str,
            sink: JsonlSink = sink,
            start: threading.Barrier = start,
            accepted: list[str] = accepted,
            refused: list[str] = refused,
        ) -> None:
            start.wait()
            for n in range(3_000):
                rid = f"{w}-{n}"
                (accepted if sink.emit(record(n, w)) else refused).append(rid)

        threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        start.wait()
        time.sleep(0.002 * attempt)
        sink.close()
        for t in threads:
            t.join()
        written = [e["id"] for e in log_events(path)]
        assert sorted(written) == sorted(accepted)  # every True was written, nothing else
        assert sink.dropped == len(refused)  # every False was counted
        assert len(accepted) + len(refused) == 12_000


def test_a_small_buffer_under_concurrency_counts_every_drop(tmp_path: Path) -> None:
    """Exact accounting under contention: every emit that returned True is a line in the file,
    every False is one drop, and drops happen (the buffer is small).

    This cannot catch the drop counter losing updates without its lock, on CPython 3.11 in either
    build: compiled, ``dropped`` is a C ``long long`` field and ``self.dropped += n`` is C code
    (read the field, add through the C API, store it back) that runs no bytecode and keeps the
    GIL; pure Python, the statement is LOAD_ATTR, BINARY_OP, STORE_ATTR on a plain attribute and
    the interpreter hands the GIL over only at its eval-breaker checks (function entry, backward
    jumps, calls), none of which falls between the read and the write. Four threads doing
    ``obj.n += 1`` 300,000 times each with a 1 us switch interval lose nothing; this test passes
    on both builds with the lock removed. A read and write with a switch point between them
    (``d = self.dropped; time.sleep(0); self.dropped = d + n``) does fail it.
    The lock matters on a free-threaded build; here it is the per-call accounting that can fail:
    an emit that counts a drop but returns True, or refuses without counting, or a lost line."""
    sink = JsonlSink(tmp_path / "a.jsonl", capacity=50, batch=8, flush_interval_s=0.001)
    per_thread = 5_000
    results: dict[str, list[bool]] = {}

    def work(w: str) -> None:
        results[w] = [sink.emit(record(n, w)) for n in range(per_thread)]

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    sink.close()
    written = [e["id"] for e in log_events(tmp_path / "a.jsonl")]
    accepted = sorted(f"{w}-{n}" for w, got in results.items() for n, ok in enumerate(got) if ok)
    refused = sum(not ok for got in results.values() for ok in got)
    assert sum(map(len, results.values())) == 4 * per_thread
    assert sorted(written) == accepted and sink.written == len(written)
    assert sink.dropped == refused > 0


# -- 4. operator events ---------------------------------------------------------------------------
def _pending(approvals: Approvals, todo: str, now: float) -> Ticket:
    """A pending ticket for RICK creating ``todo`` (as a step-up deny opens one)."""
    return approvals.request(
        ("user", RICK),
        ("Action", "can_create_todo"),
        ("todo", todo),
        risk=70,
        signals=(),
        why="test",
        now=now,
        ttl_s=3600,
    )


def test_operator_actions_are_chained_in_the_audit_log(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, "")
    subject = ("user", RICK)
    with Engine.from_workspace(ws) as engine:
        engine.decide(ONE)
        for n, decide in enumerate((engine.desk.approve, engine.desk.deny)):
            decide(_pending(engine.approvals, f"t{n}", engine.now()).id, by="dave", note="checked")
        engine.desk.add(subject, by="alice", reason="suspicious")
        engine.desk.lift(subject, by="bob", note="ok")
        engine.reload(by="carol")
        (ws / "policies" / "broken.cedar").write_text("permit(")
        assert not engine.reload(by="carol").ok
    log = ws / ".vigil" / "audit.jsonl"
    events = [e for e in log_events(log) if e["type"] != "checkpoint"]
    assert [(e["type"], e.get("by")) for e in events] == [
        ("decision", None),
        ("ticket_approved", "dave"),
        ("ticket_denied", "dave"),
        ("quarantine_added", "alice"),
        ("quarantine_lifted", "bob"),
        ("reloaded", "carol"),
        ("reload_refused", "carol"),
    ]
    assert events[1]["resource"] == {"type": "todo", "id": "t0"} and events[1]["note"] == "checked"
    assert events[3]["subject"] == {"type": "user", "id": RICK} and events[3]["reason"] == "suspicious"
    assert isinstance(events[3]["time"], str) and events[3]["time"].endswith("Z")
    assert verify_log(log, load_or_create_key(ws / ".vigil" / "audit-signing.key").public_key()).ok


def test_the_clis_operator_actions_join_a_running_servers_chain(tmp_path: Path) -> None:
    """``vigil approvals|quarantine`` (StateDesk, no engine) write the same events into the same
    chained log while a server's engine holds it open: one chain, every event there."""
    from vigil.operations.service import StateDesk

    ws = _workspace(tmp_path, "")
    subject = ("user", RICK)
    with Engine.from_workspace(ws) as engine:
        engine.decide(ONE)
        engine.audit.flush()
        with StateDesk(ws) as desk:
            desk.approve(_pending(desk.approvals, "t0", desk.now()).id, by="dave", note="cli")
            desk.add(subject, by="alice", reason="cli quarantine")
        engine.decide(ONE)
        engine.desk.add(("user", "someone-else"), by="erin")
    log = ws / ".vigil" / "audit.jsonl"
    events = [e for e in log_events(log) if e["type"] != "checkpoint"]
    assert [(e["type"], e.get("by")) for e in events] == [
        ("decision", None),
        ("ticket_approved", "dave"),
        ("quarantine_added", "alice"),
        ("decision", None),
        ("quarantine_added", "erin"),
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    result = verify_log(log, load_or_create_key(ws / ".vigil" / "audit-signing.key").public_key())
    assert result.ok, result.problem


# -- 7. operator actions that cannot be recorded fail -----------------------------------------------
def test_emit_event_refuses_while_the_sink_is_not_healthy(tmp_path: Path) -> None:
    sink = JsonlSink("/dev/full", flush_interval_s=0.01)
    sink.emit(record(1))
    assert until(lambda: not sink.healthy)
    dropped = sink.dropped
    assert not sink.emit_event({"type": "quarantine_added", "by": "alice"})
    assert sink.dropped == dropped + 1
    sink.close()


def test_with_required_audit_an_operator_change_the_log_cannot_record_changes_nothing(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 'required = true\npath = "/dev/full"\nflush_interval_ms = 10')
    with Engine.from_workspace(ws) as engine:
        engine.decide(ONE)
        assert until(lambda: not engine.audit_ready())
        t = _pending(engine.approvals, "t0", engine.now())
        changes = [
            lambda: engine.desk.approve(t.id, by="dave"),
            lambda: engine.desk.deny(t.id, by="dave"),
            lambda: engine.desk.add(("user", RICK), by="alice"),
            lambda: engine.reload(by="carol"),
        ]
        for change in changes:
            with pytest.raises(AuditError) as info:
                change()
            assert info.value.code == "audit_unavailable" and "nothing was changed" in info.value.message
        assert engine.approvals.get(t.id).state == "pending"
        assert engine.desk.quarantined() == [] and engine.reloads == 0


def test_with_required_sync_audit_a_change_whose_event_fails_is_reported(tmp_path: Path) -> None:
    """The log looked writable until the change's own event failed: the change stands, and the
    caller is told it is not recorded (never a silent success)."""
    ws = _workspace(tmp_path, 'required = true\npath = "/dev/full"\ndurability = "sync"')
    with Engine.from_workspace(ws) as engine:
        t = _pending(engine.approvals, "t0", engine.now())
        with pytest.raises(AuditError) as info:
            engine.desk.approve(t.id, by="dave")
        assert "refused its ticket_approved event" in info.value.message
        assert engine.approvals.get(t.id).state == "approved"
        with pytest.raises(AuditError):  # known unwritable now: refused before changing anything
            engine.desk.add(("user", RICK), by="alice")
        assert engine.desk.quarantined() == []


def test_the_clis_change_is_reported_when_its_event_cannot_be_written(tmp_path: Path) -> None:
    """`vigil approvals approve` writes its event before it reports success (it used to be written
    at exit, where a failure was only logged)."""
    from vigil.operations.service import StateDesk

    ws = _workspace(tmp_path, 'path = "/dev/full"')
    with StateDesk(ws) as desk:
        t = _pending(desk.approvals, "t0", desk.now())
        with pytest.raises(AuditError) as info:
            desk.approve(t.id, by="dave")
        assert info.value.code == "audit_unavailable" and "could not be written" in info.value.message


def test_the_cli_changes_nothing_when_the_audit_log_cannot_be_opened(tmp_path: Path) -> None:
    from vigil.operations.service import StateDesk

    ws = _workspace(tmp_path, 'path = "logs"')
    (ws / "logs").mkdir()  # a directory: the log cannot be opened
    with StateDesk(ws) as desk:
        t = _pending(desk.approvals, "t0", desk.now())
        with pytest.raises(AuditError) as info:
            desk.approve(t.id, by="dave")
        assert "nothing was changed" in info.value.message
        assert desk.approvals.get(t.id).state == "pending"
