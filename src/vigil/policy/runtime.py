"""Operations the compiled policies call at decision time, with Cedar's exact type rules.

Each function either returns a Cedar value or raises :class:`EvalError`; none raises anything else
on any Cedar value. The compiler inlines the common cases (a ``Long`` compared with a literal, an
attribute of ``principal``) and calls these for the rest.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn, Protocol

from vigil.policy import extensions
from vigil.policy.values import (
    FALSE_KEY,
    LONG_MAX,
    LONG_MIN,
    TRUE_KEY,
    EntityUid,
    EvalError,
    Record,
    cedar_eq,
    set_key,
    type_name,
)


class EntityEnv(Protocol):
    """What an expression may ask about entities other than the request's own."""

    def attrs(self, uid: Any) -> Record: ...
    def ancestors(self, uid: Any) -> frozenset[EntityUid]: ...
    def tags(self, uid: Any) -> Record | None: ...
    def exists(self, uid: Any) -> bool: ...


def type_error(expected: str, value: Any) -> NoReturn:
    raise EvalError("type", f"type error: expected {expected}, got {type_name(value)}")


def as_bool(value: Any) -> bool:
    """``value`` when it is a Bool; raises EvalError otherwise."""
    if value is True or value is False:
        return value
    type_error("bool", value)


def and_false(left: Any) -> bool:
    """The result of ``left && ...`` when ``left`` is not ``true``: false, or a type error."""
    if left is False:
        return False
    type_error("bool", left)


def not_(value: Any) -> bool:
    """Cedar ``!``: raises EvalError unless ``value`` is a Bool."""
    if value is True:
        return False
    if value is False:
        return True
    type_error("bool", value)


def cond_error(value: Any) -> NoReturn:
    """A ``when``/``unless`` clause produced a non-Bool."""
    type_error("bool", value)


eq = cedar_eq


def neq(a: Any, b: Any) -> bool:
    return not cedar_eq(a, b)


def _long(value: Any) -> int:
    if type(value) is int:
        return value
    type_error("long", value)


def _checked(value: int, what: str) -> int:
    if LONG_MIN <= value <= LONG_MAX:
        return value
    raise EvalError("overflow", f"integer overflow while attempting to {what}")


def add(a: Any, b: Any) -> int:
    return _checked(_long(a) + _long(b), f"add `{a}` with `{b}`")


def sub(a: Any, b: Any) -> int:
    return _checked(_long(a) - _long(b), f"subtract `{b}` from `{a}`")


def mul(a: Any, b: Any) -> int:
    return _checked(_long(a) * _long(b), f"multiply `{a}` by `{b}`")


def neg(a: Any) -> int:
    return _checked(-_long(a), f"negate `{a}`")


def compare(op: str, a: Any, b: Any) -> bool:
    """Cedar ``<``/``<=``/``>``/``>=`` for operands that are not both Long."""
    if type(a) is int and type(b) is int:
        if op == "less":
            return bool(a < b)
        if op == "less_eq":
            return bool(a <= b)
        if op == "greater":
            return bool(a > b)
        return bool(a >= b)
    return extensions.compare(op, a, b)


def get_attr(value: Any, attr: str, env: EntityEnv) -> Any:
    """``value.attr`` on a record or an entity; raises EvalError when absent or not applicable."""
    t = type(value)
    if t is Record:
        try:
            return value[attr]
        except KeyError:
            raise EvalError("attribute", f"record does not have the attribute `{attr}`") from None
    if t is tuple:
        attrs = env.attrs(value)
        try:
            return attrs[attr]
        except KeyError:
            raise EvalError(
                "attribute", f'`{value[0]}::"{value[1]}"` does not have the attribute `{attr}`'
            ) from None
    type_error("entity or record", value)


def has_attr(value: Any, attr: str, env: EntityEnv) -> bool:
    """``value has attr``: false for a missing entity; raises EvalError on a non-record/entity."""
    t = type(value)
    if t is Record:
        return attr in value
    if t is tuple:
        if not env.exists(value):
            return False
        return attr in env.attrs(value)
    type_error("entity or record", value)


def in_(value: Any, target: Any, env: EntityEnv) -> bool:
    """Cedar ``in``: entity membership in an entity or in any of a set of entities."""
    if type(value) is not tuple:
        type_error("entity", value)
    t = type(target)
    if t is tuple:
        return bool(value == target or target in env.ancestors(value))
    if t is frozenset:
        for el in target:
            # Set keys: a record's is a tuple too (values.set_key), so check for a (str, str) uid.
            if type(el) is not tuple or type(el[0]) is not str:
                name = (
                    "record" if type(el) is tuple else "bool" if el is TRUE_KEY or el is FALSE_KEY else None
                )
                if name is None:
                    type_error("entity", el)
                raise EvalError("type", f"type error: expected entity, got {name}")
        if value in target:
            return True
        anc = env.ancestors(value)
        return not anc.isdisjoint(target)
    type_error("entity or set of entities", target)


def in_entity(value: Any, target: EntityUid, env: EntityEnv) -> bool:
    """``value in Target::"x"`` with a literal target."""
    if type(value) is not tuple:
        type_error("entity", value)
    return bool(value == target or target in env.ancestors(value))


def is_type(value: Any, etype: str) -> bool:
    """Cedar ``is``: raises EvalError when ``value`` is not an entity."""
    if type(value) is not tuple:
        type_error("entity", value)
    return bool(value[0] == etype)


def contains(s: Any, x: Any) -> bool:
    if type(s) is not frozenset:
        type_error("set", s)
    t = type(x)
    if t is bool:
        return (TRUE_KEY if x else FALSE_KEY) in s
    if t is Record:
        return set_key(x) in s
    return x in s


def contains_all(a: Any, b: Any) -> bool:
    if type(a) is not frozenset:
        type_error("set", a)
    if type(b) is not frozenset:
        type_error("set", b)
    return b.issubset(a)


def contains_any(a: Any, b: Any) -> bool:
    if type(a) is not frozenset:
        type_error("set", a)
    if type(b) is not frozenset:
        type_error("set", b)
    return not a.isdisjoint(b)


def is_empty(s: Any) -> bool:
    if type(s) is not frozenset:
        type_error("set", s)
    return len(s) == 0


def like(value: Any, pattern: re.Pattern[str]) -> bool:
    if type(value) is not str:
        type_error("string", value)
    return pattern.fullmatch(value) is not None


def get_tag(value: Any, key: Any, env: EntityEnv) -> Any:
    if type(value) is not tuple:
        type_error("entity", value)
    if type(key) is not str:
        type_error("string", key)
    tags = env.tags(value)
    if tags is None or key not in tags:
        raise EvalError("tag", f'`{value[0]}::"{value[1]}"` does not have the tag `{key}`')
    return tags[key]


def has_tag(value: Any, key: Any, env: EntityEnv) -> bool:
    if type(value) is not tuple:
        type_error("entity", value)
    if type(key) is not str:
        type_error("string", key)
    if not env.exists(value):
        return False
    tags = env.tags(value)
    return tags is not None and key in tags


def make_record(fields: dict[str, Any]) -> Record:
    return Record(fields)


def make_set(*elements: Any) -> frozenset[Any]:
    return frozenset(set_key(e) for e in elements)


def raise_error(error: EvalError) -> NoReturn:
    raise error


def missing_attr(attr: str) -> EvalError:
    """The error for an attribute read that found nothing."""
    return EvalError("attribute", f"attribute `{attr}` does not exist")


UNARY = extensions.UNARY_OPS
BINARY = extensions.BINARY_OPS
