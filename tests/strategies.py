"""Hypothesis strategies for differential tests against cedarpy: random Cedar policy sets (as text),
entity sets (Cedar entity JSON) and requests.

Everything is drawn from small shared pools (entity types and ids, attribute names, extension
literals) so that generated policies often *match* the generated entities and contexts instead of
just erroring. Expressions come from a typed recursive grammar: each operand is generated for the
type its operator expects, except that now and then (``MISTYPE``) an operand of a random other type
is used instead, to exercise Cedar's type errors.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)

# -- pools -----------------------------------------------------------------------------------------

ENTITY_TYPES = ("User", "Group", "Doc", "NS::Box")
ENTITY_IDS = ("a", "b", "c", 'q"x', "é", "")
# Uids that exist only in policies and requests, never in the entity set.
GHOSTS = (("User", "ghost"), ("Doc", "gone"), ("Nope", "a"))
UNIVERSE = (*((t, i) for t in ENTITY_TYPES for i in ENTITY_IDS[:4]), ("User", "é"), ("Group", ""))
ACTIONS = ("read", "write", "delete", "all", "admin")
# Action entity types: the usual one and a namespaced one (``NS::Action::"read"``).
ACTION_TYPES = ("Action", "NS::Action")
# Action groups used when the entity set declares action entities: child -> possible parents.
ACTION_PARENTS = {"read": ("all",), "write": ("all", "admin"), "delete": ("admin",), "admin": ("all",)}

TYPES = ("bool", "long", "string", "entity", "set", "record", "ip", "decimal", "datetime", "duration")
# Attribute name -> the type it usually has in generated entities and contexts.
ATTRS: dict[str, str] = {
    "flag": "bool",
    "level": "long",
    "name": "string",
    "owner": "entity",
    "roles": "set",
    "nums": "set",
    "mixed": "set",
    "info": "record",
    "addr": "ip",
    "amount": "decimal",
    "created": "datetime",
    "ttl": "duration",
    "a b": "string",
}
ABSENT_ATTRS = ("missing", "__extn", "type")
# The element kind of each set-valued attribute ("mixed": longs, bools and strings together).
SET_KINDS = {"roles": "string", "nums": "long", "mixed": "mixed"}
INFO_FIELDS = {"a": "long", "b": "string", "c": "record"}
INFO_KEY = {"long": "a", "string": "b", "record": "c"}
TAG_KEYS = ("k", "env", "level", "")

STRINGS = (
    "",
    "a",
    "ab",
    "abc",
    "ba",
    "A",
    "a*b",
    "*",
    'q"x',
    "b\\s",
    "tab\t",
    "é",
    "😀",
    "x;y",
    "//",
    "nul\0",
    # valid arguments of the extension constructors, for calls whose argument is computed
    "10.0.0.1",
    "::1",
    "1.5",
    "2024-01-01",
    "1h30m",
)
LONGS = (
    0,
    1,
    2,
    -1,
    3,
    7,
    10,
    42,
    -42,
    LONG_MAX,
    LONG_MIN,
    LONG_MAX - 1,
    LONG_MIN + 1,
    2**62,
    -(2**62),
    3037000500,
)
EXTREME_LONGS = (
    LONG_MAX,
    LONG_MIN,
    LONG_MAX - 1,
    LONG_MIN + 1,
    2**62,
    -(2**62),
    3037000500,
    -3037000500,
    2,
    -1,
)
IPS = (
    "10.0.0.1",
    "10.0.0.0/8",
    "10.1.2.3/24",
    "127.0.0.1",
    "127.0.0.0/8",
    "127.5.5.5/4",
    "192.168.1.1/32",
    "::1",
    "::1/127",
    "::",
    "ff02::1",
    "ff00::/8",
    "2001:db8::1",
    "2001:db8::/32",
    "224.0.0.1",
)
BAD_IPS = ("bogus", "10.0.0.01", "::ffff:1.2.3.4", "10.0.0.0/33", "1.2.3")
DECIMALS = (
    "0.0",
    "1.5",
    "-1.5",
    "1.0000",
    "1.0",
    "2.25",
    "922337203685477.5807",
    "-922337203685477.5808",
    "0.0001",
)
BAD_DECIMALS = ("1", "1.23456", "922337203685477.5808", "+1.0", "1e3")
DATETIMES = (
    "2024-01-01",
    "2024-01-01T12:00:00Z",
    "2024-02-29T23:59:59.999+0100",
    "1970-01-01",
    "1969-12-31T23:59:59.999Z",
    "0000-01-01",
    "9999-12-31T23:59:59Z",
    "2024-06-30T00:00:00-2359",
)
BAD_DATETIMES = ("2023-02-29", "2024-01-01T24:00:00Z", "2024-1-1", "2024-01-01T00:00:00+2400")
DURATIONS = (
    "1d",
    "-1d2h",
    "1h30m",
    "0ms",
    "1ms",
    "-1ms",
    "2d3h4m5s6ms",
    "106751991167d",
    "9223372036854775807ms",
    "-9223372036854775808ms",
    "59s",
)
BAD_DURATIONS = ("1x", "", "-", "1m1h", "9223372036854775808ms")
EXTN_POOLS = {
    "ip": (IPS, BAD_IPS),
    "decimal": (DECIMALS, BAD_DECIMALS),
    "datetime": (DATETIMES, BAD_DATETIMES),
    "duration": (DURATIONS, BAD_DURATIONS),
}

MISTYPE = 0.08  # chance that an operand is of a random type instead of the expected one


# -- Cedar text helpers ----------------------------------------------------------------------------


def cedar_string(value: str, escape_all: bool = False) -> str:
    """``value`` as a Cedar string literal (plain where possible, or with ``\\u{..}`` everywhere)."""
    out = []
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif escape_all and not ch.isalnum():
            out.append(f"\\u{{{ord(ch):x}}}")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif not ch.isprintable():
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def cedar_entity(uid: tuple[str, str], escape_all: bool = False) -> str:
    return f"{uid[0]}::{cedar_string(uid[1], escape_all)}"


def is_ident(name: str) -> bool:
    return name.isidentifier() and name.isascii()


# -- the case model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    forbid: bool
    text: str
    annotation_id: str | None = None  # its @id: vigil reports a static policy by it
    template: bool = False  # has ?principal / ?resource slots: grants only through links


@dataclass(frozen=True)
class Request:
    principal: tuple[str, str]
    action: str
    resource: tuple[str, str]
    context: dict[str, Any]
    action_type: str = "Action"

    @property
    def action_uid(self) -> tuple[str, str]:
        return (self.action_type, self.action)

    def cedar(self, extra_context: dict[str, Any] | None = None) -> dict[str, Any]:
        """cedarpy's request form."""
        ctx = dict(self.context)
        if extra_context:
            ctx.update(extra_context)
        return {
            "principal": cedar_entity(self.principal),
            "action": cedar_entity(self.action_uid),
            "resource": cedar_entity(self.resource),
            "context": ctx,
        }


