"""``vigil.guard`` and ``vigil.Guard``: a guard for Python tools; every call of a wrapped
function is an access decision first.

An agent framework's tool is a plain function. Wrapped, each call asks vigil whether the agent
may call this tool with these arguments, and runs only when the answer is allow; otherwise it
raises :class:`Denied` with the reason codes (and, for a step-up, the approval ticket: approve it
and the retry goes through)::

    guard = vigil.Guard(engine, subject={"type": "Agent", "id": "report-writer"})

    @guard.tool()                       # resource Tool::"<module>.<function>"
    def read_file(path: str) -> str: ...

    @guard.tool("db.query", action="query")
    async def query(sql: str, limit: int = 100) -> list[dict]: ...

The request: subject the agent (fixed, or a callable read at each call, e.g. from a context
variable), action ``Action::"call_tool"`` (or the one given), resource ``Tool::"<name>"``, and
``context.arguments``, the call's arguments bound to the function's signature with defaults
applied (so a policy reads ``context.arguments.path like "/srv/reports/*"``), plus whatever
``context`` returns. The decider is an in-process :class:`~vigil.engine.Engine` or a remote vigil
through :class:`~vigil.client.PDPClient`; both answer in the AuthZEN shape.

The agent may be named by its token instead (``token=``: a JWT, or a callable returning the
current one): every decision is then backed by it (``Engine.decide(request, token=)``: verified in
process against the workspace's issuers and revocations, a delegated token's actors checked link
by link; a remote vigil gets it as ``subject.properties.token`` and does the same). Without
``subject=``, the subject is the token's: verified by the engine's verifier in process; for a
remote vigil read from the token's ``sub`` (a vigil token names a uid; the PDP verifies it and
denies ``token_subject_mismatch`` for any other).

Deny is the default and the result of every failure: an argument that cannot be a Cedar value, a
subject callable that raises, a token that does not verify (``unverified_identity``, with the
token's error in ``Denied.error``), an engine that raises, a PDP that cannot be reached: the
function is not called and :class:`Denied` says why (``invalid_request``, ``internal_error``,
``pdp_unavailable``, ...). The guard never swallows what the function itself raises.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from vigil.engine import Engine
from vigil.errors import VigilError
from vigil.identity.parse import parse_identity_uid
from vigil.identity.tokens import TokenError
from vigil.identity.tokens.verify import split_token

if TYPE_CHECKING:
    from vigil.client import Answer, PDPClient

P = ParamSpec("P")
R = TypeVar("R")
Subject = Mapping[str, Any] | Callable[[], Mapping[str, Any]]
Token = str | Callable[[], str]
_log = logging.getLogger("vigil.toolguard")
_UNVERIFIED = "unverified_identity"


class Denied(PermissionError):
    """A guarded call that vigil did not allow. ``reason_codes`` (stable codes), ``decision_id``
    (empty when no decision could be made), ``ticket`` the approval ticket of a step-up deny
    (``{"id", "expires", "approve"}``) or None, ``tool`` and ``action`` what was asked; ``error``
    the ``{"code", "message"}`` of what failed (a token that does not verify: ``token_expired``,
    ``token_revoked``, ...) or None."""

    def __init__(
        self,
        tool: str,
        action: str,
        reason_codes: tuple[str, ...],
        decision_id: str = "",
        ticket: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> None:
        self.tool = tool
        self.action = action
        self.reason_codes = reason_codes
        self.decision_id = decision_id
        self.ticket = ticket
        self.error = error
        hint = f"; approval ticket {ticket.get('id')}" if ticket else ""
        super().__init__(f"{action} on {tool} denied: {', '.join(reason_codes) or 'denied'}{hint}")


class Guard:
    """Decides tool calls for one agent against ``decider`` (an Engine or a PDPClient): named by
    ``subject``, by its ``token``, or both (see the module docstring).

    ``resource_type`` (default ``Tool``) and ``action`` (default ``call_tool``) name what the
    wrapped functions become in the request; ``context`` (optional) adds to each request's
    context (``arguments`` is always the call's)."""

    def __init__(
        self,
        decider: Engine | PDPClient,
        *,
        subject: Subject | None = None,
        token: Token | None = None,
        action: str = "call_tool",
        resource_type: str = "Tool",
        context: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        if subject is None and token is None:
            raise TypeError("a Guard needs subject= or token=")
        self.decider = decider
        self.subject = subject
        self.token = token
        self.action = action
        self.resource_type = resource_type
        self.context = context

    def request(self, tool: str, action: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The AuthZEN request for one call (for a remote PDP, the token rides in
        ``subject.properties.token``); raises whatever a subject, token or context callable
        raises, and TokenError when the subject is to come from a token that does not give one."""
        request, token = self._request(tool, action, arguments)
        if token is not None:
            subject = request["subject"]
            subject["properties"] = {**subject.get("properties", {}), "token": token}
        return request

    def _request(
        self, tool: str, action: str, arguments: Mapping[str, Any]
    ) -> tuple[dict[str, Any], str | None]:
        """The AuthZEN request without the token, and the token."""
        token = self.token() if callable(self.token) else self.token
        if self.subject is not None:
            subject = dict(self.subject() if callable(self.subject) else self.subject)
        else:
            assert token is not None
            uid = self._token_subject(token)
            subject = {"type": uid[0], "id": uid[1]}
        context: dict[str, Any] = dict(self.context()) if self.context is not None else {}
        context["arguments"] = dict(arguments)
        request = {
            "subject": subject,
            "action": {"name": action},
            "resource": {"type": self.resource_type, "id": tool},
            "context": context,
        }
        return request, token

    def _token_subject(self, token: str) -> tuple[str, str]:
        """The identity ``token`` names: verified in process for an engine; for a remote PDP, the
        uid in its ``sub`` (the PDP verifies the token). Raises TokenError."""
        if isinstance(self.decider, Engine):
            return self.decider.verifier.verify(token).subject
        _, _, claims = split_token(token, 16_384)
        try:
            return parse_identity_uid(claims.get("sub"))
        except VigilError:
            raise TokenError(
                "the token's sub is not a vigil uid: give the guard subject= as well", code="invalid_token"
            ) from None

    def check(self, tool: str, arguments: Mapping[str, Any], *, action: str | None = None) -> None:
        """Returns when ``tool`` may be called with ``arguments``; raises :class:`Denied` otherwise
        (and for every failure to decide)."""
        act = action or self.action
        _raise_unless_allowed(tool, act, self._decide(tool, act, arguments))

    async def acheck(self, tool: str, arguments: Mapping[str, Any], *, action: str | None = None) -> None:
        """:meth:`check` for coroutines (a remote decider is asked without blocking the loop; an
        in-process engine decides in microseconds, inline)."""
        act = action or self.action
        if isinstance(self.decider, Engine):
            answer = self._decide(tool, act, arguments)
        else:
            try:
                request = self.request(tool, act, arguments)
            except TokenError as e:
                raise Denied(tool, act, (_UNVERIFIED,), error=e.to_dict()) from None
            except Exception:
                _log.exception("guard: could not build the request for %s", tool)
                raise Denied(tool, act, ("internal_error",)) from None
            answer = _from_client(await self.decider.aevaluate(request))
        _raise_unless_allowed(tool, act, answer)

    def _decide(self, tool: str, action: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        try:
            if isinstance(self.decider, Engine):
                request, token = self._request(tool, action, arguments)
                return self.decider.decide(request, token=token).to_authzen()
            return _from_client(self.decider.evaluate(self.request(tool, action, arguments)))
        except TokenError as e:  # the token names nobody: nothing to decide for
            return {"decision": False, "context": {"reason_codes": [_UNVERIFIED], "error": e.to_dict()}}
        except VigilError as e:
            return {"decision": False, "context": {"reason_codes": [e.code]}}
        except Exception:
            _log.exception("guard: deciding %s failed", tool)
            return {"decision": False, "context": {"reason_codes": ["internal_error"]}}

    def tool(
        self, name: str | None = None, *, action: str | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """A decorator: the function runs only when allowed (see the module docstring). ``name``
        the tool's id (default ``<module>.<qualified name>``); async functions stay async."""

        def wrap(fn: Callable[P, R]) -> Callable[P, R]:
            tool = name or f"{fn.__module__}.{fn.__qualname__}"
            signature = inspect.signature(fn)

            def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
                try:
                    bound = signature.bind(*args, **kwargs)
                except TypeError:
                    raise  # a wrong call is the caller's error, as without the guard
                bound.apply_defaults()
                return dict(bound.arguments)

            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                    await self.acheck(tool, arguments(args, kwargs), action=action)
                    return await fn(*args, **kwargs)

                return guarded_async  # type: ignore[return-value]

            @functools.wraps(fn)
            def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
                self.check(tool, arguments(args, kwargs), action=action)
                return fn(*args, **kwargs)

            return guarded

        return wrap


def guard(
    decider: Engine | PDPClient,
    *,
    subject: Subject | None = None,
    token: Token | None = None,
    tool: str | None = None,
    action: str = "call_tool",
    resource_type: str = "Tool",
    context: Callable[[], Mapping[str, Any]] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``@vigil.guard(engine, subject=...)``: :meth:`Guard.tool` of a one-off :class:`Guard`."""
    return Guard(
        decider, subject=subject, token=token, action=action, resource_type=resource_type, context=context
    ).tool(tool)


def _from_client(answer: Answer) -> dict[str, Any]:
    context: dict[str, Any] = {"id": answer.id, "reason_codes": list(answer.reason_codes)}
    error = answer.raw.get("context", {}).get("error") if isinstance(answer.raw, dict) else None
    if isinstance(error, dict):
        context["error"] = error
    if answer.ticket is not None:
        context["ticket"] = dict(answer.ticket)
    return {"decision": answer.allowed, "context": context}


def _raise_unless_allowed(tool: str, action: str, response: Mapping[str, Any]) -> None:
    if response.get("decision") is True:
        return
    context = response.get("context") or {}
    ticket = context.get("ticket")
    error = context.get("error")
    raise Denied(
        tool,
        action,
        tuple(context.get("reason_codes") or ()),
        str(context.get("id") or ""),
        ticket if isinstance(ticket, dict) else None,
        error if isinstance(error, dict) else None,
    )
