"""``[identity]`` of ``vigil.toml`` (parsed and checked by :mod:`vigil.workspace.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TYPES = ("Agent", "ServiceAccount", "Workload")
TRUST_KINDS = ("oidc", "spiffe", "kubernetes")


@dataclass(frozen=True, slots=True)
class TrustSettings:
    """One ``[[identity.trust]]`` entry: an external issuer whose tokens vigil verifies.

    ``issuer``: the exact ``iss`` (for ``kind = "spiffe"`` the trust domain ``spiffe://domain``;
    JWT-SVIDs without ``iss`` are matched by their SPIFFE ID's trust domain). Keys: ``jwks_uri``
    (fetched over HTTP, cached ``jwks_ttl_s``, refetched on an unknown ``kid`` at most once per
    ``jwks_min_refresh_s``, a stale copy served on fetch failure for at most ``jwks_max_stale_s``)
    or ``jwks_file`` (relative to the workspace). ``audience``: required, one of the token's
    ``aud``. ``subject_claim``: the claim naming the subject (default ``sub``). A subject becomes
    the identity a registry binding (issuer, subject) names; otherwise, unless
    ``require_binding``, the entity ``entity_type::"<subject>"`` (SPIFFE: the whole SPIFFE ID;
    Kubernetes: ``namespace/name`` of ``system:serviceaccount:namespace:name``).
    """

    issuer: str = ""
    kind: str = "oidc"
    jwks_uri: str = ""
    jwks_file: str = ""
    audience: str = ""
    subject_claim: str = "sub"
    entity_type: str = "User"
    require_binding: bool = False
    jwks_ttl_s: int = 300
    jwks_min_refresh_s: int = 30
    jwks_max_stale_s: int = 3_600


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """``[identity]``: the identity registry, the token service and the tokens vigil trusts.

    ``types``: the entity types that act (principals the registry is for): ``vigil identity add``
    refuses other types, and the report lists entities of these types that are not registered
    (namespaced names such as ``Acme::Agent`` match exactly). ``unused_days`` and
    ``key_age_days``: the report's defaults for "unused for N days" and "keys older than N days".
    ``max_keys``: the most public keys one identity holds at once (rotation overlaps a few).

    Tokens (``docs/identity.md``): ``issuer`` names the token service (its ``iss``; empty: the
    server's public URL); ``audiences`` the audiences it issues tokens for and vigil accepts in
    its own tokens (besides the issuer itself: the resource servers behind vigil's PEPs); ``token_ttl_s`` the longest lifetime of an issued token (default 10
    min); ``assertion_ttl_s`` the longest a client assertion may live; ``max_delegation_depth``
    the most actors in a delegation chain; ``clock_skew_s`` the tolerance for ``exp``/``nbf``/
    ``iat``; ``max_token_bytes`` the largest token read; ``token_cache`` how many verified tokens
    are kept (until they expire); ``require_token``: deny every decision whose subject is not
    backed by a verified token (``unverified_identity``); ``trust``: the ``[[identity.trust]]``
    issuers.
    """

    types: tuple[str, ...] = DEFAULT_TYPES
    unused_days: int = 30
    key_age_days: int = 90
    max_keys: int = 10
    issuer: str = ""
    audiences: tuple[str, ...] = ()
    require_token: bool = False
    token_ttl_s: int = 600
    assertion_ttl_s: int = 300
    max_delegation_depth: int = 3
    clock_skew_s: int = 30
    max_token_bytes: int = 8_192
    token_cache: int = 10_000
    trust: tuple[TrustSettings, ...] = ()
