"""Cedar's own corpus (vendor/conformance/cedar): every request agrees with Cedar on decision,
determining policies and erroring policies, and nearly every policy is compiled (a compiler
regression that sent policies to the cedarpy fallback would pass the agreement checks alone)."""

from __future__ import annotations

from tests.cedar_corpus import CORPUS, generated, hand_written, run
from tests.vendored import require

# docs/conformance.md: the 68 corpus policies that call an extension function with the wrong number
# of arguments have no typed tree and go to cedarpy; every other policy is compiled.
CORPUS_FALLBACKS = 68
COMPILED_POLICIES = 7809 - CORPUS_FALLBACKS  # one policy per generated test


def test_hand_written_tests_agree() -> None:
    require(CORPUS / "tests")
    rep = run(hand_written())
    assert rep.tests == 22
    assert rep.requests == 74
    assert rep.disagreements == []
    assert rep.agree == rep.requests
    assert rep.errors_agree == rep.requests
    assert (rep.policies, rep.fallbacks) == (30, 0)


def test_generated_corpus_agrees() -> None:
    require(CORPUS / "corpus" / "corpus-tests.tar.gz")
    rep = run(generated())
    assert rep.tests == 7809
    assert rep.requests == 62472
    assert rep.disagreements == []
    assert rep.agree == rep.requests
    # Erroring policies match too (Cedar reports them in `errors`).
    assert rep.errors_agree == rep.requests
    # Some requests have an erroring forbid: there vigil's engine denies (tests/test_differential.py).
    assert rep.forbid_errored > 0
    # Decided by vigil's own compiled code, not by the fallback.
    assert rep.fallbacks == CORPUS_FALLBACKS
    assert rep.policies - rep.fallbacks == COMPILED_POLICIES
