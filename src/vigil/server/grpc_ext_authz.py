"""Envoy external authorization over gRPC: ``envoy.service.auth.v3.Authorization/Check``.

A thin transport beside the HTTP one: it reads Envoy's ``CheckRequest`` (method, path, headers,
the client's address), calls :func:`vigil.protocol.ext_authz.check` (the same route table,
subject source, client address rules and decision as ``/ext_authz``) and writes the verdict as a
``CheckResponse``:

- allowed: gRPC status ``OK`` and an ``ok_response`` whose headers (``x-vigil-decision-id``,
  ``x-vigil-decision``, ``x-vigil-reason``) Envoy adds to the request it lets through;
- denied: ``PERMISSION_DENIED`` (``UNAUTHENTICATED`` without a verified subject) and a
  ``denied_response`` with the HTTP status (403/401), the same headers and the same JSON body a
  client would get from the HTTP service;
- a request vigil refuses to read (an ambiguous path, a repeated identity header, a request with
  no HTTP attributes): ``INVALID_ARGUMENT`` and a 400 ``denied_response``;
- anything unexpected: a 403 ``internal_error`` deny, never an allow, never an unanswered call.

Headers: Envoy sends ``headers`` (a map whose repeated headers it has already joined with ``,``)
or, with ``encode_raw_headers: true``, ``header_map`` (every header as sent, so a repeated identity
header is seen and refused, as in HTTP mode); vigil reads ``header_map`` when it is there.

The PEP authenticates with the API key in the gRPC metadata ``x-vigil-api-key`` (Envoy's
``grpc_service.initial_metadata``); a call without a valid one is aborted with ``UNAUTHENTICATED``
when the server has API keys (it is not decided). The servicer runs on the server's event loop:
decisions stay on the one thread the HTTP service decides on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import grpc
import orjson
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2

from vigil.engine import Engine
from vigil.errors import RequestError
from vigil.protocol.ext_authz import ExtAuthzTable, Verdict, check
from vigil.server.auth import KeyRing

API_KEY_METADATA: Final = "x-vigil-api-key"
MAX_HEADERS: Final = 256
MAX_HEADER_BYTES: Final = 65_536

_GRPC_CODE: Final = {200: code_pb2.OK, 400: code_pb2.INVALID_ARGUMENT, 401: code_pb2.UNAUTHENTICATED}


def _header(key: bytes, value: bytes) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key.decode("latin-1"), value=value.decode("latin-1"))
    )


def response(verdict: Verdict) -> pb.CheckResponse:
    """The ``CheckResponse`` for ``verdict`` (see the module docstring)."""
    headers = [_header(k, v) for k, v in verdict.headers]
    code = _GRPC_CODE.get(verdict.status, code_pb2.PERMISSION_DENIED)
    if verdict.status == 200:
        return pb.CheckResponse(
            status=status_pb2.Status(code=code), ok_response=pb.OkHttpResponse(headers=headers)
        )
    headers.append(_header(b"content-type", b"application/json"))
    return pb.CheckResponse(
        status=status_pb2.Status(code=code),
        denied_response=pb.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=verdict.status),
            headers=headers,
            body=orjson.dumps(verdict.body).decode(),
        ),
    )


def _refused(code: str, message: str, status: int = 400) -> Verdict:
    return Verdict(
        status, {"error": {"code": code, "message": message}}, ((b"x-vigil-reason", code.encode()),)
    )


def original_request(request: pb.CheckRequest) -> tuple[str, str, list[tuple[bytes, bytes]], str | None]:
    """``(method, path, headers, peer)`` of the original request in a ``CheckRequest``: header
    names lower-cased, ``header_map`` preferred to ``headers``, ``peer`` the source address Envoy
    saw. Raises RequestError (``invalid_request``) when there is no HTTP request in it or its
    headers exceed the limits."""
    if not request.attributes.request.HasField("http"):
        raise RequestError("CheckRequest has no attributes.request.http")
    http = request.attributes.request.http
    if not http.method or not http.path:
        raise RequestError("CheckRequest has no method or path")
    headers: list[tuple[bytes, bytes]] = []
    size = 0
    if http.header_map.headers:
        for h in http.header_map.headers:
            value = h.raw_value or h.value.encode("utf-8", "surrogateescape")
            headers.append((h.key.lower().encode("utf-8", "surrogateescape"), value))
            size += len(h.key) + len(value)
    else:
        for k, v in http.headers.items():
            value = v.encode("utf-8", "surrogateescape")
            headers.append((k.lower().encode("utf-8", "surrogateescape"), value))
            size += len(k) + len(value)
    if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
        raise RequestError("the original request's headers exceed the limits")
    source = request.attributes.source.address.socket_address.address
    return http.method.upper(), http.path, headers, source or None


class AuthorizationService:
    """The ``Authorization`` servicer (``add_AuthorizationServicer_to_server`` needs only its
    ``Check``): one :func:`check` per call.

    ``decided`` is told of every decision made (the HTTP service's metrics); ``log`` gets one
    access line per call (``endpoint`` ``grpc_ext_authz``)."""

    def __init__(
        self,
        engine: Engine,
        table: ExtAuthzTable,
        api_keys: KeyRing | None,
        *,
        decided: Callable[[Any], None] | None = None,
        log: Callable[[dict[str, Any]], None] | None = None,
        report: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.engine = engine
        self.table = table
        self.api_keys = api_keys
        self.decided = decided
        self.log = log
        self.report = report

    def authenticated(self, metadata: Any) -> bool:
        """Whether the call carries exactly one valid API key (always, without API keys)."""
        if self.api_keys is None:
            return True
        values = [v for k, v in (metadata or ()) if k == API_KEY_METADATA]
        if len(values) != 1:
            return False
        value = values[0].encode("latin-1", "replace") if isinstance(values[0], str) else values[0]
        return 0 < len(value) <= 4096 and self.api_keys.verify(value.strip())

    def verdict(self, request: pb.CheckRequest) -> Verdict:
        """The verdict for one ``CheckRequest``; never raises."""
        try:
            method, path, headers, peer = original_request(request)
            verdict = check(self.engine, self.table.current(), method, path, headers, peer)
        except RequestError as e:
            return _refused(e.code, e.message)
        except Exception as e:  # a deny, never an unanswered call or an allow
            if self.report is not None:
                self.report(e)
            return _refused("internal_error", "the request could not be decided", 403)
        if verdict.record is not None and self.decided is not None:
            self.decided((verdict.record,))
        return verdict

    async def Check(self, request: pb.CheckRequest, context: Any) -> pb.CheckResponse:
        t0 = time.perf_counter()
        if not self.authenticated(context.invocation_metadata()):
            if self.log is not None:
                self.log({"level": "info", "msg": "access", "endpoint": "grpc_ext_authz", "status": 401})
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid x-vigil-api-key")
        verdict = self.verdict(request)
        if self.log is not None:
            self.log(
                {
                    "level": "info",
                    "msg": "access",
                    "endpoint": "grpc_ext_authz",
                    "status": verdict.status,
                    "ms": (time.perf_counter() - t0) * 1000,
                }
            )
        return response(verdict)


def grpc_server(service: AuthorizationService, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """A gRPC server (not started) with ``service`` on ``host:port`` (0: any free port) and the
    port it bound. Raises OSError-like RuntimeError when the address cannot be bound."""
    # SO_REUSEPORT off: a second server on a port in use must fail, not silently share it
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 1 << 20), ("grpc.so_reuseport", 0)])
    pb_grpc.add_AuthorizationServicer_to_server(service, server)
    bound = server.add_insecure_port(f"{host}:{port}" if ":" not in host else f"[{host.strip('[]')}]:{port}")
    return server, bound
