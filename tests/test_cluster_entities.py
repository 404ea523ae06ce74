"""Entity changes (``PUT``/``DELETE /admin/v1/entities``, ``Engine.change_entities``) made through
one engine reach the others on one PostgreSQL schema and Redis channel: at once over Redis, and
from the durable change log for one that could not hear (caught up when it reconnects). Against
the real servers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import vigil
from tests.behaviour_support import T0, engine, request
from tests.pg_support import fresh_schema, unique
from tests.test_cluster import cluster_workspace, wait_for
from vigil.cluster import ChangeBus
from vigil.engine import ENTITIES_CHANGED, _apply_entity_changes
from vigil.store import Change, StoreError

NEW = "data-agent-9"
ENTITY = {
    "uid": {"type": "Agent", "id": NEW},
    "attrs": {"team": "data"},
    "parents": [{"type": "Team", "id": "data"}],
}


def allowed(e: vigil.Engine) -> bool:
    return e.decide(request(NEW, "read", "data-table-0", T0, ip="10.11.9.7"), now=T0).allowed


def test_an_entity_change_through_one_is_applied_by_the_others(tmp_path: Path) -> None:
    with fresh_schema() as schema:
        channel = unique("vigil_t")
        ws = cluster_workspace(tmp_path / "ws", schema, channel)
        deaf = cluster_workspace(tmp_path / "deaf", schema, channel, redis_url="redis://127.0.0.1:1/0")
        a, b, c = engine(ws), engine(ws), engine(deaf)  # c: no Redis (as during an outage)
        try:
            assert wait_for(lambda: a.cluster is not None and a.cluster.connected, 5)
            assert wait_for(lambda: b.cluster is not None and b.cluster.connected, 5)
            assert not allowed(b) and not allowed(c)  # unknown_identity
            a.change_entities([ENTITY], by="idp-sync")
            assert allowed(a)
            assert wait_for(lambda: ("Agent", NEW) in b._state.by_uid, 2) is not None
            assert allowed(b)
            assert not allowed(c)  # it could not hear ...
            assert c.cluster is not None and c.cluster.catch_up()  # ... until it catches up from the log
            assert allowed(c)
            a.change_entities(deletes=[{"type": "Agent", "id": NEW}], by="idp-sync")
            assert wait_for(lambda: ("Agent", NEW) not in b._state.by_uid, 2) is not None
            assert not allowed(b)
        finally:
            a.close()
            b.close()
            c.close()


@contextmanager
def one_engine(tmp_path: Path) -> Iterator[tuple[Path, vigil.Engine]]:
    """A cluster workspace on a fresh PostgreSQL schema and Redis channel, and one engine on it
    (closed after)."""
    with fresh_schema() as schema:
        ws = cluster_workspace(tmp_path / "ws", schema, unique("vigil_t"))
        a = engine(ws)
        try:
            yield ws, a
        finally:
            a.close()


def test_a_process_started_later_and_a_reload_have_the_logged_batches(tmp_path: Path) -> None:
    with one_engine(tmp_path) as (ws, a):
        a.change_entities([ENTITY], by="idp-sync")
        other = {**ENTITY, "uid": {"type": "Agent", "id": "data-agent-10"}}
        a.change_entities([other], by="idp-sync")
        a.change_entities(deletes=[{"type": "Agent", "id": "data-agent-10"}], by="idp-sync")
        late = engine(ws)  # started after the batches: it never heard them announced
        try:
            assert allowed(late)
            assert ("Agent", "data-agent-10") not in late._state.by_uid  # in order: put, then deleted
            assert late._state.entity_seq > 0
            assert late.reload(by="t").ok  # the files again, and the batches on top
            assert allowed(late)
            # the files did not change: the entities were reused (with the batches in them)
            assert late._state.workspace.policy_set.entities_reused
            assert late._state.entity_versions
            (ws / "entities" / "extra.json").write_text("[]")  # now they did: read again
            assert late.reload(by="t").ok
            assert not late._state.workspace.policy_set.entities_reused
            assert allowed(late) and ("Agent", "data-agent-10") not in late._state.by_uid
            assert a.reload(by="t").ok  # the process that made them too
            assert allowed(a)
            # a batch after the replay still arrives over the bus, once
            a.change_entities(deletes=[{"type": "Agent", "id": NEW}], by="idp-sync")
            assert wait_for(lambda: ("Agent", NEW) not in late._state.by_uid, 2) is not None
            assert not allowed(late)
        finally:
            late.close()


def test_a_reload_that_cannot_read_the_batches_is_refused(tmp_path: Path) -> None:
    with one_engine(tmp_path) as (_, a):
        a.change_entities([ENTITY], by="idp-sync")
        revision = a._state.revision

        def unreadable(**_: object) -> list[object]:
            raise StoreError("the database is gone")

        inner = a._store
        a._store = _Patched(inner, changes=unreadable)
        result = a.reload(by="t")
        assert not result.ok and "entity changes" in result.problems[0]
        assert a._state.revision == revision and allowed(a)  # the last good generation stays
        a._store = inner


class _Patched:
    """The store with one method replaced."""

    def __init__(self, inner: object, **methods: object) -> None:
        self._inner = inner
        self._methods = methods

    def __getattr__(self, name: str) -> object:
        return self._methods.get(name) or getattr(self._inner, name)


def test_batches_that_arrive_out_of_log_order_converge_on_the_logs_order(tmp_path: Path) -> None:
    uid = ("Agent", NEW)
    with one_engine(tmp_path) as (ws, a):
        # another process's batch, earlier in the log, that reaches this one late
        older = a._store._inner.append_change(  # type: ignore[attr-defined]
            T0.timestamp(),
            ENTITIES_CHANGED,
            ("Vigil::Workspace", "entities"),
            "idp-sync",
            {"origin": "elsewhere", "upserts": [{**ENTITY, "attrs": {"team": "old"}}], "deletes": []},
        )
        a.change_entities([ENTITY], by="idp-sync")  # later in the log
        _apply_entity_changes(a, [older])
        assert a._state.by_uid[uid].attrs["team"] == "data"
        assert allowed(a)
        a.change_entities(deletes=[{"type": "Agent", "id": NEW}], by="idp-sync")
        _apply_entity_changes(a, [older])  # an older put does not bring a deleted entity back
        assert uid not in a._state.by_uid
        late = engine(ws)  # the log's order, replayed: the same entities
        try:
            assert uid not in late._state.by_uid
        finally:
            late.close()


class _Log:
    """A change log whose end cannot be read the first time (the store was briefly down)."""

    def __init__(self, entries: list[Change]) -> None:
        self.entries = entries
        self.down = True

    def recent_changes(self, *, before: int | None = None, limit: int = 100) -> list[Change]:
        if self.down:
            self.down = False
            raise StoreError("down")
        return sorted(self.entries, key=lambda c: -c.seq)[:limit]

    def changes(self, *, after: int = 0, limit: int = 1_000) -> list[Change]:
        return [c for c in self.entries if c.seq > after][:limit]


def test_a_bus_that_could_not_read_the_log_resumes_after_the_replay() -> None:
    log = _Log(
        [
            Change(seq, T0.timestamp(), ENTITIES_CHANGED, ("Vigil::Workspace", "entities"), "x", {})
            for seq in (1, 2)
        ]
    )
    kinds: list[set[str]] = []
    pages: list[list[int]] = []
    bus = ChangeBus(
        "redis://127.0.0.1:1/0",
        "t",
        log,
        apply=lambda k: kinds.append(set(k)) or True,
        on_changes=lambda page: pages.append([c.seq for c in page]),
    )
    bus.resume_after(2)  # the engine replayed entries 1 and 2 itself
    log.entries.append(Change(3, T0.timestamp(), ENTITIES_CHANGED, ("Vigil::Workspace", "entities"), "x", {}))
    assert bus.catch_up()
    assert pages == [[3]]  # not skipped to the log's end, not 1 and 2 again
    assert kinds and "*" in kinds[0]  # and everything refreshed, as a first catch-up does