@dataclass(frozen=True)
class Case:
    policies: tuple[Policy, ...]
    entities: tuple[dict[str, Any], ...]
    requests: tuple[Request, ...]
    # Template links in the documented ``links.json`` form: {"template", "id", "values"}.
    links: tuple[dict[str, Any], ...] = ()
    # A Cedar schema (human-readable form): entities and contexts are typed by it, policies
    # validated against it (tests/schema_strategies.py).
    schema: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.policies)

    def cedarpy_links(self) -> list[dict[str, Any]]:
        return [{"template_id": x["template"], "new_id": x["id"], "values": x["values"]} for x in self.links]

    def vigil_id(self, cedar_id: str) -> str:
        """The id vigil reports for the policy Cedar reports as ``cedar_id`` (a static policy's @id)."""
        if (
            cedar_id.startswith("policy")
            and cedar_id[6:].isdigit()
            and int(cedar_id[6:]) < len(self.policies)
        ):
            return self.policies[int(cedar_id[6:])].annotation_id or cedar_id
        return cedar_id

    def effect(self, policy_id: str) -> bool:
        """True when the policy (by Cedar id, @id or link id) is a forbid."""
        for i, p in enumerate(self.policies):
            if policy_id in (f"policy{i}", p.annotation_id):
                return p.forbid
        for link in self.links:
            if link["id"] == policy_id:
                return self.effect(link["template"])
        raise KeyError(policy_id)

    def as_test(self, name: str = "test_fuzz_counterexample", check: str = "_compare") -> str:
        """This case as a ready-to-paste test for tests/test_differential.py."""
        pols = "".join(
            f"            Policy({p.forbid!r}, {p.text!r}, {p.annotation_id!r}, {p.template!r}),\n"
            for p in self.policies
        )
        ents = "".join(f"            {e!r},\n" for e in self.entities)
        reqs = "".join(
            f"            Request({r.principal!r}, {r.action!r}, {r.resource!r}, {r.context!r}, {r.action_type!r}),\n"
            for r in self.requests
        )
        links = "".join(f"            {x!r},\n" for x in self.links)
        return (
            f"def {name}() -> None:\n    case = Case(\n"
            f"        (\n{pols}        ),\n        (\n{ents}        ),\n        (\n{reqs}        ),\n"
            f"        (\n{links}        ),\n"
            + (f"        schema={self.schema!r},\n" if self.schema is not None else "")
            + f"    )\n    {check}(case)\n"
        )

    def __repr__(self) -> str:
        import json

        lines = ["Case(", "  policies:", *("    " + p.text for p in self.policies), "  entities:"]
        lines += ["    " + json.dumps(e, ensure_ascii=False) for e in self.entities]
        lines.append("  requests:")
        lines += ["    " + json.dumps(r.cedar(), ensure_ascii=False) for r in self.requests]
        if self.links:
            lines.append("  links:")
            lines += ["    " + json.dumps(x, ensure_ascii=False) for x in self.links]
        if self.schema is not None:
            lines.append("  schema:")
            lines += ["    " + line for line in self.schema.splitlines()]
        return "\n".join([*lines, ")"])


