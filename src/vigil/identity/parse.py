"""Parsers of what operators type or send: identity uids, owners, purposes, kinds, expiry dates and
external bindings. Each takes any value and returns the checked value or raises its typed error
(a :class:`~vigil.errors.RequestError` with a stable code); nothing else is raised."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from vigil.errors import RequestError
from vigil.identity.errors import BindingError, DateError, OwnerError, UidError
from vigil.model.timefmt import TimeFormatError, parse_datetime
from vigil.model.uid import EntityUid

MAX_TYPE: Final = 256
MAX_ID: Final = 1024
MAX_OWNER: Final = 254
MAX_PURPOSE: Final = 1_000
MAX_REASON: Final = 4_000
MAX_ISSUER: Final = 512
MAX_SUBJECT: Final = 1_024
MAX_DAYS: Final = 36_500
_TYPE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*\Z")
_KIND: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}\Z")
_LOCAL: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_DATE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z", re.ASCII)
_DAYS: Final = re.compile(r"(\d{1,5})d\Z", re.ASCII)
_DNS_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_DNS_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?\Z")
_TRUST_DOMAIN: Final = re.compile(r"[a-z0-9._-]{1,255}\Z")
_SPIFFE_SEGMENT: Final = re.compile(r"[A-Za-z0-9._-]+\Z")
_HOST: Final = re.compile(r"[A-Za-z0-9._~-]+(?::\d{1,5})?\Z|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?\Z", re.ASCII)
K8S_PREFIX: Final = "system:serviceaccount:"


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def clean_text(value: Any, what: str, limit: int, *, required: bool, code: str = "invalid_argument") -> str:
    """``value`` as text: a string of at most ``limit`` characters, printable (no control
    characters, no lone surrogates), stripped; empty only when not ``required``. Raises
    RequestError with ``code``."""
    if type(value) is not str or len(value) > limit or not value.isprintable():
        raise RequestError(
            f"{what} must be printable text of at most {limit} characters, got {_quote(value)}", code=code
        )
    text = value.strip()
    if required and not text:
        raise RequestError(f"{what} is required", code=code)
    return text


def parse_identity_uid(value: Any) -> EntityUid:
    """An identity's entity uid from ``Type::"id"`` (Cedar's form: ``\\"`` and ``\\\\`` escape a
    quote and a backslash in the id), ``Type::id`` (an id without quotes, colons or spaces), or
    ``{"type", "id"}``. Types are Cedar names (``Agent``, ``Acme::Agent``); ids are 1..1024
    printable characters. Raises UidError (``invalid_uid``)."""
    if type(value) is dict:
        etype, eid = value.get("type"), value.get("id")
        if set(value) != {"type", "id"} or type(etype) is not str or type(eid) is not str:
            raise UidError('an identity is {"type": ..., "id": ...} with string members')
        return _checked(etype, eid, f"{etype}::{eid}")
    if type(value) is not str or len(value) > MAX_TYPE + MAX_ID * 2 + 8:
        raise UidError(f"{_quote(value)} is not an entity uid like 'Agent::\"name\"'")
    text = value.strip()
    quote = text.find('::"')
    if quote >= 0:
        etype, body = text[:quote], text[quote + 3 :]
        if len(body) < 1 or body[-1] != '"':
            raise UidError(f"{_quote(value)} has no closing quote (like 'Agent::\"name\"')")
        return _checked(etype, _unescape(body[:-1], value), value)
    etype, sep, eid = text.rpartition("::")
    if not sep or any(c in eid for c in '" \\'):
        raise UidError(f"{_quote(value)} is not an entity uid like 'Agent::\"name\"'")
    return _checked(etype, eid, value)


def _unescape(body: str, value: Any) -> str:
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            if i + 1 >= len(body) or body[i + 1] not in '"\\':
                raise UidError(f"{_quote(value)}: only \\\" and \\\\ are escapes in an identity's id")
            out.append(body[i + 1])
            i += 2
            continue
        if c == '"':
            raise UidError(f'{_quote(value)}: a quote inside the id must be escaped (\\")')
        out.append(c)
        i += 1
    return "".join(out)


def _checked(etype: str, eid: str, value: Any) -> EntityUid:
    if len(etype) > MAX_TYPE or not _TYPE.match(etype):
        raise UidError(f"{_quote(value)}: {_quote(etype)} is not an entity type name (like Agent)")
    if not eid or len(eid) > MAX_ID or not eid.isprintable():
        raise UidError(f"{_quote(value)}: the id must be 1..{MAX_ID} printable characters")
    return (etype, eid)


def uid_text(uid: EntityUid) -> str:
    """``Type::"id"`` (the form :func:`parse_identity_uid` reads back)."""
    return uid[0] + '::"' + uid[1].replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_owner(value: Any) -> str:
    """A person's email address (``name@example.com``; the domain is lower-cased). Raises
    OwnerError (``invalid_owner``) when missing or malformed."""
    if value is None or (type(value) is str and not value.strip()):
        raise OwnerError("an identity needs an owner: a person's email address (--owner)")
    if type(value) is not str or len(value) > MAX_OWNER:
        raise OwnerError(f"owner {_quote(value)} is not an email address")
    text = value.strip()
    local, at, domain = text.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or not 1 <= len(local) <= 64
        or not _LOCAL.match(local)
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise OwnerError(f"owner {_quote(value)} is not an email address (like alice@example.com)")
    return f"{local}@{domain.lower()}"


def valid_owner(value: Any) -> bool:
    """Whether ``value`` is an owner :func:`parse_owner` accepts."""
    try:
        parse_owner(value)
    except OwnerError:
        return False
    return True


def parse_purpose(value: Any) -> str:
    """Why the identity exists: 1..1000 printable characters (``invalid_argument``)."""
    return clean_text(value, "purpose", MAX_PURPOSE, required=True)


def parse_reason(value: Any) -> str:
    """A change's optional reason or note (``invalid_argument``)."""
    if value is None:
        return ""
    return clean_text(value, "reason", MAX_REASON, required=False)


