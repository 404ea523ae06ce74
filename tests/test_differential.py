"""Differential tests: vigil's compiled authorizer against cedarpy (the reference semantics).

Random policy sets, entity sets and requests come from :mod:`strategies`. At the authorizer level
vigil must give Cedar's exact answer: the decision, the determining policies and the set of
policies that errored. At the engine level (``vigil.Engine`` on a workspace folder) the one
documented difference is checked: a request on which a forbid policy errors is denied with reason
``forbid_errored``; every other request gets Cedar's decision and determining policies. Cases
with a generated schema (tests/schema_strategies.py) compare vigil's reading of the schema (context
typing) with Cedar's, and the engine's validation (a workspace loads exactly when Cedar validates
its policies).

The runs are derandomized (stable in CI). ``VIGIL_HYPOTHESIS_EXAMPLES=N`` runs N examples per test
with a random seed instead, for long bug hunts (``--hypothesis-seed`` makes one reproducible).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import cedarpy
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from tests.profiles import examples
from tests.schema_strategies import schema_cases
from tests.strategies import Case, Policy, Request, cases, contexts, entity_sets, policy_lists
from vigil import Engine, VigilError
from vigil.audit.sink import MemorySink
from vigil.errors import WorkspaceError
from vigil.policy.build import BuildError, PolicySet, build_policy_set
from vigil.policy.cedar import PolicySource
from vigil.policy.evaluator import Authorizer
from vigil.policy.json_values import record_to_cedar
from vigil.policy.request_values import typed_context


def _settings(default: int) -> settings:
    """The profile of tests/profiles.py with this test's example count."""
    return settings(max_examples=examples(default))


_POLICY_ID = re.compile(r"policy `([^`]*)`")
# What the engine adds to every context (behaviour signals, neutral without learned behaviour).
ENGINE_CONTEXT = {"vigil": {"risk": 0, "signals": []}}

Verdict = tuple[bool, frozenset[str], frozenset[str]]


# -- the two implementations -----------------------------------------------------------------------