# -- expressions -----------------------------------------------------------------------------------


_PERCENT = st.sampled_from(range(100))


class _Expr:
    """A typed recursive generator of Cedar expression text (``draw`` is hypothesis's)."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def choice(self, options: Any) -> Any:
        return self.draw(st.sampled_from(options))

    def chance(self, p: float) -> bool:
        # sampled_from draws near-uniformly (st.integers favours small values and boundaries,
        # which made every "rare" branch far more common than its p); shrinks towards False.
        return bool(self.draw(_PERCENT) < int(p * 100))

    def weighted(self, weights: dict[str, int]) -> str:
        """One of the keys, each as often as its weight (shrinks towards the first key)."""
        return str(self.choice(tuple(k for k, w in weights.items() for _ in range(w))))

    def operand(self, t: str, depth: int) -> str:
        """An expression of type ``t``, or (rarely) of a random type."""
        if self.chance(MISTYPE):
            t = self.choice(TYPES)
        return self.expr(t, depth)

    def expr(self, t: str, depth: int) -> str:
        if depth <= 0 or self.chance(0.3):
            return self.leaf(t)
        return getattr(self, "e_" + t)(depth - 1)

    # leaves ---------------------------------------------------------------------------------
    def leaf(self, t: str) -> str:
        if self.chance(0.45):
            return self.access(t, 0)
        return self.literal(t)

    def literal(self, t: str) -> str:
        if t == "bool":
            return self.choice(("true", "false"))
        if t == "long":
            if self.chance(0.003):
                return "9223372036854775808"  # too large: cedarpy refuses the policy
            v = self.choice(LONGS)
            return str(v) if v >= 0 else f"({v})"
        if t == "string":
            return cedar_string(self.choice(STRINGS), self.chance(0.2))
        if t == "entity":
            return self.entity_literal()
        if t == "set":
            return self.set_literal(0)
        if t == "record":
            return self.choice(("{}", '{a: 1, "b": "x"}', "{c: {d: true}}", '{"a b": 1, flag: false}'))
        good, bad = EXTN_POOLS[t]
        arg = self.choice(bad) if self.chance(0.05) else self.choice(good)
        return f"{t}({cedar_string(arg)})"

    def entity_literal(self) -> str:
        if self.chance(0.1):
            return cedar_entity((self.choice(ACTION_TYPES), self.choice(ACTIONS)))
        uid = self.choice(UNIVERSE + GHOSTS)
        return cedar_entity(uid, self.chance(0.2))

    def set_literal(self, depth: int) -> str:
        n = self.draw(st.sampled_from(range(3 + 1)))
        kind = self.choice(("long", "string", "entity", "bool", "mixed", "record", "ip", "set"))
        elems = []
        for _ in range(n):
            et = self.choice(("long", "bool", "string")) if kind == "mixed" else kind
            if et == "set":  # nested sets: [[1, 2], []]
                elems.append(
                    self.set_literal(0) if depth <= 0 or self.chance(0.5) else self.expr("set", depth - 1)
                )
            else:
                elems.append(self.expr(et, depth) if depth > 0 else self.literal(et))
        return "[" + ", ".join(elems) + "]"

    def entity_base(self, depth: int) -> str:
        """An entity-valued expression to read attributes from."""
        options = ["principal", "principal", "resource", "resource", "action", "lit", "owner"]
        pick = self.choice(options)
        if pick == "lit":
            return self.entity_literal()
        if pick == "owner":
            return f"{self.choice(('principal', 'resource', 'context'))}.owner"
        return pick

    def attr_ref(self, base: str, name: str) -> str:
        if is_ident(name) and not self.chance(0.15):
            return f"{base}.{name}"
        return f"{base}[{cedar_string(name)}]"

    def access(self, t: str, depth: int) -> str:
        """An attribute read that usually yields type ``t``."""
        if t == "record" and self.chance(0.3):
            return "context"
        if t == "entity" and self.chance(0.5):
            return self.choice(("principal", "resource", "action"))
        names = [n for n, nt in ATTRS.items() if nt == t]
        if not names or self.chance(0.1):
            names = [*ATTRS, *ABSENT_ATTRS]
        name = self.choice(names)
        if t in ("long", "string", "record", "bool") and self.chance(0.2):
            # A field of the `info` record: info.a (long), info.b (string), info.c.d (bool).
            base = self.attr_ref(self.choice(("principal", "resource", "context")), "info")
            if t == "bool":
                return f"{base}.c.d"
            return f"{base}.{INFO_KEY[t]}"
        if self.chance(0.2):
            tag_base = self.entity_base(depth)
            return f"{tag_base}.getTag({self.tag_key(depth)})"
        base = "context" if self.chance(0.35) else self.entity_base(depth)
        return self.attr_ref(base, name)

    def tag_key(self, d: int) -> str:
        """A tag key: usually a literal, now and then computed (``context.name``, an ``if``)."""
        if self.chance(0.7):
            return cedar_string(self.choice(TAG_KEYS))
        if self.chance(0.5):
            return f"(if {self.operand('bool', d)} then {cedar_string(self.choice(TAG_KEYS))} else {self.operand('string', d)})"
        return self.access("string", d)

    def ctor_arg(self, kind: str, d: int) -> str:
        """A computed argument of an extension constructor: a string expression that is valid for
        ``kind`` on one branch (``ip(if c then "10.0.0.1" else context.name)``), or any string."""
        good, bad = EXTN_POOLS[kind]
        if self.chance(0.6):
            lit = cedar_string(self.choice(bad) if self.chance(0.15) else self.choice(good))
            return f"(if {self.operand('bool', d)} then {lit} else {self.operand('string', d)})"
        return self.operand("string", d)

    def ctor(self, kind: str, d: int) -> str:
        """``kind(<computed string>)``: a constructor call whose argument is not a literal."""
        fn = kind
        return f"{fn}({self.ctor_arg(kind, d)})"

    # The forms of a Bool expression and how often each is drawn: every operator and extension
    # method gets a form of its own, so each appears in a good share of generated policy sets.
    BOOL_FORMS: dict[str, int] = {
        "access": 2,
        "has": 3,
        "cmp": 2,
        "eq": 3,
        "and": 3,
        "or": 2,
        "not": 2,
        "if": 2,
        "in": 2,
        "in_set": 2,
        "is": 2,
        "like": 2,
        "contains": 2,
        "contains_all": 2,
        "contains_any": 2,
        "is_empty": 1,
        "nested_set": 1,
        "has_tag": 2,
        "get_tag": 2,
        "ip_pred": 3,
        "in_range": 2,
        "decimal_cmp": 3,
        "time_cmp": 2,
        "arith": 4,
        "dur_conv": 3,
        "offset": 2,
        "ctor": 3,
        "guarded": 5,
    }

    def e_bool(self, d: int) -> str:
        form = self.weighted(self.BOOL_FORMS)
        o = self.operand
        if form == "arith":
            # Often near the 64-bit bounds, so that overflow (an error in Cedar) is reached.
            op = self.choice(("+", "-", "*", "neg"))

            def arg() -> str:
                if self.chance(0.4):
                    v = self.choice(EXTREME_LONGS)
                    return str(v) if v >= 0 else f"({v})"
                return o("long", d)

            lhs = f"(-{arg()})" if op == "neg" else f"({arg()} {op} {arg()})"
            return f"({lhs} {self.choice(('<', '<=', '>', '>=', '==', '!='))} {o('long', d)})"
        if form == "dur_conv":
            m = self.choice(("toDays", "toHours", "toMinutes", "toSeconds", "toMilliseconds"))
            return f"({o('duration', d)}.{m}() {self.choice(('<', '<=', '>', '>=', '=='))} {o('long', d)})"
        if form == "offset":
            lhs = f"{o('datetime', d)}.offset({o('duration', d)})"
            return f"({lhs} {self.choice(('<', '<=', '>', '>=', '==', '!='))} {o('datetime', d)})"
        if form == "ctor":
            kind = self.choice(("ip", "decimal", "datetime", "duration"))
            call = self.ctor(kind, d)
            if kind == "ip":
                return f"({call}.{self.choice(('isIpv4', 'isIpv6', 'isLoopback', 'isMulticast'))}())"
            if kind == "decimal":
                return f"({call}.{self.choice(('lessThan', 'greaterThanOrEqual'))}({o('decimal', d)}))"
            return f"({call} {self.choice(('<', '>=', '=='))} {o(kind, d)})"
        if form == "get_tag":
            base = self.entity_base(d)
            t = self.choice(("string", "long", "bool"))
            return f"({base}.getTag({self.tag_key(d)}) == {o(t, d)})"
        if form == "nested_set":
            outer = self.set_literal(d)
            inner = self.set_literal(0)
            m = self.choice(("contains", "containsAll", "containsAny"))
            arg = inner if m == "contains" else f"[{inner}]"
            return f"({outer}.{m}({arg}))"
        if form == "access":
            return self.access("bool", d)
        if form == "guarded":
            return self.guarded(d)
        if form == "has":
            base = self.choice(("principal", "resource", "context", "entity", "record", "info"))
            if base == "entity":
                base = f"({self.entity_base(d)})"
            elif base == "record":
                base = f"({o('record', d)})"
            elif base == "info":
                base = self.attr_ref(self.choice(("principal", "context")), "info")
                return f"({base} has {self.choice(('a', 'b', 'c', 'c.d', 'c.e', 'z'))})"
            name = self.choice([*ATTRS, *ABSENT_ATTRS, "info.a", "info.c.d"])
            if "." not in name and (not is_ident(name) or self.chance(0.2)):
                name = cedar_string(name)
            return f"({base} has {name})"
        if form == "cmp":
            t = self.choice(("long", "long", "long", "datetime", "duration", "decimal"))
            op = self.choice(("<", "<=", ">", ">="))
            return f"({o(t, d)} {op} {o(t, d)})"
        if form == "eq":
            t = self.choice(TYPES)
            u = t if self.chance(0.8) else self.choice(TYPES)
            return f"({o(t, d)} {self.choice(('==', '!='))} {o(u, d)})"
        if form == "and":
            return f"({o('bool', d)} && {o('bool', d)})"
        if form == "or":
            return f"({o('bool', d)} || {o('bool', d)})"
        if form == "not":
            return f"(!{o('bool', d)})"
        if form == "if":
            return self.ite("bool", d)
        if form == "in":
            return f"({o('entity', d)} in {o('entity', d)})"
        if form == "in_set":
            elems = ", ".join(o("entity", d) for _ in range(self.draw(st.sampled_from(range(3 + 1)))))
            rhs = f"[{elems}]" if self.chance(0.7) else o("set", d)
            return f"({o('entity', d)} in {rhs})"
        if form == "is":
            etype = self.choice((*ENTITY_TYPES, "Action", "Nope"))
            if self.chance(0.3):
                return f"({o('entity', d)} is {etype} in {o('entity', d)})"
            return f"({o('entity', d)} is {etype})"
        if form == "like":
            return f"({o('string', d)} like {self.pattern()})"
        if form == "contains":
            return f"({o('set', d)}.contains({o(self.choice(('long', 'string', 'entity', 'bool', 'record')), d)}))"
        if form == "contains_all":
            return f"({o('set', d)}.containsAll({o('set', d)}))"
        if form == "contains_any":
            return f"({o('set', d)}.containsAny({o('set', d)}))"
        if form == "is_empty":
            return f"({o('set', d)}.isEmpty())"
        if form == "has_tag":
            return f"({o('entity', d)}.hasTag({self.tag_key(d)}))"
        if form == "ip_pred":
            return f"({o('ip', d)}.{self.choice(('isIpv4', 'isIpv6', 'isLoopback', 'isMulticast'))}())"
        if form == "in_range":
            return f"({o('ip', d)}.isInRange({o('ip', d)}))"
        if form == "decimal_cmp":
            m = self.choice(("lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"))
            return f"({o('decimal', d)}.{m}({o('decimal', d)}))"
        t = self.choice(("datetime", "duration"))
        return f"({o(t, d)} {self.choice(('<', '<=', '>', '>=', '=='))} {o(t, d)})"

    def guarded(self, d: int) -> str:
        """``(B has n && <a test of B.n>)``, or the ``if B has n then .. else ..`` form: the usual
        Cedar idiom, so that deeper conditions are reached instead of failing on a missing attribute."""
        base = self.choice(("principal", "resource", "context", "principal.owner", "resource.owner"))
        name = self.choice(tuple(ATTRS))
        t = ATTRS[name]
        has = name if is_ident(name) else cedar_string(name)
        ref = self.attr_ref(base, name)
        o = self.operand
        test = {
            "bool": lambda: ref,
            "long": lambda: f"({ref} {self.choice(('<', '<=', '>', '>=', '==', '!='))} {o('long', d)})",
            "string": lambda: f"({ref} like {self.pattern()})",
            "entity": lambda: f"({ref} in {o('entity', d)})",
            "set": lambda: (
                f"({ref}.{self.choice(('contains', 'containsAny', 'containsAll'))}("
                f"{o(self.choice(('long', 'string', 'bool')), d) if self.chance(0.5) else o('set', d)}))"
            ),
            "record": lambda: f"({ref} has {self.choice(('a', 'b', 'c', 'c.d'))})",
            "ip": lambda: f"({ref}.isInRange({o('ip', d)}))",
            "decimal": lambda: f"({ref}.lessThan({o('decimal', d)}))",
            "datetime": lambda: f"({ref} < {o('datetime', d)})",
            "duration": lambda: f"({ref} >= {o('duration', d)})",
        }[t]()
        if self.chance(0.25):
            return f"(if {base} has {has} then {test} else {o('bool', d)})"
        return f"({base} has {has} && {test})"

    def pattern(self) -> str:
        out = []
        for _ in range(self.draw(st.sampled_from(range(4 + 1)))):
            piece = self.choice(("*", "*", "a", "b", "\\*", "é", '\\"', "\\\\", "\\u{61}", "\\n", "x"))
            out.append(piece)
        return '"' + "".join(out) + '"'

    def ite(self, t: str, d: int) -> str:
        return f"(if {self.operand('bool', d)} then {self.operand(t, d)} else {self.operand(t, d)})"

    def e_long(self, d: int) -> str:
        form = self.weighted(
            {"access": 2, "add": 2, "sub": 2, "mul": 2, "neg": 2, "if": 1, "dur": 3, "lit": 1}
        )
        o = self.operand
        if form == "access":
            return self.access("long", d)
        if form == "add":
            return f"({o('long', d)} + {o('long', d)})"
        if form == "sub":
            return f"({o('long', d)} - {o('long', d)})"
        if form == "mul":
            return f"({o('long', d)} * {o('long', d)})"
        if form == "neg":
            return f"(-{o('long', d)})"
        if form == "if":
            return self.ite("long", d)
        if form == "dur":
            m = self.choice(("toDays", "toHours", "toMinutes", "toSeconds", "toMilliseconds"))
            return f"({o('duration', d)}.{m}())"
        return self.literal("long")

    def e_string(self, d: int) -> str:
        if self.chance(0.4):
            return self.ite("string", d)
        return self.access("string", d)

    def e_entity(self, d: int) -> str:
        form = self.choice(("access", "lit", "if"))
        if form == "access":
            return self.access("entity", d)
        if form == "if":
            return self.ite("entity", d)
        return self.entity_literal()

    def e_set(self, d: int) -> str:
        form = self.choice(("lit", "lit", "access", "if"))
        if form == "access":
            return self.access("set", d)
        if form == "if":
            return self.ite("set", d)
        return self.set_literal(d)

    def e_record(self, d: int) -> str:
        form = self.choice(("lit", "access", "if", "context"))
        if form == "access":
            return self.access("record", d)
        if form == "if":
            return self.ite("record", d)
        if form == "context":
            return "context"
        # Keys may repeat (rarely): cedarpy refuses a record literal with a duplicate key.
        keys = self.draw(st.lists(st.sampled_from(("a", "b", "c", "flag", "a b", "level")), max_size=3))
        fields = []
        for k in keys:
            t = {"a": "long", "b": "string", "c": "record", "flag": "bool", "level": "long"}.get(k, "string")
            key = k if is_ident(k) and self.chance(0.7) else cedar_string(k)
            fields.append(f"{key}: {self.operand(t, d)}")
        return "{" + ", ".join(fields) + "}"

    def e_ip(self, d: int) -> str:
        if self.chance(0.2):
            return self.ctor("ip", d)
        return self.access("ip", d) if self.chance(0.4) else self.literal("ip")

    def e_decimal(self, d: int) -> str:
        if self.chance(0.2):
            return self.ctor("decimal", d)
        return self.access("decimal", d) if self.chance(0.4) else self.literal("decimal")

    def e_datetime(self, d: int) -> str:
        form = self.weighted({"access": 2, "lit": 2, "offset": 3, "to_date": 2, "if": 1, "ctor": 1})
        if form == "ctor":
            return self.ctor("datetime", d)
        if form == "access":
            return self.access("datetime", d)
        if form == "offset":
            return f"({self.operand('datetime', d)}.offset({self.operand('duration', d)}))"
        if form == "to_date":
            return f"({self.operand('datetime', d)}.toDate())"
        if form == "if":
            return self.ite("datetime", d)
        return self.literal("datetime")

    def e_duration(self, d: int) -> str:
        form = self.weighted({"access": 2, "lit": 2, "since": 2, "to_time": 2, "ctor": 1})
        if form == "ctor":
            return self.ctor("duration", d)
        if form == "access":
            return self.access("duration", d)
        if form == "since":
            return f"({self.operand('datetime', d)}.durationSince({self.operand('datetime', d)}))"
        if form == "to_time":
            return f"({self.operand('datetime', d)}.toTime())"
        return self.literal("duration")


@st.composite
def expressions(draw: Any, t: str = "bool", depth: int = 3) -> str:
    """Cedar expression text, usually of type ``t``."""
    return _Expr(draw).expr(t, depth)


# -- policies --------------------------------------------------------------------------------------


@st.composite
def scopes(draw: Any, var: str, slot: bool = False) -> str:
    """A principal or resource scope; with ``slot``, one that uses the template slot ``?var``."""
    if slot:
        kind = draw(st.sampled_from(("eq", "in", "is_in")))
        etype = draw(st.sampled_from(ENTITY_TYPES))
        return {"eq": f"{var} == ?{var}", "in": f"{var} in ?{var}", "is_in": f"{var} is {etype} in ?{var}"}[
            kind
        ]
    kind = draw(st.sampled_from(("any", "any", "any", "any", "eq", "in", "is", "is_in")))
    g = _Expr(draw)
    if kind == "any":
        return var
    if kind == "eq":
        return f"{var} == {g.entity_literal()}"
    if kind == "in":
        return f"{var} in {g.entity_literal()}"
    etype = draw(st.sampled_from(ENTITY_TYPES))
    if kind == "is":
        return f"{var} is {etype}"
    return f"{var} is {etype} in {g.entity_literal()}"


@st.composite
def action_scopes(draw: Any) -> str:
    kind = draw(st.sampled_from(("any", "any", "any", "eq", "in_list", "in_one")))
    if kind == "any":
        return "action"

    def uid() -> str:
        atype = draw(st.sampled_from(ACTION_TYPES)) if draw(st.sampled_from(range(3 + 1))) == 0 else "Action"
        return f'{atype}::"{draw(st.sampled_from(ACTIONS))}"'

    if kind == "eq":
        return f"action == {uid()}"
    if kind == "in_one":
        return f"action in {uid()}"
    return "action in [" + ", ".join(uid() for _ in range(draw(st.sampled_from(range(3 + 1))))) + "]"


@st.composite
def policies(draw: Any, max_depth: int = 3, index: int = 0, templates: bool = True) -> Policy:
    """One policy; permits are more common than forbids (so that more requests are allowed), some
    carry an ``@id`` (vigil reports them by it), some are templates (slots filled by links)."""
    forbid = draw(st.sampled_from(range(10))) < 2
    slots = draw(st.sampled_from(("", "", "", "", "", "", "p", "r", "pr"))) if templates else ""
    head = (
        f"{'forbid' if forbid else 'permit'}({draw(scopes('principal', 'p' in slots))}, {draw(action_scopes())}, "
        f"{draw(scopes('resource', 'r' in slots))})"
    )
    clauses = []
    for _ in range(draw(st.sampled_from((0, 1, 1, 1, 2) if forbid else (0, 0, 1, 1, 1, 2)))):
        kw = draw(st.sampled_from(("when", "when", "unless")))
        # A clause is always a compound expression (never a lone leaf such as `true`).
        clauses.append(f" {kw} {{ {_Expr(draw).e_bool(max_depth - 1)} }}")
    annotation_id = f"rule-{index}" if draw(st.sampled_from(range(3 + 1))) == 0 else None
    annotations = f'@id("{annotation_id}") ' if annotation_id else ""
    if draw(st.sampled_from(range(9 + 1))) == 0:
        annotations += '@advice("a \\"note\\"") '
    return Policy(forbid, annotations + head + "".join(clauses) + ";", annotation_id, bool(slots))


@st.composite
def policy_lists(
    draw: Any, max_policies: int = 6, max_depth: int = 3, templates: bool = True
) -> tuple[Policy, ...]:
    n = draw(st.sampled_from(range(1, max_policies + 1)))
    return tuple(draw(policies(max_depth, i, templates)) for i in range(n))


@st.composite
def links(draw: Any, pols: tuple[Policy, ...]) -> tuple[dict[str, Any], ...]:
    """Links for the templates among ``pols`` (documented ``links.json`` form), each template linked
    0-2 times to entities that mostly exist; by Cedar id or by @id."""
    out = []
    for i, p in enumerate(pols):
        if not p.template:
            continue
        for j in range(draw(st.sampled_from(range(2 + 1)))):
            values = {}
            for var in ("principal", "resource"):
                if f"?{var}" in p.text:
                    uid = draw(st.sampled_from(UNIVERSE + GHOSTS[:1]))
                    values[f"?{var}"] = {"type": uid[0], "id": uid[1]}
            ref = p.annotation_id if p.annotation_id and draw(st.booleans()) else f"policy{i}"
            out.append({"template": ref, "id": f"link{i}-{j}", "values": values})
    return tuple(out)


# -- JSON values, entities, contexts ---------------------------------------------------------------


class _Json:
    """Cedar JSON values (entity attributes, tags, context), from a seeded ``random.Random``.

    Values are bulky and hypothesis draws are not free, so each record comes from one drawn seed;
    seed 0 always gives the empty record, so shrinking still removes what a failure does not need.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def choice(self, options: Any) -> Any:
        return self.rng.choice(options)

    def value(self, t: str, depth: int = 2, set_kind: str | None = None) -> Any:
        if self.chance(MISTYPE):
            t = self.choice(TYPES)
        if t == "bool":
            return self.choice((True, False))
        if t == "long":
            return self.choice(LONGS)
        if t == "string":
            return self.choice(STRINGS)
        if t == "entity":
            uid = self.choice(UNIVERSE + GHOSTS)
            return {"__entity": {"type": uid[0], "id": uid[1]}}
        if t == "set":
            kind = (
                set_kind
                if set_kind and self.chance(0.8)
                else self.choice(("long", "string", "entity", "mixed", "bool", "record"))
            )
            out = []
            for _ in range(self.rng.randint(0, 3)):
                et = self.choice(("long", "bool", "string")) if kind == "mixed" else kind
                out.append(self.value(et, depth - 1) if depth > 0 else self.choice(STRINGS))
            return out
        if t == "record":
            if depth <= 0:
                return {}
            rec: dict[str, Any] = {}
            for k, ft in INFO_FIELDS.items():
                if self.chance(0.75):
                    nested = ft == "record" and self.chance(0.8)
                    rec[k] = {"d": self.value("bool")} if nested else self.value(ft, depth - 1)
            return rec
        good, _bad = EXTN_POOLS[t]
        return {"__extn": {"fn": t, "arg": self.choice(good)}}

    def record(self, presence: float) -> dict[str, Any]:
        return {
            name: self.value(t, set_kind=SET_KINDS.get(name))
            for name, t in ATTRS.items()
            if self.chance(presence)
        }

    def tags(self) -> dict[str, Any]:
        keys = self.rng.sample(TAG_KEYS, self.rng.randint(0, 3))
        return {k: self.value(self.choice(("string", "long", "bool", "set", "entity"))) for k in keys}


