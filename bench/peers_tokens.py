"""The shared harness with token-carrying variants of vigil beside the plain one (issue 13).

    .venv/bin/python bench/peers_tokens.py [--shared ../shared] [--budget-s 8] [--out FILE.json]
                                           [--engines python-reference,vigil,vigil-registered,vigil-token]

Runs ``../shared/bench/peers_bench.py`` (its workload, its interleaving, its table) with two more
adapters, both built on the shared ``vigil`` adapter's workspace (the same Cedar policies and
entities, ``[behaviour] mode = "shadow"``):

- ``vigil-registered``: every principal of the workload is in the identity registry (an owner, a
  purpose, an Ed25519 key), decisions carry no token: what the registry's gate costs;
- ``vigil-token``: the same registry, and each decision carries the principal's own access token,
  minted once per principal by vigil's token service (``client_credentials`` with a
  ``private_key_jwt`` assertion, as an agent gets one): ``Engine.decide(request, token=...)``.
  Each token is verified once at load (what a running server has done for a live agent's token)
  and then comes from the verified-token cache; the request's subject is the token's.

Compare the three vigil rows with each other and with ``python-reference`` within one run (the
``x ref`` column), never across runs. The shared folder is read-only: results go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.token_support: the client assertion, as the token tests make it
from tests.token_support import AUDIENCE, ISSUER  # noqa: E402

# Tokens must outlive the run: the bench mints them once, before the timed rounds.
TOKEN_TTL_S = 86_400


def _adapters(shared: Path) -> list[type]:
    """The two token-aware adapter classes (subclasses of the shared ``vigil`` adapter)."""
    sys.path.insert(0, str(shared / "bench"))
    from adapters.vigil import PEERS, SETTINGS, Vigil  # type: ignore[import-not-found]
    from joserfc.jwk import OKPKey

    import vigil

    class VigilRegistered(Vigil):  # type: ignore[misc]
        name = "vigil-registered"
        description = "vigil.Engine.decide, every principal in the identity registry, no token"
        tokens = False

        def load(self, wl: Any) -> None:
            from peers.translate import CEDAR_TYPE, cedar_entities  # type: ignore[import-not-found]

            self._tmp = tempfile.TemporaryDirectory(prefix="vigil-bench-token-")
            ws = Path(self._tmp.name)
            (ws / "policies").mkdir()
            (ws / "entities").mkdir()
            (ws / "vigil.toml").write_text(
                SETTINGS
                + f'\n[identity]\nissuer = "{ISSUER}"\naudiences = ["{AUDIENCE}"]\ntoken_ttl_s = {TOKEN_TTL_S}\n'
            )
            (ws / "policies" / "bench.cedar").write_text((PEERS / "cedar" / "policies.cedar").read_text())
            (ws / "entities" / "bench.json").write_text(json.dumps(cedar_entities(wl)))
            self._engine = engine = vigil.Engine.from_workspace(ws)
            self._rtype = {rid: CEDAR_TYPE[r["type"]] for rid, r in wl.resources.items()}
            self._tokens: dict[str, str] = {}
            principals = sorted({q["principal"] for q in wl.requests})
            for pid in principals:
                key = OKPKey.generate_key("Ed25519", auto_kid=True)
                uid = ("Agent", pid)
                engine.identities.add(uid, owner="bench@example.com", purpose="bench", by="bench")
                engine.identities.add_key(uid, json.dumps(key.as_dict(private=False)), by="bench")
                if self.tokens:
                    self._tokens[pid] = _mint(engine, f'Agent::"{pid}"', key)
            # Verified once here, as a running server has verified a live agent's token (after
            # the registrations: a registry change drops every cached verification).
            for token in self._tokens.values():
                engine.verifier.verify(token, time.time())

        def decide(self, q: dict[str, Any]) -> bool:
            ctx = q["context"]
            record = self._engine.decide(
                {
                    "subject": {"type": "Agent", "id": q["principal"]},
                    "action": {"name": q["action"]},
                    "resource": {"type": self._rtype[q["resource"]], "id": q["resource"]},
                    "context": {
                        "hour": ctx["hour"],
                        "risk": ctx["risk"],
                        "approved": ctx["approved"],
                        "ip": {"__extn": {"fn": "ip", "arg": ctx["ip"]}},
                    },
                },
                token=self._tokens.get(q["principal"]) if self.tokens else None,
            )
            return bool(record.allowed)

    class VigilToken(VigilRegistered):
        name = "vigil-token"
        description = "vigil.Engine.decide with the principal's own vigil-issued access token"
        tokens = True

    return [VigilRegistered, VigilToken]


def _mint(engine: Any, client: str, key: Any) -> str:
    """The client's access token from the engine's token service (client_credentials with a
    private_key_jwt assertion, ``tests/token_support``'s form); raises RuntimeError when refused."""
    from tests.token_support import credentials_form

    body = urlencode(credentials_form(client, key, audience=AUDIENCE)).encode()
    answer = engine.tokens.token_request(body, b"application/x-www-form-urlencoded")
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str):
        raise RuntimeError(f"no token for {client}: {answer!r}")
    return token


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--engines", default="python-reference,vigil,vigil-registered,vigil-token")
    ap.add_argument("--budget-s", default="8")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "peers_tokens.json"))
    args, rest = ap.parse_known_args(argv)
    extra = _adapters(args.shared)
    import peers_bench  # type: ignore[import-not-found]

    peers_bench.ADAPTERS.extend(extra)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    return int(
        peers_bench.main(["--engines", args.engines, "--budget-s", args.budget_s, "--out", args.out, *rest])
        or 0
    )


if __name__ == "__main__":
    sys.exit(main())
