"""The identity registry's parsers (``vigil.identity.parse``, ``vigil.identity.keys``): what they
accept, what they refuse, and (hypothesis) that arbitrary input only ever raises the typed error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.errors import HTTP_STATUS, RequestError
from vigil.identity import (
    DateError,
    KeyFormatError,
    OwnerError,
    UidError,
    load_public_key,
    parse_expiry,
    parse_external_subject,
    parse_identity_uid,
    parse_issuer,
    parse_owner,
    read_key_file,
    uid_text,
)
from vigil.identity.errors import BindingError
from vigil.identity.parse import default_kind, parse_kind, parse_purpose

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0


# -- uids --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "uid"),
    [
        ('Agent::"code-review"', ("Agent", "code-review")),
        ("Agent::code-review", ("Agent", "code-review")),
        ('Acme::Ops::Agent::"x"', ("Acme::Ops::Agent", "x")),
        ('Agent::"with \\"quotes\\" and \\\\"', ("Agent", 'with "quotes" and \\')),
        ('Agent::"a::b"', ("Agent", "a::b")),
        ('  ServiceAccount::"ci"  ', ("ServiceAccount", "ci")),
        ({"type": "Agent", "id": "x y"}, ("Agent", "x y")),
    ],
)
def test_uid_forms(text: Any, uid: tuple[str, str]) -> None:
    assert parse_identity_uid(text) == uid
    assert parse_identity_uid(uid_text(uid)) == uid  # the written form reads back


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Agent",
        'Agent::""',
        "Agent::",
        '::"x"',
        '1Agent::"x"',
        'Agent::"x',
        'Agent::"a"b"',
        'Agent::"bad \\n escape"',
        "Agent::has space",
        'Agent::"tab\there"',
        'Agent::"\ud800"',
        "A" * 5000,
        None,
        42,
        ["Agent", "x"],
        {"type": "Agent"},
        {"type": "Agent", "id": 1},
        {"type": "Agent", "id": "x", "extra": 1},
    ],
)
def test_bad_uids_are_refused(text: Any) -> None:
    with pytest.raises(UidError) as e:
        parse_identity_uid(text)
    assert e.value.code == "invalid_uid"


@given(st.text(max_size=120) | st.from_regex(r'\A[A-Za-z_:]{0,12}::"[^"]{0,20}"?\Z'))
def test_any_uid_text_parses_or_raises_the_typed_error(text: str) -> None:
    try:
        uid = parse_identity_uid(text)
    except UidError as e:
        assert e.code == "invalid_uid"
        return
    assert parse_identity_uid(uid_text(uid)) == uid


# -- owners, purposes, kinds -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("Alice.Smith+bots@Sub.Example.ORG", "Alice.Smith+bots@sub.example.org"),
        (" bob@x.io ", "bob@x.io"),
    ],
)
def test_owners(owner: str, expected: str) -> None:
    assert parse_owner(owner) == expected


@pytest.mark.parametrize(
    "owner",
    [
        None,
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@localhost",
        "a b@example.com",
        "alice@@example.com",
        "alice@example..com",
        "alice@-x.com",
        ".alice@example.com",
        "alice@example.123",
        "x" * 65 + "@example.com",
        7,
        "alice@exämple.com",
    ],
)
def test_bad_owners_are_refused(owner: Any) -> None:
    with pytest.raises(OwnerError) as e:
        parse_owner(owner)
    assert e.value.code == "invalid_owner"


def test_purpose_and_kind() -> None:
    assert parse_purpose("  nightly backups ") == "nightly backups"
    for bad in ("", "  ", "x" * 1001, "line\nbreak", None):
        with pytest.raises(RequestError):
            parse_purpose(bad)
    assert default_kind("ServiceAccount") == "service-account"
    assert default_kind("Acme::Agent") == "agent"
    assert parse_kind(None, "Workload") == "workload"
    assert parse_kind("llm-agent", "Agent") == "llm-agent"
    for bad in ("LLM", "-x", "a" * 65, 3):
        with pytest.raises(RequestError):
            parse_kind(bad, "Agent")


# -- dates -------------------------------------------------------------------------------------
def test_expiry_forms() -> None:
    assert parse_expiry(None, NOW) is None
    assert parse_expiry("", NOW) is None
    assert parse_expiry("2027-01-01", NOW) == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    assert parse_expiry("2026-11-02T11:00:00+01:00", NOW) == NOW + 3_600
    assert parse_expiry("2026-11-02T09:00:01Z", NOW) == NOW + 1
    assert parse_expiry("90d", NOW) == NOW + 90 * DAY


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-02",
        "2026-11-02T09:00:00Z",
        "2020-01-01",
        "2027-02-30",
        "2027-13-01",
        "0000-01-01",
        "0d",
        "36501d",
        "-5d",
        "tomorrow",
        "2027-01-01T00:00:00",
        "2027-1-1",
        "٢٠٢٧-01-01",
        "३d",
        5,
        5.0,
    ],
)
def test_bad_or_past_expiries_are_refused(text: Any) -> None:
    with pytest.raises(DateError) as e:
        parse_expiry(text, NOW)
    assert e.value.code == "invalid_date"


@given(st.text(max_size=70) | st.from_regex(r"\A\d{4}-\d\d-\d\d\Z") | st.from_regex(r"\A\d{1,6}d\Z"))
def test_any_expiry_text_parses_or_raises_the_typed_error(text: str) -> None:
    try:
        t = parse_expiry(text, NOW)
    except DateError as e:
        assert e.code == "invalid_date"
        return
    assert t is None or t > NOW


# -- bindings ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("issuer", "subject"),
    [
        ("spiffe://example.org", "spiffe://example.org/ns/prod/sa/payments"),
        ("https://kubernetes.default.svc", "system:serviceaccount:payments:ledger-reconciler"),
        ("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123", "system:serviceaccount:kube-system:coredns"),
        ("https://accounts.example.com", "00u1a2b3c4"),
        ("http://127.0.0.1:8080/realms/ops", "user-123"),
    ],
)
def test_bindings(issuer: str, subject: str) -> None:
    assert parse_external_subject(subject, parse_issuer(issuer)) == subject


@pytest.mark.parametrize(
    ("issuer", "subject"),
    [
        ("ftp://example.org", "x"),
        ("example.org", "x"),
        ("https://", "x"),
        ("https://a b", "x"),
        ("https://x#frag", "x"),
        ("spiffe://Example.org", "spiffe://Example.org/x"),
        ("spiffe://example.org/path", "spiffe://example.org/x"),
        ("spiffe://example.org", "spiffe://other.org/x"),
        ("spiffe://example.org", "spiffe://example.org"),
        ("spiffe://example.org", "spiffe://example.org/a//b"),
        ("spiffe://example.org", "spiffe://example.org/a/../b"),
        ("spiffe://example.org", "not-a-spiffe-id"),
        ("https://k8s", "system:serviceaccount:ns"),
        ("https://k8s", "system:serviceaccount:NS:name"),
        ("https://k8s", "system:serviceaccount:ns:name:extra"),
        ("https://k8s", ""),
        ("https://k8s", " padded"),
        ("https://k8s", "ctl\x00char"),
        (None, "x"),
        ("https://k8s", None),
    ],
)
def test_bad_bindings_are_refused(issuer: Any, subject: Any) -> None:
    with pytest.raises(BindingError) as e:
        parse_external_subject(subject, parse_issuer(issuer))
    assert e.value.code == "invalid_binding"


@given(st.text(max_size=60), st.text(max_size=60))
def test_any_binding_parses_or_raises_the_typed_error(issuer: str, subject: str) -> None:
    for iss in (issuer, "spiffe://" + issuer, "https://" + issuer):
        try:
            parse_external_subject(subject, parse_issuer(iss))
            parse_external_subject("spiffe://" + subject, parse_issuer(iss))
            parse_external_subject("system:serviceaccount:" + subject, parse_issuer(iss))
        except BindingError as e:
            assert e.code == "invalid_binding"


# -- key files: arbitrary bytes ------------------------------------------------------------------
_JWKISH = st.dictionaries(
    st.sampled_from(["kty", "crv", "x", "y", "n", "e", "d", "alg", "use", "key_ops", "kid", "k"]),
    st.one_of(
        st.sampled_from(
            [
                "OKP",
                "EC",
                "RSA",
                "oct",
                "Ed25519",
                "X25519",
                "P-256",
                "P-384",
                "secp256k1",
                "AQAB",
                "sig",
                "enc",
                "EdDSA",
                "ES256",
                "RS256",
                "none",
                "",
            ]
        ),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", max_size=90),
        st.integers(),
        st.lists(st.text(max_size=8), max_size=3),
        st.none(),
    ),
    max_size=7,
)


@given(
    st.binary(max_size=300)
    | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
    | st.builds(
        lambda b: b"-----BEGIN PUBLIC KEY-----\n" + b + b"\n-----END PUBLIC KEY-----\n",
        st.binary(max_size=120),
    )
    | _JWKISH.map(lambda d: json.dumps(d).encode())
    | _JWKISH.map(lambda d: json.dumps({"keys": [d]}).encode())
)
def test_any_key_file_content_loads_or_raises_the_typed_error(data: bytes) -> None:
    try:
        key = load_public_key(data)
    except KeyFormatError as e:
        assert e.code == "invalid_key" and HTTP_STATUS[e.code] == 400
        return
    assert key.kid and key.jwk["kid"] == key.kid


@given(_JWKISH)
def test_any_jwk_object_loads_or_raises_the_typed_error(obj: dict[str, Any]) -> None:
    try:
        key = load_public_key(obj)
    except KeyFormatError as e:
        assert e.code == "invalid_key"
        return
    assert key.jwk["kty"] in ("OKP", "EC", "RSA")


def test_key_file_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFormatError, match="cannot read"):
        read_key_file(tmp_path / "missing.pem")
    with pytest.raises(KeyFormatError, match="cannot read"):
        read_key_file(tmp_path)  # a directory
    big = tmp_path / "big.json"
    big.write_bytes(b"{" + b" " * 70_000 + b"}")
    with pytest.raises(KeyFormatError, match="larger"):
        read_key_file(big)
