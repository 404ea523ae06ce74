"""The result of one decision: never a bare boolean."""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final


class ReasonCode(StrEnum):
    """Stable machine-readable reasons. Each step of the pipeline adds its own."""

    POLICY_PERMIT = "policy_permit"
    """At least one permit policy was satisfied and no forbid was."""
    POLICY_FORBID = "policy_forbid"
    """A forbid policy was satisfied."""
    NO_MATCHING_PERMIT = "no_matching_permit"
    """No permit policy was satisfied (Cedar's default deny)."""
    FORBID_ERRORED = "forbid_errored"
    """A forbid policy raised an error while evaluated; vigil denies rather than skip it."""
    POLICY_ERRORED = "policy_errored"
    """A permit policy raised an error and was skipped (as in Cedar)."""
    UNKNOWN_IDENTITY = "unknown_identity"
    """The principal is not in the entity store: denied before any policy runs."""
    IDENTITY_INACTIVE = "identity_inactive"
    """The principal is suspended, retired or expired in the identity registry: denied before any
    policy runs (an identity the registry does not hold is unaffected)."""
    UNVERIFIED_IDENTITY = "unverified_identity"
    """The subject is not backed by a verified token: the token did not verify (the record's
    ``error`` says why), or ``[identity] require_token`` is set and none came with the request."""
    TOKEN_SUBJECT_MISMATCH = "token_subject_mismatch"
    """The request names another subject than the verified token's."""
    DELEGATION_DENIED = "delegation_denied"
    """A delegated token: an actor of the chain is not allowed this action on this resource (rights
    only narrow along a chain)."""
    INVALID_REQUEST = "invalid_request"
    """The request could not be parsed (batch items only; single calls raise)."""
    AUDIT_UNAVAILABLE = "audit_unavailable"
    """Audit is required and the event could not be buffered."""
    RISK_STEP_UP = "risk_step_up"
    """Behaviour risk reached the step-up threshold: denied with advice ``step_up`` and a ticket."""
    RISK_DENY = "risk_deny"
    """Behaviour risk reached the deny threshold."""
    QUARANTINED = "quarantined"
    """The identity is quarantined: every request is denied until an owner lifts it."""
    APPROVED = "approved"
    """A human approved this subject, action and resource (a step-up ticket): the risk is accepted."""
    SHADOW_STEP_UP = "shadow_step_up"
    """Shadow mode: enforce mode would have denied this with advice ``step_up``."""
    SHADOW_RISK_DENY = "shadow_risk_deny"
    """Shadow mode: enforce mode would have denied this for its risk."""
    SHADOW_QUARANTINE = "shadow_quarantine"
    """Shadow mode: enforce mode would have quarantined this identity."""
    LEARNING = "learning"
    """The identity is still learning: its risk reached a threshold but is not enforced yet."""
    INTERNAL_ERROR = "internal_error"
    """Deciding failed unexpectedly (a bug or a failing component): denied (batch items)."""
    STORE_UNAVAILABLE = "store_unavailable"
    """The state store could not record or read what this decision needed (a step-up ticket, an
    approval, a quarantine) in time: denied without it (a quarantine still holds in memory)."""

    @property
    def text(self) -> str:
        """Human text for this code."""
        return _TEXT[self]


_TEXT = {
    ReasonCode.POLICY_PERMIT: "permitted by policy",
    ReasonCode.POLICY_FORBID: "forbidden by policy",
    ReasonCode.NO_MATCHING_PERMIT: "no policy permits this request",
    ReasonCode.FORBID_ERRORED: "a forbid policy failed to evaluate; denied to stay safe",
    ReasonCode.POLICY_ERRORED: "a permit policy failed to evaluate and was skipped",
    ReasonCode.UNKNOWN_IDENTITY: "the principal is not a known identity",
    ReasonCode.IDENTITY_INACTIVE: "the identity is suspended, retired or expired in the registry",
    ReasonCode.UNVERIFIED_IDENTITY: "the subject is not backed by a verified token",
    ReasonCode.TOKEN_SUBJECT_MISMATCH: "the request's subject is not the token's subject",
    ReasonCode.DELEGATION_DENIED: "an actor of the delegation chain is not allowed this request",
    ReasonCode.INVALID_REQUEST: "the request is malformed",
    ReasonCode.AUDIT_UNAVAILABLE: "the decision could not be audited and audit is required",
    ReasonCode.RISK_STEP_UP: "unusual behaviour for this identity: a human must approve (step-up)",
    ReasonCode.RISK_DENY: "behaviour risk is too high",
    ReasonCode.QUARANTINED: "the identity is quarantined until an owner lifts it",
    ReasonCode.APPROVED: "a human approved this request despite its risk",
    ReasonCode.SHADOW_STEP_UP: "shadow mode: would have been denied for step-up",
    ReasonCode.SHADOW_RISK_DENY: "shadow mode: would have been denied for its risk",
    ReasonCode.SHADOW_QUARANTINE: "shadow mode: the identity would have been quarantined",
    ReasonCode.LEARNING: "the identity is still learning; its risk is recorded, not enforced",
    ReasonCode.INTERNAL_ERROR: "deciding failed unexpectedly; denied to stay safe",
    ReasonCode.STORE_UNAVAILABLE: "the state store did not answer in time; denied without it",
}


