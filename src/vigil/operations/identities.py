"""Operator use cases on the identity registry: add, suspend, resume, retire, add-key, remove-key,
bind, unbind; list, show and the hygiene report.

One :class:`IdentityDesk` serves the CLI (through :class:`~vigil.operations.service.StateDesk`,
without loading the policies) and the admin HTTP API (through the engine, whose gate sees each
change at once). Each change checks its input (typed errors with stable codes, see
``docs/identity.md``), is applied by :class:`~vigil.identity.Registry` against the freshest stored
state, then written to the store's change log and, as an operator event with ``by``, to the
chained audit log. A refused change writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_to_bytes

import orjson

from vigil.errors import NotFoundError, RequestError
from vigil.identity import lifecycle
from vigil.identity.errors import IdentityNotFound, IdentityTypeError, UidError
from vigil.identity.keys import PublicKey, describe_jwk, load_public_key, read_key_file
from vigil.identity.parse import (
    parse_expiry,
    parse_external_subject,
    parse_identity_uid,
    parse_issuer,
    parse_kind,
    parse_owner,
    parse_purpose,
    parse_reason,
    uid_text,
)
from vigil.identity.registry import Registry
from vigil.identity.report import DAY, hygiene, time_text
from vigil.identity.settings import IdentitySettings
from vigil.model.uid import EntityUid
from vigil.operations.approvals import check_actor
from vigil.operations.events import uid_dict
from vigil.store.base import IDENTITY_STATES, ChangeLog, IdentityEntry, IdentityKey

KeySource = PublicKey | Path | bytes | str | dict[str, Any]
Audit = Callable[..., Any]
STATUS_FILTERS: Final = (*IDENTITY_STATES, lifecycle.EXPIRED)


def _uid(value: Any) -> EntityUid:
    if type(value) is tuple and len(value) == 2:
        return parse_identity_uid({"type": value[0], "id": value[1]})
    return parse_identity_uid(value)


def _key(source: KeySource) -> PublicKey:
    if isinstance(source, PublicKey):
        return source
    if isinstance(source, Path):
        return read_key_file(source)
    return load_public_key(source)


def key_dict(k: IdentityKey, now: float) -> dict[str, Any]:
    """A registered key as JSON-ready data (the public JWK, its age in whole days)."""
    jwk = orjson.loads(k.jwk)
    return {
        "kid": k.kid,
        "key": describe_jwk(jwk),
        "jwk": jwk,
        "added": time_text(k.added),
        "by": k.by,
        "age_days": int(max(now - k.added, 0.0) // DAY),
    }


class IdentityDesk:
    """The registry's operator use cases (see the module documentation).

    ``changes``: the store's change log; ``audit(kind, by, **details)``: writes an operator event
    (may raise AuditError); ``recordable()``: called before any change, raises AuditError (nothing
    changed) when the audit log cannot record it; ``settings()``: the workspace's ``[identity]`` (read at each call, so a
    reload applies); ``entities()``: every entity uid of the workspace (for the report).
    """

    def __init__(
        self,
        registry: Registry,
        changes: ChangeLog,
        *,
        audit: Audit,
        clock: Callable[[], float],
        settings: Callable[[], IdentitySettings],
        entities: Callable[[], Iterable[EntityUid]],
        recordable: Callable[[], None] = lambda: None,
    ) -> None:
        self.registry = registry
        self._recordable = recordable
        self._changes = changes
        self._audit = audit
        self._clock = clock
        self._settings = settings
        self._entities = entities

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    def _record(self, event: str, uid: EntityUid, by: str, now: float, **detail: Any) -> None:
        self._changes.append_change(now, event, uid, by, detail)
        self._audit(event, by, subject=uid_dict(uid), **detail)

    # -- changes -----------------------------------------------------------------------------
    def add(
        self,
        uid: Any,
        *,
        owner: Any,
        purpose: Any,
        by: Any,
        kind: Any = None,
        expires: Any = None,
        public_key: KeySource | None = None,
        now: float | None = None,
    ) -> IdentityEntry:
        """Register an identity (active). ``expires``: ``YYYY-MM-DD``, RFC 3339 or ``<N>d``;
        ``public_key``: a JWK or PEM (file path, text, bytes or JWK object). Raises UidError,
        IdentityTypeError, OwnerError, RequestError (purpose, kind, by), DateError,
        KeyFormatError, IdentityConflict (``identity_exists``, ``key_exists``) or StoreError."""
        t = self._now(now)
        subject = _uid(uid)
        types = self._settings().types
        if subject[0] not in types:
            raise IdentityTypeError(
                f"{subject[0]} is not an identity type: the registry is for {', '.join(types)} "
                "([identity] types in vigil.toml)"
            )
        actor = check_actor(by)
        entry = lifecycle.new_entry(
            subject,
            owner=parse_owner(owner),
            purpose=parse_purpose(purpose),
            kind=parse_kind(kind, subject[0]),
            expires=parse_expiry(expires, t),
            key=_key(public_key) if public_key is not None else None,
            by=actor,
            now=t,
        )
        self._recordable()
        created = self.registry.create(entry)
        self._record(
            "identity_added",
            subject,
            actor,
            t,
            owner=created.owner,
            purpose=created.purpose,
            identity_kind=created.kind,
            expires=time_text(created.expires),
            keys=[k.kid for k in created.keys],
        )
        return created

    def _status(
        self,
        kind: str,
        change: Callable[..., IdentityEntry],
        uid: Any,
        by: Any,
        reason: Any,
        now: float | None,
    ) -> IdentityEntry:
        t = self._now(now)
        subject = _uid(uid)
        actor = check_actor(by)
        why = parse_reason(reason)
        self._recordable()
        before, after = self.registry.update(subject, lambda e: change(e, by=actor, reason=why, now=t))
        self._record(kind, subject, actor, t, reason=why, before=before.status, after=after.status)
        return after

    def suspend(self, uid: Any, *, by: Any, reason: Any = "", now: float | None = None) -> IdentityEntry:
        """active -> suspended: denied (``identity_inactive``) from the next decision that sees it."""
        return self._status("identity_suspended", lifecycle.suspend, uid, by, reason, now)

    def resume(self, uid: Any, *, by: Any, reason: Any = "", now: float | None = None) -> IdentityEntry:
        """suspended -> active (refused for retired and active identities)."""
        return self._status("identity_resumed", lifecycle.resume, uid, by, reason, now)

    def retire(self, uid: Any, *, by: Any, reason: Any = "", now: float | None = None) -> IdentityEntry:
        """active or suspended -> retired: final, kept for the record."""
        return self._status("identity_retired", lifecycle.retire, uid, by, reason, now)

    def add_key(
        self, uid: Any, key: KeySource, *, by: Any, now: float | None = None
    ) -> tuple[IdentityEntry, IdentityKey]:
        """Add a public key (the others stay valid: rotation with overlap); returns the record and
        the new key. Raises KeyFormatError, IdentityConflict (``key_exists``), ..."""
        t = self._now(now)
        subject = _uid(uid)
        actor = check_actor(by)
        public = _key(key)
        limit = self._settings().max_keys
        self._recordable()
        _, after = self.registry.update(
            subject, lambda e: lifecycle.add_key(e, public, by=actor, now=t, max_keys=limit)
        )
        added = next(k for k in after.keys if k.kid == public.kid)
        self._record("identity_key_added", subject, actor, t, kid=public.kid, key=public.describe())
        return after, added

    def remove_key(
        self, uid: Any, kid: Any, *, by: Any, now: float | None = None
    ) -> tuple[IdentityEntry, IdentityKey]:
        """Remove the key ``kid``; returns the record and the removed key. Removing one while
        another stays completes a rotation. Raises IdentityNotFound (``key_not_found``), ..."""
        t = self._now(now)
        subject = _uid(uid)
        actor = check_actor(by)
        if type(kid) is not str or not 1 <= len(kid) <= 128 or not kid.isprintable():
            raise IdentityNotFound(f"no key {str(kid)[:80]!r}", code="key_not_found")
        removed: list[IdentityKey] = []

        def change(e: IdentityEntry) -> IdentityEntry:
            after, gone = lifecycle.remove_key(e, kid, now=t)
            removed[:] = [gone]
            return after

        self._recordable()
        _, after = self.registry.update(subject, change)
        self._record("identity_key_removed", subject, actor, t, kid=kid, keys_left=len(after.keys))
        return after, removed[0]

    def bind(
        self, uid: Any, *, issuer: Any, subject: Any, by: Any, now: float | None = None
    ) -> IdentityEntry:
        """Bind an external name: ``subject`` as ``issuer`` names this identity (a SPIFFE ID, a
        Kubernetes service account, an OIDC ``sub``). Raises BindingError, IdentityConflict
        (``binding_exists``: on this or another identity), ..."""
        t = self._now(now)
        uid_ = _uid(uid)
        actor = check_actor(by)
        iss = parse_issuer(issuer)
        sub = parse_external_subject(subject, iss)
        self._recordable()
        _, after = self.registry.update(uid_, lambda e: lifecycle.bind(e, iss, sub, by=actor, now=t))
        self._record("identity_bound", uid_, actor, t, issuer=iss, external_subject=sub)
        return after

    def unbind(
        self, uid: Any, *, issuer: Any, subject: Any, by: Any, now: float | None = None
    ) -> IdentityEntry:
        """Remove a binding. Raises IdentityNotFound (``binding_not_found``), ..."""
        t = self._now(now)
        uid_ = _uid(uid)
        actor = check_actor(by)
        iss = parse_issuer(issuer)
        sub = parse_external_subject(subject, iss)
        self._recordable()
        _, after = self.registry.update(uid_, lambda e: lifecycle.unbind(e, iss, sub)[0])
        self._record("identity_unbound", uid_, actor, t, issuer=iss, external_subject=sub)
        return after

    # -- reading -----------------------------------------------------------------------------
    def list(self, *, status: str | None = None, now: float | None = None) -> list[IdentityEntry]:
        """Registered identities by uid; ``status`` (``active``, ``suspended``, ``retired``,
        ``expired``) keeps those in that state at ``now``. Raises StoreError."""
        if status is not None and status not in STATUS_FILTERS:
            raise RequestError(
                f"status must be one of {', '.join(STATUS_FILTERS)}, got {str(status)[:40]!r}",
                code="invalid_argument",
            )
        t = self._now(now)
        self.registry.refresh()
        items = self.registry.entries()
        return [e for e in items if status is None or lifecycle.state_at(e, t) == status]

    def show(self, uid: Any) -> IdentityEntry:
        """The record of ``uid``; raises UidError, IdentityNotFound or StoreError."""
        subject = _uid(uid)
        self.registry.refresh()
        return self.registry.require(subject)

    def describe(self, entry: IdentityEntry, now: float | None = None) -> dict[str, Any]:
        """A record as JSON-ready data, with its state at ``now``, last use and tokens issued."""
        t = self._now(now)
        uid = entry.subject
        return {
            "uid": uid_text(uid),
            "subject": uid_dict(uid),
            "status": lifecycle.state_at(entry, t),
            "owner": entry.owner,
            "purpose": entry.purpose,
            "kind": entry.kind,
            "created": time_text(entry.created),
            "created_by": entry.created_by,
            "expires": time_text(entry.expires),
            "status_since": time_text(entry.status_since),
            "status_by": entry.status_by,
            "status_reason": entry.status_reason,
            "last_used": time_text(self.registry.last_used(uid)),
            "tokens_24h": self.registry.tokens_issued(uid, t),
            "rotated": time_text(entry.rotated),
            "keys": [key_dict(k, t) for k in entry.keys],
            "bindings": [
                {"issuer": b.issuer, "subject": b.subject, "added": time_text(b.added), "by": b.by}
                for b in entry.bindings
            ],
        }

    def report(
        self,
        *,
        now: float | None = None,
        unused_days: int | None = None,
        key_age_days: int | None = None,
    ) -> dict[str, Any]:
        """The hygiene report (:func:`vigil.identity.report.hygiene`) at ``now``, with the
        workspace's ``[identity]`` thresholds unless given. Raises RequestError for a threshold
        outside 1..36500, WorkspaceError when the entities cannot be read, StoreError."""
        s = self._settings()
        days = {"unused_days": unused_days, "key_age_days": key_age_days}
        for name, value in days.items():
            if value is not None and (type(value) is not int or not 1 <= value <= 36_500):
                raise RequestError(
                    f"{name} must be a whole number of days, 1..36500", code="invalid_argument"
                )
        t = self._now(now)
        self.registry.refresh()
        reg = self.registry
        return hygiene(
            reg.entries(),
            self._entities(),
            types=s.types,
            now=t,
            unused_days=unused_days if unused_days is not None else s.unused_days,
            key_age_days=key_age_days if key_age_days is not None else s.key_age_days,
            last_used=reg.last_used,
            tokens_24h=lambda uid: reg.tokens_issued(uid, t),
        )


# -- the admin HTTP API's input ------------------------------------------------------------------
ADD_FIELDS: Final = ("uid", "owner", "purpose", "kind", "expires", "public_key", "by")
STATUS_FIELDS: Final = ("by", "reason")
KEY_FIELDS: Final = ("key", "by")
REMOVE_KEY_FIELDS: Final = ("kid", "by")
BINDING_FIELDS: Final = ("issuer", "subject", "by")
PATH_ACTIONS: Final = {
    (): "GET",
    ("suspend",): "POST",
    ("resume",): "POST",
    ("retire",): "POST",
    ("keys",): "POST",
    ("keys", "remove"): "POST",
    ("bindings",): "POST",
    ("bindings", "remove"): "POST",
}


def body_fields(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """An admin request body: a JSON object with no field but ``allowed`` (missing ones read as
    absent); raises RequestError (``invalid_request``)."""
    if type(body) is not dict:
        raise RequestError("the body must be a JSON object")
    for k in body:
        if k not in allowed:
            raise RequestError(f"unknown field {str(k)[:40]!r} (known: {', '.join(allowed)})")
    return body


def identity_path(rest: bytes) -> tuple[str, tuple[str, ...]]:
    """The part of a raw request path after ``/admin/v1/identities/``: the identity (one
    percent-encoded segment: ``Agent::%22name%22``; a ``/`` in an id is ``%2F``) and the action
    segments after it. Raises UidError (``invalid_uid``) when the identity segment is empty or not
    UTF-8, NotFoundError (``not_found``) for an action that does not exist."""
    first, _, tail = rest.partition(b"/")
    try:
        uid = unquote_to_bytes(first).decode("utf-8")
    except UnicodeDecodeError:
        raise UidError("the identity in the path is not UTF-8 text") from None
    if not uid:
        raise UidError("the path names no identity (/admin/v1/identities/<uid>)")
    actions = tuple(tail.decode("latin-1").split("/")) if tail else ()
    if actions not in PATH_ACTIONS:
        raise NotFoundError(f"no identity endpoint {'/'.join(actions)[:80]!r}", code="not_found")
    return uid, actions


def parse_query(query: bytes, allowed: tuple[str, ...]) -> dict[str, str]:
    """``?name=value`` parameters, each at most once and each in ``allowed``; raises RequestError
    (``invalid_argument``)."""
    values: dict[str, str] = {}
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query))
    except (UnicodeDecodeError, ValueError):
        raise RequestError("query string is malformed", code="invalid_argument") from None
    for k, v in pairs:
        if k not in allowed or k in values:
            raise RequestError(f"unknown or repeated query parameter {k[:32]!r}", code="invalid_argument")
        values[k] = v
    return values


def query_days(values: dict[str, str], name: str) -> int | None:
    """A whole number of days from the query (None when absent); raises RequestError."""
    text = values.get(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise RequestError(f"{name!r} must be a whole number of days", code="invalid_argument")
    return int(text)
