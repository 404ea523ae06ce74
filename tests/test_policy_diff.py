"""``vigil policy diff OLD NEW``: what a workspace change gives and takes away, on the example fleet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vigil.cli.main import app
from vigil.escalation import access_diff as ad
from vigil.escalation.access_diff import Side, access_diff
from vigil.workspace.loader import load_workspace

runner = CliRunner()
FLEET = Path(__file__).resolve().parent.parent / "examples" / "agent-fleet"


def _copy(tmp: Path, name: str) -> Path:
    dst = tmp / name
    shutil.copytree(FLEET, dst, ignore=shutil.ignore_patterns("events.jsonl", "*.py", ".vigil"))
    return dst


def _diff(old: Path, new: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    res = runner.invoke(app, ["policy", "diff", str(old), str(new), "--json", *extra])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def _edit_entities(ws: Path, eid: str, parent: dict[str, str]) -> None:
    p = ws / "entities" / "identities.json"
    data = json.loads(p.read_text())
    for e in data:
        if e["uid"]["id"] == eid:
            e["parents"].append(parent)
    p.write_text(json.dumps(data))


def test_no_change_is_exit_0(tmp_path: Path) -> None:
    code, data = _diff(FLEET, _copy(tmp_path, "same"))
    assert code == 0
    assert data["widened"] is False
    assert data["access"] == {"gained": [], "lost": []}
    assert data["paths"] == {"gained": [], "lost": []}


def test_a_new_member_of_a_group_widens_access(tmp_path: Path) -> None:
    new = _copy(tmp_path, "new")
    _edit_entities(new, "pr-review-agent", {"type": "Team", "id": "payments"})
    code, data = _diff(FLEET, new)
    assert code == 1 and data["widened"] is True
    gained = data["access"]["gained"]
    assert gained and all(g["principals"] == ['Agent::"pr-review-agent"'] for g in gained)
    reads = [g for g in gained if 'Action::"read"' in g["actions"]]
    assert reads and reads[0]["after"] == "always" and "permit-team-reads" in reads[0]["via"]
    assert all(
        r.endswith('-staging"') or r.endswith('-dev"') or r.endswith('-prod"')
        for g in gained
        for r in g["resources"]
    )
    assert not data["access"]["lost"]


def test_a_permit_on_a_group_widens_access(tmp_path: Path) -> None:
    new = _copy(tmp_path, "new")
    (new / "policies" / "60-extra.cedar").write_text(
        '@id("growth-reads-payments")\n'
        'permit (principal in Team::"growth", action == Action::"read", resource is Database)\n'
        'when { resource.owner_team == Team::"payments" };\n'
    )
    code, data = _diff(FLEET, new)
    assert code == 1
    principals = {p for g in data["access"]["gained"] for p in g["principals"]}
    assert principals
    growth = {
        'Agent::"campaign-copilot"',
        'Agent::"experiment-analyst"',
        'Agent::"seo-content-agent"',
        'ServiceAccount::"email-sender"',
        'ServiceAccount::"crm-sync"',
        'ServiceAccount::"attribution-etl"',
    }
    assert principals <= growth | {'Agent::"growth-scraper-poc"'}
    assert all(g["actions"] == ['Action::"read"'] for g in data["access"]["gained"])
    assert all(g["via"] == ["growth-reads-payments"] for g in data["access"]["gained"])


def test_a_change_that_only_narrows_is_exit_0(tmp_path: Path) -> None:
    new = _copy(tmp_path, "new")
    text = (new / "policies" / "10-reads.cedar").read_text()
    start = text.index('@id("permit-shared-reads")')
    end = text.index('@id("permit-security-audit-reads")')
    (new / "policies" / "10-reads.cedar").write_text(text[:start] + text[end:])
    code, data = _diff(FLEET, new)
    assert code == 0 and data["widened"] is False
    assert not data["access"]["gained"] and data["access"]["lost"]
    assert all(g["via"] == ["permit-shared-reads"] for g in data["access"]["lost"])
    # and the other way round the same change widens
    code, back = _diff(new, FLEET)
    assert code == 1 and back["access"]["gained"]


def test_a_path_to_admin_that_opens_and_the_replayed_requests(tmp_path: Path) -> None:
    new = _copy(tmp_path, "new")
    p = new / "policies" / "50-admin.cedar"
    p.write_text(
        p.read_text().replace(
            "resource.max_sensitivity <= principal.max_sensitivity",
            "resource.max_sensitivity <= principal.max_sensitivity + 1",
        )
    )
    events = tmp_path / "events.jsonl"
    lines = [ln for ln in (FLEET / "events.jsonl").read_text().splitlines() if "assume_role" in ln]
    events.write_text("\n".join(lines[:200]) + "\n")
    code, data = _diff(FLEET, new, "--replay", str(events))
    assert code == 1
    gained = {e["id"]: e for e in data["paths"]["gained"]}
    assert gained['Agent::"oncall-runbook-agent"']["after"] == "reaches_admin"
    steps = gained['Agent::"oncall-runbook-agent"']["path"]["steps"]
    assert [s["method"] for s in steps] == ["assume", "admin"]
    assert data["replay"]["lines"] == min(200, len(lines))
    assert data["replay"]["now_allowed"] >= 1 and data["replay"]["now_denied"] == 0
    text = runner.invoke(app, ["policy", "diff", str(FLEET), str(new)], env={"COLUMNS": "160"})
    assert text.exit_code == 1
    assert "oncall-runbook-agent (Agent) gains: conditional -> reaches_admin" in text.stdout
    assert "access widened" in text.stdout


def _share(ws: Path, eid: str) -> None:
    p = ws / "entities" / "resources.json"
    data = json.loads(p.read_text())
    for e in data:
        if e["uid"]["id"] == eid:
            e["attrs"]["tags"].append("shared")
    p.write_text(json.dumps(data))


def _nest(ws: Path, human: str, team: str) -> None:
    p = ws / "entities" / "organisation.json"
    data = json.loads(p.read_text())
    for e in data:
        if e["uid"] == {"type": "Human", "id": human}:
            e["parents"].append({"type": "Team", "id": team})
    p.write_text(json.dumps(data))


@pytest.mark.parametrize("change", ["entity", "resource", "owner", "policy"])
def test_skipping_unchanged_requests_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The shortcut (requests whose policies and entities are unchanged are not evaluated)
    gives the same answer as evaluating every request."""
    new = _copy(tmp_path, "new")
    if change == "entity":
        _edit_entities(new, "dunning-agent", {"type": "Team", "id": "support"})
    elif change == "resource":
        _share(new, "service-registry-prod")
    elif change == "owner":  # an entity the identities name in `owner` (no policy reads it)
        _nest(new, "priya.raman", "security")
    else:
        p = new / "policies" / "40-tools.cedar"
        p.write_text(p.read_text().replace('resource.tags.contains("shared") &&', "", 1))
    sides = []
    for ws in (load_workspace(FLEET), load_workspace(new)):
        ps = ws.policy_set
        sides.append(
            Side(ps.policies, ps.store, frozenset(ws.settings.escalation.context_guards), ps.named_uids())
        )
    fast = access_diff(sides[0], sides[1], ("Agent", "ServiceAccount"))
    monkeypatch.setattr(ad, "_fingerprint", lambda p: None)
    full = access_diff(sides[0], sides[1], ("Agent", "ServiceAccount"))
    assert fast["gained"] == full["gained"] and fast["lost"] == full["lost"]
    assert bool(fast["gained"] or fast["lost"]) == (change != "owner")
    assert fast["enumerated"]["evaluated"] <= full["enumerated"]["evaluated"]
    if change == "policy":  # one policy of one action changed: the other actions are skipped
        assert fast["enumerated"]["evaluated"] < full["enumerated"]["evaluated"] / 2


