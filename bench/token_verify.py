"""Token verification cost: fresh and cached p50 per algorithm, and what a token adds to a decision.

    .venv/bin/python bench/token_verify.py [--n 2000] [--fresh 200] [--out bench/results/token_verify.json]

1. ``Verifier.verify`` of one token per algorithm (EdDSA, ES256, RS256): ``fresh`` (no cache: parse,
   header, key lookup, signature, claims) and ``cached`` (the same token again: a dictionary lookup,
   the validity window, the revocation sets; ``cached_new_text``: an equal token in a new string,
   as each request brings, so its hash is computed), p50 and p99 in microseconds.
2. ``Engine.decide`` on a small workspace (``[behaviour] mode = "off"``, no audit sink, memory
   store), interleaved in chunks so drift hits every variant alike: without a token, with the
   agent's own vigil token (cached verification), with a delegated token (an agent for a human:
   two parties decided), p50 and p99; the difference of the p50s is what a token adds.

Times are wall-clock (``perf_counter_ns``) on a shared machine: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.token_support import (  # noqa: E402
    AUDIENCE,
    ISSUER,
    JwksServer,
    credentials_form,
    exchange_form,
    human_claims,
    new_key,
    sign,
    trust_toml,
    workspace,
)

from vigil.audit.sink import NullSink  # noqa: E402
from vigil.engine import Engine  # noqa: E402
from vigil.identity.tokens import Issuer, StaticKeys, Verifier, parse_jwks  # noqa: E402
from vigil.store import MemoryStore  # noqa: E402


def _pct(samples: list[int]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "p50_us": round(statistics.median(s) / 1000, 2),
        "p99_us": round(s[min(len(s) - 1, int(len(s) * 0.99))] / 1000, 2),
        "n": len(s),
    }


def verification(n: int, fresh_n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    now = time.time()
    for kind, alg in (("ed25519", "EdDSA"), ("p256", "ES256"), ("rsa", "RS256")):
        key = new_key(kind)
        src = StaticKeys(parse_jwks({"keys": [key.as_dict(private=False)]}))
        v = Verifier([Issuer("https://idp.example", "oidc", src, ("vigil",))])
        token = sign(human_claims("https://idp.example", now=now), key)
        fresh = []
        for _ in range(fresh_n):
            t0 = time.perf_counter_ns()
            v.verify_fresh(token, now)
            fresh.append(time.perf_counter_ns() - t0)
        v.verify(token, now)
        cached = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            v.verify(token, now)
            cached.append(time.perf_counter_ns() - t0)
        # a request's token is a new string each time (its hash not computed yet): copies
        copies = [(token + " ")[:-1] for _ in range(n)]
        cached_new = []
        for text in copies:
            t0 = time.perf_counter_ns()
            v.verify(text, now)
            cached_new.append(time.perf_counter_ns() - t0)
        out[alg] = {"fresh": _pct(fresh), "cached": _pct(cached), "cached_new_text": _pct(cached_new)}
    return out


def decisions(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, JwksServer(new_key("rsa")) as idp:
        ws = workspace(Path(tmp) / "ws", trust_toml(idp.issuer, idp.url))
        engine = Engine.from_workspace(ws, store=MemoryStore(), audit=NullSink())
        bot = 'Agent::"triage-bot"'
        key = new_key("ed25519")
        engine.identities.add(
            bot, owner="ops@example.com", purpose="bench", by="ops", public_key=key.as_dict(private=False)
        )
        from urllib.parse import urlencode

        form = b"application/x-www-form-urlencoded"
        agent = engine.tokens.token_request(
            urlencode(credentials_form(bot, key, audience=AUDIENCE)).encode(), form
        )["access_token"]
        actor = engine.tokens.token_request(
            urlencode(credentials_form(bot, key, audience=ISSUER)).encode(), form
        )["access_token"]
        human = sign(human_claims(idp.issuer), idp.keys[0])
        delegated = engine.tokens.token_request(urlencode(exchange_form(human, actor)).encode(), form)[
            "access_token"
        ]
        read = {"action": {"name": "read"}, "resource": {"type": "Ticket", "id": "t1"}}
        variants = {
            "no_token": ({**read, "subject": {"type": "Agent", "id": "triage-bot"}}, None),
            "agent_token": ({**read, "subject": {"type": "Agent", "id": "triage-bot"}}, agent),
            "delegated_token": ({**read, "subject": {"type": "User", "id": "alice"}}, delegated),
        }
        samples: dict[str, list[int]] = {k: [] for k in variants}
        for request, token in variants.values():
            assert engine.decide(request, token=token).allowed
        for _ in range(max(n // 100, 1)):
            for name, (request, token) in variants.items():
                decide = engine.decide
                for _ in range(100):
                    t0 = time.perf_counter_ns()
                    decide(request, token=token)
                    samples[name].append(time.perf_counter_ns() - t0)
        engine.close()
    out = {k: _pct(v) for k, v in samples.items()}
    base = out["no_token"]["p50_us"]
    for k in ("agent_token", "delegated_token"):
        out[k]["added_p50_us"] = round(out[k]["p50_us"] - base, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--fresh", type=int, default=200)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    result = {"verify": verification(args.n, args.fresh), "decide": decisions(args.n)}
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
