"""Graceful shutdown: SIGTERM while requests are in flight. Every response that was sent carries
decisions that are in the audit file afterwards (flushed at shutdown), and the server exits cleanly."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

from tests.test_server_support import ServerProcess, copy_workspace

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
ONE = {
    "subject": {"type": "user", "id": RICK},
    "action": {"name": "can_create_todo"},
    "resource": {"type": "todo", "id": "t"},
}


def test_sigterm_finishes_in_flight_requests_and_flushes_audit(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-todo", tmp_path)
    # A long flush interval: only the shutdown flush can have written the last events.
    (ws / "vigil.toml").write_text("[audit]\nflush_interval_ms = 60000\n")
    server = ServerProcess(ws).wait_ready()
    ids: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    # Connection errors once the server stops listening are expected (they end a worker); any other
    # answer than a 200 with decisions is a failure, collected here and asserted in the main thread
    # (an assertion raised in a worker thread would only be a pytest warning).
    ended: list[str] = []
    failures: list[str] = []

    def worker(batch: bool) -> None:
        with server.client() as client:
            while not stop.is_set():
                try:
                    if batch:
                        r = client.post("/access/v1/evaluations", json={**ONE, "evaluations": [{}] * 500})
                    else:
                        r = client.post("/access/v1/evaluation", json=ONE)
                except httpx.TransportError as e:
                    with lock:
                        ended.append(type(e).__name__)
                    return
                try:
                    if r.status_code != 200:
                        raise ValueError(f"status {r.status_code}")
                    body = r.json()
                    got = (
                        [e["context"]["id"] for e in body["evaluations"]]
                        if batch
                        else [body["context"]["id"]]
                    )
                except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError is a ValueError
                    with lock:
                        failures.append(f"{type(e).__name__}: {e}: {r.status_code} {r.text[:200]}")
                    return
                with lock:
                    ids.extend(got)

    threads = [threading.Thread(target=worker, args=(i % 2 == 0,)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    assert server.stop(timeout=60), server.log()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures
    audit = ws / ".vigil" / "audit.jsonl"
    written = {json.loads(line).get("id") for line in audit.read_text().splitlines()}
    assert len(ids) > 1000
    missing = [i for i in ids if i not in written]
    assert not missing, f"{len(missing)} decisions answered but not audited"
    assert '"audit_dropped":0' in server.log().replace(" ", "")
