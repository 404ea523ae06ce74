"""The client address behind Envoy (issue 12 §1 "Behind Envoy"): what reaches ``context.ip`` is a
canonical IP address or nothing. IPv6 zone ids are dropped, IPv4-mapped IPv6 addresses become the
IPv4 address, bracketed and ``host:port`` forms are read, anything else gives no address: never
an exception, never a 500."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.behaviour_support import engine, habit, request, write_workspace
from vigil.audit.sink import MemorySink
from vigil.policy.extensions import parse_ipaddr
from vigil.protocol.ext_authz import ClientSource, client_ip
from vigil.server.app import ServerConfig, VigilApp
from vigil.workspace.settings import ExtAuthzSettings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.1.2.3", "10.1.2.3"),
        (" 10.1.2.3 ", "10.1.2.3"),
        ("10.1.2.3:8443", "10.1.2.3"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%25eth0]:80", "fe80::1"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("::FFFF:10.1.2.3", "10.1.2.3"),
        ("[::ffff:10.1.2.3]:5000", "10.1.2.3"),
        ("::ffff:a01:203", "10.1.2.3"),
        # garbage: no address
        ("", None),
        ("unknown", None),
        ("example.com:443", None),
        ("10.1.2.3:", None),
        ("10.1.2.3:99999999", None),
        ("10.1.2.3:\uff18\uff10", None),
        ("10.1.2.3%eth0", None),
        ("fe80::1%", None),
        ("[2001:db8::1", None),
        ("[2001:db8::1]x", None),
        ("[2001:db8::1]:", None),
        ("[10.1.2.3]:80x", None),
        ("1.2.3.4.5", None),
        ("\uff11.\uff12.\uff13.\uff14", None),
        ("::1" + " " * 200, "::1"),
        ("1" * 500, None),
    ],
)
def test_client_ip(text: str, expected: str | None) -> None:
    assert client_ip(text) == expected


def _canonical(got: str | None) -> None:
    """``got`` is no address, or one that reads back as itself, with no zone id, not IPv4-mapped,
    and that Cedar's ``ip()`` (the context conversion) accepts."""
    if got is None:
        return
    addr = ipaddress.ip_address(got)
    assert str(addr) == got and "%" not in got
    assert not (isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None)
    parse_ipaddr(got)


@given(st.text(max_size=80))
def test_any_text_gives_a_canonical_address_or_none(text: str) -> None:
    _canonical(client_ip(text))


_ENTRY = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF:.[]%, eth", max_size=48),
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]:443"),
    st.ip_addresses(v=6).map(lambda a: f"{a}%eth0"),
)


@given(st.ip_addresses(v=4), st.integers(0, 65535))
def test_ipv4_in_every_form_is_the_same_address(addr: ipaddress.IPv4Address, port: int) -> None:
    forms = [str(addr), f"{addr}:{port}", f"::ffff:{addr}", f"[::ffff:{addr}]:{port}"]
    assert {client_ip(f) for f in forms} == {str(addr)}


@given(st.ip_addresses(v=6), st.integers(0, 65535), st.sampled_from(["eth0", "1", "en0.5"]))
def test_ipv6_in_every_form_is_the_same_address(addr: ipaddress.IPv6Address, port: int, zone: str) -> None:
    want = str(addr.ipv4_mapped) if addr.ipv4_mapped is not None else str(addr)
    forms = [
        str(addr),
        addr.exploded,
        f"[{addr}]",
        f"[{addr}]:{port}",
        f"{addr}%{zone}",
        f"[{addr}%{zone}]:{port}",
    ]
    assert {client_ip(f) for f in forms} == {want}


@given(
    st.lists(_ENTRY, max_size=4).map(", ".join),
    st.one_of(st.none(), _ENTRY),
    st.integers(0, 3),
)
def test_client_source_never_raises(xff: str, peer: str | None, hops: int) -> None:
    src = ClientSource(ExtAuthzSettings(trusted_hops=hops))
    headers = {b"x-forwarded-for": xff.encode("utf-8")}
    _canonical(src.address(headers, peer))
    _canonical(src.address({}, peer))


# -- through the server --------------------------------------------------------------------------
WHO = "payments-agent-0"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> tuple[VigilApp, MemorySink, dict[str, Any]]:
    routes = 'routes = ["GET /tables/{t} => read Database::{t}"]'
    extra = f'[ext_authz]\n{routes}\nsubject_header = "x-agent"\nsubject_type = "Agent"\n'
    ws = write_workspace(tmp_path_factory.mktemp("client") / "ws", extra=extra)
    clock = [0.0]
    audit = MemorySink()
    e = engine(ws, clock=lambda: clock[0], audit=audit)
    last = habit(e, WHO)
    usual = request(WHO, "read", "payments-table-0", last)["context"]
    clock[0] = (last + timedelta(minutes=5)).timestamp()
    return VigilApp(e, ServerConfig(api_keys=None, admin_keys=None)), audit, usual


def _check(app: VigilApp, headers: list[tuple[bytes, bytes]], peer: str | None = "127.0.0.1") -> int:
    """One ext_authz call through the ASGI app (no network); its HTTP status."""
    path = "/ext_authz/tables/payments-table-0"
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"x-agent", WHO.encode()), (b"user-agent", b"boto3/1.34"), *headers],
        "client": (peer, 50000) if peer is not None else None,
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status: int = sent[0]["status"]
    return status


def test_a_mapped_address_is_the_usual_network(gateway: tuple[VigilApp, MemorySink, dict[str, Any]]) -> None:
    app, audit, usual = gateway
    for xff in (usual["ip"], f"::ffff:{usual['ip']}", f"[::ffff:{usual['ip']}]:443"):
        assert _check(app, [(b"x-forwarded-for", xff.encode())]) in (200, 403)
        record = audit.records[-1]
        assert record.context is not None and str(record.context["ip"]) == usual["ip"], xff
        assert "new_network" not in record.signals, (xff, record.signals)


def test_a_zone_id_is_dropped(gateway: tuple[VigilApp, MemorySink, dict[str, Any]]) -> None:
    app, audit, _ = gateway
    assert _check(app, [(b"x-forwarded-for", b"fe80::1%eth0")]) in (200, 403)
    record = audit.records[-1]
    assert record.context is not None and str(record.context["ip"]) == "fe80::1"
    assert "invalid_value" not in record.reason_codes


@given(st.lists(_ENTRY, max_size=3).map(", ".join), st.one_of(st.none(), _ENTRY))
def test_ext_authz_never_fails_on_a_client_address(
    gateway: tuple[VigilApp, MemorySink, dict[str, Any]], xff: str, peer: str | None
) -> None:
    app, audit, _ = gateway
    assert _check(app, [(b"x-forwarded-for", xff.encode())], peer) in (200, 403)
    record = audit.records[-1]
    assert record.context is not None
    ip = record.context.get("ip")
    _canonical(None if ip is None else str(ip))
