"""Hypothesis strategies for differential tests with a Cedar schema in play.

A generated :class:`SchemaModel` is a Cedar schema (human-readable text) together with what it
declares, so that entities, contexts, requests and policies can be generated to fit it:

- entity types ``User``, ``Group``, ``Doc`` and the namespaced ``NS::Box``, each with attributes
  drawn from the attribute names the policy generator reads (:data:`tests.strategies.ATTRS`),
  required or optional, typed as Cedar types (``Long``, ``Set<String>``, ``ipaddr``, an entity
  type, a record through the common type ``Info``...), parents (``in [Group]``) and now and then
  tags;
- actions with ``appliesTo`` (principal and resource types, a context record), action groups
  (``read in [all]``), and a namespaced action (``NS::Action::"delete"``);
- type names spelled the ways Cedar resolves: ``__cedar::Long``, ``Box`` inside ``NS`` and
  ``NS::Box`` outside, a root entity type named from inside ``NS``, and (now and then) ``NS``
  declaring ``type ipaddr = String``, so that ``ipaddr`` inside ``NS`` is a string while
  ``__cedar::ipaddr`` stays the extension.

Entity attributes and context values are written in the forms Cedar reads *by the schema*: a bare
string for an extension value (``"10.0.0.1"`` typed ``ipaddr``), ``{"fn", "arg"}`` without its
``__extn``, an entity reference as ``{"type", "id"}`` without its ``__entity``, besides the explicit
forms. Now and then a value does not fit (wrong type, a required attribute missing, one the
schema does not declare): Cedar then refuses the entity set or the request.

Policies are typed (:func:`typed_policies`): scopes and conditions that read declared attributes
through the types the schema gives them, so that most validate; the untyped generator of
:mod:`tests.strategies` is mixed in at the authorizer level.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.strategies import (
    DATETIMES,
    DECIMALS,
    DURATIONS,
    ENTITY_IDS,
    GHOSTS,
    IPS,
    LONGS,
    STRINGS,
    TAG_KEYS,
    UNIVERSE,
    Case,
    Policy,
    Request,
    cedar_entity,
    cedar_string,
    is_ident,
    policies,
)

ROOT_TYPES = ("User", "Group", "Doc")
BOX = "NS::Box"
TYPES = (*ROOT_TYPES, BOX)
# Which types each type may declare as parents.
PARENT_OPTIONS = {"User": ("Group",), "Group": (), "Doc": ("Group", BOX), BOX: ("Group",)}
# The kind each attribute name has when a schema declares it (the names strategies.ATTRS uses;
# its "mixed" set has no Cedar type and is never declared).
KINDS = {
    "flag": "bool",
    "level": "long",
    "name": "string",
    "a b": "string",
    "owner": "entity",
    "roles": "set_string",
    "nums": "set_long",
    "info": "info",
    "addr": "ip",
    "amount": "decimal",
    "created": "datetime",
    "ttl": "duration",
}
EXTENSIONS = {"ip": "ipaddr", "decimal": "decimal", "datetime": "datetime", "duration": "duration"}
# The constructor each extension's JSON forms name.
EXTN_FN = {"ip": "ip", "decimal": "decimal", "datetime": "datetime", "duration": "duration"}
EXTN_VALUES = {"ip": IPS, "decimal": DECIMALS, "datetime": DATETIMES, "duration": DURATIONS}
SIMPLE = {"bool": "Bool", "long": "Long", "string": "String"}
VIGIL_CONTEXT = "vigil?: { risk: Long, signals: Set<String> }"


@dataclass(frozen=True)
class Attr:
    kind: str  # a value of KINDS
    required: bool
    target: str | None = None  # the entity type, for kind "entity"


@dataclass(frozen=True)
class EntityDecl:
    name: str
    parents: tuple[str, ...]
    attrs: Mapping[str, Attr]
    tags: str | None  # "string" or "long": the type of every tag


@dataclass(frozen=True)
class ActionDecl:
    uid: tuple[str, str]
    parents: tuple[str, ...]  # ids of parent actions (same action type)
    principals: tuple[str, ...]  # () when the action has no appliesTo
    resources: tuple[str, ...]
    context: Mapping[str, Attr]


@dataclass(frozen=True)
class SchemaModel:
    text: str
    entities: Mapping[str, EntityDecl]
    actions: Mapping[tuple[str, str], ActionDecl]

    def applicable(self) -> list[ActionDecl]:
        return [a for a in self.actions.values() if a.principals]


# -- the schema ------------------------------------------------------------------------------------


class _Spell:
    """Type names as written in one namespace (``ns`` is "" or "NS")."""

    def __init__(self, rng: random.Random, ns: str, shadows: tuple[str, ...]) -> None:
        self.rng = rng
        self.ns = ns
        self.shadows = shadows  # extension type names this namespace declares as `type X = String`

    def _maybe_builtin(self, name: str) -> str:
        return f"__cedar::{name}" if self.rng.random() < 0.15 else name

    def entity(self, name: str) -> str:
        if name == BOX and self.ns == "NS" and self.rng.random() < 0.5:
            return "Box"
        return name  # a root type from inside NS resolves to the root type (NS cannot redeclare it)

    def kind(self, attr: Attr) -> str:
        k = attr.kind
        if k in SIMPLE:
            if k == "string" and self.shadows and self.rng.random() < 0.7:
                return self.rng.choice(self.shadows)  # `type decimal = String` here
            return self._maybe_builtin(SIMPLE[k])
        if k in EXTENSIONS:
            if EXTENSIONS[k] in self.shadows:
                return f"__cedar::{EXTENSIONS[k]}"  # the plain name means String here
            return self._maybe_builtin(EXTENSIONS[k])
        if k == "entity":
            assert attr.target is not None
            return self.entity(attr.target)
        if k == "set_string":
            return f"Set<{self.kind(Attr('string', True))}>"
        if k == "set_long":
            return f"Set<{self.kind(Attr('long', True))}>"
        assert k == "info"
        if self.rng.random() < 0.5:
            return "Info"  # the root common type (NS declares none)
        return f"{{ a: {self.kind(Attr('long', True))}, b?: String, c?: {{ d: Bool }} }}"

    def record(self, attrs: Mapping[str, Attr], extra: str = "") -> str:
        fields = []
        for name, attr in attrs.items():
            key = name if is_ident(name) and self.rng.random() < 0.75 else cedar_string(name)
            fields.append(f"{key}{'' if attr.required else '?'}: {self.kind(attr)}")
        if extra:
            fields.append(extra)
        return "{ " + ", ".join(fields) + " }" if fields else "{}"


def _attrs(rng: random.Random, presence: float) -> dict[str, Attr]:
    """Declared attributes: each name with chance ``presence``, required or optional."""
    out = {}
    for name, kind in KINDS.items():
        if rng.random() < presence:
            target = rng.choice(TYPES) if kind == "entity" else None
            out[name] = Attr(kind, rng.random() < 0.65, target)
    return out


def _subset(rng: random.Random, options: tuple[str, ...], low: int, high: int) -> tuple[str, ...]:
    return tuple(rng.sample(options, rng.randint(low, min(high, len(options)))))


SEEDS = st.integers(0, 2**32)


@st.composite
def schema_models(draw: Any, engine_context: bool = False) -> SchemaModel:
    """A schema; with ``engine_context`` every context type declares the ``vigil`` record the
    engine adds (``vigil?: {risk, signals}``), as a workspace's schema does.

    A schema is bulky and hypothesis draws are not free: each comes from one drawn seed."""
    return schema_model(draw(SEEDS), engine_context)


def schema_model(seed: int, engine_context: bool = False) -> SchemaModel:
    rng = random.Random(seed)
    # Common types that shadow an extension type: `ipaddr` inside NS is then a String, and so is
    # `decimal` in the empty namespace and, unless NS declares its own, inside NS (the extension
    # is then `__cedar::decimal`).
    root_shadows = ("decimal",) if rng.random() < 0.25 else ()
    ns_shadows = ("ipaddr",) if rng.random() < 0.35 else ()
    entities: dict[str, EntityDecl] = {}
    for name in TYPES:
        parents = _subset(rng, PARENT_OPTIONS[name], 0, 2)
        tags = rng.choice((None, None, None, "string", "long"))
        entities[name] = EntityDecl(name, parents, _attrs(rng, 0.4), tags)

    def applies() -> tuple[tuple[str, ...], tuple[str, ...], dict[str, Attr]]:
        return _subset(rng, TYPES, 1, 3), _subset(rng, TYPES, 1, 3), _attrs(rng, 0.45)

    actions: dict[tuple[str, str], ActionDecl] = {}
    p, r, c = applies() if rng.random() < 0.3 else ((), (), {})
    actions[("Action", "all")] = ActionDecl(("Action", "all"), (), p, r, c)
    groups: tuple[str, ...] = ("all",)
    if rng.random() < 0.5:
        p, r, c = applies()
        actions[("Action", "admin")] = ActionDecl(("Action", "admin"), _subset(rng, ("all",), 0, 1), p, r, c)
        groups = ("all", "admin")
    ns_delete = rng.random() < 0.5  # `delete` in NS (it may not be declared in both)
    for name in ("read", "write", "delete"):
        uid = ("NS::Action", name) if name == "delete" and ns_delete else ("Action", name)
        parents = () if uid[0] == "NS::Action" else _subset(rng, groups, 0, 2)
        p, r, c = applies()
        actions[uid] = ActionDecl(uid, parents, p, r, c)

    root = _Spell(rng, "", root_shadows)
    ns = _Spell(rng, "NS", ns_shadows + root_shadows)  # a root common type shadows inside NS too
    vigil = VIGIL_CONTEXT if engine_context else ""
    use_ctx = rng.random() < 0.25  # the root actions share `type Ctx`
    lines = ["type Info = { a: Long, b?: String, c?: { d: Bool } };"]
    if use_ctx:
        shared = _attrs(rng, 0.3)
        lines.append(f"type Ctx = {root.record(shared, vigil)};")
        actions = {
            uid: ActionDecl(uid, a.parents, a.principals, a.resources, shared)
            if uid[0] == "Action" and a.principals
            else a
            for uid, a in actions.items()
        }
    lines += [f"type {x} = String;" for x in root_shadows]
    ns_lines = [f"type {x} = String;" for x in ns_shadows]
    for decl in entities.values():
        spell, out = (ns, ns_lines) if decl.name == BOX else (root, lines)
        head = f"entity {'Box' if decl.name == BOX else decl.name}"
        if decl.parents:
            head += " in [" + ", ".join(spell.entity(x) for x in decl.parents) + "]"
        if decl.attrs or rng.random() < 0.5:
            head += (" = " if rng.random() < 0.5 else " ") + spell.record(decl.attrs)
        if decl.tags is not None:
            head += f" tags {spell.kind(Attr(decl.tags, True))}"
        out.append(head + ";")
    for a in actions.values():
        spell, out = (ns, ns_lines) if a.uid[0] == "NS::Action" else (root, lines)
        head = f"action {a.uid[1] if rng.random() < 0.5 else cedar_string(a.uid[1])}"
        if a.parents:
            head += " in [" + ", ".join(cedar_string(x) for x in a.parents) + "]"
        if a.principals:
            pr = ", ".join(spell.entity(x) for x in a.principals)
            rs = ", ".join(spell.entity(x) for x in a.resources)
            ctx = "Ctx" if use_ctx and a.uid[0] == "Action" else spell.record(a.context, vigil)
            head += f" appliesTo {{ principal: [{pr}], resource: [{rs}], context: {ctx} }}"
        out.append(head + ";")
    rng.shuffle(lines)  # declarations in any order
    text = "\n".join(lines) + "\nnamespace NS {\n" + "".join(f"  {x}\n" for x in ns_lines) + "}\n"
    return SchemaModel(text, entities, actions)


_SAMPLERS: dict[int, Any] = {}
_UIDS = st.lists(st.sampled_from(UNIVERSE), max_size=7, unique=True)


def _pick(draw: Any, options: Any) -> Any:
    """One of ``options`` (shrinking towards the first): ``st.sampled_from`` of an index, one
    strategy per length (building a strategy per draw cost more than the rest of a case)."""
    options = tuple(options)
    sampler = _SAMPLERS.get(len(options))
    if sampler is None:
        sampler = _SAMPLERS[len(options)] = st.sampled_from(range(len(options)))
    return options[draw(sampler)]


# -- values that fit (mostly) ------------------------------------------------------------------------


class _Values:
    """JSON values of declared types, in the forms Cedar reads by the schema (seeded, as strategies._Json)."""

    def __init__(self, seed: int, uids: list[tuple[str, str]]) -> None:
        self.rng = random.Random(seed)
        self.uids = uids

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def value(self, attr: Attr) -> Any:
        k = attr.kind
        rng = self.rng
        if k == "bool":
            return rng.choice((True, False))
        if k == "long":
            return rng.choice(LONGS)
        if k == "string":
            return rng.choice(STRINGS)
        if k in EXTN_VALUES:
            arg = rng.choice(EXTN_VALUES[k])
            form = rng.randrange(3)
            if form == 0:
                return arg  # typed by the schema
            inner = {"fn": EXTN_FN[k], "arg": arg}
            return inner if form == 1 else {"__extn": inner}
        if k == "entity":
            ids = [u for u in self.uids if u[0] == attr.target]
            uid = rng.choice(ids) if ids and self.chance(0.8) else (attr.target, rng.choice(ENTITY_IDS))
            ref = {"type": uid[0], "id": uid[1]}
            return ref if self.chance(0.6) else {"__entity": ref}
        if k == "set_string":
            return [rng.choice(STRINGS[:8]) for _ in range(rng.randint(0, 3))]
        if k == "set_long":
            return [rng.choice(LONGS[:8]) for _ in range(rng.randint(0, 3))]
        assert k == "info"
        rec: dict[str, Any] = {"a": rng.choice(LONGS)}
        if self.chance(0.6):
            rec["b"] = rng.choice(STRINGS)
        if self.chance(0.6):
            rec["c"] = {"d": rng.choice((True, False))}
        return rec

    def misfit(self) -> Any:
        """A value that fits no declared kind but "string" (and "bool" only by chance)."""
        return self.rng.choice(("x", 7, [1, "a"], {"z": 1}, {"type": "User"}))

    def record(self, attrs: Mapping[str, Attr], bad: float) -> dict[str, Any]:
        out = {name: self.value(a) for name, a in attrs.items() if a.required or self.chance(0.6)}
        if self.chance(bad):
            how = self.rng.randrange(3)
            if how == 0 and out:
                out[self.rng.choice(sorted(out))] = self.misfit()
            elif how == 1 and any(a.required for a in attrs.values()):
                out.pop(self.rng.choice(sorted(n for n, a in attrs.items() if a.required)), None)
            else:
                out["undeclared"] = 1
        return out

    def tags(self, kind: str) -> dict[str, Any]:
        keys = self.rng.sample(TAG_KEYS, self.rng.randint(0, 3))
        return {k: self.value(Attr(kind, True)) for k in keys}


@st.composite
def schema_entities(draw: Any, model: SchemaModel) -> tuple[dict[str, Any], ...]:
    """Entities of the declared types, parents of the declared parent types (acyclic: a parent
    comes later in the list), attributes and tags that fit (now and then one that does not)."""
    chosen = draw(_UIDS)
    out = []
    for i, uid in enumerate(chosen):
        decl = model.entities[uid[0]]
        values = _Values(draw(SEEDS), chosen)
        later = [u for u in chosen[i + 1 :] if u[0] in decl.parents]
        parents = values.rng.sample(later, values.rng.randint(0, min(2, len(later))))
        item: dict[str, Any] = {
            "uid": {"type": uid[0], "id": uid[1]},
            "attrs": values.record(decl.attrs, 0.015),
            "parents": [{"type": p[0], "id": p[1]} for p in parents],
        }
        if decl.tags is not None:
            item["tags"] = values.tags(decl.tags)
        out.append(item)
    return tuple(out)


@st.composite
def schema_requests(
    draw: Any,
    model: SchemaModel,
    entities: tuple[dict[str, Any], ...],
    root_actions_only: bool = False,
    aim: str = "",
) -> Request:
    """A request for a declared action (usually one that the policy text ``aim`` names), on
    entities of the types it applies to, with a context of its context type; now and then one
    that does not fit (another type, an undeclared action, a context that does not fit), which
    Cedar refuses."""
    existing = [(e["uid"]["type"], e["uid"]["id"]) for e in entities]
    acts = [a for a in model.applicable() if not root_actions_only or a.uid[0] == "Action"]
    named = [a for a in acts if cedar_entity(a.uid) in aim]
    odd = _pick(draw, range(20))  # draws shrink towards 0: the usual choices come first
    if named and odd < 12:
        decl = _pick(draw, named)
        uid = decl.uid
    elif odd == 19 or not acts:
        atype = _pick(draw, ("Action",) if root_actions_only else ("Action", "NS::Action"))
        uid = (atype, _pick(draw, ("read", "all", "delete", "nope")))
        decl = model.actions.get(uid)
    else:
        decl = _pick(draw, acts)
        uid = decl.uid

    def pick(types: tuple[str, ...]) -> tuple[str, str]:
        fits = [u for u in existing if u[0] in types]
        n = _pick(draw, range(20))
        if fits and n < 17:
            return _pick(draw, fits)
        if types and n < 19:  # of a type that fits, not necessarily an entity
            return _pick(draw, [u for u in UNIVERSE if u[0] in types])
        return _pick(draw, existing + list(UNIVERSE[:2]) + list(GHOSTS[:1]))

    principal = pick(decl.principals if decl else ())
    resource = pick(decl.resources if decl else ())
    values = _Values(draw(SEEDS), existing)
    context = values.record(decl.context, 0.08) if decl else {}
    return Request(principal, uid[1], resource, context, uid[0])


# -- typed policies ----------------------------------------------------------------------------------


def _long(v: int) -> str:
    return str(v) if v >= 0 else f"({v})"


class _Typed:
    """Conditions that read declared attributes at the types the schema gives them."""

    def __init__(self, draw: Any, model: SchemaModel) -> None:
        self.draw = draw
        self.model = model

    def choice(self, options: Any) -> Any:
        return _pick(self.draw, options)

    def ref(self, base: str, name: str) -> str:
        return f"{base}.{name}" if is_ident(name) else f"{base}[{cedar_string(name)}]"

    def has(self, base: str, name: str) -> str:
        return f"{base} has {name if is_ident(name) else cedar_string(name)}"

    def test(self, x: str, attr: Attr, principal_type: str | None) -> str:
        """A Bool expression on ``x``, an expression of the attribute's type."""
        k, c = attr.kind, self.choice
        if k == "bool":
            return c((x, f"!{x}", f"{x} == true"))
        if k == "long":
            n, m = _long(c(LONGS)), _long(c(LONGS))
            return c((f"{x} > {n}", f"{x} + {n} < {m}", f"{x} * 2 == {n}", f"-{x} <= {n}", f"{x} == {n}"))
        if k == "string":
            return c((f"{x} == {cedar_string(c(STRINGS))}", f'{x} like "a*"', f'{x} != ""'))
        if k == "ip":
            return c(
                (
                    f"{x}.isLoopback()",
                    f'{x}.isInRange(ip("10.0.0.0/8"))',
                    f"{x}.isIpv4()",
                    f'{x} == ip("::1")',
                )
            )
        if k == "decimal":
            d = cedar_string(c(DECIMALS))
            return c(
                (
                    f"{x}.lessThan(decimal({d}))",
                    f"{x}.greaterThanOrEqual(decimal({d}))",
                    f"{x} == decimal({d})",
                )
            )
        if k == "datetime":
            t = cedar_string(c(DATETIMES))
            return c(
                (
                    f"{x} < datetime({t})",
                    f'{x}.offset(duration("1d")) >= datetime({t})',
                    f"{x}.toDate() == datetime({t})",
                    f'{x}.toTime() < duration("12h")',
                    f'{x}.durationSince(datetime({t})) > duration("1h")',
                )
            )
        if k == "duration":
            return c(
                (
                    f"{x}.toSeconds() > 60",
                    f'{x} < duration("1h")',
                    f"{x}.toDays() == 1",
                    f"{x}.toMilliseconds() >= {_long(c(LONGS))}",
                )
            )
        if k == "entity":
            assert attr.target is not None
            options = [f"{x} == {cedar_entity((attr.target, c(ENTITY_IDS[:3])))}"]
            if "Group" in self.model.entities[attr.target].parents or attr.target == "Group":
                options.append(f'{x} in Group::"a"')
            if principal_type == attr.target:
                options.append(f"{x} == principal")
            return c(tuple(options))
        if k == "set_string":
            return c(
                (
                    f'{x}.contains("a")',
                    f'{x}.containsAny(["a", "ab"])',
                    f"{x}.isEmpty()",
                    f'{x}.containsAll(["a"])',
                )
            )
        if k == "set_long":
            return c((f"{x}.contains(1)", f"{x}.containsAll([1, 2])", f"{x}.containsAny([0, (-1)])"))
        assert k == "info"
        return c((f"{x}.a > 1", f'({x} has b && {x}.b == "a")', f"({x} has c && {x}.c.d)"))

    def atom(
        self, bases: list[tuple[str, Mapping[str, Attr], str | None]], principal_type: str | None
    ) -> str:
        base, attrs, tags = self.choice(bases)
        if tags is not None and _pick(self.draw, range(5)) == 0:
            key = cedar_string(self.choice(TAG_KEYS))
            test = self.test(f"{base}.getTag({key})", Attr(tags, True), principal_type)
            return f"({base}.hasTag({key}) && {test})"
        if not attrs:
            return "true"
        name = self.choice(sorted(attrs))
        attr = attrs[name]
        test = self.test(self.ref(base, name), attr, principal_type)
        if attr.required or _pick(self.draw, range(12)) == 11:
            return f"({test})"  # an optional attribute read unguarded: strict validation fails
        return f"({self.has(base, name)} && {test})"

    def condition(
        self, bases: list[tuple[str, Mapping[str, Attr], str | None]], principal_type: str | None
    ) -> str:
        form = self.choice(("atom", "atom", "and", "or", "not", "if"))
        a = self.atom(bases, principal_type)
        if form == "atom":
            return a
        if form == "not":
            return f"!{a}"
        b = self.atom(bases, principal_type)
        if form == "and":
            return f"{a} && {b}"
        if form == "or":
            return f"{a} || {b}"
        return f"(if {a} then {b} else {self.atom(bases, principal_type)})"


