"""vigil.policy.schema: reading Cedar schemas and schema-directed JSON coercion.

cedarpy is the reference throughout:

* every schema of the Cedar conformance corpus (7,809) and of the sample data must parse;
* coercing each corpus entity's attributes and tags must give exactly what cedarpy's own
  schema-directed parser renders, and the schema's actions must be the ``Action`` entities
  cedarpy adds;
* with coerced entities, the schema's action entities and coerced contexts, cedarpy *without* a
  schema must reproduce the corpus's expected decisions (so nothing was lost or mis-typed);
* coerced contexts must be accepted by cedarpy *with* the schema exactly as the originals are.

The corpus is read straight from its vendored tarball (vendor/conformance/cedar); missing data fails.
"""

from __future__ import annotations

import copy
import json
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cedarpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import vendored
from tests.profiles import examples
from vigil.policy.schema import (
    MAX_DEPTH,
    ActionInfo,
    EntityTypeInfo,
    Schema,
    SchemaError,
    SchemaType,
    coerce_json,
    parse_schema,
)

CEDAR = vendored.CEDAR
TARBALL = CEDAR / "corpus" / "corpus-tests.tar.gz"
FLEET_SCHEMA = Path(__file__).resolve().parents[1] / "examples" / "agent-fleet" / "schema.cedarschema"

# Every EVERY_NTH corpus test is replayed without a schema; CONTEXT_SAMPLE requests are replayed
# with it. Both samples are deterministic (strides over the sorted corpus).
EVERY_NTH = 8
CONTEXT_SAMPLE = 300

LONG = SchemaType("Long")
STRING = SchemaType("String")
BOOL = SchemaType("Bool")
EMPTY = SchemaType("Record", attributes=MappingProxyType({}))


def ext(name: str) -> SchemaType:
    return SchemaType("Extension", name=name)


def ent(name: str) -> SchemaType:
    return SchemaType("Entity", name=name)


def set_of(element: SchemaType) -> SchemaType:
    return SchemaType("Set", element=element)


def record(**attributes: SchemaType | tuple[SchemaType, bool]) -> SchemaType:
    """A record type; a bare type is a required attribute, ``(type, False)`` an optional one."""
    attrs = {k: v if isinstance(v, tuple) else (v, True) for k, v in attributes.items()}
    return SchemaType("Record", attributes=attrs)


# ---------------------------------------------------------------------------------------------
# Conformance data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One conformance test: its schema, entities and policy text, and its requests."""

    name: str
    schema: str
    entities: str
    policies: str
    requests: tuple[dict[str, Any], ...]


def _case(name: str, test: dict[str, Any], read: Callable[[str], str]) -> Case:
    return Case(
        name, read(test["schema"]), read(test["entities"]), read(test["policies"]), tuple(test["requests"])
    )


@cache
def corpus_cases() -> tuple[Case, ...]:
    vendored.require(TARBALL)
    files: dict[str, str] = {}
    with tarfile.open(TARBALL) as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                files[member.name.removeprefix("./")] = handle.read().decode()
    tests = sorted(k for k in files if k.endswith(".json") and not k.endswith(".entities.json"))
    return tuple(_case(name, json.loads(files[name]), files.__getitem__) for name in tests)


@cache
def handwritten_cases() -> tuple[Case, ...]:
    paths = sorted((vendored.require(CEDAR / "tests")).glob("*/*.json"))
    assert paths, f"no hand-written Cedar tests under {CEDAR}"

    def read(relative: str) -> str:
        return (CEDAR / relative).read_text()

    return tuple(_case(str(p.relative_to(CEDAR)), json.loads(p.read_text()), read) for p in paths)


@cache
def parsed(text: str) -> Schema:
    return parse_schema(text)


@cache
def cedar_schema(text: str) -> Any:
    return cedarpy.Schema.from_str(text)


def all_cases() -> Iterator[Case]:
    yield from corpus_cases()
    yield from handwritten_cases()


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def uid_of(ref: dict[str, Any]) -> tuple[str, str]:
    ref = ref.get("__entity", ref)
    return ref["type"], ref["id"]


