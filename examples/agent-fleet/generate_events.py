#!/usr/bin/env python3
"""Generate ``events.jsonl``: one day of the agent fleet's traffic, as AuthZEN requests.

Each output line is one AuthZEN evaluation request, with the event time in
``context.time`` (RFC 3339, UTC) and the UTC hour in ``context.hour``:

    {"subject":{"type":"Agent","id":"refund-assistant"},"action":{"name":"invoke"},
     "resource":{"type":"McpTool","id":"stripe-refund-prod"},
     "context":{"time":"2026-11-27T09:14:03Z","ip":"10.20.17.4","region":"eu-west-1","hour":9}}

The day is Friday 2026-11-27 (UTC). Every identity has its own rhythm (office-hours
sessions, steady service traffic, a nightly batch window, on-call incidents, an hourly
cron) and its own mix of tasks; a few scripted episodes (a privilege-escalation chain,
a table sweep, a leaked key, agents retrying a denied write) sit on top. Nothing here decides anything: the policies
do, when the file is replayed.

The output is deterministic: the same seed gives the same file, byte for byte.

    python generate_events.py                 # rewrites events.jsonl next to this file
    python generate_events.py --out /tmp/e.jsonl
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
SEED = 20261127
DAY = datetime(2026, 11, 27, tzinfo=UTC)
DAY_SECONDS = 24 * 3600

# Which resource types each action applies to (mirrors schema.cedarschema).
APPLIES_TO = {
    "read": ("Database", "Bucket", "ApiEndpoint", "Secret"),
    "list": ("Database", "Bucket", "McpTool", "Secret"),
    "write": ("Database", "Bucket", "ApiEndpoint", "Secret"),
    "delete": ("Database", "Bucket", "Secret"),
    "invoke": ("ApiEndpoint", "McpTool"),
    "grant": ("Database", "Bucket", "ApiEndpoint", "McpTool", "Secret"),
    "create_key": ("ServiceAccount",),
    "assume_role": ("ServiceAccount",),
}

FAILOVER_REGION = {"eu-west-1": "eu-central-1", "us-east-1": "us-west-2"}

# A failover drill: from 13:00 to 13:45 UTC the online services homed in eu-west-1 run
# from eu-central-1 (and their prod writes meet forbid-prod-change-outside-home-region).
DRILL = (13 * 3600, 13 * 3600 + 45 * 60, "eu-west-1")

# Addresses outside every allowed_cidr: a developer VPN, a stray cluster, the internet.
STRAY_IPS = ("172.16.4.21", "172.16.9.130", "10.99.3.17", "203.0.113.45", "198.51.100.23")

# ---------------------------------------------------------------------------- rhythms
# Relative weight of each UTC hour, 00 .. 23.
# fmt: off
OFFICE_EU = (0, 0, 0, 0, 0, 0, 0.3, 1, 3, 5, 5, 5, 3, 4, 5, 5, 4, 3, 1.5, 0.8, 0.3, 0.15, 0.05, 0)
# Europe's afternoon plus the US East morning (growth works with both).
ATLANTIC = (0, 0, 0, 0, 0, 0, 0, 0, 0.3, 1, 2, 3, 4, 5, 5, 5, 5, 4, 3, 2, 1, 0.4, 0.2, 0.1)
# US East office hours, 08:00-20:00 local = 13:00-01:00 UTC (00:xx belongs to this day).
OFFICE_US = (0.6, 0.2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.3, 1.5, 4, 5, 5, 4, 4, 5, 5, 4, 3, 1.5)
# Customer-facing services: never idle, busiest in European daytime.
ALWAYS_ON = (1, 0.8, 0.7, 0.7, 0.8, 1, 1.5, 2.5, 3.5, 4, 4, 4, 3.5, 4, 4, 4, 3.5, 3, 2.5, 2, 1.8, 1.5, 1.3, 1.1)
# fmt: on


def _hour(rng: random.Random, weights: Sequence[float]) -> int:
    return rng.choices(range(24), weights=weights)[0]


@dataclass(frozen=True)
class Sessions:
    """Interactive work: sessions of a few quick calls; session starts follow `weights`."""

    weights: Sequence[float]
    calls: tuple[int, int] = (4, 18)
    gap: tuple[int, int] = (3, 45)

    def times(self, rng: random.Random, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            t = _hour(rng, self.weights) * 3600 + rng.randrange(3600)
            for _ in range(min(rng.randint(*self.calls), n - len(out))):
                out.append(t % DAY_SECONDS)
                t += rng.randint(*self.gap)
        return out


@dataclass(frozen=True)
class Steady:
    """Independent calls (an online service); each call's hour follows `weights`."""

    weights: Sequence[float]

    def times(self, rng: random.Random, n: int) -> list[int]:
        return [_hour(rng, self.weights) * 3600 + rng.randrange(3600) for _ in range(n)]


