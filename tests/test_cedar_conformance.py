"""Cedar's own corpus: every request agrees with Cedar on decision and determining policies."""

from __future__ import annotations

import pytest

from tests.cedar_corpus import SHARED, generated, hand_written, run

pytestmark = pytest.mark.skipif(not SHARED.exists(), reason="shared conformance data not present")


def test_hand_written_tests_agree() -> None:
    rep = run(hand_written())
    assert rep.requests == 74
    assert rep.disagreements == []
    assert rep.agree == rep.requests
    assert rep.errors_agree == rep.requests


def test_generated_corpus_agrees() -> None:
    rep = run(generated())
    assert rep.tests == 7809
    assert rep.requests == 62472
    assert rep.disagreements == []
    assert rep.agree == rep.requests
    # Erroring policies match too (Cedar reports them in `errors`).
    assert rep.errors_agree == rep.requests
    # Some requests have an erroring forbid: there vigil's engine denies (tests/test_engine.py).
    assert rep.forbid_errored > 0
