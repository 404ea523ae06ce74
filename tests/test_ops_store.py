"""The state store never stalls the server: a locked store denies what needs it, fast, and delays
no unrelated decision; a quarantine that could not be saved is reported as not durable; a lost
state database refuses to start. Real servers on loopback (in-process uvicorn, so the engine's
clock can be fixed; and `vigil serve` processes for the startup checks)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import vigil
from tests.behaviour_support import engine, habit, request, write_workspace
from tests.test_server_support import ADMIN_KEY, ServerProcess, copy_workspace
from vigil.server.app import ServerConfig, VigilApp

WHO = "payments-agent-0"
CLI = (sys.executable, "-m", "vigil.cli.main")
OTHER = "data-agent-1"

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("BEGIN EXCLUSIVE")  # in WAL mode: every other writer waits
db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('lock-test', 'x')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


class InProcessServer:
    """A VigilApp on uvicorn (uvloop + httptools, as `vigil serve`) in a thread, on loopback."""

    def __init__(self, app: VigilApp) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, loop="uvloop", http="httptools", lifespan="on", log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class LockHolder:
    """Another process holding an exclusive lock on a SQLite file for ``seconds``."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def trained(tmp_path: Path) -> Iterator[tuple[Path, vigil.Engine, datetime]]:
    """A sqlite workspace whose agents have a habit; the engine's clock is fixed at 03:00 three days
    later (outside the habit: WHO's unusual request steps up)."""
    ws = write_workspace(tmp_path / "ws", store="sqlite")
    clock = [0.0]
    e = engine(ws, clock=lambda: clock[0])
    last = habit(e, WHO)
    habit(e, OTHER)
    t = (last + timedelta(days=3)).replace(hour=3)
    clock[0] = t.timestamp()
    e.profiles.snapshot()  # the database exists now
    assert (ws / ".vigil" / "state.db").exists()
    yield ws, e, t


def _serve(e: vigil.Engine) -> InProcessServer:
    return InProcessServer(VigilApp(e, ServerConfig(api_keys=None, admin_keys=None, store_timeout_s=0.5)))


def _risky(t: datetime) -> dict[str, Any]:
    return request(WHO, "read", "payments-table-0", t, ip="10.10.99.9", user_agent="curl/8")


def _usual(t: datetime) -> dict[str, Any]:
    return request(OTHER, "read", "data-table-1", t.replace(hour=10))


def test_a_locked_store_delays_no_unrelated_decision(trained: tuple[Path, vigil.Engine, datetime]) -> None:
    ws, e, t = trained
    server = _serve(e)
    holder = LockHolder(ws / ".vigil" / "state.db", 6.0)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c, ThreadPoolExecutor(2) as pool:
            c.post("/access/v1/evaluation", json=_usual(t))  # warm up the connection path
            t0 = time.monotonic()
            risky = pool.submit(c.post, "/access/v1/evaluation", json=_risky(t))
            time.sleep(0.05)
            u0 = time.monotonic()
            usual = c.post("/access/v1/evaluation", json=_usual(t))
            usual_s = time.monotonic() - u0
            r = risky.result(timeout=30)
            risky_s = time.monotonic() - t0
        assert usual.status_code == 200 and usual.json()["decision"] is True
        assert usual_s < 0.5, f"an unrelated decision waited {usual_s:.2f} s behind the store"
        body = r.json()
        assert r.status_code == 200 and body["decision"] is False
        assert "store_unavailable" in body["context"]["reason_codes"]
        assert "risk_step_up" in body["context"]["reason_codes"]
        assert risky_s < 1.0, f"the step-up waited {risky_s:.2f} s for the store"
        assert e.status()["store_errors"] >= 1
    finally:
        holder.release()
        server.stop()


def test_admin_calls_time_out_and_an_unsaved_quarantine_is_not_durable(
    trained: tuple[Path, vigil.Engine, datetime],
) -> None:
    ws, e, t = trained
    server = _serve(e)
    holder = LockHolder(ws / ".vigil" / "state.db", 10.0)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            t0 = time.monotonic()
            r = c.post(
                "/admin/v1/quarantine/add",
                json={"subject": {"type": "Agent", "id": OTHER}, "by": "ops.oncall", "reason": "leak"},
            )
            elapsed = time.monotonic() - t0
            assert elapsed < 3.0, f"the admin call took {elapsed:.2f} s"
            assert r.status_code == 503, r.text
            err = r.json()["error"]
            assert err["code"] == "store_unavailable"
            assert err["durable"] is False and err["enforced"] is True
            assert err["quarantine"]["subject"] == {"type": "Agent", "id": OTHER}
            # enforced in memory meanwhile
            d = c.post("/access/v1/evaluation", json=_usual(t)).json()
            assert d["decision"] is False and "quarantined" in d["context"]["reason_codes"]
            # a lift cannot be saved either: typed 503, nothing lifted
            r = c.post(
                "/admin/v1/quarantine/lift", json={"subject": {"type": "Agent", "id": OTHER}, "by": "ops"}
            )
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
            assert c.post("/access/v1/evaluation", json=_usual(t)).json()["decision"] is False
            holder.release()
            # once the store is back, adding again saves it
            r = c.post(
                "/admin/v1/quarantine/add",
                json={"subject": {"type": "Agent", "id": OTHER}, "by": "ops.oncall", "reason": "leak"},
            )
            assert r.status_code == 200 and r.json()["durable"] is True
            listed = c.get("/admin/v1/quarantine").json()["quarantined"]
            assert [(q["subject"]["id"], q["durable"]) for q in listed] == [(OTHER, True)]
    finally:
        holder.release()
        server.stop()


def test_the_cli_says_an_unsaved_quarantine_is_not_in_effect(
    trained: tuple[Path, vigil.Engine, datetime],
) -> None:
    ws, e, _t = trained
    e.close()
    toml = (ws / "vigil.toml").read_text().replace("[store]", "[store]\nbusy_timeout_ms = 200")
    (ws / "vigil.toml").write_text(toml)
    holder = LockHolder(ws / ".vigil" / "state.db", 10.0)
    try:
        t0 = time.monotonic()
        out = subprocess.run(
            [*CLI, "quarantine", "add", f'Agent::"{OTHER}"', "-w", str(ws), "--by", "ops", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert time.monotonic() - t0 < 15
    finally:
        holder.release()
    assert out.returncode == 4, out.stdout + out.stderr
    assert '"durable": false' in out.stdout and "NOT saved" in out.stdout


def test_a_lost_state_database_refuses_to_start(tmp_path: Path) -> None:
    ws = copy_workspace("authzen-todo", tmp_path)
    first = ServerProcess(ws).wait_ready()
    with first.client(ADMIN_KEY) as c:
        r = c.post("/admin/v1/quarantine/add", json={"subject": {"type": "user", "id": "x"}, "by": "ops"})
        assert r.status_code == 200, r.text
    assert first.stop()
    db = ws / ".vigil" / "state.db"
    assert db.exists()
    for f in db.parent.glob("state.db*"):
        if not f.name.endswith(".marker"):
            f.unlink()
    refused = ServerProcess(ws)
    assert refused.proc.wait(timeout=60) == 3
    refused._reader.join(timeout=10)
    assert "state database" in refused.log() and "--new-state" in refused.log()
    fresh = ServerProcess(ws, args=("--new-state",)).wait_ready()
    with fresh.client(ADMIN_KEY) as c:
        assert c.get("/admin/v1/quarantine").json()["quarantined"] == []
    assert fresh.stop()
