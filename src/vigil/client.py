"""A client for a remote vigil (or any AuthZEN PDP): :class:`PDPClient`.

It speaks the AuthZEN evaluation API (``POST /access/v1/evaluation`` and ``/evaluations``) over
pooled keep-alive connections (httpx), with the caller's API key, and it **never raises for the
network**: a timeout, a refused connection, a 5xx, an answer that is not an AuthZEN response all
come back as a deny (``pdp_unavailable``, ``pdp_error``), so a PEP that uses it fails closed
without wrapping every call. A 4xx carries vigil's error code into the deny
(``invalid_request``, ``unauthenticated``, ...).

    client = PDPClient("http://127.0.0.1:8181", api_key=os.environ["VIGIL_API_KEY"])
    answer = client.evaluate({"subject": {...}, "action": {...}, "resource": {...}})
    answer.allowed, answer.reason_codes, answer.id, answer.ticket
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

EVALUATION_PATH: Final = "/access/v1/evaluation"
EVALUATIONS_PATH: Final = "/access/v1/evaluations"
UNAVAILABLE: Final = "pdp_unavailable"  # timeout, connection refused or reset
PDP_ERROR: Final = "pdp_error"  # a 5xx, or an answer that is not an AuthZEN response


@dataclass(frozen=True, slots=True)
class Answer:
    """A decision as a PEP sees it: ``allowed``, the stable ``reason_codes``, the decision ``id``
    (empty when none was made), ``advice``, and the approval ``ticket`` of a step-up deny
    (``{"id", "expires", "approve"}``) or None."""

    allowed: bool
    reason_codes: tuple[str, ...]
    id: str = ""
    advice: tuple[str, ...] = ()
    ticket: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


def deny(code: str) -> Answer:
    """A deny made without a decision (the PDP could not be asked or did not answer usably)."""
    return Answer(False, (code,))


def read_answer(body: Any) -> Answer:
    """The :class:`Answer` in an AuthZEN evaluation response; a deny (``pdp_error``) for a body
    that is not one (``decision`` must be a JSON boolean: anything else is never an allow)."""
    if not isinstance(body, dict) or type(body.get("decision")) is not bool:
        return deny(PDP_ERROR)
    context = body.get("context")
    context = context if isinstance(context, dict) else {}
    codes = context.get("reason_codes")
    reasons = tuple(c for c in codes if isinstance(c, str)) if isinstance(codes, list) else ()
    advice = context.get("advice")
    ticket = context.get("ticket")
    decision_id = context.get("id")
    return Answer(
        body["decision"],
        reasons or (("policy_permit",) if body["decision"] else ("no_reason",)),
        decision_id if isinstance(decision_id, str) else "",
        tuple(a for a in advice if isinstance(a, str)) if isinstance(advice, list) else (),
        ticket if isinstance(ticket, dict) else None,
        body,
    )


def _error_code(body: Any, fallback: str) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        if isinstance(code, str) and code:
            return code
    return fallback


class PDPClient:
    """AuthZEN evaluations against ``base_url``, with pooled connections; thread-safe (one
    ``httpx.Client``), with an async twin for coroutines (:meth:`aevaluate`; one pool per event
    loop, made on first use in that loop).

    ``timeout_s``: the longest one call waits (connect, write, read together); past it the answer
    is a deny. ``api_key``: sent as ``Authorization: Bearer``. ``max_connections``: the pool size.
    Close it (or use it as a context manager) to release the connections."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 0.5,
        max_connections: int = 16,
    ) -> None:
        """Raises ValueError for a base URL that is not http(s) or a timeout that is not positive."""
        import httpx

        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError("timeout_s must be a positive number")
        self.base_url = base_url.rstrip("/")
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._timeout = httpx.Timeout(timeout_s)
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = httpx.Client(
            base_url=self.base_url, headers=self._headers, timeout=self._timeout, limits=self._limits
        )
        self._async: Any = None

    def __enter__(self) -> PDPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the pooled connections (the async pool is closed by :meth:`aclose`)."""
        self._client.close()

    async def aclose(self) -> None:
        """Release both pools."""
        self._client.close()
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            await self._async[1].aclose()
        self._async = None

    # -- sync ---------------------------------------------------------------------------------
    def evaluate(self, request: Mapping[str, Any]) -> Answer:
        """One decision; a deny (never an exception) when the PDP cannot be asked or answers
        with an error."""
        return self._single(self._post(EVALUATION_PATH, request))

    def evaluate_many(self, requests: Sequence[Mapping[str, Any]]) -> list[Answer]:
        """One batch (``/evaluations``, each item decided on its own): an answer per request, in
        order; every one a deny when the batch cannot be asked or its answer is unusable."""
        if not requests:
            return []
        return self._batch(self._post(EVALUATIONS_PATH, {"evaluations": list(requests)}), len(requests))

    def _post(self, path: str, body: Mapping[str, Any]) -> tuple[int, Any] | str:
        import httpx

        try:
            r = self._client.post(path, json=body)
        except httpx.TimeoutException:
            return UNAVAILABLE
        except (httpx.TransportError, OSError):
            return UNAVAILABLE
        except (TypeError, ValueError):  # a body json cannot encode
            return "invalid_request"
        return r.status_code, _json(r.content)

    # -- async --------------------------------------------------------------------------------
    async def aevaluate(self, request: Mapping[str, Any]) -> Answer:
        """:meth:`evaluate` for coroutines (its own pooled async connections)."""
        return self._single(await self._apost(EVALUATION_PATH, request))

    async def aevaluate_many(self, requests: Sequence[Mapping[str, Any]]) -> list[Answer]:
        """:meth:`evaluate_many` for coroutines."""
        if not requests:
            return []
        return self._batch(
            await self._apost(EVALUATIONS_PATH, {"evaluations": list(requests)}), len(requests)
        )

    async def _apost(self, path: str, body: Mapping[str, Any]) -> tuple[int, Any] | str:
        import httpx

        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            # an async pool belongs to the event loop it was made on (asyncio.run makes a new one
            # each time): a pool of a finished loop is dropped, its sockets went with the loop
            self._async = (
                loop,
                httpx.AsyncClient(
                    base_url=self.base_url, headers=self._headers, timeout=self._timeout, limits=self._limits
                ),
            )
        try:
            r = await self._async[1].post(path, json=body)
        except httpx.TimeoutException:
            return UNAVAILABLE
        except (httpx.TransportError, OSError):
            return UNAVAILABLE
        except (TypeError, ValueError):
            return "invalid_request"
        return r.status_code, _json(r.content)

    # -- reading ------------------------------------------------------------------------------
    @staticmethod
    def _single(result: tuple[int, Any] | str) -> Answer:
        if isinstance(result, str):
            return deny(result)
        status, body = result
        if status == 200:
            return read_answer(body)
        return deny(_error_code(body, PDP_ERROR) if 400 <= status < 500 else PDP_ERROR)

    @staticmethod
    def _batch(result: tuple[int, Any] | str, n: int) -> list[Answer]:
        if isinstance(result, str):
            return [deny(result)] * n
        status, body = result
        if status != 200:
            code = _error_code(body, PDP_ERROR) if 400 <= status < 500 else PDP_ERROR
            return [deny(code)] * n
        items = body.get("evaluations") if isinstance(body, dict) else None
        if not isinstance(items, list) or len(items) != n:
            return [deny(PDP_ERROR)] * n
        return [read_answer(item) for item in items]


def _json(content: bytes) -> Any:
    import orjson

    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
