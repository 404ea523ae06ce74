"""A benign fleet of its own: weeks of traffic for dozens of non-human identities (seeded).

Eight teams in three continents, each with the same ten identities (plus per-task agents), so every rhythm appears in
every time zone:

============  =================  ============  =============================================
archetype     kind / role        type          rhythm
============  =================  ============  =============================================
``etl``       batch / etl        Service acct  nightly run at 01:00 local: reads, then writes
``api``       service / writer   Service acct  always on, diurnal, slowly growing volume
``sync``      service / writer   Service acct  every 15 minutes, read one table, write another
``copilot``   assistant / writer Agent         office-hours sessions on weekdays
``analyst``   assistant / reader Agent         office-hours sessions, reads its team's tables
``oncall``    oncall / deployer  Agent         09:00 and 16:00 checks; pages at any hour, bursts
``report``    batch / reader     Service acct  hourly at :05, a few reads
``ci``        service / deployer Service acct  weekday deploys; weekly key rotation and grant
``watch``     monitor / reader   Agent         quiet: 1-5 health checks a day, one read each
``runner``    orchestrator       Agent         weekday tasks; makes one ``task`` agent per task
``task``      task / writer      Agent         short-lived (minutes), ``parent`` = its runner
============  =================  ============  =============================================

Benign drift, labelled on each request it touches (``Label.drift``): a new table appears in every
team after the learning period and the team starts using it (``new_resource``); agents open a
table of their team they never used (``first_use``); half the online services move to a new /24
of their team's network (``subnet_move``); two services run for an hour from their failover region
on the same continent (``failover``); agents work late (``late_work``); on-call pages at night or
at weekends (``oncall_page``); two online services see four times their traffic for two hours
(``busy_day``); two ETL jobs backfill 25 history tables of their team in an afternoon
(``backfill``). Everything else is ``routine``. One more change is out of band and reported on its
own (:data:`RELOCATION`): one ``sync`` service moves for good to its failover region and a new
network after learning, which vigil is meant to question. Two drifts are not labelled because they touch
every request after them: user agents get a new version (same product) two days after learning,
and daylight saving time ends in Europe and America during the evaluation, so wall-clock
schedules move by an hour in UTC.

The output is a list of :class:`Event` sorted by time; the same seed gives the same events.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "ARCHETYPES",
    "DAY",
    "QUIET",
    "SESSION",
    "SHORT_LIVED",
    "Event",
    "Fleet",
    "FleetConfig",
    "Identity",
    "Label",
    "Resource",
    "Team",
    "build_fleet",
    "make_request",
]

DAY: Final = 86_400
HOUR: Final = 3_600

# Relative weight of each *local* hour, 00 .. 23.
# fmt: off
OFFICE: Final = (0, 0, 0, 0, 0, 0, 0, 0.2, 2, 5, 5, 5, 3, 4, 5, 5, 4, 3, 1, 0, 0, 0, 0, 0)
LATE: Final = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 4, 3, 1, 0)
ALWAYS_ON: Final = (1, 0.8, 0.7, 0.7, 0.8, 1, 1.5, 2.5, 3.5, 4, 4, 4, 3.5, 4, 4, 4, 3.5, 3, 2.5, 2, 1.8, 1.5, 1.3, 1.1)
# fmt: on

TABLES: Final = (
    "orders", "customers", "events", "sessions", "invoices", "ledger", "inventory", "accounts",
    "audit", "metrics", "tickets", "profiles", "payments", "shipments", "features", "experiments",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Team:
    """A team: its segment of the network (a /16), home region, continent and local time offset."""

    name: str
    index: int
    region: str
    failover: str
    continent: str
    tz: int  # hours from UTC

    @property
    def net(self) -> str:
        return f"10.{self.index + 10}"


TEAMS: Final = (
    Team("platform", 0, "eu-west-1", "eu-central-1", "europe", 0),
    Team("payments", 1, "eu-west-1", "eu-central-1", "europe", 1),
    Team("support", 2, "us-east-1", "us-east-2", "america", -5),
    Team("data", 3, "eu-central-1", "eu-west-1", "europe", 1),
    Team("growth", 4, "us-east-1", "us-west-2", "america", -5),
    Team("security", 5, "eu-west-1", "eu-central-1", "europe", 0),
    Team("research", 6, "us-west-2", "us-east-1", "america", -8),
    Team("apac", 7, "ap-southeast-2", "ap-southeast-1", "asia-pacific", 10),
)

FAR_REGIONS: Final = {
    "europe": ("ap-northeast-1", "sa-east-1", "ap-south-1", "us-west-1"),
    "america": ("ap-northeast-1", "eu-north-1", "ap-south-1", "af-south-1"),
    "asia-pacific": ("eu-west-2", "us-east-2", "sa-east-1", "eu-north-1"),
}
"""Regions on another continent, per home continent (used by attacks and business trips)."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource entity: ``type``, ``id``, owning team (``"shared"`` for the common ones), env."""

    type: str
    id: str
    team: str
    env: str = "prod"
    sensitivity: int = 1

    @property
    def uid(self) -> tuple[str, str]:
        return (self.type, self.id)


