"""Decisions backed by a token, and delegation at decision time (``docs/identity.md``).

:meth:`vigil.engine.Engine.decide` hands a request here only when it carries a token or
``[identity] require_token`` is set; every other decision takes the engine's path unchanged.

1. No token (``require_token``): deny ``unverified_identity``.
2. The token is verified (:class:`~vigil.identity.tokens.Verifier`; cached verifications cost a
   dictionary lookup): a failure denies ``unverified_identity`` with the token error's code in the
   record's ``error``. The request's subject must be the token's (``token_subject_mismatch``).
3. An undelegated token: the engine decides the request as usual.
4. A delegated token (``act``): every actor, the current one first, must be a known entity
   (``unknown_identity``), active in the registry (``identity_inactive``), not quarantined
   (``quarantined``) and allowed this action on this resource by the policies
   (``delegation_denied``); then the engine decides for the subject, which must be allowed too.
   Policies see the actors as ``context.vigil.delegation`` (a Set of entities) and the current
   actor as ``context.vigil.actor``; the record and its audit event carry the ordered chain
   (``delegation``). A deny for an actor is audited like every decision, with the chain.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from vigil.identity.tokens.errors import TokenError
from vigil.identity.tokens.verify import Verifier
from vigil.model.decision import DecisionRecord, ReasonCode
from vigil.model.request import AccessRequest
from vigil.model.uid import EntityUid
from vigil.policy.values import Record, make_set

_UNVERIFIED: Final = (ReasonCode.UNVERIFIED_IDENTITY.value,)
_MISMATCH: Final = (ReasonCode.TOKEN_SUBJECT_MISMATCH.value,)
_UNKNOWN: Final = (ReasonCode.UNKNOWN_IDENTITY.value,)
_INACTIVE: Final = (ReasonCode.IDENTITY_INACTIVE.value,)
_QUARANTINED: Final = (ReasonCode.QUARANTINED.value,)
_DENIED: Final = (ReasonCode.DELEGATION_DENIED.value,)


class TokenEngine(Protocol):
    """What this module uses of the engine (:class:`vigil.engine.Engine`)."""

    verifier: Verifier

    def _decide(
        self, st: Any, req: AccessRequest, when: float, t0: int, delegation: Any = None
    ) -> DecisionRecord: ...

    def _denied_early(
        self,
        st: Any,
        req: AccessRequest,
        context: Record,
        principal: EntityUid,
        reasons: tuple[str, ...],
        when: float,
        t0: int,
        error: dict[str, Any] | None = None,
        delegation: tuple[EntityUid, ...] | None = None,
    ) -> DecisionRecord: ...

    def _request_context(self, st: Any, req: AccessRequest) -> Record: ...

    def _party_blocked(self, st: Any, uid: EntityUid, when: float) -> tuple[str, ...] | None: ...


def delegated_vigil(base: Record, actors: tuple[EntityUid, ...]) -> Record:
    """``context.vigil`` with the delegation: ``delegation`` (the actors as a Set of entities)
    and ``actor`` (the current actor)."""
    out = Record(base)
    out["delegation"] = make_set(actors)
    out["actor"] = actors[0]
    return out


def decide_with_token(
    engine: TokenEngine, st: Any, req: AccessRequest, when: float, t0: int, token: str | bytes | None
) -> DecisionRecord:
    """The decision of ``req`` backed by ``token`` (see the module documentation); never raises
    for a bad token (a deny), raises what the engine's decision raises (OverlayError, ...)."""
    if token is None:
        context = engine._request_context(st, req)
        error = {"code": "unverified_identity", "message": "a token is required ([identity] require_token)"}
        return engine._denied_early(st, req, context, req.principal, _UNVERIFIED, when, t0, error)
    try:
        verified = engine.verifier.verify(token, when)
    except TokenError as e:
        context = engine._request_context(st, req)
        return engine._denied_early(st, req, context, req.principal, _UNVERIFIED, when, t0, e.to_dict())
    if verified.subject != req.principal:
        context = engine._request_context(st, req)
        return engine._denied_early(st, req, context, req.principal, _MISMATCH, when, t0)
    actors = verified.actors
    if not actors:
        return engine._decide(st, req, when, t0)
    context = engine._request_context(st, req)
    context["vigil"] = delegated_vigil(context["vigil"], actors)
    rentity = st.by_uid.get(req.resource)
    for actor in actors:
        blocked = engine._party_blocked(st, actor, when)
        if blocked is not None:
            return engine._denied_early(st, req, context, req.principal, blocked, when, t0, None, actors)
        actor_context = context
        reach = st.reach  # [escalation] reach: each party is judged with its own reach
        if reach is not None and reach.get(actor) is not None:
            actor_context = Record(context)
            actor_context["vigil"] = delegated_vigil(reach[actor], actors)
        answer = st.authorizer.is_authorized(
            actor, req.action, req.resource, actor_context, None, st.by_uid[actor], rentity
        )
        if not answer.allowed or any(e.forbid for e in answer.errors):
            return engine._denied_early(st, req, context, req.principal, _DENIED, when, t0, None, actors)
    return engine._decide(st, req, when, t0, actors)
