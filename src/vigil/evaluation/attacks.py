"""Attack episodes injected into the benign fleet, one per victim identity, labelled.

Each attack type is what one of vigil's named signals is for (:data:`EXPECTED_SIGNALS`):

======================  ===========================================================================
type                    episode
======================  ===========================================================================
``stolen_credentials``  10 of the victim's usual calls on Sunday 03:00 local time, from a public
                        address and a region on another continent it never used
``privilege_drift``     a read-only identity (``role`` reader) writes and deletes what it reads
``enumeration``         reads or lists of 60 distinct tables in a minute: of its own team and the
                        shared ones for half the victims (no segment crossed), of every team for
                        the other half
``escalation_chain``    read -> write -> grant -> create_key, a writer that never granted before
``impossible_travel``   an agent at home, then 10 minutes later 6 calls from another continent
                        (half the victims had a legitimate trip to that region while learning)
``rate_spike``          120 of the victim's usual calls at 40 times its usual rate: per active hour
                        for half the victims (a sustained spike), per active minute for the
                        other half (a burst)
``segment_crossing``    6 reads of another team's production tables, usual place and hours
``pivot``               across identities: the team's CI creates a key for a service (its weekly
                        routine), then the service, from the CI's address, deletes its tables
======================  ===========================================================================

Every other episode property (address, region, hour, resources) is the victim's usual one, so
each episode tests its own signal. Episodes start in the second half of the evaluation window (after learning), at a
moment the victim is normally active (right after one of its own benign calls), except
``stolen_credentials`` which is the 03:00 Sunday case by definition.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from vigil.evaluation.fleet import AGENTS, DAY, FAR_REGIONS, HOUR, Event, Fleet, Identity, Label, Resource

__all__ = ["ATTACK_TYPES", "ELIGIBLE", "EXPECTED_SIGNALS", "WITHIN", "YOUNG", "Episode", "inject_attacks"]

ATTACK_TYPES: Final = (
    "stolen_credentials",
    "privilege_drift",
    "enumeration",
    "escalation_chain",
    "impossible_travel",
    "rate_spike",
    "segment_crossing",
    "pivot",
)

EXPECTED_SIGNALS: Final[dict[str, tuple[str, ...]]] = {
    "stolen_credentials": ("new_region", "new_network", "unusual_hour"),
    "privilege_drift": ("privilege_drift",),
    "enumeration": ("enumeration",),
    "escalation_chain": ("escalation_chain",),
    "impossible_travel": ("impossible_travel",),
    "rate_spike": ("rate_spike",),
    "segment_crossing": ("segment_crossing",),
    "pivot": ("escalation_chain",),
}
"""The named signals each attack type is meant to raise."""

WITHIN: Final[dict[str, int]] = {"enumeration": 20, "rate_spike": 20}
"""Requests from the episode start within which detection counts as in time (default 3);
``escalation_chain`` is in time when its first grant or create_key is not allowed."""
DEFAULT_WITHIN: Final = 3

ELIGIBLE: Final[dict[str, tuple[str, ...]]] = {
    "privilege_drift": ("analyst", "report"),
    "impossible_travel": ("copilot", "analyst", "oncall"),
    "rate_spike": ("api", "sync", "report", "ci"),
    "escalation_chain": ("copilot", "api", "sync", "etl"),
    "stolen_credentials": ("copilot", "analyst", "api", "sync", "ci"),
    "segment_crossing": ("copilot", "analyst", "api", "sync", "etl", "report"),
    "enumeration": ("copilot", "analyst", "api", "sync", "etl", "oncall"),
    "pivot": ("api",),
}
"""Archetypes that can be each attack's victim (the scarcest types are assigned first)."""

