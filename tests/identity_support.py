"""Helpers for the identity registry tests: key files of every accepted kind, a workspace copy
with registry-friendly settings (no tests here)."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.test_server_support import copy_workspace

OWNER = "alice@example.com"
PURPOSE = "triages support tickets"
# agent-fleet entities that act
BOT = 'Agent::"support-triage-bot"'
SA = 'ServiceAccount::"ml-training-pipeline"'


def private_key(kind: str) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """A fresh private key: ``ed25519``, ``p256`` or ``rsa`` (2048 bits)."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(kind)


def pem_public(key: object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def pem_private(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def jwk_public(key: object) -> dict[str, str]:
    """The public JWK of ``key``, written with joserfc (an independent encoder)."""
    from joserfc.jwk import JWKRegistry

    kty = (
        "RSA"
        if isinstance(key, rsa.RSAPrivateKey)
        else "EC"
        if isinstance(key, ec.EllipticCurvePrivateKey)
        else "OKP"
    )
    imported = JWKRegistry.import_key(pem_public(key), kty)
    return dict(imported.as_dict(private=False))  # type: ignore[arg-type]


def write_key(folder: Path, name: str, kind: str, form: str) -> Path:
    """A public key file of ``kind`` in ``form`` (``pem`` or ``jwk``) under ``folder``."""
    key = private_key(kind)
    path = folder / f"{name}.{form if form == 'pem' else 'json'}"
    if form == "pem":
        path.write_bytes(pem_public(key))
    else:
        path.write_text(json.dumps(jwk_public(key)))
    return path


def fleet(dest: Path, toml: str = "") -> Path:
    """A copy of examples/agent-fleet with ``toml`` as its vigil.toml (memory-free: SQLite state)."""
    ws = copy_workspace("agent-fleet", dest)
    (ws / "events.jsonl").unlink(missing_ok=True)
    (ws / "vigil.toml").write_text(toml)
    return ws
