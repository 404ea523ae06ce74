"""``vigil.toml``: one settings object, read once, validated strictly (unknown keys are errors)."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from typing import Any

from vigil.behaviour.settings import BehaviourSettings
from vigil.cluster.settings import ClusterSettings
from vigil.errors import WorkspaceError
from vigil.escalation.settings import EscalationSettings, parse_escalation
from vigil.identity.settings import TRUST_KINDS, IdentitySettings, TrustSettings
from vigil.policy.overlay import OVERLAY_MODES, OverlaySettings, OverlayType
from vigil.store.settings import StoreSettings

__all__ = [
    "OVERLAY_MODES",
    "AuditSettings",
    "BehaviourSettings",
    "ClusterSettings",
    "EscalationSettings",
    "ExtAuthzSettings",
    "IdentitySettings",
    "OverlaySettings",
    "OverlayType",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "parse_settings",
    "restart_needed",
]


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """``[audit]``: where decision events go and what happens when they cannot be recorded.

    ``sink`` ``"jsonl"`` (default) or ``"none"``; ``path`` relative to the workspace; ``buffer`` the
    most events held in memory before drops are counted; ``required`` makes an event that cannot be
    buffered a deny; ``mask`` lists dotted paths (``context.token``) replaced by ``"***"``;
    ``batch`` how many events the deciding thread encodes at once (a larger batch costs less per
    event but holds the caller longer once every ``batch`` decisions: ~8 us per event here);
    ``flush_interval_ms`` how often the writer writes what is encoded (and encodes the rest).
    ``required`` also makes every decision a deny (``audit_unavailable``) while writes fail.

    ``durability`` ``"batched"`` (a crash loses up to about one flush interval of events) or
    ``"sync"`` (a decision returns once its event is fsynced; a group commit; after
    ``sync_timeout_ms`` it is denied ``audit_unavailable``). ``chain`` puts the SHA-256 of the
    previous line in each line (``prev``, ``seq``) and appends a checkpoint signed with the Ed25519
    key ``signing_key`` (relative to the workspace; created 0600 with ``.pub`` beside it) every
    ``checkpoint_events`` events or ``checkpoint_interval_s`` seconds; ``rotate_bytes`` (0: off)
    rotates the file at that size (``audit.jsonl.1``, ...); ``max_context_bytes`` caps the audited
    context (a larger one is replaced by its size and SHA-256); ``close_timeout_s`` bounds the
    final flush at shutdown.
    """

    sink: str = "jsonl"
    path: str = ".vigil/audit.jsonl"
    buffer: int = 100_000
    required: bool = False
    mask: tuple[str, ...] = ()
    flush_interval_ms: int = 200
    batch: int = 32
    durability: str = "batched"
    sync_timeout_ms: int = 2_000
    chain: bool = True
    signing_key: str = ".vigil/audit-signing.key"
    checkpoint_events: int = 1_000
    checkpoint_interval_s: int = 60
    rotate_bytes: int = 0
    max_context_bytes: int = 16_384
    close_timeout_s: int = 5


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``[server]``: the HTTP service (``vigil serve``); see ``docs/http.md``.

    ``host``/``port`` the listen address (the command line overrides them); ``api_keys_file`` and
    ``admin_keys_file`` name files (relative to the workspace) of bearer keys, one a line, for the
    decision API and the admin API (added to ``VIGIL_API_KEYS`` / ``VIGIL_ADMIN_KEYS``);
    ``max_body_bytes`` the largest request body; ``max_evaluations`` the most items in one batch;
    ``search_max_results`` the page size when a search names no ``page.limit``;
    ``policy_decision_point`` the PDP identifier published in the AuthZEN metadata (default: the
    listen URL); ``access_log`` JSON access lines on stderr; ``grpc_port`` Envoy's gRPC
    ``Authorization/Check`` on the same host (negative, the default: not served; 0: any free port).
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
    grpc_port: int = -1


@dataclass(frozen=True, slots=True)
class ExtAuthzSettings:
    """``[ext_authz]``: Envoy external authorization (HTTP service mode); see ``docs/http.md``.

    ``routes`` lines ``"METHOD /path/{param} => action Type::{param}"``; the subject comes from the
    header ``subject_header`` (``subject = "header"``) or from a JWT in ``Authorization: Bearer``
    verified with the keys of ``jwks_file`` (``subject = "jwt"``: ``jwt_issuer``/``jwt_audience``
    checked when set, the id read from ``jwt_claim``); ``subject_type`` is its entity type;
    ``api_key_header`` the header carrying the PEP's API key (Envoy ``headers_to_add``).
    ``trusted_hops``: how many proxies in front of Envoy append to ``x-forwarded-for`` (the client
    address is the entry that many places from the right; 0: the address Envoy saw, from
    ``client_address_header`` when set, e.g. ``x-envoy-external-address``, else the last
    ``x-forwarded-for`` entry Envoy appended); ``region_header`` a header with the client's region
    that a trusted edge sets (and strips from clients); empty: no region.
    """

    routes: tuple[str, ...] = ()
    trusted_hops: int = 0
    client_address_header: str = ""
    region_header: str = ""
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
    store: StoreSettings = field(default_factory=StoreSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    ext_authz: ExtAuthzSettings = field(default_factory=ExtAuthzSettings)
    overlay: OverlaySettings = field(default_factory=OverlaySettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    escalation: EscalationSettings = field(default_factory=EscalationSettings)


_SECTIONS: dict[str, type] = {
    "identity": IdentitySettings,
    "behaviour": BehaviourSettings,
    "store": StoreSettings,
    "audit": AuditSettings,
    "server": ServerSettings,
    "ext_authz": ExtAuthzSettings,
    "cluster": ClusterSettings,
}
_CHOICES = {
    ("behaviour", "mode"): ("enforce", "shadow", "off"),
    ("audit", "sink"): ("jsonl", "none"),
    ("audit", "durability"): ("batched", "sync"),
    ("store", "backend"): ("sqlite", "memory", "postgres"),
    ("ext_authz", "subject"): ("header", "jwt", "token"),
}


# Read once when the process starts (the server's keys, limits and listen address, the store, the
# audit sink, the cluster link): a reload cannot change them. [behaviour] and [ext_authz] take effect at a reload.
RESTART_SECTIONS = ("server", "store", "audit", "cluster")


def restart_needed(old: Settings, new: Settings) -> list[str]:
    """``section.key`` of every setting that differs between ``old`` and ``new`` and takes effect
    only after a restart (sorted; empty when a reload applied everything)."""
    out = []
    for name in RESTART_SECTIONS:
        a, b = getattr(old, name), getattr(new, name)
        for f in fields(a):
            if getattr(a, f.name) != getattr(b, f.name):
                out.append(f"{name}.{f.name}")
    return sorted(out)


def parse_settings(text: str, path: str = "vigil.toml") -> Settings:
    """Settings from TOML text; raises WorkspaceError naming ``path`` (and the line, for syntax)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Python 3.11's TOMLDecodeError has no lineno attribute; the message ends "(at line N, ...)".
        m = re.search(r"at line (\d+)", str(e))
        line = m.group(1) if m else "1"
        raise WorkspaceError(f"{path}:{line}: {e}", [f"{path}:{line}: {e}"]) from None
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, body in raw.items():
        if name == "overlay" and isinstance(body, dict):
            sections[name] = _overlay(body, path, problems)
            continue
        if name == "escalation":
            sections[name] = parse_escalation(body, path, problems)
            continue
        cls = _SECTIONS.get(name)
        if cls is None or not isinstance(body, dict):
            problems.append(f"{path}: unknown section [{name}]")
            continue
        if name == "identity" and "trust" in body:
            body = dict(body)
            trust = _trust(body.pop("trust"), path, problems)
            sections[name] = replace(_section(name, cls, body, path, problems), trust=trust)
            continue
        sections[name] = _section(name, cls, body, path, problems)
    if "behaviour" in sections:
        _check_behaviour(sections["behaviour"], path, problems)
    if "audit" in sections:
        _check_audit(sections["audit"], path, problems)
    if "store" in sections:
        _check_store(sections["store"], path, problems)
    if "cluster" in sections:
        _check_cluster(sections["cluster"], path, problems)
    if "identity" in sections:
        _check_identity(sections["identity"], path, problems)
    if "server" in sections and not -1 <= sections["server"].grpc_port <= 65535:
        problems.append(f"{path}: [server] grpc_port must be between -1 (off) and 65535")
    if "ext_authz" in sections and not 0 <= sections["ext_authz"].trusted_hops <= 32:
        problems.append(f"{path}: [ext_authz] trusted_hops must be between 0 and 32")
    if problems:
        raise WorkspaceError(f"{path}: invalid settings", problems)
    return Settings(**sections)


