"""The public CloudTrail data sets in ``../shared/datasets``, used as their READMEs suggest.

**Stratus Red Team detonations** (35 techniques, every record malicious): each technique is
replayed as if its records had been made with the stolen credentials of one identity of a benign
account (:mod:`vigil.evaluation.cloudtrail_fleet`): the records' ``userIdentity`` becomes the
victim's, the episode keeps its own pacing and starts right after one of the victim's own calls in
the week after learning, and ``userAgent`` is overwritten with the victim's (the README: the
``stratus-red-team_`` agent is a giveaway a detector must not use). Two variants:

- ``as_recorded``: the attacker's source address and region as captured (scrubbed look-alike values,
  so new to every victim);
- ``insider``: the victim's own address and region, and the technique's account ids and region
  rewritten to the victim's, so only *what* is called can give the attack away.

Each technique is one episode on its own victim (35 of the 40 identities); scoring is that of
:mod:`vigil.evaluation.scoring` (detected, requests until detection) plus the false-positive rate on
the account's benign calls after learning.

**OTRF EC2 proxy S3 exfiltration** (103 records, ``labels.csv``): replayed in time order through the
importer, as captured (no history: every identity is new) and again after a 14-day synthetic
baseline for the two identities; scored per record against the labels (precision, recall, the index
of the first alert among the 11 malicious records).
"""

from __future__ import annotations

import csv
import json
import random
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from vigil.audit import NullSink
from vigil.engine import Engine
from vigil.evaluation.cloudtrail_fleet import ACCOUNT, DAY, HOUR, AwsFleet, AwsIdentity, build_aws_fleet
from vigil.evaluation.harness import decide_all, settings_toml, step_up_threshold
from vigil.evaluation.scoring import Outcome, Scorecard
from vigil.importers.cloudtrail import CloudTrailError, to_request
from vigil.importers.files import read_records, write_workspace
from vigil.model.timefmt import TimeFormatError, parse_epoch

__all__ = ["DatasetRun", "OtrfResult", "run_datasets", "run_otrf", "run_stratus"]

STRATUS: Final = "stratus-red-team-detonations"
OTRF: Final = "otrf-security-datasets/aws-ec2-proxy-s3-exfiltration"
VARIANTS: Final = ("as_recorded", "insider")


@dataclass
class Technique:
    id: str
    tactics: tuple[str, ...]
    records: list[dict[str, Any]]


def load_stratus(root: Path) -> list[Technique]:
    """The techniques of the Stratus Red Team folder, with their records (time-sorted)."""
    meta = json.loads((root / STRATUS / "techniques.json").read_text(encoding="utf-8"))
    out = []
    for row in meta["techniques"]:
        records = [r for _, r in read_records(root / STRATUS / row["file"]) if isinstance(r, dict)]
        records.sort(key=lambda r: str(r.get("eventTime", "")))
        out.append(Technique(row["technique_id"], tuple(row["mitre_attack_tactics"]), records))
    return out


# -- Stratus -------------------------------------------------------------------------------------


@dataclass
class StratusEpisode:
    id: int
    technique: Technique
    victim: AwsIdentity
    start: float
    requests: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


def _inject(
    fleet: AwsFleet, techniques: Sequence[Technique], variant: str, rng: random.Random
) -> list[StratusEpisode]:
    victims = list(fleet.identities)
    rng.shuffle(victims)
    by_name: dict[str, list[float]] = {}
    lo = fleet.learning_end + 3 * DAY
    hi = fleet.t0 + fleet.days * DAY - HOUR
    for t, rec in fleet.records:
        if lo <= t < hi:
            by_name.setdefault(rec["userIdentity"]["arn"].split("/")[1], []).append(t)
    episodes = []
    for n, (tech, victim) in enumerate(zip(techniques, victims, strict=False), 1):
        anchor = rng.choice(by_name[victim.name])
        start = anchor + rng.uniform(5, 60)
        first = _epoch(tech.records[0].get("eventTime"))
        ep = StratusEpisode(n, tech, victim, start)
        for rec in tech.records:
            moved = _move(rec, victim, variant)
            t = start + max(0.0, _epoch(rec.get("eventTime")) - first)
            moved["eventTime"] = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            try:
                ep.requests.append((t, to_request(moved)))
            except CloudTrailError:
                continue
        episodes.append(ep)
    return episodes


def _move(record: dict[str, Any], victim: AwsIdentity, variant: str) -> dict[str, Any]:
    """The record as made by ``victim`` (see the module docstring for the two variants)."""
    text = json.dumps(record)
    if variant == "insider":
        accounts = {record.get("recipientAccountId"), (record.get("userIdentity") or {}).get("accountId")}
        for account in filter(None, accounts):
            text = text.replace(str(account), ACCOUNT)
        region = record.get("awsRegion")
        if isinstance(region, str) and region:
            text = re.sub(rf"\b{re.escape(region)}\b", victim.region, text)
    moved: dict[str, Any] = json.loads(text)
    moved["userIdentity"] = victim.user_identity(f"{victim.name}-session")
    moved["userAgent"] = victim.agent
    if variant == "insider":
        moved["sourceIPAddress"] = victim.ips[0]
        moved["awsRegion"] = victim.region
    return moved


