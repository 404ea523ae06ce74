"""Cost of behaviour sharing off the decision path (docs/deployment.md, "Behaviour across
processes"): per identity of a batch, collecting it (``collect``), encoding it (``orjson``) and
taking one in (decode + ``take_rates``), best of ``--batches`` batches of ``--identities``.

    PYTHONPATH=$PWD/src .venv/bin/python bench/behaviour_sharing.py [--identities 1000] [--batches 20]
"""

from __future__ import annotations

import argparse
import json
import time

import orjson

from vigil.behaviour.model import BehaviourModel
from vigil.behaviour.profile import Profile
from vigil.behaviour.shared import Outbox, Pending, collect, take_rates
from vigil.workspace.settings import BehaviourSettings

T0 = 1_790_000_000.0


class _Book:
    def __init__(self, profiles: dict[object, Profile]) -> None:
        self.profiles = profiles

    def get(self, uid: object) -> Profile | None:
        return self.profiles.get(uid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    n = args.identities
    box = Outbox()
    model = BehaviourModel(BehaviourSettings(), None, {}, box)
    profiles = []
    for i in range(n):
        p = Profile(T0)
        p.uid = ("Agent", f"a-{i}")
        profiles.append(p)
    book = _Book({p.uid: p for p in profiles})
    best = {"collect": 1e9, "encode": 1e9, "take_in": 1e9}
    size = 0
    for r in range(args.batches):
        for i, p in enumerate(profiles):
            model.assess(p, ("Action", "read"), ("Database", "x"), {}, T0 + r + i * 1e-4, True)
        t0 = time.perf_counter()
        rates, _ = collect(box)
        t1 = time.perf_counter()
        data = orjson.dumps({"o": "bench", "r": rates})
        t2 = time.perf_counter()
        take_rates(book, model, Pending(), orjson.loads(data)["r"])  # type: ignore[arg-type]
        t3 = time.perf_counter()
        best["collect"] = min(best["collect"], t1 - t0)
        best["encode"] = min(best["encode"], t2 - t1)
        best["take_in"] = min(best["take_in"], t3 - t2)
        size = len(data)
    print(
        json.dumps(
            {
                "identities": n,
                **{f"{k}_us_per_identity": round(v * 1e6 / n, 2) for k, v in best.items()},
                "message_bytes_per_identity": round(size / n, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
