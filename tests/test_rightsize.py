"""``vigil rightsize``: least agency from observed use, on the example fleet with a recorded log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vigil.cli import rightsize as rs_cli
from vigil.cli.main import app
from vigil.errors import VigilError
from vigil.escalation import rightsize as rs
from vigil.policy.build import build_policy_set
from vigil.policy.cedar import PolicySource

runner = CliRunner()
FLEET = Path(__file__).resolve().parent.parent / "examples" / "agent-fleet"
NOW = "2026-11-28T00:00:00Z"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first 3,000 requests of the example day, and the audit log of their replay."""
    root = tmp_path_factory.mktemp("recorded")
    events = root / "events.jsonl"
    with open(FLEET / "events.jsonl") as f:
        events.write_text("".join(next(f) for _ in range(3000)))
    audit = root / "audit.jsonl"
    res = runner.invoke(
        app,
        [
            "replay",
            "-w",
            str(FLEET),
            "--input",
            str(events),
            "-o",
            str(root / "d.jsonl"),
            "--audit",
            str(audit),
        ],
    )
    assert res.exit_code == 0, res.output
    return {"events": events, "audit": audit, "root": root}


def _run(*args: str) -> tuple[int, dict[str, Any]]:
    res = runner.invoke(app, ["rightsize", "-w", str(FLEET), "--now", NOW, "--json", *args])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def test_rightsize_from_the_audit_log(recorded: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "narrow"
    code, data = _run("--audit", str(recorded["audit"]), "--output", str(out))
    assert code == 0
    o, c = data["observed"], data["check"]
    assert o["requests"] == 3000 and 0 < o["allowed"] < 3000
    assert c["ok"] and c["still_allowed"] == c["replayed"] == o["allowed"]
    assert data["widened"] is False  # the narrowed set allows nothing the original did not
    assert data["removed_access"] and data["unused"]
    # the narrowed workspace is a workspace: `vigil check` loads it
    assert runner.invoke(app, ["check", "-w", str(out)]).exit_code == 0
    assert "rightsize: only the requests" in (out / "policies" / "10-reads.cedar").read_text()
    # each permit is either narrowed (it allowed some observed request) or removed
    removed = set(data["policies"]["removed"])
    narrowed = set(data["policies"]["narrowed"])
    assert not removed & narrowed and narrowed and len(removed | narrowed) == 15


def test_rightsize_from_a_replay_file_and_since(recorded: dict[str, Path]) -> None:
    code, data = _run("--replay", str(recorded["events"]))
    assert code == 0 and data["check"]["ok"] and data["observed"]["source"] == "replay"
    _, audit_data = _run("--audit", str(recorded["audit"]))
    assert data["observed"]["allowed"] == audit_data["observed"]["allowed"]
    # nothing observed in the last minute before a later instant: every permit is removed
    res = runner.invoke(
        app,
        [
            "rightsize",
            "-w",
            str(FLEET),
            "--replay",
            str(recorded["events"]),
            "--since",
            "1m",
            "--now",
            "2027-01-01T00:00:00Z",
            "--json",
        ],
    )
    empty = json.loads(res.stdout)
    assert res.exit_code == 0 and empty["observed"]["requests"] == 0
    assert not empty["policies"]["narrowed"] and len(empty["policies"]["removed"]) == 15


def test_the_check_catches_a_narrowing_that_breaks_observed_requests(
    recorded: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = rs.restriction

    def lossy(triples: Any) -> str:
        kept = sorted(triples)[1:]  # forget one observed request per policy
        return real(kept) if kept else "false"

    monkeypatch.setattr(rs, "restriction", lossy)
    code, data = _run("--audit", str(recorded["audit"]))
    assert code == 1 and not data["check"]["ok"] and data["check"]["broken_lines"]


def test_arguments_are_checked(recorded: dict[str, Path], tmp_path: Path) -> None:
    for args in (
        [],
        ["--audit", str(recorded["audit"]), "--replay", str(recorded["events"])],
        ["--audit", str(recorded["audit"]), "--since", "soon"],
        ["--audit", str(tmp_path / "missing.jsonl")],
    ):
        res = runner.invoke(app, ["rightsize", "-w", str(FLEET), "--json", *args])
        assert res.exit_code == 2, (args, res.output)
        assert json.loads(res.stdout)["error"]["code"] in ("invalid_argument", "invalid_input")


@given(st.text(max_size=12) | st.from_regex(r"[0-9]{1,12}[dhm ]{1,2}", fullmatch=True))
def test_parse_since_never_crashes(text: str) -> None:
    try:
        d = rs_cli.parse_since(text)
    except VigilError as e:
        assert e.code == "invalid_argument"
    else:
        assert d.total_seconds() >= 0


_ANY = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.integers(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(
        st.sampled_from(["type", "id", "name", "time"]), st.text(max_size=5) | st.integers(), max_size=3
    ),
)
_EVENTS = st.builds(
    lambda d: json.dumps({"type": "decision", **d}).encode(),
    st.dictionaries(st.sampled_from(["subject", "action", "resource", "context", "time"]), _ANY, max_size=5),
)
_LINES = st.lists(
    st.one_of(
        _EVENTS,
        st.binary(max_size=40),
        st.builds(
            lambda o: json.dumps(o).encode(),
            st.dictionaries(
                st.sampled_from(["type", "subject", "action", "resource", "context", "time"]),
                st.one_of(
                    st.none(),
                    st.text(max_size=8),
                    st.integers(),
                    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
                    st.just({"time": "2026-11-27T00:00:00Z"}),
                    st.just("decision"),
                    st.just({"type": "A", "id": "b", "name": "c"}),
                ),
                max_size=6,
            ),
        ),
    ),
    max_size=8,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_LINES, st.booleans())
def test_the_observed_use_reader_never_crashes(tmp_path: Path, lines: list[bytes], audit: bool) -> None:
    p = tmp_path / "log.jsonl"
    p.write_bytes(b"\n".join(x.replace(b"\n", b" ") for x in lines) + b"\n")
    from datetime import UTC, datetime

    for item in rs_cli.observed_requests(p, audit=audit, since=datetime(2000, 1, 1, tzinfo=UTC)):
        obj = json.loads(item)
        assert isinstance(obj, dict) and isinstance(obj["context"]["time"], str)


_IDS = st.text(alphabet=st.sampled_from('ab"\\ -é'), min_size=1, max_size=4)
_TRIPLES = st.sets(
    st.tuples(
        st.tuples(st.sampled_from(["Agent", "NS::Bot"]), _IDS),
        st.tuples(st.just("Action"), st.sampled_from(["read", "write"])),
        st.tuples(st.sampled_from(["Doc", "Box"]), _IDS),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(
    _TRIPLES,
    st.lists(
        st.tuples(
            st.tuples(st.sampled_from(["Agent", "NS::Bot"]), _IDS),
            st.tuples(st.just("Action"), st.sampled_from(["read", "write"])),
            st.tuples(st.sampled_from(["Doc", "Box"]), _IDS),
        ),
        max_size=6,
    ),
)
def test_the_restriction_is_valid_cedar_true_exactly_for_its_requests(
    triples: set[Any], others: list[Any]
) -> None:
    text = f"permit (principal, action, resource) when {{\n{rs.restriction(triples)}\n}};"
    ps = build_policy_set([PolicySource("p.cedar", text)], [])
    for p, a, r in [*triples, *others]:
        assert ps.authorizer.is_authorized(p, a, r, {}).allowed == ((p, a, r) in triples)


def test_a_narrowing_that_is_not_valid_cedar_fails_the_check(
    recorded: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rs, "restriction", lambda triples: "principal.nope ==")
    code, data = _run("--audit", str(recorded["audit"]))
    assert code == 1
    assert data["check"]["valid"] is False and not data["check"]["ok"] and data["check"]["problems"]


def test_a_window_further_back_than_dates_go_takes_everything(recorded: dict[str, Path]) -> None:
    code, data = _run("--replay", str(recorded["events"]), "--since", "999999d")
    assert code == 0 and data["observed"]["requests"] == 3000
