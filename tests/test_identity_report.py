"""The identity hygiene report on a hand-built registry and workspace, with every figure worked out
by hand (below), through the library and through ``vigil identity report --json``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.identity_support import fleet
from vigil.cli.main import app
from vigil.identity import hygiene
from vigil.store import (
    RETIRED,
    SUSPENDED,
    IdentityEntry,
    IdentityKey,
    IdentityUsage,
    SqliteStore,
)

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()
NOW_TEXT = "2026-11-02T09:00:00Z"
DAY = 86_400.0
HOUR = 3_600.0


def _e(uid: tuple[str, str], **kw: Any) -> IdentityEntry:
    created = kw.pop("created", NOW - 100 * DAY)
    return IdentityEntry(
        uid,
        kw.pop("owner", "owner@example.com"),
        "fixture",
        "agent",
        created,
        "setup",
        status_since=created,
        status_by="setup",
        **kw,
    )


def _k(kid: str, added: float) -> IdentityKey:
    return IdentityKey(kid, '{"kty":"OKP"}', added, "setup")


# The fixture. Acting types: Agent, ServiceAccount, Workload (the default). Thresholds: unused 30
# days, keys 90 days.
#   Agent::"a1"           active; used 1 day ago; keys of 200 and 10 days, rotated 5 days ago
#                         -> old_keys (1 key)
#   Agent::"a2"           active but expired yesterday; created 40 days ago, never used; no keys
#                         -> expired_active, unused
#   ServiceAccount::"s1"  suspended; no valid owner (a record written without the check); created
#                         5 days ago; one key of 5 days, never rotated -> no_owner, never_rotated
#   Workload::"w1"        retired, not in entities -> nothing (retired identities are done)
#   Agent::"ghost"        active, created a day ago, not in entities; 3 tokens in the last 24 h
#                         (and one 30 hours ago, outside) -> not_in_entities
#   entities also hold Agent::"u1" and ServiceAccount::"u2" (acting, not registered ->
#   no_owner + unregistered each) and Human::"h1" (not an acting type: ignored).
ENTRIES = [
    _e(("Agent", "a1"), keys=(_k("k1", NOW - 200 * DAY), _k("k2", NOW - 10 * DAY)), rotated=NOW - 5 * DAY),
    _e(("Agent", "a2"), created=NOW - 40 * DAY, expires=NOW - DAY),
    _e(
        ("ServiceAccount", "s1"),
        owner="",
        created=NOW - 5 * DAY,
        status=SUSPENDED,
        keys=(_k("k3", NOW - 5 * DAY),),
    ),
    _e(("Workload", "w1"), status=RETIRED),
    _e(("Agent", "ghost"), created=NOW - DAY),
]
USED = {("Agent", "a1"): NOW - DAY}
TOKENS = {
    ("Agent", "ghost"): (
        (int((NOW - 30 * HOUR) // HOUR), 1),
        (int((NOW - 2 * HOUR) // HOUR), 2),
        (int(NOW // HOUR), 1),
    )
}
ENTITIES = [
    ("Agent", "a1"),
    ("Agent", "a2"),
    ("ServiceAccount", "s1"),
    ("Agent", "u1"),
    ("ServiceAccount", "u2"),
    ("Human", "h1"),
]
TOTALS = {
    "identities": 5,
    "by_status": {"active": 2, "suspended": 1, "retired": 1, "expired": 1},
    "no_owner": 3,
    "expired_active": 1,
    "unused": 1,
    "old_keys": 1,
    "never_rotated": 1,
    "not_in_entities": 1,
    "unregistered": 2,
    "tokens_24h": 3,
}
FINDINGS = {
    'Agent::"a1"': ["old_keys"],
    'Agent::"a2"': ["expired_active", "unused"],
    'Agent::"ghost"': ["not_in_entities"],
    'Agent::"u1"': ["no_owner", "unregistered"],
    'ServiceAccount::"s1"': ["no_owner", "never_rotated"],
    'ServiceAccount::"u2"': ["no_owner", "unregistered"],
    'Workload::"w1"': [],
}


def _check(report: dict[str, Any]) -> None:
    assert report["totals"] == TOTALS
    assert {r["uid"]: r["findings"] for r in report["identities"]} == FINDINGS
    rows = {r["uid"]: r for r in report["identities"]}
    assert rows['Agent::"a1"']["oldest_key_days"] == 200 and rows['Agent::"a1"']["old_keys"] == 1
    assert rows['Agent::"a1"']["last_used"] == "2026-11-01T09:00:00Z"
    assert rows['Agent::"a2"']["status"] == "expired" and rows['Agent::"a2"']["last_used"] is None
    assert rows['Agent::"ghost"']["tokens_24h"] == 3
    assert rows['Agent::"u1"']["registered"] is False and rows['Agent::"u1"']["status"] is None
    assert report["time"] == NOW_TEXT and report["unused_days"] == 30 and report["key_age_days"] == 90


def test_the_report_by_hand() -> None:
    tokens = {uid: dict(t) for uid, t in TOKENS.items()}

    def tokens_24h(uid: tuple[str, str]) -> int:
        hour = int(NOW // HOUR)
        return sum(n for h, n in tokens.get(uid, {}).items() if hour - 24 < h <= hour)

    report = hygiene(
        ENTRIES,
        ENTITIES,
        types=("Agent", "ServiceAccount", "Workload"),
        now=NOW,
        unused_days=30,
        key_age_days=90,
        last_used=USED.get,
        tokens_24h=tokens_24h,
    )
    _check(report)
    # other thresholds move the figures as worked out: keys older than 5 days -> k1, k2 (a1), and
    # k3 is exactly 5 days old (not older); unused for 1 day -> a2 and s1 (created 5 days ago);
    # a1 was used exactly a day ago and ghost created exactly a day ago (not older)
    tight = hygiene(
        ENTRIES,
        ENTITIES,
        types=("Agent", "ServiceAccount", "Workload"),
        now=NOW,
        unused_days=1,
        key_age_days=5,
        last_used=USED.get,
        tokens_24h=lambda uid: 0,
    )
    assert tight["totals"]["old_keys"] == 2 and tight["totals"]["unused"] == 2


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = fleet(tmp_path)
    for f in (ws / "entities").glob("*.json"):
        f.unlink()
    (ws / "entities" / "identities.json").write_text(
        json.dumps([{"uid": {"type": t, "id": i}, "attrs": {}, "parents": []} for t, i in ENTITIES])
    )
    store = SqliteStore(ws / ".vigil" / "state.db")
    generation = 0
    for e in ENTRIES:
        generation = store.put_identity(e, generation=generation) or -1
    store.save_identity_usage(
        [
            IdentityUsage(("Agent", "a1"), NOW - DAY, ()),
            IdentityUsage(("Agent", "ghost"), None, TOKENS[("Agent", "ghost")]),
        ]
    )
    store.close()
    return ws


def test_the_report_through_the_cli(workspace: Path) -> None:
    result = CliRunner().invoke(
        app, ["identity", "report", "-w", str(workspace), "--now", NOW_TEXT, "--json"]
    )
    assert result.exit_code == 0, result.output
    _check(json.loads(result.stdout))
    table = CliRunner().invoke(app, ["identity", "report", "-w", str(workspace), "--now", NOW_TEXT])
    assert table.exit_code == 0, table.output
    assert "expired but active" in table.stdout and "standing keys never rotated" in table.stdout
    tight = CliRunner().invoke(
        app,
        [
            "identity",
            "report",
            "-w",
            str(workspace),
            "--now",
            NOW_TEXT,
            "--json",
            "--unused-days",
            "1",
            "--key-age-days",
            "5",
        ],
    )
    assert json.loads(tight.stdout)["totals"]["old_keys"] == 2
    bad = CliRunner().invoke(
        app, ["identity", "report", "-w", str(workspace), "--unused-days", "0", "--json"]
    )
    assert bad.exit_code == 2 and json.loads(bad.stdout)["error"]["code"] == "invalid_argument"


def test_the_acting_types_come_from_the_settings(workspace: Path) -> None:
    (workspace / "vigil.toml").write_text('[identity]\ntypes = ["Agent", "Human"]\n')
    result = CliRunner().invoke(
        app, ["identity", "report", "-w", str(workspace), "--now", NOW_TEXT, "--json"]
    )
    report = json.loads(result.stdout)
    unregistered = sorted(r["uid"] for r in report["identities"] if "unregistered" in r["findings"])
    assert unregistered == ['Agent::"u1"', 'Human::"h1"']
