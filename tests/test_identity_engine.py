"""The registry at decision time: a suspended, retired or expired principal is denied
``identity_inactive`` at the next decision (an identity the registry does not hold is
unaffected), a change made by another process reaches a running engine at its next refresh tick
or reload, and ``last_used`` comes from decisions without a store write per decision."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.identity_support import OWNER, PURPOSE, SA, fleet
from vigil.engine import Engine
from vigil.operations.service import StateDesk
from vigil.store import MemoryStore

T = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
READ = {  # allowed by the agent-fleet policies (tests/test_cli.py)
    "subject": {"type": "ServiceAccount", "id": "ml-training-pipeline"},
    "action": {"name": "read"},
    "resource": {"type": "Database", "id": "ml-training-sets-prod"},
    "context": {"time": "2026-11-27T00:00:00Z", "ip": "10.40.8.8", "region": "eu-west-1", "hour": 0},
}
OTHER = {  # another identity, never registered
    **READ,
    "subject": {"type": "ServiceAccount", "id": "feature-store-sync"},
    "resource": {"type": "Database", "id": "feature-store-prod"},
}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return fleet(tmp_path / "ws", '[behaviour]\nmode = "shadow"\n')


def test_suspend_resume_retire_at_the_next_decision(ws: Path) -> None:
    with Engine.from_workspace(ws, clock=T.timestamp) as engine:
        other_before = engine.decide(OTHER, now=T).allowed
        assert engine.decide(READ, now=T).allowed
        engine.identities.add(SA, owner=OWNER, purpose=PURPOSE, by="ops")
        assert engine.decide(READ, now=T).allowed  # registered and active: as before
        engine.identities.suspend(SA, by="ops", reason="leak")
        r = engine.decide(READ, now=T)
        assert not r.allowed and r.reason_codes == ("identity_inactive",) and r.policies == ()
        assert r.to_authzen()["context"]["reason_codes"] == ["identity_inactive"]
        assert engine.decide(OTHER, now=T).allowed == other_before  # not registered: unaffected
        engine.identities.resume(SA, by="ops")
        assert engine.decide(READ, now=T).allowed
        engine.identities.retire(SA, by="ops")
        assert engine.decide(READ, now=T).reason_codes == ("identity_inactive",)
        assert engine.status()["identities_inactive"] == 1
    events = [json.loads(x) for x in (ws / ".vigil" / "audit.jsonl").read_text().splitlines()]
    denied = [e for e in events if e.get("reason_codes") == ["identity_inactive"]]
    assert len(denied) == 2
    kinds = [e["type"] for e in events if e.get("type", "").startswith("identity_")]
    assert kinds == ["identity_added", "identity_suspended", "identity_resumed", "identity_retired"]


def test_expiry_is_judged_at_each_decisions_time(ws: Path) -> None:
    with Engine.from_workspace(ws, clock=T.timestamp) as engine:
        engine.identities.add(SA, owner=OWNER, purpose=PURPOSE, by="ops", expires="2026-11-28")
        assert engine.registry.next_expiry == datetime(2026, 11, 28, tzinfo=UTC).timestamp()
        assert engine.decide(READ, now=T + timedelta(hours=23, minutes=59)).allowed
        r = engine.decide(READ, now=T + timedelta(days=1))
        assert r.reason_codes == ("identity_inactive",)
        assert engine.decide(READ, now=T + timedelta(hours=1)).reason_codes == ("identity_inactive",)
        assert engine.decide(OTHER, now=T + timedelta(days=2)).reason_codes != ("identity_inactive",)
        shown = engine.identities.describe(
            engine.registry.require(("ServiceAccount", "ml-training-pipeline")),
            (T + timedelta(days=2)).timestamp(),
        )
        assert shown["status"] == "expired"


def test_a_change_from_another_process_arrives_at_the_tick_and_at_reload(ws: Path) -> None:
    (ws / "vigil.toml").write_text('[behaviour]\nmode = "shadow"\n\n[store]\nsnapshot_interval_s = 1\n')
    with Engine.from_workspace(ws) as engine:
        now = datetime.now(UTC)
        assert engine.decide(READ, now=now).allowed
        with StateDesk(ws) as desk:  # the CLI's way: settings and store only
            desk.identities.add(SA, owner=OWNER, purpose=PURPOSE, by="cli")
            desk.identities.suspend(SA, by="cli")
        deadline = time.monotonic() + 10
        while engine.decide(READ, now=now).allowed:  # the engine's refresh tick (about 1 s)
            assert time.monotonic() < deadline, "the suspension never reached the engine"
            time.sleep(0.1)
        assert engine.decide(READ, now=now).reason_codes == ("identity_inactive",)
        with StateDesk(ws) as desk:
            desk.identities.resume(SA, by="cli")
        engine.reload(by="test")  # a reload reads the registry again at once
        assert engine.decide(READ, now=now).allowed


def test_last_used_comes_from_decisions_and_is_written_at_close(ws: Path) -> None:
    with Engine.from_workspace(ws, clock=T.timestamp) as engine:
        engine.identities.add(SA, owner=OWNER, purpose=PURPOSE, by="ops")
        writes = []
        save = engine.store.save_identity_usage
        engine.store.save_identity_usage = lambda items: writes.append(list(items)) or save(items)  # type: ignore[method-assign]
        for i in range(50):
            engine.decide(READ, now=T + timedelta(seconds=i))
        assert writes == []  # no store write per decision
        uid = ("ServiceAccount", "ml-training-pipeline")
        assert engine.registry.last_used(uid) is not None
    assert len(writes) == 1 and [u.subject for u in writes[0]] == [uid]  # one batch at close
    with StateDesk(ws) as desk:
        shown = desk.identities.describe(desk.identities.show(SA))
    assert shown["last_used"] is not None


def test_last_used_with_behaviour_off(tmp_path: Path) -> None:
    ws = fleet(tmp_path / "off", '[behaviour]\nmode = "off"\n')
    with Engine.from_workspace(ws, clock=T.timestamp) as engine:
        engine.identities.add(SA, owner=OWNER, purpose=PURPOSE, by="ops")
        engine.decide(READ, now=T + timedelta(minutes=5))
        assert (
            engine.registry.last_used(("ServiceAccount", "ml-training-pipeline"))
            == (T + timedelta(minutes=5)).timestamp()
        )


def test_an_empty_registry_changes_no_decision(tmp_path: Path) -> None:
    ws = fleet(tmp_path / "plain", '[behaviour]\nmode = "shadow"\n')
    with Engine.from_workspace(ws, store=MemoryStore(), clock=T.timestamp) as engine:
        assert engine.registry.inactive == frozenset() and engine.registry.next_expiry == float("inf")
        assert engine.decide(READ, now=T).reason_codes == ("policy_permit",)


def test_searches_leave_inactive_identities_out(ws: Path) -> None:
    from vigil.protocol.search import Searcher

    with Engine.from_workspace(ws, clock=T.timestamp) as engine:
        searcher = Searcher(engine)
        subject_search = {
            "subject": {"type": "ServiceAccount"},
            "action": {"name": "read"},
            "resource": READ["resource"],
            "context": READ["context"],
        }
        resource_search = {**READ, "resource": {"type": "Database"}}
        me = {"type": "ServiceAccount", "id": "ml-training-pipeline"}
        assert me in searcher.subject(subject_search)["results"]
        assert searcher.resource(resource_search)["results"]
        engine.identities.add(SA, owner=OWNER, purpose=PURPOSE, by="ops")
        engine.identities.suspend(SA, by="ops")
        assert me not in searcher.subject(subject_search)["results"]
        assert searcher.resource(resource_search)["results"] == []
        assert searcher.action({k: READ[k] for k in ("subject", "resource", "context")})["results"] == []


def test_identity_settings_are_checked() -> None:
    from vigil.errors import WorkspaceError
    from vigil.workspace.settings import parse_settings

    s = parse_settings('[identity]\ntypes = ["Acme::Agent", "Bot"]\nunused_days = 7\n')
    assert s.identity.types == ("Acme::Agent", "Bot") and s.identity.unused_days == 7
    assert parse_settings("").identity.types == ("Agent", "ServiceAccount", "Workload")
    for bad in (
        'types = ["not a type"]',
        "unused_days = 0",
        "key_age_days = -1",
        "max_keys = 0",
        "colour = 1",
        'types = "Agent"',
    ):
        with pytest.raises(WorkspaceError):
            parse_settings(f"[identity]\n{bad}\n")
