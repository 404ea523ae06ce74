"""Helpers for the HTTP tests: a real ``vigil serve`` process on loopback (no tests here).

Each server runs in its own process on an ephemeral port (``--port 0``; the port is read from the
``listening`` log line), on a copy of a workspace in a temporary folder, and is stopped with
SIGTERM, as an operator would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests import vendored

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
VECTORS = vendored.AUTHZEN
API_KEY = "test-api-key-0123456789abcdef"
ADMIN_KEY = "test-admin-key-0123456789abcdef"


def copy_workspace(name: str, dest: Path) -> Path:
    """A copy of ``examples/<name>`` under ``dest`` (never write into the repository's examples)."""
    target = dest / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns(".vigil"))
    return target


def serve_argv(workspace: Path, *args: str) -> list[str]:
    """The command line of ``vigil serve`` on ``workspace``, on an ephemeral port, plus ``args``."""
    return [
        sys.executable,
        "-m",
        "vigil.cli.main",
        "serve",
        "--workspace",
        str(workspace),
        "--port",
        "0",
        *args,
    ]


class ServerProcess:
    """``vigil serve`` in a child process; ``url`` once started; ``stop()`` sends SIGTERM."""

    def __init__(
        self,
        workspace: Path,
        *,
        keys: str | None = API_KEY,
        admin_keys: str | None = ADMIN_KEY,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        full_env = {k: v for k, v in os.environ.items() if k not in ("VIGIL_API_KEYS", "VIGIL_ADMIN_KEYS")}
        if keys is not None:
            full_env["VIGIL_API_KEYS"] = keys
        if admin_keys is not None:
            full_env["VIGIL_ADMIN_KEYS"] = admin_keys
        full_env.update(env or {})
        self.workspace = workspace
        self.cmd = serve_argv(workspace, *args)
        self.proc = subprocess.Popen(self.cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self.port: int | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if self.port is None and '"listening"' in line:
                self.port = int(json.loads(line)["port"])
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 60) -> ServerProcess:
        """Block until the server listens; raises RuntimeError with its log when it does not."""
        self._ready.wait(timeout)
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("server did not start:\n" + self.log())
        if wait_healthy(self.url, lambda: self.proc.poll() is None, timeout):
            return self
        raise RuntimeError("server not healthy:\n" + self.log())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_port(self) -> int:
        """The gRPC ext_authz port (``--grpc-port``), read from its ``listening`` log line."""
        for line in self.lines:
            if '"listening (gRPC ext_authz)"' in line:
                return int(json.loads(line)["port"])
        raise RuntimeError("no gRPC listener:\n" + self.log())

    def log(self) -> str:
        return "\n".join(self.lines)

    def client(self, key: str | None = API_KEY, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM, then wait; True when the server shut down gracefully (uvicorn re-raises the
        signal after its shutdown, so the status is -SIGTERM; the app logs ``shutdown complete``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait()
        self._reader.join(timeout=5)
        return status in (0, -signal.SIGTERM) and any('"shutdown complete"' in line for line in self.lines)


def wait_healthy(url: str, alive: Callable[[], bool], timeout: float) -> bool:
    """Poll ``url/healthz`` until it answers 200 (True), ``alive()`` turns false or ``timeout``
    seconds pass (False). Sleeps 50 ms after a refused connection and a non-200 answer alike:
    never spins (tests/test_test_support.py)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        if not alive():
            return False
        time.sleep(0.05)
    return False


def load_vectors(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(vendored.require(VECTORS / relative).read_text())
    return data
