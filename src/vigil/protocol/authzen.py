"""AuthZEN Authorization API 1.0: request bodies, batch semantics and response shapes.

Framework-free, so it is tested without a server; ``vigil.server`` only moves bytes in and out.
Sections cite the spec (https://openid.net/specs/authorization-api-1_0.html):

- §6 Access Evaluation: :func:`evaluation` -> ``{"decision", "context"}``.
- §7 Access Evaluations: :func:`evaluations`; top-level ``subject``/``action``/``resource``/
  ``context`` are defaults that an item's own key replaces whole (§7.1.1, no merging);
  ``options.evaluations_semantic`` (§7.1.2.1) is ``execute_all`` (default), ``deny_on_first_deny``
  or ``permit_on_first_permit``; an item that cannot be decided is ``decision: false`` with
  ``context.error`` = ``{"code", "message"}`` (§7.2.1) and the batch goes on.
- §9 Metadata: :func:`metadata`.
- §10.1 transport: :func:`parse_body` (an object, valid JSON, UTF-8, the right content type).

Every response ``context`` is the engine's: ``{id, reason_codes, risk, signals, advice}``.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from vigil.engine import Engine
from vigil.errors import RequestError, VigilError
from vigil.model.decision import DecisionRecord

EXECUTE_ALL: Final = "execute_all"
DENY_ON_FIRST_DENY: Final = "deny_on_first_deny"
PERMIT_ON_FIRST_PERMIT: Final = "permit_on_first_permit"
SEMANTICS: Final = (EXECUTE_ALL, DENY_ON_FIRST_DENY, PERMIT_ON_FIRST_PERMIT)

EVALUATION_PATH: Final = "/access/v1/evaluation"
EVALUATIONS_PATH: Final = "/access/v1/evaluations"
SEARCH_SUBJECT_PATH: Final = "/access/v1/search/subject"
SEARCH_RESOURCE_PATH: Final = "/access/v1/search/resource"
SEARCH_ACTION_PATH: Final = "/access/v1/search/action"
METADATA_PATH: Final = "/.well-known/authzen-configuration"

_DEFAULT_KEYS: Final = ("subject", "action", "resource", "context")


class ContentTypeError(RequestError):
    """A body sent without ``Content-Type: application/json`` (§10.1: 400, as certification asks)."""

    code = "invalid_content_type"


class JsonError(RequestError):
    """A body that is not valid JSON (or not UTF-8)."""

    code = "invalid_json"


def is_json_content_type(value: bytes | None) -> bool:
    """Whether a ``Content-Type`` header value is ``application/json`` (parameters such as
    ``charset`` allowed, case-insensitive). Returns False for a missing header."""
    if value == b"application/json":
        return True
    if not value:
        return False
    media = value.split(b";", 1)[0].strip().lower()
    return media == b"application/json"


def parse_body(body: bytes, content_type: bytes | None) -> dict[str, Any]:
    """The JSON object of a request body.

    Raises ContentTypeError (``invalid_content_type``) when the content type is not JSON, JsonError
    (``invalid_json``) for an empty body, malformed JSON or invalid UTF-8 (lone surrogates
    included), and RequestError (``invalid_request``) when the top level is not an object.
    """
    if not is_json_content_type(content_type):
        raise ContentTypeError("content type must be 'application/json'")
    if not body:
        raise JsonError("request body is empty")
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise JsonError(f"request body is not valid JSON: {_one_line(str(e))}") from None
    if type(obj) is not dict:
        raise RequestError("request body must be a JSON object")
    return obj


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


# -- §6 access evaluation -------------------------------------------------------------------------
def evaluation(engine: Engine, request: dict[str, Any]) -> tuple[dict[str, Any], DecisionRecord]:
    """One decision as the AuthZEN response ``{"decision", "context"}``, with its record.

    Raises RequestError (400) for a request the engine cannot parse; nothing is decided then.
    """
    request, token = take_token(request)
    record = engine.decide(request, token=token)
    return record.to_authzen(), record


def take_token(request: Any) -> tuple[Any, str | None]:
    """``(request without it, token)`` when ``subject.properties.token`` carries a token (a JWT
    vigil verifies; the subject must be the token's), else ``(request, None)``. The request is
    copied, never changed. Raises RequestError when the token is not a string."""
    subject = request.get("subject") if type(request) is dict else None
    props = subject.get("properties") if type(subject) is dict else None
    if type(props) is not dict or "token" not in props:
        return request, None
    token = props["token"]
    if type(token) is not str:
        raise RequestError("'subject.properties.token' must be a string (a JWT)")
    rest = {k: v for k, v in props.items() if k != "token"}
    subject = {k: v for k, v in subject.items() if k != "properties"}  # type: ignore[union-attr]
    if rest:
        subject["properties"] = rest
    return {**request, "subject": subject}, token


# -- §7 access evaluations ------------------------------------------------------------------------
def semantic_of(request: dict[str, Any]) -> str:
    """The batch's ``options.evaluations_semantic`` (default ``execute_all``).

    Raises RequestError when ``options`` is not an object or the semantic is not one of the three.
    """
    options = request.get("options")
    if options is None:
        return EXECUTE_ALL
    if type(options) is not dict:
        raise RequestError("'options' must be an object")
    semantic = options.get("evaluations_semantic", EXECUTE_ALL)
    if semantic not in SEMANTICS:
        raise RequestError(f"'options.evaluations_semantic' must be one of {', '.join(SEMANTICS)}")
    return str(semantic)


def evaluations(
    engine: Engine, request: dict[str, Any], *, max_items: int = 1000
) -> tuple[dict[str, Any], list[DecisionRecord]]:
    """A batch (§7) as ``{"evaluations": [...]}`` with the records decided, in request order.

    An absent or empty ``evaluations`` behaves as one evaluation (§7.1) and returns a single
    ``{"decision", "context"}``. Raises RequestError (400) when ``evaluations`` is not an array or
    ``options`` is invalid, VigilError ``request_too_large`` (413) past ``max_items`` items, and,
    for the single form, whatever :func:`evaluation` raises. A malformed item is a deny in place
    (``invalid_request``), and so is an item whose decision fails unexpectedly (``internal_error``).
    """
    items = request.get("evaluations")
    semantic = semantic_of(request)
    if items is None or (type(items) is list and not items):
        single, record = evaluation(engine, request)
        return single, [record]
    if type(items) is not list:
        raise RequestError("'evaluations' must be an array")
    if len(items) > max_items:
        raise VigilError(
            f"at most {max_items} evaluations in one request, got {len(items)}", code="request_too_large"
        )
    defaults = {k: request[k] for k in _DEFAULT_KEYS if k in request}
    out: list[dict[str, Any]] = []
    records: list[DecisionRecord] = []
    decide_item = engine.decide_item  # never raises: a bad or failing item is a deny in place
    stop_on = (
        False if semantic == DENY_ON_FIRST_DENY else True if semantic == PERMIT_ON_FIRST_PERMIT else None
    )
    for item in items:
        if type(item) is dict:
            try:
                merged, token = take_token({**defaults, **item} if defaults else item)
            except RequestError:
                record = decide_item(None)  # a malformed item: an invalid_request deny in place
            else:
                record = decide_item(merged, token=token)
        else:
            record = decide_item(item)
        out.append(record.to_authzen())
        records.append(record)
        if stop_on is not None and record.allowed is stop_on:
            break
    return {"evaluations": out}, records


# -- §9 metadata ----------------------------------------------------------------------------------
def metadata(pdp: str) -> dict[str, Any]:
    """The PDP metadata document (§9.1.1) for the PDP identifier ``pdp`` (its base URL)."""
    base = pdp.rstrip("/")
    return {
        "policy_decision_point": base,
        "access_evaluation_endpoint": base + EVALUATION_PATH,
        "access_evaluations_endpoint": base + EVALUATIONS_PATH,
        "search_subject_endpoint": base + SEARCH_SUBJECT_PATH,
        "search_resource_endpoint": base + SEARCH_RESOURCE_PATH,
        "search_action_endpoint": base + SEARCH_ACTION_PATH,
    }
