"""Issue 15, the live input: ``context.vigil.reach`` (each identity's reach, precomputed when the
workspace loads) and the ``escalation_path`` signal (a request that is a step of a path to admin),
joined to the cross-identity ``escalation_chain`` (docs/escalation.md, "At decision time")."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cedarpy
import pytest

from tests.behaviour_support import T0, engine, habit, request, write_workspace
from vigil.errors import WorkspaceError
from vigil.workspace.loader import load_workspace

FLEET = Path(__file__).resolve().parent.parent / "examples" / "agent-fleet"

FORBID_REACH = """
@id("forbid-prod-writes-by-admin-reach")
forbid (principal, action == Action::"write", resource)
when {
  context has vigil && context.vigil has reach &&
  context.vigil.reach.verdict == "reaches_admin" && resource.env == "prod"
};
"""


def _fleet(tmp_path: Path, *, reach: bool = True, forbid: bool = True) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root, ignore=shutil.ignore_patterns(".vigil", "events.jsonl"))
    toml = (root / "vigil.toml").read_text()
    if reach:  # off: the fleet's own settings, which do not name it (the default)
        toml = toml.replace("[escalation]\n", "[escalation]\nreach = true\n")
    (root / "vigil.toml").write_text(toml + '\n[audit]\nsink = "none"\n\n[store]\nbackend = "memory"\n')
    if forbid:
        (root / "policies" / "60-reach.cedar").write_text(FORBID_REACH)
    return root


def _reach(ws: Any, kind: str, name: str) -> dict[str, Any] | None:
    assert ws.reach is not None
    r: dict[str, Any] | None = ws.reach.reach((kind, name))
    return r


# -- the values ------------------------------------------------------------------------------


def test_reach_of_the_example_fleet(tmp_path: Path) -> None:
    ws = load_workspace(_fleet(tmp_path, forbid=False))
    sa = "ServiceAccount"
    assert _reach(ws, sa, "iam-provisioner") == {"verdict": "admin", "distance": 0, "privileged": 0}
    for deployer in ("ci-deployer", "terraform-runner"):
        assert _reach(ws, sa, deployer) == {"verdict": "reaches_admin", "distance": 1, "privileged": 1}
    assert _reach(ws, "Agent", "platform-ops-copilot") == {
        "verdict": "conditional",
        "distance": 0,
        "privileged": 1,
    }
    assert _reach(ws, "Agent", "oncall-runbook-agent") == {
        "verdict": "conditional",
        "distance": 1,
        "privileged": 1,
    }
    assert _reach(ws, sa, "payments-api") == {"verdict": "none", "distance": -1, "privileged": 0}
    # every identity of the analysed types has a reach; nothing else does
    assert ws.reach.identities == 40
    assert ws.reach.reach(("Team", "platform")) is None


def test_reach_is_off_unless_asked_for(tmp_path: Path) -> None:
    assert load_workspace(_fleet(tmp_path, reach=False, forbid=False)).reach is None


# -- a policy reads it -----------------------------------------------------------------------


def _prod_writes(names: set[str]) -> list[dict[str, Any]]:
    """Write requests of ``names`` to prod resources from the fleet's replayed day."""
    out = []
    for line in (FLEET / "events.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if (
            ev["action"]["name"] == "write"
            and ev["subject"]["id"] in names
            and ev["resource"]["id"].endswith("-prod")
        ):
            out.append(ev)
    return out


def _decide(e: Any, ev: dict[str, Any]) -> Any:
    return e.decide(ev, now=datetime.fromisoformat(ev["context"]["time"]))


def test_a_policy_on_reach_denies_the_identity_that_reaches_admin_only(tmp_path: Path) -> None:
    writes = _prod_writes({"ci-deployer", "payments-api"})
    ci = next(ev for ev in writes if ev["subject"]["id"] == "ci-deployer")
    api = next(ev for ev in writes if ev["subject"]["id"] == "payments-api")
    # without reach the forbid cannot fire: both writes are allowed (the test can fail)
    off = engine(_fleet(tmp_path / "off", reach=False))
    assert _decide(off, ci).allowed and _decide(off, api).allowed
    on = engine(_fleet(tmp_path / "on"))
    denied = _decide(on, ci)
    assert not denied.allowed
    assert denied.policies == ("forbid-prod-writes-by-admin-reach",)
    assert _decide(on, api).allowed
    _against_cedarpy(on, [ci, api])


