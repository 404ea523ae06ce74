"""``vigil serve``: build the app from a workspace and run it on uvicorn (httptools + uvloop).

One process, one event loop; decisions run on the loop (they take microseconds), reloads in a
thread. SIGTERM/SIGINT: stop accepting, let in-flight requests finish, then the lifespan shutdown
flushes the audit log (see :meth:`VigilApp.shutdown`).
"""

from __future__ import annotations

import gc
import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

from vigil.audit.sink import AuditSink
from vigil.engine import Engine
from vigil.errors import VigilError
from vigil.server.app import ServerConfig, VigilApp
from vigil.server.auth import ADMIN_KEYS_ENV, API_KEYS_ENV, KeyRing, load_keys
from vigil.server.logs import JsonLog


class ServeError(VigilError):
    """The server refuses to start (no API key, insecure mode off loopback, address in use)."""

    code = "server_refused"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_app(
    workspace: str | Path,
    *,
    host: str | None = None,
    port: int | None = None,
    insecure_no_auth: bool = False,
    echo: bool = False,
    audit: AuditSink | None = None,
    log: JsonLog | None = None,
    new_state: bool = False,
) -> VigilApp:
    """The app on the workspace at ``workspace``, with caller keys from the environment and files.

    Raises WorkspaceError (bad workspace, keys file or route table) or ServeError (no key and no
    ``insecure_no_auth``, or ``insecure_no_auth`` off loopback). A state database that existed
    and is gone is refused (``store_unavailable`` inside the WorkspaceError) unless ``new_state``.
    The engine belongs to the app from then on: its lifespan shutdown closes it.
    """
    options: dict[str, Any] = {"new_state": new_state}
    if audit is not None:
        options["audit"] = audit
    engine = Engine.from_workspace(workspace, **options)
    try:
        return _app(engine, host, port, insecure_no_auth, echo, log)
    except BaseException:
        engine.close()
        raise


def _app(
    engine: Engine, host: str | None, port: int | None, insecure: bool, echo: bool, log: JsonLog | None
) -> VigilApp:
    settings = engine.workspace.settings.server
    host = host or settings.host
    port = settings.port if port is None else port
    log = log if log is not None else JsonLog(access=settings.access_log)
    api: KeyRing | None = load_keys(API_KEYS_ENV, settings.api_keys_file, engine.workspace.path)
    admin: KeyRing | None = load_keys(ADMIN_KEYS_ENV, settings.admin_keys_file, engine.workspace.path)
    assert api is not None and admin is not None
    if not len(api):
        if not insecure:
            raise ServeError(
                f"no API key configured: set {API_KEYS_ENV} or [server] api_keys_file in vigil.toml "
                "(or use --insecure-no-auth on a loopback address)"
            )
        if not is_loopback(host):
            raise ServeError(f"--insecure-no-auth is refused on the non-loopback address {host!r}")
        for _ in range(3):
            log.event(
                "warning",
                "INSECURE: caller authentication is OFF (--insecure-no-auth); any local process can ask "
                "for decisions and use the admin API",
                host=host,
            )
        api = None
        if not len(admin):
            admin = None
    elif insecure:
        log.event("warning", "--insecure-no-auth ignored: API keys are configured")
    if api is not None and not len(admin or ()):
        log.event("info", f"admin API disabled: no admin key ({ADMIN_KEYS_ENV} or [server] admin_keys_file)")
    config = ServerConfig(
        api_keys=api,
        admin_keys=admin,
        pdp_url=settings.policy_decision_point or f"http://{_url_host(host)}:{port}",
        max_body_bytes=settings.max_body_bytes,
        max_evaluations=settings.max_evaluations,
        search_max_results=settings.search_max_results,
        echo=echo,
        store_timeout_s=engine.workspace.settings.store.busy_timeout_ms / 1000,
    )
    # the token service is this server (unless [identity] issuer names another URL)
    engine.set_issuer(config.pdp_url)
    return VigilApp(engine, config, log)


