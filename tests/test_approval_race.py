"""Approvals shared by several processes on one SQLite state file (two servers, a server and the
CLI): a ticket's uses are taken atomically, so together they let through exactly ``uses``
requests, and of two deciders of one pending ticket exactly one wins."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vigil.errors import ConflictError
from vigil.operations.approvals import Approvals
from vigil.store import APPROVED, PENDING, USED, SqliteStore, Ticket

A = ("Agent", "a")
READ = ("Action", "read")
DB = ("Database", "db")
NOW = 1_000.0
BOUND = ("10.0.0.0/24", "", "")


def _ticket(uses: int, state: str = APPROVED) -> Ticket:
    return Ticket(
        "tkt_race", A, READ, DB, NOW - 10, NOW + 3_600, 70, (), "why", state,
        "priya" if state == APPROVED else None, NOW - 5, "", *BOUND, uses,
    )  # fmt: skip


def _approvals(path: Path) -> Approvals:
    """Approvals over their own connection to the state file, as another process has them."""
    approvals = Approvals(SqliteStore(path, busy_timeout_s=10.0))
    approvals.decision_timeout_s = 10.0
    return approvals


def _race_while_locked(path: Path, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` at once, each on its own thread, while another connection holds the state
    file's write lock: each reads the ticket as it was, then all wait to write. Returns what each
    call returned (or the exception it raised)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            out[i] = calls[i]()
        except Exception as e:  # reported to the test
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    time.sleep(1.0)  # every call has read the ticket and waits for the lock
    holder.execute("ROLLBACK")
    holder.close()
    for t in threads:
        t.join(30)
    return out


@pytest.mark.parametrize("uses", [1, 3])
def test_consumers_on_separate_connections_take_exactly_uses_uses(tmp_path: Path, uses: int) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).put_ticket(_ticket(uses))
    consumers = [_approvals(path) for _ in range(2 * uses)]
    got = _race_while_locked(path, [lambda c=c: c.granted(A, READ, DB, BOUND, NOW) for c in consumers])
    assert not [g for g in got if isinstance(g, Exception)]
    assert sum(g is not None for g in got) == uses
    final = SqliteStore(path).get_ticket("tkt_race")
    assert final is not None and final.uses == 0 and final.state == USED
    changes = SqliteStore(path).changes()
    # each use logged once with the count its own conditional update left: distinct counts are
    # the proof that no two consumers took the same use. (The log entry is written after the use,
    # in a transaction of its own: concurrent consumers may log in another order than they used.)
    assert sorted(c.detail["uses_left"] for c in changes if c.kind == "ticket_used") == list(range(uses))


def test_of_two_deciders_of_one_pending_ticket_exactly_one_wins(tmp_path: Path) -> None:
    """Without it, an approval read as pending could overwrite a denial (or an approval already
    used up) made meanwhile by another process, handing out fresh uses."""
    path = tmp_path / "state.db"
    SqliteStore(path).put_ticket(_ticket(1, state=PENDING))
    first, second = _approvals(path), _approvals(path)
    got = _race_while_locked(
        path,
        [
            lambda: first.approve("tkt_race", by="priya", now=NOW, ttl_s=600, uses=5),
            lambda: second.deny("tkt_race", by="lars", now=NOW),
        ],
    )
    assert sum(isinstance(g, Ticket) for g in got) == 1
    assert sum(isinstance(g, ConflictError) and g.code == "ticket_closed" for g in got) == 1
    winner = next(g for g in got if isinstance(g, Ticket))
    assert SqliteStore(path).get_ticket("tkt_race") == winner


def _consume(path: str, start: Any, results: Any) -> None:
    approvals = _approvals(Path(path))
    approvals.list(now=NOW)  # connected before the start
    start.wait()
    results.put(approvals.granted(A, READ, DB, BOUND, NOW) is not None)


def test_processes_racing_for_an_approval_take_exactly_uses_uses(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).put_ticket(_ticket(2))
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_consume, args=(str(path), start, results)) for _ in range(6)]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert sorted(got) == [False] * 4 + [True] * 2