def _against_cedarpy(e: Any, events: list[dict[str, Any]]) -> None:
    """cedarpy, given the same policies, entities, schema and context (with the same
    ``context.vigil``), decides as vigil."""
    ws = e.workspace
    root = ws.path
    text = "\n".join((root / f).read_text() for f in ws.policy_files)
    entities: list[Any] = []
    for f in ws.entity_files:
        entities.extend(json.loads((root / f).read_text()))
    schema = cedarpy.Schema.from_str((root / "schema.cedarschema").read_text())
    policies = cedarpy.PolicySet.from_str(text)
    ents = cedarpy.Entities.from_json_str(json.dumps(entities), schema)
    for ev in events:
        rec = _decide(e, ev)
        ctx = dict(ev["context"])
        ctx["ip"] = {"__extn": {"fn": "ip", "arg": ctx["ip"]}}
        who = (ev["subject"]["type"], ev["subject"]["id"])
        ctx["vigil"] = {"risk": 0, "signals": [], "reach": ws.reach.reach(who)}
        req = {
            "principal": f'{who[0]}::"{who[1]}"',
            "action": f'Action::"{ev["action"]["name"]}"',
            "resource": f'{ev["resource"]["type"]}::"{ev["resource"]["id"]}"',
            "context": ctx,
        }
        got = cedarpy.is_authorized(req, policies, ents, schema)
        assert got.allowed == rec.allowed, (ev, got.diagnostics.errors, rec.reason_codes)


def test_the_schema_types_context_vigil_reach(tmp_path: Path) -> None:
    """The fleet's schema declares reach, so strict validation accepts the policy; a misspelt
    attribute is refused when the workspace loads."""
    root = _fleet(tmp_path)
    load_workspace(root)
    (root / "policies" / "60-reach.cedar").write_text(FORBID_REACH.replace("reach.verdict", "reach.verdikt"))
    with pytest.raises(WorkspaceError):
        load_workspace(root)


# -- a small workspace: A creates a key for B, B grants --------------------------------------

A, B, C = "payments-agent-0", "payments-agent-1", "payments-agent-2"
POLICIES = f"""
@id("work")
permit (principal, action in [Action::"read", Action::"write"], resource);
@id("a-acts-for-b")
permit (principal == Agent::"{A}", action == Action::"act_for", resource == Agent::"{B}");
@id("b-grants")
permit (principal == Agent::"{B}", action == Action::"grant", resource);
@id("forbid-writes-by-reach")
forbid (principal, action == Action::"write", resource)
when {{ context.vigil.reach.verdict == "reaches_admin" }};
"""
ESCALATION = """
[escalation]
reach = true
privilege_actions = { act_for = "assume" }
admin = ['Action::"grant"']
"""


def _small(tmp_path: Path, policies: str = POLICIES, escalation: str = ESCALATION, **beh: Any) -> Path:
    return write_workspace(tmp_path / "ws", {"learning_days": 0, **beh}, policies=policies, extra=escalation)


def test_reload_after_a_policy_change_that_opens_a_path_updates_reach(tmp_path: Path) -> None:
    root = _small(tmp_path)
    e = engine(root)
    assert e.workspace.reach.reach(("Agent", C))["verdict"] == "none"
    when = T0 + timedelta(hours=10)
    assert e.decide(request(C, "write", "payments-table-0", when), now=when).allowed
    assert not e.decide(request(A, "write", "payments-table-0", when), now=when).allowed
    (root / "policies" / "q.cedar").write_text(
        f'@id("c-acts-for-b")\npermit (principal == Agent::"{C}", action == Action::"act_for", resource == Agent::"{B}");\n'
    )
    assert e.reload().ok
    assert e.workspace.reach.reach(("Agent", C)) == {
        "verdict": "reaches_admin",
        "distance": 1,
        "privileged": 1,
    }
    rec = e.decide(request(C, "write", "payments-table-0", when), now=when)
    assert not rec.allowed and rec.policies == ("forbid-writes-by-reach",)