AGENTS: Final = {
    "etl": "airflow-worker/2.7.{v} (python 3.11)",
    "api": "okhttp/4.{v}.0",
    "sync": "python-requests/2.3{v}.0",
    "copilot": "vigil-agent-sdk/0.{v} (langgraph)",
    "analyst": "vigil-agent-sdk/0.{v} (langgraph)",
    "oncall": "pagerbot/1.{v}",
    "report": "cron-report/1.{v}",
    "ci": "github-actions-runner/2.31{v}.0",
    "watch": "healthcheck/3.{v}",
    "runner": "vigil-agent-sdk/0.{v} (runner)",
    "task": "vigil-agent-sdk/0.{v} (task)",
}
"""User agent per archetype; ``{v}`` is a version that is bumped after learning (same family)."""

ARCHETYPES: Final = {
    # archetype: (entity type, kind, role)
    "etl": ("ServiceAccount", "batch", "etl"),
    "api": ("ServiceAccount", "service", "writer"),
    "sync": ("ServiceAccount", "service", "writer"),
    "copilot": ("Agent", "assistant", "writer"),
    "analyst": ("Agent", "assistant", "reader"),
    "oncall": ("Agent", "oncall", "deployer"),
    "report": ("ServiceAccount", "batch", "reader"),
    "ci": ("ServiceAccount", "service", "deployer"),
    "watch": ("Agent", "monitor", "reader"),
    "runner": ("Agent", "orchestrator", "writer"),
}
SESSION: Final = ("Agent", "task", "writer")
"""Per-task agents (archetype ``task``): made by their team's ``runner`` for one task each, with
a ``parent`` attribute naming it; they live for minutes."""
QUIET: Final = frozenset({"watch"})
SHORT_LIVED: Final = frozenset({"task"})


