"""Operator use cases on a workspace's runtime state: approval tickets, quarantines and the identity
registry (:attr:`StateDesk.identities`, :mod:`vigil.operations.identities`).

``StateDesk`` opens only the workspace's settings (``vigil.toml``) and its state store, never its
policies: an owner can lift a quarantine even while the workspace fails to load. The CLI
(``vigil approvals``, ``vigil quarantine``) and the admin HTTP API call these functions; a running
engine notices the changes within about a second (``vigil.operations.quarantine``). Every change is written
to the store's change log with who made it (``changes``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from vigil.audit.events import rfc3339
from vigil.audit.keys import AuditKeyError
from vigil.audit.sink import AuditSink, sink_from_settings
from vigil.errors import AuditError, RequestError, WorkspaceError
from vigil.identity.registry import Registry
from vigil.identity.tokens.revocation import Revocations
from vigil.identity.tokens.signing import FILE_NAME as SIGNING_KEYS_FILE
from vigil.identity.tokens.signing import SigningKeys
from vigil.model.uid import EntityUid
from vigil.operations.approvals import Approvals, check_actor, check_uses, ticket_dict
from vigil.operations.events import operator_event, ticket_details, uid_dict
from vigil.operations.identities import IdentityDesk
from vigil.operations.quarantine import Quarantine, quarantine_dict
from vigil.operations.revocations import RevocationDesk
from vigil.store import Change, QuarantineEntry, Store, StoreError, Ticket, open_store, state_dir
from vigil.workspace.loader import entity_uids
from vigil.workspace.settings import Settings, parse_settings

__all__ = [
    "StateDesk",
    "change_dict",
    "parse_change_page",
    "parse_quarantine_change",
    "parse_ticket_decision",
    "parse_uid",
    "parse_uses",
    "quarantine_dict",
    "ticket_dict",
]


def parse_uid(text: str) -> EntityUid:
    """``Type::"id"`` or ``Type::id`` (namespaced types allowed) -> ``(type, id)``; raises RequestError."""
    if type(text) is not str or "::" not in text:
        raise RequestError(
            f"{str(text)[:80]!r} is not an entity uid like 'Agent::\"name\"'", code="invalid_argument"
        )
    etype, _, eid = text.rpartition("::")
    if len(eid) >= 2 and eid[0] == '"' and eid[-1] == '"':
        eid = eid[1:-1]
    if not etype or not eid or len(etype) > 256 or len(eid) > 1024:
        raise RequestError(
            f"{text[:80]!r} is not an entity uid like 'Agent::\"name\"'", code="invalid_argument"
        )
    return (etype, eid)


def _text(body: dict[str, Any], key: str, *, required: bool, limit: int) -> str:
    value = body.get(key, "")
    if type(value) is not str or len(value) > limit or (required and not value.strip()):
        need = "a non-empty string" if required else "a string"
        raise RequestError(f"{key!r} must be {need} of at most {limit} characters")
    return value


def parse_ticket_decision(body: dict[str, Any]) -> tuple[str, str, str]:
    """``{"ticket", "by", "note"?}`` (an admin's approve/deny) -> (ticket id, by, note); raises RequestError."""
    return (
        _text(body, "ticket", required=True, limit=128),
        _text(body, "by", required=True, limit=128),
        _text(body, "note", required=False, limit=1_024),
    )


def parse_uses(body: dict[str, Any]) -> int:
    """``"uses"`` of an admin's approve body (default 1: single-use); raises RequestError."""
    return check_uses(body.get("uses", 1))


def parse_quarantine_change(body: dict[str, Any], reason_key: str) -> tuple[EntityUid, str, str]:
    """``{"subject": {type, id}, "by", reason_key?}`` -> (uid, by, text); raises RequestError."""
    from vigil.model.request import parse_entity

    if "subject" not in body:
        raise RequestError("request is missing the required field 'subject'")
    uid, _props = parse_entity(body["subject"], "subject")
    return (
        uid,
        _text(body, "by", required=True, limit=128),
        _text(body, reason_key, required=False, limit=1_024),
    )


MAX_CHANGE_PAGE = 1_000
DEFAULT_CHANGE_PAGE = 100


def change_page(before: Any, limit: Any) -> tuple[int | None, int]:
    """A page of the change log, newest first: ``before`` (a ``seq``, exclusive; None: the newest)
    and ``limit`` (1..1000) checked; raises RequestError (``invalid_argument``)."""
    if before is not None and (type(before) is not int or before < 1):
        raise RequestError("'before' must be a positive change number", code="invalid_argument")
    if type(limit) is not int or not 1 <= limit <= MAX_CHANGE_PAGE:
        raise RequestError(f"'limit' must be between 1 and {MAX_CHANGE_PAGE}", code="invalid_argument")
    return before, limit


def parse_change_page(query: bytes) -> tuple[int | None, int]:
    """``?limit=&before=`` of ``GET /admin/v1/changes`` -> (before, limit); raises RequestError
    (``invalid_argument``) for an unknown, repeated or malformed parameter."""
    from urllib.parse import parse_qsl

    values: dict[str, int] = {}
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query))
    except (UnicodeDecodeError, ValueError):
        raise RequestError("query string is malformed", code="invalid_argument") from None
    for k, v in pairs:
        if k not in ("limit", "before") or k in values:
            raise RequestError(f"unknown or repeated query parameter {k[:32]!r}", code="invalid_argument")
        if not v.isdigit() or len(v) > 18:
            raise RequestError(f"{k!r} must be a positive integer", code="invalid_argument")
        values[k] = int(v)
    return change_page(values.get("before"), values.get("limit", DEFAULT_CHANGE_PAGE))