def test_escalation_path_on_the_edge_step_and_not_on_an_ordinary_step(tmp_path: Path) -> None:
    e = engine(_small(tmp_path))
    when = T0 + timedelta(hours=10)
    step = e.decide(request(A, "act_for", B, when, rtype="Agent"), now=when)
    assert "escalation_path" in step.signals, step.signals
    (why,) = [d["why"] for d in step.assessment.details() if d["signal"] == "escalation_path"]
    assert 'Agent::"payments-agent-0" -assume-> Agent::"payments-agent-1" -> admin' in why
    assert "0 steps remain" in why
    ordinary = e.decide(request(A, "read", "payments-table-0", when), now=when)
    assert "escalation_path" not in ordinary.signals
    other = e.decide(request(C, "act_for", B, when, rtype="Agent"), now=when)  # not C's path: C has none
    assert "escalation_path" not in other.signals


def test_escalation_path_is_not_raised_when_reach_is_off(tmp_path: Path) -> None:
    e = engine(
        _small(
            tmp_path,
            escalation=ESCALATION.replace("reach = true", "reach = false"),
            policies=POLICIES.replace("context.vigil.reach.verdict", '"x"'),
        )
    )
    when = T0 + timedelta(hours=10)
    assert "escalation_path" not in e.decide(request(A, "act_for", B, when, rtype="Agent"), now=when).signals


def _acts_for(e: Any) -> None:
    """A's routine starts with acting for B (allowed, learned)."""
    for k in range(6):
        t = T0 + timedelta(hours=8, minutes=k)
        assert e.decide(request(A, "act_for", B, t, rtype="Agent"), now=t).allowed


def test_a_path_step_links_the_next_privileged_step_of_the_identity_it_enabled(tmp_path: Path) -> None:
    """``act_for`` is no admin-class action (issue 17's link alone does not fire on it): the
    graph's edge links B's grant to A's chain."""
    e = engine(_small(tmp_path, learning_requests=20))
    _acts_for(e)
    last = habit(e, A, days=7, per_day=10, actions=("read",), tables=3)
    last = max(last, habit(e, B, days=7, per_day=10, actions=("read",), tables=3))
    when = last + timedelta(hours=1)
    step = e.decide(request(A, "act_for", B, when, rtype="Agent"), now=when)
    assert step.allowed and "escalation_path" in step.signals, step.explanations()
    when += timedelta(minutes=2)
    rec = e.decide(request(B, "grant", "payments-table-1", when), now=when)
    assert "escalation_chain" in rec.signals, rec.explanations()
    (why,) = [d["why"] for d in rec.assessment.details() if d["signal"] == "escalation_chain"]
    assert A in why


def test_without_the_path_step_there_is_no_linked_chain(tmp_path: Path) -> None:
    e = engine(_small(tmp_path, learning_requests=20))
    _acts_for(e)
    last = habit(e, A, days=7, per_day=10, actions=("read",), tables=3)
    last = max(last, habit(e, B, days=7, per_day=10, actions=("read",), tables=3))
    when = last + timedelta(hours=1, minutes=2)
    rec = e.decide(request(B, "grant", "payments-table-1", when), now=when)
    assert "escalation_chain" not in rec.signals, rec.explanations()


# -- bad settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('reach = "yes"', "reach must be true or false"),
        ("reach_max_checks = 0", "reach_max_checks must be an integer"),
        ('reach_max_checks = "many"', "reach_max_checks must be an integer"),
    ],
)
def test_bad_reach_settings_refuse_the_workspace(tmp_path: Path, line: str, words: str) -> None:
    root = _small(tmp_path, escalation=ESCALATION.replace("reach = true", line))
    with pytest.raises(WorkspaceError) as err:
        load_workspace(root)
    assert err.value.code == "invalid_workspace"
    assert any(words in p for p in err.value.problems), err.value.problems


def test_a_graph_over_the_check_limit_refuses_the_workspace(tmp_path: Path) -> None:
    root = _small(tmp_path, escalation=ESCALATION + "reach_max_checks = 3\n")
    with pytest.raises(WorkspaceError) as err:
        load_workspace(root)
    assert err.value.code == "invalid_workspace"
    assert any("escalation_too_large" in p and "reach_max_checks" in p for p in err.value.problems)
    # and with room, it loads
    (root / "vigil.toml").write_text((root / "vigil.toml").read_text().replace("= 3\n", "= 100000\n"))
    assert load_workspace(root).reach is not None


