"""The identity registry's typed errors. Every one carries a stable code of the one error table
(:class:`vigil.errors.ErrorCode`); a refused change changes nothing."""

from __future__ import annotations

from vigil.errors import ConflictError, NotFoundError, RequestError


class UidError(RequestError):
    """An identity named in a form that is not an entity uid (``Type::"id"``)."""

    code = "invalid_uid"


class OwnerError(RequestError):
    """An owner that is missing or not a person's email address."""

    code = "invalid_owner"


class DateError(RequestError):
    """An expiry that is not a date (``YYYY-MM-DD``, RFC 3339, ``<N>d``) or not in the future."""

    code = "invalid_date"


class KeyFormatError(RequestError):
    """A key file or JWK that is not a usable public signing key (unreadable, malformed, private,
    symmetric, an unsupported algorithm or size)."""

    code = "invalid_key"


class BindingError(RequestError):
    """An external issuer or subject that is malformed."""

    code = "invalid_binding"


class IdentityTypeError(RequestError):
    """An entity type that is not one of ``[identity] types`` (the types that act)."""

    code = "not_an_identity_type"


class IdentityNotFound(NotFoundError):
    """No registry record for this identity (``identity_not_found``), or no such key
    (``key_not_found``) or binding (``binding_not_found``) on it."""

    code = "identity_not_found"


class IdentityConflict(ConflictError):
    """The change does not apply to the registry as it is: ``identity_exists``, ``key_exists``,
    ``binding_exists``, ``invalid_transition`` (e.g. resuming a retired identity), or
    ``registry_busy`` (other writers kept changing the registry; nothing was written)."""

    code = "invalid_transition"
