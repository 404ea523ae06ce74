"""Public keys of identities (``vigil.identity.keys``): Ed25519, P-256 and RSA keys from JWK and
PEM files give the same canonical JWK and the RFC 7638 thumbprint as ``kid``; every kind of bad
key file is refused with ``invalid_key``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa, x25519
from joserfc.jwk import JWKRegistry

from tests.identity_support import jwk_public, pem_private, pem_public, private_key
from vigil.identity import KeyFormatError, load_public_key, read_key_file, thumbprint

# RFC 7638 section 3.1: the example key and its thumbprint
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
KINDS = ("ed25519", "p256", "rsa")


def test_rfc7638_example() -> None:
    assert thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    key = load_public_key(RFC7638_JWK)
    assert key.kid == RFC7638_THUMBPRINT
    # the file's kid is replaced by the thumbprint; alg is kept; nothing private or extra is
    assert key.jwk == {
        "kty": "RSA",
        "n": RFC7638_JWK["n"],
        "e": "AQAB",
        "alg": "RS256",
        "kid": RFC7638_THUMBPRINT,
    }


@pytest.mark.parametrize("kind", KINDS)
def test_jwk_and_pem_files_of_one_key_agree(kind: str, tmp_path: Path) -> None:
    key = private_key(kind)
    pem = tmp_path / "key.pem"
    pem.write_bytes(pem_public(key))
    jwk_file = tmp_path / "key.json"
    jwk = jwk_public(key)
    jwk_file.write_text(json.dumps(jwk))
    from_pem = read_key_file(pem)
    from_jwk = read_key_file(jwk_file)
    assert from_pem == from_jwk
    # joserfc (an independent implementation) computes the same RFC 7638 thumbprint
    assert from_pem.kid == JWKRegistry.import_key(jwk).thumbprint()
    assert {"kty": "OKP", "EC": "EC"}.get(jwk["kty"], jwk["kty"]) == from_pem.jwk["kty"]
    expected = {"ed25519": "Ed25519", "p256": "EC P-256", "rsa": "RSA 2048"}[kind]
    assert from_pem.describe() == expected
    # a JWK Set holding the one key, PEM text, and the JWK object read the same
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    assert read_key_file(jwks) == from_pem
    assert load_public_key(pem.read_text()) == from_pem
    assert load_public_key(jwk) == from_pem


def test_rsa_pkcs1_pem_and_other_curves(tmp_path: Path) -> None:
    k = private_key("rsa")
    pkcs1 = k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    assert b"RSA PUBLIC KEY" in pkcs1
    assert load_public_key(pkcs1).kid == load_public_key(pem_public(k)).kid
    for curve, crv in ((ec.SECP384R1(), "P-384"), (ec.SECP521R1(), "P-521")):
        key = load_public_key(pem_public(ec.generate_private_key(curve)))
        assert key.jwk["crv"] == crv and len(base64.urlsafe_b64decode(key.jwk["x"] + "==")) in (48, 66)


def test_canonical_form_ignores_encoding_details() -> None:
    jwk = dict(RFC7638_JWK)
    del jwk["alg"]
    padded = {**jwk, "n": jwk["n"] + "=" * (-len(jwk["n"]) % 4)}
    leading_zero = {
        **jwk,
        "n": base64.urlsafe_b64encode(b"\x00" + base64.urlsafe_b64decode(jwk["n"] + "=="))
        .rstrip(b"=")
        .decode(),
    }
    assert load_public_key(padded).kid == load_public_key(leading_zero).kid == RFC7638_THUMBPRINT


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bad_files(tmp_path: Path) -> list[tuple[str, bytes | dict[str, Any], str]]:
    ed = private_key("ed25519")
    p256 = private_key("p256")
    ed_jwk = jwk_public(ed)
    ec_jwk = jwk_public(p256)
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert_like = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    x = x25519.X25519PrivateKey.generate().public_key()
    x_pem = x.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    ed448_pem = (
        ed448.Ed448PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    k1 = (
        ec.generate_private_key(ec.SECP256K1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    off_curve = {
        **ec_jwk,
        "y": _b64(
            (int.from_bytes(base64.urlsafe_b64decode(ec_jwk["y"] + "=="), "big") ^ 1).to_bytes(32, "big")
        ),
    }
    return [
        ("empty", b"", "neither a JWK"),
        ("text", b"hello", "neither a JWK"),
        ("binary", b"\xff\xfe\x00\x01", "neither a JWK"),
        ("broken json", b'{"kty": ', "not valid JSON"),
        ("json array", b"[1, 2]", "neither a JWK"),
        ("private pem", pem_private(ed), "private key"),
        ("private jwk", {**ed_jwk, "d": _b64(b"\x00" * 32)}, "private key"),
        ("symmetric", {"kty": "oct", "k": _b64(b"secret")}, "symmetric"),
        ("certificate", cert_like, "certificate"),
        ("x25519 pem", x_pem, "not supported"),
        ("x25519 jwk", {"kty": "OKP", "crv": "X25519", "x": _b64(b"\x01" * 32)}, "X25519"),
        ("ed448", ed448_pem, "not supported"),
        ("secp256k1", k1, "not supported"),
        ("short rsa", pem_public(small_rsa), "1024 bits"),
        ("garbled pem", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "cannot be read"),
        ("no kty", {"crv": "Ed25519", "x": ed_jwk["x"]}, "kty"),
        ("unknown kty", {"kty": "DSA"}, "not supported"),
        ("short x", {"kty": "OKP", "crv": "Ed25519", "x": _b64(b"\x01" * 31)}, "32 bytes"),
        ("bad base64", {"kty": "OKP", "crv": "Ed25519", "x": "!!!"}, "base64url"),
        ("off the curve", off_curve, "not a valid public key"),
        ("wrong alg", {**ed_jwk, "alg": "RS256"}, "does not fit"),
        ("enc key", {**ec_jwk, "use": "enc"}, "signing"),
        ("no verify op", {**ec_jwk, "key_ops": ["encrypt"]}, "verify"),
        ("two keys", {"keys": [ed_jwk, ec_jwk]}, "exactly one key"),
        ("even exponent", {**RFC7638_JWK, "e": _b64(b"\x01\x00\x00")}, "exponent"),
    ]


def test_bad_key_files_are_refused(tmp_path: Path) -> None:
    for name, data, message in _bad_files(tmp_path):
        path = tmp_path / f"{name.replace(' ', '-')}.key"
        path.write_bytes(json.dumps(data).encode() if isinstance(data, dict) else data)
        with pytest.raises(KeyFormatError, match=message) as e:
            read_key_file(path)
        assert e.value.code == "invalid_key", name
        assert len(e.value.message) < 300, name
