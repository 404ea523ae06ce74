"""The escalation graph's reachability equals a brute-force fixpoint over the raw policies.

Random small estates (``vigil.escalation.synthetic``: wildcards, NotAction/NotResource, denies,
groups, trust policies naming the account, a principal, ``*`` or a service, policy versions,
boundaries, date conditions) are analysed by vigil and by ``tests/escalation_oracle.py``; the
principals reaching admin (unconditionally, and at all) must be the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.escalation_oracle import Oracle
from vigil.escalation import analyse, build_graph, parse_export
from vigil.escalation.synthetic import SMALL, Shape, generate

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DENSE = Shape(wildcard_action=0.25, not_action=0.1, not_resource=0.1, deny=0.25, boundary=0.2)


def _compare(export: dict, hub_min: int = 16) -> None:
    analysis = analyse(build_graph(parse_export(export, NOW), hub_min=hub_min))
    strict, loose = Oracle(export, NOW).reach()
    ours_strict = {a for a in analysis.graph.principals if analysis.verdict(a) in ("admin", "reaches_admin")}
    ours_loose = {a for a in analysis.graph.principals if analysis.verdict(a) != "none"}
    assert ours_strict == strict, (sorted(ours_strict - strict), sorted(strict - ours_strict))
    assert ours_loose == loose, (sorted(ours_loose - loose), sorted(loose - ours_loose))


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    users=st.integers(0, 5),
    roles=st.integers(0, 4),
    groups=st.integers(0, 3),
    policies=st.integers(1, 4),
    dense=st.booleans(),
)
def test_reachability_equals_the_oracle(
    seed: int, users: int, roles: int, groups: int, policies: int, dense: bool
) -> None:
    export = generate(
        seed, users=users, roles=roles, groups=groups, policies=policies, shape=DENSE if dense else SMALL
    )
    _compare(export)


def test_generated_estates_are_varied() -> None:
    """The generator produces every verdict over a few seeds (the property test is not vacuous)."""
    seen: set[str] = set()
    for seed in range(40):
        analysis = analyse(build_graph(parse_export(generate(seed), NOW)))
        seen |= {analysis.verdict(a) for a in analysis.graph.principals}
    assert seen == {"admin", "reaches_admin", "conditional", "none"}
