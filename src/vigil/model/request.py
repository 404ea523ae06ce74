"""An access request, parsed strictly from an AuthZEN evaluation request.

AuthZEN mapping (ARCHITECTURE section 4): ``subject {type, id, properties}`` -> principal
``type::"id"``; ``action.name`` -> ``Action::"name"``; ``resource`` likewise; ``context`` -> the
Cedar context; ``action.properties`` -> ``context.action_properties``. ``properties`` overlay the
stored attributes of that entity for this call only.
"""

from __future__ import annotations

from typing import Any, Final

from vigil.errors import RequestError

MAX_ID: Final = 1024
MAX_TYPE: Final = 256


class AccessRequest:
    """One request: entity uids, raw JSON context and raw property overlays (not yet typed)."""

    __slots__ = (
        "action",
        "action_properties",
        "context",
        "principal",
        "resource",
        "resource_properties",
        "subject_properties",
    )
    principal: tuple[str, str]
    action: tuple[str, str]
    resource: tuple[str, str]
    context: dict[str, Any]
    subject_properties: dict[str, Any] | None
    resource_properties: dict[str, Any] | None
    action_properties: dict[str, Any] | None

    def __init__(
        self,
        principal: tuple[str, str],
        action: tuple[str, str],
        resource: tuple[str, str],
        context: dict[str, Any],
        subject_properties: dict[str, Any] | None = None,
        resource_properties: dict[str, Any] | None = None,
        action_properties: dict[str, Any] | None = None,
    ) -> None:
        _fill(
            self,
            principal,
            action,
            resource,
            context,
            subject_properties,
            resource_properties,
            action_properties,
        )


_EMPTY: Final[dict[str, Any]] = {}
ACTIONS_CACHED: Final = 4_096
# One shared uid tuple per action name (per action type): the tables later lookups use (candidate
# policies, action classes) hold these same objects, so a lookup matches by identity instead of
# comparing two tuples of strings. Bounded: past the cap, names get fresh tuples.
_ACTIONS: dict[str, dict[str, tuple[str, str]]] = {}


def action_uid(action_type: str, name: str) -> tuple[str, str]:
    """``(action_type, name)``, the same tuple object for the same action while the cache has room."""
    by_name = _ACTIONS.get(action_type)
    if by_name is None:
        if len(_ACTIONS) >= 64:
            return (action_type, name)
        by_name = _ACTIONS[action_type] = {}
    uid = by_name.get(name)
    if uid is None:
        uid = (action_type, name)
        if len(by_name) < ACTIONS_CACHED:
            by_name[name] = uid
    return uid


def parse_authzen(request: Any, action_type: str = "Action") -> AccessRequest:
    """Parse an AuthZEN evaluation request; raises RequestError (``invalid_request``) when malformed."""
    # Fast path for the well-formed common case (typed dict reads when compiled); anything unusual
    # goes through the checked path, which produces the precise error.
    if type(request) is dict:
        body = request
        subject = body.get("subject")
        action = body.get("action")
        resource = body.get("resource")
        context = body.get("context", _EMPTY)
        if (
            type(subject) is dict
            and type(action) is dict
            and type(resource) is dict
            and type(context) is dict
        ):
            s = subject
            a = action
            r = resource
            stype = s.get("type")
            sid = s.get("id")
            name = a.get("name")
            rtype = r.get("type")
            rid = r.get("id")
            # the sums bound each id and type more tightly than the checked path does, which
            # handles anything longer
            if (
                type(sid) is str
                and type(rid) is str
                and type(name) is str
                and type(stype) is str
                and type(rtype) is str
                and stype
                and name
                and rtype
                and len(sid) + len(rid) + len(name) <= MAX_ID
                and len(stype) + len(rtype) <= MAX_TYPE
                and "properties" not in s
                and "properties" not in r
                and "properties" not in a
            ):
                return _new_request((stype, sid), action_uid(action_type, name), (rtype, rid), context)
    return _parse_checked(request, action_type)


def _new_request(
    principal: tuple[str, str], action: tuple[str, str], resource: tuple[str, str], context: dict[str, Any]
) -> AccessRequest:
    """``AccessRequest(principal, action, resource, context)`` without property overlays; compiled,
    a C call and struct writes instead of a Python-level ``__init__`` call."""
    req: AccessRequest = AccessRequest.__new__(AccessRequest)
    _fill(req, principal, action, resource, context, None, None, None)
    return req


def _fill(
    req: AccessRequest,
    principal: tuple[str, str],
    action: tuple[str, str],
    resource: tuple[str, str],
    context: dict[str, Any],
    subject_properties: dict[str, Any] | None,
    resource_properties: dict[str, Any] | None,
    action_properties: dict[str, Any] | None,
) -> None:
    """Every field of ``req``: the one place both constructors set them."""
    req.principal = principal
    req.action = action
    req.resource = resource
    req.context = context
    req.subject_properties = subject_properties
    req.resource_properties = resource_properties
    req.action_properties = action_properties


def _parse_checked(request: Any, action_type: str) -> AccessRequest:
    if type(request) is not dict:
        raise RequestError("request must be a JSON object")
    for field in ("subject", "action", "resource"):
        if field not in request:
            raise RequestError(f"request is missing the required field {field!r}")
    principal, sprops = parse_entity(request["subject"], "subject")
    res, rprops = parse_entity(request["resource"], "resource")
    name, aprops = parse_action(request["action"])
    context = request.get("context", _EMPTY)
    if context is None:
        context = _EMPTY
    elif type(context) is not dict:
        raise RequestError("'context' must be an object")
    return AccessRequest(principal, (action_type, name), res, context, sprops, rprops, aprops or None)


def parse_action(value: Any) -> tuple[str, dict[str, Any] | None]:
    """An AuthZEN ``{name, properties}`` action as (name, properties); raises RequestError."""
    if type(value) is not dict:
        raise RequestError("'action' must be an object with a 'name'")
    name = value.get("name")
    if type(name) is not str or not name or len(name) > MAX_ID:
        raise RequestError("'action.name' must be a non-empty string")
    props = value.get("properties")
    if props is not None and type(props) is not dict:
        raise RequestError("'action.properties' must be an object")
    return name, (props or None)


def parse_entity(value: Any, field: str) -> tuple[tuple[str, str], dict[str, Any] | None]:
    """An AuthZEN ``{type, id, properties}`` object as (uid, properties); raises RequestError."""
    if type(value) is not dict:
        raise RequestError(f"{field!r} must be an object with 'type' and 'id'")
    etype = value.get("type")
    eid = value.get("id")
    if type(etype) is not str or not etype or len(etype) > MAX_TYPE:
        raise RequestError(f"'{field}.type' must be a non-empty string")
    if type(eid) is not str or len(eid) > MAX_ID:
        raise RequestError(f"'{field}.id' must be a string of at most {MAX_ID} characters")
    props = value.get("properties")
    if props is not None and type(props) is not dict:
        raise RequestError(f"'{field}.properties' must be an object")
    return (etype, eid), (props or None)
