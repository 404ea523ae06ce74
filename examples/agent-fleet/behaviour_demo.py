#!/usr/bin/env python3
"""Live behaviour example for `make demo`: learn the fleet's Friday, then meet Saturday's incidents.

1. Copy the workspace, replay Friday (events.jsonl) in **shadow** mode: every identity learns its
   profile (hours, networks, resources, rates...) and vigil reports what enforce mode would have
   done with the day's scripted incidents, changing no decision.
2. Switch the copy to **enforce** mode and start a new engine: the profiles come back from the
   state store (SQLite), as after a restart. Then, on Saturday:
   - a legitimate move: analytics-sql-agent's first calls from us-east-1 are stepped up, its owner
     approves the ticket with the CLI, the agent's retry goes through;
   - a stolen credential: fraud-review-agent's token is used at 02:47 from another host with a
     scripting client; stepped up, the owner denies the ticket and quarantines the agent;
   - a runaway agent: data-quality-agent loops on its tables; vigil quarantines it by itself; the
     owner lifts the quarantine once it is fixed.
3. Show the audit trail of who approved, denied, quarantined and lifted what.

Usage: python examples/agent-fleet/behaviour_demo.py [--workdir .vigil/demo/behaviour]
The approvals and quarantine steps run the real `vigil` CLI (`--now` keeps them on Saturday's clock).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vigil import Engine
from vigil.replay import replay

HERE = Path(__file__).resolve().parent
SATURDAY = datetime(2026, 11, 28, tzinfo=UTC)

SETTINGS = """# behaviour demo: one day of history, so a short learning period
[behaviour]
mode = "{mode}"
learning_days = 0
learning_requests = 30
segments = ["Environment"]

[audit]
sink = "none"
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=".vigil/demo/behaviour")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    ws = work / "workspace"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(HERE, ws, ignore=shutil.ignore_patterns(".vigil", "*.py", "events.jsonl", "__pycache__"))
    vigil_bin = str(Path(sys.executable).with_name("vigil"))

    # -- 1. Friday, shadow mode ----------------------------------------------------------------
    title("1. Friday 2026-11-27 replayed in shadow mode: 20,088 requests, every identity learns")
    (ws / "vigil.toml").write_text(SETTINGS.format(mode="shadow"))
    would: Counter[str] = Counter()
    first: dict[str, Any] = {}
    with Engine.from_workspace(ws) as engine, (HERE / "events.jsonl").open("rb") as lines:
        for item in replay(engine, lines):
            r = item.record
            if r is None:
                continue
            for code in r.reason_codes:
                if code.startswith("shadow_"):
                    would[(r.principal[1], code)] += 1
                    first.setdefault((r.principal[1], code), r)
    print("What enforce mode would have done (the decisions themselves were unchanged):")
    for (who, code), n in sorted(would.items(), key=lambda kv: (first[kv[0]].time, kv[0])):
        r = first[(who, code)]
        print(f"  {who:24s} {code:18s} x{n:<4d} first at {hhmm(r.time)}: {', '.join(r.signals)}")
    print("Profiles are written to the state store:", ws / ".vigil" / "state.db")

    # -- 2. Saturday, enforce mode -------------------------------------------------------------
    (ws / "vigil.toml").write_text(SETTINGS.format(mode="enforce"))
    title("2. Saturday 2026-11-28, enforce mode (a new engine: profiles reloaded from the store)")
    with Engine.from_workspace(ws) as engine:
        print(f"  {len(engine.profiles)} profiles loaded")

        section("a legitimate move: analytics-sql-agent starts running from us-east-1")
        move = dict(ip="10.40.19.12", region="us-east-1")
        r = decide(
            engine,
            "Agent",
            "analytics-sql-agent",
            "read",
            "Database",
            "analytics-marts-prod",
            "09:12:05",
            **move,
        )
        ticket = r.ticket["id"] if r.ticket else None
        if ticket:
            cli(vigil_bin, "approvals", "list", "-w", str(ws), "--now", at("09:13:00"))
            cli(
                vigil_bin,
                "approvals",
                "approve",
                ticket,
                "-w",
                str(ws),
                "--by",
                "kenji.watanabe",
                "--note",
                "planned move to us-east-1",
                "--now",
                at("09:14:00"),
            )
        decide(
            engine,
            "Agent",
            "analytics-sql-agent",
            "read",
            "Database",
            "analytics-marts-prod",
            "09:15:30",
            **move,
        )

        section("a stolen credential: fraud-review-agent's token, 02:47, another host, a scripting client")
        stolen = dict(ip="10.20.19.77", region="eu-west-1", user_agent="python-requests/2.31.0")
        r = decide(
            engine, "Agent", "fraud-review-agent", "read", "Database", "ledger-prod", "02:47:10", **stolen
        )
        decide(engine, "Agent", "fraud-review-agent", "read", "Database", "ledger-prod", "02:47:31", **stolen)
        if r.ticket:
            cli(
                vigil_bin,
                "approvals",
                "deny",
                r.ticket["id"],
                "-w",
                str(ws),
                "--by",
                "tomas.novak",
                "--note",
                "not us: token leaked",
                "--now",
                at("02:52:00"),
            )
        cli(
            vigil_bin,
            "quarantine",
            "add",
            'Agent::"fraud-review-agent"',
            "-w",
            str(ws),
            "--by",
            "tomas.novak",
            "--reason",
            "token leaked; rotate before lifting",
            "--now",
            at("02:52:30"),
        )
        engine.quarantine.refresh()  # a server notices within a second; here we ask right away
        decide(
            engine, "Agent", "fraud-review-agent", "read", "Database", "invoices-prod", "02:53:02", **stolen
        )

        section("a runaway agent: data-quality-agent loops over its tables, twice a second")
        home = dict(ip="10.40.23.41", region="eu-west-1")
        tables = ["warehouse-prod", "analytics-marts-prod", "raw-events-prod", "product-events-prod"]
        kinds = {"warehouse-prod": "Database", "analytics-marts-prod": "Database"}
        t = datetime(2026, 11, 28, 11, 20, tzinfo=UTC)
        shown = 0
        for i in range(400):
            res = tables[i % len(tables)]
            r = engine.decide(
                request("Agent", "data-quality-agent", "read", kinds.get(res, "Bucket"), res, t, **home),
                now=t,
            )
            if (r.risk >= 60 and shown < 2) or ("quarantined" in r.reason_codes and shown < 3):
                show(r, f"request {i + 1}")
                shown += 1
            if shown >= 3 and "quarantined" in r.advice:
                print(
                    f"  ... every later request of the loop is denied: quarantined (loop stopped at request {i + 1})"
                )
                break
            t += timedelta(seconds=0.5)
        cli(vigil_bin, "quarantine", "list", "-w", str(ws))
        cli(
            vigil_bin,
            "quarantine",
            "lift",
            'Agent::"data-quality-agent"',
            "-w",
            str(ws),
            "--by",
            "hannah.weiss",
            "--note",
            "retry loop fixed in v2.4.1",
            "--now",
            at("12:05:00"),
        )
        engine.quarantine.refresh()
        decide(
            engine, "Agent", "data-quality-agent", "read", "Database", "warehouse-prod", "12:10:00", **home
        )

    # -- 3. the audit trail --------------------------------------------------------------------
    title("3. Who did what (audited in the state store)")
    cli(vigil_bin, "quarantine", "list", "-w", str(ws), "--history")
    return 0