def change_dict(c: Change) -> dict[str, Any]:
    """A change-log entry as JSON-ready data."""
    from vigil.audit.events import rfc3339

    return {
        "seq": c.seq,
        "time": rfc3339(c.time),
        "kind": c.kind,
        "subject": {"type": c.subject[0], "id": c.subject[1]},
        "by": c.by,
        "detail": c.detail,
    }


class StateDesk:
    """Approvals and quarantines of one workspace (settings and store only)."""

    def __init__(
        self,
        workspace: str | Path,
        *,
        clock: Callable[[], float] | None = None,
        store: Store | None = None,
    ) -> None:
        root = Path(workspace)
        self.settings = _settings(root)
        self._clock = clock or time.time
        try:
            self.store = store if store is not None else open_store(self.settings.store, root)
        except StoreError as e:
            raise WorkspaceError(
                f"cannot use the state store: {e.message}", [f"[store]: {e.message}"]
            ) from None
        self.approvals = Approvals(self.store)
        self.quarantine = Quarantine(self.store, None)
        self._root = root
        self._audit: AuditSink | None = None  # opened at the first change, written at close
        self._identities: IdentityDesk | None = None  # read from the store at first use
        self._revocations: RevocationDesk | None = None

    @property
    def identities(self) -> IdentityDesk:
        """The identity registry's use cases (the registry is read from the store at first use;
        raises StoreError when it cannot be)."""
        if self._identities is None:
            root = self._root
            self._identities = IdentityDesk(
                Registry(self.store),
                self.store,
                audit=self._event,
                recordable=self._recordable,
                clock=self._clock,
                settings=lambda: self.settings.identity,
                entities=lambda: entity_uids(root),
            )
        return self._identities

    @property
    def revocations(self) -> RevocationDesk:
        """Token and delegation revocations (read from the store at first use; raises
        StoreError when they cannot be)."""
        if self._revocations is None:
            self._revocations = RevocationDesk(
                Revocations(self.store),
                self.store,
                audit=self._event,
                recordable=self._recordable,
                clock=self._clock,
            )
        return self._revocations

    @property
    def signing_keys(self) -> SigningKeys:
        """The token service's signing keys (``.vigil/oauth-keys.json``)."""
        return SigningKeys(state_dir(self.settings.store, self._root) / SIGNING_KEYS_FILE)

    def rotate_signing_key(self, *, by: str, now: float | None = None) -> str:
        """Rotate the token service's signing key (the previous one stays published for
        ``[identity] token_ttl_s`` plus the clock skew); a running server signs with the new key
        from its next token. Audited (``signing_key_rotated``). Returns the new kid; raises
        RequestError, SigningKeyError or AuditError."""
        who = check_actor(by)
        self._recordable()
        ids = self.settings.identity
        kid = self.signing_keys.rotate(self._now(now), ids.token_ttl_s + ids.clock_skew_s)
        self._event("signing_key_rotated", who, kid=kid)
        return kid

    def now(self) -> float:
        return self._clock()

    def close(self) -> None:
        """Write the operator events (the audit log) and close the store."""
        try:
            if self._audit is not None:
                self._audit.close()
        finally:
            self.store.close()

    def _recordable(self) -> None:
        """Before a change: open the workspace's chained audit log (shared with a running server:
        appends hold the file lock and follow the chain), with ``sync`` durability so that each
        event is on disk before its change is reported. Raises AuditError (nothing changed) when
        it cannot be opened."""
        if self.settings.audit.sink == "none" or self._audit is not None:
            return
        try:
            self._audit = sink_from_settings(replace(self.settings.audit, durability="sync"), self._root)
        except (OSError, AuditKeyError) as e:
            raise AuditError(f"cannot open the audit log: {e}; nothing was changed") from None

    def _event(self, kind: str, by: str, **details: Any) -> None:
        """After a change: its operator event. Raises AuditError when the audit log refuses it or
        cannot write it: an operator change that cannot be audited is reported, never taken as
        recorded."""
        emit = getattr(self._audit, "emit_event", None)
        if emit is not None and not emit(operator_event(kind, by, rfc3339(self._clock()), **details)):
            raise AuditError(
                f"the change was saved, but its {kind} event could not be written to the audit log "
                "(see the vigil.audit log)"
            )

    def __enter__(self) -> StateDesk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- approvals -----------------------------------------------------------------------------
    def tickets(
        self, *, state: str | None = None, subject: EntityUid | None = None, now: float | None = None
    ) -> list[Ticket]:
        return self.approvals.list(state=state, subject=subject, now=self._now(now))

    def approve(
        self, ticket_id: str, *, by: str, note: str = "", now: float | None = None, uses: int = 1
    ) -> Ticket:
        self._recordable()
        ttl = self.settings.behaviour.approval_ttl_s
        t = self.approvals.approve(ticket_id, by=by, now=self._now(now), ttl_s=ttl, note=note, uses=uses)
        self._event("ticket_approved", by, **ticket_details(t), note=note, uses=uses)
        return t

    def deny(self, ticket_id: str, *, by: str, note: str = "", now: float | None = None) -> Ticket:
        self._recordable()
        t = self.approvals.deny(ticket_id, by=by, now=self._now(now), note=note)
        self._event("ticket_denied", by, **ticket_details(t), note=note)
        return t

    # -- quarantine ----------------------------------------------------------------------------
    def quarantined(self) -> list[QuarantineEntry]:
        return self.quarantine.list()

    def add(
        self, subject: EntityUid, *, by: str, reason: str = "", now: float | None = None
    ) -> QuarantineEntry:
        self._recordable()
        q = self.quarantine.add(subject, by=by, reason=reason, now=self._now(now))
        self._event("quarantine_added", by, subject=uid_dict(subject), reason=reason)
        return q

    def lift(
        self, subject: EntityUid, *, by: str, note: str = "", now: float | None = None
    ) -> QuarantineEntry:
        self._recordable()
        q = self.quarantine.lift(subject, by=by, note=note, now=self._now(now))
        self._event("quarantine_lifted", by, subject=uid_dict(subject), note=note)
        return q

    def changes(self, *, after: int = 0, limit: int = 1_000) -> list[Change]:
        return self.store.changes(after=after, limit=limit)

    def recent_changes(self, *, before: int | None = None, limit: int = DEFAULT_CHANGE_PAGE) -> list[Change]:
        """Changes newest first, with ``seq < before``; raises RequestError or StoreError."""
        before, limit = change_page(before, limit)
        return self.store.recent_changes(before=before, limit=limit)

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now


def _settings(root: Path) -> Settings:
    if not root.is_dir():
        raise WorkspaceError(f"workspace {str(root)!r} is not a directory", [f"{root}: not a directory"])
    path = root / "vigil.toml"
    if not path.exists():
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise WorkspaceError(f"cannot read {str(path)!r}: {e}", [f"vigil.toml: cannot read: {e}"]) from None
    return parse_settings(text, "vigil.toml")