class Advice(StrEnum):
    """What a caller may do about a deny."""

    STEP_UP = "step_up"
    QUARANTINED = "quarantined"


APPROVE_PATH: Final = "/admin/v1/approvals/approve"
"""Where an approver approves a step-up ticket (the admin HTTP API; ``vigil approvals approve``)."""

ID_PREFIX: str = os.urandom(6).hex()
"""Per-process random prefix of decision ids, so ids from different processes never collide."""


class DecisionRecord:
    """Everything vigil knows about one decision.

    ``allowed``/``decision`` the outcome; ``reason_codes`` why (stable codes); ``policies`` the
    determining policy ids exactly as Cedar reports them; ``errors`` the policies that failed to
    evaluate, as ``(policy id, message)``; ``risk`` 0..100 and ``signals`` from behaviour;
    ``advice`` for denies; ``id``; ``policy_revision``; ``latency_ns``; ``time`` (epoch seconds)
    and the request's ``principal``/``action``/``resource`` uids and ``context`` for audit.
    ``assessment`` the behaviour details (each signal's points and explanation, the signals that
    could not be judged and why; see :class:`vigil.behaviour.Assessment`), ``ticket`` the approval
    ticket of a step-up deny (``{"id", "expires", ...}``); ``overlay`` the caller-supplied
    properties applied to this call (``{"subject": {...}, "resource": {...}}``, Cedar values), or None;
    ``delegation`` the actors of a delegated token (uids, the current actor first) the decision
    was made for, or None (``docs/identity.md``).
    """

    __slots__ = (
        "_id",
        "action",
        "advice",
        "allowed",
        "assessment",
        "context",
        "delegation",
        "error",
        "errors",
        "latency_ns",
        "overlay",
        "policies",
        "policy_revision",
        "principal",
        "reason_codes",
        "resource",
        "risk",
        "signals",
        "ticket",
        "time",
    )
    _id: str | int
    allowed: bool
    reason_codes: tuple[str, ...]
    policies: tuple[str, ...]
    errors: tuple[tuple[str, str], ...]
    risk: int
    signals: tuple[str, ...]
    advice: tuple[str, ...]
    policy_revision: str
    latency_ns: int
    time: float
    principal: tuple[str, str]
    action: tuple[str, str]
    resource: tuple[str, str]
    context: Mapping[str, Any] | None
    error: dict[str, Any] | None
    assessment: Any
    ticket: dict[str, Any] | None
    overlay: dict[str, Any] | None
    delegation: tuple[tuple[str, str], ...] | None

    def __init__(
        self,
        id: str | int,
        allowed: bool,
        reason_codes: tuple[str, ...],
        policies: tuple[str, ...],
        errors: tuple[tuple[str, str], ...],
        risk: int,
        signals: tuple[str, ...],
        advice: tuple[str, ...],
        policy_revision: str,
        latency_ns: int,
        time: float,
        principal: tuple[str, str],
        action: tuple[str, str],
        resource: tuple[str, str],
        context: Mapping[str, Any] | None,
        error: dict[str, Any] | None = None,
        assessment: Any = None,
        ticket: dict[str, Any] | None = None,
        overlay: dict[str, Any] | None = None,
    ) -> None:
        _fill(
            self,
            id,
            allowed,
            reason_codes,
            policies,
            errors,
            risk,
            signals,
            advice,
            policy_revision,
            latency_ns,
            time,
            principal,
            action,
            resource,
            context,
            error,
            assessment,
            ticket,
        )
        self.overlay = overlay

    @property
    def id(self) -> str:
        """The decision id. An int sequence number is formatted on first read (off the hot path)."""
        value = self._id
        if type(value) is int:
            value = self._id = f"{ID_PREFIX}-{value:010x}"
        return value  # type: ignore[return-value]

    @property
    def decision(self) -> str:
        """``"allow"`` or ``"deny"``."""
        return "allow" if self.allowed else "deny"

    def __bool__(self) -> bool:
        raise TypeError("a DecisionRecord is not a boolean: use .allowed")

    def __repr__(self) -> str:
        return (
            f"DecisionRecord(id={self.id!r}, decision={self.decision!r}, "
            f"reason_codes={list(self.reason_codes)!r}, policies={list(self.policies)!r}, risk={self.risk})"
        )

    def response_context(self, full: bool = False) -> dict[str, Any]:
        """The AuthZEN response ``context``.

        For a PEP (``full`` False): ``id``, ``reason_codes``, ``advice``, the request's own
        ``error`` (batch items) and, for a step-up deny, ``ticket`` as ``{"id", "expires",
        "approve"}`` (where an approver approves it) only: nothing of the identity's learned
        behaviour (signal explanations name its known regions, networks, ...), nor the risk,
        signals, policies or policy error messages, reaches the PEP or the client behind it.
        ``full``: everything, for operators (``vigil decide``, replay output): risk, signals,
        determining policies, policy errors, the whole ticket, signal details.
        """
        ctx: dict[str, Any] = {"id": self.id, "reason_codes": list(self.reason_codes)}
        if full:
            ctx["risk"] = self.risk
            ctx["signals"] = list(self.signals)
        ctx["advice"] = list(self.advice)
        if self.error is not None:
            ctx["error"] = self.error
        if self.delegation is not None:
            ctx["delegation"] = [{"type": t, "id": i} for t, i in self.delegation]
        ticket = self.ticket
        if ticket is not None:
            ctx["ticket"] = (
                ticket
                if full
                else {"id": ticket.get("id"), "expires": ticket.get("expires"), "approve": APPROVE_PATH}
            )
        if not full:
            return ctx
        if self.policies:
            ctx["policies"] = list(self.policies)
        if self.errors:
            ctx["errors"] = [{"policy": p, "message": m} for p, m in self.errors]
        assessment = self.assessment
        if assessment is not None:
            details = assessment.details()
            if details:
                ctx["signal_details"] = details
            unknown = assessment.unknown_details(malformed_only=True)
            if unknown:  # a malformed field; a missing one is the PEP's habit, not news
                ctx["unknown_signals"] = unknown
        return ctx

    def explanations(self) -> list[str]:
        """One line per raised signal (``name (+points): why``) and per signal that could not be judged."""
        assessment = self.assessment
        if assessment is None:
            return []
        lines = [f"{d['signal']} (+{d['points']}): {d['why']}" for d in assessment.details()]
        lines.extend(f"{d['signal']}: unknown, {d['why']}" for d in assessment.unknown_details())
        return lines

    def to_authzen(self, full: bool = False) -> dict[str, Any]:
        """The AuthZEN evaluation response ``{"decision": bool, "context": {...}}``: what a PEP
        may see, or everything with ``full`` (see :meth:`response_context`)."""
        return {"decision": self.allowed, "context": self.response_context(full)}