def _overlay(body: dict[str, Any], path: str, problems: list[str]) -> OverlaySettings:
    """``[overlay]`` and its ``[overlay.types.<EntityType>]`` tables; problems are appended."""
    default = body.get("default", "add")
    if default not in OVERLAY_MODES:
        problems.append(
            f"{path}: [overlay] default must be one of {', '.join(OVERLAY_MODES)}, got {default!r}"
        )
        default = "add"
    for key in body:
        if key not in ("default", "types"):
            problems.append(f"{path}: unknown key {key!r} in [overlay]")
    types: dict[str, OverlayType] = {}
    raw_types = body.get("types", {})
    if not isinstance(raw_types, dict):
        problems.append(f"{path}: [overlay] types must be a table of [overlay.types.<EntityType>] tables")
        raw_types = {}
    for etype, table in raw_types.items():
        where = f"[overlay.types.{etype}]"
        if not isinstance(table, dict):
            problems.append(f"{path}: {where} must be a table")
            continue
        mode = table.get("mode", "")
        allow = table.get("allow", [])
        for key in table:
            if key not in ("mode", "allow"):
                problems.append(f"{path}: unknown key {key!r} in {where}")
        if mode != "" and mode not in OVERLAY_MODES:
            problems.append(f"{path}: {where} mode must be one of {', '.join(OVERLAY_MODES)}, got {mode!r}")
            continue
        if not isinstance(allow, list) or not all(type(a) is str and a for a in allow):
            problems.append(f"{path}: {where} allow must be a list of attribute names")
            continue
        types[etype] = OverlayType(mode, tuple(allow))
    return OverlaySettings(default, types)


