"""Tokens: verifying the JWTs vigil accepts and issuing its own (``docs/identity.md``).

- ``verify.py``: :class:`Verifier`, strict JWT verification with a cache of verified tokens;
- ``jwks.py``: issuers' keys (a file, HTTP with bounded refresh and staleness, memory);
- ``signing.py``: :class:`SigningKeys`, the token service's keys (0600 file, rotation with overlap);
- ``service.py``: :class:`TokenService`, the OAuth 2.0 authorization server (client credentials
  with ``private_key_jwt``, token exchange for delegation);
- ``revocation.py``: :class:`Revocations`, revoked jtis and delegations over the state store;
- ``trust.py``: the issuers of a workspace's ``[identity]`` settings.
"""

from __future__ import annotations

from vigil.identity.tokens.errors import OAuthError, SigningKeyError, TokenError
from vigil.identity.tokens.jwks import RemoteKeys, StaticKeys, parse_jwks
from vigil.identity.tokens.revocation import Revocations
from vigil.identity.tokens.service import TokenService, TokenSettings
from vigil.identity.tokens.signing import SigningKeys
from vigil.identity.tokens.trust import issuers_of, resolve_issuer
from vigil.identity.tokens.verify import ALGORITHMS, Issuer, VerifiedToken, Verifier

__all__ = [
    "ALGORITHMS",
    "Issuer",
    "OAuthError",
    "RemoteKeys",
    "Revocations",
    "SigningKeyError",
    "SigningKeys",
    "StaticKeys",
    "TokenError",
    "TokenService",
    "TokenSettings",
    "VerifiedToken",
    "Verifier",
    "issuers_of",
    "parse_jwks",
    "resolve_issuer",
]