def new_record(
    id: str | int,
    allowed: bool,
    reason_codes: tuple[str, ...],
    policies: tuple[str, ...],
    errors: tuple[tuple[str, str], ...],
    risk: int,
    signals: tuple[str, ...],
    advice: tuple[str, ...],
    policy_revision: str,
    latency_ns: int,
    time: float,
    principal: tuple[str, str],
    action: tuple[str, str],
    resource: tuple[str, str],
    context: Mapping[str, Any] | None,
    assessment: Any,
    ticket: dict[str, Any] | None,
) -> DecisionRecord:
    """``DecisionRecord(...)`` as the engine builds it on every decision (no ``error``): the same
    fields, set directly. Compiled, a C call and struct writes instead of a Python-level
    ``__init__`` call with 18 arguments."""
    r: DecisionRecord = DecisionRecord.__new__(DecisionRecord)
    _fill(
        r,
        id,
        allowed,
        reason_codes,
        policies,
        errors,
        risk,
        signals,
        advice,
        policy_revision,
        latency_ns,
        time,
        principal,
        action,
        resource,
        context,
        None,
        assessment,
        ticket,
    )
    return r


def _fill(
    r: DecisionRecord,
    id: str | int,
    allowed: bool,
    reason_codes: tuple[str, ...],
    policies: tuple[str, ...],
    errors: tuple[tuple[str, str], ...],
    risk: int,
    signals: tuple[str, ...],
    advice: tuple[str, ...],
    policy_revision: str,
    latency_ns: int,
    time: float,
    principal: tuple[str, str],
    action: tuple[str, str],
    resource: tuple[str, str],
    context: Mapping[str, Any] | None,
    error: dict[str, Any] | None,
    assessment: Any,
    ticket: dict[str, Any] | None,
) -> None:
    """Every field of ``r``: the one place both constructors set them."""
    r._id = id
    r.allowed = allowed
    r.reason_codes = reason_codes
    r.policies = policies
    r.errors = errors
    r.risk = risk
    r.signals = signals
    r.advice = advice
    r.policy_revision = policy_revision
    r.latency_ns = latency_ns
    r.time = time
    r.principal = principal
    r.action = action
    r.resource = resource
    r.context = context
    r.error = error
    r.assessment = assessment
    r.ticket = ticket
    r.overlay = None
    r.delegation = None
