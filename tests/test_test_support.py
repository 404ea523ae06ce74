"""The test helpers' own behaviour where a mistake would not show as a failing test: the health
wait of tests/test_server_support.py must sleep between attempts, not spin (a spinning wait loads
the two shared CI cores while a server starts, and hammers a server that answers 503).

An attempt (``httpx.get`` builds a client each time) costs tens of milliseconds on a loaded CI
machine, close to the wait's 50 ms pause, so counting requests alone tells a spinning wait from a
sleeping one only loosely: the sleeps themselves are recorded too."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.test_server_support import wait_healthy

UNHEALTHY_S = 0.5  # how long the fake server answers 503
PAUSE_S = 0.05  # the wait's pause after a failed attempt


class _Flaky(BaseHTTPRequestHandler):
    """503 until ``server.healthy_at``, then 200; counts the requests."""

    server: Any

    def do_GET(self) -> None:
        self.server.hits += 1
        status = 200 if time.monotonic() >= self.server.healthy_at else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def flaky() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    server.hits = 0
    server.healthy_at = time.monotonic() + UNHEALTHY_S
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every time.sleep while the test runs (it still sleeps)."""
    got: list[float] = []
    real = time.sleep

    def recording(seconds: float) -> None:
        got.append(seconds)
        real(seconds)

    monkeypatch.setattr(time, "sleep", recording)
    return got


def test_health_wait_sleeps_after_a_non_200_answer(flaky: Any, sleeps: list[float]) -> None:
    t0 = time.monotonic()
    assert wait_healthy(f"http://127.0.0.1:{flaky.server_port}", lambda: True, timeout=30)
    elapsed = time.monotonic() - t0
    assert time.monotonic() >= flaky.healthy_at and flaky.hits >= 2
    # A pause after every 503 (not after the 200): each attempt but the last took 50 ms or more.
    assert len(sleeps) == flaky.hits - 1 and min(sleeps) >= PAUSE_S, (flaky.hits, sleeps)
    assert flaky.hits <= elapsed / PAUSE_S + 1, (flaky.hits, elapsed)


def test_health_wait_sleeps_after_a_refused_connection(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    with socket.socket() as s:  # a bound port that does not listen: every connection is refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        calls = 0
        real_get = httpx.get

        def counting_get(*args: Any, **kwargs: Any) -> httpx.Response:
            nonlocal calls
            calls += 1
            return real_get(*args, **kwargs)

        monkeypatch.setattr(httpx, "get", counting_get)
        t0 = time.monotonic()
        assert not wait_healthy(url, lambda: True, timeout=UNHEALTHY_S)
        elapsed = time.monotonic() - t0
    assert elapsed >= UNHEALTHY_S and calls >= 2
    assert len(sleeps) == calls and min(sleeps) >= PAUSE_S, (calls, sleeps)
    assert calls <= elapsed / PAUSE_S + 1, (calls, elapsed)


def test_health_wait_stops_when_the_process_dies(flaky: Any) -> None:
    t0 = time.monotonic()
    assert not wait_healthy(f"http://127.0.0.1:{flaky.server_port}", lambda: False, timeout=30)
    assert time.monotonic() - t0 < UNHEALTHY_S and flaky.hits == 1
