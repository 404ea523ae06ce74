"""IAM ``Condition`` blocks judged statically: always true, never true, or depending on the request.

A static analysis has no request, so each condition is classified once at load time
(:func:`judge`). Only what a request cannot change is decided: date comparisons on
``aws:CurrentTime``, ``aws:EpochTime`` and ``aws:TokenIssueTime`` (a session issued now), judged at
the analysis instant ``now`` (injected). Everything else (MFA, source IP, tags, ``...IfExists``,
set operators) makes the grant *conditional*, never absent: the path is reported with the condition
named in ``requires``. Semantics: the keys of one operator and the operators of one block are ANDed,
the values of one key are ORed (IAM JSON policy reference, "Condition" element).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vigil.errors import IamExportError


class Truth(enum.Enum):
    """What a condition (or a whole block) is, whatever the request: the three static answers."""

    ALWAYS = "always"
    NEVER = "never"
    DEPENDS = "depends"


@dataclass(frozen=True, slots=True)
class ConditionVerdict:
    """A block's static truth and, when it depends on the request, the conditions it depends on
    (``"aws:MultiFactorAuthPresent Bool true"``)."""

    truth: Truth
    depends_on: tuple[str, ...] = ()


ALWAYS = ConditionVerdict(Truth.ALWAYS)
NEVER = ConditionVerdict(Truth.NEVER)

_TIME_KEYS = {"aws:currenttime", "aws:tokenissuetime", "aws:epochtime"}
_DATE_OPS = {
    "dateequals": lambda a, b: a == b,
    "datenotequals": lambda a, b: a != b,
    "datelessthan": lambda a, b: a < b,
    "datelessthanequals": lambda a, b: a <= b,
    "dategreaterthan": lambda a, b: a > b,
    "dategreaterthanequals": lambda a, b: a >= b,
}


def _parse_date(value: Any, where: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise IamExportError(f"a date condition value at {where} is not a date")
    text = value.strip() if isinstance(value, str) else value
    try:
        if isinstance(text, int | float) or text.isdigit():
            return datetime.fromtimestamp(float(text), tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError) as e:
        raise IamExportError(f"a date condition value {value!r} at {where} is not a date") from e
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _values(raw: Any, where: str) -> list[Any]:
    if isinstance(raw, list):
        if not raw:
            raise IamExportError(f"an empty condition value list at {where}")
        return list(raw)
    if isinstance(raw, str | int | float | bool):
        return [raw]
    raise IamExportError(f"a condition value at {where} is not a string, number or list")


def judge(block: Any, now: datetime, where: str) -> ConditionVerdict:
    """The static truth of one statement's ``Condition`` block, judged at ``now``.

    Returns :data:`ALWAYS` for an absent or empty block. Raises :class:`IamExportError` when the
    block is not an object of objects, or a date value does not parse.
    """
    if block is None:
        return ALWAYS
    if not isinstance(block, dict):
        raise IamExportError(f"the Condition at {where} is not an object")
    depends: list[str] = []
    for op, keys in block.items():
        if not isinstance(op, str) or not isinstance(keys, dict):
            raise IamExportError(f"the condition operator {op!r} at {where} is not an object")
        op_l = op.lower()
        for key, raw in keys.items():
            if not isinstance(key, str):
                raise IamExportError(f"a condition key at {where} is not a string")
            values = _values(raw, f"{where}.{op}.{key}")
            compare = _DATE_OPS.get(op_l)
            if compare is not None and key.lower() in _TIME_KEYS:
                dates = [_parse_date(v, f"{where}.{op}.{key}") for v in values]
                # Values of one key are ORed, except the negated operator (all must differ).
                if op_l == "datenotequals":
                    ok = all(compare(now, d) for d in dates)
                else:
                    ok = any(compare(now, d) for d in dates)
                if not ok:
                    return NEVER
                continue
            shown = ", ".join(str(v) for v in values)
            depends.append(f"{key} {op} {shown}")
    if depends:
        return ConditionVerdict(Truth.DEPENDS, tuple(depends))
    return ALWAYS
