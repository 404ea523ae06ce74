"""The issuers a workspace trusts: vigil's own token service and its ``[[identity.trust]]``."""

from __future__ import annotations

from pathlib import Path

from vigil.errors import WorkspaceError
from vigil.identity.settings import IdentitySettings
from vigil.identity.tokens.jwks import Fetch, KeySource, RemoteKeys, StaticKeys
from vigil.identity.tokens.signing import SigningKeys
from vigil.identity.tokens.verify import VIGIL, Issuer


def resolve_issuer(settings: IdentitySettings, fallback: str) -> str:
    """The token service's issuer: ``[identity] issuer``, else ``fallback`` (the server's public
    URL), without a trailing slash."""
    return (settings.issuer or fallback).rstrip("/")


def issuers_of(
    settings: IdentitySettings,
    workspace: Path,
    *,
    issuer: str,
    audiences: tuple[str, ...],
    keys: SigningKeys,
    fetch: Fetch | None = None,
    remote: dict[str, RemoteKeys] | None = None,
) -> list[Issuer]:
    """vigil's issuer (``issuer``, accepting ``audiences``) and each trusted one. ``remote``: the
    HTTP key sources of a previous generation, reused (their caches kept) when the URI and limits
    are unchanged. Raises WorkspaceError when a ``jwks_file`` cannot be read."""
    out = [Issuer(issuer, VIGIL, keys, audiences)]
    remote = remote or {}
    problems: list[str] = []
    for t in settings.trust:
        source: KeySource
        if t.jwks_file:
            path = workspace / t.jwks_file
            try:
                source = StaticKeys.from_file(path)
            except ValueError as e:
                problems.append(f"[[identity.trust]] {t.issuer}: jwks_file {str(path)!r}: {e}")
                continue
        else:
            old = remote.get(t.issuer)
            if (
                old is not None
                and old.uri == t.jwks_uri
                and (old.ttl_s, old.min_refresh_s, old.max_stale_s)
                == (t.jwks_ttl_s, t.jwks_min_refresh_s, t.jwks_max_stale_s)
            ):
                source = old
            else:
                source = RemoteKeys(
                    t.jwks_uri,
                    fetch=fetch,
                    ttl_s=t.jwks_ttl_s,
                    min_refresh_s=t.jwks_min_refresh_s,
                    max_stale_s=t.jwks_max_stale_s,
                )
        out.append(
            Issuer(t.issuer, t.kind, source, (t.audience,), t.subject_claim, t.entity_type, t.require_binding)
        )
    if problems:
        raise WorkspaceError("the trusted issuers' keys cannot be read", problems)
    return out
