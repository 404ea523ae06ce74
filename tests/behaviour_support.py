"""Shared pieces of the behaviour, approvals, quarantine and store tests: a small workspace,
requests, and a driver that gives identities a habit before a test does something unusual."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import vigil
from vigil.audit import MemorySink

T0 = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
PERMIT_ALL = '@id("permit-all")\npermit (principal, action, resource);\n'

TEAMS = ("payments", "data", "growth")
AGENTS = tuple(f"{team}-agent-{i}" for team in TEAMS for i in range(6))
TABLES = {team: tuple(f"{team}-table-{i}" for i in range(8)) for team in TEAMS}


def entities() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {"uid": {"type": "Team", "id": t}, "attrs": {}, "parents": []} for t in TEAMS
    ]
    items += [{"uid": {"type": "Environment", "id": e}, "attrs": {}, "parents": []} for e in ("prod", "dev")]
    for a in AGENTS:
        team = a.split("-")[0]
        items.append(
            {
                "uid": {"type": "Agent", "id": a},
                "attrs": {"team": team},
                "parents": [{"type": "Team", "id": team}],
            }
        )
    for team, tables in TABLES.items():
        for i, name in enumerate(tables):
            env = "prod" if i < 6 else "dev"
            items.append(
                {
                    "uid": {"type": "Database", "id": name},
                    "attrs": {"team": team},
                    "parents": [{"type": "Environment", "id": env}, {"type": "Team", "id": team}],
                }
            )
    items.append(
        {
            "uid": {"type": "Secret", "id": "payments-key"},
            "attrs": {},
            "parents": [{"type": "Team", "id": "payments"}],
        }
    )
    return items


def write_workspace(
    root: Path,
    behaviour: dict[str, Any] | None = None,
    *,
    policies: str = PERMIT_ALL,
    store: str = "memory",
    extra: str = "",
) -> Path:
    """A schema-free workspace: permit-all (by default), six agents, teams as segments."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "policies").mkdir(exist_ok=True)
    (root / "entities").mkdir(exist_ok=True)
    (root / "policies" / "p.cedar").write_text(policies)
    (root / "entities" / "e.json").write_text(json.dumps(entities()))
    settings = {
        "mode": "enforce",
        "segments": ["Team"],
        "learning_days": 0,
        "learning_requests": 50,
        **(behaviour or {}),
    }
    lines = ["[behaviour]"] + [f"{k} = {_toml(v)}" for k, v in settings.items() if k != "weights"]
    if "weights" in settings:
        lines += ["[behaviour.weights]"] + [f"{k} = {v}" for k, v in settings["weights"].items()]
    lines += ["", "[store]", f'backend = "{store}"', "", "[audit]", 'sink = "none"', extra]
    (root / "vigil.toml").write_text("\n".join(lines) + "\n")
    return root


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return str(v)


def engine(root: Path, **options: Any) -> vigil.Engine:
    options.setdefault("audit", MemorySink())
    return vigil.Engine.from_workspace(root, **options)


def request(
    who: str,
    action: str,
    resource: str,
    when: datetime,
    *,
    rtype: str = "Database",
    ip: str | None = None,
    region: str | None = "eu-west-1",
    user_agent: str | None = "boto3/1.34",
    **context: Any,
) -> dict[str, Any]:
    team = who.split("-")[0]
    ctx: dict[str, Any] = {"time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), **context}
    ctx["ip"] = (
        ip if ip is not None else f"10.{10 + TEAMS.index(team)}.{AGENTS.index(who)}.{7 + when.minute % 5}"
    )
    if region is not None:
        ctx["region"] = region
    if user_agent is not None:
        ctx["user_agent"] = user_agent
    return {
        "subject": {"type": "Agent", "id": who},
        "action": {"name": action},
        "resource": {"type": rtype, "id": resource},
        "context": ctx,
    }


def habit(
    e: vigil.Engine,
    who: str,
    *,
    days: int = 14,
    start: datetime = T0,
    per_day: int = 30,
    hours: Iterable[int] = range(9, 17),
    actions: tuple[str, ...] = ("read",),
    tables: int = 4,
) -> datetime:
    """Office-hours habit on weekdays: ``per_day`` requests over the team's first ``tables``
    tables. Returns the time of the last request."""
    team = who.split("-")[0]
    hours = tuple(hours)
    last = start
    for d in range(days):
        day = start + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        times = sorted(
            (day + timedelta(hours=hours[k % len(hours)], minutes=(k * 7) % 50, seconds=k % 60), k)
            for k in range(per_day)
        )
        for when, k in times:
            e.decide(request(who, actions[k % len(actions)], TABLES[team][k % tables], when), now=when)
            last = max(last, when)
    return last
