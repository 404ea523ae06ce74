"""Behaviour batches between the vigil processes of one deployment, over Redis pub/sub.

Every ``interval_s`` (0.25 s) a thread asks ``collect()`` for this process's batch (request
counts and newly learned values, :mod:`vigil.behaviour.shared`) and publishes it, when not empty,
on ``<channel>:rates`` (counts) and ``<channel>:learned`` (values) as JSON with this process's
origin. A second thread subscribes to both and hands the others' batches to ``receive(rates,
learned)``. Nothing of this is on the decision path, and nothing is stored: a batch that cannot be
published (Redis away) is dropped and counted, so while Redis is away each process judges on its
own counts (what it would do alone), and resumes sharing when Redis is back (reconnecting with
backoff, 50 ms to 1 s).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import orjson
import redis

from vigil.cluster.bus import BACKOFF_S, redact, subscribe_forever

log = logging.getLogger("vigil.cluster")

INTERVAL_S = 0.25
CHUNK = 2_000  # entries per message (a message stays under ~100 KB)

Collect = Callable[[], tuple[list[Any], list[Any]]]
Receive = Callable[[list[Any], list[Any]], None]


class BehaviourChannel:
    """Publishes this process's behaviour batches and receives the others' (module docstring)."""

    def __init__(
        self,
        url: str,
        channel: str,
        *,
        collect: Collect,
        receive: Receive,
        interval_s: float = INTERVAL_S,
    ) -> None:
        self.url = url
        self.rates = f"{channel}:rates"
        self.learned = f"{channel}:learned"
        self.origin = os.urandom(8).hex()
        self.interval_s = interval_s
        self._collect = collect
        self._receive = receive
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sub: Any = None
        self.connected = False
        self.batches = 0  # published
        self.received = 0  # batches of others taken in
        self.dropped = 0  # batches not published (Redis away)
        self.errors = 0

    def __repr__(self) -> str:
        return f"BehaviourChannel({redact(self.url)!r}, {self.rates!r})"

    def _client(self, role: str) -> redis.Redis:
        return redis.Redis.from_url(
            self.url,
            socket_connect_timeout=1.0,
            socket_timeout=2.0,
            health_check_interval=1,
            client_name=f"vigil:{self.rates}:{role}",
        )

    def start(self) -> None:
        """Start the batch thread and the subscriber thread."""
        for name, target in (
            ("vigil-behaviour-pub", self._publish),
            ("vigil-behaviour-sub", self._subscribe),
        ):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def close(self) -> None:
        """Publish the last batch (when Redis is there) and stop both threads."""
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
            "batches": self.batches,
            "received": self.received,
            "dropped": self.dropped,
            "errors": self.errors,
        }

    # -- publishing --------------------------------------------------------------------------------
    def _messages(self) -> list[tuple[str, bytes]]:
        """This interval's batch as (channel, message) pairs; none when there is nothing to say."""
        try:
            rates, learned = self._collect()
        except Exception:  # a bug must not end the thread; the next batch tries again
            self.errors += 1
            log.exception("cluster: collecting the behaviour batch failed")
            return []
        out = []
        for channel, key, entries in ((self.rates, "r", rates), (self.learned, "l", learned)):
            for i in range(0, len(entries), CHUNK):
                out.append((channel, orjson.dumps({"o": self.origin, key: entries[i : i + CHUNK]})))
        return out

    def _publish(self) -> None:
        client: redis.Redis | None = None
        failures = 0
        while True:
            stopping = self._stop.wait(self.interval_s)
            messages = self._messages()
            if messages:
                try:
                    if client is None:
                        client = self._client("pub")
                    for channel, data in messages:
                        client.publish(channel, data)
                    self.batches += 1
                    failures = 0
                except (redis.RedisError, OSError) as e:
                    self.errors += 1
                    self.dropped += 1
                    if failures == 0:
                        log.warning("cluster: cannot publish behaviour to %s: %s", redact(self.url), e)
                    failures += 1
                    if client is not None:
                        client.close()
                        client = None
                    if not stopping and self._stop.wait(BACKOFF_S[min(failures, len(BACKOFF_S)) - 1]):
                        stopping = True
            if stopping:
                break
        if client is not None:
            client.close()

    # -- subscribing -------------------------------------------------------------------------------
    def _subscribe(self) -> None:
        subscribe_forever(self, (self.rates, self.learned), "behaviour subscription")

    def _on_message(self, data: bytes) -> None:
        """Hand one of the others' batches to ``receive``; a malformed one is counted, skipped."""
        try:
            message = orjson.loads(data)
            origin = message["o"]
            rates = message.get("r", [])
            learned = message.get("l", [])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            self.errors += 1
            return
        if origin == self.origin:
            return
        if not isinstance(rates, list) or not isinstance(learned, list):
            self.errors += 1
            return
        try:
            self._receive(rates, learned)
        except Exception:  # never let a handler end the subscription
            self.errors += 1
            log.exception("cluster: taking in a behaviour batch failed")
            return
        self.received += 1
