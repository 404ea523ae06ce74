"""An agent that spreads its requests over two `vigil serve` processes (one workspace, PostgreSQL
+ Redis) still trips ``rate_spike`` and ``enumeration``: each process merges the other's request
counts (docs/deployment.md, "Behaviour across processes"). The controls show the test can fail:
the same split traffic with ``[cluster] share_behaviour = false`` trips neither (each process sees
half), and the whole traffic on one process trips both. Against the real servers; the signals are
read from the audit log the processes write."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.behaviour_support import engine, habit, request, write_workspace
from tests.pg_support import PG_URL, REDIS_URL, fresh_schema, unique
from tests.test_server_support import API_KEY, ServerProcess

# thresholds the traffic below crosses as a whole and not by half: 40 requests in ~4 s against a
# per-minute floor of 30, a sweep of 30 never-seen resources against an enumeration floor of 20
BEHAVIOUR = {
    "mode": "shadow",  # nothing denied: both halves of the traffic flow alike; signals are audited
    "rate_min_per_minute": 30,
    "rate_min_per_quarter_hour": 60,
    "enumeration_min": 20,
    # for the learned-value check: a new region is known once learned, and light enough to be learned
    "establish_s": 0,
    "weights": {"new_region": 5, "new_network": 5, "new_user_agent": 5, "impossible_travel": 5},
}
BURST = 40
SWEEP = 30
SPLIT_RATE, SPLIT_SWEEP = "data-agent-1", "data-agent-2"
ONE_RATE, ONE_SWEEP = "data-agent-3", "data-agent-4"
ALONE_RATE, ALONE_SWEEP = "payments-agent-1", "payments-agent-2"
TRAVELLER = "data-agent-5"
NEW_PLACE = {"region": "ap-south-1", "ip": "192.0.2.10", "user_agent": "curl/8.4"}


def workspace(root: Path, schema: str, channel: str, *, share: bool) -> Path:
    ws = write_workspace(root, BEHAVIOUR, store="postgres")
    text = (ws / "vigil.toml").read_text()
    text = text.replace(
        'backend = "postgres"',
        f'backend = "postgres"\nurl = "{PG_URL}"\nschema = "{schema}"\nsnapshot_interval_s = 3600',
    )
    text = text.replace('sink = "none"', 'sink = "jsonl"\npath = "audit.jsonl"\nflush_interval_ms = 20')
    text += (
        f'\n[cluster]\nredis = "{REDIS_URL}"\nchannel = "{channel}"\nshare_behaviour = {str(share).lower()}\n'
    )
    (ws / "vigil.toml").write_text(text)
    return ws


def train(ws: Path, who: tuple[str, ...]) -> None:
    """Two weeks of office-hours habit for each of ``who``, ending yesterday, snapshotted to the
    store (where the servers load their profiles from)."""
    e = engine(ws)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=15)
    try:
        for w in who:
            habit(e, w, start=start)
    finally:
        e.close()


@contextmanager
def servers(ws: Path, n: int) -> Iterator[list[ServerProcess]]:
    procs = [ServerProcess(ws) for _ in range(n)]
    try:
        for p in procs:
            p.wait_ready()
        if n > 1:
            time.sleep(0.5)  # both subscribed
        yield procs
    finally:
        for p in procs:
            assert p.stop(), p.log()


def send(
    procs: list[ServerProcess], who: str, resources: list[str], gap_s: float = 0.1, **context: str
) -> None:
    """``who``'s requests, one every ``gap_s``, alternating over ``procs`` (kept-alive clients)."""
    clients = [httpx.Client(base_url=p.url, timeout=10) for p in procs]
    try:
        for i, res in enumerate(resources):
            body = request(who, "read", res, datetime.now(UTC), **context)  # type: ignore[arg-type]
            r = clients[i % len(clients)].post(
                "/access/v1/evaluation", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
            )
            assert r.status_code == 200, r.text
            time.sleep(gap_s)
    finally:
        for c in clients:
            c.close()


def decisions(ws: Path, who: str) -> list[set[str]]:
    """The signals of each of ``who``'s decisions in the audit log (any process), in order."""
    found: list[set[str]] = []
    for line in (ws / "audit.jsonl").read_text().splitlines():
        event = json.loads(line)
        subject = event.get("subject") or {}
        if subject.get("id") == who and "signals" in event:
            found.append(set(event["signals"] or ()))
    return found


def signals(ws: Path, who: str) -> set[str]:
    """The signals the audit log holds for ``who``'s decisions (any process)."""
    return set().union(*decisions(ws, who))


def burst() -> list[str]:
    return ["data-table-0"] * BURST


def sweep(who: str) -> list[str]:
    return [f"{who}-export-{i}" for i in range(SWEEP)]


def test_split_traffic_trips_rate_spike_and_enumeration_only_when_counts_are_shared(tmp_path: Path) -> None:
    with fresh_schema() as schema:
        shared = workspace(tmp_path / "shared", schema, unique("vigil_t"), share=True)
        alone = workspace(tmp_path / "alone", schema, unique("vigil_t"), share=False)
        train(shared, (SPLIT_RATE, SPLIT_SWEEP, ONE_RATE, ONE_SWEEP, ALONE_RATE, ALONE_SWEEP, TRAVELLER))

        with servers(shared, 2) as (a, b):
            send([a, b], SPLIT_RATE, burst())
            send([a, b], SPLIT_SWEEP, sweep(SPLIT_SWEEP))
            # the same traffic through one process
            send([a], ONE_RATE, burst())
            send([a], ONE_SWEEP, sweep(ONE_SWEEP))
            # a new region learned through a is not new to b a second later
            send([a], TRAVELLER, ["data-table-0"], **NEW_PLACE)
            time.sleep(1.0)
            send([b], TRAVELLER, ["data-table-0"], **NEW_PLACE)
        with servers(alone, 2) as (a, b):
            send([a, b], ALONE_RATE, burst())
            send([a, b], ALONE_SWEEP, sweep(ALONE_SWEEP))

        assert "rate_spike" in signals(shared, SPLIT_RATE)
        assert "enumeration" in signals(shared, SPLIT_SWEEP)
        assert "rate_spike" in signals(shared, ONE_RATE)
        assert "enumeration" in signals(shared, ONE_SWEEP)
        first, second = decisions(shared, TRAVELLER)
        assert {"new_region", "new_network", "new_user_agent"} <= first, first
        assert not {"new_region", "new_network", "new_user_agent"} & second, second
        # not shared: each process sees half the rate and half the sweep, below both thresholds
        assert "rate_spike" not in signals(alone, ALONE_RATE)
        assert "enumeration" not in signals(alone, ALONE_SWEEP)
