"""``vigil.toml``: one settings object, read once, validated strictly (unknown keys are errors)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from typing import Any

from vigil.errors import WorkspaceError


@dataclass(frozen=True, slots=True)
class BehaviourSettings:
    """``[behaviour]``: ``mode`` is ``"enforce"`` (behaviour may change decisions) or ``"shadow"``."""

    mode: str = "enforce"


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """``[audit]``: where decision events go and what happens when they cannot be recorded.

    ``sink`` ``"jsonl"`` (default) or ``"none"``; ``path`` relative to the workspace; ``buffer`` the
    most events held in memory before drops are counted; ``required`` makes an event that cannot be
    buffered a deny; ``mask`` lists dotted paths (``context.token``) replaced by ``"***"``.
    """

    sink: str = "jsonl"
    path: str = ".vigil/audit.jsonl"
    buffer: int = 100_000
    required: bool = False
    mask: tuple[str, ...] = ()
    flush_interval_ms: int = 200


@dataclass(frozen=True, slots=True)
class Settings:
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)


_SECTIONS: dict[str, type] = {"behaviour": BehaviourSettings, "audit": AuditSettings}
_CHOICES = {("behaviour", "mode"): ("enforce", "shadow"), ("audit", "sink"): ("jsonl", "none")}


def parse_settings(text: str, path: str = "vigil.toml") -> Settings:
    """Settings from TOML text; raises WorkspaceError naming ``path`` (and the line, for syntax)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise WorkspaceError(f"{path}: {e}", [f"{path}:{getattr(e, 'lineno', 1)}: {e}"]) from None
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, body in raw.items():
        cls = _SECTIONS.get(name)
        if cls is None or not isinstance(body, dict):
            problems.append(f"{path}: unknown section [{name}]")
            continue
        sections[name] = _section(name, cls, body, path, problems)
    if problems:
        raise WorkspaceError(f"{path}: invalid settings", problems)
    return Settings(**sections)


def _section(name: str, cls: type, body: dict[str, Any], path: str, problems: list[str]) -> Any:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    defaults = cls()
    for key, value in body.items():
        if key not in known:
            problems.append(f"{path}: unknown key {key!r} in [{name}]")
            continue
        expected = type(getattr(defaults, key))
        if expected is tuple:
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                problems.append(f"{path}: [{name}] {key} must be a list of strings")
                continue
            value = tuple(value)
        elif type(value) is not expected:
            problems.append(f"{path}: [{name}] {key} must be a {expected.__name__}, got {value!r}")
            continue
        choices = _CHOICES.get((name, key))
        if choices is not None and value not in choices:
            problems.append(f"{path}: [{name}] {key} must be one of {', '.join(choices)}, got {value!r}")
            continue
        values[key] = value
    return cls(**values)