def default_kind(etype: str) -> str:
    """The kind of an identity whose ``--kind`` is not given: its type's name in kebab case
    (``ServiceAccount`` -> ``service-account``)."""
    name = etype.rpartition("::")[2]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower().replace("_", "-")[:64] or "identity"


def parse_kind(value: Any, etype: str) -> str:
    """The identity's kind (``agent``, ``service-account``, ``workload``, ...): lower-case letters,
    digits, ``-_.``, at most 64; None or empty: :func:`default_kind` (``invalid_argument``)."""
    if value is None or value == "":
        return default_kind(etype)
    if type(value) is not str or not _KIND.match(value):
        raise RequestError(
            f"kind {_quote(value)} must be 1..64 lower-case letters, digits, '-', '_' or '.'",
            code="invalid_argument",
        )
    return value


def parse_expiry(value: Any, now: float) -> float | None:
    """An expiry: None/empty (never), ``YYYY-MM-DD`` (00:00 UTC of that day: inactive from that
    day on), an RFC 3339 date-time, or ``<N>d`` (N days from ``now``). It must be after ``now``.
    Returns epoch seconds; raises DateError (``invalid_date``)."""
    if value is None or value == "":
        return None
    if type(value) is not str or len(value) > 64:
        raise DateError(f"expiry {_quote(value)} is not a date (YYYY-MM-DD, RFC 3339 or <N>d)")
    text = value.strip()
    m = _DAYS.match(text)
    if m is not None:
        days = int(m.group(1))
        if not 1 <= days <= MAX_DAYS:
            raise DateError(f"expiry {_quote(value)}: between 1d and {MAX_DAYS}d")
        return now + days * 86_400.0
    m = _DATE.match(text)
    if m is not None:
        try:
            t = datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=UTC).timestamp()
        except ValueError:
            raise DateError(f"expiry {_quote(value)} is not a calendar date") from None
    else:
        try:
            t = parse_datetime(text).timestamp()
        except TimeFormatError:
            raise DateError(
                f"expiry {_quote(value)} is not a date (YYYY-MM-DD, RFC 3339 with an offset, or <N>d)"
            ) from None
    if t <= now:
        raise DateError(f"expiry {_quote(value)} is not in the future")
    return t


def parse_issuer(value: Any) -> str:
    """An external issuer: an ``https://`` or ``http://`` URL (an OIDC or Kubernetes issuer) or a
    SPIFFE trust domain ``spiffe://example.org``. Raises BindingError (``invalid_binding``)."""
    if type(value) is not str or not value or len(value) > MAX_ISSUER or not value.isprintable():
        raise BindingError(f"issuer {_quote(value)} must be a URL of at most {MAX_ISSUER} characters")
    if " " in value or "#" in value:
        raise BindingError(f"issuer {_quote(value)} must be a URL without spaces or a fragment")
    scheme, sep, rest = value.partition("://")
    host = rest.split("/", 1)[0]
    if not sep or scheme not in ("https", "http", "spiffe") or not host or not _HOST.match(host):
        raise BindingError(
            f"issuer {_quote(value)} must be an https:// (or http://) URL or a spiffe:// trust domain"
        )
    if scheme == "spiffe" and (host != rest or not _TRUST_DOMAIN.match(host)):
        raise BindingError(f"issuer {_quote(value)}: a SPIFFE trust domain is spiffe://<lower-case domain>")
    return value


def parse_external_subject(value: Any, issuer: str) -> str:
    """The subject ``issuer`` names the identity by. A SPIFFE ID (``spiffe://domain/path``) must be
    well-formed and, under a ``spiffe://`` issuer, in its trust domain; a Kubernetes service
    account must be ``system:serviceaccount:<namespace>:<name>``; anything else is 1..1024
    printable characters. Raises BindingError (``invalid_binding``)."""
    if type(value) is not str or not value or len(value) > MAX_SUBJECT or not value.isprintable():
        raise BindingError(f"subject {_quote(value)} must be 1..{MAX_SUBJECT} printable characters")
    if value != value.strip():
        raise BindingError(f"subject {_quote(value)} must not start or end with spaces")
    if value.startswith("spiffe://"):
        domain, _, path = value[len("spiffe://") :].partition("/")
        segments = path.split("/")
        if (
            not _TRUST_DOMAIN.match(domain)
            or not path
            or not all(_SPIFFE_SEGMENT.match(s) and s not in (".", "..") for s in segments)
        ):
            raise BindingError(f"subject {_quote(value)} is not a SPIFFE ID (spiffe://domain/path)")
        if issuer.startswith("spiffe://") and issuer != "spiffe://" + domain:
            raise BindingError(f"subject {_quote(value)} is not in the trust domain {issuer}")
    elif value.startswith(K8S_PREFIX):
        parts = value[len(K8S_PREFIX) :].split(":")
        if (
            len(parts) != 2
            or not _DNS_LABEL.match(parts[0])
            or len(parts[1]) > 253
            or not _DNS_NAME.match(parts[1])
        ):
            raise BindingError(
                f"subject {_quote(value)} is not a Kubernetes service account "
                "(system:serviceaccount:<namespace>:<name>)"
            )
    elif issuer.startswith("spiffe://"):
        raise BindingError(f"subject {_quote(value)}: a spiffe:// issuer binds SPIFFE IDs only")
    return value