@st.composite
def typed_policies(draw: Any, model: SchemaModel, index: int = 0, root_actions_only: bool = False) -> Policy:
    """A policy whose scope and conditions fit the schema (most validate): one action or a list of
    actions of one type, ``principal is T``/``== T::"id"``/``is T in Group::"a"``, conditions on
    the scope's types' attributes, tags and (for one action) its context."""
    g = _Typed(draw, model)
    forbid = _pick(draw, range(20)) >= 17
    acts = [a for a in model.applicable() if not root_actions_only or a.uid[0] == "Action"]
    first = _pick(draw, acts)
    same_type = [a for a in acts if a.uid[0] == first.uid[0] and a is not first]
    chosen = [first]
    if same_type and _pick(draw, range(4)) == 0:
        chosen.append(_pick(draw, same_type))
    if len(chosen) == 1 and _pick(draw, range(5)) > 0:
        action = f"action == {cedar_entity(first.uid)}"
    else:
        action = "action in [" + ", ".join(cedar_entity(a.uid) for a in chosen) + "]"

    def scope(var: str, types: tuple[str, ...]) -> tuple[str, str | None]:
        t = _pick(draw, types)
        form = _pick(draw, ("is", "any", "is", "any", "eq", "is_in"))
        if form == "any":
            return var, None
        if form == "eq":
            return f"{var} == {cedar_entity((t, _pick(draw, ENTITY_IDS[:2])))}", t
        if form == "is_in" and "Group" in model.entities[t].parents:
            return f'{var} is {t} in Group::"a"', t
        return f"{var} is {t}", t

    p_scope, p_type = scope("principal", first.principals)
    r_scope, r_type = scope("resource", first.resources)
    bases: list[tuple[str, Mapping[str, Attr], str | None]] = []
    for var, t in (("principal", p_type), ("resource", r_type)):
        if t is not None:
            bases.append((var, model.entities[t].attrs, model.entities[t].tags))
    if len(chosen) == 1:
        bases.append(("context", first.context, None))
    clauses = []
    if bases:
        for _ in range(_pick(draw, (0, 1, 0, 1, 2) if forbid else (0, 0, 1, 0, 1, 2))):
            kw = _pick(draw, ("when", "when", "unless"))
            clauses.append(f" {kw} {{ {g.condition(bases, p_type)} }}")
    head = f"{'forbid' if forbid else 'permit'}({p_scope}, {action}, {r_scope})"
    return Policy(forbid, head + "".join(clauses) + ";")


