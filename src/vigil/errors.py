"""One exception tree for vigil. Every error has a stable snake_case ``code``.

Transports map codes, never classes or messages: HTTP status via :data:`HTTP_STATUS`, CLI exit
status via :data:`EXIT_STATUS`. Messages are one line, lowercase, with user values quoted.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class VigilError(Exception):
    """Base of every error vigil raises on purpose."""

    code: ClassVar[str] = "vigil_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of this error: ``{"code", "message", **details}``."""
        return {"code": self.code, "message": self.message, **self.details}


class RequestError(VigilError):
    """A request that cannot be decided as sent (malformed, wrong types, too large)."""

    code = "invalid_request"


class ValueConversionError(RequestError):
    """A JSON value with no Cedar equivalent, or a malformed ``__extn``/``__entity`` escape."""

    code = "invalid_value"


class OverlayError(RequestError):
    """``subject.properties`` / ``resource.properties`` that ``[overlay]`` does not let a caller
    supply (``overlay_not_allowed``): a stored attribute replaced, or properties for a type that
    takes none. Nothing is decided."""

    code = "overlay_not_allowed"


class WorkspaceError(VigilError):
    """A workspace that cannot be activated; ``problems`` lists every file:line message."""

    code = "invalid_workspace"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message, problems=list(problems or []))
        self.problems = list(problems or [])


class EntityChangeError(VigilError):
    """A batch of entity changes that cannot be applied; nothing was changed. ``index`` and
    ``field`` name the first bad item (``entities[i]`` or ``uids[i]``) when there is one."""

    code = "invalid_entities"


class AuditError(VigilError):
    """An audit event could not be recorded where recording is required."""

    code = "audit_unavailable"


class NotFoundError(VigilError):
    """The approval ticket or quarantine named does not exist (``ticket_not_found``,
    ``not_quarantined``)."""

    code = "not_found"


class ConflictError(VigilError):
    """The operation does not apply to the current state (``ticket_closed``: the ticket was already
    decided or has expired)."""

    code = "conflict"


class IamExportError(VigilError):
    """An AWS IAM export (``get-account-authorization-details`` JSON) that cannot be read:
    not JSON, a wrong shape, a malformed policy document or ARN (``invalid_iam_export``). The
    message names the place (``$.UserDetailList[3].UserName``); nothing is analysed."""

    code = "invalid_iam_export"


class PrincipalNotFoundError(VigilError):
    """A principal or target named in an escalation query is not in the graph
    (``principal_not_found``)."""

    code = "principal_not_found"


class EscalationLimitError(VigilError):
    """Computing a workspace's escalation reach would decide more requests than
    ``[escalation] reach_max_checks`` allows (``escalation_too_large``); nothing is computed."""

    code = "escalation_too_large"