# -- the same reach everywhere a decision is made -------------------------------------------


def test_authzen_search_sees_each_candidates_reach(tmp_path: Path) -> None:
    from vigil.protocol.search import Searcher

    e = engine(_small(tmp_path))
    body = {
        "subject": {"type": "Agent"},
        "action": {"name": "write"},
        "resource": {"type": "Database", "id": "payments-table-0"},
        "context": {"ip": "10.10.0.7", "region": "eu-west-1"},
    }
    found = {r["id"] for r in Searcher(e).subject(body)["results"]}
    assert C in found and B in found  # B is admin, C reaches nothing: the forbid does not fire
    assert A not in found  # A reaches admin: denied as its evaluation is


def test_an_entity_change_that_opens_a_path_updates_reach(tmp_path: Path) -> None:
    policies = POLICIES + (
        f'@id("ops-act-for-b")\npermit (principal in Team::"ops", action == Action::"act_for", '
        f'resource == Agent::"{B}");\n'
    )
    e = engine(_small(tmp_path, policies=policies))
    assert e.workspace.reach.reach(("Agent", C))["verdict"] == "none"
    e.change_entities(
        [
            {"uid": {"type": "Team", "id": "ops"}, "attrs": {}, "parents": []},
            {
                "uid": {"type": "Agent", "id": C},
                "attrs": {"team": "payments"},
                "parents": [{"type": "Team", "id": "payments"}, {"type": "Team", "id": "ops"}],
            },
        ]
    )
    assert e.workspace.reach.reach(("Agent", C))["verdict"] == "reaches_admin"
    when = T0 + timedelta(hours=10)
    rec = e.decide(request(C, "write", "payments-table-0", when), now=when)
    assert not rec.allowed and rec.policies == ("forbid-writes-by-reach",)


FORBID_DISTANCE = """
@id("forbid-deletes-near-admin")
forbid (principal, action == Action::"delete", resource)
when {
  context has vigil && context.vigil has reach &&
  context.vigil.reach.distance >= 0 && context.vigil.reach.distance <= 1 &&
  context.vigil.reach.privileged > 0
};
"""


def test_vigil_and_cedarpy_agree_on_policies_reading_every_reach_field(tmp_path: Path) -> None:
    """A day's sample of the fleet's requests (every identity), decided by vigil and by cedarpy
    given the same context.vigil: the same decisions, and the reach policies do decide some."""
    root = _fleet(tmp_path)
    (root / "policies" / "61-reach.cedar").write_text(FORBID_DISTANCE)
    e = engine(root)
    lines = (FLEET / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines[::40]]
    _against_cedarpy(e, events)
    fired = {
        p
        for ev in events
        for p in _decide(e, ev).policies
        if p in ("forbid-prod-writes-by-admin-reach", "forbid-deletes-near-admin")
    }
    assert fired, "no request of the sample is decided by a reach policy"


def test_mcp_tool_lists_see_the_callers_reach(tmp_path: Path) -> None:
    from vigil.protocol import mcp as pm

    policies = POLICIES + (
        '@id("tools")\npermit (principal, action == Action::"call_tool", resource);\n'
        '@id("no-tools-for-admin-reach")\nforbid (principal, action == Action::"call_tool", resource)\n'
        'when { context.vigil.reach.verdict == "reaches_admin" };\n'
    )
    e = engine(_small(tmp_path, policies=policies))
    items = [pm.Item("Tool", "files.read", {})]

    def shown(who: str) -> list[Any]:
        return pm.visible(e, pm.Caller(("Agent", who), "s", "test", "1", "127.0.0.1"), items)

    assert shown(C) == items  # reaches nothing
    assert shown(A) == []  # reaches admin: the forbid hides the tool, as a call would be denied


def test_vigil_check_reports_reach(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vigil.cli.main import app

    out = CliRunner().invoke(app, ["check", "-w", str(_fleet(tmp_path)), "--json"])
    assert out.exit_code == 0, out.output
    reach = json.loads(out.output)["escalation_reach"]
    assert reach["identities"] == 40
    assert reach["verdicts"] == {"admin": 1, "conditional": 2, "none": 35, "reaches_admin": 2}
    assert reach["path_steps"] == 5 and reach["checks"] > 0