def add_grpc(app: VigilApp, host: str, port: int) -> None:
    """Serve Envoy's gRPC ``Authorization/Check`` on ``host:port`` (0: a free port, logged)
    beside the app's HTTP service, on its event loop: created and started with the app's lifespan
    (a gRPC server belongs to the loop it is made on), stopped before the engine closes. Raises
    ServeError when grpcio or the Envoy protos are not installed; an address that cannot be bound
    fails the startup (the server exits)."""
    try:
        from vigil.server.grpc_ext_authz import AuthorizationService, grpc_server
    except ImportError as e:
        raise ServeError(
            f"gRPC ext_authz needs grpcio and xds-protos (pip install 'vigil-iam[grpc]'): {e}"
        ) from None
    service = AuthorizationService(
        app.engine,
        app.ext_authz,
        app.config.api_keys,
        decided=app.metrics.decided,
        log=app.log.access,
        report=lambda e: app.log.event("error", "grpc ext_authz check failed", error=type(e).__name__),
    )
    servers: list[Any] = []

    async def start() -> None:
        try:
            server, bound = grpc_server(service, host, port)
        except RuntimeError as e:
            raise ServeError(f"cannot listen for gRPC on {host}:{port}: {e}") from None
        await server.start()
        servers.append(server)
        app.log.event("info", "listening (gRPC ext_authz)", host=host, port=bound)

    async def stop() -> None:
        for server in servers:
            await server.stop(grace=5)

    app.companions.append((start, stop))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A listening TCP socket; raises ServeError when the address cannot be bound. ``reuse_port``:
    with ``SO_REUSEPORT`` (several workers on one port, ``vigil serve --workers``); ``listen``
    False: bound only (the supervisor holds the port and takes no connection)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host.strip("[]"), port))
    except (OSError, AttributeError) as e:
        sock.close()
        why = e.strerror if isinstance(e, OSError) else "SO_REUSEPORT is not available here"
        raise ServeError(f"cannot listen on {host}:{port}: {why}") from None
    if not listen:
        return sock
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    workspace: str | Path,
    *,
    host: str | None = None,
    port: int | None = None,
    insecure_no_auth: bool = False,
    echo: bool = False,
    new_state: bool = False,
    grpc_port: int | None = None,
    reuse_port: bool = False,
) -> None:
    """Run the server until SIGINT/SIGTERM; raises WorkspaceError or ServeError before listening.

    ``grpc_port`` (default: ``[server] grpc_port``; negative: none) also serves Envoy's gRPC
    ``Authorization/Check`` on the same host (:mod:`vigil.server.grpc_ext_authz`).
    ``reuse_port``: one of several workers on the port (``vigil.server.workers``)."""
    import uvicorn

    app = build_app(
        workspace, host=host, port=port, insecure_no_auth=insecure_no_auth, echo=echo, new_state=new_state
    )
    settings = app.engine.workspace.settings.server
    host = host or settings.host
    port = settings.port if port is None else port
    grpc_port = settings.grpc_port if grpc_port is None else grpc_port
    try:
        sock = bind(host, port, reuse_port=reuse_port)
        if grpc_port >= 0:
            add_grpc(app, host, grpc_port)
    except ServeError:
        app.engine.close()
        raise
    actual_port = sock.getsockname()[1]
    if not settings.policy_decision_point:
        app.pdp_url = f"http://{_url_host(host)}:{actual_port}"
        app.engine.set_issuer(app.pdp_url)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    if os.environ.get("VIGIL_GC_FREEZE", "1") != "0":
        # Everything loaded so far (workspace, compiled policies, libraries) lives as long as
        # the process: keep it out of every future GC pass (docs/benchmarks.md, "GC").
        gc.collect()
        gc.freeze()
    app.log.event(
        "info",
        "listening",
        host=host,
        port=actual_port,
        workspace=str(app.engine.workspace.path),
        policy_revision=app.engine.policy_revision,
        pid=os.getpid(),
        auth=app.config.api_keys is not None,
    )
    try:
        server.run(sockets=[sock])
    finally:
        app.engine.close()
        app.log.flush()