# A Bool expression on ``x`` that errors unless ``x`` has the kind's Cedar type: a context value
# vigil types otherwise than the schema says (a string left where an ipaddr is declared, a record
# where an entity is) makes the probe error in vigil and not in Cedar.
PROBES = {
    "bool": "({x} || true)",
    "long": "({x} + 0 == {x})",
    "string": '({x} like "*")',
    "ip": "({x}.isIpv4() || true)",
    "decimal": '({x}.lessThan(decimal("0.0")) || true)',
    "datetime": "({x}.toDate() == {x}.toDate())",
    "duration": "({x}.toDays() == {x}.toDays())",
    "entity": "({x} is {target})",
    "set_string": "{x}.containsAll({x})",
    "set_long": "{x}.containsAll({x})",
    "info": "({x}.a + 0 == {x}.a)",
}


def context_probe(action: ActionDecl) -> Policy:
    """A permit for ``action`` that reads every attribute of its context at its declared type."""
    g = _Typed(None, None)  # type: ignore[arg-type]  # ref/has only
    parts = []
    for name, attr in action.context.items():
        x = g.ref("context", name)
        probe = PROBES[attr.kind].format(x=x, target=attr.target)
        has = g.has("context", name)
        parts.append(probe if attr.required else f"(({has} && {probe}) || !({has}))")
    when = " && ".join(parts) or "true"
    return Policy(
        False, f"permit(principal, action == {cedar_entity(action.uid)}, resource) when {{ {when} }};"
    )