YOUNG: Final[dict[str, tuple[str, ...]]] = {
    "watch": (
        "privilege_drift",
        "enumeration",
        "escalation_chain",
        "impossible_travel",
        "stolen_credentials",
        "segment_crossing",
    ),
    "task": (
        "enumeration",
        "escalation_chain",
        "stolen_credentials",
        "segment_crossing",
        "impossible_travel",
    ),
}
"""Episodes against quiet (``watch``) and short-lived (``task``) identities, one of each type per
fleet on its own victim, on top of the ones above: every one must be detected in time."""


@dataclass(frozen=True, slots=True)
class Episode:
    """One injected attack: its id, type, victim and start time (epoch seconds)."""

    id: int
    attack: str
    victim: Identity
    start: float
    requests: int
    variant: str = ""


class _Injector:
    def __init__(self, fleet: Fleet, rng: random.Random, first_id: int) -> None:
        self.fleet = fleet
        self.rng = rng
        self.cfg = fleet.config
        self.next_id = first_id
        self.seq = max((e.seq for e in fleet.events), default=0) + 1
        self.spikes = 0
        self.sweeps = 0
        self.by_identity: dict[tuple[str, str], list[Event]] = {}
        for e in fleet.events:
            self.by_identity.setdefault(e.identity.uid, []).append(e)

    def anchor(self, ident: Identity, *, weekday_only: bool = False) -> Event:
        """A benign event of ``ident`` in the evaluation window (the episode starts just after it)."""
        lo, hi = self.window()
        pool = [
            e
            for e in self.by_identity[ident.uid]
            if lo <= e.t < hi and e.label.drift in _USUAL and (not weekday_only or _weekday(self.cfg.t0, e.t))
        ]
        if not pool:  # small fleets: any of its calls in the window, else after learning
            mine = self.by_identity[ident.uid]
            pool = (
                [e for e in mine if lo <= e.t < hi]
                or [e for e in mine if e.t >= self.cfg.learning_end]
                or mine
            )
        return self.rng.choice(pool)

    def window(self) -> tuple[float, float]:
        """Episodes start in the second half of the evaluation period, so every identity has a
        clean first half (benign requests after learning, no attack yet)."""
        cfg = self.cfg
        first = cfg.learning_days + (cfg.days - cfg.learning_days) // 2
        return cfg.t0 + first * DAY, cfg.t0 + cfg.days * DAY - 4 * HOUR

    def events(
        self, ident: Identity, attack: str, steps: Sequence[tuple[float, str, Resource, str, str]]
    ) -> Episode:
        ep_id = self.next_id
        self.next_id += 1
        out = []
        for i, (t, action, res, ip, region) in enumerate(steps, 1):
            label = Label(attack, ep_id, i)
            out.append(
                Event(t, self.seq, ident, action, res, ip, region, label, AGENTS[ident.archetype].format(v=2))
            )
            self.seq += 1
        self.fleet.events.extend(out)
        variant = ""
        if attack == "impossible_travel":
            variant = "known_region" if steps[0][4] == ident.trip_region else "new_region"
        return Episode(ep_id, attack, ident, out[0].t, len(out), variant)

    def usual(self, ident: Identity) -> tuple[str, Resource]:
        actions = [("read", r) for r in ident.reads[:6]] + [("write", r) for r in ident.writes[:2]]
        return self.rng.choice(actions)

    # -- the attacks ---------------------------------------------------------------------------
    def stolen_credentials(self, ident: Identity) -> Episode:
        lo, _ = self.window()
        days = range(self.cfg.learning_days, self.cfg.days)
        late = [d for d in days if d % 7 == 6 and self.cfg.t0 + d * DAY >= lo]
        day = self.rng.choice(late or [d for d in days if d % 7 == 6] or [self.cfg.days - 1])
        t = self.cfg.t0 + day * DAY + (3 - ident.team.tz) * HOUR + self.rng.uniform(0, 2400)
        ip = _public_ip(self.rng)
        region = self.rng.choice([r for r in FAR_REGIONS[ident.team.continent] if r != ident.trip_region])
        steps = []
        for _ in range(10):
            action, res = self.usual(ident)
            steps.append(
                (t, "list" if action == "read" and self.rng.random() < 0.3 else action, res, ip, region)
            )
            t += self.rng.uniform(5, 40)
        return self.events(ident, "stolen_credentials", steps)

    def privilege_drift(self, ident: Identity) -> Episode:
        a = self.anchor(ident, weekday_only=ident.kind == "assistant")
        t = a.t + self.rng.uniform(20, 120)
        steps = []
        for action in ("write", "read", "write", "write", "delete", "read", "write", "write"):
            steps.append((t, action, self.rng.choice(ident.reads[:6]), a.ip, a.region))
            t += self.rng.uniform(5, 60)
        return self.events(ident, "privilege_drift", steps)

    def enumeration(self, ident: Identity) -> Episode:
        # Alternating between victims: a sweep of its own team's tables (and the shared ones),
        # where no segment is crossed, and a sweep across every team.
        self.sweeps += 1
        inside = self.sweeps % 2 == 1
        a = self.anchor(ident, weekday_only=ident.kind == "assistant")
        if inside:
            every = [
                r
                for r in self.fleet.resources
                if r.type == "Database" and r.team in (ident.team.name, "shared")
            ]
        else:
            every = self.fleet.tables()
        tables = self.rng.sample(every, min(60, len(every)))  # fewer only in fleets under 5 teams
        t = a.t + self.rng.uniform(20, 120)
        steps = []
        for res in tables:
            steps.append((t, self.rng.choice(("read", "list")), res, a.ip, a.region))
            t += self.rng.uniform(0.5, 1.5)
        ep = self.events(ident, "enumeration", steps)
        return Episode(
            ep.id, ep.attack, ep.victim, ep.start, ep.requests, "own_segment" if inside else "all_segments"
        )

    def escalation_chain(self, ident: Identity) -> Episode:
        a = self.anchor(ident, weekday_only=ident.kind == "assistant")
        t = a.t + self.rng.uniform(20, 120)
        target = self.rng.choice(ident.writes or ident.reads)
        account = Resource("ServiceAccount", f"{ident.team.name}-etl", ident.team.name)
        steps = []
        for action, res in (
            ("read", ident.reads[0]),
            ("write", target),
            ("grant", target),
            ("create_key", account),
        ):
            steps.append((t, action, res, a.ip, a.region))
            t += self.rng.uniform(10, 90)
        return self.events(ident, "escalation_chain", steps)

    def impossible_travel(self, ident: Identity) -> Episode:
        a = self.anchor(ident, weekday_only=ident.kind == "assistant")
        t = a.t + self.rng.uniform(540, 660)
        if ident.trip_region:
            region, ip = ident.trip_region, f"{ident.team.net}.200.{self.rng.randrange(2, 250)}"
        else:
            region, ip = self.rng.choice(FAR_REGIONS[ident.team.continent]), _public_ip(self.rng)
        steps = []
        for _ in range(6):
            action, res = self.usual(ident)
            steps.append((t, action, res, ip, region))
            t += self.rng.uniform(10, 60)
        return self.events(ident, "impossible_travel", steps)

    def rate_spike(self, ident: Identity) -> Episode:
        # Two readings of "40 times the usual rate", alternating between victims: its requests per
        # active hour (a sustained spike) and per active minute (a burst).
        self.spikes += 1
        per_minute = self.spikes % 2 == 0
        a = self.anchor(ident)
        if per_minute:
            gap = 60.0 / (40 * max(ident.rate_per_minute, 1.0))
        else:
            gap = HOUR / (40 * max(ident.rate_per_hour, 1.0))
        t = a.t + gap
        steps = []
        for _ in range(120):
            action, res = self.usual(ident)
            steps.append((t, action, res, a.ip, a.region))
            t += self.rng.uniform(0.5, 1.5) * gap
        ep = self.events(ident, "rate_spike", steps)
        return Episode(
            ep.id, ep.attack, ep.victim, ep.start, ep.requests, "per_minute" if per_minute else "per_hour"
        )

    def segment_crossing(self, ident: Identity) -> Episode:
        a = self.anchor(ident, weekday_only=ident.kind == "assistant")
        other = self.rng.choice([tm for tm in self.fleet.teams if tm.name != ident.team.name])
        tables = self.rng.sample(self.fleet.tables(team=other.name), 6)
        t = a.t + self.rng.uniform(20, 120)
        steps = []
        for res in tables:
            steps.append((t, "read", res, a.ip, a.region))
            t += self.rng.uniform(10, 60)
        return self.events(ident, "segment_crossing", steps)

    def pivot(self, ident: Identity) -> Episode:
        """Across identities: the team's CI (whose weekly routine is to create a key for this
        service) creates one for it at an ordinary working moment, then the service, from the
        CI's address, deletes three of its tables (a write-class action it never took)."""
        ci = next(i for i in self.fleet.identities if i.team is ident.team and i.archetype == "ci")
        a = self.anchor(ident, weekday_only=True)
        t = a.t + self.rng.uniform(20, 120)
        target = Resource(ident.type, ident.id, ident.team.name)
        ip = self.rng.choice(ci.ips)
        ep_id = self.next_id
        self.next_id += 1
        out = [Event(t, self.seq, ci, "create_key", target, ip, a.region, Label("pivot", ep_id, 1), ci.agent)]
        self.seq += 1
        for step, res in enumerate(self.rng.sample(ident.writes, min(3, len(ident.writes))), 2):
            t += self.rng.uniform(30, 240)
            agent = AGENTS[ident.archetype].format(v=2)
            out.append(
                Event(t, self.seq, ident, "delete", res, ip, a.region, Label("pivot", ep_id, step), agent)
            )
            self.seq += 1
        self.fleet.events.extend(out)
        return Episode(ep_id, "pivot", ident, out[0].t, len(out))


