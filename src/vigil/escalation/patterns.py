"""IAM wildcard patterns: ``*`` (any run of characters, none included) and ``?`` (one character).

Actions compare case-insensitively (``IAM:passrole`` is ``iam:PassRole``), resource ARNs and
principal ARNs case-sensitively, as AWS documents for the ``Action`` and ``Resource`` elements
(IAM JSON policy element reference: Action, Resource). Compiled matchers are cached per pattern, so
a pattern shared by many policies is compiled once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

Matcher = Callable[[str], bool]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def has_wildcard(pattern: str) -> bool:
    """True when ``pattern`` contains ``*`` or ``?`` (and so is not an exact name)."""
    return "*" in pattern or "?" in pattern


@lru_cache(maxsize=65536)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts: list[str] = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """True when ``value`` is matched by the IAM wildcard ``pattern`` (whole string)."""
    if not has_wildcard(pattern):
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _compiled(pattern, ignore_case).fullmatch(value) is not None


def action_matches(patterns: Iterable[str], action: str) -> bool:
    """True when any of ``patterns`` matches the action name ``action`` (case-insensitive)."""
    return any(matches(p, action, ignore_case=True) for p in patterns)


def has_variable(pattern: str) -> bool:
    """True when ``pattern`` contains a policy variable (``${aws:username}``)."""
    return "${" in pattern


def substitute(pattern: str, values: dict[str, str | None]) -> tuple[str, bool]:
    """``pattern`` with its policy variables replaced from ``values`` (keys lower-case).

    Returns the text and whether every variable was known. ``${*}``, ``${?}`` and ``${$}`` stand
    for the literal characters; ``${key, 'default'}`` uses the default when the key has no value.
    A key whose value is None has no value for this principal (``aws:username`` of a role): without
    a default the pattern can then match nothing (IAM: an element with a variable that has no
    value does not match). A key not in ``values`` depends on the request: it becomes ``*`` and
    the flag is False.
    """
    known = True

    def repl(m: re.Match[str]) -> str:
        nonlocal known
        inner = m.group(1)
        name, _, default = inner.partition(",")
        name = name.strip()
        default = default.strip()
        if default[:1] == default[-1:] and default[:1] in ("'", '"') and len(default) >= 2:
            default = default[1:-1]
        if name in ("*", "?", "$"):
            return name  # literal; an escaped '*' is rare enough to stay a wildcard here
        key = name.lower()
        if key not in values:
            if default:
                return default
            known = False
            return "*"
        value = values[key]
        if value is None:
            return default if default else "\x00"  # no ARN contains NUL: matches nothing
        return value

    return _VARIABLE.sub(repl, pattern), known