class Reference:
    """cedarpy on one policy set, entity set and schema, if any (parsed once). Raises ValueError
    when cedarpy refuses the entities."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.policies = _cedar_policies(case)
        # A generated schema is valid: a generator bug surfaces here instead of as refused entities.
        self.schema = None if case.schema is None else _cedar_schema(case.schema)
        self.entities = cedarpy.Entities.from_json_str(json.dumps(list(case.entities)), self.schema)

    def answer(self, request: Request, extra_context: dict[str, Any] | None = None) -> Verdict | None:
        """(allowed, determining ids, erroring ids), or None when Cedar refuses the request itself.

        Ids are the ones vigil reports: a static policy by its @id when it has one (Cedar by
        ``policyN``), a link by its own id."""
        result = cedarpy.is_authorized(
            request.cedar(extra_context), self.policies, self.entities, self.schema
        )
        diag = result.diagnostics
        if result.decision == cedarpy.Decision.NoDecision:
            return None
        errors = set()
        for message in diag.errors:
            m = _POLICY_ID.search(message)
            assert m is not None, f"unrecognised cedarpy error: {message}"
            errors.add(m.group(1))
        ids = self.case.vigil_id
        return result.allowed, frozenset(map(ids, diag.reasons)), frozenset(map(ids, errors))


def _cedar_schema(text: str) -> Any:
    try:
        return cedarpy.Schema.from_str(text)
    except ValueError as e:
        raise AssertionError(f"generated schema refused by cedarpy: {e}") from None


def _cedar_policies(case: Case) -> Any:
    policies = cedarpy.PolicySet.from_str(case.text)
    return policies.with_linked_batch(case.cedarpy_links()) if case.links else policies


def parses(case: Case) -> bool:
    try:
        _cedar_policies(case)
    except (ValueError, KeyError):
        return False
    return True


def _all_ids(case: Case) -> frozenset[str]:
    """Every policy id a forced fallback must name: static policies and links (not templates)."""
    static = {f"policy{i}" for i, p in enumerate(case.policies) if not p.template}
    return frozenset(static | {x["id"] for x in case.links})


def build(case: Case, force_fallback: frozenset[str] = frozenset()) -> PolicySet:
    """vigil's policy set; from two files when there are three policies or more (ids run on across
    files, as Cedar numbers the concatenated text)."""
    texts = [p.text for p in case.policies]
    sources = [PolicySource("a.cedar", "\n".join(texts[:2]))]
    if len(texts) > 2:
        sources.append(PolicySource("b.cedar", "\n".join(texts[2:])))
    return build_policy_set(
        sources,
        list(case.entities),
        case.schema,
        links=case.links,
        require_valid=False,
        force_fallback=force_fallback,
    )


def vigil_answer(
    ps: PolicySet, request: Request, overlay: Any = None, authorizer: Authorizer | None = None
) -> tuple[Verdict, Any]:
    # The context as the engine reads it: typed by vigil's own reading of the schema, if any.
    context = typed_context(ps.schema, request.action_uid, request.context)
    ans = (authorizer or ps.authorizer).is_authorized(
        request.principal, request.action_uid, request.resource, context, overlay
    )
    verdict = (ans.allowed, frozenset(ans.policies), frozenset(e.policy_id for e in ans.errors))
    return verdict, ans


def _check_case(case: Case, fallback: bool = False) -> None:
    assume(parses(case))
    _compare(case, fallback)


def _compare(case: Case, fallback: bool = False) -> None:
    try:
        ref = Reference(case)
    except ValueError:  # an entity set Cedar refuses: vigil refuses it too
        with pytest.raises(BuildError):
            build(case)
        return
    ps = build(case, _all_ids(case) if fallback else frozenset())
    try:
        assert len(ps.fallbacks) == (len(_all_ids(case)) if fallback else 0)
        for request in case.requests:
            expected = ref.answer(request)
            if expected is None:
                # Cedar refuses a request that does not fit the schema; vigil does not validate
                # requests (the engine adds context.vigil, for one), so there is nothing to compare.
                assert case.schema is not None, "generated contexts are well formed"
                continue
            got, ans = vigil_answer(ps, request)
            assert got == expected, (
                f"request {request.cedar()}: vigil {got} != cedar {expected}; vigil errors: {ans.errors}"
            )
            for e in ans.errors:
                assert e.forbid == case.effect(e.policy_id), e
        # The same policies with every resource guard decided on first use instead of at load
        # (estates too large to decide them all at load): twice each, first contact then kept.
        lazy = Authorizer(ps.authorizer.policies, ps.authorizer.store, eager_guard_limit=0)
        for request in case.requests * 2:
            expected = ref.answer(request)
            if expected is not None:
                got, ans = vigil_answer(ps, request, authorizer=lazy)
                assert got == expected, f"guards on first use: request {request.cedar()}: {got} != {expected}"
    except AssertionError:
        # Printed with the falsifying example: the case as a test to paste into this file.
        if currently_in_test_context():  # under @given; a plain test shows its case in its source
            note(
                "ready-to-paste test:\n" + case.as_test(check="_compare_fallback" if fallback else "_compare")
            )
        raise


def _compare_fallback(case: Case) -> None:
    _compare(case, fallback=True)


# -- authorizer level ------------------------------------------------------------------------------


@_settings(600)
@given(cases())
def test_authorizer_matches_cedar(case: Case) -> None:
    """Decision, determining policies and erroring policies all equal Cedar's."""
    _check_case(case)


@_settings(150)
@given(cases(max_policies=3, max_depth=5))
def test_authorizer_matches_cedar_deep_expressions(case: Case) -> None:
    """Fewer policies, deeper expressions."""
    _check_case(case)


@_settings(150)
@given(cases(max_policies=4))
def test_fallback_path_matches_cedar(case: Case) -> None:
    """Policies evaluated through cedarpy (the compiler's fallback) give the same answers."""
    _check_case(case, fallback=True)


