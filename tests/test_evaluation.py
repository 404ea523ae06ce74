"""vigil.evaluation: the benign fleet, the injected attacks, the scoring rules, the harness and the CLI.

These tests check the *harness* (what is generated, labelled and counted), not the detectors'
figures: those are measured by ``vigil eval`` and written to docs/detection.md.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests import vendored
from vigil import Engine
from vigil.audit import NullSink
from vigil.cli.main import app
from vigil.evaluation.attacks import ATTACK_TYPES, YOUNG, Episode, inject_attacks
from vigil.evaluation.cloudtrail_fleet import build_aws_fleet
from vigil.evaluation.datasets import DatasetRun, _inject, _move, load_stratus, run_otrf
from vigil.evaluation.fleet import DAY, FAR_REGIONS, Event, Fleet, FleetConfig, build_fleet, make_request
from vigil.evaluation.harness import run_generated, settings_toml, write_fleet_workspace
from vigil.evaluation.report import BEGIN, END, markdown, update_document
from vigil.evaluation.scoring import Outcome, Scorecard, verdict
from vigil.importers import to_request
from vigil.model.decision import DecisionRecord
from vigil.model.request import parse_authzen

DATASETS = vendored.DATASETS
runner = CliRunner()
SMALL = FleetConfig(seed=11, teams=2, days=16, learning_days=14)


@pytest.fixture(scope="module")
def attacked() -> tuple[Fleet, list[Episode]]:
    fleet = build_fleet(FleetConfig(seed=5))
    return fleet, inject_attacks(fleet)


def _benign_by_identity(fleet: Fleet) -> dict[tuple[str, str], list[Event]]:
    out: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for e in fleet.events:
        if not e.label.attack:
            out[e.identity.uid].append(e)
    return out


# -- the benign fleet ------------------------------------------------------------------------------


def test_fleet_is_deterministic_per_seed() -> None:
    a, b = build_fleet(SMALL), build_fleet(SMALL)
    c = build_fleet(FleetConfig(seed=12, teams=2, days=16, learning_days=14))
    first = [make_request(e) for e in a.events[:300]]
    assert len(a.events) == len(b.events) and first == [make_request(e) for e in b.events[:300]]
    assert first != [make_request(e) for e in c.events[:300]]


def test_fleet_has_every_rhythm_and_drift(attacked: tuple[Fleet, list[Episode]]) -> None:
    fleet, _ = attacked
    lasting = [i for i in fleet.identities if i.archetype != "task"]
    assert len(lasting) == 80 and len({i.id for i in fleet.identities}) == len(fleet.identities)
    times = [e.t for e in fleet.events]
    assert times == sorted(times)
    learned = Counter(e.identity.id for e in fleet.events if e.t < fleet.config.learning_end)
    busy = [i for i in lasting if i.archetype not in ("watch", "runner")]
    assert min(learned[i.id] for i in busy) >= 100  # every busy identity leaves learning by requests
    # quiet identities: at most 5 requests a day; per-task agents: a parent and a few requests
    per_day = Counter((e.identity.id, int(e.t // DAY)) for e in fleet.events if not e.label.attack)
    assert max(n for (who, _), n in per_day.items() if who.endswith("-watch")) <= 5
    tasks = [i for i in fleet.identities if i.archetype == "task"]
    assert tasks and all(i.parent is not None and i.parent.archetype == "runner" for i in tasks)
    benign_tasks = Counter(
        e.identity.id for e in fleet.events if e.identity.archetype == "task" and not e.label.attack
    )
    assert max(benign_tasks.values()) <= 12
    drift = Counter(e.label.drift for e in fleet.events if not e.label.attack)
    assert set(drift) >= {
        "routine",
        "new_resource",
        "subnet_move",
        "failover",
        "late_work",
        "first_use",
        "oncall_page",
        "trip",
        "busy_day",
        "backfill",
        "region_move",
    }
    after = [e for e in fleet.events if e.t >= fleet.config.learning_end and e.label.drift == "new_resource"]
    assert after and all(e.resource.team == e.identity.team.name for e in after)
    for e in fleet.events[::997]:
        parse_authzen(make_request(e))


def test_office_agents_rest_at_weekends_and_batch_runs_at_night(
    attacked: tuple[Fleet, list[Episode]],
) -> None:
    fleet, _ = attacked
    for e in fleet.events:
        if e.label.attack:
            continue
        local = datetime.fromtimestamp(e.t, UTC) + timedelta(hours=e.identity.team.tz)
        if e.identity.archetype == "copilot":
            assert local.weekday() < 5
        if e.identity.archetype == "etl":
            assert 0 <= local.hour <= 5 or e.label.drift == "backfill"  # 01:00 wall clock; DST moves it


# -- the attacks -----------------------------------------------------------------------------------


def test_episodes_are_labelled_one_per_victim_after_learning(attacked: tuple[Fleet, list[Episode]]) -> None:
    fleet, episodes = attacked
    lasting = [ep for ep in episodes if ep.victim.archetype not in YOUNG]
    counts = Counter(ep.attack for ep in lasting)
    # 8 of each; with the pivot taking every `api`, two types may run one victim short
    assert set(counts) == set(ATTACK_TYPES) and all(7 <= n <= 8 for n in counts.values()), counts
    assert sum(counts.values()) >= 8 * len(ATTACK_TYPES) - 2
    for archetype, attacks in YOUNG.items():  # one of each on quiet and short-lived victims
        assert sorted(ep.attack for ep in episodes if ep.victim.archetype == archetype) == sorted(attacks)
    assert len({ep.victim.uid for ep in episodes}) == len(episodes)
    steps: dict[int, list[int]] = defaultdict(list)
    for e in fleet.events:
        if e.label.attack:
            steps[e.label.episode].append(e.label.step)
    for ep in episodes:
        assert steps[ep.id] == list(range(1, ep.requests + 1))
        assert (
            ep.start
            >= fleet.config.learning_end
            + (fleet.config.days - fleet.config.learning_days) // 2 * DAY
            - 4 * 3600
        )


def test_each_attack_has_its_defining_property(attacked: tuple[Fleet, list[Episode]]) -> None:
    fleet, episodes = attacked
    benign = _benign_by_identity(fleet)
    by_ep: dict[int, list[Event]] = defaultdict(list)
    for e in fleet.events:
        if e.label.attack:
            by_ep[e.label.episode].append(e)
    for ep in episodes:
        evs = by_ep[ep.id]
        mine = benign[ep.victim.uid]
        if ep.attack == "stolen_credentials":
            local = datetime.fromtimestamp(ep.start, UTC) + timedelta(hours=ep.victim.team.tz)
            assert (local.weekday(), local.hour) == (6, 3)
            assert evs[0].region in FAR_REGIONS[ep.victim.team.continent]
            assert evs[0].region not in {e.region for e in mine} and evs[0].ip not in {e.ip for e in mine}
        elif ep.attack == "privilege_drift":
            assert ep.victim.readonly and evs[0].action == "write"
            assert {e.action for e in mine} <= {"read", "list"}
        elif ep.attack == "enumeration":
            assert len({e.resource.id for e in evs}) == 60 and evs[-1].t - evs[0].t <= 90
        elif ep.attack == "escalation_chain":
            assert [e.action for e in evs] == ["read", "write", "grant", "create_key"]
            assert not {"grant", "create_key"} & {e.action for e in mine}
        elif ep.attack == "impossible_travel":
            before = [e for e in mine if e.t < ep.start]
            assert before[-1].region == ep.victim.team.region and ep.start - before[-1].t <= 700
            assert evs[0].region in FAR_REGIONS[ep.victim.team.continent]
        elif ep.attack == "rate_spike":
            span = evs[-1].t - evs[0].t
            usual = (
                ep.victim.rate_per_minute / 60
                if ep.variant == "per_minute"
                else ep.victim.rate_per_hour / 3600
            )
            assert len(evs) / span >= 30 * usual  # 40x on average, jittered
        elif ep.attack == "segment_crossing":
            teams = {e.resource.team for e in evs}
            assert len(teams) == 1 and ep.victim.team.name not in teams
    assert {ep.variant for ep in episodes if ep.attack == "rate_spike"} == {"per_hour", "per_minute"}
    assert {ep.variant for ep in episodes if ep.attack == "impossible_travel"} <= {
        "known_region",
        "new_region",
    }


# -- the scoring rules -----------------------------------------------------------------------------


def record(
    allowed: bool, risk: int = 0, signals: tuple[str, ...] = (), advice: tuple[str, ...] = ()
) -> DecisionRecord:
    return DecisionRecord(
        1,
        allowed,
        (),
        (),
        (),
        risk,
        signals,
        advice,
        "r",
        0,
        0.0,
        ("A", "a"),
        ("Action", "x"),
        ("R", "r"),
        None,
    )


@pytest.mark.parametrize(
    ("rec", "expected"),
    [
        (record(False, 90, ("new_region",), ("quarantined",)), "quarantined"),
        (record(False, 70, ("new_region",), ("step_up",)), "step_up"),
        (record(False, 90, ("enumeration",)), "deny"),
        (record(True, 70, ("rate_spike",)), "flag"),
        (record(True, 30, ("new_action",)), "signal"),
        (record(True, 80), "pass"),
        (record(True), "pass"),
    ],
)
def test_verdicts(rec: DecisionRecord, expected: str) -> None:
    assert verdict(rec, 60).verdict == expected


PASS = Outcome("pass", 0, ())
STEP = Outcome("step_up", 70, ("escalation_chain",))
FLAG = Outcome("flag", 70, ("enumeration",))


def test_in_time_rules() -> None:
    card = Scorecard()
    info: dict[str, Any] = {"victim": "v"}
    card.episode("escalation_chain", [PASS, STEP, PASS, PASS], ["read", "write", "grant", "create_key"], info)
    card.episode("escalation_chain", [PASS, PASS, STEP, PASS], ["read", "write", "grant", "create_key"], info)
    card.episode("enumeration", [PASS] * 19 + [FLAG], ["read"] * 20, info)
    card.episode("enumeration", [PASS] * 20 + [FLAG], ["read"] * 21, info)
    card.episode("privilege_drift", [PASS, PASS, PASS, STEP], ["write"] * 4, info)
    card.episode("privilege_drift", [PASS] * 4, ["write"] * 4, info)
    chain, enum, drift = (
        card.types["escalation_chain"],
        card.types["enumeration"],
        card.types["privilege_drift"],
    )
    assert (chain.detected, chain.in_time) == (2, 1)  # the grant after a stepped-up write went through
    assert (enum.detected, enum.in_time, enum.first_detection) == (2, 1, [20, 21])
    assert (drift.detected, drift.in_time, len(drift.misses), drift.blocked) == (1, 0, 1, 1)
    assert card.totals()["in_time_rate"] == pytest.approx(2 / 6, abs=1e-4)


def test_false_positives_count_only_blocked_benign_after_learning() -> None:
    card = Scorecard()
    card.type_result("enumeration")
    card.benign(STEP, learned=False, drift="routine", group="api", identity="a")
    card.benign(FLAG, learned=True, drift="routine", group="api", identity="a")
    card.benign(STEP, learned=True, drift="subnet_move", group="api", identity="a")
    card.benign(PASS, learned=True, drift="routine", group="api", identity="a")
    card.excluded()
    t = card.totals()
    assert (
        t["benign_after_learning"],
        t["benign_blocked"],
        t["benign_flagged"],
        t["benign_learning_blocked"],
    ) == (3, 1, 2, 1)
    assert t["fp_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert card.fp_by_drift == {"subnet_move": 1} and card.types["enumeration"].signal_alerts == 1
    assert card.to_dict()["false_positives"]["by_signal"] == {"escalation_chain": 1}


# -- harness, report, CLI --------------------------------------------------------------------------


def test_settings_only_name_keys_this_vigil_knows(tmp_path: Path) -> None:
    text = settings_toml({"segments": ["Team"], "no_such_key": 1})
    assert "no_such_key" not in text and 'mode = "enforce"' in text
    fleet = build_fleet(SMALL)
    root = write_fleet_workspace(fleet, tmp_path / "ws")
    with Engine.from_workspace(root, audit=NullSink()) as engine:
        for e in fleet.events[:200]:
            rec = engine.decide(make_request(e), now=datetime.fromtimestamp(e.t, UTC))
            assert rec.policies == ("permit-all",) or not rec.allowed


def test_generated_run_scores_every_request_and_reports() -> None:
    run = run_generated(seeds=(3,), config=SMALL, per_type=2)
    data = run.to_dict()
    t = data["totals"]
    assert t["requests"] == run.requests
    assert t["episodes"] == sum(r["episodes"] for r in data["by_type"].values())
    # 2 per type, plus one on a quiet and one on a short-lived victim for the types they get
    assert all(1 <= r["episodes"] <= 4 for r in data["by_type"].values())
    assert {"watch", "task"} <= set(data["by_archetype"])
    assert t["benign_after_learning"] > 0 and 0.0 <= t["fp_rate"] <= 1.0
    moved = data["out_of_band"]["region_move"]
    assert moved["identities"] == 1 and moved["requests"] > 0  # reported apart, not in the FP rate
    text = markdown({"generated": data, "command": "vigil eval"})
    assert "### Generated fleet" in text and "`escalation_chain`" in text


def test_update_document_rewrites_between_markers(tmp_path: Path) -> None:
    doc = tmp_path / "d.md"
    doc.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n")
    update_document(doc, "new figures\n")
    assert doc.read_text() == f"intro\n{BEGIN}\nnew figures\n{END}\noutro\n"
    (tmp_path / "bare.md").write_text("no markers")
    with pytest.raises(Exception, match="markers"):
        update_document(tmp_path / "bare.md", "x")


def test_cli_eval_small_run(tmp_path: Path) -> None:
    doc = tmp_path / "detection.md"
    doc.write_text(f"{BEGIN}\n{END}\n")
    out = tmp_path / "r.json"
    args = ["eval", "--seeds", "1", "--teams", "2", "--days", "16", "--holdout", "1"]
    args += ["--json-out", str(out), "--update-doc", str(doc)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["command"] == "vigil eval --seeds 1 --teams 2 --days 16 --holdout 1"
    assert set(report["criteria"]) >= {"in_time_ok", "fp_ok"} and report["holdout"]["seeds"] == [7001]
    text = doc.read_text()
    assert "Reproduce: `vigil eval --seeds 1 --teams 2 --days 16 --holdout 1`" in text
    assert "### Generated fleet, held-out seeds" in text


def test_cli_eval_write_fleet(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["eval", "--write-fleet", str(tmp_path / "fleet"), "--seed", "4", "--teams", "2", "--days", "16"]
    )
    assert result.exit_code == 0, result.output
    events = (tmp_path / "fleet" / "events.jsonl").read_text().splitlines()
    labels = (tmp_path / "fleet" / "labels.jsonl").read_text().splitlines()
    assert len(events) == len(labels) > 10_000
    assert sum(1 for x in labels if json.loads(x)["attack"]) > 100
    with Engine.from_workspace(tmp_path / "fleet", audit=NullSink()) as engine:
        assert engine.decide(json.loads(events[0])).reason_codes[0] != "unknown_identity"


# -- the data sets ---------------------------------------------------------------------------------


def test_stratus_injection_moves_every_technique_onto_a_victim() -> None:
    import random

    vendored.require(DATASETS / "stratus-red-team-detonations")

    techniques = load_stratus(DATASETS)
    assert len(techniques) == 35 and sum(len(t.records) for t in techniques) == 310
    fleet = build_aws_fleet(days=18)
    for variant in ("as_recorded", "insider"):
        episodes = _inject(fleet, techniques, variant, random.Random(1))
        assert len({ep.victim.name for ep in episodes}) == 35
        assert sum(len(ep.requests) for ep in episodes) == 310
        for ep in episodes:
            assert ep.start >= fleet.learning_end
            for _, req in ep.requests:
                assert req["subject"]["id"] == ep.victim.arn
                assert not req["context"]["user_agent"].startswith("stratus-red-team")
                if variant == "insider":
                    assert req["context"]["region"] == ep.victim.region
    creds = next(t for t in techniques if t.id == "aws.persistence.iam-backdoor-user")
    victim = fleet.identities[0]
    moved = to_request(_move(creds.records[0], victim, "insider"))
    assert ":111122223333:" in moved["resource"]["id"] and moved["context"]["ip"] == victim.ips[0]


def test_otrf_scores_against_its_labels() -> None:
    vendored.require(DATASETS / "otrf-security-datasets" / "aws-ec2-proxy-s3-exfiltration")
    run = DatasetRun()
    run_otrf(DATASETS, run)
    assert [(r.variant, r.malicious, r.benign) for r in run.otrf] == [
        ("as_recorded", 11, 92),
        ("with_baseline", 11, 92),
    ]


def test_detection_doc_has_the_markers_make_eval_rewrites() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "detection.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and text.index(BEGIN) < text.index(END)
