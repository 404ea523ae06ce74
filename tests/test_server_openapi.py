"""schemathesis against the running server's ``/openapi.json``: no server errors, every status
documented, every response body and header as the schema says. Bounded by ``max_examples``.

``negative_data_rejection`` is not run: a batch item that breaks the schema is, by the AuthZEN
certification scenario, a ``decision: false`` in a 200, not a 4xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.profiles import examples
from tests.test_server_support import ADMIN_KEY, API_KEY, ServerProcess, copy_workspace
from vigil.server.openapi import openapi_document

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ws = copy_workspace("authzen-search", tmp_path_factory.mktemp("openapi"))
    (ws / "vigil.toml").write_text('[audit]\nsink = "none"\n')
    proc = ServerProcess(ws).wait_ready()
    yield proc
    assert proc.proc.poll() is None, proc.log()
    assert proc.stop()
    assert '"unhandled exception"' not in proc.log()


# The document the server serves (``test_served_document_is_the_library_one`` checks they are equal),
# loaded at collection time so each operation is its own test.
SCHEMA = schemathesis.openapi.from_dict(openapi_document())
OPERATIONS = [op.ok() for op in SCHEMA.get_all_operations()]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


# Negative data only where there is something to break: a request body or a path parameter.
CASES = [
    (op, mode)
    for op in OPERATIONS
    for mode in MODES
    if mode is GenerationMode.POSITIVE or op.body or op.path_parameters
]


@pytest.mark.parametrize(("operation", "mode"), CASES, ids=[f"{op.label}-{mode.value}" for op, mode in CASES])
def test_api_matches_its_schema(server: ServerProcess, operation: Any, mode: GenerationMode) -> None:
    key = ADMIN_KEY if operation.path.startswith("/admin") else API_KEY
    headers = {"Authorization": f"Bearer {key}", "x-vigil-api-key": API_KEY}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples(25), suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS)

    run()


def test_served_document_is_the_library_one(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/openapi.json").json() == openapi_document()
