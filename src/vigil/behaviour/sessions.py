"""Short-lived identities (one per task or session) and the baseline they start from.

An identity made per task or session never has a history of its own long enough to be judged
against. vigil judges it as its *parent* instead: its profile starts as a copy of the parent's
learned baseline (:func:`vigil.behaviour.profile.inherited`) at its first request, and its own
requests (the session) teach it from there. The parent is, in this order:

1. the entity's ``parent`` attribute (an entity reference), e.g.
   ``"attrs": {"parent": {"__entity": {"type": "Agent", "id": "support-runner"}}}``;
2. the first matching rule of ``[behaviour] sessions``, each ``'PATTERN -> PARENT'``: PATTERN is
   ``Type::"glob"`` (``*`` and ``?`` as in shell globs) matched against the identity's uid, PARENT
   a uid, e.g. ``'Agent::"support-task-*" -> Agent::"support-runner"'``.

Only a parent that has a profile of its own gives a baseline; otherwise the identity starts empty,
as any new identity does. This module is a leaf: parsing and matching only.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Final

from vigil.model.uid import EntityUid

_UID: Final = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*)::"((?:[^"\\]|\\.)*)"\s*')

Rule = tuple[str, "re.Pattern[str]", EntityUid]


def parse_rule(text: str) -> Rule | str:
    """One ``[behaviour] sessions`` item as (entity type, compiled glob of the id, parent uid), or
    the problem with it as a message (the settings check turns it into a workspace error)."""
    if type(text) is not str or "->" not in text:
        return f'{text!r} must be \'Type::"glob" -> Type::"parent"\''
    left, _, right = text.partition("->")
    pattern = _UID.fullmatch(left)
    parent = _UID.fullmatch(right)
    if pattern is None or parent is None:
        return f'{text!r} must be \'Type::"glob" -> Type::"parent"\''
    glob = pattern.group(2)
    if not glob:
        return f"{text!r}: the pattern must not be empty"
    return (pattern.group(1), re.compile(fnmatch.translate(glob)), (parent.group(1), parent.group(2)))


def parse_rules(items: tuple[str, ...]) -> tuple[Rule, ...]:
    """The valid rules of ``items`` in order (the settings check has refused invalid ones)."""
    out: list[Rule] = []
    for item in items:
        rule = parse_rule(item)
        if type(rule) is tuple:
            out.append(rule)
    return tuple(out)


def parent_of(uid: EntityUid, attrs: Any, rules: tuple[Rule, ...]) -> EntityUid | None:
    """The parent whose baseline ``uid`` starts from (see the module documentation), or None.
    ``attrs``: the identity's entity attributes (a mapping, or None). (A delegated token's request
    is no short-lived identity's: it is its acting agent's behaviour, judged on the agent's own
    profile, docs/behaviour.md "Delegated requests".)"""
    if attrs is not None:
        parent = attrs.get("parent")
        if type(parent) is tuple and len(parent) == 2 and parent != uid:
            return parent
    for etype, pattern, parent_uid in rules:
        if uid[0] == etype and pattern.match(uid[1]) and parent_uid != uid:
            return parent_uid
    return None


__all__ = ["Rule", "parent_of", "parse_rule", "parse_rules"]
