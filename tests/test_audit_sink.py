"""The JSON-lines audit sink: every accepted record is written once, in order, with a bounded
buffer; encoding happens in batches on the emitting thread, writing on the writer thread."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.audit_helpers import log_events, record
from vigil.audit.logfile import _write_all
from vigil.audit.sink import JsonlSink


def test_every_record_written_once_in_order_across_batches(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "a.jsonl", batch=8, flush_interval_s=60)
    for n in range(100):
        assert sink.emit(record(n))
    sink.close()
    events = log_events(tmp_path / "a.jsonl")
    assert [e["id"] for e in events] == [f"a-{n}" for n in range(100)]
    assert [e["context"] for e in events] == [{"n": n} for n in range(100)]
    assert sink.written == 100 and sink.dropped == 0


def test_short_writes_are_resumed_where_they_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer hands each batch to os.write; a call that writes less (a signal, a full pipe)
    is resumed where it stopped, so no byte is lost or written twice."""
    real = os.write
    calls = []

    def short_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real(fd, bytes(data)[:7])

    monkeypatch.setattr(os, "write", short_write)
    data = b"abc\ndefghijklmnop\nq\nrstuvwxyz\n"
    fd = os.open(tmp_path / "w", os.O_WRONLY | os.O_CREAT)
    _write_all(fd, data)
    os.close(fd)
    assert (tmp_path / "w").read_bytes() == data
    assert len(calls) == 5  # 31 bytes, seven at a time

    sink = JsonlSink(tmp_path / "a.jsonl", batch=8, flush_interval_s=60, chain=False)
    for n in range(20):
        sink.emit(record(n))
    sink.close()
    monkeypatch.undo()
    assert [e["id"] for e in log_events(tmp_path / "a.jsonl")] == [f"a-{n}" for n in range(20)]


def test_quiet_period_is_written_by_the_writer_thread(tmp_path: Path) -> None:
    """Fewer records than a batch: the writer thread encodes and writes them within its interval."""
    sink = JsonlSink(tmp_path / "a.jsonl", batch=64, flush_interval_s=0.02)
    for n in range(3):
        sink.emit(record(n))
    deadline = time.monotonic() + 5
    while sink.written < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(log_events(tmp_path / "a.jsonl")) == 3
    sink.close()


def test_full_buffer_refuses_and_counts_then_recovers(tmp_path: Path) -> None:
    """Encoded but unwritten records still count against the capacity: nothing grows unbounded."""
    sink = JsonlSink(tmp_path / "a.jsonl", capacity=10, batch=4, flush_interval_s=60)
    accepted = [sink.emit(record(n)) for n in range(15)]
    assert accepted == [True] * 10 + [False] * 5
    assert sink.dropped == 5
    sink.flush()
    assert sink.emit(record(99))
    sink.close()
    assert len(log_events(tmp_path / "a.jsonl")) == 11


def test_a_filling_buffer_wakes_the_writer_before_its_tick(tmp_path: Path) -> None:
    """Sustained load with a long flush interval: once half the buffer waits, the writer is woken
    and writes, so nothing is dropped (the load pauses now and then, as a server's does, which is
    when the writer thread gets to run)."""
    sink = JsonlSink(tmp_path / "a.jsonl", capacity=100, batch=4, flush_interval_s=60)
    for n in range(1_000):
        assert sink.emit(record(n)), n
        if n % 10 == 9:
            time.sleep(0.002)
    assert sink.dropped == 0
    assert sink.written > 0  # before any flush: the writer was woken
    sink.close()
    assert [e["id"] for e in log_events(tmp_path / "a.jsonl")] == [f"a-{n}" for n in range(1_000)]


def test_concurrent_emitters_lose_nothing_and_keep_each_threads_order(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "a.jsonl", batch=16, flush_interval_s=0.005)
    threads = [
        threading.Thread(target=lambda w=w: [sink.emit(record(n, w)) for n in range(2_000)])
        for w in ("t0", "t1", "t2", "t3")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    events = log_events(tmp_path / "a.jsonl")
    assert len(events) == 8_000 and sink.dropped == 0
    for w in ("t0", "t1", "t2", "t3"):
        assert [e["id"] for e in events if e["subject"] == {"type": "Agent", "id": w}] == [
            f"{w}-{n}" for n in range(2_000)
        ]


def test_closed_sink_refuses(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "a.jsonl")
    sink.close()
    assert not sink.emit(record(1))
    assert sink.dropped == 1


def test_audit_settings_are_checked() -> None:
    import pytest

    from vigil.errors import WorkspaceError
    from vigil.workspace.settings import parse_settings

    assert parse_settings("[audit]\nbatch = 8\n").audit.batch == 8
    assert parse_settings("").audit.batch == 32
    for bad in ("batch = 0", "batch = 5000", "buffer = 0", "flush_interval_ms = 0", 'batch = "8"'):
        with pytest.raises(WorkspaceError):
            parse_settings(f"[audit]\n{bad}\n")