SEEDS = st.integers(0, 2**32)


def json_record(seed: int, presence: float = 0.5) -> dict[str, Any]:
    """A random record of attributes from ATTRS (empty for seed 0)."""
    return _Json(seed).record(presence) if seed else {}


@st.composite
def contexts(draw: Any) -> dict[str, Any]:
    return json_record(draw(SEEDS), 0.6)


@st.composite
def entity_sets(draw: Any) -> tuple[dict[str, Any], ...]:
    """A Cedar entity JSON list over a random subset of UNIVERSE, with an acyclic hierarchy.

    Parents come from entities later in the list (so there are no cycles, but there are shared
    ancestors), now and then from GHOSTS (parents that are not entities). Action entities, when
    present, form a small group hierarchy.
    """
    chosen = draw(st.lists(st.sampled_from(UNIVERSE), max_size=7, unique=True))
    out = []
    for i, uid in enumerate(chosen):
        later = chosen[i + 1 :]
        parents = draw(st.lists(st.sampled_from(later + list(GHOSTS[:1])), max_size=3, unique=True))
        seed = draw(SEEDS)
        if seed % 997 == 1:
            parents.append(("", "bad"))  # an invalid uid: cedarpy refuses the whole entity set
        item: dict[str, Any] = {
            "uid": {"type": uid[0], "id": uid[1]},
            "attrs": json_record(seed, 0.7),
            "parents": [{"type": p[0], "id": p[1]} for p in parents],
        }
        if seed % 2:
            item["tags"] = _Json(seed + 1).tags()
        out.append(item)
    actions = draw(st.lists(st.sampled_from(ACTIONS), max_size=len(ACTIONS), unique=True))
    for name in actions:
        parents = draw(st.lists(st.sampled_from(ACTION_PARENTS.get(name, ("all",))), max_size=2, unique=True))
        seed = draw(SEEDS)
        # Namespaced action entities now and then (their own small hierarchy).
        atype = "NS::Action" if seed % 5 == 2 else "Action"
        out.append(
            {
                "uid": {"type": atype, "id": name},
                "attrs": json_record(seed, 0.3) if seed % 4 == 1 else {},
                "parents": [{"type": atype, "id": p} for p in parents if p != name],
            }
        )
    return tuple(out)