_USUAL: Final = frozenset({"routine", "subnet_move", "new_resource", "first_use"})


def _weekday(t0: float, t: float) -> bool:
    return int((t - t0) // DAY) % 7 < 5


def _public_ip(rng: random.Random) -> str:
    first = rng.choice((45, 91, 103, 146, 178, 185, 193, 203))
    return f"{first}.{rng.randrange(1, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"


def inject_attacks(
    fleet: Fleet, *, per_type: int = 8, seed: int | None = None, first_id: int = 1
) -> list[Episode]:
    """Inject ``per_type`` episodes of each attack type (fewer when too few victims are eligible),
    each on its own victim; re-sorts ``fleet.events``. Returns the episodes."""
    rng = random.Random(fleet.config.seed + 1 if seed is None else seed)
    inj = _Injector(fleet, rng, first_id)
    free = [i for i in fleet.identities if not i.relocates]
    episodes: list[Episode] = []
    # Scarcest victims first; enumeration last, as the only type an on-call agent can be left for.
    for attack in sorted(ATTACK_TYPES, key=lambda a: (a == "enumeration", len(ELIGIBLE[a]))):
        pool = [i for i in free if i.archetype in ELIGIBLE[attack]]
        rng.shuffle(pool)
        for victim in pool[:per_type]:
            free.remove(victim)
            episodes.append(getattr(inj, attack)(victim))
    lo, hi = inj.window()
    for archetype, attacks in YOUNG.items():
        # victims with calls of their own in the episode window (a task agent lives for minutes)
        pool = [
            i
            for i in free
            if i.archetype == archetype and any(lo <= e.t < hi for e in inj.by_identity.get(i.uid, ()))
        ]
        rng.shuffle(pool)
        for attack, victim in zip(attacks, pool, strict=False):
            free.remove(victim)
            episodes.append(getattr(inj, attack)(victim))
    fleet.events.sort(key=lambda e: (e.t, e.seq))
    episodes.sort(key=lambda e: e.id)
    return episodes
