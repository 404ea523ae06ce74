"""``vigil paths --workspace``: vigil's own Cedar grants as escalation steps (docs/escalation.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.strategies import cases, contexts
from vigil.cli.main import app
from vigil.errors import VigilError, WorkspaceError
from vigil.escalation import analyse
from vigil.escalation.cedar_grants import ALWAYS, NEVER, GrantEvaluator, workspace_graph
from vigil.policy.build import BuildError, build_policy_set
from vigil.policy.cedar import PolicySource
from vigil.policy.request_values import typed_context
from vigil.workspace.loader import load_workspace
from vigil.workspace.settings import parse_settings

runner = CliRunner()
FLEET = Path(__file__).resolve().parent.parent / "examples" / "agent-fleet"


def _entity(etype: str, eid: str, parents: tuple[str, ...] = (), **attrs: Any) -> dict[str, Any]:
    ps = []
    for p in parents:
        t, _, i = p.partition(":")
        ps.append({"type": t, "id": i})
    return {"uid": {"type": etype, "id": eid}, "attrs": attrs, "parents": ps}


def write_ws(root: Path, policies: str, entities: list[dict[str, Any]], toml: str) -> Path:
    (root / "policies").mkdir(parents=True, exist_ok=True)
    (root / "entities").mkdir(exist_ok=True)
    (root / "policies" / "p.cedar").write_text(policies)
    (root / "entities" / "e.json").write_text(json.dumps(entities))
    (root / "vigil.toml").write_text(toml)
    return root


CHAIN_TOML = """
[escalation]
privilege_actions = { create_key = "create_key", add_member = "add_member" }
admin = ['Group::"admins"']
"""
CHAIN_POLICIES = """
@id("ci-keys-for-deployer")
permit (principal == Agent::"ci", action == Action::"create_key", resource == Agent::"deployer");
@id("deployer-adds-members")
permit (principal, action == Action::"add_member", resource == Group::"admins")
when { principal.role == "deployer" };
@id("reader-reads")
permit (principal, action == Action::"read", resource);
"""


def _chain_entities() -> list[dict[str, Any]]:
    return [
        _entity("Group", "admins"),
        _entity("Group", "staff"),
        _entity("Agent", "root", ("Group:admins",), role="admin"),
        _entity("Agent", "ci", ("Group:staff",), role="ci"),
        _entity("Agent", "deployer", ("Group:staff",), role="deployer"),
        _entity("Agent", "reader", ("Group:staff",), role="reader"),
    ]


def _graph(ws: Path) -> Any:
    w = load_workspace(ws)
    ps = w.policy_set
    return workspace_graph(ps.policies, ps.store, w.settings.escalation, w.settings.identity.types)


def test_a_chain_through_a_key_and_a_group_membership(tmp_path: Path) -> None:
    ws = write_ws(tmp_path, CHAIN_POLICIES, _chain_entities(), CHAIN_TOML)
    a = analyse(_graph(ws))
    assert a.verdict('Agent::"root"') == "admin"
    assert a.verdict('Agent::"deployer"') == "reaches_admin"
    assert a.verdict('Agent::"ci"') == "reaches_admin"
    assert a.verdict('Agent::"reader"') == "none"
    path = a.shortest('Agent::"ci"')
    assert path is not None
    assert [s.method for s in path.steps] == ["create_key", "add_member", "admin"]
    assert path.steps[0].via == ('ci-keys-for-deployer allows Action::"create_key"',)
    res = runner.invoke(app, ["paths", "--workspace", str(ws), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    ids = {e["id"]: e for e in data["principals"]}
    # memberships an identity could give itself are nodes, never listed as principals
    assert set(ids) == {'Agent::"root"', 'Agent::"ci"', 'Agent::"deployer"'}
    steps = ids['Agent::"ci"']["paths"][0]["steps"]
    assert {"from", "to", "method", "via", "requires"} <= set(steps[0])
    assert steps[1]["to"] == 'Agent::"deployer" in Group::"admins"'


SCOPE_POLICIES = """
@id("ops-assume-root")
permit (principal in Group::"ops", action == Action::"assume", resource == Agent::"root");
@id("frozen-nothing")
forbid (principal in Group::"all", action, resource) when { principal.frozen };
@id("anyone-joins-ops")
permit (principal is Agent, action == Action::"add_member", resource == Group::"ops")
when { principal.joiner };
"""


def test_group_scopes_follow_ancestors_and_memberships_an_identity_gives_itself(tmp_path: Path) -> None:
    entities = [
        _entity("Group", "all"),
        _entity("Group", "ops", ("Group:all",)),
        _entity("Group", "admins"),
        _entity("Agent", "root", ("Group:admins",), frozen=False, joiner=False),
        _entity("Agent", "op1", ("Group:ops",), frozen=False, joiner=False),
        _entity("Agent", "op2", ("Group:ops",), frozen=True, joiner=False),
        _entity("Agent", "outsider", (), frozen=False, joiner=False),
        _entity("Agent", "joiner", (), frozen=False, joiner=True),
        _entity("Agent", "frozen-joiner", (), frozen=True, joiner=True),
    ]
    toml = "[escalation]\nadmin = ['Group::\"admins\"']\n"
    a = analyse(_graph(write_ws(tmp_path, SCOPE_POLICIES, entities, toml)))
    assert a.verdict('Agent::"op1"') == "reaches_admin"  # `principal in Group::"ops"`
    assert a.verdict('Agent::"op2"') == "none"  # forbidden through its ancestor Group::"all"
    assert a.verdict('Agent::"outsider"') == "none"
    assert a.verdict('Agent::"joiner"') == "reaches_admin"
    path = a.shortest('Agent::"joiner"')
    assert path is not None and [s.method for s in path.steps] == ["add_member", "assume", "admin"]
    # it can join ops (it is in no group, so the forbid does not apply yet), but a member of ops
    # is in Group::"all" too, where the forbid stops a frozen identity: no path
    assert a.verdict('Agent::"frozen-joiner"') == "none"


CTX_POLICIES = """
@id("mfa-keys")
permit (principal == Agent::"a", action == Action::"create_key", resource == Agent::"b")
when { context has mfa && context.mfa };
@id("plain-keys")
permit (principal == Agent::"c", action == Action::"create_key", resource == Agent::"b");
@id("network")
forbid (principal == Agent::"c", action, resource) unless { context.ip == "10.0.0.1" };
@id("stop-d")
forbid (principal == Agent::"d", action, resource) when { principal.blocked };
@id("d-keys")
permit (principal == Agent::"d", action == Action::"create_key", resource == Agent::"b");
@id("broken-forbid")
forbid (principal == Agent::"e", action, resource) when { principal.missing };
@id("e-keys")
permit (principal == Agent::"e", action == Action::"create_key", resource == Agent::"b");
@id("f-staging-only")
permit (principal == Agent::"f", action == Action::"create_key", resource)
when { resource.env == "staging" && context.region == "eu" };
"""


def _ctx_entities() -> list[dict[str, Any]]:
    return [
        _entity("Agent", "a"),
        _entity("Agent", "b", ("Group:admins",), env="prod"),
        _entity("Agent", "c"),
        _entity("Agent", "d", blocked=True),
        _entity("Agent", "e"),
        _entity("Agent", "f"),
        _entity("Group", "admins"),
    ]


def test_context_makes_a_step_conditional_never_absent(tmp_path: Path) -> None:
    ws = write_ws(tmp_path, CTX_POLICIES, _ctx_entities(), "[escalation]\nadmin = ['Group::\"admins\"']\n")
    a = analyse(_graph(ws))
    assert a.verdict('Agent::"a"') == "conditional"  # a permit that reads context.mfa
    assert a.verdict('Agent::"c"') == "conditional"  # a forbid that reads context.ip
    assert a.verdict('Agent::"d"') == "none"  # a forbid that fires without the context
    assert a.verdict('Agent::"e"') == "none"  # an erroring forbid denies
    # reads the context only for staging resources: b is prod, so decided without it
    assert a.verdict('Agent::"f"') == "none"
    req = a.shortest('Agent::"a"')
    assert req is not None and "reads context.mfa" in req.steps[0].requires[0]
    req = a.shortest('Agent::"c"')
    assert req is not None and req.steps[0].requires == ("not denied by network (reads context.ip)",)
    # a forbid named in context_guards no longer makes the step conditional
    toml = '[escalation]\nadmin = [\'Group::"admins"\']\ncontext_guards = ["network"]\n'
    ws2 = write_ws(tmp_path / "two", CTX_POLICIES, _ctx_entities(), toml)
    assert analyse(_graph(ws2)).verdict('Agent::"c"') == "reaches_admin"


def test_the_example_fleet_has_a_path_to_admin() -> None:
    a = analyse(_graph(FLEET))
    assert a.verdict('ServiceAccount::"iam-provisioner"') == "admin"
    assert a.verdict('ServiceAccount::"ci-deployer"') == "reaches_admin"
    path = a.shortest('ServiceAccount::"ci-deployer"')
    assert path is not None and path.steps[0].method == "assume"
    assert a.verdict('Agent::"platform-ops-copilot"') == "conditional"  # needs context.mfa
    assert a.verdict('Agent::"pr-review-agent"') == "none"


def test_bad_settings_are_typed_errors(tmp_path: Path) -> None:
    toml = '[escalation]\ncontext_guards = ["no-such-forbid"]\n'
    ws = write_ws(tmp_path, CHAIN_POLICIES, _chain_entities(), toml)
    res = runner.invoke(app, ["paths", "-w", str(ws), "--json"])
    assert res.exit_code == 3, res.output
    assert json.loads(res.stdout)["error"]["code"] == "invalid_workspace"
    res = runner.invoke(app, ["paths", "-w", str(ws), "--iam", "x.json"])
    assert res.exit_code == 2
    bad = write_ws(tmp_path / "bad", CHAIN_POLICIES, _chain_entities(), '[escalation]\nadmin = ["admins"]\n')
    res = runner.invoke(app, ["paths", "-w", str(bad), "--json"])
    assert res.exit_code == 3 and "is not a Cedar uid" in res.stdout


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
_KEYS = st.sampled_from(["privilege_actions", "admin", "context_guards", "principals", "other"])


def _toml_value(v: Any) -> str:
    return (
        json.dumps(v)
        if not isinstance(v, dict)
        else "{"
        + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None)
        + "}"
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, _VALUES, max_size=4))
def test_the_escalation_section_parser_never_crashes(body: dict[str, Any]) -> None:
    lines = ["[escalation]"]
    for k, v in body.items():
        if v is None or (isinstance(v, list) and None in v):
            continue
        lines.append(f"{k} = {_toml_value(v)}")
    try:
        s = parse_settings("\n".join(lines) + "\n")
    except WorkspaceError as e:
        assert e.code == "invalid_workspace" and e.problems
    else:
        assert all(
            m in ("assume", "create_key", "add_member", "grant")
            for m in s.escalation.privilege_actions.values()
        )


_CTX = st.fixed_dictionaries(
    {},
    optional={
        "mfa": st.booleans(),
        "ip": st.sampled_from(["10.0.0.1", "10.0.0.2"]),
        "region": st.sampled_from(["eu", "us"]),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_CTX, min_size=1, max_size=4))
def test_always_and_never_hold_under_every_context(tmp_path: Path, contexts: list[dict[str, Any]]) -> None:
    """Soundness against the authorizer itself: an ``always`` request is allowed (and no forbid
    errs) under each sampled context, a ``never`` one under none."""
    ws = tmp_path / "ws"
    if not ws.exists():
        write_ws(ws, CTX_POLICIES, _ctx_entities(), "")
    ps = load_workspace(ws).policy_set
    ev = GrantEvaluator(ps.policies, ps.store)
    agents = [u for u in ps.store.by_uid if u[0] == "Agent"]
    for p in agents:
        for r in agents:
            o = ev.decide(p, ("Action", "create_key"), r)
            for ctx in contexts:
                ans = ps.authorizer.is_authorized(p, ("Action", "create_key"), r, dict(ctx))
                allowed = ans.allowed and not any(e.forbid for e in ans.errors)
                if o.verdict == ALWAYS:
                    assert allowed, (p, r, ctx)
                elif o.verdict == NEVER:
                    assert not allowed, (p, r, ctx)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_decided_for_every_context_agrees_with_the_authorizer(data: st.DataObject) -> None:
    """Random policies (conditions that read the context among them), entities and requests, as
    the differential tests generate them: a request the evaluator calls ``always`` is allowed by
    the authorizer (no forbid erring) under the request's own context, the empty one and others;
    one it calls ``never`` is allowed under none of them."""
    case = data.draw(cases(max_policies=5, max_requests=4))
    try:
        ps = build_policy_set(
            [PolicySource("p.cedar", "\n".join(p.text for p in case.policies))],
            list(case.entities),
            case.schema,
            links=case.links,
            require_valid=False,
        )
    except BuildError:
        assume(False)
        return
    ev = GrantEvaluator(ps.policies, ps.store)
    for req in case.requests:
        o = ev.decide(req.principal, req.action_uid, req.resource)
        event(o.verdict)
        for ctx in (req.context, {}, data.draw(contexts()), data.draw(contexts())):
            try:
                context = typed_context(ps.schema, req.action_uid, ctx)
            except VigilError:
                continue
            ans = ps.authorizer.is_authorized(req.principal, req.action_uid, req.resource, context)
            allowed = ans.allowed and not any(e.forbid for e in ans.errors)
            if o.verdict == ALWAYS:
                assert allowed, (req, ctx, o)
            elif o.verdict == NEVER:
                assert not allowed, (req, ctx, o)


@given(
    st.tuples(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}(::[A-Za-z_][A-Za-z0-9_]{0,6})?", fullmatch=True),
        st.text(min_size=1, max_size=12),
    ),
    st.text(max_size=30),
)
def test_uid_text_reads_back_and_the_reader_never_crashes(uid: tuple[str, str], noise: str) -> None:
    from vigil.escalation.cedar_grants import uid_text
    from vigil.escalation.settings import parse_uid_text

    assert parse_uid_text(uid_text(uid)) == uid
    got = parse_uid_text(noise)
    assert got is None or (isinstance(got, tuple) and len(got) == 2 and got[1])


def test_paths_between_two_identities_of_a_workspace(tmp_path: Path) -> None:
    ws = write_ws(tmp_path, CHAIN_POLICIES, _chain_entities(), CHAIN_TOML)
    res = runner.invoke(app, ["paths", "-w", str(ws), "--from", "ci", "--to", "deployer", "--json"])
    assert res.exit_code == 0, res.output
    entry = json.loads(res.stdout)["principals"][0]
    assert entry["reaches_target"] is True
    assert [s["method"] for s in entry["paths"][0]["steps"]] == ["create_key"]
    res = runner.invoke(app, ["paths", "-w", str(ws), "--from", "nobody"])
    assert res.exit_code == 5 and "the workspace's identities" in res.stderr


def test_graph_writes_an_svg_and_a_dot_of_the_paths(tmp_path: Path) -> None:
    """``--graph``: the example fleet's paths as a picture (SVG drawn by vigil, DOT for Graphviz):
    every principal on a path and admin are boxes, each step an edge, steps of paths to admin red,
    conditional ones dashed; a folder that does not exist is a typed error (exit 2), not a crash."""
    import xml.etree.ElementTree as ET

    fleet = Path(__file__).resolve().parents[1] / "examples" / "agent-fleet"
    res = runner.invoke(app, ["paths", "-w", str(fleet), "--json", "--graph", str(tmp_path / "fleet.svg")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    svg = ET.parse(tmp_path / "fleet.svg").getroot()
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    steps = {(s["from"], s["to"]) for e in data["principals"] for p in e["paths"] for s in p["steps"]}
    assert steps, "the example fleet has paths to admin"
    names = {e["id"]: e["name"] for e in data["principals"]}
    for a, b in steps:
        assert names.get(a, a) in texts and (b == "admin" or names.get(b, b) in texts)
    curves = [p for p in svg.iter("{http://www.w3.org/2000/svg}path") if p.get("marker-end")]
    assert len(curves) == len(steps)
    conditional = {
        (s["from"], s["to"])
        for e in data["principals"]
        for p in e["paths"]
        for s in p["steps"]
        if s["requires"]
    }
    assert sum(1 for c in curves if c.get("stroke-dasharray")) == len(conditional)
    dot = (tmp_path / "fleet.dot").read_text()
    assert dot.startswith("digraph escalation {") and dot.count(" -> ") == len(steps)
    bad = runner.invoke(
        app, ["paths", "-w", str(fleet), "--json", "--graph", str(tmp_path / "no" / "such" / "x")]
    )
    assert bad.exit_code == 2 and json.loads(bad.stdout)["error"]["code"] == "invalid_argument"
