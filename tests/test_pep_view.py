"""What a PEP sees: reason codes, the decision id and the ticket id (and where to approve it), never
the identity's learned behaviour; over HTTP, for AuthZEN and ext_authz. Operators see everything."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import vigil
from tests.behaviour_support import engine, habit, request, write_workspace
from vigil.model.decision import APPROVE_PATH
from vigil.server.app import ADMIN_PREFIX, ServerConfig, VigilApp
from vigil.server.logs import JsonLog

WHO = "payments-agent-0"
PEP_KEYS = {"id", "reason_codes", "advice", "ticket", "error"}
ROUTES = '[ext_authz]\nroutes = ["GET /db/{name} => read Database::{name}"]\nsubject_type = "Agent"\n'


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[vigil.Engine, Clock, datetime]]:
    yield from _setup(tmp_path, {})


@pytest.fixture
def touchy(tmp_path: Path) -> Iterator[tuple[vigil.Engine, Clock, datetime]]:
    """Steps up at risk 20: a night-time request over ext_authz (no ip, region or user agent) is
    enough."""
    yield from _setup(tmp_path, {"step_up_risk": 20})


def _setup(tmp_path: Path, behaviour: dict[str, Any]) -> Iterator[tuple[vigil.Engine, Clock, datetime]]:
    ws = write_workspace(tmp_path / "ws", behaviour, extra=ROUTES)
    clock = Clock()
    e = engine(ws, clock=clock)
    last = habit(e, WHO)
    t = (last + timedelta(days=3)).replace(hour=3)
    clock.t = t.timestamp()
    yield e, clock, t
    e.close()


def _call(e: vigil.Engine, method: str, path: str, **kw: Any) -> httpx.Response:
    app = VigilApp(e, ServerConfig(api_keys=None, admin_keys=None), JsonLog(access=False))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pdp") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


def _assert_pep_only(body: dict[str, Any], raw: bytes) -> None:
    ctx = body["context"]
    assert set(ctx) <= PEP_KEYS, set(ctx) - PEP_KEYS
    assert b"known" not in raw and b"eu-west-1" not in raw and b"10.10." not in raw


def test_authzen_step_up_deny_carries_codes_ids_and_where_to_approve_only(
    setup: tuple[vigil.Engine, Clock, datetime],
) -> None:
    e, _clock, t = setup
    req = request(WHO, "read", "payments-table-0", t, ip="203.0.113.9", user_agent="curl/8")
    full = e.decide(req, now=t).to_authzen(full=True)["context"]  # what an operator sees
    assert any("known" in d["why"] for d in full["signal_details"])  # the leak there was
    r = _call(e, "POST", "/access/v1/evaluation", json=req)
    assert r.status_code == 200
    body = r.json()
    assert body["decision"] is False
    _assert_pep_only(body, r.content)
    ctx = body["context"]
    assert ctx["reason_codes"] == ["risk_step_up"] and ctx["advice"] == ["step_up"]
    assert set(ctx["ticket"]) == {"id", "expires", "approve"} and ctx["ticket"]["id"].startswith("tkt_")
    assert ctx["ticket"]["approve"] == APPROVE_PATH == ADMIN_PREFIX + "/approvals/approve"
    # the batch form too
    r = _call(e, "POST", "/access/v1/evaluations", json={"evaluations": [req]})
    assert r.status_code == 200
    _assert_pep_only(r.json()["evaluations"][0], r.content)
    # the admin API still has the full explanation of the ticket
    r = _call(e, "GET", ADMIN_PREFIX + "/approvals")
    assert r.status_code == 200 and b"known" in r.content


def test_ext_authz_body_reaching_the_client_carries_no_explanations(
    touchy: tuple[vigil.Engine, Clock, datetime],
) -> None:
    e, _clock, _t = touchy
    r = _call(e, "GET", "/ext_authz/db/payments-table-9", headers={"x-subject-id": WHO})
    assert r.status_code == 403
    body = orjson.loads(r.content)
    _assert_pep_only(body, r.content)
    assert b"% of its activity" not in r.content  # the unusual_hour explanation
    assert body["context"]["reason_codes"] == ["risk_step_up"]
    assert set(body["context"]["ticket"]) == {"id", "expires", "approve"}
    assert body["context"]["id"] == r.headers["x-vigil-decision-id"]
    assert "signal_details" not in body["context"] and "risk" not in body["context"]


def test_admin_approve_takes_uses(setup: tuple[vigil.Engine, Clock, datetime]) -> None:
    e, _clock, t = setup
    req = request(WHO, "read", "payments-table-0", t, ip="203.0.113.9", user_agent="curl/8")
    tid = e.decide(req, now=t).ticket["id"]  # type: ignore[index]
    r = _call(e, "POST", ADMIN_PREFIX + "/approvals/approve", json={"ticket": tid, "by": "p", "uses": 0})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument"
    r = _call(e, "POST", ADMIN_PREFIX + "/approvals/approve", json={"ticket": tid, "by": "p", "uses": 2})
    assert r.status_code == 200 and r.json()["uses"] == 2
    assert r.json()["context"] == {"network": "203.0.113.0/24", "region": "eu-west-1", "user_agent": "curl/8"}