@dataclass(frozen=True)
class Windows:
    """Batch work spread over fixed windows: (start hour, end hour, share of the calls)."""

    windows: tuple[tuple[float, float, float], ...]

    def times(self, rng: random.Random, n: int) -> list[int]:
        out: list[int] = []
        for i, (start, end, share) in enumerate(self.windows):
            k = n - len(out) if i == len(self.windows) - 1 else round(n * share)
            out += [int(start * 3600) + rng.randrange(int((end - start) * 3600)) for _ in range(k)]
        return out


@dataclass(frozen=True)
class Incidents:
    """On-call: bursts of calls after each page ("HH:MM"), each lasting up to `minutes`."""

    pages: tuple[str, ...]
    minutes: int = 30

    def times(self, rng: random.Random, n: int) -> list[int]:
        starts = [int(p[:2]) * 3600 + int(p[3:]) * 60 for p in self.pages]
        return [starts[i % len(starts)] + rng.randrange(self.minutes * 60) for i in range(n)]


@dataclass(frozen=True)
class Hourly:
    """A cron job: every hour at `minute`, the calls follow each other a few seconds apart."""

    minute: int

    def times(self, rng: random.Random, n: int) -> list[int]:
        out: list[int] = []
        for h in range(24):
            t = h * 3600 + self.minute * 60
            for _ in range(n // 24 + (1 if h < n % 24 else 0)):
                out.append(t)
                t += rng.randint(1, 4)
        return out


Rhythm = Sessions | Steady | Windows | Incidents | Hourly

# ---------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Identity:
    type: str
    id: str
    team: str
    home_region: str
    allowed_cidr: str


@dataclass(frozen=True)
class Resource:
    type: str
    id: str
    team: str
    env: str
    tags: tuple[str, ...]

    @property
    def ref(self) -> str:
        return f"{self.type}::{self.id}"


class World:
    """The identities and resources of the workspace, read from entities/*.json."""

    def __init__(self, entities_dir: Path) -> None:
        self.identities: dict[str, Identity] = {}
        self.resources: dict[str, Resource] = {}
        for path in sorted(entities_dir.glob("*.json")):
            for e in json.loads(path.read_text()):
                kind, eid, attrs = e["uid"]["type"], e["uid"]["id"], e["attrs"]
                if kind in ("Agent", "ServiceAccount"):
                    self.identities[eid] = Identity(
                        kind,
                        eid,
                        attrs["team"]["id"],
                        attrs["home_region"],
                        attrs["allowed_cidr"]["__extn"]["arg"],
                    )
                elif "owner_team" in attrs:
                    r = Resource(kind, eid, attrs["owner_team"]["id"], attrs["env"], tuple(attrs["tags"]))
                    self.resources[r.ref] = r

    def select(
        self,
        types: Iterable[str],
        env: str | None = None,
        team: str | None = None,
        not_team: str | None = None,
    ) -> tuple[str, ...]:
        """Resource refs ("Type::id") of the given types, optionally filtered."""
        types = tuple(types)
        return tuple(
            r.ref
            for r in self.resources.values()
            if r.type in types
            and (env is None or r.env == env)
            and (team is None or r.team == team)
            and (not_team is None or r.team != not_team)
        )

    def service_accounts(self, team: str | None = None) -> tuple[str, ...]:
        return tuple(
            f"ServiceAccount::{i.id}"
            for i in self.identities.values()
            if i.type == "ServiceAccount" and (team is None or i.team == team)
        )


# -------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    """`weight` of this identity's calls: `action` on one of `refs` ("Type::id", or a space-separated
    string of them). `flags` are optional boolean context attributes, (name, P(present and true));
    when not drawn they are left out, as a PEP would."""

    weight: float
    action: str
    refs: str | tuple[str, ...]
    flags: tuple[tuple[str, float], ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.refs.split()) if isinstance(self.refs, str) else self.refs


@dataclass(frozen=True)
class Profile:
    rhythm: Rhythm
    volume: int  # calls in the day
    tasks: tuple[Task, ...]
    stray_ip: float = 0.0  # share of calls from outside allowed_cidr
    wander: float = 0.0  # share of reads aimed at another team's resource instead
    failover: float = 0.0  # share of calls from the failover region
    moved: tuple[int, str] | None = None  # (UTC hour, cidr): redeployed onto an unregistered subnet


def profiles(w: World) -> dict[str, Profile]:
    """Who does what, when. Keys are identity ids; every identity in entities/ has a profile."""
    data_prod = ("Database", "Bucket")
    t = Task
    return {
        # ------------------------------------------------------------------ platform
        "ci-deployer": Profile(
            Sessions(OFFICE_EU, calls=(8, 30), gap=(2, 20)),
            900,
            (
                t(30, "read", "Database::service-registry-prod Database::ci-metadata-prod"),
                t(
                    25,
                    "write",
                    "Bucket::build-artifacts-prod Bucket::build-artifacts-staging Database::ci-metadata-prod",
                ),
                t(20, "invoke", "ApiEndpoint::deploy-api-prod ApiEndpoint::deploy-api-staging"),
                t(10, "list", "Bucket::build-artifacts-prod Bucket::build-artifacts-staging"),
                t(6, "read", "Secret::registry-token-prod Secret::ci-signing-key-prod"),
                t(3, "delete", "Bucket::build-artifacts-staging Bucket::build-artifacts-dev"),
                t(2, "delete", "Bucket::build-artifacts-prod", (("approved", 0.7),)),
            ),
            failover=0.01,
        ),
        "terraform-runner": Profile(
            Sessions(OFFICE_EU, calls=(10, 40), gap=(1, 8)),
            300,
            (
                t(30, "read", "Bucket::terraform-state-prod Bucket::terraform-state-staging"),
                t(20, "write", "Bucket::terraform-state-prod Bucket::terraform-state-staging"),
                t(15, "read", "Secret::cloud-admin-credentials-prod Secret::cloud-admin-credentials-staging"),
                t(10, "write", "Database::service-registry-prod Database::feature-flags-prod"),
                t(5, "assume_role", "ServiceAccount::ci-deployer ServiceAccount::backup-nightly"),
            ),
        ),
        "iam-provisioner": Profile(
            Steady(OFFICE_EU),
            250,
            (
                t(50, "grant", w.select(("Database", "Bucket", "McpTool", "ApiEndpoint"), env="prod")),
                t(15, "grant", w.select(("Secret",), env="staging")),
                t(20, "create_key", w.service_accounts()),
                t(15, "read", "Secret::cloud-admin-credentials-prod"),
            ),
        ),
        "backup-nightly": Profile(
            # the last run often overruns 05:00, when the backup permit ends
            Windows(((0.25, 4.0, 0.9), (4.0, 5.33, 0.1))),
            500,
            (
                t(45, "read", w.select(data_prod, env="prod")),
                t(15, "list", w.select(data_prod, env="prod")),
                t(40, "write", "Bucket::db-backups-prod"),
            ),
        ),
        "cert-rotator": Profile(
            Windows(((2.0, 2.5, 1.0),)),
            60,
            (
                t(50, "read", w.select(("Secret",), team="platform")),
                t(50, "write", w.select(("Secret",), team="platform")),
            ),
        ),
        "platform-ops-copilot": Profile(
            Sessions(OFFICE_EU),
            350,
            (
                t(25, "read", w.select(("Database", "Bucket", "ApiEndpoint"), team="platform")),
                t(15, "list", w.select(("Database", "Bucket", "McpTool"), team="platform")),
                t(15, "invoke", "McpTool::grafana-query-prod McpTool::k8s-rollout-staging"),
                t(20, "grant", w.select(("Database", "Bucket", "McpTool"), env="staging"), (("mfa", 0.85),)),
                t(6, "grant", "Database::ledger-prod Bucket::audit-logs-prod", (("mfa", 0.85),)),
                t(8, "create_key", w.service_accounts("platform"), (("mfa", 0.85),)),
            ),
            stray_ip=0.005,
        ),
        "oncall-runbook-agent": Profile(
            Incidents(("03:10", "11:42", "17:55", "22:31"), minutes=35),
            140,
            (
                t(25, "invoke", "McpTool::pagerduty-prod McpTool::grafana-query-prod"),
                t(15, "invoke", "McpTool::k8s-rollout-prod"),
                t(20, "read", "Database::service-registry-prod Database::feature-flags-prod"),
                t(10, "write", "Database::feature-flags-prod"),
                t(5, "invoke", "McpTool::isolate-host-prod"),
                t(3, "assume_role", "ServiceAccount::ci-deployer"),
            ),
        ),
        "pr-review-agent": Profile(
            Sessions(OFFICE_EU),
            500,
            (
                t(
                    30,
                    "read",
                    "Database::ci-metadata-prod Bucket::build-artifacts-prod Bucket::build-artifacts-staging",
                ),
                t(20, "invoke", "McpTool::grafana-query-prod ApiEndpoint::service-catalog-api-prod"),
                t(15, "read", "Database::feature-flags-prod Database::feature-flags-staging"),
                t(5, "list", "Bucket::build-artifacts-prod"),
                t(3, "invoke", "ApiEndpoint::deploy-api-staging"),
            ),
            wander=0.06,
        ),
        # ------------------------------------------------------------------ payments
        "payments-api": Profile(
            Steady(ALWAYS_ON),
            1000,
            (
                t(35, "read", "Database::ledger-prod Database::invoices-prod Database::payouts-prod"),
                t(30, "write", "Database::ledger-prod Database::invoices-prod Bucket::receipts-prod"),
                t(20, "invoke", "ApiEndpoint::charges-api-prod ApiEndpoint::refunds-api-prod"),
                t(5, "read", "Secret::stripe-api-key-prod Secret::ledger-db-password-prod"),
            ),
            failover=0.01,
        ),
        "billing-etl": Profile(
            Windows(((1.0, 3.5, 1.0),)),
            600,
            (
                t(40, "read", "Database::ledger-prod Database::invoices-prod Database::payouts-prod"),
                t(10, "list", "Database::ledger-prod Bucket::settlement-reports-prod"),
                t(30, "write", "Bucket::settlement-reports-prod Database::invoices-prod"),
                t(5, "read", "Secret::ledger-db-password-prod"),
                t(2, "read", "Database::warehouse-prod"),
            ),
        ),
        "ledger-reconciler": Profile(
            # the nightly run, plus an intraday run at noon that no policy foresaw
            Windows(((3.0, 4.0, 0.8), (12.0, 12.5, 0.2))),
            450,
            (
                t(50, "read", "Database::ledger-prod Database::payouts-prod Bucket::settlement-reports-prod"),
                t(30, "write", "Database::ledger-prod"),
                t(5, "delete", "Database::ledger-staging"),
            ),
        ),
        "invoice-renderer": Profile(
            Steady(ALWAYS_ON),
            500,
            (
                t(50, "read", "Database::invoices-prod"),
                t(40, "write", "Bucket::receipts-prod"),
                t(6, "read", "Database::ledger-prod"),
            ),
        ),
        "refund-assistant": Profile(
            Sessions(OFFICE_EU),
            600,
            (
                t(30, "read", "Database::invoices-prod Bucket::receipts-prod"),
                t(
                    20,
                    "invoke",
                    "McpTool::stripe-refund-prod McpTool::invoice-lookup-prod ApiEndpoint::refunds-api-prod",
                ),
                t(8, "write", "Database::invoices-staging"),
                t(12, "write", "Database::invoices-prod"),
                t(3, "read", "Database::ledger-prod"),
            ),
            stray_ip=0.005,
            wander=0.07,
        ),
        "fraud-review-agent": Profile(
            Sessions(OFFICE_EU),
            500,
            (
                t(
                    40,
                    "read",
                    "Database::ledger-prod Database::payouts-prod Bucket::chargeback-evidence-prod",
                ),
                t(15, "read", "Database::invoices-prod"),
                t(15, "invoke", "McpTool::invoice-lookup-prod"),
                t(2, "invoke", "McpTool::stripe-refund-prod"),
                t(2, "read", "Database::crm-prod"),
            ),
            wander=0.04,
        ),
        "dunning-agent": Profile(
            Sessions(OFFICE_EU),
            350,
            (
                t(35, "read", "Database::invoices-prod"),
                t(20, "invoke", "McpTool::invoice-lookup-prod"),
                t(20, "invoke", "ApiEndpoint::email-send-api-prod"),
                t(5, "write", "Database::invoices-staging"),
            ),
            wander=0.04,
        ),
        # ------------------------------------------------------------------- support
        "zendesk-sync": Profile(
            Steady(ALWAYS_ON),
            700,
            (
                t(35, "write", "Database::tickets-prod Bucket::ticket-attachments-prod"),
                t(35, "read", "Database::tickets-prod"),
                t(20, "invoke", "ApiEndpoint::zendesk-webhook-prod"),
                t(3, "read", "Secret::zendesk-token-prod"),
            ),
        ),
        "csat-exporter": Profile(
            Windows(((2.0, 2.75, 1.0),)),
            150,
            (
                t(40, "read", "Database::tickets-prod ApiEndpoint::csat-api-prod"),
                t(10, "list", "Bucket::support-transcripts-prod"),
                t(20, "write", "Bucket::support-transcripts-staging"),
            ),
        ),
        "support-triage-bot": Profile(
            Sessions(OFFICE_EU, calls=(3, 10), gap=(2, 30)),
            1000,
            (
                t(40, "read", "Database::tickets-prod Database::knowledge-base-prod Database::macros-prod"),
                t(25, "invoke", "McpTool::kb-search-prod McpTool::customer-lookup-prod"),
                t(8, "invoke", "McpTool::ticket-update-prod"),
                t(2, "read", "Bucket::call-recordings-prod"),
            ),
            stray_ip=0.004,
            wander=0.07,
        ),
        "support-reply-drafter": Profile(
            Sessions(OFFICE_EU),
            700,
            (
                t(35, "read", "Database::tickets-prod Database::knowledge-base-prod Database::macros-prod"),
                t(25, "invoke", "McpTool::ticket-update-prod McpTool::kb-search-prod"),
                t(12, "write", "Database::tickets-prod"),
                t(5, "write", "Database::macros-staging"),
            ),
        ),
        "escalation-summarizer": Profile(
            Sessions(OFFICE_EU),
            450,
            (
                t(40, "read", "Database::tickets-prod Bucket::support-transcripts-prod"),
                t(10, "list", "Bucket::support-transcripts-prod Bucket::ticket-attachments-prod"),
                t(15, "invoke", "McpTool::customer-lookup-prod"),
                t(2, "read", "Bucket::call-recordings-prod"),
            ),
            wander=0.04,
        ),
        "support-us-night-shift": Profile(
            Sessions(OFFICE_US),
            800,
            (
                t(40, "read", "Database::tickets-prod Database::knowledge-base-prod"),
                t(45, "invoke", "McpTool::ticket-update-prod McpTool::kb-search-prod"),
                t(5, "write", "Database::macros-staging"),
            ),
        ),
        # ---------------------------------------------------------------------- data
        "warehouse-loader": Profile(
            Windows(((1.0, 4.0, 1.0),)),
            600,
            (
                t(35, "read", "Bucket::raw-events-prod Bucket::product-events-prod"),
                t(10, "list", "Bucket::raw-events-prod"),
                t(40, "write", "Database::warehouse-prod Database::analytics-marts-prod"),
                t(3, "read", "Secret::warehouse-credentials-prod"),
            ),
        ),
        "dbt-runner": Profile(
            # transformations start at 03:00; the slow tail runs past 05:00
            Windows(((3.0, 5.0, 0.93), (5.0, 5.5, 0.07))),
            600,
            (
                t(40, "read", "Database::warehouse-prod Database::analytics-marts-prod"),
                t(35, "write", "Database::analytics-marts-prod Database::ml-training-sets-prod"),
                t(10, "write", "Database::warehouse-staging"),
            ),
        ),
        "feature-store-sync": Profile(
            Steady(ALWAYS_ON),
            550,
            (
                t(40, "read", "Database::feature-store-prod Bucket::ml-models-prod"),
                t(40, "write", "Database::feature-store-prod"),
            ),
        ),
        "ml-training-pipeline": Profile(
            Windows(((0.0, 3.0, 1.0),)),
            400,
            (
                t(45, "read", "Database::ml-training-sets-prod Database::feature-store-prod"),
                t(25, "write", "Bucket::ml-models-prod"),
                t(10, "write", "Bucket::ml-models-staging"),
            ),
        ),
        "legacy-report-cron": Profile(
            Hourly(minute=5),
            288,
            (
                t(60, "read", "Database::warehouse-prod"),
                t(40, "write", "Bucket::data-exports-prod"),
            ),
        ),
        "analytics-sql-agent": Profile(
            Sessions(OFFICE_EU),
            850,
            (
                t(
                    35,
                    "read",
                    "Database::analytics-marts-prod Bucket::product-events-prod Database::experiments-prod",
                ),
                t(25, "invoke", "McpTool::sql-runner-prod ApiEndpoint::metrics-api-prod"),
                t(4, "read", "Database::warehouse-prod"),
                t(3, "read", "Database::crm-prod Database::invoices-prod"),
            ),
            wander=0.15,
        ),
        "data-quality-agent": Profile(
            Sessions(OFFICE_EU),
            450,
            (
                t(
                    30,
                    "read",
                    "Database::warehouse-prod Bucket::raw-events-prod Database::analytics-marts-prod",
                ),
                t(10, "list", "Database::warehouse-prod Bucket::raw-events-prod"),
                t(10, "write", "Database::warehouse-staging"),
                t(10, "invoke", "McpTool::notebook-exec-staging"),
                t(10, "write", "Database::warehouse-prod"),
            ),
            wander=0.07,
        ),
        # -------------------------------------------------------------------- growth
        "email-sender": Profile(
            Steady(ALWAYS_ON),
            600,
            (
                t(40, "invoke", "ApiEndpoint::email-send-api-prod"),
                t(25, "read", "Bucket::email-lists-prod Database::campaigns-prod"),
                t(15, "write", "Database::campaigns-prod"),
            ),
            failover=0.01,
        ),
        "crm-sync": Profile(
            Steady(ALWAYS_ON),
            450,
            (
                t(35, "read", "Database::crm-prod"),
                t(35, "write", "Database::crm-prod"),
                t(20, "invoke", "McpTool::hubspot-prod"),
            ),
        ),
        "attribution-etl": Profile(
            # scheduled at 01:30 America/New_York, i.e. 06:30 UTC: after the nightly write window
            Windows(((6.5, 8.5, 1.0),)),
            450,
            (
                t(40, "read", "Bucket::product-events-prod Database::campaigns-prod Database::crm-prod"),
                t(30, "write", "Database::experiments-prod Database::campaigns-prod"),
            ),
        ),
        "campaign-copilot": Profile(
            Sessions(OFFICE_US),
            550,
            (
                t(
                    30,
                    "read",
                    "Database::campaigns-prod Database::experiments-prod Bucket::creative-assets-prod",
                ),
                t(15, "write", "Database::campaigns-staging Bucket::landing-pages-staging"),
                t(15, "invoke", "McpTool::cms-publish-staging McpTool::hubspot-staging"),
                t(8, "write", "Database::campaigns-prod"),
                t(2, "read", "Database::crm-prod"),
            ),
            wander=0.07,
        ),
        "seo-content-agent": Profile(
            Sessions(OFFICE_US),
            400,
            (
                t(30, "invoke", "McpTool::cms-publish-prod McpTool::web-scraper-dev"),
                t(20, "read", "Bucket::creative-assets-prod Bucket::landing-pages-prod"),
                t(15, "write", "Bucket::landing-pages-staging Bucket::landing-pages-dev"),
                t(6, "write", "Bucket::landing-pages-prod"),
            ),
        ),
        "experiment-analyst": Profile(
            Sessions(ATLANTIC),
            400,
            (
                t(
                    40,
                    "read",
                    "Database::experiments-prod Database::analytics-marts-prod ApiEndpoint::metrics-api-prod",
                ),
                t(10, "list", "Database::experiments-prod Database::campaigns-prod"),
                t(3, "invoke", "McpTool::sql-runner-prod"),
            ),
            wander=0.07,
            # moved to a new agent runtime at 15:00; nobody updated its allowed_cidr
            moved=(15, "10.50.40.0/24"),
        ),
        "growth-scraper-poc": Profile(
            Sessions(ATLANTIC, calls=(5, 15), gap=(1, 5)),
            120,
            (t(100, "invoke", "McpTool::web-scraper-dev"),),
        ),
        # ------------------------------------------------------------------ security
        "siem-forwarder": Profile(
            Steady(ALWAYS_ON),
            700,
            (
                t(60, "write", "Database::siem-events-prod Bucket::audit-logs-prod"),
                t(3, "read", "Secret::siem-ingest-token-prod"),
            ),
        ),
        "vuln-scanner": Profile(
            Windows(((0.0, 2.0, 1.0),)),
            400,
            (
                t(45, "list", w.select(("Database", "Bucket", "McpTool"), env="prod")),
                t(35, "read", w.select(("Database", "Bucket", "ApiEndpoint"), env="prod")),
                t(20, "write", "Database::vuln-findings-prod"),
            ),
        ),
        "secrets-rotator": Profile(
            Windows(((4.0, 4.5, 1.0),)),
            60,
            (
                t(45, "read", w.select(("Secret",), team="security")),
                t(45, "write", w.select(("Secret",), team="security")),
                t(3, "write", "Secret::stripe-api-key-prod"),
            ),
        ),
        "threat-hunter-agent": Profile(
            Sessions(OFFICE_EU),
            450,
            (
                t(35, "read", "Database::siem-events-prod Bucket::audit-logs-prod"),
                t(20, "invoke", "McpTool::threat-intel-lookup-prod ApiEndpoint::edr-api-prod"),
                t(15, "read", w.select(data_prod, env="prod", not_team="security")),
                t(2, "invoke", "McpTool::isolate-host-prod"),
            ),
        ),
        "access-reviewer-agent": Profile(
            Sessions(OFFICE_EU),
            300,
            (
                t(25, "read", "Database::access-reviews-prod"),
                t(20, "invoke", "McpTool::access-review-prod"),
                t(20, "list", w.select(data_prod, env="prod", not_team="security")),
                t(2, "write", "Database::access-reviews-prod"),
            ),
        ),
    }


# ----------------------------------------------------------------------- episodes


class Episode(NamedTuple):
    """A scripted sequence on top of the routine traffic."""

    who: str  # identity id
    start: str  # "HH:MM:SS" UTC
    max_gap: int  # seconds between steps, drawn from 1..max_gap
    region: str | None  # None: the identity's home region
    ip: str | None  # None: one of the identity's usual addresses
    steps: list[tuple[str, str]]  # (action, "Type::id")


def episodes(w: World) -> list[Episode]:
    data = w.select(("Database", "Bucket", "Secret"), env="prod")
    escalation = [
        ("read", "Database::crm-prod"),
        ("list", "Bucket::email-lists-prod"),
        ("read", "Bucket::email-lists-prod"),
        ("write", "Database::crm-prod"),
        ("grant", "Database::crm-prod"),
        ("create_key", "ServiceAccount::crm-sync"),
        ("assume_role", "ServiceAccount::crm-sync"),
    ]
    return [
        # the email-sender key leaked: recon from outside, listing then reading everything in prod
        Episode(
            "email-sender",
            "04:30:12",
            4,
            "ap-southeast-1",
            "198.51.100.23",
            [("list", r) for r in data] + [("read", r) for r in data],
        ),
        # an agent loops on a denied prod write, retrying every few seconds for a quarter of an hour
        Episode("refund-assistant", "10:02:41", 4, None, None, [("write", "Database::invoices-prod")] * 300),
        # an analytics agent reads every prod database and bucket within a few minutes
        Episode(
            "analytics-sql-agent",
            "14:22:00",
            3,
            None,
            None,
            [("read", r) for r in w.select(("Database", "Bucket"), env="prod")],
        ),
        Episode(
            "support-reply-drafter", "15:37:09", 5, None, None, [("write", "Database::tickets-prod")] * 220
        ),
        # an assistant climbs read -> write -> grant -> create_key -> assume_role, late, from far away
        Episode("campaign-copilot", "23:41:07", 20, "ap-southeast-1", None, escalation),
    ]


# ------------------------------------------------------------------------ output


def _ip_pool(rng: random.Random, cidr: str) -> list[str]:
    net = ipaddress.ip_network(cidr)
    return [str(net[rng.randrange(1, net.num_addresses - 1)]) for _ in range(rng.randint(1, 4))]


def _request(ident: Identity, action: str, ref: str, second: int, ip: str, region: str) -> dict:
    if not 0 <= second < DAY_SECONDS:
        raise ValueError(f"{ident.id}: call at second {second} falls outside the day")
    rtype, rid = ref.split("::", 1)
    ts = DAY + timedelta(seconds=second)
    return {
        "subject": {"type": ident.type, "id": ident.id},
        "action": {"name": action},
        "resource": {"type": rtype, "id": rid},
        "context": {"time": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "ip": ip, "region": region, "hour": ts.hour},
    }


def _check(w: World, who: str, action: str, ref: str) -> None:
    rtype = ref.split("::", 1)[0]
    known = ref in w.resources or (rtype == "ServiceAccount" and ref.split("::", 1)[1] in w.identities)
    if not known or rtype not in APPLIES_TO[action]:
        raise ValueError(f"{who}: {action} on {ref} is not a valid request for this workspace")


def generate(entities_dir: Path, seed: int = SEED) -> list[str]:
    """The day's requests, as JSON lines (without newlines), sorted by time."""
    w = World(entities_dir)
    plan = profiles(w)
    missing = set(w.identities) - set(plan)
    if missing:
        raise ValueError(f"identities without a profile: {sorted(missing)}")

    events: list[tuple[int, int, dict]] = []

    def add(second: int, request: dict) -> None:
        events.append((second, len(events), request))

    for who, p in plan.items():
        ident = w.identities[who]
        rng = random.Random(f"{seed}/{who}")
        for task in p.tasks:
            for ref in task.targets:
                _check(w, who, task.action, ref)
        pool = _ip_pool(rng, ident.allowed_cidr)
        moved_pool = _ip_pool(rng, p.moved[1]) if p.moved else []
        weights = [task.weight for task in p.tasks]
        for second in sorted(p.rhythm.times(rng, p.volume)):
            task = rng.choices(p.tasks, weights=weights)[0]
            ref = rng.choice(task.targets)
            if task.action in ("read", "list") and rng.random() < p.wander:
                elsewhere = w.select(APPLIES_TO[task.action], not_team=ident.team)
                ref = rng.choice([r for r in elsewhere if not r.startswith("Secret::")])
            ip = rng.choice(STRAY_IPS) if rng.random() < p.stray_ip else rng.choice(pool)
            if p.moved and second >= p.moved[0] * 3600:
                ip = rng.choice(moved_pool)
            region = ident.home_region
            drill = isinstance(p.rhythm, Steady) and DRILL[0] <= second < DRILL[1] and region == DRILL[2]
            if drill or rng.random() < p.failover:
                region = FAILOVER_REGION[region]
            request = _request(ident, task.action, ref, second, ip, region)
            for name, probability in task.flags:
                if rng.random() < probability:
                    request["context"][name] = True
            add(second, request)

    for ep in episodes(w):
        ident = w.identities[ep.who]
        rng = random.Random(f"{seed}/episode/{ep.who}/{ep.start}")
        pool = _ip_pool(random.Random(f"{seed}/{ep.who}"), ident.allowed_cidr)  # its usual addresses
        hh, mm, ss = (int(x) for x in ep.start.split(":"))
        second = hh * 3600 + mm * 60 + ss
        for action, ref in ep.steps:
            _check(w, ep.who, action, ref)
            ip = ep.ip or rng.choice(pool)
            add(second, _request(ident, action, ref, second, ip, ep.region or ident.home_region))
            second += rng.randint(1, ep.max_gap)

    events.sort(key=lambda e: (e[0], e[1]))
    return [json.dumps(request, separators=(",", ":")) for _, _, request in events]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "events.jsonl", help="output file")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    parser.add_argument("--entities", type=Path, default=HERE / "entities", help="entities folder")
    args = parser.parse_args(argv)
    lines = generate(args.entities, args.seed)
    with args.out.open("w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} requests to {args.out}")


if __name__ == "__main__":
    main()
