"""Minimal echo apps for choosing the HTTP stack (bench/http/compare_stacks.py runs them).

``raw``: a bare ASGI callable; ``starlette``: the same on Starlette. Both parse the JSON body with
orjson and send it back, so the numbers are the floor each stack puts under a decision endpoint.
"""

from __future__ import annotations

from typing import Any

import orjson


async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        msg = await receive()
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
    out = orjson.dumps(orjson.loads(body))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": out})


def _starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def echo(request: Request) -> Response:
        data = orjson.loads(await request.body())
        return Response(orjson.dumps(data), media_type="application/json")

    return Starlette(routes=[Route("/echo", echo, methods=["POST"])])


starlette = _starlette()
