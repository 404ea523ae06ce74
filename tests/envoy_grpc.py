"""What Envoy's ext_authz filter sends, over HTTP and over gRPC, and its answer in one shape.

``grpc_check`` is a real gRPC client (grpcio, the Envoy protos of xds-protos) calling
``envoy.service.auth.v3.Authorization/Check`` with a ``CheckRequest`` as Envoy builds it: the
original method, path (query included) and headers under ``attributes.request.http``, the client
address Envoy saw under ``attributes.source``; the PEP's API key travels in the call's metadata
(Envoy's ``initial_metadata``), never among the original headers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.service.auth.v3 import attribute_context_pb2 as ac
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc
from google.rpc import code_pb2

API_KEY_HEADER = "x-vigil-api-key"
Headers = dict[str, "str | list[str]"]


@dataclass
class Answer:
    """Envoy's reading of the answer: ``status`` 200 lets the request through; ``headers`` are
    those added upstream (allowed) or sent to the client (denied); ``body`` the client's JSON
    body (None when nothing reaches the client: a gRPC allow)."""

    transport: str
    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None
    grpc_code: int | None = None


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in headers.items():
        out.extend((k, x) for x in (v if isinstance(v, list) else [v]))
    return out


def http_check(url: str, method: str, path: str, headers: Headers) -> Answer:
    """The HTTP service: original method, ``path_prefix`` + original path, the original headers
    (the PEP key among them, as ``headers_to_add`` puts it), Content-Length 0."""
    r = httpx.request(
        method,
        url + "/ext_authz" + path,
        headers=[("host", "todo.example"), ("content-length", "0"), *_pairs(headers)],
        content=b"",
    )
    return Answer("http", r.status_code, dict(r.headers), r.json() if r.content else None)


def check_request(
    method: str, path: str, headers: Headers, *, source: str = "10.1.2.3", raw: bool = True
) -> pb.CheckRequest:
    """A ``CheckRequest`` as Envoy sends it; ``raw``: every header as sent in ``header_map``
    (``encode_raw_headers: true``), otherwise the ``headers`` map (repeated headers joined)."""
    http = ac.AttributeContext.HttpRequest(method=method, path=path, host="todo.example", protocol="HTTP/1.1")
    pairs = [(k.lower(), v) for k, v in _pairs({"host": "todo.example", **headers})]
    if raw:
        http.header_map.CopyFrom(
            base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs])
        )
    else:
        joined: dict[str, str] = {}
        for k, v in pairs:
            joined[k] = f"{joined[k]},{v}" if k in joined else v
        http.headers.update(joined)
    return pb.CheckRequest(
        attributes=ac.AttributeContext(
            source=ac.AttributeContext.Peer(
                address=address_pb2.Address(
                    socket_address=address_pb2.SocketAddress(address=source, port_value=40000)
                )
            ),
            request=ac.AttributeContext.Request(http=http),
        )
    )


def grpc_call(port: int, request: pb.CheckRequest, metadata: list[tuple[str, str]]) -> pb.CheckResponse:
    """One ``Check`` call; raises grpc.RpcError when the call fails."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.AuthorizationStub(channel)
        response: pb.CheckResponse = stub.Check(request, metadata=metadata, timeout=30)
        return response


def answer(response: pb.CheckResponse) -> Answer:
    """Envoy's reading of a ``CheckResponse``."""
    code = response.status.code
    if response.HasField("ok_response"):
        headers = {h.header.key: h.header.value for h in response.ok_response.headers}
        assert code == code_pb2.OK
        return Answer("grpc", 200, headers, None, code)
    denied = response.denied_response
    headers = {h.header.key: h.header.value for h in denied.headers}
    assert code != code_pb2.OK
    return Answer("grpc", denied.status.code, headers, json.loads(denied.body), code)


def grpc_check(port: int, method: str, path: str, headers: Headers, *, raw: bool = True) -> Answer:
    """The gRPC service, with the PEP key (when ``headers`` has one) moved into the metadata; a
    call refused for its API key reads as the HTTP service's 401 ``unauthenticated``."""
    headers = dict(headers)
    key = headers.pop(API_KEY_HEADER, None)
    metadata = [(API_KEY_HEADER, key)] if isinstance(key, str) else []
    try:
        return answer(grpc_call(port, check_request(method, path, headers, raw=raw), metadata))
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNAUTHENTICATED:
            return Answer("grpc", 401, {}, {"error": {"code": "unauthenticated"}}, code_pb2.UNAUTHENTICATED)
        raise