@_settings(120)
@given(st.data())
def test_overlay_matches_cedar_with_merged_attributes(data: st.DataObject) -> None:
    """``overlay`` as the engine builds it from AuthZEN ``properties`` (the stored attributes updated
    with the properties) acts as Cedar does on an entity set holding the updated attributes.

    Only entities that exist are overlaid: the engine denies unknown principals before evaluation.
    """
    case = data.draw(cases(max_requests=1))
    assume(parses(case))
    assume(all(p["type"] for e in case.entities for p in e["parents"]))
    existing = {(e["uid"]["type"], e["uid"]["id"]): e for e in case.entities}
    (request,) = case.requests
    props: dict[tuple[str, str], dict[str, Any]] = {}
    for uid in (request.principal, request.resource):
        if uid in existing and data.draw(st.booleans()):
            props[uid] = data.draw(contexts())
    assume(any(props.values()))
    merged = {uid: {**existing[uid]["attrs"], **p} for uid, p in props.items()}
    updated = tuple(
        {**e, "attrs": merged[(e["uid"]["type"], e["uid"]["id"])]}
        if (e["uid"]["type"], e["uid"]["id"]) in merged
        else e
        for e in case.entities
    )
    expected = Reference(Case(case.policies, updated, case.requests, case.links)).answer(request)
    overlay = {uid: record_to_cedar(attrs, "properties") for uid, attrs in merged.items()}
    got, _ans = vigil_answer(build(case), request, overlay)
    assert got == expected


@_settings(120)
@given(schema_cases())
def test_authorizer_matches_cedar_with_a_schema(case: Case) -> None:
    """With a schema (tests/schema_strategies.py): entities typed by it, the context typed by vigil's
    own reading of it (bare strings to extension values, ``{type, id}`` to entity references, common
    types, ``__cedar::`` names, a namespace's ``type ipaddr = String``), action groups from it.
    Requests that Cedar refuses as not fitting the schema are not compared."""
    _check_case(case)


# -- engine level ----------------------------------------------------------------------------------


def _engine(case: Case, root: Path) -> Engine:
    # Shadow mode: behaviour never changes a decision, and the policies see a neutral context.vigil.
    (root / "vigil.toml").write_text(
        '[behaviour]\nmode = "shadow"\n\n[store]\nbackend = "memory"\n', encoding="utf-8"
    )
    (root / "policies").mkdir()
    (root / "policies" / "p.cedar").write_text(case.text, encoding="utf-8")
    (root / "entities").mkdir()
    (root / "entities" / "e.json").write_text(json.dumps(list(case.entities)), encoding="utf-8")
    if case.schema is not None:
        (root / "schema.cedarschema").write_text(case.schema, encoding="utf-8")
    if case.links:  # the documented links.json form
        (root / "links.json").write_text(json.dumps(list(case.links)), encoding="utf-8")
    return Engine.from_workspace(root, audit=MemorySink())


def _authzen(request: Request) -> dict[str, Any]:
    return {
        "subject": {"type": request.principal[0], "id": request.principal[1]},
        "action": {"name": request.action},
        "resource": {"type": request.resource[0], "id": request.resource[1]},
        "context": request.context,
    }


@_settings(100)
@given(cases(max_requests=4, namespaced=False))
def test_engine_denies_when_a_forbid_errors(case: Case) -> None:
    """The engine's one stricter rule: an erroring forbid denies (``forbid_errored``); otherwise Cedar."""
    assume(parses(case))
    try:
        ref = Reference(case)
    except ValueError:
        assume(False)  # an entity set Cedar refuses (checked by test_authorizer_matches_cedar)
    known = {(e["uid"]["type"], e["uid"]["id"]) for e in case.entities}
    with tempfile.TemporaryDirectory() as d, _engine(case, Path(d)) as engine:
        for request in case.requests:
            record = engine.decide(_authzen(request))
            if request.principal not in known:
                assert not record.allowed
                assert record.reason_codes == ("unknown_identity",)
                continue
            expected = ref.answer(request, ENGINE_CONTEXT)
            assert expected is not None
            allowed, reasons, errors = expected
            forbid_errored = any(case.effect(pid) for pid in errors)
            assert {pid for pid, _msg in record.errors} == errors
            if forbid_errored:
                assert not record.allowed, request
                assert "forbid_errored" in record.reason_codes
            else:
                assert record.allowed == allowed, request
                assert set(record.policies) == reasons
                assert "forbid_errored" not in record.reason_codes


