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
class ServerSettings:
    """``[server]``: the HTTP service (``vigil serve``); see ``docs/http.md``.

    ``host``/``port`` the listen address (the command line overrides them); ``api_keys_file`` and
    ``admin_keys_file`` name files (relative to the workspace) of bearer keys, one a line, for the
    decision API and the admin API (added to ``VIGIL_API_KEYS`` / ``VIGIL_ADMIN_KEYS``);
    ``max_body_bytes`` the largest request body; ``max_evaluations`` the most items in one batch;
    ``search_max_results`` the page size when a search names no ``page.limit``;
    ``policy_decision_point`` the PDP identifier published in the AuthZEN metadata (default: the
    listen URL); ``access_log`` JSON access lines on stderr.
    """

    host: str = "127.0.0.1"
    port: int = 8181
    api_keys_file: str = ""
    admin_keys_file: str = ""
    max_body_bytes: int = 1_048_576
    max_evaluations: int = 1_000
    search_max_results: int = 1_000
    policy_decision_point: str = ""
    access_log: bool = True


@dataclass(frozen=True, slots=True)
class ExtAuthzSettings:
    """``[ext_authz]``: Envoy external authorization (HTTP service mode); see ``docs/http.md``.

    ``routes`` lines ``"METHOD /path/{param} => action Type::{param}"``; the subject comes from the
    header ``subject_header`` (``subject = "header"``) or from a JWT in ``Authorization: Bearer``
    verified with the keys of ``jwks_file`` (``subject = "jwt"``: ``jwt_issuer``/``jwt_audience``
    checked when set, the id read from ``jwt_claim``); ``subject_type`` is its entity type;
    ``api_key_header`` the header carrying the PEP's API key (Envoy ``headers_to_add``).
    """

    routes: tuple[str, ...] = ()
    subject: str = "header"
    subject_header: str = "x-subject-id"
    subject_type: str = "User"
    jwks_file: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_claim: str = "sub"
    api_key_header: str = "x-vigil-api-key"


@dataclass(frozen=True, slots=True)
class Settings:
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    ext_authz: ExtAuthzSettings = field(default_factory=ExtAuthzSettings)


_SECTIONS: dict[str, type] = {
    "behaviour": BehaviourSettings,
    "audit": AuditSettings,
    "server": ServerSettings,
    "ext_authz": ExtAuthzSettings,
}
_CHOICES = {
    ("behaviour", "mode"): ("enforce", "shadow"),
    ("audit", "sink"): ("jsonl", "none"),
    ("ext_authz", "subject"): ("header", "jwt"),
}


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