# -- helpers -----------------------------------------------------------------------------------
def at(hms: str) -> str:
    return f"2026-11-28T{hms}Z"


def hhmm(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


def request(
    stype: str, sid: str, action: str, rtype: str, rid: str, when: datetime, **ctx: Any
) -> dict[str, Any]:
    context = {"time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "hour": when.hour, **ctx}
    return {
        "subject": {"type": stype, "id": sid},
        "action": {"name": action},
        "resource": {"type": rtype, "id": rid},
        "context": context,
    }


def decide(
    engine: Engine, stype: str, sid: str, action: str, rtype: str, rid: str, hms: str, **ctx: Any
) -> Any:
    when = datetime.fromisoformat(at(hms))
    r = engine.decide(request(stype, sid, action, rtype, rid, when, **ctx), now=when)
    show(r, f"{hms} {sid} {action} {rtype}::{rid}")
    return r


def show(r: Any, label: str) -> None:
    verdict = "ALLOW" if r.allowed else "DENY "
    advice = f"  advice={','.join(r.advice)}" if r.advice else ""
    print(f"  {label}\n    -> {verdict} risk={r.risk} reasons={','.join(r.reason_codes)}{advice}")
    for line in r.explanations():
        if ": unknown," not in line:
            print(f"       {line}")
    if r.ticket:
        print(f"       ticket {r.ticket['id']} (expires {r.ticket['expires'][:19]}Z)")


def cli(*argv: str) -> None:
    print("  $ vigil " + " ".join(_quote(a) for a in argv[1:]))
    env = {**os.environ, "COLUMNS": "120"}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    for line in (out.stdout + out.stderr).rstrip().splitlines():
        print("    " + line)


def _quote(a: str) -> str:
    return f"'{a}'" if any(c in a for c in ' "') else a


def title(text: str) -> None:
    print(f"\n== {text}")


def section(text: str) -> None:
    print(f"\n-- {text}")


if __name__ == "__main__":
    sys.exit(main())
