"""Change events between the vigil processes that share one state store, over Redis pub/sub.

The store is the truth; Redis only says *when* to look. A process that appends to the change log
(a quarantine added or lifted, an identity suspended, resumed or retired, a ticket approved)
announces the change's ``seq`` on the channel ``<channel>:changes`` after the store committed it;
a ``reload`` is announced the same way (it is not in the change log). The writes the others mirror
(a quarantine entry, a registry record) are announced as soon as they commit, one transaction
(one fsync, ~7 ms on this machine's disk) before their log entry: the others refresh that mirror
at once. Every process subscribes (a
background thread): on a change it reads the log from the last ``seq`` it has seen
(``changes(after=last_seen)``) and hands the kinds it finds to ``apply`` (the engine refreshes the
quarantine set or the registry's gate from the store at once), and the entries themselves, in
order, to ``on_changes`` (an entity batch is applied from the entry that holds it). The same catch-up runs each time the
subscription is (re)established, so a change made while Redis was unreachable, or while this
process's connection was dropped, is applied as soon as it is back: nothing is missed, only late.
(The engine's store tick, about once a second, is the floor under all of it.)

Publishing never blocks the caller (a decision may quarantine): announcements go to a queue that a
second thread sends, in order, retrying with backoff while Redis is unreachable (at most
``MAX_QUEUE`` wait; older ones are dropped and counted, the log catch-up covers them).

While the subscription is down, :attr:`ChangeBus.connected` is False: ``/readyz`` says
``degraded`` and decisions go on from local state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast

import orjson
import redis

from vigil.model.uid import EntityUid
from vigil.store.base import Change, ChangeLog, IdentityEntry, QuarantineEntry, Store, StoreError

log = logging.getLogger("vigil.cluster")

MAX_QUEUE = 10_000
PAGE = 1_000
BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0)
ALL = "*"  # a kind that means "refresh everything" (the last seen change is unknown)

Apply = Callable[[set[str]], None]
Changes = Callable[[list[Change]], None]
Signal = Callable[[str, dict[str, Any]], None]


def redact(url: str) -> str:
    """``url`` without its password."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, cred = head.partition("://")
    return f"{scheme}://{cred.split(':', 1)[0]}:***@{tail}" if ":" in cred else url


class Subscriber(Protocol):
    """What :func:`subscribe_forever` uses of its owner (a :class:`ChangeBus`, a behaviour
    :class:`~vigil.cluster.sharing.Sharing`)."""

    url: str
    connected: bool
    errors: int
    _stop: threading.Event
    _sub: Any

    def _client(self, role: str) -> Any: ...

    def _on_message(self, data: bytes) -> None: ...


def subscribe_forever(
    owner: Subscriber, channels: tuple[str, ...], what: str, on_subscribed: Callable[[], object] | None = None
) -> None:
    """Subscribe ``owner`` to ``channels`` and hand each message to its ``_on_message`` until its
    ``_stop`` is set: a lost connection is counted, logged once (``what`` names it) and retried
    after :data:`BACKOFF_S`; each (re)subscription sets ``connected`` and calls
    ``on_subscribed``. Never raises."""
    failures = 0
    while not owner._stop.is_set():
        client = None
        try:
            client = owner._client("sub")
            sub = client.pubsub(ignore_subscribe_messages=False)
            owner._sub = sub
            sub.subscribe(*channels)
            while not owner._stop.is_set():
                message = sub.get_message(timeout=0.5)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    owner.connected = True
                    failures = 0
                    if on_subscribed is not None:
                        on_subscribed()
                elif message["type"] == "message":
                    owner._on_message(message["data"])
        except Exception as e:  # Redis gone, or the connection closed under it by close()
            if owner._stop.is_set():
                break
            owner.errors += 1
            if owner.connected or failures == 0:
                log.warning("cluster: %s to %s lost: %s", what, redact(owner.url), e)
            owner.connected = False
            failures += 1
        finally:
            owner._sub = None
            if client is not None:
                client.close()
        owner._stop.wait(BACKOFF_S[min(max(failures, 1), len(BACKOFF_S)) - 1])
    owner.connected = False


