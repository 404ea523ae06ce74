"""Learned behaviour shared between two engines (as two processes would be) on one PostgreSQL
schema and one Redis channel: a region, network, user agent and resource learned through one are
known to the other within a few seconds, not flagged again there. With ``[cluster]
share_behaviour = false`` (the control) the other flags them. Against the real servers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import redis

from tests.behaviour_support import engine, habit, request, write_workspace
from tests.pg_support import PG_URL, REDIS_URL, fresh_schema, unique
from tests.test_cluster import wait_for

WHO = "data-agent-1"
NEW = {"region": "ap-south-1", "ip": "192.0.2.10", "user_agent": "curl/8.4"}
FLAGS = {"new_region", "new_network", "new_user_agent", "new_resource"}


def workspace(root: Path, schema: str, channel: str, *, share: bool) -> Path:
    # establish_s = 0: a new region, network or user agent is known once learned (not a candidate);
    # light weights: the request stays below step-up, so it is learned (a risky one would not be)
    weights = {name: 5 for name in (*FLAGS, "impossible_travel", "segment_crossing", "unusual_hour")}
    ws = write_workspace(root, {"mode": "shadow", "establish_s": 0, "weights": weights}, store="postgres")
    text = (ws / "vigil.toml").read_text()
    text = text.replace(
        'backend = "postgres"', f'backend = "postgres"\nurl = "{PG_URL}"\nschema = "{schema}"'
    )
    text += (
        f'\n[cluster]\nredis = "{REDIS_URL}"\nchannel = "{channel}"\nshare_behaviour = {str(share).lower()}\n'
    )
    (ws / "vigil.toml").write_text(text)
    return ws


@pytest.mark.parametrize("share", [True, False])
def test_a_value_learned_on_one_is_not_flagged_on_the_other(tmp_path: Path, share: bool) -> None:
    with fresh_schema() as schema:
        ws = workspace(tmp_path / "ws", schema, unique("vigil_t"), share=share)
        a, b = engine(ws), engine(ws)
        try:
            if share:
                assert a.sharing is not None and b.sharing is not None
                assert wait_for(lambda: a.sharing.connected and b.sharing.connected, 5)  # type: ignore[union-attr]
            else:
                assert a.sharing is None and b.sharing is None
            for e in (a, b):
                last = habit(e, WHO)
            t = (last + timedelta(days=1)).replace(hour=10, minute=3, second=0)
            while t.weekday() >= 5:
                t += timedelta(days=1)
            body = request(WHO, "read", "data-table-6", t, **NEW)
            first = a.decide(body, now=t)
            assert set(first.signals) >= FLAGS and first.risk < 60, (first.signals, first.risk)
            pb = b.profiles.get(("Agent", WHO))
            assert pb is not None
            known = wait_for(lambda: "ap-south-1" in pb.regions, 3)
            later = t + timedelta(minutes=1)
            other = b.decide(request(WHO, "read", "data-table-6", later, **NEW), now=later)
            if share:
                assert known is not None and known < 2.0
                assert b.sharing is not None and b.sharing.received >= 1
                assert b.status()["behaviour_sharing"]["redis"] == "connected"
                assert not FLAGS & set(other.signals), other.signals
            else:
                assert known is None
                assert set(other.signals) >= FLAGS, other.signals
        finally:
            a.close()
            b.close()


def test_killed_behaviour_connections_resume_and_sharing_goes_on(tmp_path: Path) -> None:
    """CLIENT KILL of both engines' behaviour subscriptions: each reconnects by itself, and a value
    learned afterwards still reaches the other."""
    with fresh_schema() as schema:
        ws = workspace(tmp_path / "ws", schema, unique("vigil_t"), share=True)
        a, b = engine(ws), engine(ws)
        try:
            assert a.sharing is not None and b.sharing is not None
            sa, sb = a.sharing, b.sharing
            assert wait_for(lambda: sa.connected and sb.connected, 5)
            for e in (a, b):
                last = habit(e, WHO)
            r = redis.Redis.from_url(REDIS_URL)
            try:  # this test's subscriptions only (others may share the Redis)
                mine = [c for c in r.client_list(_type="pubsub") if c["name"] == f"vigil:{sa.rates}:sub"]
                assert len(mine) == 2
                for c in mine:
                    r.client_kill_filter(_id=c["id"])
            finally:
                r.close()
            assert wait_for(lambda: not sb.connected, 2) is not None
            assert wait_for(lambda: sa.connected and sb.connected, 5) is not None
            t = (last + timedelta(days=1)).replace(hour=10, minute=3, second=0)
            while t.weekday() >= 5:
                t += timedelta(days=1)
            a.decide(request(WHO, "read", "data-table-6", t, **NEW), now=t)
            pb = b.profiles.get(("Agent", WHO))
            assert pb is not None
            assert wait_for(lambda: "ap-south-1" in pb.regions, 3) is not None
        finally:
            a.close()
            b.close()


def test_with_redis_away_each_counts_its_own_and_decisions_go_on(tmp_path: Path) -> None:
    with fresh_schema() as schema:
        ws = workspace(tmp_path / "ws", schema, unique("vigil_t"), share=True)
        text = (ws / "vigil.toml").read_text().replace(REDIS_URL, "redis://127.0.0.1:1/0")
        (ws / "vigil.toml").write_text(text)
        a = engine(ws)
        try:
            assert a.sharing is not None
            last = habit(a, WHO, days=3)
            p = a.profiles.get(("Agent", WHO))
            assert p is not None and p.learned > 0  # decided and learned, from local state
            assert wait_for(lambda: a.sharing is not None and a.sharing.dropped > 0, 5) is not None
            assert not a.sharing.connected and a.status()["behaviour_sharing"]["redis"] == "unreachable"
            before = p.r1
            t = last + timedelta(seconds=1)
            a.decide(request(WHO, "read", "data-table-0", t), now=t)
            assert p.x_t == 0.0 and p.r1 > before  # its own count, nothing merged
        finally:
            a.close()
