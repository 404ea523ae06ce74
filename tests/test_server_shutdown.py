"""Graceful shutdown: SIGTERM while requests are in flight. Every response that was sent carries
decisions that are in the audit file afterwards (flushed at shutdown), and the server exits cleanly."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx

from tests.test_server_support import API_KEY, ServerProcess, copy_workspace

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
    # One request surely in flight when SIGTERM arrives: its headers and half its body are sent
    # before, the rest only once the server has stopped accepting connections. A worker's
    # request may lose the race with shutdown (its connection refused or closed: that only ends
    # the worker), this one may not: the server must wait for it and answer it.
    assert server.port is not None
    pending, rest = _start_request(server.port)
    time.sleep(0.3)  # the server has read the headers and waits for the body
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(server.stop(timeout=60)))
    stopper.start()
    _wait_refused(server.port)
    time.sleep(0.3)
    status, body = _finish_request(pending, rest)
    assert status == 200, (status, body[:300], server.log()[-2000:])
    ids.append(json.loads(body)["context"]["id"])
    stopper.join(timeout=90)
    assert stopped == [True], server.log()
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


def _start_request(port: int) -> tuple[socket.socket, bytes]:
    """A POST whose headers and first bytes of body are sent; returns the socket and the rest."""
    body = json.dumps(ONE).encode()
    head = (
        "POST /access/v1/evaluation HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(head + body[:10])
    return sock, body[10:]


def _wait_refused(port: int, timeout: float = 30) -> None:
    """Until the server no longer accepts connections (it is shutting down)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError("the server kept accepting connections after SIGTERM")


def _finish_request(sock: socket.socket, rest: bytes) -> tuple[int, bytes]:
    """Send the rest of the body; the response's status and body (read until the server closes
    the connection, which it does after the last response of a shutdown); (0, b"") when the
    connection is dropped without an answer."""
    chunks = []
    try:
        sock.sendall(rest)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except OSError:
        pass
    finally:
        sock.close()
    raw = b"".join(chunks)
    if not raw:
        return 0, b""
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
