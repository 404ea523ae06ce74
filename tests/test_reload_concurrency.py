"""Reload while decisions run on other threads: a decision sees one whole workspace generation,
never policies of one with entities of the other.

Two generations, A and B, whose policies only permit with their own entities (group membership,
principal and resource attributes all name the generation): any mix of the two denies, or is
permitted by a policy whose id and the record's policy revision disagree. Threads decide in a loop
while the main thread swaps the files and reloads back and forth; every answer must be exactly
generation A's or exactly generation B's.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from vigil import Engine
from vigil.audit.sink import NullSink

SETTINGS = '[behaviour]\nmode = "shadow"\n\n[store]\nbackend = "memory"\n'
RELOADS = 40
THREADS = 3


def _policies(gen: str) -> str:
    return (
        f'@id("gen-{gen}")\n'
        f'permit(principal in Group::"{gen}", action == Action::"read", resource is Doc)\n'
        f'when {{ principal.gen == "{gen}" && resource.gen == "{gen}" }};\n'
        "forbid(principal, action, resource) when { principal.gen != resource.gen };\n"
    )


def _entities(gen: str) -> list[dict[str, Any]]:
    return [
        {
            "uid": {"type": "User", "id": "u"},
            "attrs": {"gen": gen},
            "parents": [{"type": "Group", "id": gen}],
        },
        {"uid": {"type": "Group", "id": gen}, "attrs": {}, "parents": []},
        {"uid": {"type": "Doc", "id": "d"}, "attrs": {"gen": gen}, "parents": []},
    ]


def _write(root: Path, gen: str) -> None:
    (root / "policies" / "p.cedar").write_text(_policies(gen))
    (root / "entities" / "users.json").write_text(json.dumps(_entities(gen)[:2]))
    (root / "entities" / "docs.json").write_text(json.dumps(_entities(gen)[2:]))


REQUEST = {
    "subject": {"type": "User", "id": "u"},
    "action": {"name": "read"},
    "resource": {"type": "Doc", "id": "d"},
}


def test_decisions_never_see_a_half_swapped_workspace(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "policies").mkdir(parents=True)
    (root / "entities").mkdir()
    (root / "vigil.toml").write_text(SETTINGS)
    revisions: dict[str, str] = {}
    with Engine.from_workspace(_prepare(root, "A"), audit=NullSink()) as engine:
        revisions[engine.policy_revision] = "A"
        _write(root, "B")
        assert engine.reload().ok
        revisions[engine.policy_revision] = "B"
        assert len(revisions) == 2

        # Each generation's own answer, decided with nothing else running.
        expected = {}
        for gen in ("A", "B"):
            _write(root, gen)
            assert engine.reload().ok
            record = engine.decide(REQUEST)
            expected[gen] = (record.allowed, record.policies, record.reason_codes, record.policy_revision)
            assert record.allowed and record.policies == (f"gen-{gen}",)
        assert expected["A"][3] != expected["B"][3]

        stop = threading.Event()
        lock = threading.Lock()
        seen: dict[str, int] = {"A": 0, "B": 0}
        bad: list[Any] = []

        def decide_loop() -> None:
            while not stop.is_set():
                record = engine.decide(REQUEST)
                got = (record.allowed, record.policies, record.reason_codes, record.policy_revision)
                gen = revisions.get(record.policy_revision)
                with lock:
                    if gen is None or got != expected[gen]:
                        bad.append(got)
                    else:
                        seen[gen] += 1

        threads = [threading.Thread(target=decide_loop) for _ in range(THREADS)]
        for t in threads:
            t.start()
        try:
            for i in range(RELOADS):
                gen = "AB"[i % 2]
                _write(root, gen)
                result = engine.reload()
                assert result.ok and revisions[result.revision] == gen, result
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        assert not bad, bad[:5]
        assert seen["A"] > 0 and seen["B"] > 0, seen


def _prepare(root: Path, gen: str) -> Path:
    _write(root, gen)
    return root
