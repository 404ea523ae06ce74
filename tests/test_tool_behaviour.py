"""Behaviour of tool calls (issue 16): a call is classed by the tool (its MCP annotations, else its
name), not by ``Action::"call_tool"``, and the places its arguments reach (path prefixes, hosts,
tables) are learned per identity, so a call reaching a place the agent never reached is
``new_argument``. End to end through the real gateway too (mcp client -> gateway -> upstream)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from tests.behaviour_support import engine as make_engine
from tests.behaviour_support import write_workspace
from tests.mcp_support import GatewayServer, UpstreamProcess, client, gateway, run
from tests.mcp_support import write_workspace as write_mcp_workspace
from vigil.audit import MemorySink
from vigil.behaviour.arguments import MAX_KEYS, argument_keys, place_of
from vigil.behaviour.privilege import ADMIN, READ, WRITE, tool_class
from vigil.behaviour.profile import Profile
from vigil.engine import Engine
from vigil.mcp import UpstreamSpec

T0 = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
WHO = "data-agent-1"


# -- the places of arguments -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("path", "/srv/reports/2026/q3.csv", "path:/srv/reports"),
        ("path", "/srv/reports/../../etc/shadow", "path:/etc/shadow"),
        ("path", "/srv//reports/./q3.csv", "path:/srv/reports"),
        ("path", "reports/2026/q3.csv", "path:reports/2026"),
        ("path", "../../etc/passwd", "path:../../etc/passwd"),
        ("path", "~/.ssh/id_ed25519", "path:~/.ssh"),
        ("path", "C:\\Users\\admin\\secrets.txt", "path:c:/Users/admin"),
        ("url", "https://user:pw@Api.Example.com:8443/v1/x?y=1", "host:api.example.com"),
        ("url", "http://[::1]:8080/", "host:[::1]"),
        ("to", "ops@corp.example", "mail:@corp.example"),
        ("table", "Sales.Orders", "table=sales.orders"),
        ("host", "db-7.internal", "host=db-7.internal"),
        ("query", "SELECT * FROM orders WHERE id = 1", None),
        ("text", "please summarise the report", None),
        ("id", "12345", None),
        ("path", "", None),
        # one spelling first: percent-encoding, Unicode look-alikes
        ("path", "/srv/reports/%2e%2e/%2e%2e/etc/shadow", "path:/etc/shadow"),
        ("path", "/srv/reports/..%2f..%2fetc/shadow", "path:/etc/shadow"),
        ("path", "/srv/reports/%252e%252e/%252e%252e/etc/shadow", "path:/etc/shadow"),
        ("path", "/srv/reports/\u2025/\u2025/etc", "path:/etc"),
        ("url", "file:///etc/shadow", "path:/etc/shadow"),
        ("url", "http://evil.example\\@good.example/x", "host:evil.example"),
        ("share", "\\\\fileserver\\finance\\q3.xlsx", "host:fileserver"),
        ("path", "/" + "./" * 3000 + "etc/shadow", "path:?overlong"),
    ],
)
def test_the_place_of_an_argument(name: str, value: str, key: str | None) -> None:
    assert place_of(name, value) == key


def test_argument_keys_read_nested_values_places_first() -> None:
    args = {
        "path": "/srv/a/b",
        "n": 3,
        "flag": True,
        "tables": ["orders", "users", 4],
        "opts": {"p": "/etc/x"},
    }
    assert argument_keys(args) == ("path:/srv/a", "path:/etc/x", "tables=orders", "tables=users")
    assert argument_keys({"a": [{"b": {"c": {"d": "/too/deep"}}}]}) == ()  # past MAX_DEPTH
    assert argument_keys(None) == () and argument_keys([1, 2]) == () and argument_keys({}) == ()
    many = {f"t{i}": f"table{i}" for i in range(20)}
    assert len(argument_keys(many)) == MAX_KEYS
    # identifiers cannot push a place out of the keys
    padded = {**many, "path": "/etc/shadow"}
    assert argument_keys(padded)[0] == "path:/etc/shadow" and len(argument_keys(padded)) == MAX_KEYS


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@given(_json)
def test_argument_keys_never_raises_and_stays_bounded(arguments: Any) -> None:
    keys = argument_keys(arguments)
    assert len(keys) <= MAX_KEYS and len(set(keys)) == len(keys)
    assert all(type(k) is str and k for k in keys)


@given(st.lists(st.sampled_from(["srv", "reports", "..", ".", "etc", "x"]), min_size=1, max_size=8))
def test_a_rooted_path_is_keyed_by_where_it_resolves(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    resolved = [p for p in posixpath.normpath(path).split("/") if p]
    assert place_of("path", path) == "path:/" + "/".join(resolved[:2])


# -- the class of a tool call --------------------------------------------------------------------
def test_tool_class_from_annotations_then_name() -> None:
    assert tool_class("files.read_file", None) == (READ, False)
    assert tool_class("files.list_directory", {}) == (READ, False)
    assert tool_class("files.write_file", None) == (WRITE, False)
    assert tool_class("iam.grant_role", None) == (ADMIN, True)
    assert tool_class("files.purge", {"readOnlyHint": True}) == (READ, False)
    assert tool_class("files.cleanup", {"destructiveHint": True}) == (WRITE, True)
    assert tool_class("iam.remove_role", {"destructiveHint": True}) == (ADMIN, True)
    assert tool_class("files.read_file", {"destructiveHint": False}) == (READ, False)
    # an upstream's hints may raise a tool's class, never lower it
    assert tool_class("iam.grant_admin_role", {"readOnlyHint": True}, raise_only=True) == (ADMIN, True)
    assert tool_class("db.drop_database", {"readOnlyHint": True}, raise_only=True) == (WRITE, False)
    assert tool_class("files.read_file", {"destructiveHint": True}, raise_only=True) == (WRITE, True)


# -- in the engine -------------------------------------------------------------------------------
def test_tool_hints_are_replaced_per_upstream_and_bounded(tmp_path: Path) -> None:
    from vigil.engine import MAX_TOOL_HINTS

    engine = make_engine(write_mcp_workspace(tmp_path / "ws"))
    try:
        beh = engine._state.behaviour
        a_x, a_y, b_z = ("Tool", "a.x"), ("Tool", "a.cleanup"), ("Tool", "b.z")
        engine.note_tools({a_x: {"readOnlyHint": True}, a_y: {"destructiveHint": True}}, source="a")
        engine.note_tools({b_z: {"readOnlyHint": True}}, source="b")
        assert set(engine._tool_hints) == {a_x, a_y, b_z}
        assert beh.tool_class(a_y)[:2] == (WRITE, True)  # the upstream says destructive
        # upstream a lists again without a.cleanup: its hints go, b's stay
        engine.note_tools({a_x: {"readOnlyHint": True}}, source="a")
        assert set(engine._tool_hints) == {a_x, b_z}
        assert beh.tool_class(a_y)[:2] == (WRITE, False)  # its name only now
        engine.note_tools({}, source="b")
        assert set(engine._tool_hints) == {a_x}
        # an upstream publishing ever more tools cannot grow them without bound
        many = {("Tool", f"c.t{i}"): {"readOnlyHint": True} for i in range(MAX_TOOL_HINTS + 50)}
        engine.note_tools(many, source="c")
        assert len(engine._tool_hints) == MAX_TOOL_HINTS
        engine.note_tools({("Tool", f"c.u{i}"): {"readOnlyHint": True} for i in range(5)}, source="c")
        assert set(engine._tool_hints) == {a_x} | {("Tool", f"c.u{i}") for i in range(5)}
    finally:
        engine.close()


def _call(tool: str, when: datetime, **arguments: Any) -> dict[str, Any]:
    return {
        "subject": {"type": "Agent", "id": WHO},
        "action": {"name": "call_tool"},
        "resource": {"type": "Tool", "id": tool},
        "context": {
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ip": "10.11.1.7",
            "region": "eu-west-1",
            "user_agent": "agent-sdk/1.0",
            "arguments": arguments,
        },
    }


def _office_hours(days: int = 14, per_day: int = 30) -> Iterator[tuple[int, int, datetime]]:
    """``(day, k, time)`` of ``per_day`` calls in office hours on each weekday of ``days``."""
    for d in range(days):
        day = T0 + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for k in range(per_day):
            yield d, k, day + timedelta(hours=9 + k % 8, minutes=(k * 7) % 50, seconds=k % 60)


def _tool_habit(e: Engine, days: int = 14, per_day: int = 30) -> datetime:
    """Office hours on weekdays: ``files.read_file`` under /srv/reports and ``db.query`` on two
    tables. Returns the time of the last call."""
    last = T0
    for d, k, when in _office_hours(days, per_day):
        if k % 3:
            req = _call("files.read_file", when, path=f"/srv/reports/{d}/{k}.csv")
        else:
            req = _call("db.query", when, table=("orders", "invoices")[k % 2], sql=f"select {k}")
        assert e.decide(req, now=when).allowed
        last = max(last, when)
    return last


@pytest.fixture
def tool_engine(tmp_path: Path) -> Iterator[Engine]:
    e = make_engine(write_workspace(tmp_path, {"learning_days": 7, "learning_requests": 100}))
    yield e
    e.close()


def test_a_call_reaching_a_new_place_raises_new_argument(tool_engine: Engine) -> None:
    e = tool_engine
    when = _tool_habit(e) + timedelta(minutes=10)
    usual = e.decide(_call("files.read_file", when, path="/srv/reports/9/new.csv"), now=when)
    assert "new_argument" not in usual.signals
    for path in ("/etc/shadow", "/srv/reports/../../etc/shadow"):
        when += timedelta(seconds=30)
        rec = e.decide(_call("files.read_file", when, path=path), now=when)
        assert "new_argument" in rec.signals, (path, rec.signals)
        why = next(h for h in rec.assessment.details() if h["signal"] == "new_argument")["why"]  # type: ignore[union-attr]
        assert "path:/etc/shadow" in why and "path:/srv/reports" in why
    when += timedelta(seconds=30)
    rec = e.decide(_call("db.query", when, table="payroll", sql="select 1"), now=when)
    assert "new_argument" in rec.signals
    when += timedelta(seconds=30)
    rec = e.decide(_call("db.query", when, table="orders", sql="select * from payroll"), now=when)
    assert "new_argument" not in rec.signals  # free text is not a place


def test_a_read_only_agent_calling_a_destructive_tool_drifts(tool_engine: Engine) -> None:
    e = tool_engine
    when = _tool_habit(e) + timedelta(minutes=10)
    e.note_tools({("Tool", "files.cleanup"): {"destructiveHint": True}})
    rec = e.decide(_call("files.cleanup", when, path="/srv/reports/1"), now=when)
    assert "privilege_drift" in rec.signals and not rec.allowed
    why = next(h for h in rec.assessment.details() if h["signal"] == "privilege_drift")["why"]  # type: ignore[union-attr]
    assert "files.cleanup" in why
    # an upstream cannot make its own tool look harmless: its name says it writes
    e.note_tools({("Tool", "files.purge_cache"): {"readOnlyHint": True}})
    when += timedelta(minutes=1)
    rec = e.decide(_call("files.purge_cache", when, path="/srv/reports/1"), now=when)
    assert "privilege_drift" in rec.signals


def test_a_declared_tool_entity_wins_over_the_upstreams_hints(tmp_path: Path) -> None:
    e = make_engine(write_workspace(tmp_path, {"learning_days": 7, "learning_requests": 100}))
    try:
        beh = e._state.behaviour
        e.note_tools({("Tool", "files.read_file"): {"destructiveHint": True}})
        assert beh.tool_class(("Tool", "files.read_file"))[:2] == (WRITE, True)
        e.note_tools({("Tool", "files.read_file"): {"readOnlyHint": True}})  # re-classed at once
        assert beh.tool_class(("Tool", "files.read_file"))[:2] == (READ, False)
        # the operator's word (a declared Tool entity) may class a tool below its name, and an
        # entity change re-classes it at once
        purge = ("Tool", "files.purge_cache")
        item = {"uid": {"type": "Tool", "id": purge[1]}, "attrs": {"readOnlyHint": True}, "parents": []}
        e.change_entities(upserts=[item], by="priya")
        e.decide(_call(purge[1], T0, path="/srv/x"), now=T0)
        assert e._state.behaviour._tools[purge][:2] == (READ, False)
        item["attrs"] = {"destructiveHint": True}
        e.change_entities(upserts=[item], by="priya")
        e.decide(_call(purge[1], T0, path="/srv/x"), now=T0)
        assert e._state.behaviour._tools[purge][:2] == (WRITE, True)
    finally:
        e.close()


def test_an_agent_whose_places_are_always_new_is_not_flagged(tool_engine: Engine) -> None:
    """A search agent whose every call names a new ticket: novelty says nothing for it."""
    e = tool_engine
    when = T0
    for d, k, when in _office_hours():
        e.decide(_call("tickets.get_ticket", when, ticket=f"tk-{d}-{k}"), now=when)
    when += timedelta(minutes=5)
    rec = e.decide(_call("tickets.get_ticket", when, ticket="tk-new"), now=when)
    assert "new_argument" not in rec.signals and rec.allowed


def test_places_survive_a_snapshot_and_old_snapshots_load() -> None:
    p = Profile(T0.timestamp())
    p.args["path:/srv/reports"] = 20_000
    p.nov_arg = 2.0
    q = Profile.from_blob(p.to_blob())
    assert q.args == {"path:/srv/reports": 20_000} and q.nov_arg == 2.0
    import zlib

    import orjson

    old = orjson.loads(zlib.decompress(p.to_blob()))
    del old["args"]
    old["novelty"] = old["novelty"][:7]  # a snapshot from before tool-call places
    r = Profile.from_blob(zlib.compress(orjson.dumps(old)))
    assert r.args == {} and r.nov_arg == 0.0


def test_bad_tool_actions_setting_is_a_workspace_error(tmp_path: Path) -> None:
    from vigil.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match="tool_actions"):
        make_engine(write_workspace(tmp_path, {"tool_actions": [""]}))


# -- through the gateway ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    up = UpstreamProcess()
    yield up
    up.stop()


def test_through_the_gateway_a_traversal_is_a_new_place_and_a_destructive_tool_drifts(
    tmp_path: Path, upstream: UpstreamProcess
) -> None:
    behaviour = '[behaviour]\nmode = "enforce"\nlearning_days = 0\nlearning_requests = 50\n'
    ws = write_mcp_workspace(tmp_path / "ws", behaviour=behaviour)
    now = [T0.timestamp()]
    sink = MemorySink()
    engine = Engine.from_workspace(ws, audit=sink, clock=lambda: now[0])
    gw = GatewayServer(gateway(engine, [UpstreamSpec("files", url=upstream.url)]))
    try:

        async def habit_and_attack() -> None:
            async with client(gw.url, "tok-admin") as c:
                await c.list_tools()  # the gateway learns the upstream's annotations
                for d in range(14):
                    day = T0 + timedelta(days=d)
                    if day.weekday() >= 5:
                        continue
                    for k in range(8):
                        now[0] = (day + timedelta(hours=9 + k, minutes=k * 5)).timestamp()
                        await c.call_tool("files.read_file", {"path": f"/srv/reports/{d}-{k}.txt"})
                now[0] = (T0 + timedelta(days=14, hours=10)).timestamp()
                await c.call_tool("files.read_file", {"path": "/srv/reports/../../etc/hosts"})
                now[0] += 60
                with pytest.raises(MCPError):  # stepped up: the record says why
                    await c.call_tool("files.delete_file", {"path": "/srv/reports/0-0.txt"})

        run(habit_and_attack)
        traversal, delete = sink.records[-2], sink.records[-1]
        assert "new_argument" in traversal.signals and traversal.context["arguments"]["path"].endswith(
            "hosts"
        )
        assert "privilege_drift" in delete.signals and not delete.allowed
    finally:
        gw.stop()
        engine.close()


def test_a_request_id_new_on_every_call_does_not_silence_places(tool_engine: Engine) -> None:
    """Review finding: one novelty count for every kind of key let a per-call unique identifier
    (a request id) switch off new_argument for paths too. Each kind now counts its own."""
    e = tool_engine
    when = T0
    for d, k, when in _office_hours():
        req = _call("files.read_file", when, path=f"/srv/reports/{d}/{k}.csv", request_id=f"req{d}x{k}")
        e.decide(req, now=when)
    when += timedelta(minutes=5)
    rec = e.decide(_call("files.read_file", when, path="/etc/shadow", request_id="reqnew"), now=when)
    assert "new_argument" in rec.signals, rec.explanations()
    assert "path:/etc/shadow" in " ".join(rec.explanations())


def test_places_learned_elsewhere_are_known_here() -> None:
    """Review finding: places were announced to other processes under the actions' prefix."""
    from vigil.behaviour.model import BehaviourModel
    from vigil.behaviour.settings import BehaviourSettings
    from vigil.behaviour.shared import PREFIXES

    assert "g:" in PREFIXES
    model = BehaviourModel(BehaviourSettings())
    p = Profile(T0.timestamp())
    assert model.learn_remote(p, "g:", "path:/etc", 20_000)
    assert "path:/etc" in p.args and "path:/etc" not in p.actions
