"""MCP requests as vigil decisions (Model Context Protocol, revision 2025-06-18 and later): pure
mapping, no I/O. The gateway (:mod:`vigil.mcp`) parses a JSON-RPC message with the SDK, calls one
function here, and maps what comes back.

* ``tools/call`` -> subject = the agent, ``Action::"call_tool"``, ``Tool::"NAME.tool"``;
  ``resources/read`` -> ``Action::"read_resource"``, ``Resource::"NAME:uri"``; ``prompts/get`` ->
  ``Action::"get_prompt"``, ``Prompt::"NAME.prompt"`` (:func:`call_request`).
* The tool's annotations (``readOnlyHint``, ``destructiveHint``, ``idempotentHint``,
  ``openWorldHint``; MCP spec "Tools" §Tool annotations) are the resource's attributes, laid over
  what the workspace declares for that entity: a declared attribute wins, the upstream cannot
  replace it (:func:`resource_properties`).
* ``context.arguments`` is the call's arguments, typed: strings, integers, booleans, lists and
  nested records. A value Cedar cannot hold (null, a float, an integer beyond 64 bits) or a key
  that Cedar's JSON would read as an escape (``__entity``, ``__extn``, ``__expr``) is refused
  (:func:`check_arguments` raises ValueConversionError, ``invalid_value``, naming the argument):
  the call is denied and audited as ``invalid_request``, never decided on a guessed value.
* ``context.mcp`` = ``{session, client, client_version, method}``; ``context.user_agent`` =
  ``client/version`` and ``context.ip`` the peer address when known (what approvals bind).
* A denial is a JSON-RPC error (:func:`denial`): code :data:`DENIED` with the reason codes, the
  decision id and, for a step-up, the ticket and where a human approves it.
* Lists (:func:`visible`): an item is listed unless a decision *without arguments* is certain to
  deny it. The check runs the compiled authorizer (no audit, no learning, as AuthZEN search does)
  with ``context.arguments`` absent, so a policy that reads the arguments errors and neither
  permits nor forbids: an item is listed when a permit holds, or when no forbid holds and a permit
  errored (it may hold for some arguments). Quarantined, unknown and inactive identities see
  nothing. For a delegated caller every party of the chain must pass that check (the subject's
  rights and each actor's both apply, as :mod:`vigil.delegation` decides calls), with
  ``context.vigil.delegation`` and ``context.vigil.actor`` set. A list is a convenience for the
  agent; the call is where access is enforced (the token is verified there again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from vigil.delegation import delegated_vigil
from vigil.engine import Engine
from vigil.errors import ValueConversionError, VigilError
from vigil.model.decision import DecisionRecord
from vigil.policy.request_values import property_overlay, typed_context
from vigil.policy.values import EntityUid, Record, make_set

# JSON-RPC error codes (JSON-RPC 2.0 §5.1: -32000..-32099 are the implementation's own)
DENIED: Final = -32001
"""The call was decided and denied: ``data`` carries the reason codes (and any ticket)."""
UNAVAILABLE: Final = -32002
"""The upstream that serves the item cannot be reached: nothing was forwarded."""
INVALID_PARAMS: Final = -32602
"""JSON-RPC's own: the request's params are malformed (unknown tool name, bad arguments)."""

TOOL_ACTION: Final = "call_tool"
RESOURCE_ACTION: Final = "read_resource"
PROMPT_ACTION: Final = "get_prompt"
ANNOTATIONS: Final = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
_ESCAPES: Final = frozenset({"__entity", "__extn", "__expr"})
_MAX_INT: Final = 2**63 - 1
_MIN_INT: Final = -(2**63)
_MAX_DEPTH: Final = 32
_NEUTRAL_VIGIL: Final = Record({"risk": 0, "signals": make_set(())})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, over which session. ``actors``: the delegation chain of the caller's token
    (the current actor first; empty when the subject calls for itself); ``token``: the JWT each
    decision is backed by (``Engine.decide(..., token=)``: verified again, its chain checked
    link by link), None for a caller authenticated otherwise (a static token)."""

    subject: EntityUid
    session: str = ""
    client: str = ""
    client_version: str = ""
    ip: str | None = None
    actors: tuple[EntityUid, ...] = ()
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Item:
    """A tool, resource or prompt of an upstream, under the name the gateway publishes."""

    kind: str  # "Tool", "Resource" or "Prompt"
    name: str  # the published name: "NAME.tool", "NAME:uri", "NAME.prompt"
    annotations: Mapping[str, bool]

    @property
    def action(self) -> str:
        return _ACTIONS[self.kind]