@_settings(60)
@given(schema_cases(max_requests=3, untyped=10, root_actions_only=True))
def test_engine_with_a_schema_validates_and_decides_as_cedar(case: Case) -> None:
    """A workspace with ``schema.cedarschema`` loads exactly when Cedar validates its policies (strict)
    and accepts its entities; then every request that fits the schema is decided as Cedar decides
    it (with the engine's stricter rule for an erroring forbid). The schemas declare the engine's
    ``context.vigil``, as a workspace's schema does."""
    assume(parses(case))
    assert case.schema is not None
    invalid = cedarpy.validate_policies(case.text, _cedar_schema(case.schema)).errors
    try:
        ref: Reference | None = Reference(case)
    except ValueError:
        ref = None  # entities that do not fit the schema
    with tempfile.TemporaryDirectory() as d:
        if invalid or ref is None:
            with pytest.raises(WorkspaceError):
                _engine(case, Path(d))
            return
        known = {(e["uid"]["type"], e["uid"]["id"]) for e in case.entities}
        with _engine(case, Path(d)) as engine:
            for request in case.requests:
                record = engine.decide(_authzen(request))
                if request.principal not in known:
                    assert not record.allowed
                    assert record.reason_codes == ("unknown_identity",)
                    continue
                expected = ref.answer(request, ENGINE_CONTEXT)
                if expected is None:
                    continue  # does not fit the schema: Cedar gives no decision
                allowed, reasons, errors = expected
                assert {pid for pid, _msg in record.errors} == errors, request
                if any(case.effect(pid) for pid in errors):
                    assert not record.allowed, request
                    assert "forbid_errored" in record.reason_codes
                else:
                    assert record.allowed == allowed, request
                    assert set(record.policies) == reasons


# -- policies and entities on their own ------------------------------------------------------------


@_settings(200)
@given(policy_lists(templates=False), entity_sets())
def test_build_accepts_what_cedar_accepts(pols: tuple[Policy, ...], ents: tuple[dict[str, Any], ...]) -> None:
    """Every policy set and entity set cedarpy accepts builds (compiled or fallback), and no other."""
    case = Case(pols, ents, ())
    try:
        Reference(case)
    except ValueError:
        with pytest.raises(BuildError):
            build(case)
        return
    ps = build(case)
    assert len(ps.policies) == len(pols)
    assert [p.id for p in ps.policies] == [case.vigil_id(f"policy{i}") for i in range(len(pols))]


def test_erroring_forbid_example() -> None:
    """A fixed example of the engine rule, readable without hypothesis."""
    case = Case(
        (
            Policy(False, "permit(principal, action, resource);"),
            Policy(True, "forbid(principal, action, resource) when { principal.level > 1 };"),
        ),
        ({"uid": {"type": "User", "id": "a"}, "attrs": {"level": "high"}, "parents": []},),
        (Request(("User", "a"), "read", ("Doc", "d"), {}),),
    )
    ps = build(case)
    got, ans = vigil_answer(ps, case.requests[0])
    expected = (True, frozenset({"policy0"}), frozenset({"policy1"}))
    assert got == Reference(case).answer(case.requests[0]) == expected
    assert ans.errors[0].forbid
    with tempfile.TemporaryDirectory() as d, _engine(case, Path(d)) as engine:
        record = engine.decide(_authzen(case.requests[0]))
    assert not record.allowed
    assert record.reason_codes == ("forbid_errored",)


def test_context_errors_are_vigil_errors() -> None:
    with pytest.raises(VigilError):
        record_to_cedar({"x": None})


@pytest.mark.parametrize(
    "condition",
    [
        "resource in [resource, {}]",  # once allowed: a record's set key is a tuple, like an entity uid
        'Doc::"a" in [{a: 1, "b": "x"}]',
        "resource in [true]",
        "resource in [resource]",
    ],
)
def test_in_set_with_non_entities(condition: str) -> None:
    """Found by the campaign: `in` must type-check every element of the set, records included."""
    case = Case(
        (Policy(False, f"permit(principal, action, resource) when {{ {condition} }};"),),
        ({"uid": {"type": "Doc", "id": "r"}, "attrs": {}, "parents": []},),
        (Request(("User", "a"), "read", ("Doc", "r"), {}),),
    )
    _compare(case)


