"""Time `vigil paths --workspace` and `vigil policy diff` on the example fleet and on a copy scaled
N times (each identity and resource copied N times with a suffix, teams and policies unchanged).

    .venv/bin/python bench/workspace_paths.py --scale 10

Prints one JSON line per measurement: workspace, identities, resources, seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLEET = Path(__file__).resolve().parent.parent / "examples" / "agent-fleet"
VIGIL = str(Path(sys.executable).with_name("vigil"))


def scaled(dst: Path, n: int) -> Path:
    shutil.copytree(FLEET, dst, ignore=shutil.ignore_patterns("events.jsonl", "*.py", "*.sh", ".vigil"))
    for name in ("identities.json", "resources.json"):
        p = dst / "entities" / name
        items = json.loads(p.read_text())
        out = []
        for k in range(n):
            for e in items:
                c = json.loads(json.dumps(e))
                if k:
                    c["uid"]["id"] += f"-{k}"
                out.append(c)
        p.write_text(json.dumps(out))
    return dst


def run(args: list[str]) -> tuple[float, int]:
    t = time.perf_counter()
    r = subprocess.run([VIGIL, *args], capture_output=True, text=True, check=False)
    return time.perf_counter() - t, r.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=10)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, a.scale):
            before = scaled(Path(tmp) / f"before-{n}", n)
            after = Path(tmp) / f"after-{n}"
            shutil.copytree(before, after)
            pol = after / "policies" / "50-admin.cedar"
            pol.write_text(
                pol.read_text().replace(
                    "resource.max_sensitivity <= principal.max_sensitivity\n",
                    "resource.max_sensitivity <= principal.max_sensitivity + 1\n",
                )
            )
            ents = after / "entities" / "identities.json"
            data = json.loads(ents.read_text())
            data[7]["parents"].append({"type": "Team", "id": "payments"})  # pr-review-agent joins payments
            ents.write_text(json.dumps(data))
            ids = len(json.loads((before / "entities" / "identities.json").read_text()))
            res = len(json.loads((before / "entities" / "resources.json").read_text()))
            for what, args in (
                ("paths --workspace", ["paths", "--workspace", str(before), "--json"]),
                (
                    "policy diff (a policy line and an entity changed)",
                    ["policy", "diff", str(before), str(after), "--json"],
                ),
            ):
                s, code = run(args)
                print(
                    json.dumps(
                        {
                            "command": what,
                            "scale": n,
                            "identities": ids,
                            "resources": res,
                            "seconds": round(s, 2),
                            "exit": code,
                        }
                    )
                )


if __name__ == "__main__":
    main()