class ChangeBus:
    """Announces this process's changes and applies everyone else's (see the module docstring).

    ``log`` the store's change log (read to catch up); ``apply(kinds)`` is called on the
    subscriber thread with the change kinds read since the last call (``{"*"}``: anything may have
    changed); ``signal(kind, body)`` with announcements that are not changes (``reload``), from
    other processes only; ``on_changes(page)`` (optional) with each page of the change log read, in
    order, before ``apply`` (the entity batches are in the log's entries themselves)."""

    def __init__(
        self,
        url: str,
        channel: str,
        changes: ChangeLog,
        *,
        apply: Apply,
        signal: Signal | None = None,
        on_changes: Changes | None = None,
    ) -> None:
        self.url = url
        self.channel = f"{channel}:changes"
        self.origin = os.urandom(8).hex()
        self._log = changes
        self._apply = apply
        self._signal = signal
        self._changes = on_changes
        self._last_seen = -1  # unknown until the first catch-up
        self._refresh_all = False  # the first catch-up refreshes everything (resume_after)
        self._queue: queue.Queue[bytes] = queue.Queue(MAX_QUEUE)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sub: Any = None  # the live PubSub (closed by close() to wake the subscriber)
        self.connected = False
        self.publishing = True
        self.received = 0
        self.published = 0
        self.dropped = 0
        self.catch_ups = 0
        self.errors = 0  # Redis or store failures met by the threads
        try:
            latest = changes.recent_changes(limit=1)
            self._last_seen = latest[0].seq if latest else 0
        except StoreError:
            self.errors += 1

    def __repr__(self) -> str:
        return f"ChangeBus({redact(self.url)!r}, {self.channel!r})"

    def _client(self, role: str) -> redis.Redis:
        """A connection named ``vigil:<channel>:changes:<role>`` (``CLIENT LIST`` shows it)."""
        return redis.Redis.from_url(
            self.url,
            socket_connect_timeout=1.0,
            socket_timeout=2.0,
            health_check_interval=1,
            client_name=f"vigil:{self.channel}:{role}",
        )

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, *, subscribe: bool = True) -> None:
        """Start the publisher thread and (``subscribe``: a long-running process) the subscriber."""
        threads = [("vigil-cluster-pub", self._publish)]
        if subscribe:
            threads.append(("vigil-cluster-sub", self._subscribe))
        for name, target in threads:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def close(self, *, flush_s: float = 1.0) -> None:
        """Send what waits (at most ``flush_s``), then stop both threads."""
        deadline = time.monotonic() + flush_s
        while not self._queue.empty() and time.monotonic() < deadline and self._threads:
            time.sleep(0.01)
        self._stop.set()
        sub = self._sub
        if sub is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing left to do
                sub.close()
        for t in self._threads:
            t.join(3.0)
        self._threads = []

    def status(self) -> dict[str, Any]:
        return {
            "redis": "connected" if self.connected else "unreachable",
            "publishing": self.publishing,
            "last_seen": self._last_seen,
            "received": self.received,
            "published": self.published,
            "dropped": self.dropped,
            "catch_ups": self.catch_ups,
            "errors": self.errors,
        }

    # -- announcing --------------------------------------------------------------------------------
    def announce(self, change: Change) -> None:
        """Tell the others about ``change`` (already committed to the store); never blocks."""
        self._put({"o": self.origin, "s": change.seq, "k": change.kind})

    def touched(self, kind: str) -> None:
        """Tell the others that state they mirror changed (committed; its change-log entry follows):
        they refresh that mirror without waiting for the entry."""
        self._put({"o": self.origin, "k": kind, "t": 1})

    def signal(self, kind: str, **body: Any) -> None:
        """Tell the others about something that is not in the change log (``reload``)."""
        self._put({"o": self.origin, "k": kind, "b": body})

    def _put(self, message: dict[str, Any]) -> None:
        data = orjson.dumps(message)
        while True:
            try:
                self._queue.put_nowait(data)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()  # the oldest goes; the log catch-up covers it
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _publish(self) -> None:
        client: redis.Redis | None = None
        failures = 0
        pending: bytes | None = None
        while not self._stop.is_set() or pending is not None or not self._queue.empty():
            if pending is None:
                try:
                    pending = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
            try:
                if client is None:
                    client = self._client("pub")
                client.publish(self.channel, pending)
            except (redis.RedisError, OSError) as e:
                self.errors += 1
                self.publishing = False
                if failures == 0:
                    log.warning("cluster: cannot publish to %s: %s", redact(self.url), e)
                failures += 1
                if client is not None:
                    client.close()
                    client = None
                if self._stop.wait(BACKOFF_S[min(failures, len(BACKOFF_S)) - 1]):
                    break  # stopping: what was not sent is in the log
                continue
            pending = None
            failures = 0
            self.publishing = True
            self.published += 1
        if client is not None:
            client.close()

    # -- subscribing -------------------------------------------------------------------------------
    def _subscribe(self) -> None:
        # (re)subscribed, also after redis-py reconnected by itself: catch up
        subscribe_forever(self, (self.channel,), "subscription", self.catch_up)

    def _on_message(self, data: bytes) -> None:
        try:
            message = orjson.loads(data)
            origin, kind = message["o"], message["k"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.errors += 1
            return
        self.received += 1
        if origin == self.origin:
            return  # applied here when it was made
        seq = message.get("s")
        if isinstance(seq, int):
            if seq > self._last_seen:
                self.catch_up()
        elif message.get("t") == 1 and isinstance(kind, str):
            self._run_apply({kind})  # a failure: the log entry's announcement (or the tick) tries again
        elif self._signal is not None and isinstance(kind, str):
            body = message.get("b")
            try:
                self._signal(kind, body if isinstance(body, dict) else {})
            except Exception:  # never let a handler end the subscription
                self.errors += 1
                log.exception("cluster: handling %r failed", kind)

    def resume_after(self, seq: int) -> None:
        """The owner has applied the log's entries up to ``seq`` itself (an engine's entity
        replay at start): when this bus could not read where the log ended at construction, start
        after ``seq`` instead of after whatever ends the log at the first catch-up (which would
        skip the entries in between), refreshing everything then as that catch-up would."""
        if self._last_seen < 0:
            self._last_seen = seq
            self._refresh_all = True

    def catch_up(self) -> bool:
        """Read the change log after the last seen change and apply what it holds; False when
        the store could not be read (the next message or reconnect tries again)."""
        kinds: set[str] = set()
        try:
            if self._refresh_all:
                self._refresh_all = False
                kinds.add(ALL)
            if self._last_seen < 0:
                latest = self._log.recent_changes(limit=1)
                self._last_seen = latest[0].seq if latest else 0
                kinds.add(ALL)
            while True:
                page = self._log.changes(after=self._last_seen, limit=PAGE)
                kinds.update(c.kind for c in page)
                if page and self._changes is not None:
                    self._run_changes(page)
                if page:
                    self._last_seen = page[-1].seq
                if len(page) < PAGE:
                    break
        except StoreError:
            self.errors += 1
            if not kinds:
                return False
        self.catch_ups += 1
        return not kinds or self._run_apply(kinds)

    def _run_changes(self, page: list[Change]) -> None:
        """``on_changes(page)``; a failure is counted and logged, never ends the subscription."""
        try:
            assert self._changes is not None
            self._changes(page)
        except Exception:
            self.errors += 1
            log.exception("cluster: applying %d changes failed", len(page))

    def _run_apply(self, kinds: set[str]) -> bool:
        """``apply(kinds)``; False when it failed (counted; a bug is logged, never ends the
        subscription: the store tick still refreshes everything)."""
        try:
            self._apply(kinds)
        except StoreError:
            self.errors += 1
            return False
        except Exception:
            self.errors += 1
            log.exception("cluster: applying %s failed", sorted(kinds))
            return False
        return True


class _Announcing:
    """A store that announces on a :class:`ChangeBus` every appended change and, at once, the
    writes that the other processes mirror (a quarantine, a registry record: committed one
    transaction before their change-log entry, whose fsync the others need not wait for)."""

    def __init__(self, store: Store, bus: ChangeBus) -> None:
        self._inner = store
        self._bus = bus

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def append_change(
        self, time: float, kind: str, subject: EntityUid, by: str, detail: dict[str, Any]
    ) -> Change:
        change = self._inner.append_change(time, kind, subject, by, detail)
        self._bus.announce(change)
        return change

    def put_quarantine(self, entry: QuarantineEntry) -> None:
        self._inner.put_quarantine(entry)
        self._bus.touched("quarantine_put")

    def remove_quarantine(self, subject: EntityUid) -> bool:
        removed = self._inner.remove_quarantine(subject)
        if removed:
            self._bus.touched("quarantine_removed")
        return removed

    def put_identity(self, entry: IdentityEntry, *, generation: int) -> int | None:
        new = self._inner.put_identity(entry, generation=generation)
        if new is not None:
            self._bus.touched("identity_put")
        return new


def announcing(store: Store, bus: ChangeBus) -> Store:
    """``store``, whose ``append_change`` also announces the change on ``bus``."""
    return cast(Store, _Announcing(store, bus))


def kinds_touch(kinds: Iterable[str], prefix: str) -> bool:
    """Whether any of ``kinds`` starts with ``prefix`` (or is ``*``: anything may have changed)."""
    return any(k == ALL or k.startswith(prefix) for k in kinds)