# -- context JSON escapes --------------------------------------------------------------------------

_PROBES = (
    "context has x",
    "context.x has __extn",
    "context.x has __entity",
    "context.x has type",
    "context.x has fn",
    'context.x == ip("1.2.3.4")',
    'context.x == A::"b"',
    "context.x is A",
    "context.x == {}",
    "context has __extn",
    "context has __entity",
    'context.x.contains(ip("1.2.3.4"))',
    "context.x == 1",
    "context.x == true",
    'context.x == "1.2.3.4"',
)
_PROBE_CASE = Case(
    tuple(Policy(False, f"permit(principal, action, resource) when {{ {p} }};") for p in _PROBES), (), ()
)


def _probe(context: dict[str, Any]) -> tuple[Verdict | None, Verdict | None]:
    """(Cedar's, vigil's) answer to the probe policies on ``context``; None where it is refused."""
    request = Request(("U", "a"), "x", ("U", "r"), context)
    cedar = Reference(_PROBE_CASE).answer(request)
    try:
        vigil_verdict: Verdict | None = vigil_answer(build(_PROBE_CASE), request)[0]
    except VigilError:
        vigil_verdict = None
    return cedar, vigil_verdict


_IP = {"__extn": {"fn": "ip", "arg": "1.2.3.4"}}
# Values of `context.x` on which vigil reads the JSON exactly as Cedar does.
ESCAPES_AGREE = (
    _IP,
    {"__entity": {"type": "A", "id": "b"}},
    {"__entity": {"type": "NS::A", "id": "b"}},
    {"type": "A", "id": "b"},
    {"__extn": {"fn": "ip", "arg": "bogus"}},
    {"__extn": {"fn": "nope", "arg": "1"}},
    {"__extn": {"fn": "ipaddr", "arg": "1.2.3.4"}},
    {"__extn": {"fn": "ip", "arg": 1}},
    {"__extn": {"fn": "ip", "args": []}},
    {"__extn": {"fn": "ip", "args": ["1.2.3.4"]}},
    {"__extn": {"fn": "ip", "arg": _IP}},
    {"__extn": {"fn": "isIpv4", "arg": _IP}},
    {"__extn": {"fn": "ip", "arg": "1.2.3.4", "z": 1}},
    {"__extn": {"fn": "ip", "arg": "1.2.3.4", "args": ["1.2.3.5"]}},
    {"__entity": {"type": "A", "id": "b", "z": 1}},
    {"__entity": {"type": "", "id": "b"}},
    {"__extn": {"fn": "ip", "arg": "1.2.3.4"}, "other": 1},
    {"__entity": {"type": "A", "id": "b"}, "__extn": _IP["__extn"]},
    None,
    1.5,
    2**63,
    [1, True, 1],
    [_IP],
    {"k": _IP},
    # Malformed escapes: plain records for Cedar.
    {"__extn": {"fn": "ip"}},
    {"__extn": "ip"},
    {"__extn": {"fn": 1, "arg": "1.2.3.4"}},
    {"__extn": {"fn": "ip", "args": "1.2.3.4"}},
    {"__extn": {"fn": "ip", "arg": ["1.2.3.4"]}},
    {"__entity": {"type": "A"}},
    {"__entity": 'A::"b"'},
    {"__entity": {"type": "A", "id": 1}},
    # Malformed entity escapes and strings Cedar refuses.
    {"__entity": {"type": "a b", "id": "b"}},
    {"__entity": {"type": "A::", "id": "b"}},
    {"__entity": {"type": "if", "id": "b"}},
    {"__expr": "1"},
    "\ud800",
    {"__entity": {"type": "A", "id": "b\ud800"}},
    {"\ud800": 1},
)


@pytest.mark.parametrize("value", ESCAPES_AGREE, ids=lambda v: json.dumps(v)[:48])
def test_context_escape_read_as_cedar_does(value: Any) -> None:
    cedar, got = _probe({"x": value})
    assert got == cedar


