"""Malformed input, fuzzed: requests into ``Engine.decide``, workspace folders into
``Engine.from_workspace`` and ``Engine.reload``.

* A request either gets a DecisionRecord or raises :class:`vigil.VigilError`, never anything else;
  a raised error leaves no trace (activity and audit unchanged); a malformed request that is
  accepted is never allowed unless its well-formed counterpart is.
* A broken workspace raises :class:`vigil.WorkspaceError` only, and its ``problems`` name the
  offending file (and, for a policy syntax error, ``policies/x.cedar:LINE``).
* ``reload`` of a broken workspace keeps the last good revision, which decides as before.

Derandomized for CI (the ``ci`` profile, tests/profiles.py); ``VIGIL_HYPOTHESIS_EXAMPLES=N`` runs N random
examples per test instead.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import vigil
from tests.profiles import examples
from vigil.audit.sink import MemorySink
from vigil.policy.json_values import MAX_DEPTH, MAX_STRING


def _settings(default: int) -> settings:
    """The profile of tests/profiles.py with this test's example count."""
    return settings(max_examples=examples(default))


# -- the workspace ---------------------------------------------------------------------------------

SCHEMA = """\
entity Team;
entity Agent in [Team] = { level: Long, nick?: String };
entity Doc in [Team] = { public: Bool };
action read, write, delete appliesTo {
  principal: [Agent],
  resource: [Doc],
  context: { mfa?: Bool, region?: String, src?: ipaddr }
};
"""

POLICIES = """\
@id("read-public")
permit(principal is Agent, action == Action::"read", resource is Doc) when { resource.public };
@id("admin")
permit(principal == Agent::"admin", action, resource);
@id("write-mfa")
permit(principal, action == Action::"write", resource)
when { context has mfa && context.mfa && principal.level >= 3 };
@id("blocked-region")
forbid(principal, action, resource) when { context has region && context.region == "blocked" };
@id("delete-senior")
forbid(principal, action == Action::"delete", resource) unless { principal.level > 5 };
@id("internal-net")
forbid(principal, action == Action::"write", resource)
when { context has src && !context.src.isInRange(ip("10.0.0.0/8")) };
"""

# One valid policy per line: x.cedar is built from these around a broken statement.
ONE_LINE_POLICIES = (
    'permit(principal == Agent::"alice", action == Action::"read", resource);',
    "forbid(principal, action, resource) when { principal.level < 0 };",
    'permit(principal in Team::"t", action in [Action::"read"], resource is Doc);',
    "// a comment line",
    "",
)

ENTITIES = """\
[
  {"uid": {"type": "Team", "id": "t"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Agent", "id": "admin"}, "attrs": {"level": 9}, "parents": [{"type": "Team", "id": "t"}]},
  {"uid": {"type": "Agent", "id": "alice"}, "attrs": {"level": 4}, "parents": [{"type": "Team", "id": "t"}]},
  {"uid": {"type": "Agent", "id": "bob"}, "attrs": {"level": 1}, "parents": []},
  {"uid": {"type": "Doc", "id": "pub"}, "attrs": {"public": true}, "parents": [{"type": "Team", "id": "t"}]},
  {"uid": {"type": "Doc", "id": "priv"}, "attrs": {"public": false}, "parents": []}
]
"""

# Shadow mode: behaviour (risk) never changes a decision here, so decisions are the policies' alone.
SETTINGS = '[behaviour]\nmode = "shadow"\n\n[store]\nbackend = "memory"\n\n[audit]\nsink = "none"\n'

GOOD_FILES = {
    "vigil.toml": SETTINGS,
    "schema.cedarschema": SCHEMA,
    "policies/a.cedar": POLICIES,
    "policies/x.cedar": "\n".join(ONE_LINE_POLICIES[:3]) + "\n",
    "entities/e.json": ENTITIES,
}

AGENTS = ("admin", "alice", "bob")
DOCS = ("pub", "priv")
ACTIONS = ("read", "write", "delete")


