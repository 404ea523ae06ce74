"""Several processes on one PostgreSQL store, told about each other's changes over Redis
(vigil.cluster): a quarantine, a lift, a suspension and a reload made through one engine are in
effect in the other within 100 ms; a dropped Redis connection resumes and catches up from the change
log by itself; with Redis unreachable, decisions go on from local state and the status says so.
Against the real PostgreSQL and Redis (tests/pg_support.py): each test in its own schema and on its
own channel."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

import vigil
from tests.behaviour_support import T0, engine, request, write_workspace
from tests.pg_support import PG_URL, REDIS_URL, fresh_schema, unique
from vigil.store import QuarantineEntry
from vigil.store.postgres import PostgresStore

WHO = "data-agent-1"
AGENT = ("Agent", WHO)


def cluster_workspace(root: Path, schema: str, channel: str, redis_url: str = REDIS_URL) -> Path:
    ws = write_workspace(root, store="postgres")
    text = (ws / "vigil.toml").read_text()
    text = text.replace(
        'backend = "postgres"',
        f'backend = "postgres"\nurl = "{PG_URL}"\nschema = "{schema}"\ndecision_timeout_ms = 200',
    )
    text += f'\n[cluster]\nredis = "{redis_url}"\nchannel = "{channel}"\n'
    (ws / "vigil.toml").write_text(text)
    return ws


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[vigil.Engine, vigil.Engine, str]]:
    """Two engines (as two processes would be) on one schema and one channel."""
    with fresh_schema() as schema:
        channel = unique("vigil_t")
        ws = cluster_workspace(tmp_path / "ws", schema, channel)
        a = engine(ws)
        b = engine(ws)
        try:
            assert wait_for(lambda: a.cluster is not None and a.cluster.connected, 5)
            assert wait_for(lambda: b.cluster is not None and b.cluster.connected, 5)
            yield a, b, schema
        finally:
            a.close()
            b.close()


def wait_for(condition: Callable[[], bool], seconds: float) -> float | None:
    """Seconds until ``condition()`` held (polled every 0.5 ms), None when it did not in time."""
    t0 = time.perf_counter()
    while not condition():
        if time.perf_counter() - t0 > seconds:
            return None
        time.sleep(0.0005)
    return time.perf_counter() - t0


def denied(e: vigil.Engine, reason: str) -> bool:
    r = e.decide(request(WHO, "read", "data-table-0", T0), now=T0)
    return not r.allowed and reason in r.reason_codes


def test_a_quarantine_through_one_is_enforced_by_the_other_within_100_ms(
    pair: tuple[vigil.Engine, vigil.Engine, str],
) -> None:
    a, b, _ = pair
    assert b.decide(request(WHO, "read", "data-table-0", T0), now=T0).allowed
    for _ in range(5):
        a.desk.add(AGENT, by="ops", reason="leak")
        took = wait_for(lambda: AGENT in b.quarantine, 1.0)
        assert took is not None and took < 0.1, took
        assert denied(b, "quarantined")
        a.desk.lift(AGENT, by="ops")
        took = wait_for(lambda: AGENT not in b.quarantine, 1.0)
        assert took is not None and took < 0.1, took
        assert b.decide(request(WHO, "read", "data-table-0", T0), now=T0).allowed
    assert b.cluster is not None and b.cluster.status()["redis"] == "connected"


def test_a_suspension_through_one_is_enforced_by_the_other(
    pair: tuple[vigil.Engine, vigil.Engine, str],
) -> None:
    a, b, _ = pair
    a.identities.add(AGENT, owner="dana@example.com", purpose="etl", by="ops")
    a.identities.suspend(AGENT, by="ops", reason="key leaked")
    took = wait_for(lambda: denied(b, "identity_inactive"), 1.0)
    assert took is not None and took < 0.1, took
    a.identities.resume(AGENT, by="ops")
    assert wait_for(lambda: not denied(b, "identity_inactive"), 1.0) is not None


def test_a_reload_through_one_reloads_the_other(pair: tuple[vigil.Engine, vigil.Engine, str]) -> None:
    a, b, _ = pair
    before = b.reloads
    assert a.reload(by="ops").ok
    took = wait_for(lambda: b.reloads > before, 2.0)
    assert took is not None and took < 1.0
    assert a.reloads == 1  # no echo back to the one that reloaded


def test_a_killed_subscription_resumes_and_catches_up_by_itself(
    pair: tuple[vigil.Engine, vigil.Engine, str],
) -> None:
    a, b, schema = pair
    assert b.cluster is not None
    # a change nobody announced (as if made while Redis was away): only the log has it
    quiet = PostgresStore(PG_URL, schema=schema)
    try:
        quiet.put_quarantine(QuarantineEntry(AGENT, 1.0, "ops", "made while Redis was away"))
        seq = quiet.append_change(1.0, "quarantine_added", AGENT, "ops", {"reason": ""}).seq
    finally:
        quiet.close()
    catch_ups = b.cluster.catch_ups
    r = redis.Redis.from_url(REDIS_URL)
    try:  # CLIENT KILL of this test's subscriptions only (others may share the Redis)
        mine = [c for c in r.client_list(_type="pubsub") if c["name"] == f"vigil:{b.cluster.channel}:sub"]
        assert len(mine) == 2  # a's and b's
        for c in mine:
            r.client_kill_filter(_id=c["id"])
    finally:
        r.close()
    assert wait_for(lambda: b.cluster is not None and b.cluster.catch_ups > catch_ups, 5) is not None
    assert wait_for(lambda: b.cluster is not None and b.cluster.status()["last_seen"] >= seq, 5) is not None
    assert wait_for(lambda: AGENT in b.quarantine, 1) is not None
    # and propagation goes on over the new subscription
    a.desk.lift(AGENT, by="ops")
    took = wait_for(lambda: AGENT not in b.quarantine, 1.0)
    assert took is not None and took < 0.1, took


def test_redis_unreachable_decisions_go_on_and_the_status_says_so(tmp_path: Path) -> None:
    with fresh_schema() as schema:
        ws = cluster_workspace(tmp_path / "ws", schema, unique("vigil_t"), "redis://127.0.0.1:1/0")
        e = engine(ws)
        try:
            assert e.cluster is not None
            time.sleep(0.2)
            assert e.status()["cluster"]["redis"] == "unreachable"
            assert e.decide(request(WHO, "read", "data-table-0", T0), now=T0).allowed
            e.desk.add(AGENT, by="ops", reason="leak")  # the store has it; Redis waits
            assert denied(e, "quarantined")
            assert e.status()["cluster"]["publishing"] is False or e.cluster.errors >= 1
        finally:
            t0 = time.monotonic()
            e.close()
            assert time.monotonic() - t0 < 5  # closing does not hang on an unreachable Redis


def test_two_servers_a_quarantine_through_one_is_denied_by_the_other(tmp_path: Path) -> None:
    from tests.test_server_support import ADMIN_KEY, ServerProcess

    with fresh_schema() as schema:
        ws = cluster_workspace(tmp_path / "ws", schema, unique("vigil_t"))
        one = ServerProcess(ws)
        two = ServerProcess(ws)
        try:
            one.wait_ready()
            two.wait_ready()
            body = request(WHO, "read", "data-table-0", T0)
            with one.client(ADMIN_KEY) as admin, two.client() as api:
                assert wait_for(lambda: api.get("/readyz").json()["status"] == "ready", 5) is not None
                assert api.post("/access/v1/evaluation", json=body).json()["decision"] is True
                r = admin.post(
                    "/admin/v1/quarantine/add",
                    json={"subject": {"type": "Agent", "id": WHO}, "by": "ops", "reason": "leak"},
                )
                assert r.status_code == 200, r.text
                t0 = time.perf_counter()
                took = wait_for(
                    lambda: api.post("/access/v1/evaluation", json=body).json()["decision"] is False, 2.0
                )
                assert took is not None and time.perf_counter() - t0 < 0.5, took
        finally:
            assert one.stop() and two.stop()


def test_a_server_without_redis_is_degraded_and_still_decides(tmp_path: Path) -> None:
    from tests.test_server_support import ServerProcess

    with fresh_schema() as schema:
        ws = cluster_workspace(tmp_path / "ws", schema, unique("vigil_t"), "redis://127.0.0.1:1/0")
        server = ServerProcess(ws)
        try:
            server.wait_ready()
            with server.client() as api:
                ready = api.get("/readyz")
                assert ready.status_code == 200 and ready.json()["status"] == "degraded"
                assert ready.json()["cluster"]["redis"] == "unreachable"
                body = request(WHO, "read", "data-table-0", T0)
                assert api.post("/access/v1/evaluation", json=body).json()["decision"] is True
                assert "vigil_cluster_connected 0" in api.get("/metrics").text
        finally:
            assert server.stop()


def test_a_cli_change_is_announced_to_running_engines(tmp_path: Path) -> None:
    from vigil.operations.service import StateDesk

    with fresh_schema() as schema:
        ws = cluster_workspace(tmp_path / "ws", schema, unique("vigil_t"))
        e = engine(ws)
        try:
            assert wait_for(lambda: e.cluster is not None and e.cluster.connected, 5) is not None
            desk = StateDesk(ws)
            try:
                desk.quarantine.add(AGENT, by="ops", reason="from the CLI", now=1.0)
            finally:
                desk.close()  # sends the announcement
            took = wait_for(lambda: AGENT in e.quarantine, 0.5)
            assert took is not None
        finally:
            e.close()


def test_terminated_store_connections_decisions_go_on_and_the_store_recovers(
    pair: tuple[vigil.Engine, vigil.Engine, str],
) -> None:
    from tests.pg_support import terminate
    from vigil.store import StoreError

    a, _b, schema = pair
    assert terminate(schema) >= 1
    t0 = time.monotonic()
    assert a.decide(request(WHO, "read", "data-table-0", T0), now=T0).allowed  # local state
    failed = None
    try:  # what needs the store: done on a new connection, or store_unavailable; never a hang
        a.desk.add(AGENT, by="ops", reason="during the outage")
    except StoreError as e:
        assert e.code == "store_unavailable"
        failed = e.message
    assert time.monotonic() - t0 < 3.0, failed
    assert denied(a, "quarantined")  # held in memory at least (fail closed)

    def saved() -> bool:  # the operator retries until the store has it
        try:
            a.desk.add(AGENT, by="ops", reason="during the outage")
        except StoreError:
            return False
        return [q.subject for q in a.store.quarantines()] == [AGENT]

    assert wait_for(saved, 5) is not None
    print("first attempt:", failed or "succeeded")