@pytest.mark.parametrize("context", [{"__extn": _IP["__extn"]}, {"__entity": {"type": "A", "id": "b"}}])
def test_context_that_is_an_escape_is_refused(context: dict[str, Any]) -> None:
    """Cedar: "expression is not a record"."""
    cedar, got = _probe(context)
    assert cedar is None and got is None


@pytest.mark.parametrize(
    "context",
    [
        pytest.param({"__expr": "1"}, id="retired-__expr-escape-as-context"),
        pytest.param({"__extn": {"fn": "ip"}}, id="malformed-escape-as-context-is-a-record"),
    ],
)
def test_context_top_level_read_as_cedar_does(context: dict[str, Any]) -> None:
    cedar, got = _probe(context)
    assert got == cedar


# -- the fallback path -----------------------------------------------------------------------------


def test_fallback_policy_reads_extension_values_in_context() -> None:
    case = Case(
        (Policy(False, 'permit(principal, action, resource) when { context.src == ip("10.0.0.1") };'),),
        (),
        (Request(("User", "a"), "read", ("Doc", "d"), {"src": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}}),),
    )
    _compare(case)
    _compare(case, fallback=True)


@pytest.mark.xfail(
    strict=True, reason="build: fallback policies evaluate the stored entities, ignoring overlays"
)
def test_fallback_policy_sees_overlay() -> None:
    case = Case(
        (Policy(False, "permit(principal, action, resource) when { principal.level > 5 };"),),
        ({"uid": {"type": "User", "id": "a"}, "attrs": {"level": 1}, "parents": []},),
        (Request(("User", "a"), "read", ("Doc", "d"), {}),),
    )
    overlay = {("User", "a"): record_to_cedar({"level": 9})}
    compiled, _ = vigil_answer(build(case), case.requests[0], overlay)
    fallback, _ = vigil_answer(build(case, frozenset({"policy0"})), case.requests[0], overlay)
    assert compiled[0] is True
    assert fallback == compiled


# -- 64-bit overflow -------------------------------------------------------------------------------

_LIMITS = {"max": 2**63 - 1, "min": -(2**63), "root": 3037000499, "over_root": 3037000500}


@pytest.mark.parametrize(
    "condition",
    [
        # overflow: an error (the policy is skipped, and reported among the erroring policies)
        "context.max + 1 > 0",
        "1 + context.max > 0",
        "context.min - 1 < 0",
        "0 - context.min > 0",
        "context.min + (-1) < 0",
        "context.max * 2 > 0",
        "context.min * -1 > 0",
        "-1 * context.min > 0",
        "context.over_root * context.over_root > 0",
        "-context.min > 0",
        "-(-context.max - 1) > 0",
        "(context.max + 1) - 1 == context.max",
        # the same operations just inside the range: no error
        "context.max + 0 == context.max",
        "context.max - 1 < context.max",
        "context.min + context.max == -1",
        "context.min * 1 == context.min",
        "context.root * context.root > 0",
        "-context.max == context.min + 1",
        "-(context.min + 1) == context.max",
        "context.min == -9223372036854775808",
        "-9223372036854775807 - 1 == context.min",
        "context.max + 1 > 0 || true",
        "true || context.max + 1 > 0",
        "false && context.max + 1 > 0",
    ],
)
@pytest.mark.parametrize("forbid", [False, True], ids=["permit", "forbid"])
def test_integer_overflow_matches_cedar(condition: str, forbid: bool) -> None:
    """``+ - *`` and negation on 64-bit bounds: an overflow is an evaluation error, as in Cedar."""
    effect = "forbid" if forbid else "permit"
    case = Case(
        (
            Policy(False, "permit(principal, action, resource) when { context has flag };"),
            Policy(forbid, f"{effect}(principal, action, resource) when {{ {condition} }};"),
        ),
        (),
        (
            Request(("User", "a"), "read", ("Doc", "d"), dict(_LIMITS)),
            Request(("User", "a"), "read", ("Doc", "d"), {**_LIMITS, "flag": True}),
        ),
    )
    _compare(case)
    _compare(case, fallback=True)
