"""The delegation demo (``make demo``): a 10-minute agent token, narrowed rights when acting for a
human, and a suspension that cuts the agent off. Runs in-process on a copy of this workspace.

    python examples/delegation/demo.py --workdir .vigil/demo/delegation
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import time
from pathlib import Path
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import OKPKey, RSAKey

from vigil.audit.sink import MemorySink
from vigil.engine import Engine

HERE = Path(__file__).resolve().parent
BOT = 'Agent::"triage-bot"'
IDP = "https://login.example.com"
FORM = b"application/x-www-form-urlencoded"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default=".vigil/demo/delegation")
    work = Path(ap.parse_args().workdir)
    shutil.rmtree(work, ignore_errors=True)
    ws = work / "workspace"
    shutil.copytree(HERE, ws, ignore=shutil.ignore_patterns("demo.py", "README.md", "__pycache__", ".vigil"))
    idp_key = RSAKey.generate_key(2048, auto_kid=True)  # the identity provider's key
    (ws / "trust").mkdir()
    (ws / "trust" / "login.jwks.json").write_text(json.dumps({"keys": [idp_key.as_dict(private=False)]}))
    agent_key = OKPKey.generate_key("Ed25519", auto_kid=True)  # held by the agent only

    engine = Engine.from_workspace(ws, audit=MemorySink())
    tokens = engine.tokens
    engine.identities.add(
        BOT, owner="ops@example.com", purpose="triages support tickets", by="ops",
        public_key=agent_key.as_dict(private=False),
    )  # fmt: skip
    print(f"registered {BOT} with key {agent_key.kid}")

    def assertion() -> str:
        now = int(time.time())
        claims = {"iss": BOT, "sub": BOT, "aud": tokens.token_endpoint, "iat": now, "exp": now + 60,
                  "jti": secrets.token_hex(16)}  # fmt: skip
        return jwt.encode({"alg": "EdDSA", "kid": agent_key.kid}, claims, agent_key, algorithms=["EdDSA"])

    def token(form: dict[str, str]) -> dict[str, object]:
        return tokens.token_request(urlencode(form).encode(), FORM)

    own = token({
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(),
        "audience": tokens.issuer,
    })  # fmt: skip
    print(f"agent token (private_key_jwt): expires in {own['expires_in']} s")

    now = int(time.time())
    alice = jwt.encode(
        {"alg": "RS256", "kid": idp_key.kid},
        {
            "iss": IDP,
            "sub": "alice",
            "aud": "vigil",
            "iat": now,
            "exp": now + 3600,
            "jti": secrets.token_hex(8),
        },
        idp_key,
        algorithms=["RS256"],
    )
    delegated = token({
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": alice, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "actor_token": str(own["access_token"]),
        "actor_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "https://tickets.example",
    })  # fmt: skip
    print('exchanged alice\'s token: the agent now acts for User::"alice" (act_for permitted by policy)')

    def decide(action: str, ticket: str) -> None:
        request = {
            "subject": {"type": "User", "id": "alice"},
            "action": {"name": action},
            "resource": {"type": "Ticket", "id": ticket},
        }
        r = engine.decide(request, token=str(delegated["access_token"]))
        verdict = "ALLOW" if r.allowed else "DENY "
        print(f"  {verdict} {action:<6} Ticket::{ticket:<4} {', '.join(r.reason_codes)}")

    print("agent acting for alice (rights narrow to what both may):")
    decide("read", "T-1")
    decide("update", "T-1")
    decide("read", "T-2")
    engine.identities.suspend(BOT, by="ops", reason="demo: key leaked")
    print(f"suspended {BOT}:")
    decide("read", "T-1")
    engine.close()


if __name__ == "__main__":
    main()
