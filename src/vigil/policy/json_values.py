"""Cedar's JSON value format -> Cedar values (see :mod:`vigil.policy.values`).

The one documented rule for JSON with no Cedar equivalent: ``null`` and non-integer numbers are
*rejected* (:class:`~vigil.errors.ValueConversionError`, code ``invalid_value``), never dropped or
guessed, so a policy can never be evaluated on a value the caller did not mean. Integers outside
the signed 64-bit range, malformed ``__extn``/``__entity`` escapes, strings longer than
:data:`MAX_STRING`, nesting deeper than :data:`MAX_DEPTH` and more than :data:`MAX_NODES` values are
rejected the same way.
"""

from __future__ import annotations

import re
from typing import Any, Final

from vigil.errors import ValueConversionError
from vigil.policy.extensions import DateTime, Decimal, Duration, IPAddr, from_json_extn_args, parse_ipaddr
from vigil.policy.values import FALSE_KEY, LONG_MAX, LONG_MIN, TRUE_KEY, EvalError, Record, make_set

MAX_DEPTH: Final = 32
MAX_STRING: Final = 65_536
MAX_NODES: Final = 100_000
_FAST_EXTN: Final = {
    "ip": parse_ipaddr,
    "decimal": Decimal.parse,
    "datetime": DateTime.parse,
    "duration": Duration.parse,
}


def _bad_text(s: str) -> bool:
    """True for text Cedar cannot hold: longer than MAX_STRING, or not encodable (lone surrogates)."""
    if len(s) > MAX_STRING:
        return True
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def to_cedar(value: Any, where: str = "value") -> Any:
    """The Cedar value of a JSON value; raises ValueConversionError naming ``where`` on failure."""
    return _convert(value, where, 0, [MAX_NODES])


# Attribute names already checked by record_to_cedar (valid text): most requests reuse a handful,
# and a set lookup costs a fraction of re-checking them. Bounded; short names only.
_KEYS_SEEN: set[str] = set()
_KEYS_SEEN_MAX: Final = 4_096


def record_to_cedar(value: Any, where: str = "context") -> Record:
    """A JSON object as a Cedar record; raises ValueConversionError when it is not an object."""
    if type(value) is not dict:
        raise ValueConversionError(f"{where}: expected an object, got {_json_type(value)}")
    if len(value) == 1 and (
        "__expr" in value
        or ("__extn" in value and _is_escape(value["__extn"]))
        or ("__entity" in value and _is_entity_escape(value["__entity"]))
    ):
        raise ValueConversionError(f"{where}: expected a record, got an escape")
    out = dict(value)  # a Record (``Record`` is ``dict``; named so, the compiled copy is direct)
    budget: list[int] | None = None
    known = _KEYS_SEEN
    # Scalars are already Cedar values; only check them, and convert the rest in place.
    for k, v in value.items():
        if type(k) is not str:
            raise ValueConversionError(f"{where}: attribute names must be valid Unicode strings")
        if k not in known:  # a name seen before passed the text check then
            if not k.isascii() and _bad_text(k):
                raise ValueConversionError(f"{where}: attribute names must be valid Unicode strings")
            if len(known) < _KEYS_SEEN_MAX and len(k) <= 64:
                known.add(k)
        t = type(v)
        if t is str:
            if (len(v) > 256 or not v.isascii()) and _bad_text(v):
                raise ValueConversionError(f"{where}.{k}: string too long or not valid Unicode text")
        elif t is int:
            if not LONG_MIN <= v <= LONG_MAX:
                raise ValueConversionError(f"{where}.{k}: integer {v} is outside the 64-bit range")
        elif t is not bool:
            if t is dict and len(v) == 1 and "__extn" in v:
                escape = v["__extn"]
                if type(escape) is dict and len(escape) == 2:
                    spec = escape
                    fn = spec.get("fn")
                    arg = spec.get("arg")
                    if type(arg) is str and type(fn) is str and fn in _FAST_EXTN:
                        try:
                            # ip() by name: a direct call when compiled; the others keep a cache
                            out[k] = parse_ipaddr(arg) if fn == "ip" else _FAST_EXTN[fn](arg)
                        except EvalError as e:
                            raise ValueConversionError(f"{where}.{k}: {e}") from None
                        continue
            if budget is None:
                budget = [MAX_NODES]
            out[k] = _convert(v, f"{where}.{k}", 1, budget)
    return out


