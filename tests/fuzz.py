"""``make fuzz``: the differential tests (vigil against cedarpy) with random seeds, for a given time.

Each round runs ``tests/test_differential.py`` under the ``fuzz`` hypothesis profile with a fresh
random seed (``--hypothesis-seed``) and ``VIGIL_HYPOTHESIS_EXAMPLES`` examples per test. On the first
failure it prints the seed (to reproduce: ``VIGIL_HYPOTHESIS_PROFILE=fuzz VIGIL_HYPOTHESIS_EXAMPLES=N
pytest tests/test_differential.py --hypothesis-seed=SEED``) and the shrunk counterexample as a
ready-to-paste test, and exits 1. Exits 0 when the time is up without a failure.

    python tests/fuzz.py --seconds 600 [--examples 200] [-k EXPR]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "ready-to-paste test:"


def paste_ready(output: str) -> str | None:
    """The test printed after MARK, without the prefix pytest puts before each line of the
    falsifying example's notes (``E   ``), up to the next blank-then-prose line."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith(MARK):
            prefix = line[: line.index(MARK)]
            out = []
            for follow in lines[i + 1 :]:
                if not follow.startswith(prefix.rstrip()):
                    break
                body = follow[len(prefix) :] if follow.startswith(prefix) else ""
                if body and not body.startswith((" ", "def ")):
                    break
                out.append(body)
            return "\n".join(out).rstrip() + "\n"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS", "300")))
    parser.add_argument("--examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", "200")))
    parser.add_argument("-k", default="not example and not escape and not overflow and not with_non")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.seconds
    env = {**os.environ, "VIGIL_HYPOTHESIS_PROFILE": "fuzz", "VIGIL_HYPOTHESIS_EXAMPLES": str(args.examples)}
    rounds = 0
    while time.monotonic() < deadline:
        seed = random.SystemRandom().randrange(2**32)
        rounds += 1
        print(f"round {rounds}: seed {seed}, {args.examples} examples per test", flush=True)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_differential.py",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            f"--hypothesis-seed={seed}",
            "-k",
            args.k,
        ]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-20_000:])
            print(proc.stderr[-5_000:], file=sys.stderr)
            print(f"FAILED with seed {seed}; reproduce with:")
            print(
                f"  VIGIL_HYPOTHESIS_PROFILE=fuzz VIGIL_HYPOTHESIS_EXAMPLES={args.examples} "
                f".venv/bin/python -m pytest tests/test_differential.py --hypothesis-seed={seed} -k '{args.k}'"
            )
            test = paste_ready(proc.stdout)
            if test is not None:
                print("\nready-to-paste test for tests/test_differential.py:\n")
                print(test)
            return 1
    print(f"no counterexample in {rounds} rounds ({args.seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