def normalize(value: Any) -> Any:
    """JSON with every array (a Cedar set) sorted and deduplicated."""
    if isinstance(value, list):
        items = {json.dumps(v, sort_keys=True): v for v in map(normalize, value)}
        return [items[k] for k in sorted(items)]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


def coerce_entity(entity: dict[str, Any], schema: Schema) -> dict[str, Any]:
    info = schema.entity_types[uid_of(entity["uid"])[0]]
    out = dict(entity, attrs=coerce_json(entity.get("attrs", {}), info.attributes or EMPTY))
    if info.tags is not None:
        out["tags"] = {k: coerce_json(v, info.tags) for k, v in entity.get("tags", {}).items()}
    return out


def action_entities(schema: Schema) -> list[dict[str, Any]]:
    return [
        {
            "uid": {"type": t, "id": i},
            "attrs": {},
            "parents": [{"type": pt, "id": pi} for pt, pi in a.parents],
        }
        for (t, i), a in schema.actions.items()
    ]


def ancestors(schema: Schema, uid: tuple[str, str]) -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    todo = list(schema.actions[uid].parents)
    while todo:
        parent = todo.pop()
        if parent not in seen:
            seen.add(parent)
            todo.extend(schema.actions[parent].parents)
    return seen


def outcome(result: Any) -> tuple[str, list[str], list[str]]:
    errors = " ".join(map(str, result.diagnostics.errors))
    ids = sorted(set(re.findall(r"policy `(policy\d+)`", errors)))
    return result.decision.value.lower(), sorted(result.diagnostics.reasons), ids


