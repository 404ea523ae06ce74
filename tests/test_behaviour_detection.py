"""A quick benign-vs-attack check of the detectors with default settings (seeded, ~2 s).

A small fleet learns for 14 days, then lives 10 more days with benign drift (a new table, late
work, a move to another subnet of its network, a failover to a nearby region, a busy hour); one
attack is injected per victim. Detected = the request is denied by behaviour (step-up, deny,
quarantine). The targets are the product's: attacks detected within 3 requests of their start
(20 for the volume attacks) in at least 95% of episodes, and at most 0.5% of benign requests after
learning stepped up or denied. The full evaluation (``vigil eval``) runs a larger fleet.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.behaviour_support import T0, engine, write_workspace
from vigil.store import MemoryStore

DAYS, LEARN = 24, 14
ATTACKS = ("stolen", "drift", "enumeration", "chain", "travel", "rate", "segment")
WITHIN = {"enumeration": 20, "rate": 20}


@dataclass
class Ident:
    id: str
    team: str
    kind: str  # office | service | batch
    ips: list[str]
    tables: list[str]
    actions: tuple[str, ...]
    events: list[tuple[float, dict[str, Any], str]] = field(default_factory=list)


def fleet(seed: int) -> tuple[list[Ident], list[tuple[float, dict[str, Any], str, str]]]:
    rng = random.Random(seed)
    idents = []
    for ti, team in enumerate(("payments", "data", "growth")):
        for k, kind in enumerate(("office", "office", "service", "batch", "office", "service")):
            n = 6 if kind != "service" else 4
            idents.append(
                Ident(
                    f"{team}-agent-{k}",
                    team,
                    kind,
                    [f"10.{10 + ti}.{k}.{rng.randrange(2, 250)}" for _ in range(3)],
                    [f"{team}-table-{i}" for i in rng.sample(range(12), n)],
                    ("read",) if k in (0, 3) else ("read", "read", "write", "list"),
                )
            )
    events: list[tuple[float, dict[str, Any], str, str]] = []  # (t, request, label, who)
    for ident in idents:
        for day in range(DAYS):
            base = T0 + timedelta(days=day)
            weekday = base.weekday() < 5
            if ident.kind == "office" and not weekday:
                continue
            if ident.kind == "batch":
                slots = [(1.0 + i / 60, "routine") for i in range(rng.randint(30, 45))]
            elif ident.kind == "service":
                busy = day == LEARN + 4 and ident.id.endswith("2")
                slots = [
                    (h + rng.random(), "routine")
                    for h in range(24)
                    for _ in range(rng.randint(1, 3) * (3 if busy and 14 <= h < 16 else 1))
                ]
            else:
                slots = [(rng.uniform(8.5, 17.5), "routine") for _ in range(rng.randint(15, 30))]
                if day >= LEARN and rng.random() < 0.2:
                    slots += [(rng.uniform(19.0, 21.5), "late") for _ in range(5)]
            moved = ident.kind == "service" and day >= LEARN + 2 and ident.id.endswith("4")
            failover = ident.kind == "service" and day == LEARN + 5 and ident.team == "payments"
            for hour, label in sorted(slots):
                t = base + timedelta(hours=hour)
                ip = rng.choice(ident.ips)
                if moved:
                    ip = ip.rsplit(".", 2)[0] + ".200." + ip.rsplit(".", 1)[1]
                table = rng.choice(ident.tables)
                if day >= LEARN + 3 and rng.random() < 0.02:
                    table, label = f"{ident.team}-table-new", "new_table"
                ctx = {
                    "ip": ip,
                    "region": "eu-central-1" if failover and 10 <= hour < 11 else "eu-west-1",
                    "user_agent": "boto3/1.34",
                }
                events.append(
                    (t.timestamp(), _req(ident.id, rng.choice(ident.actions), table, t, ctx), label, ident.id)
                )
    victims = rng.sample([i for i in idents], len(ATTACKS) * 2)
    for n, victim in enumerate(victims):
        attack = ATTACKS[n % len(ATTACKS)]
        day = LEARN + 1 + (n % (DAYS - LEARN - 2))
        while (T0 + timedelta(days=day)).weekday() >= 5:
            day += 1
        t0 = T0 + timedelta(days=day, hours=11 if victim.kind != "batch" else 1.5)
        home = {"ip": victim.ips[0], "region": "eu-west-1", "user_agent": "boto3/1.34"}
        steps: list[tuple[float, str, str, dict[str, Any]]] = []
        if attack == "stolen":
            far = {"ip": "198.51.100.23", "region": "ap-southeast-1", "user_agent": "boto3/1.34"}
            t0 = T0 + timedelta(days=day, hours=3)
            steps = [(i * 20.0, "read", rng.choice(victim.tables), far) for i in range(6)]
        elif attack == "drift":  # the first use of a higher privilege class
            higher = "delete" if victim.actions == ("read",) else "grant"
            steps = [(i * 30.0, higher, rng.choice(victim.tables), home) for i in range(4)]
        elif attack == "enumeration":
            steps = [(i * 2.0, "read", f"other-table-{i}", home) for i in range(40)]
        elif attack == "chain":
            steps = [
                (0.0, "read", victim.tables[0], home),
                (60.0, "write", victim.tables[0], home),
                (120.0, "grant", victim.tables[0], home),
                (180.0, "create_key", "svc", home),
            ]
        elif attack == "travel":
            steps = [
                (600.0 + i * 30, "read", victim.tables[0], {**home, "region": "sa-east-1"}) for i in range(4)
            ]
        elif attack == "rate":
            steps = [(i * 1.5, "read", rng.choice(victim.tables), home) for i in range(80)]
        elif attack == "segment":
            other = next(x for x in idents if x.team != victim.team)
            steps = [(i * 40.0, "read", f"{other.team}-table-{i}", home) for i in range(5)]
        for k, (dt, action, res, ctx) in enumerate(steps):
            t = t0 + timedelta(seconds=dt)
            rtype = "ServiceAccount" if action == "create_key" else "Database"
            events.append(
                (
                    t.timestamp(),
                    _req(victim.id, action, res, t, ctx, rtype),
                    f"attack:{attack}:{n}:{k}",
                    victim.id,
                )
            )
    events.sort(key=lambda e: e[0])
    return idents, events


def _req(
    who: str, action: str, res: str, t: Any, ctx: dict[str, Any], rtype: str = "Database"
) -> dict[str, Any]:
    return {
        "subject": {"type": "Agent", "id": who},
        "action": {"name": action},
        "resource": {"type": rtype, "id": res},
        "context": {"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), **ctx},
    }


def test_detectors_find_attacks_fast_and_leave_benign_traffic_alone(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    in_time = episodes = benign = false_pos = 0
    misses: list[str] = []
    fps: list[str] = []
    for seed in (1, 2):
        e = engine(
            write_workspace(tmp_path / f"ws{seed}", {"learning_days": 14, "learning_requests": 100}),
            store=MemoryStore(),
        )
        _, events = fleet(seed)
        first: dict[str, int] = {}
        started: dict[str, float] = {}
        for t, req, label, who in events:
            r = e.decide(req, now=datetime.fromtimestamp(t, UTC))
            detected = not r.allowed and (r.advice or r.reason_codes[0] in ("risk_deny", "risk_step_up"))
            if label.startswith("attack:"):
                _, attack, ep, k = label.split(":")
                key = f"{attack}:{ep}"
                started.setdefault(who, t)
                if detected and key not in first:
                    first[key] = int(k) + 1
            elif t >= (T0 + timedelta(days=LEARN)).timestamp() and t < started.get(who, float("inf")):
                benign += 1
                if detected:
                    false_pos += 1
                    fps.append(f"{who} {label} {r.reason_codes} {r.explanations()}")
        keys = {label.rsplit(":", 1)[0][7:] for _, _, label, _ in events if label.startswith("attack:")}
        for key in keys:
            episodes += 1
            attack = key.split(":")[0]
            if first.get(key, 10**9) <= WITHIN.get(attack, 3):
                in_time += 1
            else:
                misses.append(f"seed {seed} {key}: first detection at {first.get(key)}")
        e.close()
    assert in_time / episodes >= 0.95, misses
    assert false_pos / benign <= 0.005, (false_pos, benign, fps[:5])
