"""``[behaviour]`` of ``vigil.toml``: the behaviour model's own settings (parsed and checked by
:mod:`vigil.workspace.settings`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BehaviourSettings:
    """``[behaviour]``: learned per-identity behaviour, its signals and what risk does to a decision.

    See ``docs/behaviour.md`` for every key. ``mode`` is ``"enforce"`` (risk may deny),
    ``"shadow"`` (everything is computed and recorded, no decision changes) or ``"off"`` (no
    behaviour step: risk 0, no signals, nothing learned; quarantine still denies). An identity is
    *learning* until it has ``learning_requests`` learned requests over at least ``learning_days``;
    meanwhile its signals are graded by how much history backs them (self-evident evidence in
    full, novelty by the share of the learning period done) and enforced only when the graded
    risk reaches ``step_up_risk``; otherwise recorded. Risk ``>= step_up_risk`` denies with advice
    ``step_up`` and an approval ticket; ``>= deny_risk`` denies; ``quarantine_after`` such denials
    at risk ``>= quarantine_risk`` within ``quarantine_window_s`` quarantine the identity.
    """

    mode: str = "enforce"
    learning_days: int = 7
    learning_requests: int = 100
    step_up_risk: int = 60
    deny_risk: int = 85
    quarantine_after: int = 5
    quarantine_window_s: int = 600
    quarantine_risk: int = 70
    ticket_ttl_s: int = 86_400
    approval_ttl_s: int = 3_600
    # privilege classes read < write < admin: action groups (or actions) of each class
    read_actions: tuple[str, ...] = ("readonly", "read")
    write_actions: tuple[str, ...] = ("mutating", "write")
    admin_actions: tuple[str, ...] = ("admin",)
    sensitive_actions: tuple[str, ...] = ("sensitive",)
    classify_by_name: bool = True
    # resource groups that are segments: an entity type ("Environment") or one uid ('Team::"data"')
    segments: tuple[str, ...] = ()
    # short-lived identities judged as their parent or class: 'Agent::"task-*" -> Agent::"runner"'
    sessions: tuple[str, ...] = ()
    # peer groups: the entity attribute naming an identity's group (the first one it has); "work":
    # else the group learned from its work (segment or resource type, and privilege class)
    peers: tuple[str, ...] = ("team", "owner", "work")
    # further peer groups an identity also belongs to (each that applies; same names as peers):
    # each is taught by every learnable request of its members (a cost per group, docs/behaviour.md)
    peers_also: tuple[str, ...] = ()
    # actions that call a tool: classed by the tool (MCP annotations, else its name), not the action
    tool_actions: tuple[str, ...] = ("call_tool",)
    # known-bad networks (CIDR): a request from one raises bad_network, from the first request on
    bad_networks: tuple[str, ...] = ()
    # detector tuning
    weights: dict[str, int] = field(default_factory=dict)
    min_history: int = 20
    establish_s: int = 3_600
    forget_days: int = 45
    max_time_skew_s: int = 300
    rate_min_per_minute: int = 6
    rate_min_per_quarter_hour: int = 10
    enumeration_min: int = 10
    enumeration_window_s: int = 300
    chain_window_s: int = 900
    credential_window_s: int = 600  # credential_two_places: alternating use within this (0: off)
    travel_kmh: int = 1_000
    travel_min_km: int = 4_500