def _convert(value: Any, where: str, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueConversionError(f"{where}: more than {MAX_NODES} values")
    t = type(value)
    if t is str:
        if _bad_text(value):
            raise ValueConversionError(f"{where}: string too long or not valid Unicode text")
        return value
    if t is bool:
        return value
    if t is int:
        if LONG_MIN <= value <= LONG_MAX:
            return value
        raise ValueConversionError(f"{where}: integer {value} is outside the 64-bit range")
    if depth >= MAX_DEPTH:
        raise ValueConversionError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if t is list:
        return make_set(_convert(v, f"{where}[]", depth + 1, budget) for v in value)
    if t is dict:
        if "__extn" in value and len(value) == 1 and _is_escape(value["__extn"]):
            return _extension(value["__extn"], where)
        if len(value) == 1:
            if "__entity" in value and _is_entity_escape(value["__entity"]):
                return entity_uid(value["__entity"], where, check_name=True)
            if "__expr" in value:
                raise ValueConversionError(f'{where}: the "__expr" escape is no longer supported by Cedar')
        out = Record()
        for k, v in value.items():
            if type(k) is not str or (not k.isascii() and _bad_text(k)):
                raise ValueConversionError(f"{where}: attribute names must be valid Unicode strings")
            out[k] = _convert(v, f"{where}.{k}", depth + 1, budget)
        return out
    if value is None:
        raise ValueConversionError(f"{where}: null has no Cedar equivalent")
    if t is float:
        raise ValueConversionError(f"{where}: non-integer number {value!r} has no Cedar equivalent")
    raise ValueConversionError(f"{where}: unsupported JSON value of type {t.__name__}")


def _is_escape(spec: Any) -> bool:
    """Whether ``{"__extn": spec}`` is an extension escape (else Cedar reads it as a record)."""
    return (
        type(spec) is dict
        and type(spec.get("fn")) is str
        and ("arg" in spec or type(spec.get("args")) is list)
    )


def _is_entity_escape(spec: Any) -> bool:
    """Whether ``{"__entity": spec}`` is an entity escape (else Cedar reads it as a record)."""
    return type(spec) is dict and type(spec.get("type")) is str and type(spec.get("id")) is str


_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*(::[_a-zA-Z][_a-zA-Z0-9]*)*")
_RESERVED = frozenset(
    {
        "true",
        "false",
        "if",
        "then",
        "else",
        "in",
        "is",
        "like",
        "has",
        "principal",
        "action",
        "resource",
        "context",
        "permit",
        "forbid",
        "when",
        "unless",
        "__cedar",
    }
)


def valid_type_name(name: str) -> bool:
    """Whether ``name`` is a Cedar entity type name (``NS::User``; no reserved word)."""
    return _NAME.fullmatch(name) is not None and not any(p in _RESERVED for p in name.split("::"))


def _extension(spec: Any, where: str) -> Any:
    args = [spec["arg"]] if "arg" in spec else spec["args"]
    try:
        return from_json_extn_args(spec["fn"], args)
    except EvalError as e:
        raise ValueConversionError(f"{where}: {e}") from None


def entity_uid(spec: Any, where: str = "entity", *, check_name: bool = False) -> tuple[str, str]:
    """``{"type", "id"}`` as an entity uid; raises ValueConversionError when malformed (and, with
    ``check_name``, when the type is not a Cedar name such as ``NS::User``)."""
    if type(spec) is not dict:
        raise ValueConversionError(f'{where}: entity reference must be an object with "type" and "id"')
    etype = spec.get("type")
    eid = spec.get("id")
    if type(etype) is not str or type(eid) is not str or not etype:
        raise ValueConversionError(f'{where}: entity reference needs string "type" and "id"')
    if len(eid) > MAX_STRING or len(etype) > 1024:
        raise ValueConversionError(f"{where}: entity reference too long")
    if _bad_text(eid) or _bad_text(etype):
        raise ValueConversionError(f"{where}: entity reference is not valid Unicode text")
    if check_name and not valid_type_name(etype):
        raise ValueConversionError(f"{where}: {etype!r} is not a valid entity type name")
    return (etype, eid)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def to_json(value: Any) -> Any:
    """Cedar value (or set key) -> Cedar's JSON value format (``__entity``/``__extn`` escapes)."""
    t = type(value)
    if t is str or t is int or t is bool:
        return value
    if value is TRUE_KEY:
        return True
    if value is FALSE_KEY:
        return False
    if t is tuple:
        if len(value) == 2 and type(value[1]) is frozenset:  # a record's set key
            return {k: to_json(v) for k, v in value[1]}
        return {"__entity": {"type": value[0], "id": value[1]}}
    if t is frozenset:
        return [to_json(v) for v in value]
    if t is Record or isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if t is IPAddr and value.text is not None:
        return {"__extn": {"fn": "ip", "arg": value.text}}
    if t is Decimal or t is IPAddr or t is DateTime or t is Duration:
        return _extension_json(value)
    return str(value)


_CALL = re.compile(r'^(\w+)\("([^"\\]*)"\)$')


def _extension_json(value: Any) -> Any:
    """An extension value as a JSON escape that Cedar (and :func:`to_cedar`) reads back equal."""
    m = _CALL.match(str(value))  # the extension types print as Cedar source: ip("10.0.0.0/8")
    if m is not None:
        return {"__extn": {"fn": m.group(1), "arg": m.group(2)}}
    # datetimes outside years 0000-9999 print as an offset from the epoch
    epoch = {"__extn": {"fn": "datetime", "arg": "1970-01-01"}}
    return {
        "__extn": {"fn": "offset", "args": [epoch, {"__extn": {"fn": "duration", "arg": f"{value.ms}ms"}}]}
    }
