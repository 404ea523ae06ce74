"""The OpenAPI 3.1 description of every endpoint (served at ``/openapi.json``).

Written by hand from the AuthZEN 1.0 shapes so it says what the server really accepts; the
schemathesis test (``tests/test_server_openapi.py``) checks the running server against it.
"""

from __future__ import annotations

from typing import Any

from vigil import __version__

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}},
        "content": {"application/json": {"schema": schema}},
    }


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Malformed request: wrong or missing content type, invalid JSON (a repeated key included), not an object, a missing or mistyped field, a repeated identity header, an ext_authz path with an encoded slash or a dot segment",
        401: "Missing or invalid API key",
        403: "Denied (ext_authz)",
        413: "Request body or batch too large",
        404: "No such ticket, identity, key or binding, or the identity is not quarantined",
        409: "The ticket is already decided or expired; the identity's state refuses the change",
        422: "Workspace refused (reload)",
        503: "Not ready, the state store did not answer in time (store_unavailable), or (an operator change with [audit] required) the audit log cannot record it (audit_unavailable)",
    }
    return {str(s): _json(_ref("Error"), text[s]) for s in statuses}


def _post(
    summary: str, request: str, response: dict[str, Any], op_id: str, *, security: str
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": op_id,
            "summary": summary,
            "security": [{security: []}],
            "parameters": [{"$ref": "#/components/parameters/X-Request-ID"}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
            "responses": {"200": _json(response, "Success"), **_errors(400, 401, 413)},
        }
    }


def _admin_post(summary: str, request: str, response: dict[str, Any], op_id: str) -> dict[str, Any]:
    op = _post(summary, request, response, op_id, security="admin_key")
    op["post"]["responses"].update(_errors(404, 409, 503))
    return op


def _changes_op() -> dict[str, Any]:
    op = _get(
        "Who changed approvals and quarantines, when (newest first, paged)",
        _ref("Changes"),
        "admin_changes",
        security="admin_key",
    )
    get = op["get"]
    get["parameters"] = [
        *get["parameters"],
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
        {"name": "before", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
    ]
    get["responses"].update(_errors(400, 503))
    return op


def _entities_ops() -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for method, summary, request, op_id in (
        (
            "put",
            "Put Cedar entities in, replacing those with the same uid (atomic, audited)",
            "EntitiesPut",
            "admin_entities_put",
        ),
        ("delete", "Take entities out by uid (atomic, audited)", "EntitiesDelete", "admin_entities_delete"),
    ):
        op = _post(summary, request, _ref("EntitiesChanged"), op_id, security="admin_key")["post"]
        op["description"] = (
            "Applied without a reload and seen by the next decision; the whole batch is checked first: "
            "a bad item answers 400 `invalid_entities` with its `index` and `field`, and nothing changes. "
            "In memory: a reload reads the workspace's files again."
        )
        op["responses"].update(_errors(503))
        ops[method] = op
    return ops


def _get(
    summary: str, response: dict[str, Any], op_id: str, *, security: str | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "parameters": [{"$ref": "#/components/parameters/X-Request-ID"}],
        "responses": {"200": _json(response, "Success")},
    }
    if security is not None:
        op["security"] = [{security: []}]
        op["responses"].update(_errors(401, 503) if security == "admin_key" else _errors(401))
    else:
        op["security"] = []
    return {"get": op}


_UID_PARAM: dict[str, Any] = {
    "name": "uid",
    "in": "path",
    "required": True,
    "description": "The identity's entity uid, percent-encoded as one segment (Agent::%22name%22)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 2048},
}


def _identity_op(summary: str, op_id: str, request: str | None) -> dict[str, Any]:
    """An operation on ``/admin/v1/identities/{uid}...``: GET without a body, POST with ``request``."""
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "security": [{"admin_key": []}],
        "parameters": [_UID_PARAM, {"$ref": "#/components/parameters/X-Request-ID"}],
        "responses": {
            "200": _json(_ref("Identity"), "The identity's record after the change"),
            **_errors(400, 401, 404, 503),
        },
    }
    if request is None:
        return {"get": op}
    op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(request)}}}
    op["responses"].update(_errors(409, 413))
    return {"post": op}