def write_workspace(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def engine() -> Iterator[vigil.Engine]:
    with tempfile.TemporaryDirectory() as d:
        write_workspace(Path(d), GOOD_FILES)
        with vigil.Engine.from_workspace(d, audit=MemorySink()) as e:
            yield e


# -- requests: well formed, and junk ---------------------------------------------------------------


@st.composite
def good_requests(draw: Any) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if draw(st.booleans()):
        context["mfa"] = draw(st.booleans())
    if draw(st.booleans()):
        context["region"] = draw(st.sampled_from(("eu", "blocked")))
    if draw(st.booleans()):
        context["src"] = draw(st.sampled_from(("10.1.2.3", "8.8.8.8")))
    return {
        "subject": {"type": "Agent", "id": draw(st.sampled_from((*AGENTS, "nobody")))},
        "action": {"name": draw(st.sampled_from((*ACTIONS, "fly")))},
        "resource": {"type": "Doc", "id": draw(st.sampled_from((*DOCS, "nothing")))},
        "context": context,
    }


SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
WEIRD_TEXT = st.text(st.one_of(st.characters(), SURROGATE), max_size=6)
HUGE_TEXT = st.integers(MAX_STRING + 1, MAX_STRING + 64).map(lambda n: "x" * n)
LONG_ID = st.integers(1025, 1100).map(lambda n: "y" * n)  # longer than an id or type may be
GIANT_INT = st.one_of(st.integers(min_value=2**63), st.integers(max_value=-(2**63) - 1))
KEYS = st.one_of(
    st.sampled_from(
        (
            "mfa",
            "region",
            "src",
            "level",
            "public",
            "nick",
            "__extn",
            "__entity",
            "type",
            "id",
            "fn",
            "arg",
            "args",
            "__expr",
            "",
        )
    ),
    WEIRD_TEXT,
)
EXTN_FNS = ("ip", "decimal", "datetime", "duration", "ipaddr", "nope", "", "offset", "toDate", "lessThan")
EXTN_ARGS = st.one_of(
    st.sampled_from(("1.2.3.4", "bogus", "1.5", "1.23456", "2024-13-01", "1x", "10.0.0.0/33", "")),
    WEIRD_TEXT,
    HUGE_TEXT,
    st.none(),
    st.integers(),
    st.floats(),
    st.lists(st.sampled_from(("1.2.3.4", "1d")), max_size=3),
)


def nested(depth: int, kind: str) -> Any:
    """A value nested ``depth`` levels deep (lists, records or ``__extn`` calls)."""
    value: Any = "x"
    for _ in range(depth):
        if kind == "list":
            value = [value]
        elif kind == "record":
            value = {"k": value}
        else:
            value = {"__extn": {"fn": "toDate", "arg": value}}
    return value


SPECIAL_JUNK = st.one_of(
    st.builds(lambda fn, arg: {"__extn": {"fn": fn, "arg": arg}}, st.sampled_from(EXTN_FNS), EXTN_ARGS),
    st.builds(lambda fn, args: {"__extn": {"fn": fn, "args": args}}, st.sampled_from(EXTN_FNS), EXTN_ARGS),
    st.builds(
        lambda spec: {"__extn": spec}, st.one_of(st.none(), WEIRD_TEXT, st.dictionaries(KEYS, EXTN_ARGS))
    ),
    st.builds(
        lambda spec: {"__entity": spec},
        st.one_of(
            st.none(),
            WEIRD_TEXT,
            st.fixed_dictionaries(
                {
                    "type": st.one_of(WEIRD_TEXT, st.integers()),
                    "id": st.one_of(WEIRD_TEXT, HUGE_TEXT, st.none()),
                }
            ),
        ),
    ),
    st.builds(nested, st.integers(MAX_DEPTH - 1, MAX_DEPTH + 8), st.sampled_from(("list", "record", "extn"))),
)
# Leaves of junk; plain Bools and in-range Longs only appear *inside* containers (see JUNK).
JUNK_LEAVES = st.one_of(st.none(), st.floats(), GIANT_INT, WEIRD_TEXT, HUGE_TEXT, SPECIAL_JUNK)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(KEYS, children, max_size=3),
        st.dictionaries(st.integers(), children, min_size=1, max_size=2),  # not JSON: non-string keys
    )