def _epoch(value: Any) -> float:
    try:
        return parse_epoch(value)
    except TimeFormatError:
        return 0.0


@dataclass
class DatasetRun:
    """Figures of the data-set evaluations."""

    stratus: dict[str, Scorecard] = field(default_factory=dict)
    tactics: dict[str, tuple[str, ...]] = field(default_factory=dict)
    otrf: list[OtrfResult] = field(default_factory=list)
    step_up: int = 60
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "datasets",
            "step_up_threshold": self.step_up,
            "requests": self.requests,
            "stratus": {
                variant: {**card.to_dict(), "tactics": {k: list(v) for k, v in self.tactics.items()}}
                for variant, card in self.stratus.items()
            },
            "otrf": [r.to_dict() for r in self.otrf],
        }


def run_stratus(root: Path, run: DatasetRun, *, seed: int = 20240902) -> None:
    """Both Stratus variants on the benign account; fills ``run.stratus``."""
    techniques = load_stratus(root)
    run.tactics = {t.id: t.tactics for t in techniques}
    fleet = build_aws_fleet(seed)
    benign = [(t, to_request(rec)) for t, rec in fleet.records]
    names = [rec["userIdentity"]["arn"].split("/")[1] for _, rec in fleet.records]
    for variant in VARIANTS:
        rng = random.Random(f"{seed}-{variant}")
        episodes = _inject(fleet, techniques, variant, rng)
        stream: list[tuple[float, int, int, dict[str, Any]]] = [
            (t, i, -1, req) for i, (t, req) in enumerate(benign)
        ]
        for ep in episodes:
            stream += [(t, len(stream) + k, ep.id, req) for k, (t, req) in enumerate(ep.requests)]
        stream.sort(key=lambda s: (s[0], s[1]))
        outcomes = _decide(stream, run, {"learning_days": fleet.learning_days})
        card = Scorecard()
        by_ep: dict[int, list[tuple[dict[str, Any], Outcome]]] = {}
        start_of = {ep.victim.name: ep.start for ep in episodes}
        archetypes = {x.name: x.archetype for x in fleet.identities}
        for (t, i, ep_id, req), outcome in zip(stream, outcomes, strict=True):
            if ep_id >= 0:
                by_ep.setdefault(ep_id, []).append((req, outcome))
                continue
            name = names[i]
            if name in start_of and t >= start_of[name]:
                card.excluded()
                continue
            learned = t >= fleet.learning_end
            card.benign(outcome, learned=learned, drift="routine", group=archetypes[name], identity=name)
        for ep in episodes:
            pairs = by_ep.get(ep.id, [])
            info = {"technique": ep.technique.id, "victim": ep.victim.name, "archetype": ep.victim.archetype}
            card.episode(
                ep.technique.id,
                [o for _, o in pairs],
                [str(r["action"]["properties"]["access"]) for r, _ in pairs],
                info,
                expected=(),
                within=3,
            )
        run.stratus[variant] = card


def _decide(
    stream: Iterable[tuple[float, int, int, dict[str, Any]]],
    run: DatasetRun,
    behaviour: dict[str, Any] | None = None,
) -> list[Outcome]:
    items = list(stream)
    identities: dict[tuple[str, str], dict[str, str]] = {}
    for *_, req in items:
        subject = req["subject"]
        identities.setdefault((subject["type"], subject["id"]), {})
    with tempfile.TemporaryDirectory(prefix="vigil-eval-ct-") as tmp:
        root = write_workspace(Path(tmp) / "ws", identities)
        (root / "vigil.toml").write_text(settings_toml(behaviour), encoding="utf-8")
        with Engine.from_workspace(root, audit=NullSink()) as engine:
            run.step_up = step_up_threshold(engine)
            outcomes = decide_all(engine, ((t, req) for t, _, _, req in items), run.step_up)
    run.requests += len(items)
    return outcomes


# -- OTRF ----------------------------------------------------------------------------------------


@dataclass
class OtrfResult:
    """Per-record scores of one OTRF replay against ``labels.csv``."""

    variant: str
    malicious: int = 0
    benign: int = 0
    true_alerts: int = 0
    false_alerts: int = 0
    first_alert: int | None = None  # 1-based index among the malicious records, in time order
    signals: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        alerts = self.true_alerts + self.false_alerts
        return {
            "variant": self.variant,
            "malicious": self.malicious,
            "benign": self.benign,
            "true_alerts": self.true_alerts,
            "false_alerts": self.false_alerts,
            "precision": round(self.true_alerts / alerts, 4) if alerts else None,
            "recall": round(self.true_alerts / self.malicious, 4) if self.malicious else None,
            "first_alert": self.first_alert,
            "signals": self.signals,
        }


