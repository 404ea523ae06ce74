"""One conformance suite for every state store backend (memory, SQLite): profiles, approval
tickets, quarantines, the change log, and ``version()`` moving on every commit."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from vigil.store import (
    APPROVED,
    DENIED,
    PENDING,
    USED,
    MemoryStore,
    QuarantineEntry,
    SqliteStore,
    Store,
    StoreError,
    Ticket,
    open_store,
)
from vigil.store.base import Revocation
from vigil.workspace.settings import StoreSettings

A = ("Agent", "a")
B = ("ServiceAccount", "b")
READ = ("Action", "read")
DB = ("Database", "db")


def ticket(tid: str, subject: tuple[str, str] = A, created: float = 100.0, state: str = PENDING) -> Ticket:
    return Ticket(tid, subject, READ, DB, created, created + 60, 70, ("new_region",), "why", state)


def test_profiles_round_trip(make: Callable[[], Store]) -> None:
    store = make()
    assert list(store.load_profiles()) == []
    assert store.save_profiles([(A, b"one"), (B, b"two")]) == 2
    assert store.save_profiles([(A, b"three")]) == 1
    assert store.save_profiles([]) == 0
    assert dict(make().load_profiles()) == {A: b"three", B: b"two"}


def test_tickets(make: Callable[[], Store]) -> None:
    store = make()
    assert store.get_ticket("nope") is None
    store.put_ticket(ticket("t2", created=200.0))
    store.put_ticket(ticket("t1", created=100.0))
    store.put_ticket(ticket("t3", B, created=300.0))
    assert [t.id for t in store.tickets()] == ["t1", "t2", "t3"]  # oldest first
    assert [t.id for t in store.tickets(subject=B)] == ["t3"]
    decided = ticket("t1", created=100.0, state=APPROVED)
    store.put_ticket(decided)  # replace by id
    other = make()
    assert other.get_ticket("t1") == decided
    assert [t.id for t in other.tickets(state=PENDING)] == ["t2", "t3"]
    assert [t.id for t in other.tickets(state=APPROVED, subject=A)] == ["t1"]


def test_ticket_bound_context_and_uses_round_trip(make: Callable[[], Store]) -> None:
    bound = Ticket(
        "tb", A, READ, DB, 100.0, 160.0, 70, ("new_network",), "why", APPROVED,
        "priya", 110.0, "ok", "10.1.2.0/24", "eu-west-1", "curl/8 \u00e9", 3,
    )  # fmt: skip
    store = make()
    store.put_ticket(bound)
    got = make().get_ticket("tb")
    assert got == bound
    assert (got.network, got.region, got.user_agent, got.uses) == (
        "10.1.2.0/24",
        "eu-west-1",
        "curl/8 \u00e9",
        3,
    )
    assert ticket("plain").uses == 1 and ticket("plain").network == ""  # defaults: unbound, single-use
    used = Ticket(**{**{f: getattr(bound, f) for f in Ticket.__dataclass_fields__}, "uses": 0, "state": USED})
    store.put_ticket(used)
    assert [t.id for t in make().tickets(state=USED)] == ["tb"]


def test_use_ticket_takes_one_use_of_an_approved_unexpired_ticket(make: Callable[[], Store]) -> None:
    store = make()
    approved = replace(ticket("t", state=APPROVED), uses=2)
    store.put_ticket(approved)
    store.put_ticket(ticket("p"))
    assert store.use_ticket("p", 100.0) is None  # pending: nothing to use
    assert store.use_ticket("t", approved.expires) is None  # expired
    assert store.use_ticket("nope", 100.0) is None
    first = make().use_ticket("t", 100.0)
    assert first == replace(approved, uses=1)
    assert store.use_ticket("t", 100.0) == replace(approved, uses=0, state=USED)
    assert make().use_ticket("t", 100.0) is None
    assert make().get_ticket("t") == replace(approved, uses=0, state=USED)


def test_decide_ticket_only_while_pending_and_unexpired(make: Callable[[], Store]) -> None:
    store = make()
    pending = ticket("t")
    store.put_ticket(pending)
    approved = replace(pending, state=APPROVED, decided_by="priya", decided_at=110.0, uses=3)
    assert not store.decide_ticket(approved, pending.expires)  # expired meanwhile
    assert make().decide_ticket(approved, 110.0)
    assert not store.decide_ticket(replace(pending, state=DENIED), 111.0)  # decided already
    assert make().get_ticket("t") == approved
    assert not store.decide_ticket(replace(ticket("nope"), state=DENIED), 111.0)
    assert store.get_ticket("nope") is None


def test_quarantines(make: Callable[[], Store]) -> None:
    store = make()
    assert store.quarantines() == []
    assert store.remove_quarantine(A) is False
    store.put_quarantine(QuarantineEntry(B, 20.0, "vigil", "rate"))
    store.put_quarantine(QuarantineEntry(A, 10.0, "maya", "leak"))
    assert [e.subject for e in make().quarantines()] == [A, B]
    assert store.remove_quarantine(A) is True
    assert [e.subject for e in make().quarantines()] == [B]


def test_change_log(make: Callable[[], Store]) -> None:
    store = make()
    c1 = store.append_change(1.0, "quarantine_added", A, "maya", {"reason": "leak"})
    c2 = store.append_change(2.0, "quarantine_lifted", A, "lars", {"note": ""})
    assert c2.seq > c1.seq
    got = make().changes()
    assert [(c.kind, c.by, c.detail) for c in got] == [
        ("quarantine_added", "maya", {"reason": "leak"}),
        ("quarantine_lifted", "lars", {"note": ""}),
    ]
    assert [c.seq for c in make().changes(after=c1.seq)] == [c2.seq]
    assert len(make().changes(limit=1)) == 1
    c3 = store.append_change(3.0, "quarantine_added", B, "maya", {})
    assert [c.seq for c in make().recent_changes()] == [c3.seq, c2.seq, c1.seq]
    assert [c.seq for c in make().recent_changes(limit=2)] == [c3.seq, c2.seq]
    assert [c.seq for c in make().recent_changes(before=c2.seq)] == [c1.seq]
    assert make().recent_changes(before=c1.seq) == []


def test_revocations(make: Callable[[], Store]) -> None:
    """Token and delegation revocations: recorded once (a repeat writes nothing), read whole with a
    generation that moves on every write another handle makes, pruned after their ``until``."""
    a, b = make(), make()
    g0 = a.revocation_generation()
    token = Revocation("token", jti="j1", until=100.0, revoked=1.0, by="ops", reason="leaked")
    chain = Revocation("delegation", actor=A, subject=("User", "h"), until=None, revoked=2.0, by="ops")
    assert b.put_revocation(token) and b.put_revocation(chain)
    assert not b.put_revocation(replace(token, reason="again"))
    g1, items = a.revocations()
    assert g1 == a.revocation_generation() != g0
    assert items == [token, chain]
    assert a.prune_revocations(50.0) == 0
    assert a.prune_revocations(101.0) == 1  # the token, past its until; the delegation is kept
    g2, items = b.revocations()
    assert g2 != g1 and items == [chain]


def test_version_moves_on_every_commit_seen_by_other_handles(make: Callable[[], Store]) -> None:
    a, b = make(), make()
    seen = [a.version()]
    b.put_quarantine(QuarantineEntry(A, 1.0, "x", ""))
    seen.append(a.version())
    b.put_ticket(ticket("t"))
    seen.append(a.version())
    b.append_change(1.0, "ticket_created", A, "vigil", {})
    seen.append(a.version())
    assert len(set(seen)) == 4


def test_sqlite_is_created_on_first_write_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.db"
    store = SqliteStore(path)
    assert store.tickets() == [] and store.quarantines() == [] and list(store.load_profiles()) == []
    assert store.version() == 0
    assert not path.exists()
    store.put_quarantine(QuarantineEntry(A, 1.0, "x", ""))
    assert path.exists()
    store.close()
    with pytest.raises(StoreError):
        store.put_quarantine(QuarantineEntry(A, 1.0, "x", ""))


def test_sqlite_corrupt_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    store = SqliteStore(path)
    with pytest.raises(StoreError) as e:
        store.quarantines()
    assert e.value.code == "store_unavailable"


def test_sqlite_refuses_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).put_quarantine(QuarantineEntry(A, 1.0, "x", ""))
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version"):
        SqliteStore(path).quarantines()


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_store(StoreSettings(backend="memory"), tmp_path), MemoryStore)
    s = open_store(StoreSettings(path="x/y.db"), tmp_path)
    assert isinstance(s, SqliteStore) and s.path == tmp_path / "x" / "y.db"
    absolute = tmp_path / "abs.db"
    s2 = open_store(StoreSettings(path=str(absolute)), Path("/elsewhere"))
    assert isinstance(s2, SqliteStore) and s2.path == absolute
