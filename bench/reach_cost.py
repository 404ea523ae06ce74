"""The cost of ``[escalation] reach`` to a decision, and to a load (docs/escalation.md, "At
decision time"; docs/benchmarks.md).

    .venv/bin/python bench/reach_cost.py [--workspace examples/agent-fleet] [--rounds 20]
                                         [--estate S] [--scale 0]

Decisions: two engines on copies of the workspace, one with ``reach = true`` and one with
``reach = false`` (same policies, plus one forbid that reads ``context.vigil.reach`` in both, so
both take the same code path but for the reach lookups), behaviour in shadow mode, no audit.
Both are warmed on the workspace's ``events.jsonl`` (its replayed day), then decide its requests
in interleaved chunks of 1,000, alternately; per-decision wall time (``perf_counter_ns``) of each
chunk kind; p50 and p90 of all, and the difference of the p50s.

Loads: the workspace loaded with and without reach (best of 3), the reach computation's own time
and checks; ``--estate S`` also a generated estate of ``bench/estates.py`` (size S: 1,000
identities, 10,000 resources, 200 policies) with default ``[escalation]`` settings and reach on;
``--scale N`` the workspace with every identity and resource copied N times
(``bench/workspace_paths.py``'s copies). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FORBID = """
@id("bench-forbid-reach")
forbid (principal, action == Action::"write", resource)
when { context has vigil && context.vigil has reach && context.vigil.reach.verdict == "bench" };
"""


def _copy(src: Path, dst: Path, reach: bool, extra: str = "") -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".vigil", "events.jsonl"))
    toml = (dst / "vigil.toml").read_text()
    if "[escalation]" not in toml:
        toml += "\n[escalation]\n"
    flag = f"[escalation]\nreach = {'true' if reach else 'false'}\n{extra}"
    toml = toml.replace("[escalation]\n", flag, 1)
    (dst / "vigil.toml").write_text(toml + '\n[audit]\nsink = "none"\n\n[store]\nbackend = "memory"\n')
    (dst / "policies" / "99-bench-reach.cedar").write_text(FORBID)
    return dst


def _load_times(path: Path) -> dict[str, Any]:
    from vigil.workspace.loader import load_workspace

    best = float("inf")
    ws: Any = None
    for _ in range(3):
        t = time.perf_counter()
        ws = load_workspace(path)
        best = min(best, time.perf_counter() - t)
    out: dict[str, Any] = {"load_s": round(best, 3)}
    if ws.reach is not None:
        out.update(
            reach_s=round(ws.reach.seconds, 3), reach_checks=ws.reach.checks, identities=ws.reach.identities
        )
    return out


def _estate(estates: Any, size: str, root: Path) -> Path:
    """A generated estate of ``bench/estates.py`` written as a workspace (shadow, memory store)."""
    est = estates.generate(*estates.SIZES[size], seed=7, n_requests=10)
    (root / "policies").mkdir(parents=True)
    (root / "entities").mkdir()
    (root / "vigil.toml").write_text('[behaviour]\nmode = "shadow"\n')
    (root / "policies" / "estate.cedar").write_text(est.policies)
    (root / "entities" / "estate.json").write_text(json.dumps(est.entities))
    return root


def _load_or_refusal(path: Path) -> dict[str, Any]:
    from vigil.errors import WorkspaceError

    t = time.perf_counter()
    try:
        return _load_times(path)
    except WorkspaceError as e:
        return {"refused_after_s": round(time.perf_counter() - t, 3), "problem": e.problems[0]}


def _decisions(on: Any, off: Any, events: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    times: dict[str, list[int]] = {"on": [], "off": []}
    whens = [datetime.fromisoformat(ev["context"]["time"]) for ev in events]
    for e in (on, off):  # warm: every identity, pair and resource seen once
        for ev, w in zip(events, whens, strict=True):
            e.decide(ev, now=w)
    gc.collect()
    gc.disable()
    n = len(events)
    for r in range(rounds * 2):
        kind = "on" if r % 2 == 0 else "off"
        e = on if kind == "on" else off
        start = (r // 2 * 1000) % max(1, n - 1000)
        out = times[kind]
        for i in range(start, start + 1000):
            ev, w = events[i], whens[i]
            t0 = time.perf_counter_ns()
            e.decide(ev, now=w)
            out.append(time.perf_counter_ns() - t0)
    gc.enable()
    res: dict[str, Any] = {}
    for kind, xs in times.items():
        xs.sort()
        res[f"{kind}_p50_us"] = round(xs[len(xs) // 2] / 1000, 2)
        res[f"{kind}_p90_us"] = round(xs[len(xs) * 9 // 10] / 1000, 2)
    res["added_p50_us"] = round(res["on_p50_us"] - res["off_p50_us"], 2)
    res["decisions_each"] = len(times["on"])
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", default=str(ROOT / "examples" / "agent-fleet"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--estate", default="", help="also time a load of a bench/estates.py size (S)")
    ap.add_argument("--scale", type=int, default=0, help="also the workspace copied N times")
    args = ap.parse_args(argv)
    import vigil
    from vigil.audit import MemorySink

    src = Path(args.workspace)
    events = [json.loads(line) for line in (src / "events.jsonl").read_text().splitlines() if line.strip()]
    result: dict[str, Any] = {"workspace": str(src), "requests": len(events)}
    with tempfile.TemporaryDirectory() as tmp:
        on_ws = _copy(src, Path(tmp) / "on", True)
        off_ws = _copy(src, Path(tmp) / "off", False)
        result["load_reach_on"] = _load_times(on_ws)
        result["load_reach_off"] = _load_times(off_ws)
        on = vigil.Engine.from_workspace(on_ws, audit=MemorySink())
        off = vigil.Engine.from_workspace(off_ws, audit=MemorySink())
        result["decide"] = _decisions(on, off, events, args.rounds)
        on.close()
        off.close()
        if args.scale:
            sys.path.insert(0, str(ROOT / "bench"))
            from workspace_paths import scaled  # type: ignore[import-not-found]

            big = scaled(Path(tmp) / f"x{args.scale}", args.scale)
            _copy(big, Path(tmp) / f"x{args.scale}-on", True)
            result[f"load_x{args.scale}_reach_on"] = _load_times(Path(tmp) / f"x{args.scale}-on")
        if args.estate:
            sys.path.insert(0, str(ROOT / "bench"))
            import estates  # type: ignore[import-not-found]

            est = _estate(estates, args.estate, Path(tmp) / f"estate-{args.estate}")
            name = f"estate_{args.estate}"
            result[f"{name}_reach_off"] = _load_times(_copy(est, Path(tmp) / f"{name}-off", False))
            result[f"{name}_reach_on"] = _load_times(_copy(est, Path(tmp) / f"{name}-on", True))
            # admin = whoever may share (an admin-class action of the estate): every identity is
            # probed on every resource, past the default reach_max_checks
            admin = _copy(est, Path(tmp) / f"{name}-admin", True, "admin = ['Action::\"share\"']\n")
            result[f"{name}_reach_admin_share"] = _load_or_refusal(admin)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
