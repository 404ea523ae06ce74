"""Drive the engine through labelled traffic, through its public API only, and score it.

The generated evaluation: build a fleet (:mod:`vigil.evaluation.fleet`), inject attacks
(:mod:`vigil.evaluation.attacks`), write a workspace whose only policy permits everything
(so only behaviour can deny) with ``[behaviour] mode = "enforce"``, then decide every request in
time order with ``Engine.decide(request, now=event_time)`` and score the records
(:mod:`vigil.evaluation.scoring`). Several seeds (replicates) feed one scorecard.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from vigil.audit import NullSink
from vigil.engine import Engine
from vigil.evaluation.attacks import ATTACK_TYPES, Episode, inject_attacks
from vigil.evaluation.fleet import RELOCATION, Event, Fleet, FleetConfig, build_fleet, make_request
from vigil.evaluation.scoring import Outcome, Scorecard, verdict
from vigil.workspace.settings import BehaviourSettings, Settings

__all__ = [
    "DEFAULT_STEP_UP",
    "GeneratedRun",
    "decide_all",
    "run_generated",
    "settings_toml",
    "step_up_threshold",
    "write_fleet_workspace",
]

DEFAULT_STEP_UP: Final = 60
"""Step-up threshold assumed when the workspace settings name none."""

PERMIT_ALL: Final = """\
// The evaluation permits every request by policy: only behaviour (risk, step-up, quarantine) decides.
@id("permit-all")
permit (principal, action, resource);
"""

FLEET_BEHAVIOUR: Final[dict[str, Any]] = {"segments": ["Team"]}
"""Behaviour settings of the fleet workspace beyond the defaults: teams are the segments (and
``learning_days`` is the fleet's own learning period, added by :func:`write_fleet_workspace`)."""


def settings_toml(behaviour: dict[str, Any] | None = None) -> str:
    """``vigil.toml`` for an evaluation workspace: behaviour enforced, no audit, profiles in memory.

    Only keys this vigil knows are written (the settings file refuses unknown keys), so the
    harness runs against the detectors as they stand.
    """
    known = {f.name for f in fields(BehaviourSettings)}
    lines = ["# Written by vigil's evaluation harness (vigil eval).", "[behaviour]", 'mode = "enforce"']
    lines += [f"{k} = {_toml(v)}" for k, v in (behaviour or {}).items() if k in known]
    lines += ["", "[audit]", 'sink = "none"']
    store = next((f for f in fields(Settings) if f.name == "store"), None)
    if store is not None and "backend" in {f.name for f in fields(type(Settings().store))}:
        lines += ["", "[store]", 'backend = "memory"']
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def step_up_threshold(engine: Engine) -> int:
    """The risk at or above which behaviour steps a request up, from the workspace settings."""
    behaviour = engine.workspace.settings.behaviour
    for name in ("step_up_risk", "step_up_threshold", "step_up"):
        value = getattr(behaviour, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return DEFAULT_STEP_UP


def write_fleet_workspace(fleet: Fleet, path: str | Path) -> Path:
    """A schema-free workspace for ``fleet``: permit-all policy, teams, identities and resources."""
    root = Path(path)
    (root / "policies").mkdir(parents=True, exist_ok=True)
    (root / "entities").mkdir(exist_ok=True)
    behaviour = {**FLEET_BEHAVIOUR, "learning_days": fleet.config.learning_days}
    (root / "vigil.toml").write_text(settings_toml(behaviour), encoding="utf-8")
    (root / "policies" / "permit-all.cedar").write_text(PERMIT_ALL, encoding="utf-8")
    teams = [t.name for t in fleet.teams] + ["shared"]
    org: list[dict[str, Any]] = [
        {"uid": {"type": "Team", "id": t}, "attrs": {}, "parents": []} for t in teams
    ]
    org += [
        {"uid": {"type": "Environment", "id": e}, "attrs": {}, "parents": []} for e in ("prod", "staging")
    ]
    identities: list[dict[str, Any]] = [
        {
            "uid": {"type": i.type, "id": i.id},
            "attrs": {
                "team": {"type": "Team", "id": i.team.name},
                "kind": i.kind,
                "role": i.role,
                "home_region": i.team.region,
                "allowed_cidr": {"__extn": {"fn": "ip", "arg": f"{i.team.net}.0.0/16"}},
                "max_sensitivity": 3,
                "suspended": False,
            },
            "parents": [{"type": "Team", "id": i.team.name}],
        }
        for i in fleet.identities
    ]
    for item, i in zip(identities, fleet.identities, strict=True):
        if i.parent is not None:  # a per-task agent: judged from its runner's baseline
            item["attrs"]["parent"] = {"__entity": {"type": i.parent.type, "id": i.parent.id}}
    resources = [
        {
            "uid": {"type": r.type, "id": r.id},
            "attrs": {
                "env": r.env,
                "owner_team": {"type": "Team", "id": r.team},
                "sensitivity": r.sensitivity,
                "tags": ["shared"] if r.team == "shared" else [],
            },
            "parents": [{"type": "Environment", "id": r.env}, {"type": "Team", "id": r.team}],
        }
        for r in fleet.resources
    ]
    for name, data in (("organisation", org), ("identities", identities), ("resources", resources)):
        (root / "entities" / f"{name}.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return root


def decide_all(
    engine: Engine, requests: Iterable[tuple[float, dict[str, Any]]], threshold: int
) -> list[Outcome]:
    """Decide each ``(epoch seconds, request)`` in order at its own time; the outcomes, in order."""
    out: list[Outcome] = []
    decide = engine.decide
    last_t = None
    now = None
    for t, request in requests:
        if t != last_t:
            now = datetime.fromtimestamp(t, UTC)
            last_t = t
        out.append(verdict(decide(request, now=now), threshold))
    return out


@dataclass
class GeneratedRun:
    """Everything one generated evaluation produced (several seeds), ready to report."""

    seeds: list[int]
    config: FleetConfig
    card: Scorecard
    identities: int = 0
    requests: int = 0
    seconds: float = 0.0
    decide_seconds: float = 0.0
    step_up: int = DEFAULT_STEP_UP
    engine_settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "generated",
            "seeds": self.seeds,
            "days": self.config.days,
            "learning_days": self.config.learning_days,
            "teams": self.config.teams,
            "identities_per_seed": self.identities,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "decide_seconds": round(self.decide_seconds, 2),
            "step_up_threshold": self.step_up,
            "behaviour_settings": self.engine_settings,
            **self.card.to_dict(),
        }


def run_generated(
    *,
    seeds: Sequence[int] = (20261005, 20261006, 20261007),
    config: FleetConfig | None = None,
    per_type: int = 8,
    workdir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> GeneratedRun:
    """Generate, inject, decide and score one fleet per seed; one scorecard for all of them."""
    base = config or FleetConfig()
    card = Scorecard()
    for attack in ATTACK_TYPES:
        card.type_result(attack)
    run = GeneratedRun(list(seeds), base, card)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vigil-eval-") as tmp:
        for n, seed in enumerate(seeds):
            cfg = FleetConfig(seed, base.teams, base.days, base.learning_days, base.start)
            fleet = build_fleet(cfg)
            episodes = inject_attacks(fleet, per_type=per_type, first_id=n * 1000 + 1)
            root = Path(workdir) / f"seed-{seed}" if workdir else Path(tmp) / f"seed-{seed}"
            write_fleet_workspace(fleet, root)
            with Engine.from_workspace(root, audit=NullSink()) as engine:
                run.step_up = step_up_threshold(engine)
                run.engine_settings = _settings(engine)
                t0 = time.perf_counter()
                outcomes = decide_all(engine, ((e.t, make_request(e)) for e in fleet.events), run.step_up)
                run.decide_seconds += time.perf_counter() - t0
            score_fleet(card, fleet, episodes, outcomes)
            run.identities = len(fleet.identities)
            run.requests += len(fleet.events)
            if progress is not None:
                progress(f"seed {seed}: {len(fleet.events)} requests, {len(episodes)} episodes")
    run.seconds = time.perf_counter() - started
    return run


def score_fleet(
    card: Scorecard, fleet: Fleet, episodes: Sequence[Episode], outcomes: Sequence[Outcome]
) -> None:
    """Feed one decided fleet into ``card``: each episode, then every benign request."""
    start_of = {ep.victim.uid: ep.start for ep in episodes}
    by_episode: dict[int, list[tuple[Event, Outcome]]] = {}
    learned_at = fleet.config.learning_end
    benign: list[tuple[Event, Outcome]] = []
    for event, outcome in zip(fleet.events, outcomes, strict=True):
        if event.label.attack:
            by_episode.setdefault(event.label.episode, []).append((event, outcome))
        else:
            benign.append((event, outcome))
    for ep in episodes:
        pairs = by_episode.get(ep.id, [])
        info = {"episode": ep.id, "victim": ep.victim.id, "archetype": ep.victim.archetype}
        if ep.variant:
            info["variant"] = ep.variant
        card.episode(ep.attack, [o for _, o in pairs], [e.action for e, _ in pairs], info)
    for event, outcome in benign:
        start = start_of.get(event.identity.uid)
        if start is not None and event.t >= start:
            card.excluded()
            continue
        if event.label.drift == RELOCATION:
            who = f"{fleet.config.seed}:{event.identity.id}"
            card.out_of_band_change(outcome, drift=RELOCATION, identity=who)
            continue
        card.benign(
            outcome,
            learned=event.t >= learned_at,
            drift=event.label.drift,
            group=event.identity.archetype,
            identity=f"{event.identity.id}",
        )


def _settings(engine: Engine) -> dict[str, Any]:
    behaviour = engine.workspace.settings.behaviour
    fields = getattr(behaviour, "__dataclass_fields__", {})
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(behaviour, name)
        if isinstance(value, str | int | float | bool):
            out[name] = value
    return out