def _identities_ops() -> dict[str, Any]:
    get = _get("Registered identities", _ref("Identities"), "admin_identities", security="admin_key")
    get["get"]["parameters"] = [
        *get["get"]["parameters"],
        {
            "name": "status",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["active", "suspended", "retired", "expired"]},
        },
    ]
    get["get"]["responses"].update(_errors(400))
    post = _admin_post(
        "Register an identity (audited with `by`)", "IdentityAdd", _ref("Identity"), "admin_identity_add"
    )
    return {**get, **post}


def _identity_report_op() -> dict[str, Any]:
    op = _get(
        "The registry's hygiene report", _ref("IdentityReport"), "admin_identity_report", security="admin_key"
    )
    days = {"type": "integer", "minimum": 1, "maximum": 36500}
    op["get"]["parameters"] = [
        *op["get"]["parameters"],
        {"name": "unused_days", "in": "query", "required": False, "schema": days},
        {"name": "key_age_days", "in": "query", "required": False, "schema": days},
    ]
    op["get"]["responses"].update(_errors(400))
    return op


def _entity(id_required: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "id"] if id_required else ["type"],
        "properties": {
            "type": {"type": "string", "minLength": 1, "maxLength": 256},
            "id": {"type": "string", "maxLength": 1024},
            "properties": _ref("Attributes"),
        },
    }