def run_otrf(root: Path, run: DatasetRun) -> None:
    """The OTRF capture as recorded and after a synthetic baseline; fills ``run.otrf``."""
    folder = root / OTRF
    labels: dict[str, str] = {}
    with (folder / "labels.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            labels[row["eventID"]] = row["label"]
    captured: list[tuple[float, dict[str, Any]]] = []
    for _, rec in read_records(folder / "events.jsonl"):
        try:
            req = to_request(rec)
        except CloudTrailError:
            continue
        captured.append((_epoch(req["context"]["time"]), req))
    captured.sort(key=lambda p: p[0])
    for variant in ("as_recorded", "with_baseline"):
        history = _otrf_history(captured) if variant == "with_baseline" else []
        stream = [(t, i, -1, r) for i, (t, r) in enumerate(history)]
        stream += [(t, len(history) + i, i, r) for i, (t, r) in enumerate(captured)]
        outcomes = _decide(stream, run)
        result = OtrfResult(variant)
        mal_index = 0
        for (_, _, idx, req), outcome in zip(stream, outcomes, strict=True):
            if idx < 0:
                continue
            label = labels.get(str(req["context"].get("event_id")), "benign")
            for s in outcome.signals:
                result.signals[s] = result.signals.get(s, 0) + 1
            if label == "malicious":
                result.malicious += 1
                mal_index += 1
                if outcome.detected:
                    result.true_alerts += 1
                    if result.first_alert is None:
                        result.first_alert = mal_index
            else:
                result.benign += 1
                result.false_alerts += outcome.detected
        run.otrf.append(result)


def _otrf_history(captured: Sequence[tuple[float, dict[str, Any]]]) -> list[tuple[float, dict[str, Any]]]:
    """14 days of synthetic normal use before the capture: ``pedro`` browsing the EC2 console in
    office hours, and the instance role making the calls an SSM-managed instance makes, from the
    instance (``1.2.3.4``, the capture's anonymised address) with an SDK user agent."""
    rng = random.Random(20200914)
    start = min(t for t, _ in captured)
    pedro = next(r for _, r in captured if r["subject"]["id"].endswith(":user/pedro"))
    role = next(r for _, r in captured if "BankingWAFRole" in r["subject"]["id"])
    out: list[tuple[float, dict[str, Any]]] = []
    day0 = start - 14 * DAY
    consoles = sorted({str(r["action"]["name"]) for _, r in captured if r["subject"] == pedro["subject"]})
    for day in range(14):
        base = day0 + day * DAY
        if day % 7 < 5:
            # The EC2 console loads a page with a burst of Describe calls: a few sessions a day.
            for _ in range(rng.randint(2, 5)):
                t = base + rng.uniform(9, 18) * HOUR
                for _ in range(rng.randint(20, 60)):
                    t += rng.uniform(0.2, 3)
                    service, name = rng.choice(consoles).split(":", 1)
                    out.append((t, _like(pedro, t, service, name, pedro["context"].get("user_agent", ""))))
        for slot in range(0, 24 * 12):
            t = base + slot * 300 + rng.uniform(0, 30)
            service, call = (
                ("ssm", "UpdateInstanceInformation") if slot % 12 == 0 else ("ec2messages", "GetMessages")
            )
            out.append((t, _like(role, t, service, call, "aws-sdk-go/1.25.0 (go1.13; linux; amd64)")))
    out.sort(key=lambda p: p[0])
    return out


def _like(template: dict[str, Any], t: float, service: str, name: str, agent: str) -> dict[str, Any]:
    when = datetime.fromtimestamp(t, UTC)
    account = template["subject"].get("properties", {}).get("account", "")
    return {
        "subject": template["subject"],
        "action": {
            "name": f"{service}:{name}",
            "properties": {"access": "read" if name.startswith("Describe") else "write"},
        },
        "resource": {
            "type": "AwsResource",
            "id": f"arn:aws:{service}:us-east-1:{account}:*",
            "properties": {"service": service, "account": account},
        },
        "context": {
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hour": when.hour,
            "event_source": f"{service}.amazonaws.com",
            "event_name": name,
            "ip": "1.2.3.4",
            "region": "us-east-1",
            "user_agent": agent,
        },
    }


def run_datasets(root: str | Path) -> DatasetRun:
    """Every data-set evaluation under ``root`` (the shared ``datasets`` folder)."""
    base = Path(root)
    run = DatasetRun()
    run_stratus(base, run)
    run_otrf(base, run)
    return run