_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*\Z")


def _trust(raw: Any, path: str, problems: list[str]) -> tuple[TrustSettings, ...]:
    """The ``[[identity.trust]]`` entries; problems are appended (an entry with one is left out)."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        problems.append(f"{path}: [identity] trust must be [[identity.trust]] tables")
        return ()
    out: list[TrustSettings] = []
    seen: set[str] = set()
    for n, body in enumerate(raw, 1):
        where = f"[[identity.trust]] #{n}"
        before = len(problems)
        t = _section("identity.trust", TrustSettings, body, path, problems)
        if not t.issuer:
            problems.append(f"{path}: {where} needs issuer")
        elif t.issuer in seen:
            problems.append(f"{path}: {where} repeats issuer {t.issuer!r}")
        seen.add(t.issuer)
        kind = t.kind if "kind" in body else ("spiffe" if t.issuer.startswith("spiffe://") else "oidc")
        if kind not in TRUST_KINDS:
            problems.append(f"{path}: {where} kind must be one of {', '.join(TRUST_KINDS)}, got {kind!r}")
        if kind == "spiffe" and not re.fullmatch(r"spiffe://[a-z0-9._-]+", t.issuer):
            problems.append(f"{path}: {where} a SPIFFE issuer is a trust domain, spiffe://domain")
        elif kind != "spiffe" and not t.issuer.startswith(("https://", "http://")):
            problems.append(f"{path}: {where} issuer must be an http(s) URL")
        if bool(t.jwks_uri) == bool(t.jwks_file):
            problems.append(f"{path}: {where} needs exactly one of jwks_uri and jwks_file")
        elif t.jwks_uri and not t.jwks_uri.startswith(("https://", "http://")):
            problems.append(f"{path}: {where} jwks_uri must be an http(s) URL")
        if not t.audience:
            problems.append(f"{path}: {where} needs audience (tokens for another audience are refused)")
        if not _TYPE_NAME.match(t.entity_type):
            problems.append(f"{path}: {where} entity_type {t.entity_type!r} is not an entity type name")
        if not t.subject_claim:
            problems.append(f"{path}: {where} subject_claim must not be empty")
        if not (
            1 <= t.jwks_min_refresh_s <= t.jwks_ttl_s <= 86_400
            and t.jwks_ttl_s <= t.jwks_max_stale_s <= 604_800
        ):
            problems.append(
                f"{path}: {where} needs 1 <= jwks_min_refresh_s <= jwks_ttl_s <= 86400 and "
                "jwks_ttl_s <= jwks_max_stale_s <= 604800"
            )
        if len(problems) == before:
            out.append(replace(t, kind=kind))
    return tuple(out)


def _check_identity(s: IdentitySettings, path: str, problems: list[str]) -> None:
    for t in s.types:
        if not _TYPE_NAME.match(t):
            problems.append(f"{path}: [identity] types: {t!r} is not an entity type name")
    for key in ("unused_days", "key_age_days"):
        if not 1 <= getattr(s, key) <= 36_500:
            problems.append(f"{path}: [identity] {key} must be between 1 and 36500")
    if not 1 <= s.max_keys <= 100:
        problems.append(f"{path}: [identity] max_keys must be between 1 and 100")
    for key, low, high in (
        ("token_ttl_s", 10, 86_400),
        ("assertion_ttl_s", 10, 3_600),
        ("max_delegation_depth", 1, 10),
        ("clock_skew_s", 0, 300),
        ("max_token_bytes", 512, 65_536),
        ("token_cache", 0, 10_000_000),
    ):
        if not low <= getattr(s, key) <= high:
            problems.append(f"{path}: [identity] {key} must be between {low} and {high}")
    if s.issuer and not s.issuer.startswith(("https://", "http://")):
        problems.append(f"{path}: [identity] issuer must be an http(s) URL")
    if not all(a and a.isprintable() and len(a) <= 1_024 for a in s.audiences):
        problems.append(f"{path}: [identity] audiences must be 1..1024 printable characters each")


def _check_cluster(c: ClusterSettings, path: str, problems: list[str]) -> None:
    if c.redis and not c.redis.startswith(("redis://", "rediss://", "unix://")):
        problems.append(f"{path}: [cluster] redis must be a redis://, rediss:// or unix:// URL")
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,100}", c.channel):
        problems.append(f"{path}: [cluster] channel must be 1-100 letters, digits, '_', '.', ':' or '-'")


def _check_store(s: StoreSettings, path: str, problems: list[str]) -> None:
    if not 1 <= s.busy_timeout_ms <= 60_000:
        problems.append(f"{path}: [store] busy_timeout_ms must be between 1 and 60000")
    if not 0 <= s.decision_timeout_ms <= 1_000:
        problems.append(f"{path}: [store] decision_timeout_ms must be between 0 and 1000")
    if s.backend == "postgres" and not s.url.startswith(("postgresql://", "postgres://")):
        problems.append(f'{path}: [store] backend "postgres" needs url = "postgresql://..."')
    if s.schema and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", s.schema):
        problems.append(f"{path}: [store] schema must be lowercase letters, digits and _ (at most 63)")
    if not 1 <= s.pool_size <= 100:
        problems.append(f"{path}: [store] pool_size must be between 1 and 100")


def _check_audit(a: AuditSettings, path: str, problems: list[str]) -> None:
    if a.buffer < 1:
        problems.append(f"{path}: [audit] buffer must be at least 1")
    if not 1 <= a.batch <= 4_096:
        problems.append(f"{path}: [audit] batch must be between 1 and 4096")
    if not 1 <= a.flush_interval_ms <= 60_000:
        problems.append(f"{path}: [audit] flush_interval_ms must be between 1 and 60000")
    for key in ("sync_timeout_ms", "checkpoint_events", "checkpoint_interval_s", "close_timeout_s"):
        if getattr(a, key) < 1:
            problems.append(f"{path}: [audit] {key} must be at least 1")
    if a.rotate_bytes < 0:
        problems.append(f"{path}: [audit] rotate_bytes must not be negative (0: no rotation)")
    if a.max_context_bytes < 64:
        problems.append(f"{path}: [audit] max_context_bytes must be at least 64")


def _check_behaviour(b: BehaviourSettings, path: str, problems: list[str]) -> None:
    """Ranges and relations a type check cannot see."""
    from vigil.behaviour.signals import SIGNALS  # a leaf module: names and weights only

    for name in b.weights:
        if name not in SIGNALS:
            problems.append(
                f"{path}: [behaviour.weights] unknown signal {name!r} (known: {', '.join(SIGNALS)})"
            )
    from vigil.behaviour.sessions import parse_rule  # a leaf module: parsing only

    for item in b.sessions:
        rule = parse_rule(item)
        if type(rule) is str:
            problems.append(f"{path}: [behaviour] sessions: {rule}")
    for cidr in b.bad_networks:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append(f"{path}: [behaviour] bad_networks: {cidr!r} is not an IP network (CIDR)")
    for name in b.tool_actions:
        if not name or not name.isprintable() or len(name) > 256:
            problems.append(f"{path}: [behaviour] tool_actions: {name!r} is not an action id")
    for key in ("peers", "peers_also"):
        for name in getattr(b, key):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\+[A-Za-z_][A-Za-z0-9_]{0,63})*", name):
                problems.append(
                    f"{path}: [behaviour] {key}: {name!r} is not an attribute name (or names joined by +)"
                )
    for key in ("step_up_risk", "deny_risk", "quarantine_risk"):
        if not 1 <= getattr(b, key) <= 100:
            problems.append(f"{path}: [behaviour] {key} must be between 1 and 100")
    if b.step_up_risk > b.deny_risk:
        problems.append(f"{path}: [behaviour] step_up_risk must not exceed deny_risk")
    for key in (
        "learning_days",
        "learning_requests",
        "min_history",
        "establish_s",
        "max_time_skew_s",
        "travel_min_km",
        "credential_window_s",
    ):
        if getattr(b, key) < 0:
            problems.append(f"{path}: [behaviour] {key} must not be negative")
    for key in (
        "quarantine_after",
        "quarantine_window_s",
        "ticket_ttl_s",
        "approval_ttl_s",
        "forget_days",
        "rate_min_per_minute",
        "rate_min_per_quarter_hour",
        "enumeration_min",
        "enumeration_window_s",
        "chain_window_s",
        "travel_kmh",
    ):
        if getattr(b, key) < 1:
            problems.append(f"{path}: [behaviour] {key} must be at least 1")


def _section(name: str, cls: type, body: dict[str, Any], path: str, problems: list[str]) -> Any:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    defaults = cls()
    for key, value in body.items():
        if key not in known:
            problems.append(f"{path}: unknown key {key!r} in [{name}]")
            continue
        expected = type(getattr(defaults, key))
        if expected is dict:
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and type(v) is int and 0 <= v <= 100 for k, v in value.items()
            ):
                problems.append(f"{path}: [{name}] {key} must be a table of integers 0..100")
                continue
        elif expected is tuple:
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