def openapi_document(*, echo: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``echo`` adds the benchmark's echo endpoint."""
    action = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 1024},
            "properties": _ref("Attributes"),
        },
    }
    context = _ref("Attributes")
    page_request = {
        "type": "object",
        "properties": {"token": {"type": "string"}, "limit": {"type": "integer", "minimum": 0}},
    }
    schemas: dict[str, Any] = {
        # Values with a Cedar equivalent: no null, no fractions, 64-bit integers (see docs/http.md).
        "CedarValue": {
            "anyOf": [
                {"type": "string", "maxLength": 65536},
                {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
                {"type": "boolean"},
                {"type": "array", "items": _ref("CedarValue")},
                {"type": "object", "additionalProperties": _ref("CedarValue")},
            ]
        },
        "Attributes": {"type": "object", "additionalProperties": _ref("CedarValue")},
        "Entity": _entity(True),
        "SearchedEntity": _entity(False),
        "Action": action,
        "EvaluationRequest": {
            "type": "object",
            "required": ["subject", "action", "resource"],
            "properties": {
                "subject": _ref("Entity"),
                "action": _ref("Action"),
                "resource": _ref("Entity"),
                "context": context,
            },
        },
        "EvaluationItem": {
            "type": "object",
            "properties": {
                "subject": _ref("Entity"),
                "action": _ref("Action"),
                "resource": _ref("Entity"),
                "context": context,
            },
        },
        "EvaluationsRequest": {
            "type": "object",
            "properties": {
                "subject": _ref("Entity"),
                "action": _ref("Action"),
                "resource": _ref("Entity"),
                "context": context,
                "evaluations": {"type": "array", "items": _ref("EvaluationItem"), "maxItems": 1000},
                "options": {
                    "type": "object",
                    "properties": {
                        "evaluations_semantic": {
                            "type": "string",
                            "enum": ["execute_all", "deny_on_first_deny", "permit_on_first_permit"],
                        }
                    },
                },
            },
        },
        "DecisionContext": {
            # what a PEP sees (docs/http.md "What a PEP sees"): never explanations
            "type": "object",
            "required": ["id", "reason_codes", "advice"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "reason_codes": {"type": "array", "items": {"type": "string"}},
                "advice": {"type": "array", "items": {"type": "string"}},
                "error": {"type": "object", "required": ["code", "message"]},
                "ticket": {
                    "type": "object",
                    "required": ["id", "expires", "approve"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string"},
                        "expires": {"type": "string"},
                        "approve": {"type": "string"},
                    },
                },
            },
        },
        "Decision": {
            "type": "object",
            "required": ["decision", "context"],
            "properties": {"decision": {"type": "boolean"}, "context": _ref("DecisionContext")},
        },
        "EvaluationsResponse": {
            "anyOf": [
                {
                    "type": "object",
                    "required": ["evaluations"],
                    "properties": {"evaluations": {"type": "array", "items": _ref("Decision")}},
                },
                _ref("Decision"),
            ]
        },
        "SubjectSearchRequest": {
            "type": "object",
            "required": ["subject", "action", "resource"],
            "properties": {
                "subject": _ref("SearchedEntity"),
                "action": _ref("Action"),
                "resource": _ref("Entity"),
                "context": context,
                "page": page_request,
            },
        },
        "ResourceSearchRequest": {
            "type": "object",
            "required": ["subject", "action", "resource"],
            "properties": {
                "subject": _ref("Entity"),
                "action": _ref("Action"),
                "resource": _ref("SearchedEntity"),
                "context": context,
                "page": page_request,
            },
        },
        "ActionSearchRequest": {
            "type": "object",
            "required": ["subject", "resource"],
            "properties": {
                "subject": _ref("Entity"),
                "resource": _ref("Entity"),
                "context": context,
                "page": page_request,
            },
        },
        "PageResponse": {
            "type": "object",
            "required": ["next_token"],
            "properties": {
                "next_token": {"type": "string"},
                "count": {"type": "integer", "minimum": 0},
                "total": {"type": "integer", "minimum": 0},
            },
        },
        "EntitySearchResponse": {
            "type": "object",
            "required": ["results"],
            "properties": {
                "page": _ref("PageResponse"),
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "id"],
                        "properties": {"type": {"type": "string"}, "id": {"type": "string"}},
                    },
                },
            },
        },
        "ActionSearchResponse": {
            "type": "object",
            "required": ["results"],
            "properties": {
                "page": _ref("PageResponse"),
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}},
                    },
                },
            },
        },
        "Metadata": {
            "type": "object",
            "required": ["policy_decision_point", "access_evaluation_endpoint"],
            "properties": {
                k: {"type": "string"}
                for k in (
                    "policy_decision_point",
                    "access_evaluation_endpoint",
                    "access_evaluations_endpoint",
                    "search_subject_endpoint",
                    "search_resource_endpoint",
                    "search_action_endpoint",
                )
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
        "Reload": {
            "type": "object",
            "required": ["ok", "revision", "restart_needed"],
            "properties": {
                "ok": {"type": "boolean"},
                "revision": {"type": "string"},
                "restart_needed": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "changed settings (section.key) that take effect only after a restart",
                },
            },
        },
        "Status": {
            "type": "object",
            "required": ["policy_revision", "policies", "compiled", "fallbacks", "entities"],
            "properties": {
                "policy_revision": {"type": "string"},
                "policies": {"type": "integer"},
                "compiled": {"type": "integer"},
                "fallbacks": {"type": "array", "items": {"type": "object"}},
                "entities": {"type": "integer"},
                "reloads": {"type": "integer"},
                "audit_dropped": {"type": "integer"},
            },
        },
        "Stats": {
            "type": "object",
            "required": ["last_minute", "since_start", "engine_latency_us"],
            "properties": {
                "last_minute": {"type": "object"},
                "since_start": {"type": "object"},
                "engine_latency_us": {"type": "object"},
            },
        },
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        "TicketDecision": {
            "type": "object",
            "required": ["ticket", "by"],
            "properties": {
                "ticket": {"type": "string", "minLength": 1, "maxLength": 128},
                "by": {"type": "string", "minLength": 1, "maxLength": 128},
                "note": {"type": "string", "maxLength": 1024},
                # approve only: how many requests from the ticket's bound context it lets through
                "uses": {"type": "integer", "minimum": 1, "maximum": 10_000},
            },
        },
        "Ticket": {"type": "object", "required": ["id", "state", "subject", "action", "resource", "expires"]},
        "Tickets": {"type": "object", "required": ["tickets"], "properties": {"tickets": {"type": "array"}}},
        "QuarantineAdd": {
            "type": "object",
            "required": ["subject", "by"],
            "properties": {
                "subject": {"type": "object"},
                "by": {"type": "string", "minLength": 1, "maxLength": 128},
                "reason": {"type": "string", "maxLength": 1024},
            },
        },
        "QuarantineLift": {
            "type": "object",
            "required": ["subject", "by"],
            "properties": {
                "subject": {"type": "object"},
                "by": {"type": "string", "minLength": 1, "maxLength": 128},
                "note": {"type": "string", "maxLength": 1024},
            },
        },
        "QuarantineEntry": {"type": "object", "required": ["subject", "since", "by", "reason"]},
        "Quarantined": {
            "type": "object",
            "required": ["quarantined"],
            "properties": {"quarantined": {"type": "array"}},
        },
        "IdentityAdd": {
            "type": "object",
            "required": ["uid", "owner", "purpose", "by"],
            "additionalProperties": False,
            "properties": {
                "uid": {"type": "string", "description": 'Agent::"name"'},
                "owner": {"type": "string", "description": "the owner's email address"},
                "purpose": {"type": "string"},
                "by": {"type": "string"},
                "kind": {"type": "string"},
                "expires": {"type": "string", "description": "YYYY-MM-DD, RFC 3339 or <N>d"},
                "public_key": {"type": ["object", "string"], "description": "a public JWK, or PEM text"},
            },
        },
        "IdentityStatusChange": {
            "type": "object",
            "required": ["by"],
            "additionalProperties": False,
            "properties": {"by": {"type": "string"}, "reason": {"type": "string"}},
        },
        "IdentityKeyAdd": {
            "type": "object",
            "required": ["by", "key"],
            "additionalProperties": False,
            "properties": {"by": {"type": "string"}, "key": {"type": ["object", "string"]}},
        },
        "IdentityKeyRemove": {
            "type": "object",
            "required": ["by", "kid"],
            "additionalProperties": False,
            "properties": {"by": {"type": "string"}, "kid": {"type": "string"}},
        },
        "TokenRevoke": {
            "type": "object",
            "required": ["by", "jti"],
            "additionalProperties": False,
            "properties": {"by": {"type": "string"}, "jti": {"type": "string"}, "reason": {"type": "string"}},
        },
        "DelegationRevoke": {
            "type": "object",
            "required": ["by", "actor", "subject"],
            "additionalProperties": False,
            "properties": {
                "by": {"type": "string"},
                "actor": {"type": "string"},
                "subject": {"type": "string"},
                "reason": {"type": "string"},
            },
        },
        "ByOnly": {
            "type": "object",
            "required": ["by"],
            "additionalProperties": False,
            "properties": {"by": {"type": "string"}},
        },
        "IdentityBinding": {
            "type": "object",
            "required": ["by", "issuer", "subject"],
            "additionalProperties": False,
            "properties": {
                "by": {"type": "string"},
                "issuer": {"type": "string"},
                "subject": {"type": "string"},
            },
        },
        "Identity": {
            "type": "object",
            "required": [
                "uid",
                "subject",
                "status",
                "owner",
                "purpose",
                "kind",
                "created",
                "created_by",
                "expires",
                "status_since",
                "status_by",
                "status_reason",
                "last_used",
                "tokens_24h",
                "rotated",
                "keys",
                "bindings",
            ],
            "properties": {
                "uid": {"type": "string"},
                "subject": {"type": "object", "required": ["type", "id"]},
                "status": {"type": "string", "enum": ["active", "suspended", "retired", "expired"]},
                "owner": {"type": "string"},
                "purpose": {"type": "string"},
                "kind": {"type": "string"},
                "created": {"type": "string"},
                "created_by": {"type": "string"},
                "expires": {"type": ["string", "null"]},
                "status_since": {"type": "string"},
                "status_by": {"type": "string"},
                "status_reason": {"type": "string"},
                "last_used": {"type": ["string", "null"]},
                "tokens_24h": {"type": "integer", "minimum": 0},
                "rotated": {"type": ["string", "null"]},
                "keys": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["kid", "key", "jwk", "added", "by", "age_days"],
                        "properties": {"kid": {"type": "string"}, "jwk": {"type": "object"}},
                    },
                },
                "bindings": {
                    "type": "array",
                    "items": {"type": "object", "required": ["issuer", "subject", "added", "by"]},
                },
            },
        },
        "Identities": {
            "type": "object",
            "required": ["identities"],
            "properties": {"identities": {"type": "array", "items": _ref("Identity")}},
        },
        "IdentityReport": {
            "type": "object",
            "required": ["time", "unused_days", "key_age_days", "types", "totals", "identities"],
            "properties": {
                "totals": {"type": "object"},
                "identities": {"type": "array", "items": {"type": "object", "required": ["uid", "findings"]}},
            },
        },
        "EntitiesPut": {
            "type": "object",
            "required": ["entities"],
            "additionalProperties": False,
            "properties": {
                "entities": {
                    "type": "array",
                    "maxItems": 10000,
                    "items": {
                        "type": "object",
                        "description": "Cedar entity JSON: uid, attrs, parents, tags",
                    },
                },
                "by": {"type": "string", "description": "who (default: the admin key's name)"},
            },
        },
        "EntitiesDelete": {
            "type": "object",
            "required": ["uids"],
            "additionalProperties": False,
            "properties": {
                "uids": {
                    "type": "array",
                    "maxItems": 10000,
                    "items": {
                        "type": "object",
                        "required": ["type", "id"],
                        "properties": {"type": {"type": "string"}, "id": {"type": "string"}},
                    },
                },
                "by": {"type": "string", "description": "who (default: the admin key's name)"},
            },
        },
        "EntitiesChanged": {
            "type": "object",
            "required": ["upserted", "deleted", "entities", "changes", "revision"],
            "properties": {
                "upserted": {"type": "integer"},
                "deleted": {
                    "type": "integer",
                    "description": "uids that were there (absent ones are no error)",
                },
                "entities": {"type": "integer", "description": "entities now"},
                "changes": {
                    "type": "integer",
                    "description": "batches applied since the workspace was loaded",
                },
                "revision": {"type": "string", "description": "the loaded workspace's revision (unchanged)"},
            },
        },
        "Changes": {
            "type": "object",
            "required": ["changes", "next"],
            "properties": {
                "changes": {"type": "array"},
                "next": {"type": ["string", "null"], "description": "`before` of the next (older) page"},
            },
        },
    }
    ext_op = {
        "summary": "Envoy ext_authz (HTTP service): decide the original request at this path",
        "security": [{"ext_authz_key": []}],
        "parameters": [
            {
                "name": "path",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._~-]+$"},
            },
            {"$ref": "#/components/parameters/X-Request-ID"},
        ],
        "responses": {
            "200": _json(_ref("Decision"), "Allowed (x-vigil-decision-id, x-vigil-reason headers)"),
            **_errors(400, 401, 403),
        },
    }
    paths: dict[str, Any] = {
        "/access/v1/evaluation": _post(
            "AuthZEN access evaluation (§6)",
            "EvaluationRequest",
            _ref("Decision"),
            "evaluation",
            security="api_key",
        ),
        "/access/v1/evaluations": _post(
            "AuthZEN access evaluations, batch (§7)",
            "EvaluationsRequest",
            _ref("EvaluationsResponse"),
            "evaluations",
            security="api_key",
        ),
        "/access/v1/search/subject": _post(
            "AuthZEN subject search (§8.4)",
            "SubjectSearchRequest",
            _ref("EntitySearchResponse"),
            "search_subject",
            security="api_key",
        ),
        "/access/v1/search/resource": _post(
            "AuthZEN resource search (§8.5)",
            "ResourceSearchRequest",
            _ref("EntitySearchResponse"),
            "search_resource",
            security="api_key",
        ),
        "/access/v1/search/action": _post(
            "AuthZEN action search (§8.6)",
            "ActionSearchRequest",
            _ref("ActionSearchResponse"),
            "search_action",
            security="api_key",
        ),
        "/.well-known/authzen-configuration": _get("AuthZEN PDP metadata (§9)", _ref("Metadata"), "metadata"),
        "/admin/v1/reload": {
            "post": {
                "operationId": "admin_reload",
                "summary": "Reload the workspace atomically (the last good one stays on failure)",
                "security": [{"admin_key": []}],
                "parameters": [{"$ref": "#/components/parameters/X-Request-ID"}],
                "responses": {"200": _json(_ref("Reload"), "Reloaded"), **_errors(401, 422, 503)},
            }
        },
        "/admin/v1/status": _get("Engine status", _ref("Status"), "admin_status", security="admin_key"),
        "/admin/v1/stats": _get(
            "Recent decision statistics", _ref("Stats"), "admin_stats", security="admin_key"
        ),
        "/admin/v1/approvals": _get(
            "Approval tickets (all states)", _ref("Tickets"), "admin_approvals", security="admin_key"
        ),
        "/admin/v1/approvals/approve": _admin_post(
            "Approve a pending ticket (audited with `by`)", "TicketDecision", _ref("Ticket"), "admin_approve"
        ),
        "/admin/v1/approvals/deny": _admin_post(
            "Deny a pending ticket (audited with `by`)", "TicketDecision", _ref("Ticket"), "admin_deny"
        ),
        "/admin/v1/quarantine": _get(
            "Quarantined identities", _ref("Quarantined"), "admin_quarantine", security="admin_key"
        ),
        "/admin/v1/quarantine/add": _admin_post(
            "Quarantine an identity (audited with `by`)",
            "QuarantineAdd",
            _ref("QuarantineEntry"),
            "admin_quarantine_add",
        ),
        "/admin/v1/quarantine/lift": _admin_post(
            "Lift a quarantine (audited with `by`)",
            "QuarantineLift",
            _ref("QuarantineEntry"),
            "admin_quarantine_lift",
        ),
        "/admin/v1/changes": _changes_op(),
        "/admin/v1/entities": _entities_ops(),
        "/admin/v1/identities": _identities_ops(),
        "/admin/v1/identities/report": _identity_report_op(),
        "/admin/v1/identities/{uid}": _identity_op("One identity's record", "admin_identity", None),
        "/admin/v1/identities/{uid}/suspend": _identity_op(
            "Suspend an active identity (audited with `by`)", "admin_identity_suspend", "IdentityStatusChange"
        ),
        "/admin/v1/identities/{uid}/resume": _identity_op(
            "Resume a suspended identity (audited with `by`)", "admin_identity_resume", "IdentityStatusChange"
        ),
        "/admin/v1/identities/{uid}/retire": _identity_op(
            "Retire an identity for good (audited with `by`)", "admin_identity_retire", "IdentityStatusChange"
        ),
        "/admin/v1/identities/{uid}/keys": _identity_op(
            "Add a public key (JWK or PEM; audited with `by`)", "admin_identity_add_key", "IdentityKeyAdd"
        ),
        "/admin/v1/identities/{uid}/keys/remove": _identity_op(
            "Remove a public key (audited with `by`)", "admin_identity_remove_key", "IdentityKeyRemove"
        ),
        "/admin/v1/identities/{uid}/bindings": _identity_op(
            "Bind an external issuer + subject (audited with `by`)", "admin_identity_bind", "IdentityBinding"
        ),
        "/admin/v1/identities/{uid}/bindings/remove": _identity_op(
            "Remove a binding (audited with `by`)", "admin_identity_unbind", "IdentityBinding"
        ),
        "/.well-known/oauth-authorization-server": _get(
            "The token service's metadata (RFC 8414)", {"type": "object"}, "oauth_metadata"
        ),
        "/oauth2/jwks": _get("The public keys of vigil's tokens (JWK Set)", {"type": "object"}, "oauth_jwks"),
        "/oauth2/token": {
            "post": {
                "operationId": "oauth_token",
                "summary": "Issue a token: client_credentials with private_key_jwt, or token exchange (RFC 8693)",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                        }
                    },
                },
                "responses": {
                    "200": _json({"type": "object"}, "The token (RFC 6749 section 5.1)"),
                    "400": _json({"type": "object"}, "RFC 6749 section 5.2 error"),
                    "401": _json({"type": "object"}, "invalid_client"),
                    "503": _json({"type": "object"}, "Not issued: audit log or signing key unavailable"),
                },
            }
        },
        "/admin/v1/revocations": _get(
            "Revoked tokens and delegations", {"type": "object"}, "admin_revocations", security="admin_key"
        ),
        "/admin/v1/tokens/revoke": _admin_post(
            "Revoke a token by jti (audited with `by`)",
            "TokenRevoke",
            {"type": "object"},
            "admin_revoke_token",
        ),
        "/admin/v1/delegations/revoke": _admin_post(
            "Revoke a delegation: actor for subject (audited with `by`)",
            "DelegationRevoke",
            {"type": "object"},
            "admin_revoke_delegation",
        ),
        "/admin/v1/oauth/keys": _get(
            "The token service's signing keys", {"type": "object"}, "admin_oauth_keys", security="admin_key"
        ),
        "/admin/v1/oauth/rotate-key": _admin_post(
            "Rotate the signing key (audited with `by`)", "ByOnly", {"type": "object"}, "admin_oauth_rotate"
        ),
        "/healthz": _get("Liveness", _ref("Health"), "healthz"),
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness (503 while shutting down)",
                "security": [],
                "parameters": [{"$ref": "#/components/parameters/X-Request-ID"}],
                "responses": {"200": _json(_ref("Health"), "Ready"), **_errors(503)},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text exposition format)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": _get("This document", {"type": "object"}, "openapi"),
        "/ext_authz/{path}": {
            "get": {**ext_op, "operationId": "ext_authz_get"},
            "post": {**ext_op, "operationId": "ext_authz_post"},
            "put": {**ext_op, "operationId": "ext_authz_put"},
            "delete": {**ext_op, "operationId": "ext_authz_delete"},
        },
    }
    if echo:
        paths["/bench/echo"] = _post(
            "Benchmark floor: parse the JSON body and send it back",
            "EvaluationItem",
            {"type": "object"},
            "echo",
            security="api_key",
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vigil decision service",
            "version": __version__,
            "description": "AuthZEN Authorization API 1.0, Envoy ext_authz, admin and operations endpoints.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "api_key": {"type": "http", "scheme": "bearer", "description": "A key of VIGIL_API_KEYS"},
                "admin_key": {"type": "http", "scheme": "bearer", "description": "A key of VIGIL_ADMIN_KEYS"},
                "ext_authz_key": {"type": "apiKey", "in": "header", "name": "x-vigil-api-key"},
            },
            "parameters": {
                "X-Request-ID": {
                    "name": "X-Request-ID",
                    "in": "header",
                    "required": False,
                    "description": "Echoed when at most 128 characters of A-Za-z0-9._:/+=@-; "
                    "otherwise replaced by a generated id",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:/+=@-]{1,128}$"},
                }
            },
            "headers": {
                "X-Request-ID": {
                    "description": "Echo of the request's X-Request-ID",
                    "schema": {"type": "string"},
                }
            },
        },
    }