def test_errors_are_typed(tmp_path: Path) -> None:
    res = runner.invoke(app, ["policy", "diff", str(tmp_path / "nope"), str(FLEET), "--json"])
    assert res.exit_code == 3 and json.loads(res.stdout)["error"]["code"] == "invalid_workspace"
    new = _copy(tmp_path, "new")
    _share(new, "service-registry-prod")
    res = runner.invoke(app, ["policy", "diff", str(FLEET), str(new), "--json", "--max-requests", "10"])
    assert res.exit_code == 2 and json.loads(res.stdout)["error"]["code"] == "invalid_argument"
    res = runner.invoke(app, ["policy", "diff", str(FLEET), str(FLEET), "--replay", str(tmp_path / "x")])
    assert res.exit_code == 2


@pytest.mark.parametrize(
    "old, new",
    [
        pytest.param("resource.sensitivity <= 1", "resource.sensitivity <= 0", id="a Long"),
        pytest.param('resource.tags.contains("shared")', 'resource.tags.contains("public")', id="a String"),
    ],
)
def test_a_policy_whose_only_change_is_a_value_is_diffed(tmp_path: Path, old: str, new: str) -> None:
    """Policies of one shape share their compiled code (policy/compiler.py): the diff must still
    see a policy whose text changed only in a value (the same id, the same shape)."""
    ws = _copy(tmp_path, "new")
    path = ws / "policies" / "10-reads.cedar"
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    _, data = _diff(FLEET, ws)
    assert data["access"]["gained"] or data["access"]["lost"]
    changed = data["access"]["gained"] + data["access"]["lost"]
    assert all(g["via"] == ["permit-shared-reads"] for g in changed)