_ACTIONS: Final = {"Tool": TOOL_ACTION, "Resource": RESOURCE_ACTION, "Prompt": PROMPT_ACTION}


def annotations_of(raw: Mapping[str, Any] | None) -> dict[str, bool]:
    """The boolean hints of an MCP ``ToolAnnotations`` object (others are ignored)."""
    if not raw:
        return {}
    return {k: v for k in ANNOTATIONS if type(v := raw.get(k)) is bool}


def check_arguments(arguments: Any) -> dict[str, Any]:
    """``arguments`` as a JSON object Cedar can hold; raises ValueConversionError naming the first
    argument it cannot (null, float, an integer beyond 64 bits, an escape key, too deep)."""
    if arguments is None:
        return {}
    if type(arguments) is not dict:
        raise ValueConversionError("'arguments' must be an object")
    _check(arguments, "arguments", 0)
    return arguments


def _check(value: Any, where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ValueConversionError(f"{where!r} is nested more than {_MAX_DEPTH} levels")
    t = type(value)
    if t is str or t is bool:
        return
    if t is int:
        if not _MIN_INT <= value <= _MAX_INT:
            raise ValueConversionError(f"{where!r} is an integer outside Cedar's 64-bit range")
        return
    if t is list:
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]", depth + 1)
        return
    if t is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise ValueConversionError(f"{where!r} has a key that is not a string")
            if key in _ESCAPES:
                raise ValueConversionError(f"{where}.{key!s} is a Cedar escape key, refused in arguments")
            _check(item, f"{where}.{key}", depth + 1)
        return
    if value is None:
        raise ValueConversionError(f"{where!r} is null: Cedar has no null, the call is refused")
    if t is float:
        raise ValueConversionError(
            f"{where!r} is a float ({value!r}): Cedar has no floats, the call is refused"
        )
    raise ValueConversionError(f"{where!r} is a {t.__name__}: not a JSON value Cedar can hold")


