"""Token errors: every failure to verify a token, and the token endpoint's OAuth 2.0 errors.

Each carries a stable code of the one error table (:class:`vigil.errors.ErrorCode`). Verification
raises, it never returns an unverified value; a caller that meets one of these denies.
"""

from __future__ import annotations

from typing import Any

from vigil.errors import VigilError


class TokenError(VigilError):
    """A token that is not used: ``invalid_token`` (malformed, truncated, a bad signature, a
    missing or malformed claim), ``token_too_large``, ``token_algorithm_refused`` (``none``, HS*,
    anything off the allow-list), ``token_expired``, ``token_not_yet_valid``,
    ``token_wrong_issuer`` (no trusted issuer by that name), ``token_wrong_audience``,
    ``token_unknown_key``, ``token_revoked``, ``token_subject_unknown`` (the subject maps to no
    identity), ``delegation_too_deep``; ``jwks_unavailable`` when the issuer's keys could not be
    fetched and no fresh-enough copy is held."""

    code = "invalid_token"


class SigningKeyError(VigilError):
    """The token service's signing keys cannot be read or written (``signing_key_unavailable``)."""

    code = "signing_key_unavailable"


class OAuthError(VigilError):
    """An answer of the token endpoint as RFC 6749 section 5.2 defines it: ``code`` is the
    ``error`` member (``invalid_request``, ``invalid_client``, ``invalid_grant``,
    ``unauthorized_client``, ``unsupported_grant_type``, ``invalid_scope``, RFC 8693's
    ``invalid_target``); the HTTP status comes from the error table."""

    code = "invalid_request"

    def body(self) -> dict[str, Any]:
        """``{"error", "error_description"}``, the JSON body RFC 6749 section 5.2 defines."""
        return {"error": self.code, "error_description": self.message}