def expected(request: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    return request["decision"], sorted(request["reason"]), sorted(request["errors"])


def request_with(request: dict[str, Any], context: Any) -> dict[str, Any]:
    return {k: request[k] for k in ("principal", "action", "resource")} | {"context": context}


# ---------------------------------------------------------------------------------------------
# 1. Every conformance schema parses
# ---------------------------------------------------------------------------------------------


def test_every_corpus_schema_parses() -> None:
    texts = {case.schema for case in corpus_cases()}
    failures = {}
    for text in texts:
        try:
            parsed(text)
        except SchemaError as exc:
            failures[text[:200]] = exc.message
    assert not failures, list(failures.items())[:5]
    assert len(corpus_cases()) == 7809 and len(texts) > 4000  # many tests share a schema


def test_sample_data_and_example_schemas_parse() -> None:
    paths = sorted(vendored.require(CEDAR / "sample-data").glob("*/*.cedarschema"))
    paths.append(FLEET_SCHEMA)
    assert len(paths) >= 3
    for path in paths:
        schema = parse_schema(path.read_text())
        assert schema.entity_types and schema.actions, path


# ---------------------------------------------------------------------------------------------
# 2. Entity coercion and actions agree with cedarpy's schema-directed parse
# ---------------------------------------------------------------------------------------------


def entity_problems(case: Case) -> list[str]:
    """Differences between our coercion of ``case``'s entities and cedarpy's schema-parsed
    rendering of them, plus differences in the action hierarchy."""
    schema = parsed(case.schema)
    entities = cedarpy.Entities.from_json_str(case.entities, cedar_schema(case.schema))
    rendered = {uid_of(e["uid"]): e for e in json.loads(str(entities))}
    problems = []
    for entity in json.loads(case.entities):
        uid = uid_of(entity["uid"])
        if uid in schema.actions:
            continue
        ours, cedars = coerce_entity(entity, schema), rendered[uid]
        for key in ("attrs", "tags"):
            if normalize(ours.get(key, {})) != normalize(cedars.get(key, {})):
                problems.append(f"{case.name} {uid} {key}: {ours.get(key)} != {cedars.get(key)}")
    cedar_actions = {
        uid: {uid_of(p) for p in e["parents"]}
        for uid, e in rendered.items()
        if uid[0] == "Action" or uid[0].endswith("::Action")
    }
    # cedarpy renders the transitive closure of the action hierarchy.
    our_actions = {uid: ancestors(schema, uid) for uid in schema.actions}
    if cedar_actions != our_actions:
        problems.append(f"{case.name} actions: {our_actions} != {cedar_actions}")
    return problems


def test_entity_coercion_matches_cedarpy() -> None:
    problems: list[str] = []
    count = 0
    for case in all_cases():
        problems += entity_problems(case)
        count += 1
    assert not problems, problems[:5]
    assert count == 7809 + 22


# ---------------------------------------------------------------------------------------------
# 3. Coerced data decides like the original
# ---------------------------------------------------------------------------------------------


def schemaless_replay(case: Case) -> list[str]:
    """Replay ``case`` in cedarpy *without* a schema, on our coerced entities, our action entities
    and our coerced contexts; return the requests whose outcome differs from the expectation."""
    schema = parsed(case.schema)
    entities = [
        coerce_entity(e, schema) for e in json.loads(case.entities) if uid_of(e["uid"]) not in schema.actions
    ]
    store = cedarpy.Entities.from_json_str(json.dumps(entities + action_entities(schema)))
    policies = cedarpy.PolicySet.from_str(case.policies)
    problems = []
    for request in case.requests:
        context = coerce_json(request["context"], schema.context_type(uid_of(request["action"])) or EMPTY)
        got = outcome(cedarpy.is_authorized(request_with(request, context), policies, store))
        if got != expected(request):
            problems.append(f"{case.name} {request['description']}: {got} != {expected(request)}")
    return problems


def test_schemaless_replay_of_coerced_data_matches_expectations() -> None:
    cases = [*corpus_cases()[::EVERY_NTH], *handwritten_cases()]
    problems = [p for case in cases for p in schemaless_replay(case)]
    assert not problems, problems[:5]
    assert sum(len(case.requests) for case in cases) > 7000


def sampled_requests() -> Iterator[tuple[Case, dict[str, Any]]]:
    corpus = [(case, request) for case in corpus_cases() for request in case.requests]
    yield from corpus[:: max(1, len(corpus) // CONTEXT_SAMPLE)]
    yield from ((case, request) for case in handwritten_cases() for request in case.requests)


def test_coerced_context_is_accepted_like_the_original() -> None:
    checked = 0
    for case, request in sampled_requests():
        schema = parsed(case.schema)
        context_type = schema.context_type(uid_of(request["action"]))
        assert context_type is not None
        coerced = coerce_json(request["context"], context_type)
        results = [
            outcome(
                cedarpy.is_authorized(
                    request_with(request, ctx), case.policies, case.entities, schema=cedar_schema(case.schema)
                )
            )
            for ctx in (request["context"], coerced)
        ]
        assert results[0] == results[1] == expected(request), (case.name, request["description"])
        checked += 1
    assert checked >= CONTEXT_SAMPLE


# ---------------------------------------------------------------------------------------------
# 4. Properties
# ---------------------------------------------------------------------------------------------

SEED_SCHEMAS = [
    'namespace N { type T = { a?: Set<N::E>, "b c": decimal }; entity E in [G] = { t: T } tags ipaddr;'
    ' entity G enum ["x", "y"]; action "r" in [Action::"all"] appliesTo'
    " { principal: [E], resource: [E, G], context: { ip: ipaddr, when?: datetime } }; action all; }",
    '@doc("x") entity User = { name: String, friends: Set<User>, boss?: User };'
    " action view appliesTo { principal: User, resource: User, context: { d: duration } };",
    "type A = { x: Long }; entity E = { a: A, b: Bool }; action a, b in [a];",
]

SCHEMA_WORDS = st.sampled_from(
    [
        "entity", "action", "type", "namespace", "in", "appliesTo", "tags", "enum", "principal",
        "resource", "context", "Set", "Long", "String", "Bool", "decimal", "ipaddr", "__cedar",
        "Action", "A", "B", "N", "{", "}", "[", "]", "<", ">", "(", ")", ",", ";", ":", "::", "=",
        "?", "@", '"a"', '"\\u{1F600}"', '"\\q"', "//", "\n",
    ]
)  # fmt: skip


def cedar_can_render(text: str) -> bool:
    try:
        return not str(cedarpy.Schema.from_str(text)).startswith("<unrenderable")
    except ValueError:
        return False


@settings(max_examples=examples(300))
@given(st.text(max_size=200) | st.lists(SCHEMA_WORDS, max_size=40).map(" ".join))
def test_parse_schema_raises_only_schema_error(text: str) -> None:
    try:
        parse_schema(text)
    except SchemaError as exc:
        assert exc.message and "\n" not in exc.message


@st.composite
def mutated_schema(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEED_SCHEMAS))
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        op = draw(st.sampled_from(["delete", "duplicate", "insert"]))
        if op == "delete":
            text = text[:start] + text[end:]
        elif op == "duplicate":
            text = text[:end] + text[start:end] + text[end:]
        else:
            text = text[:start] + " " + draw(SCHEMA_WORDS) + " " + text[start:]
    return text


@settings(max_examples=examples(300))
@given(mutated_schema())
def test_mutated_schemas_parse_exactly_when_cedar_accepts(text: str) -> None:
    accepted = cedar_can_render(text)
    try:
        schema = parse_schema(text)
    except SchemaError:
        assert not accepted, text
    else:
        assert accepted
        for info in schema.entity_types.values():
            assert set(info.parents) <= set(schema.entity_types)
        for action in schema.actions.values():
            assert set(action.parents) <= set(schema.actions)


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
KEYS = st.sampled_from(
    ["type", "id", "fn", "arg", "args", "__extn", "__entity", "__expr", "a", "b"]
) | st.text(max_size=4)
FNS = st.sampled_from(
    ["decimal", "ip", "datetime", "duration", "offset", "toDate", "toTime", "durationSince", "x"]
)


def json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        JSON_SCALARS,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(KEYS, inner, max_size=4)
            | st.fixed_dictionaries({"type": inner, "id": inner})
            | st.fixed_dictionaries({"fn": FNS, "arg": inner})
            | st.fixed_dictionaries({"fn": FNS, "args": st.lists(inner, max_size=3)})
            | st.fixed_dictionaries({"__extn": inner})
            | st.fixed_dictionaries({"__entity": inner})
        ),
        max_leaves=25,
    )