class ErrorCode(StrEnum):
    """The one error table: every code vigil raises or answers with, its HTTP status and its CLI exit
    status. A code that is not here is a bug (``tests/test_error_table.py`` scans the sources)."""

    http_status: int
    exit_status: int

    def __new__(cls, code: str, http_status: int, exit_status: int) -> ErrorCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.http_status = http_status
        member.exit_status = exit_status
        return member

    # bad input: nothing was decided or changed
    INVALID_REQUEST = ("invalid_request", 400, 2)
    INVALID_VALUE = ("invalid_value", 400, 2)
    INVALID_JSON = ("invalid_json", 400, 2)
    INVALID_TIME = ("invalid_time", 400, 2)
    OVERLAY_NOT_ALLOWED = ("overlay_not_allowed", 400, 2)
    INVALID_ARGUMENT = ("invalid_argument", 400, 2)
    INVALID_CONTENT_TYPE = ("invalid_content_type", 400, 2)
    INVALID_PAGE_TOKEN = ("invalid_page_token", 400, 2)
    REQUEST_TOO_LARGE = ("request_too_large", 413, 2)
    DUPLICATE_HEADER = ("duplicate_header", 400, 2)
    INVALID_PATH = ("invalid_path", 400, 2)
    # who is calling
    UNAUTHENTICATED = ("unauthenticated", 401, 2)
    UNAUTHENTICATED_SUBJECT = ("unauthenticated_subject", 401, 2)
    # routing (HTTP only)
    NO_ROUTE = ("no_route", 403, 2)
    METHOD_NOT_ALLOWED = ("method_not_allowed", 405, 2)
    # the workspace and what the CLI writes
    INVALID_WORKSPACE = ("invalid_workspace", 422, 3)
    ESCALATION_TOO_LARGE = ("escalation_too_large", 422, 3)
    INVALID_INPUT = ("invalid_input", 400, 2)
    INVALID_OUTPUT = ("invalid_output", 400, 2)
    INVALID_RECORD = ("invalid_record", 400, 2)
    INVALID_FILE = ("invalid_file", 400, 2)
    INVALID_ENTITIES = ("invalid_entities", 400, 2)
    # a dependency that is not there: what needs it is denied
    AUDIT_UNAVAILABLE = ("audit_unavailable", 503, 4)
    STORE_UNAVAILABLE = ("store_unavailable", 503, 4)
    NOT_READY = ("not_ready", 503, 4)
    UPSTREAM_UNAVAILABLE = ("upstream_unavailable", 502, 4)
    SERVER_REFUSED = ("server_refused", 500, 1)
    # operator actions on state
    NOT_FOUND = ("not_found", 404, 5)
    TICKET_NOT_FOUND = ("ticket_not_found", 404, 5)
    NOT_QUARANTINED = ("not_quarantined", 404, 5)
    CONFLICT = ("conflict", 409, 6)
    TICKET_CLOSED = ("ticket_closed", 409, 6)
    # the identity registry (vigil.identity; docs/identity.md)
    INVALID_UID = ("invalid_uid", 400, 2)
    INVALID_OWNER = ("invalid_owner", 400, 2)
    INVALID_DATE = ("invalid_date", 400, 2)
    INVALID_KEY = ("invalid_key", 400, 2)
    INVALID_BINDING = ("invalid_binding", 400, 2)
    NOT_AN_IDENTITY_TYPE = ("not_an_identity_type", 400, 2)
    IDENTITY_NOT_FOUND = ("identity_not_found", 404, 5)
    KEY_NOT_FOUND = ("key_not_found", 404, 5)
    BINDING_NOT_FOUND = ("binding_not_found", 404, 5)
    IDENTITY_EXISTS = ("identity_exists", 409, 6)
    KEY_EXISTS = ("key_exists", 409, 6)
    BINDING_EXISTS = ("binding_exists", 409, 6)
    INVALID_TRANSITION = ("invalid_transition", 409, 6)
    REGISTRY_BUSY = ("registry_busy", 409, 6)
    # tokens (vigil.identity.tokens; docs/identity.md): a token that does not verify is never used
    INVALID_TOKEN = ("invalid_token", 401, 2)
    UNVERIFIED_IDENTITY = ("unverified_identity", 401, 2)
    TOKEN_TOO_LARGE = ("token_too_large", 401, 2)
    TOKEN_ALGORITHM_REFUSED = ("token_algorithm_refused", 401, 2)
    TOKEN_EXPIRED = ("token_expired", 401, 2)
    TOKEN_NOT_YET_VALID = ("token_not_yet_valid", 401, 2)
    TOKEN_WRONG_ISSUER = ("token_wrong_issuer", 401, 2)
    TOKEN_WRONG_AUDIENCE = ("token_wrong_audience", 401, 2)
    TOKEN_UNKNOWN_KEY = ("token_unknown_key", 401, 2)
    TOKEN_REVOKED = ("token_revoked", 401, 2)
    TOKEN_SUBJECT_UNKNOWN = ("token_subject_unknown", 401, 2)
    DELEGATION_TOO_DEEP = ("delegation_too_deep", 401, 2)
    JWKS_UNAVAILABLE = ("jwks_unavailable", 503, 4)
    SIGNING_KEY_UNAVAILABLE = ("signing_key_unavailable", 503, 4)
    # the OAuth 2.0 token endpoint's answers (RFC 6749 section 5.2, RFC 8693 section 2.2.2)
    INVALID_CLIENT = ("invalid_client", 401, 2)
    INVALID_GRANT = ("invalid_grant", 400, 2)
    UNAUTHORIZED_CLIENT = ("unauthorized_client", 400, 2)
    UNSUPPORTED_GRANT_TYPE = ("unsupported_grant_type", 400, 2)
    INVALID_SCOPE = ("invalid_scope", 400, 2)
    INVALID_TARGET = ("invalid_target", 400, 2)
    TOKEN_NOT_FOUND = ("token_not_found", 404, 5)
    # escalation paths (vigil.escalation; docs/escalation.md)
    INVALID_IAM_EXPORT = ("invalid_iam_export", 400, 2)
    PRINCIPAL_NOT_FOUND = ("principal_not_found", 404, 5)
    # the unexpected
    INTERNAL_ERROR = ("internal_error", 500, 1)
    VIGIL_ERROR = ("vigil_error", 500, 1)


# The table as plain mappings, for transports that look a code up by its text.
HTTP_STATUS: dict[str, int] = {c.value: c.http_status for c in ErrorCode}
EXIT_STATUS: dict[str, int] = {c.value: c.exit_status for c in ErrorCode}
