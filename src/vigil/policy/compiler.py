"""Compile Cedar policies (cedarpy's typed policy tree) into Python functions, once, at load.

Each policy becomes generated Python source, compiled with :func:`compile` and run as an ordinary
function on the decision path::

    match(P, A, R, C, PA, RA, PANC, RANC, E) -> bool     # raises EvalError like Cedar

``P``/``A``/``R`` are the request's entity uids, ``C`` the context record, ``PA``/``RA`` the
principal's and resource's attributes, ``PANC``/``RANC`` their transitive ancestors and ``E`` the
entity environment for every other entity. The resource scope is checked inside ``match``; the
principal and action scopes are answered by the evaluator's index.

Leading conjuncts of the conditions that read only the principal and the action (``principal.role
== "admin"``) also become a separate *guard* ``guard(P, A, PA, PANC, E)``. Guards are evaluated once
per (principal, action) pair, so a policy that can never apply to a principal drops out of that
principal's candidate list and a policy that passes its guard runs only the rest of its conditions.

No user text is ever pasted into source: a policy's values (strings, longs, entities, sets...)
are named constants ``K0``, ``K1``... in order of first use; attribute names, entity type names
and booleans are ``repr`` literals. So the policies of one template (a grant per team, per
folder) generate the same source, their *shape*: it is compiled once, into a maker whose
parameters are the constants, and each policy is the maker's closures over its own values. A
large estate's thousands of policies then run a few code objects, which stay in the CPU's caches
and in the interpreter's specialised form, instead of one cold code object per policy (measured:
docs/benchmarks.md, "Policies of one shape share their code").

A construct this compiler does not handle raises :class:`Unsupported`; the caller then evaluates
that one policy with cedarpy (a *fallback*).
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.policy import runtime
from vigil.policy.extensions import BINARY_OPS, UNARY_OPS
from vigil.policy.values import EntityUid, EvalError, Record, make_set

MatchFn = Callable[..., bool]
GuardFn = Callable[[Any, Any, Any, Any, Any], bool]


class Unsupported(Exception):
    """A construct the compiler does not handle; the policy falls back to cedarpy."""


@dataclass(frozen=True, slots=True)
class Scope:
    """A principal/resource scope: ``any``, ``eq``, ``in``, ``is`` or ``is_in``."""

    kind: str
    entity_type: str | None = None
    entity: EntityUid | None = None


@dataclass(slots=True)
class CompiledPolicy:
    """One policy, ready for the evaluator."""

    id: str
    cedar_id: str
    forbid: bool
    principal: Scope
    actions: tuple[EntityUid, ...] | None  # None: any action
    action_in: bool  # True: `action in [...]` (ancestors count), False: `action == ...`
    resource: Scope
    match: MatchFn
    guard: GuardFn | None = None
    residual: MatchFn | None = None
    # Resource-only leading conditions, decided per resource at load, and the variants without them.
    resource_guard: Callable[[Any, Any, Any, Any], bool] | None = None
    match_r: MatchFn | None = None
    residual_r: MatchFn | None = None
    source: str = ""  # the shape's code: the policy's values are its constants K0, K1...
    constants: tuple[Any, ...] = ()  # the values of K0, K1... (two policies of one shape differ here)
    # A guard reads entities other than the request's own (through E): its cached results depend
    # on them too, so an entity change forgets every cached result.
    guards_read_entities: bool = False
    # Equal keys: the same resource guard (same code, same constants) in two policies, evaluated
    # once per entity for both (None: not known to be shared).
    resource_guard_key: Any = None
    fallback_reason: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


_PRINCIPAL_ONLY = frozenset({"principal", "action"})
_CMP_OPS = {"less": "<", "less_eq": "<=", "greater": ">", "greater_eq": ">="}
_EXT_BINARY = {
    "is_in_range",
    "offset",
    "duration_since",
    "decimal_less_than",
    "decimal_less_eq",
    "decimal_greater",
    "decimal_greater_eq",
}


def _etype(node: Any) -> str:
    return str(node)


def _uid(node: Any) -> EntityUid:
    return (str(node.type), node.id)


class _Gen:
    """Source generator for one policy."""

    def __init__(self, slots: Mapping[str, EntityUid]) -> None:
        self.consts: dict[str, Any] = {}
        self._const_ids: dict[tuple[type, Any], str] = {}
        self.tmp = 0
        self.slots = slots

    def const(self, value: Any) -> str:
        key = (type(value), value) if _hashable(value) else (type(value), id(value))
        name = self._const_ids.get(key)
        if name is None:
            name = f"K{len(self.consts)}"
            self.consts[name] = value
            self._const_ids[key] = name
        return name

    def temp(self) -> str:
        self.tmp += 1
        return f"t{self.tmp}"

    # -- constants -------------------------------------------------------------------------
    def literal(self, node: Any) -> tuple[bool, Any]:
        """(True, value) when ``node`` is a constant expression this compiler can fold."""
        kind = type(node).__name__
        if kind == "BoolLit" or kind == "LongLit" or kind == "StringLit":
            return True, node.value
        if kind == "EntityLit":
            return True, _uid(node.value)
        if kind == "Slot":
            return True, self._slot(node)
        if kind == "Set":
            vals = []
            for el in node.elements:
                ok, v = self.literal(el)
                if not ok:
                    return False, None
                vals.append(v)
            return True, make_set(vals)
        if kind == "Record":
            rec = Record()
            for k, el in node.fields.items():
                ok, v = self.literal(el)
                if not ok:
                    return False, None
                rec[k] = v
            return True, rec
        if kind == "UnaryOp" and node.op in ("decimal", "ip", "datetime", "duration"):
            ok, arg = self.literal(node.arg)
            if ok and type(arg) is str:
                try:
                    return True, UNARY_OPS[node.op](arg)
                except EvalError:
                    return False, None
        return False, None

    def _slot(self, node: Any) -> EntityUid:
        try:
            return self.slots[node.name]
        except KeyError:
            raise Unsupported(f"unlinked template slot ?{node.name}") from None

    def value_code(self, value: Any) -> str:
        if type(value) is bool:
            return repr(value)
        return self.const(value)

    # -- expressions ------------------------------------------------------------------------
    def expr(self, node: Any) -> str:
        ok, value = self.literal(node)
        if ok:
            return self.value_code(value)
        kind = type(node).__name__
        method = getattr(self, "_" + kind, None)
        if method is None:
            raise Unsupported(f"expression node {kind}")
        code: str = method(node)
        return code

    def _Var(self, node: Any) -> str:
        return {"principal": "P", "action": "A", "resource": "R", "context": "C"}[node.name]

    def _GetAttr(self, node: Any) -> str:
        base = node.base
        attr = repr(node.attr)
        if type(base).__name__ == "Var":
            if base.name == "principal":
                return f"PA[{attr}]"
            if base.name == "resource":
                return f"RA[{attr}]"
            if base.name == "context":
                return f"C[{attr}]"
        return f"_rt.get_attr({self.expr(base)}, {attr}, E)"

    def _HasAttr(self, node: Any) -> str:
        base = node.base
        first = repr(node.attrs[0])
        if type(base).__name__ == "Var" and base.name in ("principal", "resource", "context"):
            holder = {"principal": "PA", "resource": "RA", "context": "C"}[base.name]
            head = f"({first} in {holder})"
        else:
            head = f"_rt.has_attr({self.expr(base)}, {first}, E)"
        if len(node.attrs) == 1:
            return head
        # `e has a.b` is `e has a && e.a has b`.
        rest = f"_rt.has_attr(_rt.get_attr({self.expr(base)}, {first}, E), {node.attrs[1]!r}, E)"
        for a in node.attrs[2:]:
            raise Unsupported(f"`has` path longer than two ({a})")
        return f"({head} and {rest})"

    def _Like(self, node: Any) -> str:
        parts = []
        for el in node.pattern:
            if type(el).__name__ == "Wildcard":
                parts.append(".*")
            else:
                parts.append(re.escape(el.value))
        pattern = re.compile("".join(parts), re.DOTALL)
        return f"_rt.like({self.expr(node.base)}, {self.const(pattern)})"

    def _Is(self, node: Any) -> str:
        base = self.expr(node.base)
        etype = repr(_etype(node.entity_type))
        if node.in_expr is None:
            if base in ("P", "A", "R"):  # the request's own entities: always entity uids
                return f"({base}[0] == {etype})"
            return f"_rt.is_type({base}, {etype})"
        t = self.temp()
        return f"(_rt.is_type(({t} := {base}), {etype}) and {self._in_code(t, node.in_expr)})"

    def _IfThenElse(self, node: Any) -> str:
        return (
            f"({self.expr(node.then_expr)} if _rt.as_bool({self.expr(node.cond)}) "
            f"else {self.expr(node.else_expr)})"
        )

    def _Set(self, node: Any) -> str:
        inner = ", ".join(self.expr(e) for e in node.elements)
        return f"_rt.make_set({inner})"

    def _Record(self, node: Any) -> str:
        inner = ", ".join(f"{k!r}: {self.expr(v)}" for k, v in node.fields.items())
        return f"_rt.make_record({{{inner}}})"

    def _UnaryOp(self, node: Any) -> str:
        arg = self.expr(node.arg)
        op = node.op
        if op == "not" and _yields_bool(node.arg):
            return f"(not {arg})"
        if op == "not":
            t = self.temp()
            return f"(False if ({t} := {arg}) is True else (True if {t} is False else _rt.not_({t})))"
        if op == "neg":
            return f"_rt.neg({arg})"
        if op == "is_empty":
            return f"_rt.is_empty({arg})"
        if op in UNARY_OPS:
            return f"{self.const(UNARY_OPS[op])}({arg})"
        raise Unsupported(f"unary operator {op}")

    def _BinaryOp(self, node: Any) -> str:
        op = node.op
        if op in ("and", "or") and _yields_bool(node.left) and _yields_bool(node.right):
            # Both sides are Bools (or raise): Python's short-circuit `and`/`or` is Cedar's.
            return f"({self.expr(node.left)} {op} {self.expr(node.right)})"
        if op == "and":
            t = self.temp()
            return (
                f"(_rt.as_bool({self.expr(node.right)}) if ({t} := {self.expr(node.left)}) is True "
                f"else _rt.and_false({t}))"
            )
        if op == "or":
            t = self.temp()
            return (
                f"(True if ({t} := {self.expr(node.left)}) is True else "
                f"(_rt.as_bool({self.expr(node.right)}) if {t} is False else _rt.cond_error({t})))"
            )
        if op == "eq":
            return self._eq(node.left, node.right)
        if op == "not_eq":
            return f"(not {self._eq(node.left, node.right)})"
        if op in _CMP_OPS:
            return self._cmp(op, node.left, node.right)
        if op == "add":
            return f"_rt.add({self.expr(node.left)}, {self.expr(node.right)})"
        if op == "sub":
            return f"_rt.sub({self.expr(node.left)}, {self.expr(node.right)})"
        if op == "mul":
            return f"_rt.mul({self.expr(node.left)}, {self.expr(node.right)})"
        if op == "in":
            return self._in_code(self.expr(node.left), node.right)
        if op == "contains":
            return f"_rt.contains({self.expr(node.left)}, {self.expr(node.right)})"
        if op == "contains_all":
            return f"_rt.contains_all({self.expr(node.left)}, {self.expr(node.right)})"
        if op == "contains_any":
            return f"_rt.contains_any({self.expr(node.left)}, {self.expr(node.right)})"
        if op == "get_tag":
            return f"_rt.get_tag({self.expr(node.left)}, {self.expr(node.right)}, E)"
        if op == "has_tag":
            return f"_rt.has_tag({self.expr(node.left)}, {self.expr(node.right)}, E)"
        if op in _EXT_BINARY:
            return f"{self.const(BINARY_OPS[op])}({self.expr(node.left)}, {self.expr(node.right)})"
        raise Unsupported(f"binary operator {op}")

    def _eq(self, left: Any, right: Any) -> str:
        lok, lval = self.literal(left)
        rok, rval = self.literal(right)
        if rok and not lok:
            return self._eq_literal(self.expr(left), rval)
        if lok and not rok:
            return self._eq_literal(self.expr(right), lval)
        # Same type and not a record: Python's == is Cedar's (records hold bools and longs that
        # Python would confuse, so they go through the generic comparison).
        a, b, t = self.temp(), self.temp(), self.temp()
        return (
            f"(({a} == {b}) if ({t} := type({a} := {self.expr(left)})) is type({b} := {self.expr(right)}) "
            f"and {t} is not _Record else _rt.eq({a}, {b}))"
        )

    def _eq_literal(self, code: str, value: Any) -> str:
        t = type(value)
        if t is str or t is tuple:
            # Only a string equals a string and only an entity (a tuple) equals an entity.
            return f"({code} == {self.value_code(value)})"
        if t is bool:
            return f"({code} is {value!r})"
        if t is int:
            tmp = self.temp()
            return f"(type({tmp} := {code}) is int and {tmp} == {self.const(value)})"
        return f"_rt.eq({code}, {self.value_code(value)})"

    def _cmp(self, op: str, left: Any, right: Any) -> str:
        pyop = _CMP_OPS[op]
        lcode = self.expr(left)
        rok, rval = self.literal(right)
        a = self.temp()
        if rok and type(rval) is int:
            k = self.const(rval)
            return f"(({a} {pyop} {k}) if type({a} := {lcode}) is int else _rt.compare({op!r}, {a}, {k}))"
        b = self.temp()
        rcode = self.expr(right)
        return (
            f"(({a} {pyop} {b}) if (type({a} := {lcode}) is int) & (type({b} := {rcode}) is int) "
            f"else _rt.compare({op!r}, {a}, {b}))"
        )

    def _in_code(self, left_code: str, right: Any) -> str:
        ok, target = self.literal(right)
        if ok and type(target) is tuple:
            k = self.value_code(target)
            if left_code == "P":
                return f"(P == {k} or {k} in PANC)"
            if left_code == "R":
                return f"(R == {k} or {k} in RANC)"
            return f"_rt.in_entity({left_code}, {k}, E)"
        return f"_rt.in_({left_code}, {self.expr(right)}, E)"


_CONST_NAME = re.compile(r"K\d+")


def _guard_key(lines: list[str], consts: Mapping[str, Any]) -> Any:
    """A key equal for two guards exactly when their code and constants are equal: the code's
    tokens with the constants' names (``K<n>``, Python name tokens only, never text inside a
    string literal) renamed in order of use, since numbering differs between policies, and the
    constants' typed values. None when a constant has no such key or the code does not tokenize
    (then the guard is never shared)."""
    names: dict[str, str] = {}
    values: list[Any] = []
    out: list[tuple[int, str]] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
            text = tok.string
            if tok.type == tokenize.NAME and _CONST_NAME.fullmatch(text) is not None:
                if text not in consts:
                    return None
                new = names.get(text)
                if new is None:
                    new = names[text] = f"K{len(names)}"
                    values.append(_const_key(consts[text]))
                text = new
            out.append((tok.type, text))
    except (tokenize.TokenError, SyntaxError):
        return None
    if any(v is None for v in values):
        return None
    return (tuple(out), tuple(values))


def _const_key(value: Any) -> Any:
    """The value with its type at every level (1, True and 1.0 are equal in Python, not in
    Cedar); None when it cannot be keyed."""
    t = type(value)
    if t is tuple or t is frozenset:
        inner = [_const_key(v) for v in value]
        if any(k is None for k in inner):
            return None
        return (t, tuple(inner) if t is tuple else frozenset(inner))
    if not _hashable(value):
        return None
    return (t, value)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _reads(node: Any, acc: set[str]) -> set[str]:
    """The request variables (principal/action/resource/context) an expression reads."""
    kind = type(node).__name__
    if kind == "Var":
        acc.add(node.name)
        return acc
    if kind in ("BoolLit", "LongLit", "StringLit", "EntityLit", "Slot", "Char", "Wildcard"):
        return acc
    for child in _children(node):
        _reads(child, acc)
    return acc


def _children(node: Any) -> Sequence[Any]:
    kind = type(node).__name__
    if kind == "UnaryOp":
        return (node.arg,)
    if kind == "BinaryOp":
        return (node.left, node.right)
    if kind in ("GetAttr", "HasAttr", "Like"):
        return (node.base,)
    if kind == "Is":
        return (node.base,) if node.in_expr is None else (node.base, node.in_expr)
    if kind == "IfThenElse":
        return (node.cond, node.then_expr, node.else_expr)
    if kind == "Set":
        return tuple(node.elements)
    if kind == "Record":
        return tuple(node.fields.values())
    return ()


def _conjuncts(clauses: Sequence[Any]) -> list[tuple[bool, Any]]:
    """Flatten clauses into (negate, expr) steps evaluated in order with short-circuit.

    ``when { a && b }`` -> (False, a), (False, b); ``unless { a || b }`` -> (True, a), (True, b).
    """
    steps: list[tuple[bool, Any]] = []
    for clause in clauses:
        negate = type(clause).__name__ == "Unless"
        split_op = "or" if negate else "and"
        stack = [clause.expr]
        flat: list[Any] = []
        while stack:
            e = stack.pop()
            if type(e).__name__ == "BinaryOp" and e.op == split_op:
                stack.append(e.right)
                stack.append(e.left)
            else:
                flat.append(e)
        steps.extend((negate, e) for e in flat)
    return steps


def _guard_steps(steps: list[tuple[bool, Any]]) -> tuple[set[int], set[int]]:
    """Indexes of the steps that can be lifted out of the per-request evaluation: those reading only
    the principal and the action (decided once per (principal, action) pair) and those reading
    only the resource (decided once per resource, at load).

    A step is lifted into a guard only when every earlier step is in the same guard or can never
    raise an error. Then, whatever the request, a lifted step that is false makes the policy false
    (never an error), and one that is true can be left out of the rest without changing the result.
    """
    principal_steps: set[int] = set()
    resource_steps: set[int] = set()
    lifted_p_unsafe = lifted_r_unsafe = False  # a non-error-free step was lifted into that guard
    others_unsafe = False  # a non-lifted step may raise an error
    for i, (_negate, e) in enumerate(steps):
        reads = _reads(e, set())
        safe = _never_errors(e)
        if reads <= _PRINCIPAL_ONLY and not others_unsafe and not lifted_r_unsafe:
            principal_steps.add(i)
            lifted_p_unsafe = lifted_p_unsafe or not safe
        elif reads <= _RESOURCE_ONLY and not others_unsafe and not lifted_p_unsafe:
            resource_steps.add(i)
            lifted_r_unsafe = lifted_r_unsafe or not safe
        elif not safe:
            others_unsafe = True
    return principal_steps, resource_steps


_RESOURCE_ONLY = frozenset({"resource"})
_ENTITY_VARS = frozenset({"principal", "action", "resource"})


def _never_errors(node: Any) -> bool:
    """True when ``node`` surely evaluates to a Bool without error (a conservative check)."""
    kind = type(node).__name__
    if kind == "BoolLit":
        return True
    if kind == "Is":
        base_ok = type(node.base).__name__ == "Var" and node.base.name in _ENTITY_VARS
        return base_ok and (node.in_expr is None or type(node.in_expr).__name__ == "EntityLit")
    if kind == "HasAttr":
        return type(node.base).__name__ == "Var" and len(node.attrs) == 1
    if kind == "UnaryOp":
        return node.op == "not" and _never_errors(node.arg)
    if kind == "BinaryOp":
        if node.op in ("and", "or"):
            return _never_errors(node.left) and _never_errors(node.right)
        if node.op == "in":
            left, right = type(node.left).__name__, type(node.right).__name__
            return left == "Var" and node.left.name in _ENTITY_VARS and right == "EntityLit"
        if node.op in ("eq", "not_eq"):
            return _plain_value(node.left) and _plain_value(node.right)
    return False


def _plain_value(node: Any) -> bool:
    """A variable or a literal: evaluating it cannot fail."""
    return type(node).__name__ in ("Var", "BoolLit", "LongLit", "StringLit", "EntityLit")


def _scope(node: Any, slots: Mapping[str, EntityUid]) -> Scope:
    kind = type(node).__name__

    def ent(x: Any) -> EntityUid:
        if type(x).__name__ == "Slot":
            try:
                return slots[x.name]
            except KeyError:
                raise Unsupported(f"unlinked template slot ?{x.name}") from None
        return _uid(x)

    if kind == "ScopeAny":
        return Scope("any")
    if kind == "ScopeEq":
        return Scope("eq", entity=ent(node.entity))
    if kind == "ScopeIn":
        return Scope("in", entity=ent(node.entity))
    if kind == "ScopeIs":
        return Scope("is", entity_type=_etype(node.entity_type))
    if kind == "ScopeIsIn":
        return Scope("is_in", entity_type=_etype(node.entity_type), entity=ent(node.entity))
    raise Unsupported(f"scope {kind}")


def _scope_lines(var: str, anc: str, scope: Scope, gen: _Gen) -> list[str]:
    if scope.kind == "any":
        return []
    conds = []
    if scope.entity_type is not None:
        conds.append(f"{var}[0] == {scope.entity_type!r}")
    if scope.entity is not None:
        k = gen.value_code(scope.entity)
        conds.append(f"{var} == {k}" if scope.kind == "eq" else f"({var} == {k} or {k} in {anc})")
    return [f"    if not ({' and '.join(conds)}):", "        return False"]


_BOOL_BINARY = frozenset(
    {
        "eq",
        "not_eq",
        "less",
        "less_eq",
        "greater",
        "greater_eq",
        "in",
        "contains",
        "contains_all",
        "contains_any",
        "has_tag",
        "is_in_range",
        "decimal_less_than",
        "decimal_less_eq",
        "decimal_greater",
        "decimal_greater_eq",
    }
)
_BOOL_UNARY = frozenset({"is_empty", "is_ipv4", "is_ipv6", "is_loopback", "is_multicast"})


def _yields_bool(node: Any) -> bool:
    """True when ``node`` evaluates to a Bool whenever it does not raise (so no check is needed)."""
    kind = type(node).__name__
    if kind in ("BoolLit", "HasAttr", "Like", "Is"):
        return True
    if kind == "BinaryOp":
        if node.op in ("and", "or"):
            return True  # the generated code checks the operands
        return node.op in _BOOL_BINARY
    if kind == "UnaryOp":
        return node.op == "not" or node.op in _BOOL_UNARY
    return False


def _step_lines(gen: _Gen, negate: bool, expr: Any) -> list[str]:
    code = gen.expr(expr)
    if _yields_bool(expr):
        return (
            [f"    if {code}:", "        return False"]
            if negate
            else [f"    if not {code}:", "        return False"]
        )
    if negate:
        return [
            f"    t0 = {code}",
            "    if t0 is not False:",
            "        if t0 is True:",
            "            return False",
            "        _rt.cond_error(t0)",
        ]
    return [
        f"    t0 = {code}",
        "    if t0 is not True:",
        "        if t0 is False:",
        "            return False",
        "        _rt.cond_error(t0)",
    ]


_MATCH_ARGS = "P, A, R, C, PA, RA, PANC, RANC, E"
_GUARD_ARGS = "P, A, PA, PANC, E"
_RGUARD_ARGS = "R, RA, RANC, E"


def compile_policy(
    template: Any, *, policy_id: str, slots: Mapping[str, EntityUid] | None = None
) -> CompiledPolicy:
    """Compile one pst Template (a static policy, or a template with its link's ``slots``).

    Raises :class:`Unsupported` for a construct the compiler does not handle.
    """
    slots = dict(slots or {})
    gen = _Gen(slots)
    principal = _scope(template.principal, slots)
    resource = _scope(template.resource, slots)
    akind = type(template.action).__name__
    if akind == "ScopeAny":
        actions: tuple[EntityUid, ...] | None = None
        action_in = False
    elif akind == "ActionEq":
        actions, action_in = (_uid(template.action.entity),), False
    elif akind == "ActionIn":
        actions, action_in = tuple(_uid(e) for e in template.action.entities), True
    else:
        raise Unsupported(f"action scope {akind}")

    steps = _conjuncts(template.clauses)
    p_steps, r_steps = _guard_steps(steps)

    resource_lines = _scope_lines("R", "RANC", resource, gen)
    body: list[str] = []
    for negate, e in steps:
        body.append("\n".join(_step_lines(gen, negate, e)))

    def without(skip: set[int]) -> list[str]:
        return resource_lines + [b for i, b in enumerate(body) if i not in skip]

    parts = {"match": _function("match", _MATCH_ARGS, without(set()))}
    if p_steps:
        parts["guard"] = _function("guard", _GUARD_ARGS, [body[i] for i in sorted(p_steps)])
        parts["residual"] = _function("residual", _MATCH_ARGS, without(p_steps))
    if r_steps:
        parts["resource_guard"] = _function(
            "resource_guard", _RGUARD_ARGS, [body[i] for i in sorted(r_steps)]
        )
        parts["match_r"] = _function("match_r", _MATCH_ARGS, without(r_steps))
    if p_steps and r_steps:
        parts["residual_r"] = _function("residual_r", _MATCH_ARGS, without(p_steps | r_steps))
    source = "\n\n".join(parts.values())
    namespace = _shape(source, tuple(parts), len(gen.consts))(*gen.consts.values())
    return CompiledPolicy(
        id=policy_id,
        cedar_id=template.id,
        forbid=template.effect == "forbid",
        principal=principal,
        actions=actions,
        action_in=action_in,
        resource=resource,
        match=namespace["match"],
        guard=namespace.get("guard"),
        residual=namespace.get("residual"),
        resource_guard=namespace.get("resource_guard"),
        match_r=namespace.get("match_r"),
        residual_r=namespace.get("residual_r"),
        source=source,
        constants=tuple(gen.consts.values()),
        guards_read_entities=any("E)" in body[i] for i in p_steps | r_steps),
        resource_guard_key=_guard_key([body[i] for i in sorted(r_steps)], gen.consts) if r_steps else None,
        annotations=dict(template.annotations),
    )


def _function(name: str, args: str, lines: list[str]) -> str:
    return "\n".join([f"def {name}({args}):", *lines, "    return True"])


SHAPE_LIMIT = 4096  # distinct policy shapes kept compiled (a workspace past it recompiles some)
_shapes: dict[tuple[str, tuple[str, ...], int], Callable[..., dict[str, Any]]] = {}


def _shape(source: str, defined: tuple[str, ...], n_consts: int) -> Callable[..., dict[str, Any]]:
    """The maker of ``source``'s functions (named ``defined``): called with the values of
    ``K0``..``K<n-1>``, it returns the functions by name, as closures over them. Compiled once per
    distinct source and kept (bounded: past ``SHAPE_LIMIT`` the table starts again). Raises
    :class:`Unsupported` when the generated code does not compile."""
    key = (source, defined, n_consts)
    known = _shapes.get(key)
    if known is not None:
        return known
    params = ", ".join(f"K{i}" for i in range(n_consts))
    body = "\n".join("    " + line if line else line for line in source.split("\n"))
    returns = ", ".join(f"{name!r}: {name}" for name in defined)
    text = f"def _make({params}):\n{body}\n    return {{{returns}}}"
    namespace: dict[str, Any] = {"_rt": runtime, "_Record": Record}
    try:
        code = compile(text, f"<policy shape {len(_shapes)}>", "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError) as e:
        raise Unsupported(f"generated code does not compile: {type(e).__name__}") from None
    exec(code, namespace)
    maker: Callable[..., dict[str, Any]] = namespace["_make"]
    if len(_shapes) >= SHAPE_LIMIT:
        _shapes.clear()
    _shapes[key] = maker
    return maker