def schema_types() -> st.SearchStrategy[SchemaType]:
    names = (
        st.sampled_from(["decimal", "ipaddr", "datetime", "duration", "A", "N::B"])
        | st.none()
        | st.text(max_size=3)
    )
    leaves = st.builds(
        SchemaType, st.sampled_from(["Long", "String", "Bool", "Entity", "Extension", "Set", "Record"]), names
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.builds(lambda e: SchemaType("Set", element=e), inner)
            | st.builds(
                lambda a: SchemaType("Record", attributes=a),
                st.dictionaries(KEYS, st.tuples(inner, st.booleans()), max_size=4),
            )
        ),
        max_leaves=12,
    )


@settings(max_examples=examples(500))
@given(json_values(), schema_types())
def test_coerce_json_never_raises_mutates_or_changes_twice(value: Any, ty: SchemaType) -> None:
    before = copy.deepcopy(value)
    once = coerce_json(value, ty)
    assert value == before
    assert coerce_json(once, ty) == once
    json.dumps(once)  # still JSON


@settings(max_examples=examples(100))
@given(json_values(), st.none() | st.integers() | st.text() | st.just(SchemaType))
def test_coerce_json_tolerates_a_bogus_type(value: Any, ty: Any) -> None:
    assert coerce_json(value, ty) is value


# ---------------------------------------------------------------------------------------------
# 5. Hand-written schemas
# ---------------------------------------------------------------------------------------------