_UID_IN_TEXT = re.compile(r'([A-Za-z_][A-Za-z_0-9]*(?:::[A-Za-z_][A-Za-z_0-9]*)*)::"([^"\\]*)"')


def named_uids(text: str) -> list[tuple[str, str]]:
    """The entity uids a policy text names (plain ids only), so requests can aim at the scopes."""
    return [(t, i) for t, i in _UID_IN_TEXT.findall(text) if not t.endswith("Action")]


@st.composite
def requests(
    draw: Any,
    entities: tuple[dict[str, Any], ...],
    namespaced: bool = True,
    aim: tuple[tuple[str, str], ...] = (),
) -> Request:
    """A request on the existing entities mostly; also on uids the policies name (``aim``: so that
    scopes such as ``principal == User::"a"`` match more often), and on unknown ones."""
    existing = [
        (e["uid"]["type"], e["uid"]["id"]) for e in entities if not e["uid"]["type"].endswith("Action")
    ]
    pool = existing * 6 + list(aim) * 3 + list(UNIVERSE[:2]) + list(GHOSTS[:2])
    principal = draw(st.sampled_from(pool))
    resource = draw(st.sampled_from(pool))
    action = draw(st.sampled_from(ACTIONS))
    action_type = "NS::Action" if namespaced and draw(st.sampled_from(range(5))) == 0 else "Action"
    return Request(principal, action, resource, draw(contexts()), action_type)


@st.composite
def cases(
    draw: Any,
    max_policies: int = 6,
    max_requests: int = 4,
    max_depth: int = 3,
    templates: bool = True,
    namespaced: bool = True,
) -> Case:
    """Policies (templates among them, with links), entities and requests (some with a namespaced
    action when ``namespaced``: the engine maps AuthZEN actions to ``Action`` only)."""
    pols = draw(policy_lists(max_policies, max_depth, templates))
    ents = draw(entity_sets())
    lnks = draw(links(pols))
    aim = tuple(named_uids("\n".join(p.text for p in pols))) + tuple(
        (v["type"], v["id"]) for x in lnks for v in x["values"].values()
    )
    reqs = tuple(draw(st.lists(requests(ents, namespaced, aim), min_size=1, max_size=max_requests)))
    return Case(pols, ents, reqs, lnks)
