"""Public signing keys of identities: a JWK or a PEM public key in, a canonical public JWK out,
named by its RFC 7638 thumbprint.

Accepted: Ed25519 (``OKP``), ECDSA on P-256, P-384 or P-521 (``EC``), RSA of 2048 to 16384 bits
(``RSA``), as one JWK (JSON; a JWK Set holding exactly one key is read as that key) or a PEM
``PUBLIC KEY`` (SubjectPublicKeyInfo) / ``RSA PUBLIC KEY`` block. Refused, with
:class:`~vigil.identity.errors.KeyFormatError` (``invalid_key``) and nothing else: private keys
(a JWK with ``d``, a PEM private key: the private half never leaves the identity), symmetric
keys (``oct``), keys that do not sign (X25519, ``use`` other than ``sig``), other curves, short
RSA keys, an ``alg`` that does not fit the key, points off the curve, anything malformed or larger
than 64 KiB. The JWK kept has only the key's public members (canonical: RSA ``n`` without leading
zeros, EC coordinates at the curve's full length), ``alg`` when one was given, and ``kid`` = the
RFC 7638 SHA-256 thumbprint (a ``kid`` in the file is replaced).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from vigil.identity.errors import KeyFormatError

MAX_KEY_BYTES: Final = 64 * 1024
MIN_RSA_BITS: Final = 2_048
MAX_RSA_BITS: Final = 16_384
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*={0,2}\Z", re.ASCII)
_CURVES: Final[dict[str, tuple[type[ec.EllipticCurve], int, str]]] = {
    "P-256": (ec.SECP256R1, 32, "ES256"),
    "P-384": (ec.SECP384R1, 48, "ES384"),
    "P-521": (ec.SECP521R1, 66, "ES512"),
}
_CURVE_NAMES: Final = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_RSA_ALGS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_PRIVATE: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
# RFC 7638 section 3.2: the members of each key type's thumbprint
_REQUIRED: Final = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}

PublicKeyType = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A checked public key: ``kid`` (RFC 7638 thumbprint) and the canonical public ``jwk``."""

    kid: str
    jwk: dict[str, str]

    def text(self) -> str:
        """The JWK as compact JSON with sorted members (what the registry stores)."""
        return jwk_text(self.jwk)

    def describe(self) -> str:
        """``Ed25519``, ``EC P-256``, ``RSA 2048``."""
        return describe_jwk(self.jwk)


def jwk_text(jwk: dict[str, Any]) -> str:
    return orjson.dumps(jwk, option=orjson.OPT_SORT_KEYS).decode()


def describe_jwk(jwk: dict[str, Any]) -> str:
    """A key's algorithm family and size, for people: ``Ed25519``, ``EC P-256``, ``RSA 2048``."""
    kty = jwk.get("kty")
    if kty == "OKP":
        return str(jwk.get("crv"))
    if kty == "EC":
        return f"EC {jwk.get('crv')}"
    if kty == "RSA":
        try:
            return f"RSA {int.from_bytes(_b64decode(str(jwk.get('n')), 'n'), 'big').bit_length()}"
        except KeyFormatError:
            return "RSA"
    return str(kty)


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url without padding) of a public JWK."""
    kty = jwk.get("kty")
    members = _REQUIRED.get(kty) if type(kty) is str else None
    if members is None:
        raise KeyFormatError(f"no thumbprint for key type {str(kty)[:20]!r}")
    subset = {}
    for m in members:
        value = jwk.get(m)
        if type(value) is not str:
            raise KeyFormatError(f"the JWK has no {m!r} member")
        subset[m] = value
    digest = hashlib.sha256(orjson.dumps(subset, option=orjson.OPT_SORT_KEYS)).digest()
    return _b64encode(digest)


def read_key_file(path: str | Path) -> PublicKey:
    """The public key in the file at ``path`` (JWK or PEM); raises KeyFormatError (``invalid_key``)
    when it cannot be read or is not an accepted public key."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_KEY_BYTES + 1)
    except OSError as e:
        raise KeyFormatError(f"cannot read the key file {str(p)!r}: {e.strerror or e}") from None
    return load_public_key(data)


def load_public_key(data: Any) -> PublicKey:
    """A public key from a JWK (a dict, or its JSON text/bytes) or PEM text/bytes; raises
    KeyFormatError (``invalid_key``) for anything else (see the module documentation)."""
    if type(data) is dict:
        return _from_jwk(data)
    if type(data) is str:
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            raise KeyFormatError("the key is not valid text") from None
    if type(data) is not bytes:
        raise KeyFormatError("a key is a JWK (JSON object) or a PEM public key")
    if len(data) > MAX_KEY_BYTES:
        raise KeyFormatError(f"the key is larger than {MAX_KEY_BYTES} bytes")
    text = data.strip()
    if text.startswith(b"{"):
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise KeyFormatError("the key file is not valid JSON (a JWK)") from None
        if type(obj) is dict and "keys" in obj and "kty" not in obj:
            keys = obj["keys"]
            if type(keys) is not list or len(keys) != 1:
                raise KeyFormatError("a JWK Set must hold exactly one key here (register keys one at a time)")
            obj = keys[0]
        if type(obj) is not dict:
            raise KeyFormatError("a JWK is a JSON object")
        return _from_jwk(obj)
    if text.startswith(b"-----BEGIN"):
        return _from_pem(text)
    raise KeyFormatError("the key is neither a JWK (JSON) nor a PEM public key (-----BEGIN PUBLIC KEY-----)")