# JSON-ish junk that is never a plain Bool or an in-range Long at the top: the workspace's policies
# test `mfa` (Bool) and `level` (Long), so junk can never legitimately satisfy a permit.
JUNK = st.recursive(JUNK_LEAVES, _containers, max_leaves=6).filter(
    lambda v: not (type(v) is bool or (type(v) is int and -(2**63) <= v < 2**63))
)
ANY_JSON = st.one_of(JUNK, st.booleans(), st.integers(-5, 5), st.sampled_from(("", "alice", "Agent")))


@dataclass
class Mutation:
    """A malformed request and its well-formed counterpart (None: there is none, it must be refused)."""

    request: Any
    counterpart: dict[str, Any] | None
    label: str


KNOWN_NAMES = frozenset((*AGENTS, *DOCS, *ACTIONS, "Agent", "Doc", "Team"))


def _names_known(value: Any) -> bool:
    """Whether junk spells a real entity, type or action somewhere (then it may be well formed)."""
    if isinstance(value, str):
        return value in KNOWN_NAMES
    if isinstance(value, dict):
        return any(_names_known(k) or _names_known(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_names_known(v) for v in value)
    return False


def _copy(request: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in request.items()}


@st.composite
def mutations(draw: Any) -> Mutation:
    base = draw(good_requests())
    kind = draw(
        st.sampled_from(
            (
                "not_an_object",
                "drop_field",
                "field_junk",
                "member_junk",
                "extra_top",
                "extra_member",
                "context_value",
                "context_value",
                "context_value",
                "context_junk",
                "properties",
                "properties",
            )
        )
    )
    req = _copy(base)
    if kind == "not_an_object":
        return Mutation(draw(st.one_of(JUNK, st.lists(ANY_JSON, max_size=2), st.just({}))), None, kind)
    if kind == "drop_field":
        field = draw(st.sampled_from(("subject", "action", "resource")))
        del req[field]
        return Mutation(req, None, f"{kind}:{field}")
    if kind == "field_junk":
        field = draw(st.sampled_from(("subject", "action", "resource")))
        value = draw(ANY_JSON)
        req[field] = None if _names_known(value) else value
        # A junk object with string "type" and "id" (or "name") is a well-formed unknown entity.
        return Mutation(req, base, f"{kind}:{field}")
    if kind == "member_junk":
        field, member = draw(
            st.sampled_from(
                (
                    ("subject", "type"),
                    ("subject", "id"),
                    ("resource", "type"),
                    ("resource", "id"),
                    ("action", "name"),
                )
            )
        )
        value = draw(st.one_of(ANY_JSON, LONG_ID))
        # A junk string naming a real entity or action would be well formed: keep those out.
        if _names_known(value):
            value = None
        req[field][member] = value
        return Mutation(req, base, f"{kind}:{field}.{member}")
    if kind == "extra_top":
        req[draw(st.sampled_from(("evaluations", "extra", "id", "")))] = draw(ANY_JSON)
        return Mutation(req, base, kind)
    if kind == "extra_member":
        field = draw(st.sampled_from(("subject", "action", "resource")))
        req[field][draw(st.sampled_from(("extra", "ID", "Type", "name2")))] = draw(ANY_JSON)
        return Mutation(req, base, f"{kind}:{field}")
    if kind == "context_value":
        key = draw(KEYS)
        counterpart = _copy(base)
        counterpart["context"] = {k: v for k, v in base["context"].items() if k != key}
        req["context"] = {**base["context"], key: draw(JUNK)}
        return Mutation(req, counterpart, kind)
    if kind == "context_junk":
        counterpart = _copy(base)
        counterpart["context"] = {}
        req["context"] = draw(st.one_of(JUNK, st.lists(ANY_JSON, max_size=2)))
        return Mutation(req, counterpart, kind)
    # properties: an overlay of junk attributes on the subject, resource or action.
    field = draw(st.sampled_from(("subject", "resource", "action")))
    req[field]["properties"] = draw(st.one_of(st.dictionaries(KEYS, JUNK, max_size=3), JUNK))
    return Mutation(req, base, f"{kind}:{field}")


def _slot(value: Any) -> Any:
    """A profile slot's value to compare: another profile (a peer group, a parent) by identity (its
    own slots are traced as its own entry), anything else by a deep copy."""
    if type(value).__name__ == "Profile":
        return ("profile", id(value))
    if type(value) is tuple and value and type(value[0]).__name__ == "Profile":
        return tuple(("profile", id(v)) for v in value)
    return copy.deepcopy(value)


def _trace(engine: vigil.Engine) -> tuple[Any, ...]:
    """Everything a decision changes: the activity of every identity (all its slots) and the audit sink."""
    activity = engine.activity
    profiles = {}
    for uid in list(activity):
        p = activity.get(uid)
        slots = getattr(type(p), "__slots__", ())
        profiles[uid] = {s: _slot(getattr(p, s, None)) for s in slots}
    sink = engine.audit
    assert isinstance(sink, MemorySink)
    return len(activity), getattr(activity, "untracked", 0), profiles, len(sink.records), sink.dropped


def decide(engine: vigil.Engine, request: Any) -> vigil.DecisionRecord | vigil.VigilError:
    """The record, or the VigilError raised (after checking that it left no trace)."""
    before = _trace(engine)
    try:
        return engine.decide(request)
    except vigil.VigilError as e:
        assert _trace(engine) == before, "a refused request changed the engine's state"
        assert isinstance(e.to_dict()["message"], str)
        return e


@_settings(400)
@given(mutations())
def test_malformed_request_is_decided_or_refused(engine: vigil.Engine, m: Mutation) -> None:
    note(m.label)
    got = decide(engine, m.request)
    if m.counterpart is None:
        assert isinstance(got, vigil.VigilError), f"{m.label}: accepted {m.request!r}"
        return
    if isinstance(got, vigil.VigilError):
        return
    assert isinstance(got, vigil.DecisionRecord)
    if got.allowed:
        well_formed = engine.decide(m.counterpart)
        assert well_formed.allowed, (
            f"{m.label}: malformed request allowed, well-formed one denied: {got.reason_codes}"
        )


@_settings(100)
@given(st.lists(mutations(), min_size=1, max_size=5))
def test_decide_many_never_raises(engine: vigil.Engine, ms: list[Mutation]) -> None:
    records = engine.decide_many([m.request for m in ms])
    assert len(records) == len(ms)
    for m, rec in zip(ms, records, strict=True):
        assert isinstance(rec, vigil.DecisionRecord)
        if m.counterpart is None:
            assert not rec.allowed
            assert rec.reason_codes == ("invalid_request",)


def test_well_formed_requests_decide_as_written(engine: vigil.Engine) -> None:
    """The fixture's policies, so the properties above are not vacuous."""

    def allowed(s: str, a: str, r: str, ctx: dict[str, Any]) -> bool:
        req = {
            "subject": {"type": "Agent", "id": s},
            "action": {"name": a},
            "resource": {"type": "Doc", "id": r},
            "context": ctx,
        }
        return engine.decide(req).allowed

    assert allowed("alice", "read", "pub", {})
    assert allowed("alice", "write", "priv", {"mfa": True})
    assert not allowed("alice", "write", "priv", {"mfa": True, "src": "8.8.8.8"})
    assert not allowed("bob", "write", "priv", {"mfa": True})
    assert allowed("admin", "delete", "priv", {})
    assert not allowed("admin", "delete", "priv", {"region": "blocked"})
    assert not allowed("alice", "delete", "pub", {})


def test_context_names_are_checked_every_time(engine: vigil.Engine) -> None:
    """The context conversion remembers names that passed its text check; a name that only
    compares equal to one of them (a str subclass) is still refused as before."""

    class Name(str):
        pass

    req = {"subject": {"type": "Agent", "id": "alice"}, "action": {"name": "read"}}
    req["resource"] = {"type": "Doc", "id": "pub"}
    assert engine.decide({**req, "context": {"mfa": True}}).allowed
    with pytest.raises(vigil.VigilError) as e:
        engine.decide({**req, "context": {Name("mfa"): True}})
    assert e.value.code == "invalid_value"


# -- workspaces ------------------------------------------------------------------------------------

BROKEN_STATEMENTS = (
    "permit(principal, action, resource) when { principal.level >= };",
    "permit(principal, action resource);",
    "forbid(principal, action, resource) when { 1 + };",
    "permit(principal == Agent::, action, resource);",
    "permit(principal, action, resource) when { context.if };",
    "perm1t(principal, action, resource);",
    "permit(principal, action, resource) when { [1, 2 };",
    'permit(principal, action, resource) when { "a" like 1 };',
    "permit(principal, action, resource) when { 99999999999999999999 > 1 };",
)
# Statements that parse but fail validation against SCHEMA.
INVALID_STATEMENTS = (
    "permit(principal, action, resource) when { principal.nope };",
    'permit(principal is Agent, action == Action::"read", resource) when { principal.level == "x" };',
    'permit(principal, action == Action::"fly", resource);',
)


@dataclass
class Corruption:
    """One broken file: its path, its text and the lines a problem must name (if any)."""

    path: str
    text: str
    lines: tuple[int, ...] = ()


@st.composite
def broken_policy_files(draw: Any) -> Corruption:
    lines: list[str] = []
    bad_lines: list[int] = []
    pool = BROKEN_STATEMENTS if draw(st.integers(0, 3)) else INVALID_STATEMENTS
    for _ in range(draw(st.integers(1, 3))):
        lines += draw(st.lists(st.sampled_from(ONE_LINE_POLICIES), max_size=4))
        lines.append(draw(st.sampled_from(pool)))
        bad_lines.append(len(lines))
    lines += draw(st.lists(st.sampled_from(ONE_LINE_POLICIES), max_size=3))
    return Corruption("policies/x.cedar", "\n".join(lines) + "\n", tuple(bad_lines))


SETTINGS_CORRUPTIONS = (
    "[behaviour\nmode = 'enforce'\n",
    "[behaviour]\nmode = \n",
    "[behaviour]\nmode = 'enforce'\nmode = 'shadow'\n",
    "[audit]\nbuffer = 1_\n",
    "this is not toml\n",
    "[nonsense]\nx = 1\n",
    "[behaviour]\nmood = 'enforce'\n",
    "[behaviour]\nmode = 'sometimes'\n",
    "[audit]\nbuffer = 'big'\n",
    "[audit]\nmask = [1, 2]\n",
    "behaviour = 3\n",
    "\ufeff[behaviour]\n",
)

ENTITY_CORRUPTIONS = (
    "[{",
    '[{"uid": {"type": "Team", "id": "t"}},]',
    "{}",
    "1",
    '"entities"',
    "null",
    "[1]",
    '[{"uid": {"type": "Agent"}, "attrs": {"level": 1}, "parents": []}]',
    '[{"uid": "Agent::\\"z\\"", "attrs": {"level": 1}, "parents": []}]',
    '[{"uid": {"type": 1, "id": "z"}, "attrs": {"level": 1}, "parents": []}]',
    '[{"uid": {"type": "Agent", "id": "z"}, "attrs": {"level": "high"}, "parents": []}]',
    '[{"uid": {"type": "Agent", "id": "z"}, "attrs": {}, "parents": []}]',
    '[{"uid": {"type": "Robot", "id": "z"}, "attrs": {}, "parents": []}]',
    '[{"uid": {"type": "Agent", "id": "z"}, "attrs": {"level": 1}, "parents": [{"type": "Doc", "id": "pub"}]}]',
    '[{"uid": {"type": "Agent", "id": "z"}, "attrs": {"level": 1, "extra": true}, "parents": []}]',
    '[{"uid": {"type": "Doc", "id": "d"}, "attrs": {"public": null}, "parents": []}]',
)

SCHEMA_CORRUPTIONS = (
    "entity Agent = { level: Long",
    "entity ;",
    "entity Team; entity Team;",
    "action read appliesTo { principal: [Nope], resource: [Doc] };",
    "entity Agent = { level: Lung };",
    "namespace { }",
    "garbage",
)


@st.composite
def corruptions(draw: Any) -> list[Corruption]:
    """One to three broken files (distinct paths)."""
    makers = {
        "vigil.toml": lambda: Corruption("vigil.toml", draw(st.sampled_from(SETTINGS_CORRUPTIONS))),
        "policies/x.cedar": lambda: draw(broken_policy_files()),
        "entities/e.json": lambda: Corruption("entities/e.json", draw(st.sampled_from(ENTITY_CORRUPTIONS))),
        "schema.cedarschema": lambda: Corruption(
            "schema.cedarschema", draw(st.sampled_from(SCHEMA_CORRUPTIONS))
        ),
    }
    paths = draw(st.lists(st.sampled_from(sorted(makers)), min_size=1, max_size=3, unique=True))
    return [makers[p]() for p in paths]


def _check_problems(error: vigil.WorkspaceError, broken: list[Corruption]) -> None:
    problems = error.problems
    note(f"problems: {problems}")
    assert problems, "a WorkspaceError lists its problems"
    names = {c.path for c in broken}
    for problem in problems:
        assert any(problem.startswith(n) for n in names), (
            f"problem {problem!r} does not name a broken file ({sorted(names)})"
        )
    # When the policy file's problems are reported (an earlier stage may have failed first), every
    # broken statement is named with its line.
    for c in broken:
        if c.path == "policies/x.cedar" and any(p.startswith("policies/x.cedar") for p in problems):
            for line in c.lines:
                assert any(p.startswith(f"policies/x.cedar:{line}:") for p in problems), (line, problems)


@_settings(120)
@given(corruptions())
def test_broken_workspace_raises_workspace_error(broken: list[Corruption]) -> None:
    note(f"broken: {broken}")
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        write_workspace(root, GOOD_FILES)
        write_workspace(root, {c.path: c.text for c in broken})
        with pytest.raises(vigil.WorkspaceError) as info:
            vigil.Engine.from_workspace(root, audit=MemorySink()).close()
    _check_problems(info.value, broken)


REQUESTS = tuple(
    {
        "subject": {"type": "Agent", "id": s},
        "action": {"name": a},
        "resource": {"type": "Doc", "id": r},
        "context": ctx,
    }
    for s in AGENTS
    for a in ACTIONS
    for r in DOCS
    for ctx in ({}, {"mfa": True}, {"region": "blocked"})
)


POLICY_CODES = frozenset(
    (
        "policy_permit",
        "policy_forbid",
        "no_matching_permit",
        "forbid_errored",
        "policy_errored",
        "unknown_identity",
    )
)


def _decisions(engine: vigil.Engine) -> list[tuple[Any, ...]]:
    """The policy side of each REQUESTS decision (behaviour's codes left out: behaviour learns)."""
    out = []
    for r in map(engine.decide, REQUESTS):
        out.append((r.allowed, tuple(c for c in r.reason_codes if c in POLICY_CODES), r.policies))
    return out


@_settings(60)
@given(corruptions())
def test_reload_keeps_the_last_good_revision(broken: list[Corruption]) -> None:
    note(f"broken: {broken}")
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        write_workspace(root, GOOD_FILES)
        with vigil.Engine.from_workspace(root, audit=MemorySink()) as engine:
            revision = engine.policy_revision
            before = _decisions(engine)

            write_workspace(root, {c.path: c.text for c in broken})
            result = engine.reload()
            assert not result.ok
            assert result.revision == revision == engine.policy_revision
            assert result.problems and engine.last_reload_error == result.problems
            assert _decisions(engine) == before

            # A folder that is gone entirely is refused the same way.
            shutil.rmtree(root / "policies")
            assert not engine.reload().ok
            assert engine.policy_revision == revision

            write_workspace(root, GOOD_FILES)
            restored = engine.reload()
            assert restored.ok and restored.revision == revision
            assert _decisions(engine) == before


@pytest.mark.parametrize("line", [1, 2, 5, 9])
def test_policy_syntax_error_names_its_line(line: int) -> None:
    text = "\n" * (line - 1) + "permit(principal, action, resource) when { 1 + };\n"
    with tempfile.TemporaryDirectory() as d:
        write_workspace(Path(d), {**GOOD_FILES, "policies/x.cedar": text})
        with pytest.raises(vigil.WorkspaceError) as info:
            vigil.Engine.from_workspace(d, audit=MemorySink()).close()
    assert any(p.startswith(f"policies/x.cedar:{line}:") for p in info.value.problems), info.value.problems


# -- fixed examples --------------------------------------------------------------------------------


def _problems(files: dict[str, str]) -> list[str] | None:
    with tempfile.TemporaryDirectory() as d:
        write_workspace(Path(d), {**GOOD_FILES, **files})
        try:
            vigil.Engine.from_workspace(d, audit=MemorySink()).close()
        except vigil.WorkspaceError as e:
            return e.problems
    return None


def test_null_entities_file_is_refused() -> None:
    problems = _problems({"entities/e.json": "null"})
    assert problems is not None and any(p.startswith("entities/e.json") for p in problems)


@pytest.mark.parametrize(
    "text",
    [
        '[{"uid": {"type": "Agent", "id": "z"}, "attrs": {"level": "high"}, "parents": []}]',
        '[{"uid": {"type": "Agent"}, "attrs": {"level": 1}, "parents": []}]',
    ],
)
def test_entity_problems_name_their_file(text: str) -> None:
    problems = _problems({"entities/e.json": text})
    assert problems is not None and all(p.startswith("entities/e.json") for p in problems), problems


def test_toml_syntax_error_names_its_line() -> None:
    problems = _problems({"vigil.toml": '[behaviour]\nmode = "enforce"\nmode = \n'})
    assert problems is not None and any(p.startswith("vigil.toml:3:") for p in problems), problems


def test_jsonl_audit_survives_surrogates() -> None:
    """A lone surrogate in a (refused) context never reaches the audit; in an unknown subject's id it is
    audited, and the JSONL writer keeps writing the events after it."""
    from vigil.audit.sink import JsonlSink

    with tempfile.TemporaryDirectory() as d:
        write_workspace(Path(d), GOOD_FILES)
        sink = JsonlSink(Path(d) / "audit.jsonl")
        engine = vigil.Engine.from_workspace(d, audit=sink)
        base = {
            "subject": {"type": "Agent", "id": "alice"},
            "action": {"name": "read"},
            "resource": {"type": "Doc", "id": "pub"},
        }
        with pytest.raises(vigil.VigilError):
            engine.decide({**base, "context": {"nick": "\ud800"}})
        engine.decide({**base, "subject": {"type": "Agent", "id": "x\ud800"}})
        engine.decide({**base, "context": {}})
        sink.flush()
        lines = (Path(d) / "audit.jsonl").read_bytes().splitlines()
        engine.close()
    assert len(lines) == 2
