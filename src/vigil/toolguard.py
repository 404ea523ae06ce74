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

Deny is the default and the result of every failure: an argument that cannot be a Cedar value, a
subject callable that raises, an engine that raises, a PDP that cannot be reached: the function is
not called and :class:`Denied` says why (``invalid_request``, ``internal_error``,
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

if TYPE_CHECKING:
    from vigil.client import Answer, PDPClient

P = ParamSpec("P")
R = TypeVar("R")
Subject = Mapping[str, Any] | Callable[[], Mapping[str, Any]]
_log = logging.getLogger("vigil.toolguard")


class Denied(PermissionError):
    """A guarded call that vigil did not allow. ``reason_codes`` (stable codes), ``decision_id``
    (empty when no decision could be made), ``ticket`` the approval ticket of a step-up deny
    (``{"id", "expires", "approve"}``) or None, ``tool`` and ``action`` what was asked."""

    def __init__(
        self,
        tool: str,
        action: str,
        reason_codes: tuple[str, ...],
        decision_id: str = "",
        ticket: Mapping[str, Any] | None = None,
    ) -> None:
        self.tool = tool
        self.action = action
        self.reason_codes = reason_codes
        self.decision_id = decision_id
        self.ticket = ticket
        hint = f"; approval ticket {ticket.get('id')}" if ticket else ""
        super().__init__(f"{action} on {tool} denied: {', '.join(reason_codes) or 'denied'}{hint}")


class Guard:
    """Decides tool calls for one subject against ``decider`` (an Engine or a PDPClient).

    ``resource_type`` (default ``Tool``) and ``action`` (default ``call_tool``) name what the
    wrapped functions become in the request; ``context`` (optional) adds to each request's
    context (``arguments`` is always the call's)."""

    def __init__(
        self,
        decider: Engine | PDPClient,
        *,
        subject: Subject,
        action: str = "call_tool",
        resource_type: str = "Tool",
        context: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.decider = decider
        self.subject = subject
        self.action = action
        self.resource_type = resource_type
        self.context = context

    def request(self, tool: str, action: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The AuthZEN request for one call; raises whatever a subject or context callable raises."""
        subject = self.subject() if callable(self.subject) else self.subject
        context: dict[str, Any] = dict(self.context()) if self.context is not None else {}
        context["arguments"] = dict(arguments)
        return {
            "subject": dict(subject),
            "action": {"name": action},
            "resource": {"type": self.resource_type, "id": tool},
            "context": context,
        }

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
            except Exception:
                _log.exception("guard: could not build the request for %s", tool)
                raise Denied(tool, act, ("internal_error",)) from None
            answer = _from_client(await self.decider.aevaluate(request))
        _raise_unless_allowed(tool, act, answer)

    def _decide(self, tool: str, action: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        try:
            request = self.request(tool, action, arguments)
            if isinstance(self.decider, Engine):
                return self.decider.decide(request).to_authzen()
            return _from_client(self.decider.evaluate(request))
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
    subject: Subject,
    tool: str | None = None,
    action: str = "call_tool",
    resource_type: str = "Tool",
    context: Callable[[], Mapping[str, Any]] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``@vigil.guard(engine, subject=...)``: :meth:`Guard.tool` of a one-off :class:`Guard`."""
    return Guard(decider, subject=subject, action=action, resource_type=resource_type, context=context).tool(
        tool
    )


def _from_client(answer: Answer) -> dict[str, Any]:
    context: dict[str, Any] = {"id": answer.id, "reason_codes": list(answer.reason_codes)}
    if answer.ticket is not None:
        context["ticket"] = dict(answer.ticket)
    return {"decision": answer.allowed, "context": context}


def _raise_unless_allowed(tool: str, action: str, response: Mapping[str, Any]) -> None:
    if response.get("decision") is True:
        return
    context = response.get("context") or {}
    ticket = context.get("ticket")
    raise Denied(
        tool,
        action,
        tuple(context.get("reason_codes") or ()),
        str(context.get("id") or ""),
        ticket if isinstance(ticket, dict) else None,
    )
