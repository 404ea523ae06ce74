"""Cedar values as plain Python objects, chosen for speed on the decision path.

| Cedar      | Python                                                        |
|------------|---------------------------------------------------------------|
| Bool       | ``bool``                                                      |
| Long       | ``int`` (checked to the signed 64-bit range by every producer) |
| String     | ``str``                                                       |
| Entity     | ``tuple[str, str]``: ``(type, id)``, type with its namespace   |
| Set        | ``frozenset`` of *set keys* (see :func:`set_key`)             |
| Record     | ``dict`` of attribute -> value (``Record`` is an alias)       |
| extension  | :class:`~vigil.policy.extensions.Decimal`, ``IPAddr``,        |
|            | ``DateTime``, ``Duration``                                    |

Python treats ``True == 1`` and ``hash(True) == hash(1)``; Cedar does not. Sets therefore hold
*keys*: a bool becomes one of two sentinel objects and a record its frozen items, so ``[1, true]``
has two elements and ``[1].contains(true)`` is false. Cedar offers no way to take an element out of
a set, so nothing ever needs to turn a key back into a value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias

from vigil.model.uid import EntityUid as EntityUid  # re-exported: the policy layer names it too

LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1


class EvalError(Exception):
    """An error raised while evaluating one policy (Cedar skips that policy and reports it)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _BoolKey:
    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "true" if self.value else "false"


TRUE_KEY: Final = _BoolKey(True)
FALSE_KEY: Final = _BoolKey(False)


if TYPE_CHECKING:
    Record: TypeAlias = dict[str, Any]
else:
    Record = dict
"""A Cedar record is a plain ``dict`` of attribute -> Cedar value: no other Cedar value is a dict,
and a plain dict is the cheapest thing to build per request. Sets hold a record by its set key."""


_RECORD_MARK: Final = object()


def set_key(value: Any) -> Any:
    """The key under which ``value`` is stored in (or looked up in) a Cedar set."""
    t = type(value)
    if t is bool:
        return TRUE_KEY if value else FALSE_KEY
    if t is Record:
        # A marked pair, so a record key never equals a set or an entity uid.
        return (_RECORD_MARK, frozenset((k, set_key(v)) for k, v in value.items()))
    return value


def make_set(values: Any) -> frozenset[Any]:
    """A Cedar set of the given values."""
    return frozenset(set_key(v) for v in values)


def cedar_eq(a: Any, b: Any) -> bool:
    """Cedar ``==``: values of different types are unequal (never an error)."""
    ta = type(a)
    if ta is not type(b):
        return False
    if ta is Record:
        return bool(set_key(a) == set_key(b))
    return bool(a == b)


def type_name(value: Any) -> str:
    """The Cedar type name of a value, for error messages."""
    t = type(value)
    if t is bool:
        return "bool"
    if t is int:
        return "long"
    if t is str:
        return "string"
    if t is tuple:
        return f"(entity of type `{value[0]}`)"
    if t is frozenset:
        return "set"
    if t is Record:
        return "record"
    return getattr(t, "cedar_type", t.__name__)


def check_long(value: int) -> int:
    """``value`` when it fits a Cedar Long; raises :class:`EvalError` (``overflow``) otherwise."""
    if LONG_MIN <= value <= LONG_MAX:
        return value
    raise EvalError("overflow", f"integer overflow: {value}")


def entity_display(uid: EntityUid) -> str:
    """``Type::"id"`` as Cedar prints an entity uid."""
    return f'{uid[0]}::"{uid[1]}"'
