"""The pipeline's pure steps (vigil.pipeline): ``authorize``'s verdict under the erroring-forbid rule
and ``combine``'s outcome and effects, case by case, without an engine deciding anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.behaviour_support import engine, write_workspace
from vigil.behaviour.model import BehaviourModel
from vigil.behaviour.signals import Assessment
from vigil.pipeline.authorize import verdict
from vigil.pipeline.combine import (
    OPEN_TICKET,
    QUARANTINE,
    asks_approval,
    combine,
    counts_high,
    unsaved,
)
from vigil.policy.evaluator import Answer, PolicyError

PERMIT = ("policy_permit",)


@pytest.fixture(scope="module", params=["enforce", "shadow"])
def beh(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BehaviourModel]:
    """The model of a workspace with the default thresholds: step-up 60, deny 85, quarantine after
    5 at 70."""
    ws = write_workspace(tmp_path_factory.mktemp("pipe") / "ws", {"mode": request.param})
    with engine(ws) as e:
        yield e._state.behaviour


def risk(points: int, *, learning: bool = False) -> Assessment:
    return Assessment(
        points, ("new_network",), (("new_network", points, "from {}", ("10.9.9.0/24",)),), (), learning
    )


def test_a_learning_or_unknown_identity_is_recorded_only(beh: BehaviourModel) -> None:
    for a, known in ((risk(90, learning=True), True), (risk(90), False)):
        out = combine(beh, a, known, True, PERMIT)
        assert (out.allowed, out.reasons, out.learnable, out.effect) == (
            True,
            (*PERMIT, "learning"),
            True,
            None,
        )
        assert not asks_approval(beh, a, known, True) and not counts_high(beh, a, known)


def test_step_up_opens_a_ticket_or_reports_it(beh: BehaviourModel) -> None:
    out = combine(beh, risk(65), True, True, PERMIT)
    if beh.enforce:
        assert (out.allowed, out.reasons, out.advice) == (False, ("risk_step_up",), ("step_up",))
        assert out.effect is not None and out.effect.kind == OPEN_TICKET
        failed = unsaved(out)
        assert (failed.allowed, failed.reasons, failed.advice) == (
            False,
            ("risk_step_up", "store_unavailable"),
            (),
        )
    else:
        assert (out.allowed, out.reasons, out.effect) == (True, (*PERMIT, "shadow_step_up"), None)
    assert not out.learnable


def test_an_approval_lets_it_through_unlearned(beh: BehaviourModel) -> None:
    a = risk(65)
    assert asks_approval(beh, a, True, True) == beh.enforce
    assert not asks_approval(beh, risk(90), True, True) and not asks_approval(beh, a, True, False)
    out = combine(beh, a, True, True, PERMIT, granted=True)
    assert (out.allowed, out.reasons, out.learnable, out.effect) == (True, (*PERMIT, "approved"), False, None)


def test_deny_risk_and_policy_denies(beh: BehaviourModel) -> None:
    out = combine(beh, risk(90), True, True, PERMIT)
    assert out.reasons == (("risk_deny",) if beh.enforce else (*PERMIT, "shadow_risk_deny"))
    denied = combine(beh, risk(65), True, False, ("policy_forbid",))
    assert not denied.allowed and denied.effect is None
    assert denied.reasons == (("policy_forbid",) if beh.enforce else ("policy_forbid", "shadow_step_up"))


def test_repeated_high_risk_quarantines(beh: BehaviourModel) -> None:
    a = risk(75)
    assert counts_high(beh, a, True) and not counts_high(beh, risk(65), True)
    below = combine(beh, a, True, True, PERMIT, highs=4).effect
    assert below is None or below.kind == OPEN_TICKET
    out = combine(beh, a, True, True, PERMIT, highs=5)
    if not beh.enforce:
        assert out.reasons == (*PERMIT, "shadow_step_up", "shadow_quarantine") and out.effect is None
        return
    assert (out.allowed, out.reasons, out.advice) == (
        False,
        ("risk_step_up", "quarantined"),
        ("quarantined",),
    )
    assert out.effect is not None and out.effect.kind == QUARANTINE and "new_network" in out.effect.reason
    held = unsaved(out)
    assert held.reasons == ("risk_step_up", "quarantined", "store_unavailable") and held.advice == (
        "quarantined",
    )
    denied = combine(beh, a, True, False, ("policy_forbid",), highs=5)
    assert denied.reasons == ("policy_forbid", "quarantined")


def test_verdict_an_erroring_forbid_denies() -> None:
    forbid = PolicyError("f1", True, "error", "boom")
    permit = PolicyError("p9", False, "error", "bang")
    v = verdict(Answer(True, ("p1",), (forbid,)))
    assert (v.allowed, v.reasons, v.policies) == (False, ("forbid_errored",), ("f1",))
    v = verdict(Answer(False, ("f2",), (forbid,)))
    assert (v.allowed, v.reasons, v.policies) == (False, ("policy_forbid", "forbid_errored"), ("f2",))
    v = verdict(Answer(True, ("p1",), (permit,)))
    assert (v.allowed, v.reasons, v.errors) == (True, ("policy_permit", "policy_errored"), (("p9", "bang"),))
    v = verdict(Answer(False, (), ()))
    assert (v.allowed, v.reasons, v.policies, v.errors) == (False, ("no_matching_permit",), (), ())


def test_the_pipeline_modules_are_pure() -> None:
    """combine and authorize import no store, no audit, no operations: they cannot apply an effect."""
    for name in ("authorize", "combine"):
        source = (
            Path(__file__).resolve().parents[1] / "src" / "vigil" / "pipeline" / f"{name}.py"
        ).read_text()
        assert (
            "vigil.store" not in source and "vigil.audit" not in source and "vigil.operations" not in source
        )