@st.composite
def schema_cases(
    draw: Any,
    max_policies: int = 5,
    max_requests: int = 4,
    untyped: int = 4,
    root_actions_only: bool = False,
) -> Case:
    """A schema, entities and requests that mostly fit it, and policies: typed ones, one in
    ``untyped`` from the untyped generator (which rarely validates; 0: none), and now and then a
    probe of one action's context (:func:`context_probe`)."""
    model = draw(schema_models(engine_context=root_actions_only))
    ents = draw(schema_entities(model))
    pols = []
    for i in range(_pick(draw, range(1, max_policies + 1))):
        if untyped and _pick(draw, range(untyped)) == 0:
            pols.append(draw(policies(2, i, templates=False)))
        else:
            pols.append(draw(typed_policies(model, i, root_actions_only)))
    acts = [a for a in model.applicable() if not root_actions_only or a.uid[0] == "Action"]
    if _pick(draw, range(3)) < 2:
        pols.insert(_pick(draw, range(len(pols) + 1)), context_probe(_pick(draw, acts)))
    aim = "\n".join(p.text for p in pols)
    reqs = tuple(
        draw(
            st.lists(schema_requests(model, ents, root_actions_only, aim), min_size=1, max_size=max_requests)
        )
    )
    return Case(tuple(pols), ents, reqs, (), model.text)