@dataclass(slots=True)
class Identity:
    """One identity, its team, archetype and usual places (source addresses, resources)."""

    type: str
    id: str
    team: Team
    archetype: str
    kind: str
    role: str
    ips: list[str]
    reads: list[Resource]
    writes: list[Resource]
    tools: list[Resource]
    agent: str = ""  # its user agent (context.user_agent)
    trip_region: str = ""  # a far region it legitimately used during learning (agents only)
    relocates: bool = False  # moves to another region and network after learning (out of band)
    rate_per_hour: float = 0.0  # mean requests per active hour during learning
    rate_per_minute: float = 0.0  # mean requests per active minute during learning
    parent: Identity | None = None  # the agent that made it (short-lived per-task agents)

    @property
    def uid(self) -> tuple[str, str]:
        return (self.type, self.id)

    @property
    def readonly(self) -> bool:
        return self.role == "reader"


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth of one request: ``attack`` type ("" when benign), ``episode`` (-1 when benign),
    ``step`` (1-based position in its episode), ``drift`` (benign drift tag)."""

    attack: str = ""
    episode: int = -1
    step: int = 0
    drift: str = "routine"

    @property
    def benign(self) -> bool:
        return not self.attack


ROUTINE: Final = Label()
RELOCATION: Final = "region_move"
"""Drift label of the one out-of-band change per fleet: a service moved to another region and
network without telling vigil. Reported on its own, not counted in the false-positive rate."""


@dataclass(slots=True)
class Event:
    """One request at epoch second ``t`` with its label (``seq`` keeps generation order for ties)."""

    t: float
    seq: int
    identity: Identity
    action: str
    resource: Resource
    ip: str
    region: str
    label: Label = ROUTINE
    agent: str = ""


def make_request(event: Event) -> dict[str, Any]:
    """The AuthZEN request of an event (``context``: ``time``, ``ip``, ``region``, ``hour``,
    ``user_agent``)."""
    when = datetime.fromtimestamp(event.t, UTC)
    ident = event.identity
    return {
        "subject": {"type": ident.type, "id": ident.id},
        "action": {"name": event.action},
        "resource": {"type": event.resource.type, "id": event.resource.id},
        "context": {
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ip": event.ip,
            "region": event.region,
            "hour": when.hour,
            "user_agent": event.agent or event.identity.agent,
        },
    }


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """Shape of the generated fleet: the seed, how many teams (up to 8), how many days, learning days."""

    seed: int = 20261005
    teams: int = 8
    days: int = 28
    learning_days: int = 14
    start: datetime = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday

    @property
    def t0(self) -> float:
        return self.start.timestamp()

    @property
    def learning_end(self) -> float:
        return self.t0 + self.learning_days * DAY


@dataclass
class Fleet:
    """The generated world: teams, identities, resources and the benign events (time-sorted)."""

    config: FleetConfig
    teams: list[Team]
    identities: list[Identity]
    resources: list[Resource]
    events: list[Event] = field(default_factory=list)
    new_tables: dict[str, Resource] = field(default_factory=dict)

    def tables(self, *, team: str | None = None) -> list[Resource]:
        return [
            r
            for r in self.resources
            if r.type == "Database" and r.env == "prod" and (team is None or r.team == team)
        ]

    def team_resources(self, team: str) -> list[Resource]:
        return [r for r in self.resources if r.team == team]


# -- the world ----------------------------------------------------------------------------------


def _world(cfg: FleetConfig, rng: random.Random) -> Fleet:
    teams = list(TEAMS[: cfg.teams])
    resources: list[Resource] = []
    new_tables: dict[str, Resource] = {}
    for team in teams:
        names = rng.sample(TABLES, len(TABLES))
        for suffix in ("", "-history", "-archive"):
            for name in names[:15]:
                resources.append(
                    Resource(
                        "Database", f"{team.name}-{name}{suffix}-prod", team.name, "prod", rng.choice((1, 2))
                    )
                )
        for name in names[:12]:
            resources.append(Resource("Database", f"{team.name}-{name}-staging", team.name, "staging", 0))
        new = Resource("Database", f"{team.name}-{names[15]}-prod", team.name, "prod", 1)
        resources.append(new)
        new_tables[team.name] = new
        for b in ("exports", "artifacts", "logs"):
            resources.append(Resource("Bucket", f"{team.name}-{b}-prod", team.name))
        for a in ("status", "deploy"):
            resources.append(Resource("ApiEndpoint", f"{team.name}-{a}-api", team.name))
        for tool in ("restart", "query", "page"):
            resources.append(Resource("McpTool", f"{team.name}-{tool}-tool", team.name))
        for s in ("db-password", "api-key"):
            resources.append(Resource("Secret", f"{team.name}-{s}", team.name, "prod", 3))
    for name in ("calendar", "directory", "currency-rates", "feature-flags"):
        resources.append(Resource("Database", f"shared-{name}", "shared", "prod", 0))
    fleet = Fleet(cfg, teams, [], resources, new_tables=new_tables)
    for team in teams:
        for archetype, (etype, kind, role) in ARCHETYPES.items():
            fleet.identities.append(_identity(fleet, team, archetype, etype, kind, role, rng))
    return fleet


def _identity(
    fleet: Fleet, team: Team, archetype: str, etype: str, kind: str, role: str, rng: random.Random
) -> Identity:
    mine = [r for r in fleet.team_resources(team.name) if r is not fleet.new_tables[team.name]]
    tables = [r for r in mine if r.type == "Database" and r.env == "prod"]
    staging = [r for r in mine if r.type == "Database" and r.env == "staging"]
    buckets = [r for r in mine if r.type == "Bucket"]
    apis = [r for r in mine if r.type == "ApiEndpoint"]
    tools = [r for r in mine if r.type == "McpTool"]
    secrets = [r for r in mine if r.type == "Secret"]
    shared = [r for r in fleet.resources if r.team == "shared"]
    k = list(ARCHETYPES).index(archetype)
    net = team.net
    ips = [f"{net}.{k}.{rng.randrange(2, 250)}" for _ in range(rng.randint(2, 4))]
    reads: list[Resource] = []
    writes: list[Resource] = []
    use: list[Resource] = []
    if archetype == "etl":
        reads, writes = rng.sample(tables, 6) + rng.sample(shared, 1), rng.sample(tables, 2)
    elif archetype == "api":
        reads = rng.sample(tables, 3) + buckets[:1] + rng.sample(shared, 2)
        writes = reads[:2] + buckets[:1]
    elif archetype == "sync":
        reads, writes = rng.sample(tables, 2), rng.sample(tables, 1) + rng.sample(staging, 1)
    elif archetype == "copilot":
        reads = rng.sample(tables, 6) + buckets + apis[:1] + shared
        writes = rng.sample(staging, 3) + reads[:2]
        use = tools
    elif archetype == "analyst":
        reads = rng.sample(tables, 8) + buckets[:1] + shared
        ips = [f"{net}.{rng.randrange(64, 80)}.{rng.randrange(2, 250)}" for _ in range(6)]
    elif archetype == "oncall":
        reads = rng.sample(tables, 5) + apis + buckets[2:]
        use = tools
    elif archetype == "report":
        reads = rng.sample(tables, 4)
    elif archetype == "watch":
        reads = rng.sample(tables, 3) + apis[:1]
    elif archetype == "runner":
        reads = rng.sample(tables, 5) + buckets[:1]
        writes = rng.sample(staging, 2)
    elif archetype == "ci":
        reads = buckets[1:2] + apis + secrets[:1]
        writes = buckets[1:2] + rng.sample(staging, 2)
        use = apis[1:] + tools[:1]
    if kind in ("assistant", "oncall") and archetype != "analyst":
        ips = [f"{net}.{rng.randrange(64, 80)}.{rng.randrange(2, 250)}" for _ in range(6)]
    agent = AGENTS[archetype].format(v=1)
    return Identity(
        etype, f"{team.name}-{archetype}", team, archetype, kind, role, ips, reads, writes, use, agent
    )


# -- benign traffic ------------------------------------------------------------------------------


class _Gen:
    """Generates one identity's benign events day by day."""

    def __init__(self, fleet: Fleet, rng: random.Random) -> None:
        self.fleet = fleet
        self.cfg = fleet.config
        self.rng = rng
        self.out: list[Event] = []
        self.seq = 0
        self.new_table_day = self.cfg.learning_days + 3
        self.move_day = self.cfg.learning_days + 6
        self.failover_day = self.cfg.learning_days + 4
        self.upgrade_day = self.cfg.learning_days + 2
        self.busy_day = self.cfg.learning_days + 5
        self.relocate_day = min(self.cfg.learning_days + 3, self.cfg.days - 1)
        self.backfill_day = self.cfg.learning_days + 6
        start = self.cfg.start.date()
        self.dst_end = {
            "europe": (datetime(2026, 10, 25).date() - start).days,
            "america": (datetime(2026, 11, 1).date() - start).days,
        }

    def emit(
        self, ident: Identity, t: float, action: str, res: Resource, drift: str = "routine", **kw: str
    ) -> None:
        ip = kw.get("ip") or self.ip(ident, t)
        region = kw.get("region") or ident.team.region
        if ident.relocates and t >= self.local(ident, self.relocate_day, 10.0):
            # Moved to the failover region and a new VPC (another /16), without telling vigil.
            region, drift = ident.team.failover, RELOCATION
            ip = f"10.{ident.team.index + 60}.{ip.split('.', 3)[2]}.{ip.rsplit('.', 1)[1]}"
        if drift == "routine" and res is self.fleet.new_tables.get(ident.team.name):
            drift = "new_resource"
        if drift == "routine" and "ip" not in kw and self._moved(ident, self.day(t)):
            drift = "subnet_move"
        label = ROUTINE if drift == "routine" else Label(drift=drift)
        agent = AGENTS[ident.archetype].format(v=2) if self.day(t) >= self.upgrade_day else ident.agent
        self.out.append(Event(t, self.seq, ident, action, res, ip, region, label, agent))
        self.seq += 1

    def ip(self, ident: Identity, t: float) -> str:
        ip = self.rng.choice(ident.ips)
        if self._moved(ident, self.day(t)):
            parts = ip.split(".")
            return f"{parts[0]}.{parts[1]}.{int(parts[2]) + 100}.{parts[3]}"
        return ip

    def day(self, t: float) -> int:
        return int((t - self.cfg.t0) // DAY)

    def local(self, ident: Identity, day: int, hour: float) -> float:
        """Epoch seconds of ``hour`` (local wall-clock time, may be fractional) on ``day`` of the
        identity's team, with daylight saving time until its end (Europe 25 October, America
        1 November 2026): schedules follow the wall clock, so they move by an hour in UTC."""
        summer = day < self.dst_end.get(ident.team.continent, -1)
        return self.cfg.t0 + day * DAY + (hour - ident.team.tz - summer) * HOUR

    def weekday(self, ident: Identity, day: int) -> bool:
        return (day % 7) < 5  # the start is a Monday; local and UTC days agree at midday

    def pick(self, items: Sequence[Resource]) -> Resource:
        # Zipf-like preference: the first resources are the identity's favourites.
        n = len(items)
        i = min(int(self.rng.paretovariate(1.2)) - 1, n - 1)
        return items[i]

    def reads_for(self, ident: Identity, day: int) -> list[Resource]:
        new = self.fleet.new_tables.get(ident.team.name)
        if new is not None and day >= self.new_table_day and ident.archetype in ("api", "analyst", "etl"):
            return [new, *ident.reads]
        return ident.reads

    # -- archetypes ----------------------------------------------------------------------------
    def run(self, ident: Identity) -> None:
        getattr(self, f"_{ident.archetype}")(ident)

    def _etl(self, ident: Identity) -> None:
        for day in range(self.cfg.days):
            t = self.local(ident, day, 1.0) + self.rng.uniform(0, 1200)
            for _ in range(self.rng.randint(90, 130)):
                t += self.rng.uniform(8, 40)
                reads = self.reads_for(ident, day)
                self.emit(ident, t, self.rng.choice(("read", "read", "list")), self.pick(reads))
            for _ in range(self.rng.randint(20, 40)):
                t += self.rng.uniform(5, 30)
                self.emit(ident, t, "write", self.rng.choice(ident.writes))
            if day == self.backfill_day and ident.team.index % 4 == 1:
                # A backfill: an afternoon re-reading 25 history tables of its team, one a minute or so.
                history = [r for r in self.fleet.tables(team=ident.team.name) if "-history-" in r.id]
                t = self.local(ident, day, 14.0)
                for res in self.rng.sample(history, min(25, len(history))):
                    t += self.rng.uniform(40, 90)
                    self.emit(ident, t, "read", res, "backfill")

    def _api(self, ident: Identity) -> None:
        base = 6.0 + ident.team.index % 3
        for day in range(self.cfg.days):
            growth = 1.0 + 0.6 * day / self.cfg.days
            failover = ident.team.index in (1, 4) and day == self.failover_day
            busy = ident.team.index % 4 == 3 and day == self.busy_day
            for hour in range(24):
                surge = busy and 14 <= hour < 16
                lam = base * growth * ALWAYS_ON[hour] / 2.6 * (4 if surge else 1)
                for _ in range(_poisson(self.rng, lam)):
                    t = self.local(ident, day, hour + self.rng.random())
                    action = self.rng.choices(("read", "write", "list"), (60, 35, 5))[0]
                    res = self.pick(self.reads_for(ident, day) if action != "write" else ident.writes)
                    if failover and hour == 10:
                        self.emit(ident, t, action, res, "failover", region=ident.team.failover)
                    elif surge:
                        self.emit(ident, t, action, res, "busy_day")
                    else:
                        self.emit(ident, t, action, res)

    def _moved(self, ident: Identity, day: int) -> bool:
        return ident.kind == "service" and ident.team.index % 2 == 0 and day >= self.move_day

    def _sync(self, ident: Identity) -> None:
        for day in range(self.cfg.days):
            for slot in range(96):
                t = self.local(ident, day, slot / 4) + self.rng.uniform(0, 60)
                self.emit(ident, t, "read", self.rng.choice(ident.reads))
                if self.rng.random() < 0.5:
                    self.emit(ident, t + self.rng.uniform(1, 5), "write", self.rng.choice(ident.writes))

    def _sessions(
        self, ident: Identity, per_day: float, size: tuple[int, int], mix: Sequence[tuple[str, int]]
    ) -> None:
        actions = [a for a, _ in mix]
        weights = [w for _, w in mix]
        team_tables = [
            r
            for r in self.fleet.tables(team=ident.team.name)
            if r is not self.fleet.new_tables[ident.team.name]
        ]
        trip = (
            range(self.cfg.learning_days // 2, self.cfg.learning_days // 2 + 3)
            if ident.trip_region
            else range(0)
        )
        for day in range(self.cfg.days):
            if not self.weekday(ident, day):
                continue
            late = day >= self.cfg.learning_days and self.rng.random() < 0.15
            sessions = _poisson(self.rng, per_day)
            for s in range(sessions + (1 if late else 0)):
                is_late = late and s == sessions
                hours = LATE if is_late else OFFICE
                hour = self.rng.choices(range(24), hours)[0] + self.rng.random()
                t = self.local(ident, day, hour)
                region = ident.trip_region if day in trip else ident.team.region
                ip = (
                    self.rng.choice(ident.ips)
                    if day not in trip
                    else f"{ident.team.net}.200.{self.rng.randrange(2, 250)}"
                )
                for _ in range(self.rng.randint(*size)):
                    t += self.rng.uniform(2, 25)
                    action = self.rng.choices(actions, weights)[0]
                    drift = "late_work" if is_late else ("trip" if day in trip else "routine")
                    if action == "write":
                        res = self.pick(ident.writes)
                    elif action == "invoke":
                        res = self.rng.choice(ident.tools)
                    elif day >= self.cfg.learning_days and self.rng.random() < 0.02:
                        res, drift = self.rng.choice(team_tables), "first_use"
                    else:
                        res = self.pick(self.reads_for(ident, day))
                    self.emit(ident, t, action, res, drift, ip=ip, region=region)

    def _copilot(self, ident: Identity) -> None:
        self._sessions(ident, 6, (3, 12), (("read", 50), ("list", 15), ("write", 20), ("invoke", 15)))

    def _analyst(self, ident: Identity) -> None:
        self._sessions(ident, 5, (4, 15), (("read", 75), ("list", 25)))

    def _oncall(self, ident: Identity) -> None:
        for day in range(self.cfg.days):
            for check in (9.0, 16.0):  # two checks a day
                t = self.local(ident, day, check) + self.rng.uniform(0, 600)
                for _ in range(self.rng.randint(3, 6)):
                    t += self.rng.uniform(5, 30)
                    self.emit(ident, t, "read", self.pick(ident.reads))
            for _ in range(_poisson(self.rng, 0.35)):
                t = self.cfg.t0 + day * DAY + self.rng.uniform(0, DAY)
                for _ in range(self.rng.randint(12, 30)):
                    t += self.rng.uniform(10, 60)
                    if self.rng.random() < 0.2:
                        self.emit(ident, t, "invoke", self.rng.choice(ident.tools), "oncall_page")
                    else:
                        self.emit(ident, t, "read", self.pick(ident.reads), "oncall_page")

    def _watch(self, ident: Identity) -> None:
        """A quiet identity: one to five health checks a day, each a single read, at two or three
        habitual hours (local) plus a rare extra check."""
        hours = sorted(self.rng.sample(range(6, 22), 3))
        for day in range(self.cfg.days):
            for hour in hours[: self.rng.randint(1, 3)]:
                t = self.local(ident, day, hour + self.rng.uniform(0, 0.3))
                self.emit(ident, t, "read", self.pick(ident.reads))
            if self.rng.random() < 0.3:
                t = self.local(ident, day, self.rng.uniform(8, 18))
                self.emit(ident, t, self.rng.choice(("read", "list")), self.pick(ident.reads))

    def _runner(self, ident: Identity) -> None:
        """An orchestrator: on weekdays it takes tasks in office hours; for each it reads a little
        itself and makes a per-task agent (its own identity, ``parent`` = the runner) that works
        for a few minutes: reads of the runner's tables, a write to its staging tables."""
        n = 0
        for day in range(self.cfg.days):
            if not self.weekday(ident, day):
                continue
            for _ in range(_poisson(self.rng, 5)):
                t = self.local(ident, day, self.rng.uniform(8.5, 18))
                for _ in range(self.rng.randint(1, 3)):
                    t += self.rng.uniform(2, 10)
                    self.emit(ident, t, "read", self.pick(ident.reads))
                n += 1
                etype, kind, role = SESSION
                task = Identity(
                    etype,
                    f"{ident.team.name}-task-{n:04d}",
                    ident.team,
                    "task",
                    kind,
                    role,
                    ident.ips,
                    ident.reads,
                    ident.writes,
                    [],
                    AGENTS["task"].format(v=1),
                    parent=ident,
                )
                self.fleet.identities.append(task)
                for _ in range(self.rng.randint(4, 12)):
                    t += self.rng.uniform(3, 30)
                    if self.rng.random() < 0.2:
                        self.emit(task, t, "write", self.rng.choice(task.writes))
                    else:
                        self.emit(task, t, self.rng.choice(("read", "read", "list")), self.pick(task.reads))

    def _task(self, ident: Identity) -> None:
        """Per-task agents are made (and their requests generated) by their runner."""

    def _report(self, ident: Identity) -> None:
        for day in range(self.cfg.days):
            for hour in range(24):
                t = self.local(ident, day, hour + 5 / 60) + self.rng.uniform(0, 30)
                for res in ident.reads[: self.rng.randint(3, 4)]:
                    t += self.rng.uniform(0.5, 3)
                    self.emit(ident, t, "read", res)

    def _ci(self, ident: Identity) -> None:
        key_target = Resource("ServiceAccount", f"{ident.team.name}-api", ident.team.name)
        for day in range(self.cfg.days):
            if self.weekday(ident, day):
                for _ in range(_poisson(self.rng, 4)):
                    t = self.local(ident, day, self.rng.uniform(9, 18))
                    steps = [("read", ident.reads[0]), ("list", ident.writes[0]), ("write", ident.writes[0])]
                    steps += [("invoke", self.rng.choice(ident.tools))]
                    steps += [("write", self.rng.choice(ident.writes[1:]))] * self.rng.randint(0, 2)
                    steps += [("read", ident.reads[1])]
                    for action, res in steps:
                        t += self.rng.uniform(3, 15)
                        self.emit(ident, t, action, res)
            if day % 7 == 1:  # Tuesday: rotate the service's key and re-grant the artifact bucket
                t = self.local(ident, day, 10.5) + self.rng.uniform(0, 1800)
                for action, res in (
                    ("read", ident.reads[2]),
                    ("create_key", key_target),
                    ("write", ident.writes[0]),
                    ("grant", ident.writes[0]),
                ):
                    t += self.rng.uniform(5, 20)
                    self.emit(ident, t, action, res)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def build_fleet(config: FleetConfig | None = None) -> Fleet:
    """The world and its benign traffic for ``config`` (deterministic for a seed)."""
    cfg = config or FleetConfig()
    rng = random.Random(cfg.seed)
    fleet = _world(cfg, rng)
    for ident in fleet.identities:
        if ident.archetype in ("copilot", "analyst") and ident.team.index % 2 == 1:
            ident.trip_region = rng.choice(FAR_REGIONS[ident.team.continent])
    movers = [i for i in fleet.identities if i.archetype == "sync"]
    movers[min(6, len(movers) - 1)].relocates = True
    gen = _Gen(fleet, rng)
    for ident in fleet.identities:
        gen.run(ident)
    end = cfg.t0 + cfg.days * DAY
    fleet.events = sorted((e for e in gen.out if cfg.t0 <= e.t < end), key=lambda e: (e.t, e.seq))
    _measure_rates(fleet)
    return fleet


def _measure_rates(fleet: Fleet) -> None:
    """Each identity's mean requests per active hour and per active minute during learning (what
    '40 times the usual rate' is relative to)."""
    hours: dict[tuple[str, str], set[int]] = {}
    minutes: dict[tuple[str, str], set[int]] = {}
    counts: dict[tuple[str, str], int] = {}
    end = fleet.config.learning_end
    for e in fleet.events:
        if e.t >= end:
            break
        uid = e.identity.uid
        hours.setdefault(uid, set()).add(int(e.t // HOUR))
        minutes.setdefault(uid, set()).add(int(e.t // 60))
        counts[uid] = counts.get(uid, 0) + 1
    for ident in fleet.identities:
        n = counts.get(ident.uid, 0)
        active_h = len(hours.get(ident.uid, ()))
        active_m = len(minutes.get(ident.uid, ()))
        ident.rate_per_hour = n / active_h if active_h else 0.0
        ident.rate_per_minute = n / active_m if active_m else 0.0
