"""The authorize step: the compiled Cedar authorizer's answer under vigil's one stricter rule.

Cedar skips an erroring policy; vigil denies when an erroring policy is a forbid
(``forbid_errored``), so a forbid can never vanish because its condition failed. The engine
(every decision) and the AuthZEN search (every candidate it checks) call :func:`authorize`, so a
search result is exactly what an evaluation would permit.
"""

from __future__ import annotations

from typing import Any, Final

from vigil.model.decision import ReasonCode
from vigil.policy.evaluator import Answer, Authorizer
from vigil.policy.schema import Schema
from vigil.policy.values import Record, make_set

# What a policy sees as ``context.vigil`` when behaviour has not (or not yet) assessed the request.
NEUTRAL_VIGIL: Final = Record({"risk": 0, "signals": make_set(())})

_PERMIT: Final = (ReasonCode.POLICY_PERMIT.value,)
_PERMIT_ERR: Final = (ReasonCode.POLICY_PERMIT.value, ReasonCode.POLICY_ERRORED.value)
_FORBID: Final = (ReasonCode.POLICY_FORBID.value,)
_FORBID_ERR: Final = (ReasonCode.POLICY_FORBID.value, ReasonCode.POLICY_ERRORED.value)
_NO_PERMIT: Final = (ReasonCode.NO_MATCHING_PERMIT.value,)
_NO_PERMIT_ERR: Final = (ReasonCode.NO_MATCHING_PERMIT.value, ReasonCode.POLICY_ERRORED.value)
_FORBID_ERRORED: Final = (ReasonCode.FORBID_ERRORED.value,)
_FORBID_AND_ERRORED: Final = (ReasonCode.POLICY_FORBID.value, ReasonCode.FORBID_ERRORED.value)
_NO_ERRORS: Final[tuple[tuple[str, str], ...]] = ()


class Verdict:
    """The policies' verdict on one request under vigil's rule: ``allowed``, ``reasons`` (codes),
    ``policies`` (the determining policy ids) and ``errors`` ((policy id, message) of each
    erroring policy)."""

    __slots__ = ("allowed", "errors", "policies", "reasons")

    def __init__(
        self,
        allowed: bool,
        reasons: tuple[str, ...],
        policies: tuple[str, ...],
        errors: tuple[tuple[str, str], ...],
    ) -> None:
        self.allowed = allowed
        self.reasons = reasons
        self.policies = policies
        self.errors = errors

    def __repr__(self) -> str:
        return (
            f"Verdict(allowed={self.allowed}, reasons={self.reasons!r}, policies={self.policies!r}, "
            f"errors={self.errors!r})"
        )


def action_type(schema: Schema | None) -> str:
    """The entity type of AuthZEN action names: the schema's one action type, else ``Action``."""
    if schema is None:
        return "Action"
    types = {uid[0] for uid in schema.actions}
    return types.pop() if len(types) == 1 else "Action"


def authorize(
    authorizer: Authorizer,
    principal: Any,
    action: Any,
    resource: Any,
    context: Any,
    overlay: Any = None,
    principal_entity: Any = None,
    resource_entity: Any = None,
) -> Verdict:
    """Decide ``principal`` doing ``action`` on ``resource`` in ``context`` (with the per-call
    attribute ``overlay``; the stored entities when the caller has looked them up) by the policies:
    the :class:`Verdict`. Never learns, never audits."""
    answer = authorizer.is_authorized(
        principal, action, resource, context, overlay, principal_entity, resource_entity
    )
    return verdict(answer)


def verdict(answer: Answer) -> Verdict:
    """Cedar's ``answer`` as vigil's verdict: an erroring forbid denies (its id is determining
    unless a satisfied forbid is), every error is reported (``policy_errored``)."""
    errors = answer.errors
    if not errors:
        if answer.allowed:
            return _verdict(True, _PERMIT, answer.policies, _NO_ERRORS)
        return _verdict(False, (_FORBID if answer.policies else _NO_PERMIT), answer.policies, _NO_ERRORS)
    return _with_errors(answer.allowed, answer.policies, errors)


def _verdict(
    allowed: bool, reasons: tuple[str, ...], policies: tuple[str, ...], errors: tuple[tuple[str, str], ...]
) -> Verdict:
    """``Verdict(...)``; compiled, a C call and struct writes instead of a Python-level ``__init__``."""
    v: Verdict = Verdict.__new__(Verdict)
    v.allowed = allowed
    v.reasons = reasons
    v.policies = policies
    v.errors = errors
    return v


def _with_errors(allowed: bool, policies: tuple[str, ...], errors: tuple[Any, ...]) -> Verdict:
    pairs = tuple((e.policy_id, e.message) for e in errors)
    errored_forbids = tuple(e.policy_id for e in errors if e.forbid)
    if errored_forbids:
        if policies and not allowed:
            return _verdict(False, _FORBID_AND_ERRORED, policies, pairs)
        return _verdict(False, _FORBID_ERRORED, errored_forbids, pairs)
    if allowed:
        return _verdict(True, _PERMIT_ERR, policies, pairs)
    if policies:
        return _verdict(False, _FORBID_ERR, policies, pairs)
    return _verdict(False, _NO_PERMIT_ERR, policies, pairs)
