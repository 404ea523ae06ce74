"""The token verifier: one test per attack, a real JWKS server over HTTP on loopback (key rotation,
bounded refresh, bounded staleness), SPIFFE and Kubernetes subjects, registry bindings, the cache,
and a hypothesis fuzz that only ever sees TokenError."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.token_support import (
    IDP_AUDIENCE,
    JwksServer,
    b64,
    human_claims,
    new_key,
    sign,
    unsigned,
)
from vigil.identity.tokens import Issuer, RemoteKeys, StaticKeys, TokenError, Verifier, parse_jwks
from vigil.identity.tokens.verify import VIGIL

NOW = 1_800_000_000.0


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    with JwksServer(new_key("ed25519"), new_key("rsa"), new_key("p256")) as server:
        yield server


def _verifier(server: JwksServer, clock: Clock, **options: object) -> Verifier:
    keys = RemoteKeys(server.url, ttl_s=300, min_refresh_s=30, max_stale_s=600)
    issuer = Issuer(server.issuer, "oidc", keys, (IDP_AUDIENCE,))
    return Verifier([issuer], clock=clock, **options)  # type: ignore[arg-type]


def _refused(v: Verifier, token: str | bytes, code: str) -> TokenError:
    with pytest.raises(TokenError) as info:
        v.verify(token)
    assert info.value.code == code, info.value.message
    return info.value


# -- accepted ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [0, 1, 2], ids=["EdDSA", "RS256", "ES256"])
def test_each_allowed_algorithm_verifies_over_a_real_jwks_server(idp: JwksServer, index: int) -> None:
    clock = Clock()
    v = _verifier(idp, clock)
    tok = v.verify(sign(human_claims(idp.issuer, now=NOW), idp.keys[index]))
    assert tok.subject == ("User", "alice") and tok.actors == () and tok.issuer == idp.issuer
    assert idp.hits == 1


def test_a_cached_verification_is_the_same_object_and_fetches_nothing(idp: JwksServer) -> None:
    clock = Clock()
    v = _verifier(idp, clock)
    token = sign(human_claims(idp.issuer, now=NOW), idp.keys[0])
    first = v.verify(token)
    assert v.verify(token) is first and v.hits == 1 and v.fresh == 1
    clock.t = NOW + 400  # past exp + skew: the cached entry no longer counts
    _refused(v, token, "token_expired")


# -- one test per attack -------------------------------------------------------------------------------
def test_expired(idp: JwksServer) -> None:
    v = _verifier(idp, Clock())
    _refused(v, sign(human_claims(idp.issuer, now=NOW - 400), idp.keys[0]), "token_expired")


def test_expired_within_the_skew_is_accepted_beyond_it_refused(idp: JwksServer) -> None:
    v = _verifier(idp, Clock(), skew_s=30)
    v.verify(sign(human_claims(idp.issuer, now=NOW, exp=int(NOW) - 10), idp.keys[0]))
    _refused(v, sign(human_claims(idp.issuer, now=NOW, exp=int(NOW) - 31), idp.keys[0]), "token_expired")


def test_not_yet_valid(idp: JwksServer) -> None:
    v = _verifier(idp, Clock())
    _refused(
        v, sign(human_claims(idp.issuer, now=NOW, nbf=int(NOW) + 120), idp.keys[0]), "token_not_yet_valid"
    )
    _refused(
        v, sign(human_claims(idp.issuer, now=NOW + 120), idp.keys[0]), "token_not_yet_valid"
    )  # iat ahead


def test_wrong_audience(idp: JwksServer) -> None:
    v = _verifier(idp, Clock())
    _refused(
        v, sign(human_claims(idp.issuer, now=NOW, aud="another-api"), idp.keys[0]), "token_wrong_audience"
    )
    _refused(v, sign(human_claims(idp.issuer, now=NOW, aud=None), idp.keys[0]), "token_wrong_audience")


def test_wrong_issuer(idp: JwksServer) -> None:
    v = _verifier(idp, Clock())
    _refused(v, sign(human_claims("https://evil.example", now=NOW), idp.keys[0]), "token_wrong_issuer")
    _refused(v, sign(human_claims(idp.issuer, now=NOW, iss=None), idp.keys[0]), "token_wrong_issuer")


def test_unknown_key_refetches_once_within_the_interval(idp: JwksServer) -> None:
    clock = Clock()
    v = _verifier(idp, clock)
    v.verify(sign(human_claims(idp.issuer, now=NOW), idp.keys[0]))
    stranger = new_key("ed25519")
    for _ in range(5):
        _refused(v, sign(human_claims(idp.issuer, now=NOW), stranger), "token_unknown_key")
    assert idp.hits == 1  # the first fetch happened just now: no refetch within min_refresh_s
    clock.t += 31
    _refused(v, sign(human_claims(idp.issuer, now=clock.t), stranger), "token_unknown_key")
    assert idp.hits == 2  # one refetch after the interval, however many tokens asked


def test_alg_none(idp: JwksServer) -> None:
    v = _verifier(idp, Clock())
    claims = human_claims(idp.issuer, now=NOW)
    _refused(v, unsigned({"alg": "none", "kid": idp.keys[0].kid}, claims) + "AAAA", "token_algorithm_refused")
    _refused(v, unsigned({"alg": "none", "kid": idp.keys[0].kid}, claims), "invalid_token")  # empty signature
    _refused(v, unsigned({"alg": "None", "kid": idp.keys[0].kid}, claims, b"x"), "token_algorithm_refused")


def test_hs256_signed_with_the_public_key_as_secret(idp: JwksServer) -> None:
    v = _verifier(idp, Clock())
    rsa = idp.keys[1]
    claims = human_claims(idp.issuer, now=NOW)
    for secret in (rsa.as_pem(private=False), json.dumps(rsa.as_dict(private=False)).encode()):
        head = b64(json.dumps({"alg": "HS256", "kid": rsa.kid}).encode())
        body = b64(json.dumps(claims).encode())
        mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        _refused(v, f"{head}.{body}.{b64(mac)}", "token_algorithm_refused")


def test_an_allowed_algorithm_that_is_not_the_keys_is_refused(idp: JwksServer) -> None:
    v = _verifier(idp, Clock())
    claims = human_claims(idp.issuer, now=NOW)
    _refused(
        v, unsigned({"alg": "RS256", "kid": idp.keys[0].kid}, claims, b"x" * 256), "token_algorithm_refused"
    )


def test_tampered_payload(idp: JwksServer) -> None:
    v = _verifier(idp, Clock())
    head, _, sig = sign(human_claims(idp.issuer, now=NOW), idp.keys[0]).split(".")
    forged = b64(json.dumps(human_claims(idp.issuer, sub="admin", now=NOW)).encode())
    _refused(v, f"{head}.{forged}.{sig}", "invalid_token")


def test_truncated(idp: JwksServer) -> None:
    v = _verifier(idp, Clock())
    token = sign(human_claims(idp.issuer, now=NOW), idp.keys[0])
    _refused(v, token[:-10], "invalid_token")  # a shorter signature
    _refused(v, token.rsplit(".", 1)[0], "invalid_token")  # no signature part
    _refused(v, token[: len(token) // 3], "invalid_token")


def test_oversized(idp: JwksServer) -> None:
    v = _verifier(idp, Clock(), max_bytes=4096)
    big = sign(human_claims(idp.issuer, now=NOW, pad="x" * 5000), idp.keys[0])
    _refused(v, big, "token_too_large")


def test_revoked_jti(idp: JwksServer) -> None:
    class Revoked:
        jtis = frozenset({"gone"})
        delegations: frozenset[tuple[tuple[str, str], tuple[str, str]]] = frozenset()

    v = _verifier(idp, Clock())
    v.revocations = Revoked()
    token = sign(human_claims(idp.issuer, now=NOW, jti="gone"), idp.keys[0])
    _refused(v, token, "token_revoked")
    ok = sign(human_claims(idp.issuer, now=NOW, jti="kept"), idp.keys[0])
    v.verify(ok)
    v.verify(ok)  # another jti stays valid
    Revoked.jtis = frozenset({"gone", "kept"})
    _refused(v, ok, "token_revoked")  # refused from the cache too


def test_delegation_from_an_external_issuer_is_refused(idp: JwksServer) -> None:
    v = _verifier(idp, Clock())
    token = sign(human_claims(idp.issuer, now=NOW, act={"sub": 'Agent::"x"'}), idp.keys[0])
    _refused(v, token, "invalid_token")


def test_a_vigil_token_deeper_than_the_limit_is_refused() -> None:
    key = new_key("ed25519")
    src = StaticKeys(parse_jwks({"keys": [key.as_dict(private=False)]}))
    v = Verifier([Issuer("http://vigil.test", VIGIL, src, ("aud",))], clock=Clock(), max_depth=2)
    act: dict[str, object] = {"sub": 'Agent::"a1"'}
    for n in range(2, 4):
        act = {"sub": f'Agent::"a{n}"', "act": act}
    claims = {
        "iss": "http://vigil.test",
        "sub": 'User::"alice"',
        "aud": "aud",
        "exp": NOW + 60,
        "jti": "j",
        "act": act,
    }
    _refused(v, sign(claims, key), "delegation_too_deep")
    claims["act"] = act["act"]  # two actors: at the limit
    tok = v.verify(sign(claims, key))
    assert tok.actors == (("Agent", "a2"), ("Agent", "a1")) and tok.subject == ("User", "alice")


# -- keys over HTTP: rotation, staleness ----------------------------------------------------------------
def test_key_rotation_at_the_issuer_is_picked_up_on_the_next_unknown_kid(idp: JwksServer) -> None:
    clock = Clock()
    v = _verifier(idp, clock)
    v.verify(sign(human_claims(idp.issuer, now=NOW), idp.keys[0]))
    rotated = new_key("ed25519")
    idp.keys = [rotated, idp.keys[0]]
    clock.t += 60
    assert v.verify(sign(human_claims(idp.issuer, now=clock.t), rotated)).subject == ("User", "alice")
    assert idp.hits == 2


def test_stale_keys_are_served_only_within_the_bound(idp: JwksServer) -> None:
    clock = Clock()
    v = _verifier(idp, clock)
    key = idp.keys[0]
    v.verify(sign(human_claims(idp.issuer, now=NOW), key))
    idp.fail = True
    clock.t += 400  # past the cache's ttl: a refetch fails, the held set is served (stale < 600 s)
    v.verify(sign(human_claims(idp.issuer, now=clock.t), key))
    clock.t += 300  # 700 s since the last good fetch: no more
    _refused(v, sign(human_claims(idp.issuer, now=clock.t), key), "jwks_unavailable")
    idp.fail = False
    clock.t += 31
    v.verify(sign(human_claims(idp.issuer, now=clock.t), key))


def test_an_unreachable_issuer_denies() -> None:
    keys = RemoteKeys("http://127.0.0.1:9/jwks", timeout_s=0.5)
    v = Verifier([Issuer("http://127.0.0.1:9", "oidc", keys, (IDP_AUDIENCE,))], clock=Clock())
    _refused(v, sign(human_claims("http://127.0.0.1:9", now=NOW), new_key()), "jwks_unavailable")


def test_a_jwks_with_symmetric_or_private_keys_only_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_jwks({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]})
    with pytest.raises(ValueError):
        parse_jwks({"keys": [new_key().as_dict(private=True)]})


# -- subjects -------------------------------------------------------------------------------------------
def _static(kind: str, name: str, key: object, **options: object) -> Verifier:
    src = StaticKeys(parse_jwks({"keys": [key.as_dict(private=False)]}))  # type: ignore[attr-defined]
    return Verifier([Issuer(name, kind, src, (IDP_AUDIENCE,), **options)], clock=Clock())  # type: ignore[arg-type]


def test_spiffe_jwt_svid_without_iss_becomes_a_workload() -> None:
    key = new_key("p256")
    v = _static("spiffe", "spiffe://example.org", key, entity_type="Workload")
    sub = "spiffe://example.org/ns/prod/sa/payments"
    claims = {"sub": sub, "aud": IDP_AUDIENCE, "exp": NOW + 60}
    assert v.verify(sign(claims, key)).subject == ("Workload", sub)
    claims["sub"] = "spiffe://other.org/ns/prod/sa/payments"
    _refused(v, sign(claims, key), "token_wrong_issuer")


def test_kubernetes_service_account_token() -> None:
    key = new_key("rsa")
    iss = "https://kubernetes.default.svc"
    v = _static("kubernetes", iss, key, entity_type="ServiceAccount")
    claims = {"iss": iss, "sub": "system:serviceaccount:prod:payments", "aud": IDP_AUDIENCE, "exp": NOW + 60}
    assert v.verify(sign(claims, key)).subject == ("ServiceAccount", "prod/payments")
    claims["sub"] = "alice"
    _refused(v, sign(claims, key), "token_subject_unknown")


def test_a_registry_binding_names_the_identity() -> None:
    key = new_key()
    src = StaticKeys(parse_jwks({"keys": [key.as_dict(private=False)]}))
    issuer = Issuer("https://idp.example", "oidc", src, (IDP_AUDIENCE,), require_binding=True)
    bound = {("https://idp.example", "0oa1b2"): ("Agent", "triage-bot")}
    v = Verifier([issuer], bindings=lambda i, s: bound.get((i, s)), clock=Clock())
    claims = human_claims("https://idp.example", sub="0oa1b2", now=NOW)
    assert v.verify(sign(claims, key)).subject == ("Agent", "triage-bot")
    _refused(v, sign({**claims, "sub": "someone-else"}, key), "token_subject_unknown")


# -- fuzz -----------------------------------------------------------------------------------------------
_KEY = new_key()
_FUZZ = _static("oidc", "https://idp.example", _KEY)
_GOOD = sign(human_claims("https://idp.example", now=NOW), _KEY)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=400),
        st.text(max_size=400),
        st.builds(
            lambda a, b, c: f"{a}.{b}.{c}",
            st.text(max_size=60),
            st.text(max_size=60),
            st.text(max_size=60),
        ),
        st.builds(
            lambda i, ch: _GOOD[:i] + ch + _GOOD[i + 1 :],
            st.integers(0, len(_GOOD) - 1),
            st.sampled_from(list("AaZz09-_.=+/ ")),
        ),
        st.builds(
            lambda h, c: unsigned(h, c, b"sig"),
            st.dictionaries(
                st.sampled_from(["alg", "kid", "crit", "typ"]),
                st.one_of(st.text(max_size=8), st.integers(), st.none()),
            ),
            st.dictionaries(
                st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "act"]),
                st.one_of(
                    st.text(max_size=8), st.integers(), st.floats(), st.lists(st.text(max_size=4)), st.none()
                ),
            ),
        ),
    )
)
def test_fuzzed_tokens_are_refused_with_a_token_error_only(token: str | bytes) -> None:
    try:
        _FUZZ.verify(token)
    except TokenError:
        return
    assert token == _GOOD  # the one valid token (an identical mutation)


def test_the_fuzz_target_accepts_the_good_token() -> None:
    assert _FUZZ.verify(_GOOD).subject == ("User", "alice")