# -- PEM -----------------------------------------------------------------------------------------
def _from_pem(text: bytes) -> PublicKey:
    header = text.split(b"\n", 1)[0]
    if b"PRIVATE KEY" in header:
        raise KeyFormatError(
            "this is a private key: register the public key only (the private key stays with the identity)"
        )
    if b"CERTIFICATE" in header:
        raise KeyFormatError("this is a certificate: register its public key (openssl x509 -pubkey -noout)")
    if b"PUBLIC KEY" not in header:
        raise KeyFormatError("a PEM key must be a PUBLIC KEY block")
    try:
        key = serialization.load_pem_public_key(text)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFormatError(f"the PEM public key cannot be read: {str(e)[:120]}") from None
    return _from_crypto(key, None)


def _from_crypto(key: Any, alg: str | None) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64encode(raw)}
        if alg not in (None, "EdDSA", "Ed25519"):
            raise KeyFormatError(f"alg {alg!r} does not fit an Ed25519 key (EdDSA)")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        crv = _CURVE_NAMES.get(key.curve.name)
        if crv is None:
            raise KeyFormatError(f"curve {key.curve.name} is not supported (P-256, P-384, P-521)")
        size, expected = _CURVES[crv][1], _CURVES[crv][2]
        point = key.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": crv,
            "x": _b64encode(point.x.to_bytes(size, "big")),
            "y": _b64encode(point.y.to_bytes(size, "big")),
        }
        if alg not in (None, expected):
            raise KeyFormatError(f"alg {alg!r} does not fit an EC {crv} key ({expected})")
    elif isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        bits = nums.n.bit_length()
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise KeyFormatError(f"an RSA key of {bits} bits: {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted")
        jwk = {"kty": "RSA", "n": _b64encode(_int_bytes(nums.n)), "e": _b64encode(_int_bytes(nums.e))}
        if alg is not None and alg not in _RSA_ALGS:
            raise KeyFormatError(f"alg {alg!r} does not fit an RSA key (RS256.., PS256..)")
    else:
        name = type(key).__name__.replace("PublicKey", "").lstrip("_") or "this"
        raise KeyFormatError(f"{name} keys are not supported: Ed25519, EC P-256/P-384/P-521 or RSA")
    if alg is not None:
        jwk["alg"] = alg
    kid = thumbprint(jwk)
    jwk["kid"] = kid
    return PublicKey(kid, jwk)


# -- JWK -----------------------------------------------------------------------------------------
def _from_jwk(obj: dict[Any, Any]) -> PublicKey:
    kty = obj.get("kty")
    if type(kty) is not str:
        raise KeyFormatError("a JWK needs a 'kty' member")
    if kty == "oct":
        raise KeyFormatError("a symmetric key (kty oct): vigil registers public keys only")
    if any(m in obj for m in _PRIVATE):
        raise KeyFormatError("this JWK holds a private key: register the public key only")
    if kty not in _REQUIRED:
        raise KeyFormatError(f"key type {kty[:20]!r} is not supported (OKP Ed25519, EC, RSA)")
    use = obj.get("use")
    if use is not None and use != "sig":
        raise KeyFormatError(f"'use' is {str(use)[:20]!r}: only signing keys ('sig') identify")
    ops = obj.get("key_ops")
    if ops is not None and (type(ops) is not list or "verify" not in ops):
        raise KeyFormatError("'key_ops' must include 'verify'")
    alg = obj.get("alg")
    if alg is not None and type(alg) is not str:
        raise KeyFormatError("'alg' must be a string")
    try:
        key: PublicKeyType
        if kty == "OKP":
            crv = obj.get("crv")
            if crv != "Ed25519":
                raise KeyFormatError(
                    f"OKP curve {str(crv)[:20]!r} is not supported (Ed25519 signs; X25519 does not)"
                )
            x = _b64decode(obj.get("x"), "x")
            if len(x) != 32:
                raise KeyFormatError("an Ed25519 'x' is 32 bytes")
            key = ed25519.Ed25519PublicKey.from_public_bytes(x)
        elif kty == "EC":
            crv = obj.get("crv")
            curve = _CURVES.get(crv) if type(crv) is str else None
            if curve is None:
                raise KeyFormatError(f"EC curve {str(crv)[:20]!r} is not supported (P-256, P-384, P-521)")
            cls, size, _ = curve
            x, y = _b64decode(obj.get("x"), "x"), _b64decode(obj.get("y"), "y")
            if len(x) != size or len(y) != size:
                raise KeyFormatError(f"EC {crv} coordinates are {size} bytes each")
            key = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), cls()
            ).public_key()
        else:
            n = int.from_bytes(_b64decode(obj.get("n"), "n"), "big")
            e = int.from_bytes(_b64decode(obj.get("e"), "e"), "big")
            if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
                raise KeyFormatError(
                    f"an RSA key of {n.bit_length()} bits: {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
                )
            if e < 3 or e % 2 == 0 or e.bit_length() > 64:
                raise KeyFormatError("the RSA exponent must be odd, at least 3 and at most 64 bits")
            key = rsa.RSAPublicNumbers(e, n).public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise KeyFormatError(f"the JWK is not a valid public key: {str(err)[:120]}") from None
    return _from_crypto(key, alg)


def _b64decode(value: Any, member: str) -> bytes:
    if type(value) is not str or not value or len(value) > MAX_KEY_BYTES or not _B64URL.match(value):
        raise KeyFormatError(f"the JWK member {member!r} must be base64url text")
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"the JWK member {member!r} is not valid base64url") from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
