"""The combine step: the policy's verdict and the behaviour assessment -> the outcome, and the
effects it wants (ARCHITECTURE section 2, "combine").

:func:`combine` is pure: it reads the thresholds of ``[behaviour]`` (the model's fields), the
assessment and what the engine found out before calling it (whether an approval of this request
was used, how many high-risk decisions the identity has within the quarantine window), and
returns an :class:`Outcome`: allowed, reason codes, advice, whether the request may be learned as
normal behaviour, and at most one :class:`Effect` (open an approval ticket, quarantine the
identity). The engine applies the effect; when it cannot be saved, :func:`unsaved` gives the
outcome that says so.

Only a risk at or above ``step_up_risk`` reaches combine (below it the verdict stands and the
request is learnable when allowed). Then:

- a learning identity (or one without a profile): recorded (``learning``), nothing enforced;
- enforce mode: an approval used for this request lets it through (``approved``; not learnable,
  so an approval never teaches the profile that the risky context is normal); otherwise repeated
  high risk quarantines (``quarantined``), a denied request stays denied, ``deny_risk`` denies
  (``risk_deny``), and below it the request is denied with advice ``step_up`` and a ticket;
- shadow mode: the same is computed and reported only (``shadow_*``), nothing is learned.
"""

from __future__ import annotations

from typing import Any, Final

from vigil.behaviour.model import BehaviourModel
from vigil.behaviour.signals import Assessment
from vigil.model.decision import Advice, ReasonCode

OPEN_TICKET: Final = "open_ticket"
QUARANTINE: Final = "quarantine"

_NONE: Final[tuple[str, ...]] = ()
_LEARNING: Final = ReasonCode.LEARNING.value
_APPROVED: Final = ReasonCode.APPROVED.value
_RISK_DENY: Final = ReasonCode.RISK_DENY.value
_RISK_STEP_UP: Final = ReasonCode.RISK_STEP_UP.value
_QUARANTINED: Final = ReasonCode.QUARANTINED.value
_STORE_UNAVAILABLE: Final = ReasonCode.STORE_UNAVAILABLE.value
_SHADOW_RISK_DENY: Final = ReasonCode.SHADOW_RISK_DENY.value
_SHADOW_STEP_UP: Final = ReasonCode.SHADOW_STEP_UP.value
_SHADOW_QUARANTINE: Final = ReasonCode.SHADOW_QUARANTINE.value
_ADVICE_QUARANTINED: Final = (Advice.QUARANTINED.value,)
_ADVICE_STEP_UP: Final = (Advice.STEP_UP.value,)


class Effect:
    """A change combine wants made: ``kind`` (:data:`OPEN_TICKET` or :data:`QUARANTINE`) and
    ``reason`` (the quarantine's reason; empty for a ticket, which carries the assessment)."""

    __slots__ = ("kind", "reason")

    def __init__(self, kind: str, reason: str = "") -> None:
        self.kind = kind
        self.reason = reason

    def __repr__(self) -> str:
        return f"Effect({self.kind!r}, {self.reason!r})"


_TICKET: Final = Effect(OPEN_TICKET)


class Outcome:
    """What a decision comes to: ``allowed``, ``reasons``, ``advice``, ``learnable`` (the request
    may be learned as normal behaviour when allowed) and ``effect`` (None or an :class:`Effect`)."""

    __slots__ = ("advice", "allowed", "effect", "learnable", "reasons")

    def __init__(
        self,
        allowed: bool,
        reasons: tuple[str, ...],
        advice: tuple[str, ...] = _NONE,
        learnable: bool = False,
        effect: Effect | None = None,
    ) -> None:
        self.allowed = allowed
        self.reasons = reasons
        self.advice = advice
        self.learnable = learnable
        self.effect = effect

    def __repr__(self) -> str:
        return (
            f"Outcome(allowed={self.allowed}, reasons={self.reasons!r}, advice={self.advice!r}, "
            f"learnable={self.learnable}, effect={self.effect!r})"
        )


def judged(a: Assessment, known: bool) -> bool:
    """Whether the assessment is enforced or reported (False: the identity is learning or has no
    profile, and the risk is only recorded)."""
    return known and not a.learning


def asks_approval(beh: BehaviourModel, a: Assessment, known: bool, allowed: bool) -> bool:
    """Whether :func:`combine` reads ``granted``: an allowed request in enforce mode whose risk is
    below ``deny_risk`` goes through on an approval of it. (The engine then uses one.)"""
    return beh.enforce and allowed and a.risk < beh.deny_risk and judged(a, known)


def counts_high(beh: BehaviourModel, a: Assessment, known: bool) -> bool:
    """Whether :func:`combine` reads ``highs`` (when no approval was used): the risk reaches
    ``quarantine_risk``. (The engine then records this high-risk decision on the profile.)"""
    return a.risk >= beh.quarantine_risk and judged(a, known)


def combine(
    beh: BehaviourModel,
    a: Assessment,
    known: bool,
    allowed: bool,
    reasons: tuple[str, ...],
    granted: bool = False,
    highs: int = 0,
) -> Outcome:
    """The outcome of a request whose risk reached ``step_up_risk``: ``allowed`` and ``reasons``
    are the policy's verdict, ``known`` whether the identity has a profile, ``granted`` whether an
    approval was used for it (:func:`asks_approval`), ``highs`` its high-risk decisions within the
    quarantine window, this one included (:func:`counts_high`)."""
    if not judged(a, known):
        return Outcome(allowed, (*reasons, _LEARNING), _NONE, allowed)
    if granted:
        return Outcome(True, (*reasons, _APPROVED))
    risk = a.risk
    quarantine = highs >= beh.quarantine_after and risk >= beh.quarantine_risk
    if not beh.enforce:
        return Outcome(allowed, _shadow(beh, risk, reasons, quarantine))
    if quarantine:
        why = (
            f"{beh.quarantine_after} requests at risk {beh.quarantine_risk} or more within "
            f"{beh.quarantine_window_s:.0f} s; last: {a.why()}"
        )
        prefix = reasons if not allowed else ((_RISK_DENY if risk >= beh.deny_risk else _RISK_STEP_UP),)
        return Outcome(False, (*prefix, _QUARANTINED), _ADVICE_QUARANTINED, False, Effect(QUARANTINE, why))
    if not allowed:
        return Outcome(False, reasons)
    if risk >= beh.deny_risk:
        return Outcome(False, (_RISK_DENY,))
    return Outcome(False, (_RISK_STEP_UP,), _ADVICE_STEP_UP, False, _TICKET)


def _shadow(beh: BehaviourModel, risk: int, reasons: tuple[str, ...], quarantine: bool) -> tuple[str, ...]:
    code = _SHADOW_RISK_DENY if risk >= beh.deny_risk else _SHADOW_STEP_UP
    if quarantine:
        return (*reasons, code, _SHADOW_QUARANTINE)
    return (*reasons, code)


def unsaved(outcome: Outcome) -> Outcome:
    """The outcome when its effect could not be saved: a quarantine held in memory only
    (``store_unavailable`` added); no ticket to approve (no step-up advice either)."""
    effect: Any = outcome.effect
    if effect is not None and effect.kind == QUARANTINE:
        return Outcome(outcome.allowed, (*outcome.reasons, _STORE_UNAVAILABLE), outcome.advice)
    return Outcome(False, (_RISK_STEP_UP, _STORE_UNAVAILABLE))
