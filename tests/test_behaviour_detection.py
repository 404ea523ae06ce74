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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.behaviour_support import T0, engine, write_workspace
from vigil.cli.main import app
from vigil.evaluation.report import criteria, passed
from vigil.evaluation.scoring import Outcome, Scorecard, verdict
from vigil.store import MemoryStore
from vigil.workspace.settings import BehaviourSettings

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
    """Scored by the evaluation's own scorer (``vigil.evaluation.scoring``): a request is detected
    or blocked by :func:`verdict`; each episode is scored by :meth:`Scorecard.episode` with this
    file's windows; a false positive is a blocked benign request after learning, before its
    identity's episode started."""
    step_up = BehaviourSettings().step_up_risk
    card = Scorecard()
    for seed in (1, 2):
        e = engine(
            write_workspace(tmp_path / f"ws{seed}", {"learning_days": 14, "learning_requests": 100}),
            store=MemoryStore(),
        )
        _, events = fleet(seed)
        episodes: dict[str, list[tuple[Outcome, str]]] = {}
        started: dict[str, float] = {}
        learned_from = (T0 + timedelta(days=LEARN)).timestamp()
        for t, req, label, who in events:
            outcome = verdict(e.decide(req, now=datetime.fromtimestamp(t, UTC)), step_up)
            if label.startswith("attack:"):
                _, attack, ep, _k = label.split(":")
                started.setdefault(who, t)
                episodes.setdefault(f"{attack}:{ep}", []).append((outcome, req["action"]["name"]))
            elif t < started.get(who, float("inf")):
                card.benign(outcome, learned=t >= learned_from, drift=label, group="all", identity=who)
            else:
                card.excluded()
        for key, scored in sorted(episodes.items()):
            attack = key.split(":")[0]
            card.episode(
                attack,
                [o for o, _ in scored],
                [a for _, a in scored],
                {"seed": seed, "episode": key},
                within=WITHIN.get(attack, 3),
            )
        e.close()
    totals = card.totals()
    assert totals["episodes"] == 2 * 2 * len(ATTACKS)
    late = [x for t in card.types.values() for x in t.misses + t.late]
    assert totals["in_time_rate"] >= 0.95, late
    assert card.benign_after_learning > 1000
    assert card.fp_rate <= 0.005, (card.benign_blocked, card.benign_after_learning, card.fp_by_drift)
    # The same verdict the report's done criteria give.
    assert criteria({"totals": totals})["in_time_ok"] and criteria({"totals": totals})["fp_ok"]


# -- the scorer and the done criteria, on hand-worked outcomes -------------------------------------

PASS, SIGNAL = Outcome("pass", 0, ()), Outcome("signal", 30, ("new_resource",))
FLAG, STEP = Outcome("flag", 70, ("new_resource",)), Outcome("step_up", 70, ("new_network",))


def test_scorecard_counts_in_time_late_missed_and_false_positives() -> None:
    card = Scorecard()
    card.episode("x", [PASS, FLAG, PASS], ["read"] * 3, {}, within=3)  # detected at 2: in time
    card.episode("x", [PASS, PASS, PASS, STEP], ["read"] * 4, {}, within=3)  # detected at 4: late
    card.episode("x", [PASS, SIGNAL], ["read"] * 2, {}, within=3)  # a signal is not a detection: missed
    card.episode("escalation_chain", [PASS, PASS, STEP], ["read", "grant", "create_key"], {})  # grant passed
    for outcome in (PASS, PASS, SIGNAL, FLAG, STEP, STEP, PASS, PASS):
        card.benign(outcome, learned=True, drift="none", group="g", identity="i")
    card.benign(STEP, learned=False, drift="none", group="g", identity="i")  # learning: not counted
    x = card.types["x"]
    assert (x.episodes, x.detected, x.in_time, x.blocked) == (3, 2, 1, 1)
    assert x.first_detection == [2, 4] and len(x.misses) == 1 and len(x.late) == 1
    chain = card.types["escalation_chain"]
    assert (chain.detected, chain.in_time) == (1, 0)
    totals = card.totals()
    assert totals["episodes"] == 4 and totals["detected"] == 3 and totals["detected_in_time"] == 1
    assert totals["in_time_rate"] == 0.25
    assert (card.benign_after_learning, card.benign_blocked, card.benign_flagged) == (8, 2, 3)
    assert card.fp_rate == 2 / 8 and card.flag_rate == 3 / 8
    assert (card.benign_learning, card.benign_learning_blocked) == (1, 1)


@pytest.mark.parametrize(
    ("in_time_rate", "fp_rate", "in_time_ok", "fp_ok"),
    [
        (0.95, 0.005, True, True),  # both exactly on target: met
        (0.9499, 0.0, False, True),
        (1.0, 0.0051, True, False),
        (0.5, 0.5, False, False),
    ],
)
def test_criteria_and_passed(in_time_rate: float, fp_rate: float, in_time_ok: bool, fp_ok: bool) -> None:
    c = criteria({"totals": {"in_time_rate": in_time_rate, "fp_rate": fp_rate}})
    assert (c["in_time_ok"], c["fp_ok"]) == (in_time_ok, fp_ok)
    good = criteria({"totals": {"in_time_rate": 1.0, "fp_rate": 0.0}})
    assert passed({"criteria": c}) is (in_time_ok and fp_ok)
    # Every generated run must pass: the held-out run alone can fail the report.
    assert passed({"criteria": good, "holdout_criteria": c}) is (in_time_ok and fp_ok)
    assert passed({"criteria": good}) is True


def _fake_report(in_time_rate: float, fp_rate: float) -> dict[str, Any]:
    totals = {"in_time_rate": in_time_rate, "fp_rate": fp_rate}
    return {"generated": {"totals": totals}, "criteria": criteria({"totals": totals})}


@pytest.mark.parametrize(
    ("in_time_rate", "fp_rate", "check", "status"),
    [
        (0.97, 0.001, True, 0),
        (0.90, 0.001, True, 1),  # too few attacks in time
        (0.97, 0.01, True, 1),  # too many false positives
        (0.90, 0.01, False, 0),  # without --check the figures are printed, never judged
    ],
)
def test_eval_check_exit_status(
    monkeypatch: pytest.MonkeyPatch, in_time_rate: float, fp_rate: float, check: bool, status: int
) -> None:
    import vigil.evaluation.report as report_module
    import vigil.evaluation.run as run_module

    monkeypatch.setattr(run_module, "evaluate", lambda **_kw: _fake_report(in_time_rate, fp_rate))
    monkeypatch.setattr(report_module, "markdown", lambda _report: "figures\n")
    result = CliRunner().invoke(app, ["eval", *(["--check"] if check else [])])
    assert result.exit_code == status, result.output
    assert "figures" in result.stdout


def test_eval_missing_datasets_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--datasets", str(tmp_path / "nope")])
    assert result.exit_code == 2, result.output
    assert "not found" in result.output
