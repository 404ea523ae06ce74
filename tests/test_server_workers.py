"""`vigil serve --workers N`: N processes on one port (SO_REUSEPORT) over one PostgreSQL store and
one Redis channel; a worker killed with kill -9 under load is started again while the others keep
answering; a quarantine through the admin API holds for every worker. Against the real servers."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.behaviour_support import T0, request
from tests.pg_support import fresh_schema, unique
from tests.test_cluster import WHO, cluster_workspace
from tests.test_server_support import ADMIN_KEY, API_KEY, ServerProcess


def worker_pids(server: ServerProcess) -> list[int]:
    return [int(json.loads(line)["pid"]) for line in list(server.lines) if '"worker started"' in line]


def test_two_workers_share_the_port_survive_a_kill_and_share_a_quarantine(tmp_path: Path) -> None:
    with fresh_schema() as schema:
        ws = cluster_workspace(tmp_path / "ws", schema, unique("vigil_t"))
        server = ServerProcess(ws, args=("--workers", "2"))
        try:
            server.wait_ready()
            body = request(WHO, "read", "data-table-0", T0)
            deadline = time.monotonic() + 60
            while server.log().count('"listening"') < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # both workers listen on the one port
            ports = {json.loads(x)["port"] for x in server.lines if '"listening"' in x}
            assert ports == {server.port}
            pids = worker_pids(server)
            assert len(pids) == 2

            # kill -9 one worker while requests flow: every request is answered (by the other or
            # by the new one), and the dead one is started again
            failures: list[str] = []
            answered = [0]
            stop = threading.Event()

            def load() -> None:
                while not stop.is_set():
                    try:
                        with httpx.Client(base_url=server.url, timeout=10) as c:
                            r = c.post(
                                "/access/v1/evaluation",
                                json=body,
                                headers={"Authorization": f"Bearer {API_KEY}"},
                            )
                        if r.status_code != 200:
                            failures.append(f"{r.status_code} {r.text[:200]}")
                        answered[0] += 1
                    except httpx.TransportError as e:  # a connection the dead worker held
                        failures.append(f"transport: {e!r}")

            t = threading.Thread(target=load)
            t.start()
            time.sleep(0.5)
            os.kill(pids[0], signal.SIGKILL)
            assert_restarted = time.monotonic() + 30
            while len(worker_pids(server)) < 3 and time.monotonic() < assert_restarted:
                time.sleep(0.05)
            time.sleep(1.0)
            stop.set()
            t.join(30)
            assert len(worker_pids(server)) == 3, server.log()
            assert answered[0] >= 5
            # at most the requests in flight on the killed worker's connections are lost
            assert len(failures) <= 2, failures

            # a quarantine through one worker holds for all of them
            with httpx.Client(base_url=server.url, timeout=10) as admin:
                r = admin.post(
                    "/admin/v1/quarantine/add",
                    json={"subject": {"type": "Agent", "id": WHO}, "by": "ops", "reason": "leak"},
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                )
                assert r.status_code == 200, r.text
            time.sleep(0.2)
            decisions = []
            for _ in range(20):  # new connections: spread over the workers
                with httpx.Client(base_url=server.url, timeout=10) as c:
                    decisions.append(
                        c.post(
                            "/access/v1/evaluation",
                            json=body,
                            headers={"Authorization": f"Bearer {API_KEY}"},
                        ).json()["decision"]
                    )
            assert decisions == [False] * 20
        finally:
            assert server.stop(), server.log()


def test_workers_need_a_store_every_worker_can_use(tmp_path: Path) -> None:
    import pytest

    from tests.behaviour_support import write_workspace
    from vigil.server.run import ServeError
    from vigil.server.workers import supervise

    ws = write_workspace(tmp_path / "ws", store="memory")
    with pytest.raises(ServeError, match="memory"):
        supervise(ws, workers=2, port=0)
    with pytest.raises(ServeError, match="between 1 and"):
        supervise(ws, workers=0, port=0)
    shared = write_workspace(tmp_path / "shared", store="sqlite")
    with pytest.raises(ServeError, match="gRPC"):
        supervise(shared, workers=2, port=0, grpc_port=0)
