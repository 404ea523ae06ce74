"""Helpers for the token tests (no tests here): a small workspace with agents, humans and tickets,
a real JWKS server over HTTP on loopback (keys can be rotated while it runs), and token makers.

The workspace's policies:

- ``User::"alice"`` may read and update every ticket; ``User::"bob"`` may read ``t1``;
- ``Agent::"triage-bot"`` may read every ticket (never update), and may act for ``alice``
  (``act_for``); ``Agent::"helper-bot"`` may read, and act for ``triage-bot``;
- ``Agent::"rogue-bot"`` may read everything but act for nobody;
- nobody acting for someone else may touch ``Ticket::"t2"`` (``context.vigil.delegation``).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from base64 import urlsafe_b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joserfc import jws, jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

ISSUER = "http://vigil.test"
AUDIENCE = "https://tickets.example"
IDP_AUDIENCE = "vigil"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TYPE = "urn:ietf:params:oauth:token-type:access_token"

POLICIES = """
permit (principal == User::"alice", action in [Action::"read", Action::"update"], resource is Ticket);
permit (principal == User::"bob", action == Action::"read", resource == Ticket::"t1");
permit (principal is Agent, action == Action::"read", resource is Ticket);
permit (principal == Agent::"triage-bot", action == Action::"act_for", resource == User::"alice");
permit (principal == Agent::"helper-bot", action == Action::"act_for", resource == Agent::"triage-bot");
permit (principal == Agent::"helper-bot", action == Action::"act_for", resource == User::"alice");
permit (principal == Agent::"deep-bot", action == Action::"act_for", resource);
permit (principal == Agent::"deep-bot", action == Action::"read", resource is Ticket);
forbid (principal, action, resource == Ticket::"t2") when { context.vigil has delegation };
"""


def _entity(t: str, i: str, **attrs: Any) -> dict[str, Any]:
    return {"uid": {"type": t, "id": i}, "attrs": attrs, "parents": []}


ENTITIES = [
    _entity("User", "alice"),
    _entity("User", "bob"),
    _entity("Agent", "triage-bot"),
    _entity("Agent", "helper-bot"),
    _entity("Agent", "rogue-bot"),
    _entity("Agent", "deep-bot"),
    _entity("Workload", "spiffe://example.org/ns/prod/sa/payments"),
    _entity("ServiceAccount", "prod/payments"),
    _entity("Ticket", "t1", team="support"),
    _entity("Ticket", "t2", team="billing"),
]


def workspace(dest: Path, toml: str = "") -> Path:
    """A workspace (policies, entities, ``vigil.toml`` = the token settings + ``toml``) at ``dest``."""
    (dest / "policies").mkdir(parents=True)
    (dest / "entities").mkdir()
    (dest / "policies" / "tickets.cedar").write_text(POLICIES)
    (dest / "entities" / "all.json").write_text(json.dumps(ENTITIES))
    base = f'[behaviour]\nmode = "off"\n\n[identity]\nissuer = "{ISSUER}"\naudiences = ["{AUDIENCE}"]\n'
    (dest / "vigil.toml").write_text(base + toml)
    return dest


def trust_toml(issuer: str, jwks_uri: str, **extra: Any) -> str:
    """One ``[[identity.trust]]`` entry."""
    lines = [
        "\n[[identity.trust]]",
        f'issuer = "{issuer}"',
        f'jwks_uri = "{jwks_uri}"',
        f'audience = "{IDP_AUDIENCE}"',
    ]
    for k, v in extra.items():
        lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def new_key(kind: str = "ed25519") -> OKPKey | ECKey | RSAKey:
    """A private key with its RFC 7638 kid."""
    if kind == "ed25519":
        key: OKPKey | ECKey | RSAKey = OKPKey.generate_key("Ed25519", auto_kid=True)
    elif kind == "p256":
        key = ECKey.generate_key("P-256", auto_kid=True)
    else:
        key = RSAKey.generate_key(2048, auto_kid=True)
    return key


def alg_of(key: OKPKey | ECKey | RSAKey) -> str:
    return "EdDSA" if isinstance(key, OKPKey) else "ES256" if isinstance(key, ECKey) else "RS256"


def sign(claims: dict[str, Any], key: OKPKey | ECKey | RSAKey, **header: Any) -> str:
    """A JWS compact token of ``claims`` signed by ``key`` (``kid`` and ``alg`` from the key)."""
    h = {"alg": alg_of(key), "kid": key.kid, **header}
    return jwt.encode(h, claims, key, algorithms=[h["alg"]])


def b64(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with any header and payload and the given signature bytes (for attacks)."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def human_claims(issuer: str, sub: str = "alice", now: float | None = None, **over: Any) -> dict[str, Any]:
    t = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "sub": sub,
        "aud": IDP_AUDIENCE,
        "iat": t,
        "exp": t + 300,
        "jti": secrets.token_hex(8),
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def assertion(
    client: str,
    key: OKPKey | ECKey | RSAKey,
    *,
    aud: str = ISSUER + "/oauth2/token",
    now: float | None = None,
    **over: Any,
) -> str:
    """A private_key_jwt client assertion of ``client`` (uid text)."""
    t = int(time.time() if now is None else now)
    claims = {"iss": client, "sub": client, "aud": aud, "iat": t, "exp": t + 60, "jti": secrets.token_hex(12)}
    claims.update(over)
    return sign({k: v for k, v in claims.items() if v is not None}, key)


def credentials_form(
    client: str, key: OKPKey | ECKey | RSAKey, audience: str = AUDIENCE, **over: Any
) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(client, key),
        "client_id": client,
        "audience": audience,
    }
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def exchange_form(subject_token: str, actor_token: str, audience: str = AUDIENCE) -> dict[str, str]:
    return {
        "grant_type": EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": JWT_TYPE,
        "actor_token": actor_token,
        "actor_token_type": ACCESS_TYPE,
        "audience": audience,
    }


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, unverified (for assertions about issued tokens)."""
    obj = jws.extract_compact(token.encode())
    return json.loads(obj.payload)  # type: ignore[no-any-return]


class JwksServer:
    """A JWK Set served over HTTP on loopback (``url``, ``issuer``); ``keys`` can be replaced
    (rotation) and ``fail`` set while it runs; ``hits`` counts fetches."""

    def __init__(self, *keys: OKPKey | ECKey | RSAKey) -> None:
        self.keys = list(keys)
        self.fail = False
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                if outer.fail or self.path != "/jwks":
                    self.send_response(503 if outer.fail else 404)
                    self.end_headers()
                    return
                body = json.dumps({"keys": [k.as_dict(private=False) for k in outer.keys]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = self.issuer + "/jwks"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> JwksServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
