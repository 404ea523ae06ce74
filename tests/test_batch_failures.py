"""``decide_many`` and AuthZEN batches never abort: an item whose decision fails unexpectedly is a
deny with reason ``internal_error`` (logged with the exception); the HTTP batch is still a 200."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

import vigil
from tests.test_server_support import copy_workspace
from vigil.audit import MemorySink
from vigil.errors import EXIT_STATUS, HTTP_STATUS
from vigil.model.decision import ReasonCode
from vigil.server.app import ServerConfig, VigilApp
from vigil.server.logs import JsonLog

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
READ = {
    "subject": {"type": "user", "id": RICK},
    "action": {"name": "can_read_todos"},
    "resource": {"type": "todo", "id": "1"},
}


class FailingIds:
    """A decision id source that fails on its ``fail_on``-th call (a broken component)."""

    def __init__(self, fail_on: int) -> None:
        self.calls = 0
        self.fail_on = fail_on

    def __call__(self) -> int:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("id source broke")
        return self.calls


def _engine(tmp: Path, ids: Any) -> vigil.Engine:
    return vigil.Engine.from_workspace(copy_workspace("authzen-todo", tmp), audit=MemorySink(), ids=ids)


def test_decide_many_turns_a_failure_into_a_denied_item(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _engine(tmp_path, FailingIds(2)) as e, caplog.at_level(logging.ERROR, logger="vigil.engine"):
        records = e.decide_many([READ, READ, READ])
    assert [r.allowed for r in records] == [True, False, True]
    assert records[1].reason_codes == ("internal_error",)
    assert records[1].error == {
        "code": "internal_error",
        "message": "the decision failed unexpectedly; denied",
    }
    assert "id source broke" in caplog.text  # logged with the exception
    assert ReasonCode.INTERNAL_ERROR.text
    assert HTTP_STATUS["internal_error"] == 500 and EXIT_STATUS["internal_error"] == 1


def test_http_batch_is_200_with_the_failed_item_denied(tmp_path: Path) -> None:
    with _engine(tmp_path, FailingIds(2)) as e:
        app = VigilApp(e, ServerConfig(api_keys=None, admin_keys=None), JsonLog(access=False))

        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pdp") as c:
                return await c.post("/access/v1/evaluations", json={**READ, "evaluations": [{}, {}, {}]})

        r = asyncio.run(go())
    assert r.status_code == 200
    items = r.json()["evaluations"]
    assert [i["decision"] for i in items] == [True, False, True]
    assert items[1]["context"]["reason_codes"] == ["internal_error"]
