"""The MCP -> decision mapping (vigil.protocol.mcp) under hypothesis: any JSON as tool arguments,
any tool name and annotations. Never an exception, never an allow for a value Cedar cannot hold,
every outcome audited; and over HTTP, random JSON-RPC bodies never crash the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.mcp_support import GatewayServer, UpstreamProcess, gateway, write_workspace
from tests.profiles import examples
from vigil.audit import MemorySink
from vigil.engine import Engine
from vigil.errors import ValueConversionError
from vigil.mcp import UpstreamSpec
from vigil.protocol import mcp as pm

FUZZ = settings(max_examples=examples(300), suppress_health_check=list(HealthCheck), deadline=None)
HTTP_FUZZ = settings(max_examples=examples(60), suppress_health_check=list(HealthCheck), deadline=None)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
)
_keys = st.text(max_size=8) | st.sampled_from(["__entity", "__extn", "__expr", "path", "type", "id"])
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


def _holdable(value: Any) -> bool:
    if value is None or type(value) is float:
        return False
    if type(value) is int:
        return -(2**63) <= value < 2**63
    if type(value) is list:
        return all(_holdable(v) for v in value)
    if type(value) is dict:
        return all(k not in ("__entity", "__extn", "__expr") and _holdable(v) for k, v in value.items())
    return True


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    permit_all = '@id("all") permit (principal, action, resource);\n'
    ws = write_workspace(tmp_path_factory.mktemp("m") / "ws", policies=permit_all)
    e = Engine.from_workspace(ws, audit=MemorySink())
    yield e
    e.close()


CALLER = pm.Caller(("Agent", "admin"), "s", "fuzz", "1", "127.0.0.1")


@FUZZ
@given(
    args=st.dictionaries(_keys, json_values, max_size=5) | json_values,
    name=st.text(max_size=30),
    hints=st.dictionaries(st.sampled_from([*pm.ANNOTATIONS, "title", "x"]), json_values, max_size=5),
)
def test_any_arguments_map_to_a_decision_and_only_holdable_ones_can_be_allowed(
    engine: Engine, args: Any, name: str, hints: dict[str, Any]
) -> None:
    item = pm.Item("Tool", name, pm.annotations_of(hints))
    assert set(item.annotations) <= set(pm.ANNOTATIONS)
    before = len(engine.audit.records)  # type: ignore[attr-defined]
    record = pm.decide_call(engine, CALLER, item, "tools/call", args)
    assert len(engine.audit.records) == before + 1  # type: ignore[attr-defined]
    holdable = args is None or (type(args) is dict and _holdable(args))
    if not holdable:
        assert not record.allowed and record.reason_codes == ("invalid_request",)
        assert record.error is not None and record.error["code"] == "invalid_value"
    else:
        assert record.allowed, record.reason_codes
    code, message, data = pm.denial(record)
    assert code == pm.DENIED and message.startswith("denied by vigil") and data["reasons"]


@FUZZ
@given(value=json_values)
def test_check_arguments_raises_only_its_own_error(value: Any) -> None:
    try:
        got = pm.check_arguments({"v": value})
    except ValueConversionError as e:
        assert e.code == "invalid_value" and "arguments.v" in e.message
    else:
        assert got == {"v": value} and _holdable(value)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayServer, MemorySink]]:
    up = UpstreamProcess()
    sink = MemorySink()
    engine = Engine.from_workspace(write_workspace(tmp_path_factory.mktemp("h") / "ws"), audit=sink)
    gw = GatewayServer(gateway(engine, [UpstreamSpec("files", url=up.url)]))
    yield gw, sink
    gw.stop()
    engine.close()
    up.stop()


_methods = st.sampled_from(
    ["tools/call", "tools/list", "resources/read", "prompts/get", "initialize", "ping", "x"]
)


@HTTP_FUZZ
@given(
    body=st.fixed_dictionaries(
        {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "method": _methods | json_values},
        optional={"id": st.integers() | st.text(max_size=5) | st.none(), "params": json_values},
    )
    | json_values
)
def test_random_json_rpc_bodies_never_crash_the_gateway(
    served: tuple[GatewayServer, MemorySink], body: Any
) -> None:
    gw, sink = served
    before = len(sink.records)
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": "Bearer tok-reader",
        "Content-Type": "application/json",
    }
    r = httpx.post(gw.url, json=body, headers=headers, timeout=10)
    assert r.status_code < 500, (body, r.status_code, r.text)
    assert not any(rec.allowed for rec in sink.records[before:])
    assert gw.thread.is_alive()
