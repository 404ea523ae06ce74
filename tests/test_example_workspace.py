"""The agent-fleet example workspace (examples/agent-fleet): valid under its schema,
and its day of traffic reproducible, well formed and decided sensibly by Cedar itself.

cedarpy is the reference here: these tests check the example, not vigil's engine.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from collections import Counter
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import cedarpy
import pytest

FLEET = Path(__file__).resolve().parents[1] / "examples" / "agent-fleet"
ACTIONS = {"read", "list", "write", "delete", "invoke", "grant", "create_key", "assume_role"}
PRINCIPAL_TYPES = {"Agent", "ServiceAccount"}
REQUIRED_CONTEXT = {"time", "ip", "region", "hour"}
OPTIONAL_CONTEXT = {"mfa", "approved"}
SAMPLE_SIZE = 500


@cache
def schema_text() -> str:
    return (FLEET / "schema.cedarschema").read_text()


@cache
def schema() -> cedarpy.Schema:
    return cedarpy.Schema.from_str(schema_text())


@cache
def policies_text() -> str:
    # Concatenated in file order: cedarpy names the policies policy0, policy1, ... in this order.
    return "\n".join(p.read_text() for p in sorted((FLEET / "policies").glob("*.cedar")))


@cache
def policies() -> dict[str, dict[str, Any]]:
    """cedarpy policy id ("policy0", ...) -> its JSON form (effect, annotations, conditions)."""
    return json.loads(cedarpy.policies_to_json_str(policies_text()))["staticPolicies"]


def annotation_id(cedar_id: str) -> str:
    return policies()[cedar_id]["annotations"]["id"]


def needs_behaviour(policy: dict[str, Any]) -> bool:
    """True for policies that can only match when the engine adds context.vigil."""
    return '"vigil"' in json.dumps(policy["conditions"])


@cache
def entity_list() -> tuple[dict[str, Any], ...]:
    return tuple(e for p in sorted((FLEET / "entities").glob("*.json")) for e in json.loads(p.read_text()))


@cache
def entities() -> cedarpy.Entities:
    return cedarpy.Entities.from_json_str(json.dumps(list(entity_list())), schema())


@cache
def event_lines() -> tuple[str, ...]:
    return tuple((FLEET / "events.jsonl").read_text().splitlines())


def to_cedar(line: str) -> dict[str, Any]:
    """An AuthZEN evaluation request (one events.jsonl line) as a cedarpy request.

    The schema declares every context attribute the generator writes (`time` included, as an
    optional String), so the context passes through unchanged; `ip` stays a string and the
    schema makes it an ipaddr.
    """
    r = json.loads(line)
    return {
        "principal": {"type": r["subject"]["type"], "id": r["subject"]["id"]},
        "action": {"type": "Action", "id": r["action"]["name"]},
        "resource": {"type": r["resource"]["type"], "id": r["resource"]["id"]},
        "context": r["context"],
    }


def decide(lines: tuple[str, ...]) -> list[Any]:
    ps = cedarpy.PolicySet.from_str(policies_text())
    return cedarpy.is_authorized_batch([to_cedar(line) for line in lines], ps, entities(), schema())


@cache
def sample() -> tuple[str, ...]:
    lines = event_lines()
    return lines[:: len(lines) // SAMPLE_SIZE]


@cache
def full_day() -> list[Any]:
    # The whole file takes a few seconds with cedarpy; no need to sample.
    return decide(event_lines())


# ------------------------------------------------------------------------------ workspace


def test_policies_validate_against_the_schema() -> None:
    result = cedarpy.validate_policies(policies_text(), schema())
    assert result.validation_passed, [str(e) for e in result.errors]


def test_each_policy_file_validates_on_its_own() -> None:
    for path in sorted((FLEET / "policies").glob("*.cedar")):
        result = cedarpy.validate_policies(path.read_text(), schema())
        assert result.validation_passed, (path.name, [str(e) for e in result.errors])


def test_every_policy_has_a_unique_id_and_a_description() -> None:
    ids = [p["annotations"].get("id") for p in policies().values()]
    assert None not in ids
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    assert all(p["annotations"].get("description") for p in policies().values())
    effects = Counter(p["effect"] for p in policies().values())
    assert effects["forbid"] >= 2 and effects["permit"] >= 5, effects


def test_entities_load_against_the_schema() -> None:
    listed = entity_list()
    uids = [(e["uid"]["type"], e["uid"]["id"]) for e in listed]
    assert len(uids) == len(set(uids)), "duplicate entity uid"
    assert len(entities()) >= len(listed)  # cedarpy adds the schema's action entities
    kinds = Counter(t for t, _ in uids)
    assert kinds["Team"] == 6
    assert kinds["Human"] == 12
    assert kinds["Agent"] + kinds["ServiceAccount"] == 40
    resources = sum(kinds[t] for t in ("Database", "Bucket", "ApiEndpoint", "McpTool", "Secret"))
    assert resources >= 150


def test_every_identity_belongs_to_a_team_and_has_an_owner() -> None:
    humans = {e["uid"]["id"] for e in entity_list() if e["uid"]["type"] == "Human"}
    for e in entity_list():
        if e["uid"]["type"] in PRINCIPAL_TYPES:
            assert e["parents"] == [e["attrs"]["team"]], e["uid"]
            assert e["attrs"]["owner"]["id"] in humans, e["uid"]


# --------------------------------------------------------------------------------- events


def test_the_generator_reproduces_events_jsonl_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    subprocess.run(
        [sys.executable, str(FLEET / "generate_events.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    committed = (FLEET / "events.jsonl").read_bytes()
    assert out.read_bytes() == committed
    assert len(committed) < 5_000_000


def test_every_event_is_a_well_formed_request_on_known_entities() -> None:
    known = {(e["uid"]["type"], e["uid"]["id"]) for e in entity_list()}
    lines = event_lines()
    assert 15_000 <= len(lines) <= 25_000
    previous = ""
    for n, line in enumerate(lines, 1):
        r = json.loads(line)
        assert set(r) == {"subject", "action", "resource", "context"}, n
        subject, resource, ctx = r["subject"], r["resource"], r["context"]
        assert set(subject) == {"type", "id"} and subject["type"] in PRINCIPAL_TYPES, n
        assert (subject["type"], subject["id"]) in known, (n, subject)
        assert set(resource) == {"type", "id"} and (resource["type"], resource["id"]) in known, (n, resource)
        assert r["action"] == {"name": r["action"]["name"]} and r["action"]["name"] in ACTIONS, n

        assert REQUIRED_CONTEXT <= set(ctx) <= REQUIRED_CONTEXT | OPTIONAL_CONTEXT, (n, sorted(ctx))
        assert ctx["time"].endswith("Z"), n
        when = datetime.fromisoformat(ctx["time"])
        assert when.date().isoformat() == "2026-11-27", n
        assert ctx["hour"] == when.hour, n
        assert ctx["time"] >= previous, f"line {n} is out of order"
        previous = ctx["time"]
        ipaddress.ip_address(ctx["ip"])
        assert isinstance(ctx["region"], str) and ctx["region"], n
        assert all(ctx.get(flag, True) is True for flag in ("mfa", "approved")), n


def test_traffic_has_the_expected_rhythms() -> None:
    by_hour: Counter[tuple[str, int]] = Counter()
    for line in event_lines():
        r = json.loads(line)
        by_hour[(r["subject"]["id"], r["context"]["hour"])] += 1

    def hours(who: str) -> set[int]:
        return {h for (w, h) in by_hour if w == who}

    assert hours("billing-etl") == {1, 2, 3}  # nightly batch, 01:00-03:30
    assert hours("support-triage-bot").isdisjoint(range(6))  # office hours: nothing at night
    assert 3 in hours("oncall-runbook-agent") and len(hours("oncall-runbook-agent")) <= 8  # a few pages


# ------------------------------------------------------------------------------ decisions


def test_a_sample_of_the_day_is_mostly_allowed() -> None:
    results = decide(sample())
    assert len(results) >= SAMPLE_SIZE
    decisions = Counter(r.decision for r in results)
    assert set(decisions) <= {cedarpy.Decision.Allow, cedarpy.Decision.Deny}, decisions
    allow_rate = decisions[cedarpy.Decision.Allow] / len(results)
    assert 0.55 <= allow_rate <= 0.90, allow_rate


def test_the_full_day_decides_without_errors() -> None:
    results = full_day()
    assert all(not r.diagnostics.errors for r in results)
    allow_rate = sum(r.allowed for r in results) / len(results)
    assert 0.55 <= allow_rate <= 0.90, allow_rate


def test_every_forbid_fires_somewhere_in_the_day() -> None:
    fired: Counter[str] = Counter()
    for r in full_day():
        if not r.allowed:
            fired.update(annotation_id(p) for p in r.diagnostics.reasons)
    forbids = {annotation_id(k) for k, p in policies().items() if p["effect"] == "forbid"}
    forbids -= {annotation_id(k) for k, p in policies().items() if needs_behaviour(p)}
    assert forbids, "no forbid policies"
    assert {f for f in forbids if fired[f] == 0} == set(), fired


def test_every_permit_is_used_somewhere_in_the_day() -> None:
    used: Counter[str] = Counter()
    for r in full_day():
        if r.allowed:
            used.update(annotation_id(p) for p in r.diagnostics.reasons)
    permits = {annotation_id(k) for k, p in policies().items() if p["effect"] == "permit"}
    assert {p for p in permits if used[p] == 0} == set(), used


@pytest.mark.parametrize(("risk", "allowed"), [(10, True), (89, True), (90, False), (100, False)])
def test_the_behaviour_forbid_needs_context_vigil(risk: int, allowed: bool) -> None:
    results = full_day()
    line = next(line for line, r in zip(event_lines(), results, strict=True) if r.allowed)
    request = to_cedar(line)
    request["context"]["vigil"] = {"risk": risk, "signals": ["new_region"]}
    ps = cedarpy.PolicySet.from_str(policies_text())
    result = cedarpy.is_authorized(request, ps, entities(), schema())
    assert result.allowed is allowed
    if not allowed:
        assert [annotation_id(p) for p in result.diagnostics.reasons] == ["forbid-high-behaviour-risk"]