def context_of(caller: Caller, method: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
    """The request context: ``arguments`` (when given), ``mcp``, ``user_agent``, ``ip``."""
    ctx: dict[str, Any] = {
        "mcp": {
            "session": caller.session,
            "client": caller.client,
            "client_version": caller.client_version,
            "method": method,
        },
    }
    if arguments is not None:
        ctx["arguments"] = arguments
    if caller.client:
        ctx["user_agent"] = (
            f"{caller.client}/{caller.client_version}" if caller.client_version else caller.client
        )
    if caller.ip:
        ctx["ip"] = caller.ip
    return ctx


def resource_properties(engine: Engine, item: Item) -> dict[str, Any] | None:
    """The item's annotations an upstream may add: those the workspace's entity does not declare."""
    if not item.annotations:
        return None
    entity = engine.workspace.policy_set.store.by_uid.get((item.kind, item.name))
    stored: Mapping[str, Any] = entity.attrs if entity is not None else {}
    props = {k: v for k, v in item.annotations.items() if k not in stored}
    return props or None


def call_request(
    engine: Engine, caller: Caller, item: Item, method: str, arguments: dict[str, Any] | None
) -> dict[str, Any]:
    """The AuthZEN evaluation request of one MCP call (arguments already checked)."""
    resource: dict[str, Any] = {"type": item.kind, "id": item.name}
    props = resource_properties(engine, item)
    if props is not None:
        resource["properties"] = props
    return {
        "subject": {"type": caller.subject[0], "id": caller.subject[1]},
        "action": {"name": item.action},
        "resource": resource,
        "context": context_of(caller, method, arguments),
    }


def decide_call(engine: Engine, caller: Caller, item: Item, method: str, arguments: Any) -> DecisionRecord:
    """Decide one call, backed by the caller's token when it has one; never raises. Arguments
    Cedar cannot hold are a deny ``invalid_request`` whose ``record.error`` names the argument;
    every outcome is audited by the engine."""
    try:
        checked = check_arguments(arguments)
    except VigilError as e:
        return engine.refuse(call_request(engine, caller, item, method, None), e)
    return engine.decide_item(call_request(engine, caller, item, method, checked), token=caller.token)


def denial(record: DecisionRecord, *, approve_hint: str = "") -> tuple[int, str, dict[str, Any]]:
    """``(code, message, data)`` of the JSON-RPC error for a denied call."""
    data: dict[str, Any] = {
        "decision": str(record.id),
        "reasons": list(record.reason_codes),
    }
    if record.advice:
        data["advice"] = list(record.advice)
    error = record.error
    if error is not None:
        data["error"] = dict(error)
    ticket = record.ticket
    message = "denied by vigil: " + ", ".join(record.reason_codes)
    if ticket is not None:
        tid = str(ticket["id"])
        data["ticket"] = {"id": tid, "expires": ticket.get("expires")}
        if approve_hint:
            data["ticket"]["approve"] = approve_hint.replace("{ticket}", tid)
        message += f"; a human can approve ticket {tid}, then retry the same call"
    elif error is not None:
        message += f": {error.get('message', '')}"
    return DENIED, message, data


# -- lists ------------------------------------------------------------------------------------
def visible(engine: Engine, caller: Caller, items: Sequence[Item]) -> list[Item]:
    """The items ``caller`` may call now, ignoring the arguments (see the module docstring)."""
    parties = (caller.subject, *caller.actors)
    ps = engine.workspace.policy_set
    by_uid = ps.store.by_uid
    for party in parties:
        if party not in by_uid or not engine.identity_active(party) or party in engine.quarantine:
            return []
        prof = engine.profiles.profiles.get(party)
        if prof is not None and prof.quarantined:
            return []
    reach = engine.workspace.reach
    # each party's context.vigil, as its decisions see it: its own escalation reach ([escalation]
    # reach), the delegation chain
    vigils = {}
    for party in parties:
        base = _NEUTRAL_VIGIL if reach is None else reach.vigil.get(party, _NEUTRAL_VIGIL)
        vigils[party] = delegated_vigil(base, caller.actors) if caller.actors else base
    schema = ps.schema
    authorizer = ps.authorizer
    overlay_rules = engine.workspace.settings.overlay
    action_type = _action_type(engine)
    contexts: dict[str, Record] = {}
    party_contexts: dict[tuple[str, EntityUid], Record] = {}
    out = []
    for item in items:
        action = (action_type, item.action)
        context = contexts.get(item.action)
        if context is None:
            try:
                context = typed_context(schema, action, context_of(caller, "list", None))
            except VigilError:
                return []
            contexts[item.action] = context
        uid = (item.kind, item.name)
        overlay = None
        props = resource_properties(engine, item)
        if props is not None:
            try:
                overlay, _ = property_overlay(
                    schema, by_uid, ((uid, props, "resource.properties"),), overlay_rules
                )
            except VigilError:
                continue  # a call would be refused the same way
        if all(
            _may_list(
                authorizer,
                p,
                action,
                uid,
                _party_context(party_contexts, item.action, p, context, vigils[p]),
                overlay or None,
            )
            for p in parties
        ):
            out.append(item)
    return out


def _party_context(
    cache: dict[tuple[str, EntityUid], Record], action: str, party: EntityUid, context: Record, vigil: Record
) -> Record:
    """``context`` with ``vigil`` as its ``context.vigil``: one copy per (action, party)."""
    key = (action, party)
    out = cache.get(key)
    if out is None:
        out = cache[key] = Record(context)
        out["vigil"] = vigil
    return out


def _may_list(
    authorizer: Any, party: EntityUid, action: EntityUid, uid: EntityUid, context: Record, overlay: Any
) -> bool:
    answer = authorizer.is_authorized(party, action, uid, context, overlay)
    if answer.allowed:
        return True  # a forbid that errored reads the arguments: decided at the call
    # no forbid holds and a permit could apply: it reads the arguments
    return not answer.policies and any(not e.forbid for e in answer.errors)


def _action_type(engine: Engine) -> str:
    schema = engine.workspace.policy_set.schema
    if schema is None:
        return "Action"
    types = {uid[0] for uid in schema.actions}
    return types.pop() if len(types) == 1 else "Action"
