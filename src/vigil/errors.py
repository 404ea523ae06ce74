"""One exception tree for vigil. Every error has a stable snake_case ``code``.

Transports map codes, never classes or messages: HTTP status via :data:`HTTP_STATUS`, CLI exit
status via :data:`EXIT_STATUS`. Messages are one line, lowercase, with user values quoted.
"""

from __future__ import annotations

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


class WorkspaceError(VigilError):
    """A workspace that cannot be activated; ``problems`` lists every file:line message."""

    code = "invalid_workspace"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message, problems=list(problems or []))
        self.problems = list(problems or [])


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


HTTP_STATUS: dict[str, int] = {
    "invalid_request": 400,
    "invalid_value": 400,
    "invalid_json": 400,
    "invalid_time": 400,
    "request_too_large": 413,
    "invalid_workspace": 422,
    "audit_unavailable": 503,
    "store_unavailable": 503,
    "not_found": 404,
    "ticket_not_found": 404,
    "not_quarantined": 404,
    "conflict": 409,
    "ticket_closed": 409,
    "invalid_argument": 400,
    "duplicate_header": 400,
    "invalid_path": 400,
    "vigil_error": 500,
}

EXIT_STATUS: dict[str, int] = {
    "invalid_request": 2,
    "invalid_value": 2,
    "invalid_json": 2,
    "invalid_time": 2,
    "request_too_large": 2,
    "invalid_workspace": 3,
    "audit_unavailable": 4,
    "store_unavailable": 4,
    "not_found": 5,
    "ticket_not_found": 5,
    "not_quarantined": 5,
    "conflict": 6,
    "ticket_closed": 6,
    "invalid_argument": 2,
    "duplicate_header": 2,
    "invalid_path": 2,
    "vigil_error": 1,
}
