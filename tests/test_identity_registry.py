"""The identity registry over both store backends (memory, SQLite): the store's identity tables
(conformance), the lifecycle (legal and illegal transitions; refusals change nothing), keys and
bindings owned by one identity each, writes against concurrent writers, the decision gate
(inactive set, earliest expiry) and usage (last used, tokens) flushed in batches."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.identity_support import pem_public, private_key
from vigil.identity import (
    IdentityConflict,
    IdentityNotFound,
    Registry,
    load_public_key,
    state_at,
)
from vigil.identity import lifecycle as lc
from vigil.store import (
    ACTIVE,
    RETIRED,
    SUSPENDED,
    IdentityBinding,
    IdentityEntry,
    IdentityKey,
    IdentityUsage,
    MemoryStore,
    SqliteStore,
    Store,
)

A = ("Agent", "a")
B = ("ServiceAccount", "b")
T0 = 1_800_000_000.0
HOUR = 3_600.0


def entry(uid: tuple[str, str] = A, **kw: object) -> IdentityEntry:
    base = IdentityEntry(
        uid, "alice@example.com", "tests", "agent", T0, "alice", status_since=T0, status_by="alice"
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def key(kind: str = "ed25519"):  # type: ignore[no-untyped-def]
    return load_public_key(pem_public(private_key(kind)))


# -- the store ---------------------------------------------------------------------------------
def test_store_identity_records_round_trip(make: Callable[[], Store]) -> None:
    store = make()
    assert store.identity_generation() == 0
    assert store.identities() == (0, [])
    full = entry(
        A,
        expires=T0 + 100,
        keys=(
            IdentityKey("k1", '{"kty":"OKP"}', T0, "alice"),
            IdentityKey("k0", '{"kty":"EC"}', T0 + 1, "bob"),
        ),
        bindings=(IdentityBinding("spiffe://example.org", "spiffe://example.org/x", T0, "alice"),),
        rotated=T0 + 5,
        status=SUSPENDED,
        status_reason="leaked",
    )
    version = store.version()
    assert store.put_identity(full, generation=0) == 1
    assert store.version() != version
    assert store.put_identity(entry(B), generation=0) is None  # a stale write is refused
    assert store.put_identity(entry(B), generation=1) == 2
    other = make()
    assert other.identity_generation() == 2
    assert other.identities() == (2, [full, entry(B)])  # by subject; keys and bindings in order
    fewer = replace(full, keys=full.keys[1:], bindings=())
    assert other.put_identity(fewer, generation=2) == 3
    assert store.identities()[1][0] == fewer


def test_store_usage_never_moves_back(make: Callable[[], Store]) -> None:
    store = make()
    assert store.identity_usage() == []
    assert store.save_identity_usage([]) == 0
    assert store.save_identity_usage([IdentityUsage(A, T0, ((500, 2),)), IdentityUsage(B, None, ())]) == 2
    generation = store.identity_generation()
    store.save_identity_usage([IdentityUsage(A, T0 - 10, ((501, 1),))])
    assert make().identity_usage() == [IdentityUsage(A, T0, ((501, 1),)), IdentityUsage(B, None, ())]
    assert store.identity_generation() == generation  # usage is not a registry change


def test_an_older_state_file_gets_the_identity_tables(tmp_path: Path) -> None:
    from vigil.store.sqlite import _SCHEMA

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)
    db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    db.commit()
    db.close()
    store = SqliteStore(path)
    assert store.identities() == (0, [])
    assert store.put_identity(entry(), generation=0) == 1
    store.close()
    assert SqliteStore(path).identities()[1] == [entry()]


# -- the lifecycle -----------------------------------------------------------------------------
def test_transitions() -> None:
    reg = Registry(MemoryStore())
    reg.create(entry())
    _, e = reg.update(A, lambda e: lc.suspend(e, by="bob", reason="leak", now=T0 + 1))
    assert (e.status, e.status_by, e.status_reason, e.status_since) == (SUSPENDED, "bob", "leak", T0 + 1)
    _, e = reg.update(A, lambda e: lc.resume(e, by="carol", reason="", now=T0 + 2))
    assert e.status == ACTIVE and e.status_by == "carol"
    _, e = reg.update(A, lambda e: lc.retire(e, by="dan", reason="gone", now=T0 + 3))
    assert e.status == RETIRED
    reg.create(entry(B))
    reg.update(B, lambda e: lc.suspend(e, by="bob", reason="", now=T0))
    _, e = reg.update(B, lambda e: lc.retire(e, by="bob", reason="", now=T0))  # suspended -> retired
    assert e.status == RETIRED


@pytest.mark.parametrize(
    ("setup", "change"),
    [
        ((), lambda e: lc.resume(e, by="x", reason="", now=T0)),  # resume an active one
        (("suspend",), lambda e: lc.suspend(e, by="x", reason="", now=T0)),  # suspend twice
        (("retire",), lambda e: lc.resume(e, by="x", reason="", now=T0)),  # resume a retired one
        (("retire",), lambda e: lc.retire(e, by="x", reason="", now=T0)),
        (("retire",), lambda e: lc.suspend(e, by="x", reason="", now=T0)),
        (("retire",), lambda e: lc.add_key(e, key(), by="x", now=T0, max_keys=10)),
        (("retire",), lambda e: lc.bind(e, "https://i", "s", by="x", now=T0)),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(setup: tuple[str, ...], change: Callable) -> None:  # type: ignore[type-arg]
    store = MemoryStore()
    reg = Registry(store)
    reg.create(entry())
    for step in setup:
        reg.update(A, lambda e, s=step: getattr(lc, s)(e, by="setup", reason="", now=T0))
    before = store.identities()
    with pytest.raises(IdentityConflict) as err:
        reg.update(A, change)
    assert err.value.code == "invalid_transition"
    assert store.identities() == before and reg.get(A) == before[1][0]


def test_unknown_and_duplicate_identities() -> None:
    reg = Registry(MemoryStore())
    with pytest.raises(IdentityNotFound) as e:
        reg.update(A, lambda e: lc.suspend(e, by="x", reason="", now=T0))
    assert e.value.code == "identity_not_found"
    reg.create(entry())
    with pytest.raises(IdentityConflict) as c:
        reg.create(entry(owner="bob@example.com"))
    assert c.value.code == "identity_exists"
    assert reg.require(A).owner == "alice@example.com"


def test_keys_rotate_with_overlap_and_belong_to_one_identity() -> None:
    reg = Registry(MemoryStore())
    k1, k2, k3 = key("ed25519"), key("p256"), key("rsa")
    reg.create(
        lc.new_entry(A, owner="a@x.io", purpose="p", kind="agent", expires=None, key=k1, by="a", now=T0)
    )
    reg.create(entry(B))
    _, e = reg.update(A, lambda e: lc.add_key(e, k2, by="a", now=T0 + 10, max_keys=3))
    assert [k.kid for k in e.keys] == [k1.kid, k2.kid] and e.rotated is None  # both valid at once
    with pytest.raises(IdentityConflict) as dup:
        reg.update(A, lambda e: lc.add_key(e, k1, by="a", now=T0, max_keys=3))
    assert dup.value.code == "key_exists"
    with pytest.raises(IdentityConflict) as other:
        reg.update(B, lambda e: lc.add_key(e, k1, by="a", now=T0, max_keys=3))
    assert other.value.code == "key_exists" and "Agent" in other.value.message
    with pytest.raises(IdentityNotFound) as missing:
        reg.update(A, lambda e: lc.remove_key(e, "nope", now=T0)[0])
    assert missing.value.code == "key_not_found"
    _, e = reg.update(A, lambda e: lc.remove_key(e, k1.kid, now=T0 + 20)[0])
    assert [k.kid for k in e.keys] == [k2.kid] and e.rotated == T0 + 20  # a rotation completed
    assert reg.find_key(k2.kid) == (e, e.keys[0]) and reg.find_key(k1.kid) is None
    reg.update(B, lambda e: lc.add_key(e, k1, by="a", now=T0, max_keys=3))  # free again
    reg.update(A, lambda e: lc.add_key(e, k3, by="a", now=T0, max_keys=2))
    with pytest.raises(IdentityConflict, match="at most 2"):
        reg.update(A, lambda e: lc.add_key(e, key(), by="a", now=T0, max_keys=2))
    _, e = reg.update(A, lambda e: lc.remove_key(e, k2.kid, now=T0 + 30)[0])
    _, e = reg.update(A, lambda e: lc.remove_key(e, k3.kid, now=T0 + 40)[0])
    assert e.keys == () and e.rotated == T0 + 30  # removing the last key is not a rotation


def test_bindings_belong_to_one_identity() -> None:
    reg = Registry(MemoryStore())
    reg.create(entry())
    reg.create(entry(B))
    iss, sub = "https://kubernetes.default.svc", "system:serviceaccount:ns:a"
    reg.update(A, lambda e: lc.bind(e, iss, sub, by="x", now=T0))
    assert reg.find_binding(iss, sub) == reg.get(A)
    for uid in (A, B):
        with pytest.raises(IdentityConflict) as e:
            reg.update(uid, lambda e: lc.bind(e, iss, sub, by="x", now=T0))
        assert e.value.code == "binding_exists"
    with pytest.raises(IdentityNotFound) as nf:
        reg.update(B, lambda e: lc.unbind(e, iss, sub)[0])
    assert nf.value.code == "binding_not_found"
    reg.update(A, lambda e: lc.unbind(e, iss, sub)[0])
    assert reg.find_binding(iss, sub) is None
    reg.update(B, lambda e: lc.bind(e, iss, sub, by="x", now=T0))
    assert reg.find_binding(iss, sub) == reg.get(B)


# -- concurrent writers --------------------------------------------------------------------------
def test_a_write_from_a_stale_read_is_redone_on_the_fresh_record(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    mine, theirs = Registry(SqliteStore(path)), Registry(SqliteStore(path))
    mine.create(entry())
    theirs.refresh()
    calls = []

    def suspend_while_another_binds(e: IdentityEntry) -> IdentityEntry:
        calls.append(e)
        if len(calls) == 1:  # another process writes between this read and this write
            theirs.update(A, lambda x: lc.bind(x, "https://i", "s", by="them", now=T0))
        return lc.suspend(e, by="me", reason="", now=T0)

    mine.update(A, suspend_while_another_binds)
    assert len(calls) == 2 and calls[1].bindings  # redone on the record that has their binding
    final = Registry(SqliteStore(path)).require(A)
    assert final.status == SUSPENDED and len(final.bindings) == 1


def test_writers_that_never_stop_make_it_give_up_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    mine, theirs = Registry(SqliteStore(path)), Registry(SqliteStore(path))
    mine.create(entry())
    mine.create(entry(B))
    n = [0]

    def always_raced(e: IdentityEntry) -> IdentityEntry:
        n[0] += 1
        theirs.update(B, lambda x: replace(x, purpose=f"touch {n[0]}"))
        return lc.suspend(e, by="me", reason="", now=T0)

    with pytest.raises(IdentityConflict) as err:
        mine.update(A, always_raced)
    assert err.value.code == "registry_busy"
    assert Registry(SqliteStore(path)).require(A).status == ACTIVE


# -- the gate ------------------------------------------------------------------------------------
def test_the_gate_holds_inactive_identities_and_the_earliest_expiry() -> None:
    reg = Registry(MemoryStore())
    seen: list[tuple[frozenset[tuple[str, str]], float]] = []
    reg.listen(lambda inactive, nxt: seen.append((inactive, nxt)))
    assert seen[-1] == (frozenset(), math.inf)
    C, D = ("Workload", "c"), ("Workload", "d")
    reg.create(entry(A, expires=T0 + 100))
    reg.create(entry(B, expires=T0 + 50))
    reg.create(entry(C))
    reg.create(entry(D, expires=T0 + 50))
    assert seen[-1] == (frozenset(), T0 + 50)
    reg.update(C, lambda e: lc.suspend(e, by="x", reason="", now=T0))
    assert seen[-1] == (frozenset({C}), T0 + 50)
    reg.expire(T0 + 49)  # nothing due yet
    assert seen[-1] == (frozenset({C}), T0 + 50)
    reg.expire(T0 + 50)  # "expires" is the first instant it is inactive
    assert seen[-1] == (frozenset({B, C, D}), T0 + 100)
    reg.expire(T0 + 10)  # an earlier time does not bring them back
    assert reg.inactive == frozenset({B, C, D})
    reg.update(C, lambda e: lc.resume(e, by="x", reason="", now=T0))
    assert seen[-1] == (frozenset({B, D}), T0 + 100)  # recomputed at the last expiry time
    reg.expire(T0 + 1_000)
    assert seen[-1] == (frozenset({A, B, D}), math.inf)
    assert state_at(reg.require(A), T0 + 1_000) == "expired" and reg.require(A).status == ACTIVE
    assert not reg.is_active(A, T0 + 1_000) and reg.is_active(A, T0)
    assert reg.is_active(("Agent", "not-registered"), T0)  # the registry is opt-in


def test_another_processes_change_reaches_the_gate_at_refresh(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    server, cli = Registry(SqliteStore(path)), Registry(SqliteStore(path))
    cli.create(entry())
    assert server.refresh() and A in server and server.inactive == frozenset()
    assert not server.refresh()  # nothing changed: one generation read
    cli.update(A, lambda e: lc.suspend(e, by="cli", reason="", now=T0))
    assert server.inactive == frozenset()
    assert server.refresh() and server.inactive == frozenset({A})


# -- usage ---------------------------------------------------------------------------------------
def test_usage_is_kept_in_memory_and_flushed_in_batches(make: Callable[[], Store]) -> None:
    store = make()
    decided: dict[tuple[str, str], float] = {}
    reg = Registry(store, used=lambda uid: decided.get(uid, 0.0))
    reg.create(entry())
    reg.create(entry(B))
    assert reg.last_used(A) is None and reg.flush_usage() == 0
    decided[A] = T0 + 5  # what the engine's decisions record (no store write)
    decided[("Agent", "unregistered")] = T0
    reg.note_used(B, T0 + 7)
    assert reg.last_used(A) == T0 + 5 and reg.last_used(B) == T0 + 7
    for t in (T0, T0 + HOUR, T0 + 2 * HOUR):
        reg.note_token_issued(A, t)
    assert reg.flush_usage() == 2  # A and B, one transaction
    assert reg.flush_usage() == 0  # nothing new
    later = Registry(make())
    assert later.last_used(A) == T0 + 5 and later.last_used(B) == T0 + 7
    assert later.tokens_issued(A, T0 + 2 * HOUR) == 3
    assert later.tokens_issued(A, T0 + 24 * HOUR) == 2  # the hour of T0 has left the window
    assert later.tokens_issued(A, T0 + 30 * HOUR) == 0
    assert later.tokens_issued(B, T0) == 0