NAMESPACED = """
@doc("the app")
namespace App {
  type Address = { street: String, "zip code"?: Long, geo: Shared::Point };
  @doc("a user")
  entity User in [Group, Shared::Org] = {
    @doc("home") address: Address,
    "nick name"?: String,
    friends: Set<User>,
    manager?: User,
    score: decimal,
    meta: { seen: datetime, ttl?: duration, tags: Set<Tag> },
  } tags ipaddr;
  type Tag = String;
  entity Group;
  entity Color enum ["red", "it's \\"green\\""];
  action "read" in [Action::"all", Shared::Action::"any"] appliesTo {
    principal: [User],
    resource: [Group, Shared::Org],
    context: Context,
  };
  type Context = { ip: ipaddr, point?: Shared::Point };
  action all in "top";
  action "write", "delete" in [all];
}
namespace Shared {
  type Point = { x: decimal, y: decimal };
  entity Org;
  action any;
}
action top;
action orphan appliesTo { principal: App::User, resource: App::Group };
"""


def test_namespaces_common_types_and_nested_records() -> None:
    schema = parse_schema(NAMESPACED)
    point = record(x=ext("decimal"), y=ext("decimal"))
    user = schema.entity_types["App::User"]
    assert user.parents == ("App::Group", "Shared::Org")
    assert user.tags == ext("ipaddr")
    assert user.enum is None
    assert user.attributes == record(
        address=record(street=STRING, **{"zip code": (LONG, False)}, geo=point),
        **{"nick name": (STRING, False)},
        friends=set_of(ent("App::User")),
        manager=(ent("App::User"), False),
        score=ext("decimal"),
        meta=record(seen=ext("datetime"), ttl=(ext("duration"), False), tags=set_of(STRING)),
    )
    assert schema.attribute_type("App::User", "friends") == set_of(ent("App::User"))
    assert schema.attribute_type("App::User", "nope") is None
    assert schema.attribute_type("Nope", "x") is None
    assert schema.entity_types["App::Group"] == EntityTypeInfo("App::Group", (), EMPTY, None, None)
    assert schema.entity_types["App::Color"].enum == ("red", 'it\'s "green"')
    assert schema.entity_types["App::Color"].attributes is None
    assert set(schema.entity_types) == {"App::User", "App::Group", "App::Color", "Shared::Org"}


def test_actions_and_groups_across_namespaces() -> None:
    schema = parse_schema(NAMESPACED)
    read = schema.actions[("App::Action", "read")]
    assert read == ActionInfo(
        ("App::Action", "read"),
        (("App::Action", "all"), ("Shared::Action", "any")),
        ("App::User",),
        ("App::Group", "Shared::Org"),
        record(ip=ext("ipaddr"), point=(record(x=ext("decimal"), y=ext("decimal")), False)),
    )
    assert schema.actions[("App::Action", "all")].parents == (("Action", "top"),)
    assert schema.actions[("App::Action", "delete")].parents == (("App::Action", "all"),)
    assert schema.context_type(("App::Action", "all")) is None  # no appliesTo: applies to nothing
    assert schema.context_type(("Action", "orphan")) == EMPTY
    assert schema.context_type(("Action", "missing")) is None
    assert schema.actions[("Action", "orphan")].principals == ("App::User",)
    assert set(schema.actions) == {("App::Action", a) for a in ("read", "all", "write", "delete")} | {
        ("Shared::Action", "any"),
        ("Action", "top"),
        ("Action", "orphan"),
    }


def test_action_reference_prefers_own_namespace() -> None:
    both = parse_schema('namespace N { action b in [Action::"a"]; action a; } action c;')
    assert both.actions[("N::Action", "b")].parents == (("N::Action", "a"),)
    outer = parse_schema('namespace N { action b in [Action::"a"]; } action a;')
    assert outer.actions[("N::Action", "b")].parents == (("Action", "a"),)


def test_user_declarations_shadow_builtins() -> None:
    schema = parse_schema(
        "entity decimal; entity String; type ipaddr = Long;"
        " entity A = { d: decimal, s: String, i: ipaddr, real: __cedar::decimal, b: Bool };"
        " namespace N { entity Long; entity B = { l: Long, top: decimal, q: __cedar::Long }; }"
    )
    assert schema.entity_types["A"].attributes == record(
        d=ent("decimal"), s=ent("String"), i=LONG, real=ext("decimal"), b=BOOL
    )
    assert schema.entity_types["N::B"].attributes == record(l=ent("N::Long"), top=ent("decimal"), q=LONG)


