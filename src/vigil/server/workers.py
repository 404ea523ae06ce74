"""``vigil serve --workers N``: N server processes on one port (``SO_REUSEPORT``).

The supervisor (this module) loads the workspace once to refuse a bad one before anything starts,
then binds the port with ``SO_REUSEPORT`` without listening on it: it only holds the port (so
``--port 0`` gives every worker the same one) and never takes a connection. It starts N children,
each a plain ``vigil serve --reuse-port`` on that port; the kernel spreads new connections over
their listening sockets. The workers share state as any processes on one store do
(``docs/deployment.md``): the store must be one they can all use (SQLite on this node, or
PostgreSQL; ``memory`` is refused), and ``[cluster] redis`` makes each worker's changes reach the
others at once (without it, at the ~1 s store tick).

A worker that exits while the supervisor is not stopping (kill -9, a crash) is started again (one
second later when it lived less than a second); the connections it held are lost, the other
workers keep answering, and what it acknowledged is in the store and its audit log. SIGTERM and
SIGINT go to every worker (each finishes its requests and flushes its audit log); the supervisor
exits when they all have.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from vigil.server.logs import JsonLog
from vigil.server.run import ServeError, bind
from vigil.workspace.loader import load_workspace

MAX_WORKERS = 64
GRACE_S = 35.0  # a worker's graceful shutdown (uvicorn's 30 s) and a little more


def supervise(
    workspace: str | Path,
    *,
    workers: int,
    host: str | None = None,
    port: int | None = None,
    grpc_port: int | None = None,
    args: tuple[str, ...] = (),
    log: JsonLog | None = None,
) -> None:
    """Run ``workers`` ``vigil serve`` processes on one port until SIGINT/SIGTERM. ``args`` are
    passed on to each (``--insecure-no-auth``, ``--new-state``). gRPC ext_authz is refused
    (``grpc_port``, default ``[server] grpc_port``, must be off: its server does not share a port).
    Raises WorkspaceError or ServeError before starting any."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ServeError(f"--workers must be between 1 and {MAX_WORKERS}")
    log = log if log is not None else JsonLog()
    ws = load_workspace(workspace)
    if ws.settings.store.backend == "memory":
        raise ServeError(
            '--workers needs a store every worker can use: [store] backend = "sqlite" or "postgres", '
            'not "memory" (each worker would keep its own quarantines and approvals)'
        )
    settings = ws.settings.server
    if (settings.grpc_port if grpc_port is None else grpc_port) >= 0:
        raise ServeError(
            "--workers does not serve gRPC ext_authz (its server does not share a port): "
            "use --grpc-port -1 ([server] grpc_port = -1), or one process for gRPC"
        )
    host = host or settings.host
    port = settings.port if port is None else port
    holder = bind(host, port, reuse_port=True, listen=False)
    actual = holder.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "vigil.cli.main",
        "serve",
        "--workspace",
        str(workspace),
        "--host",
        host,
        "--port",
        str(actual),
        "--reuse-port",
        "--grpc-port",
        "-1",
        *args,
    ]
    stopping = threading.Event()
    procs: list[tuple[subprocess.Popen[bytes], float]] = []
    lock = threading.Lock()

    def start() -> tuple[subprocess.Popen[bytes], float]:
        proc = subprocess.Popen(command)
        log.event("info", "worker started", pid=proc.pid, port=actual)
        return proc, time.monotonic()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()
        with lock:
            for proc, _ in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with lock:
            procs.extend(start() for _ in range(workers))
        log.event(
            "info",
            "supervising",
            host=host,
            port=actual,
            workers=[p.pid for p, _ in procs],
            pid=os.getpid(),
        )
        while not stopping.wait(0.1):
            for i, (proc, since) in enumerate(list(procs)):
                status = proc.poll()
                if status is None or stopping.is_set():
                    continue
                log.event("warning", "worker exited", pid=proc.pid, status=status)
                if time.monotonic() - since < 1.0 and stopping.wait(1.0):
                    break
                with lock:
                    if not stopping.is_set():
                        procs[i] = start()
    finally:
        stop(signal.SIGTERM, None)
        deadline = time.monotonic() + GRACE_S
        for proc, _ in procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
        holder.close()
        log.event("info", "shutdown complete", workers=len(procs))
        log.flush()
