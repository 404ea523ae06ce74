"""The behaviour model against golden outputs recorded from the build before its re-layout (and
recorded again once approved requests stopped being learned: the merged build reproduced the
pre-layout model with that change exactly, 11 of 11 runs equal; and again when learning stopped
being a free pass, issue 17: the rows that changed are learning identities' risky requests, now
enforced, and what followed from them; and once profiles learned the places of tool-call
arguments, issue 16: every decision row equal, only the profile digests changed, as a snapshot now
holds the ``args`` table and its novelty count; and once the same sensitive action again stopped
counting as a second step of an escalation chain: the rows that changed are approved retries,
which the retry itself had turned into a chain and a risk_deny, now let through as approved; and
once a new chain forgot the last chain's sensitive action: only explanations changed, "0 sensitive
action(s)" now "1", no decision).

Seeded streams of varied requests (habits, then new regions, networks, user agents, odd hours,
privilege jumps, escalation chains, new and cross-segment resources, enumeration sweeps, rate
bursts, malformed and missing context fields, step-up tickets approved and retried, quarantines
lifted) go through engines in enforce mode (one whose policy reads ``context.vigil``, so the
signals are computed before the policy and learned in a second step) and shadow mode, and
through the model directly (assess, then learn with every combination of learnable, allowed and
vetted). Every decision's outcome, reasons, risk, signals and explanations, and a digest of every
final profile, must equal ``tests/data/behaviour_golden.json``.

Recorded with ``python -m tests.test_behaviour_golden --record`` (from the repository root, with
the build to be taken as the reference); a change to a signal, its points or its explanation,
or to what a request teaches, shows here.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.behaviour_support import AGENTS, T0, TABLES, TEAMS, engine, request, write_workspace
from vigil.behaviour.model import BehaviourModel
from vigil.behaviour.profile import Profile
from vigil.workspace.loader import load_workspace

GOLDEN = Path(__file__).parent / "data" / "behaviour_golden.json"
READS_VIGIL = (
    '@id("permit-all")\npermit (principal, action, resource);\n'
    '@id("vigil-risk")\nforbid (principal, action, resource) when { context.vigil.risk >= 97 };\n'
)
WHO = AGENTS[:2] + AGENTS[6:8] + AGENTS[12:14]
ODD_ACTIONS = ("write", "delete", "grant", "create_key", "GetSecretValue", "StopLogging", "AttachUserPolicy")


def _digest(lines: list[str]) -> str:
    """The explanations of one assessment, as a short digest (the file stays small)."""
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def _profile_digest(profiles: dict[Any, Profile]) -> dict[str, str]:
    return {
        f"{k[0]}::{k[1]}": hashlib.sha256(p.to_blob()).hexdigest()[:16]
        for k, p in sorted(profiles.items(), key=lambda kv: str(kv[0]))
    }


def _odd(rng: random.Random, who: str, when: datetime) -> list[tuple[datetime, dict[str, Any]]]:
    """One unusual episode for ``who`` starting at ``when``: a list of (time, request)."""
    team = who.split("-")[0]
    kind = rng.choice(
        (
            *("region", "network", "ua", "hour", "privilege", "chain", "resource", "segment", "sweep"),
            "burst",
            "malformed",
            "missing",
            "travel",
            "ipv6",
        )
    )
    table = TABLES[team][rng.randrange(4)]
    if kind == "region":
        return [(when, request(who, "read", table, when, region=rng.choice(("eu-central-1", "us-east-1"))))]
    if kind == "network":
        ip = rng.choice(
            (f"10.{rng.randrange(10, 13)}.{rng.randrange(40, 60)}.9", "203.0.113.7", "198.51.100.3")
        )
        return [(when, request(who, "read", table, when, ip=ip))]
    if kind == "ua":
        return [
            (
                when,
                request(who, "read", table, when, user_agent=rng.choice(("curl/8.1", "python-requests/2"))),
            )
        ]
    if kind == "hour":
        at = when.replace(hour=rng.choice((2, 3, 4, 22)))
        return [(at, request(who, "read", table, at))]
    if kind == "privilege":
        return [(when, request(who, rng.choice(ODD_ACTIONS), table, when))]
    if kind == "chain":
        out = []
        for i, action in enumerate(("write", "AttachUserPolicy", "create_key", "StopLogging")):
            at = when + timedelta(seconds=40 * i)
            out.append((at, request(who, action, table, at)))
        return out
    if kind == "resource":
        return [(when, request(who, "read", TABLES[team][rng.randrange(4, 8)], when))]
    if kind == "segment":
        other = rng.choice([t for t in TEAMS if t != team])
        return [(when, request(who, "read", TABLES[other][rng.randrange(8)], when))]
    if kind == "sweep":
        out = []
        for i in range(rng.randrange(8, 24)):
            at = when + timedelta(seconds=3 * i)
            out.append((at, request(who, "read", f"{team}-scan-{rng.randrange(10_000)}", at)))
        return out
    if kind == "burst":
        out = []
        for i in range(rng.randrange(10, 40)):
            at = when + timedelta(seconds=i // 3)
            out.append((at, request(who, "read", table, at)))
        return out
    if kind == "malformed":
        ctx = rng.choice(
            (
                {"ip": "bad"},
                {"region": 42},
                {"region": ""},
                {"user_agent": ["x"]},
                {"ip": {"__extn": {"fn": "ip", "arg": "10.10.0.1/8"}}},
            )
        )
        req = request(who, "read", table, when)
        req["context"].update(ctx)
        if rng.random() < 0.5:
            req["context"]["time"] = rng.choice(("yesterday", "2026-10-05T10:00:00", "1999-01-01T00:00:00Z"))
        return [(when, req)]
    if kind == "missing":
        req = request(who, "read", table, when)
        for k in rng.sample(("ip", "region", "user_agent", "time"), rng.randrange(1, 4)):
            req["context"].pop(k, None)
        return [(when, req)]
    if kind == "travel":
        at = when + timedelta(minutes=rng.randrange(1, 90))
        return [
            (when, request(who, "read", table, when, region="eu-west-1")),
            (
                at,
                request(
                    who, "read", table, at, region=rng.choice(("ap-southeast-2", "sa-east-1", "us-west-2"))
                ),
            ),
        ]
    ip6 = rng.choice(("2001:db8::1", "2001:db8:1::7", "2001:db8:ffff::1"))
    return [(when, request(who, "read", table, when, ip=ip6))]


def _engine_stream(seed: int) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """Ten weekdays of office-hours habit for six agents, then ten days with unusual episodes."""
    rng = random.Random(seed)
    items: list[tuple[datetime, int, dict[str, Any]]] = []
    k = 0
    for d in range(20):
        day = T0 + timedelta(days=d)
        for who in WHO:
            team = who.split("-")[0]
            if day.weekday() >= 5 and rng.random() < 0.8:
                continue
            for _ in range(rng.randrange(8, 18)):
                at = day + timedelta(
                    hours=rng.randrange(9, 17), minutes=rng.randrange(60), seconds=rng.randrange(60)
                )
                action = rng.choice(("read", "read", "read", "list")) if who.endswith("0") else "read"
                items.append((at, k, request(who, action, TABLES[team][rng.randrange(4)], at)))
                k += 1
            if (d >= 10 and rng.random() < 0.6) or (d == 1 and rng.random() < 0.5):
                start = day + timedelta(hours=rng.randrange(8, 18), minutes=rng.randrange(60))
                for at, req in _odd(rng, who, start):
                    items.append((at, k, req))
                    k += 1
    items.sort(key=lambda x: (x[0], x[1]))
    for at, _, req in items:
        yield at, req


def run_engines(tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    variants = {
        "enforce": ({"mode": "enforce", "learning_requests": 40}, None),
        "enforce-reads-vigil": ({"mode": "enforce", "learning_requests": 40}, READS_VIGIL),
        "shadow": ({"mode": "shadow", "learning_requests": 40}, None),
        # a short memory: resource bitmaps rotate every 3 days, table entries are forgotten after 6
        "enforce-forgetful": ({"mode": "enforce", "learning_requests": 40, "forget_days": 6}, None),
    }
    for seed in (1, 2):
        for name, (settings, policies) in variants.items():
            now = [T0.timestamp()]
            root = tmp / f"{name}-{seed}"
            kw: dict[str, Any] = {} if policies is None else {"policies": policies}
            e = engine(write_workspace(root, settings, **kw), clock=lambda now=now: now[0])
            rng = random.Random(seed * 1_000)
            rows: list[Any] = []
            try:
                for at, req in _engine_stream(seed):
                    now[0] = at.timestamp()
                    r = e.decide(req, now=at)
                    rows.append(_row(r))
                    if r.ticket is not None and rng.random() < 0.6:
                        e.desk.approve(r.ticket["id"], by="golden")
                        r = e.decide(req, now=at)
                        rows.append(_row(r))
                    if "quarantined" in r.reason_codes and rng.random() < 0.3:
                        e.desk.lift(r.principal, by="golden")
                out[f"{name}-{seed}"] = {"rows": rows, "profiles": _profile_digest(e._profiles)}
            finally:
                e.close()
    return out


def _row(r: Any) -> Any:
    if not r.signals and r.risk == 0 and r.allowed and not r.explanations():
        return 1  # calm and allowed: most rows
    return [int(r.allowed), list(r.reason_codes), r.risk, list(r.signals), r.explanations()]


def _model_stream(seed: int, n: int, sweep: int = 0) -> Iterator[tuple[Any, ...]]:
    """``sweep``: the first ``sweep`` requests go to resources that are mostly new."""
    rng = random.Random(seed)
    t = T0.timestamp()
    who = [("Agent", a) for a in WHO[:3]]
    for i in range(n):
        t += rng.choice((0.0, -30.0, 1.0, 7.0, 60.0, 900.0, 3_600.0, 40_000.0, 200_000.0))
        ctx: dict[str, Any] = {}
        if rng.random() < 0.9:
            ctx["ip"] = rng.choice(
                (
                    *("10.10.0.5", "10.10.0.9", "10.10.4.1", "203.0.113.7", f"10.{rng.randrange(99)}.1.1"),
                    "bad",
                    "10.10.0.5/32",
                    "2001:db8::1",
                    f"2001:db8:{rng.randrange(50)}::1",
                )
            )
        if rng.random() < 0.9:
            ctx["region"] = rng.choice(("eu-west-1", "eu-west-1", "us-east-1", "ap-northeast-1", "zz-moon-9"))
        if rng.random() < 0.5:
            ctx["user_agent"] = rng.choice(("boto3/1", "boto3/2", "curl/8", "aws-cli/2.1 Python/3"))
        if rng.random() < 0.3:
            at = datetime.fromtimestamp(t + rng.choice((0, 5, 400)), UTC)
            ctx["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ") if rng.random() < 0.8 else at.isoformat()
        action = (
            "Action",
            rng.choice(("read", "read", "list", "write", "grant", "create_key", "GetSecretValue")),
        )
        team = rng.choice(TEAMS)
        resource = ("Database", f"{team}-table-{rng.randrange(4_000 if i < sweep else 12)}")
        yield rng.choice(who), action, resource, ctx, t, rng.random() < 0.85, rng.random() < 0.1


def run_model(tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    runs: tuple[tuple[int, dict[str, Any], int], ...] = (
        (3, {"learning_requests": 20}, 0),
        (4, {"learning_requests": 20, "establish_s": 0}, 0),
        (5, {"learning_requests": 20}, 900),  # per-resource tracking suspended, then resumed
    )
    for seed, settings, sweep in runs:
        ws = load_workspace(write_workspace(tmp / f"model-{seed}", settings))
        m = BehaviourModel(ws.settings.behaviour, ws.policy_set.store)
        profiles: dict[Any, Profile] = {}
        rows: list[Any] = []
        for who, action, resource, ctx, t, allowed, vetted in _model_stream(seed, 2_000, sweep):
            p = profiles.get(who)
            a, f = m.assess(p, action, resource, ctx, t)
            assert f is not None
            if p is None:
                p = profiles[who] = Profile(t)
            high = a.risk >= m.step_up_risk and not a.learning
            m.learn(p, f, allowed and (not high or vetted), allowed, vetted and not high)
            if a.risk or a.unknown:
                why = [f"{d['signal']} {d['points']} {d['why']}" for d in a.details()]
                why += [f"{d['signal']} {d['why']}" for d in a.unknown_details()]
                rows.append([a.risk, list(a.signals), _digest(why), a.learning])
            else:
                rows.append(int(a.learning))
        out[f"model-{seed}"] = {"rows": rows, "profiles": _profile_digest(profiles)}
    return out


def record(tmp: Path) -> dict[str, Any]:
    return {**run_engines(tmp), **run_model(tmp)}


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text())
    return data


def _first_difference(want: list[Any], got: list[Any]) -> str:
    for i, (a, b) in enumerate(zip(want, got, strict=False)):
        if a != b:
            return f"row {i}: want {a!r}, got {b!r}"
    return f"lengths {len(want)} != {len(got)}"


def test_engines_reproduce_the_golden_decisions(tmp_path: Path, golden: dict[str, Any]) -> None:
    got = run_engines(tmp_path)
    for name, run in got.items():
        assert run["rows"] == golden[name]["rows"], (
            name,
            _first_difference(golden[name]["rows"], run["rows"]),
        )
        assert run["profiles"] == golden[name]["profiles"], name


def test_model_reproduces_the_golden_assessments(tmp_path: Path, golden: dict[str, Any]) -> None:
    got = run_model(tmp_path)
    for name, run in got.items():
        assert run["rows"] == golden[name]["rows"], (
            name,
            _first_difference(golden[name]["rows"], run["rows"]),
        )
        assert run["profiles"] == golden[name]["profiles"], name


def test_the_streams_show_every_signal(golden: dict[str, Any]) -> None:
    """The recorded streams are varied enough to be an oracle: every signal, unknown fields,
    step-ups, approvals and quarantines occur."""
    seen: set[str] = set()
    reasons: set[str] = set()
    for run in golden.values():
        for row in run["rows"]:
            if isinstance(row, list) and len(row) == 5 and isinstance(row[1], list):
                reasons.update(row[1])
                seen.update(row[3])
            elif isinstance(row, list):
                seen.update(row[1])
    from vigil.behaviour.signals import DEFAULT_WEIGHTS

    # credential_misuse needs context.credential_source and bad_network [behaviour] bad_networks,
    # which these streams never have (tests/test_credential_misuse.py covers both); new_argument
    # needs tool-call arguments, new_on_behalf delegated requests, credential_two_places
    # context.credential_id and escalation_path [escalation] reach (tests/test_tool_behaviour.py,
    # tests/test_delegated_behaviour.py, tests/test_credential_two_places.py,
    # tests/test_escalation_reach.py)
    absent = {
        "credential_misuse",
        "bad_network",
        "new_argument",
        "new_on_behalf",
        "credential_two_places",
        "escalation_path",
    }
    assert set(DEFAULT_WEIGHTS) - absent <= seen, set(DEFAULT_WEIGHTS) - seen
    # no `learning` reason: these streams learn for 0 days, so every signal of a learning identity
    # is fully backed and enforced (docs/behaviour.md, "Learning is not a free pass")
    assert {"risk_step_up", "approved", "quarantined", "shadow_step_up"} <= reasons, reasons


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: python -m tests.test_behaviour_golden --record")
    with tempfile.TemporaryDirectory() as d:
        data = record(Path(d))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n")
    print(GOLDEN, GOLDEN.stat().st_size, "bytes")