def test_annotations_and_escaped_names() -> None:
    schema = parse_schema(
        '@a @b("x\\n") entity E = { @c("") "tab\\there": Long, "\\u{1F600}": Long, "it\'s": Bool,'
        ' "a\\\\b": Long, "\\0\\u{7f}": Long, "é\\u{301}": Long, "": String, "in": Long, entity: Long };'
        ' @d action "x\\"y" appliesTo { principal: E, resource: E };'
    )
    attrs = schema.entity_types["E"].attributes
    assert attrs is not None and attrs.attributes is not None
    assert set(attrs.attributes) == {
        "tab\there",
        "\U0001f600",
        "it's",
        "a\\b",
        "\0\x7f",
        "é\u0301",
        "",
        "in",
        "entity",
    }
    assert ("Action", 'x"y') in schema.actions


def test_common_type_names_are_expanded_everywhere() -> None:
    schema = parse_schema(
        "type Id = String; type Ids = Set<Id>; type Ctx = { ids: Ids, who: E };"
        " entity E = { ids: Ids } tags Ids; action a appliesTo { principal: E, resource: E, context: Ctx };"
    )
    assert schema.entity_types["E"].tags == set_of(STRING)
    assert schema.context_type(("Action", "a")) == record(ids=set_of(STRING), who=ent("E"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("entity A = { x: Nope };", "failed to resolve type"),
        ("entity A", "invalid schema: "),
        ("namespace N { type A = Long; entity A; }", "cannot be rendered"),
        ("entity A = { x: " + "Set<" * 3000 + "Long" + ">" * 3000 + " };", "nests deeper"),
        ("entity A = { x: " + "{ x: " * 100 + "Long" + " }" * 100 + " };", "nests deeper"),
    ],
)
def test_bad_schemas_raise_schema_error(text: str, fragment: str) -> None:
    with pytest.raises(SchemaError) as info:
        parse_schema(text)
    assert fragment in info.value.message
    assert info.value.message == str(info.value)
    assert "\n" not in info.value.message and info.value.message[0].islower()


def test_long_common_type_chains_are_limited() -> None:
    chain = "".join(f"type T{i} = T{i + 1};" for i in range(MAX_DEPTH + 5)) + f"type T{MAX_DEPTH + 5} = Long;"
    with pytest.raises(SchemaError, match="nest deeper"):
        parse_schema(chain + "entity A = { x: T0 };")
    assert (
        parse_schema("type T0 = T1; type T1 = Long; entity A = { x: T0 };").attribute_type("A", "x") == LONG
    )


def test_shared_common_types_do_not_blow_up() -> None:
    # 2**16 leaves if expanded naively: the resolver must share the expansion of each common type.
    # (Not deeper: cedarpy's own validation does expand them, and hangs by about 2**25.)
    chain = "type T0 = Long;" + "".join(f"type T{i + 1} = {{ a: T{i}, b: T{i} }};" for i in range(16))
    schema = parse_schema(chain + "entity A = { x: T16 };")
    x = schema.attribute_type("A", "x")
    assert x is not None and x.attributes is not None and x.attributes["a"][0] is x.attributes["b"][0]
    hash(x)


def test_non_string_schema_is_refused() -> None:
    with pytest.raises(SchemaError):
        parse_schema(b"entity A;")  # type: ignore[arg-type]


def test_schema_types_are_frozen_and_hashable() -> None:
    a, b = record(x=set_of(ext("ipaddr"))), record(x=set_of(ext("ipaddr")))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.kind = "Long"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# coerce_json by example
# ---------------------------------------------------------------------------------------------


def test_bare_strings_become_extension_values() -> None:
    ty = record(d=ext("decimal"), i=ext("ipaddr"), t=ext("datetime"), u=ext("duration"), s=STRING)
    value = {"d": "1.5", "i": "10.0.0.0/8", "t": "2024-01-01", "u": "1h", "s": "1.5", "extra": "1.5"}
    assert coerce_json(value, ty) == {
        "d": {"__extn": {"fn": "decimal", "arg": "1.5"}},
        "i": {"__extn": {"fn": "ip", "arg": "10.0.0.0/8"}},
        "t": {"__extn": {"fn": "datetime", "arg": "2024-01-01"}},
        "u": {"__extn": {"fn": "duration", "arg": "1h"}},
        "s": "1.5",
        "extra": "1.5",
    }


def test_entity_references_and_sets() -> None:
    ty = record(owner=ent("User"), peers=set_of(ent("User")), n=LONG)
    value = {
        "owner": {"type": "User", "id": "alice", "ignored": 1},
        "peers": [{"type": "User", "id": "bob"}, {"__entity": {"type": "User", "id": "carol"}}, "nope"],
        "n": {"type": "User", "id": "dave"},
    }
    assert coerce_json(value, ty) == {
        "owner": {"__entity": {"type": "User", "id": "alice"}},
        "peers": [
            {"__entity": {"type": "User", "id": "bob"}},
            {"__entity": {"type": "User", "id": "carol"}},
            "nope",
        ],
        "n": {"type": "User", "id": "dave"},
    }


def test_values_that_do_not_fit_are_left_alone() -> None:
    assert coerce_json(5, ext("decimal")) == 5
    assert coerce_json("alice", ent("User")) == "alice"
    assert coerce_json({"type": 1, "id": "x"}, ent("User")) == {"type": 1, "id": "x"}
    assert coerce_json("x", set_of(LONG)) == "x"
    assert coerce_json([1], record(a=LONG)) == [1]
    explicit = {"__extn": {"fn": "decimal", "arg": "1.0"}}
    assert coerce_json(explicit, ext("decimal")) == explicit
    assert coerce_json({"fn": "ip", "arg": "1.0"}, ext("decimal")) == {"fn": "ip", "arg": "1.0"}


def test_extension_calls_are_coerced_like_cedar() -> None:
    """The implicit ``{"fn", "arg(s)"}`` form and the arguments of multi-argument constructors:
    cedarpy without a schema must read our output as cedarpy with the schema reads the input."""
    schema_text = "entity A = { t: datetime, u: duration, d: decimal };"
    attrs = {
        "t": {"fn": "offset", "args": ["2024-01-01", "1h"]},
        "u": {"__extn": {"fn": "toTime", "arg": "2024-01-01T10:00:00Z"}},
        "d": {"fn": "decimal", "arg": "2.5", "ignored": True},
    }
    ty = parse_schema(schema_text).entity_types["A"].attributes
    assert ty is not None
    coerced = coerce_json(attrs, ty)
    assert coerced["t"] == {
        "__extn": {
            "fn": "offset",
            "args": [
                {"__extn": {"fn": "datetime", "arg": "2024-01-01"}},
                {"__extn": {"fn": "duration", "arg": "1h"}},
            ],
        }
    }
    with_schema = cedarpy.Entities.from_json_str(
        json.dumps([{"uid": {"type": "A", "id": "1"}, "attrs": attrs, "parents": []}]),
        cedarpy.Schema.from_str(schema_text),
    )
    without = cedarpy.Entities.from_json_str(
        json.dumps([{"uid": {"type": "A", "id": "1"}, "attrs": coerced, "parents": []}])
    )
    assert json.loads(str(with_schema)) == json.loads(str(without))


def test_handwritten_request_context_is_coerced() -> None:
    schema = parse_schema((CEDAR / "sample-data" / "sandbox_a" / "schema.cedarschema").read_text())
    context = {"source_ip": "123.123.123.123", "confidence_score": "0.6", "authenticated": True}
    assert coerce_json(context, schema.context_type(("Action", "view")) or EMPTY) == {
        "source_ip": {"__extn": {"fn": "ip", "arg": "123.123.123.123"}},
        "confidence_score": {"__extn": {"fn": "decimal", "arg": "0.6"}},
        "authenticated": True,
    }
