"""The operator use cases without an engine: :class:`StateDesk`, and the parsers of what the admin
HTTP API and the CLI pass to them.

``StateDesk`` opens only the workspace's settings (``vigil.toml``) and its state store, never its
policies: an owner can lift a quarantine even while the workspace fails to load. It is the same
:class:`~vigil.operations.desk.OperatorDesk` the admin HTTP API calls through the engine
(``Engine.desk``), and the same :class:`~vigil.operations.identities.IdentityDesk`
(:attr:`StateDesk.identities`), over the workspace's store, with the workspace's chained audit
log opened at the first change; a running engine notices the changes within about a second
(``vigil.operations.quarantine``). Every change is written to the store's change log with who made
it (``changes``) and to the audit log as an operator event.
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
from vigil.cluster import ChangeBus, announcing
from vigil.errors import AuditError, RequestError, WorkspaceError
from vigil.identity.registry import Registry
from vigil.identity.tokens.revocation import Revocations
from vigil.identity.tokens.signing import FILE_NAME as SIGNING_KEYS_FILE
from vigil.identity.tokens.signing import SigningKeys
from vigil.model.uid import EntityUid
from vigil.operations.approvals import Approvals, check_actor, check_uses, ticket_dict
from vigil.operations.desk import DEFAULT_CHANGE_PAGE, MAX_CHANGE_PAGE, OperatorDesk, change_page
from vigil.operations.events import operator_event
from vigil.operations.identities import IdentityDesk
from vigil.operations.quarantine import Quarantine, quarantine_dict
from vigil.operations.revocations import RevocationDesk
from vigil.store import Change, Store, StoreError, open_store, state_dir
from vigil.workspace.loader import entity_uids
from vigil.workspace.settings import Settings, parse_settings

__all__ = [
    "DEFAULT_CHANGE_PAGE",
    "MAX_CHANGE_PAGE",
    "StateDesk",
    "change_dict",
    "change_page",
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


class StateDesk(OperatorDesk):
    """The operator use cases on one workspace (settings and store only): approvals, quarantines
    and the change log (:class:`~vigil.operations.desk.OperatorDesk`), the identity registry
    (:attr:`identities`). Audited in the workspace's chained log, each event written to disk
    before the change is reported (an event that cannot be written raises AuditError)."""

    def __init__(
        self,
        workspace: str | Path,
        *,
        clock: Callable[[], float] | None = None,
        store: Store | None = None,
    ) -> None:
        root = Path(workspace)
        self.settings = _settings(root)
        try:
            opened = store if store is not None else open_store(self.settings.store, root)
            # [cluster] redis: running servers hear of this desk's changes at once (sent at close)
            bus: ChangeBus | None = None
            cluster = self.settings.cluster
            if cluster.redis:
                bus = ChangeBus(cluster.redis, cluster.channel, opened, apply=lambda kinds: None)
                bus.start(subscribe=False)
                opened = announcing(opened, bus)
        except StoreError as e:
            raise WorkspaceError(
                f"cannot use the state store: {e.message}", [f"[store]: {e.message}"]
            ) from None
        super().__init__(
            Approvals(opened),
            Quarantine(opened, None),
            opened,
            audit=self._event,
            clock=clock or time.time,
            approval_ttl=lambda: self.settings.behaviour.approval_ttl_s,
            recordable=self._recordable_now,
        )
        self._bus = bus
        self._root = root
        self._sink: AuditSink | None = None  # opened at the first change, written at close
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
                recordable=self._recordable_now,
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
                recordable=self._recordable_now,
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
        self._recordable_now()
        ids = self.settings.identity
        kid = self.signing_keys.rotate(self._now(now), ids.token_ttl_s + ids.clock_skew_s)
        self._event("signing_key_rotated", who, kid=kid)
        return kid

    def close(self) -> None:
        """Write the operator events (the audit log), send the change announcements (at most a
        second) and close the store."""
        try:
            if self._sink is not None:
                self._sink.close()
        finally:
            if self._bus is not None:
                self._bus.close()
            self.store.close()

    def _recordable_now(self) -> None:
        """Before a change: open the workspace's chained audit log (shared with a running server:
        appends hold the file lock and follow the chain), with ``sync`` durability so that each
        event is on disk before its change is reported. Raises AuditError (nothing changed) when
        it cannot be opened."""
        if self.settings.audit.sink == "none" or self._sink is not None:
            return
        try:
            self._sink = sink_from_settings(replace(self.settings.audit, durability="sync"), self._root)
        except (OSError, AuditKeyError) as e:
            raise AuditError(f"cannot open the audit log: {e}; nothing was changed") from None

    def _event(self, kind: str, by: str, **details: Any) -> None:
        """After a change: its operator event. Raises AuditError when the audit log refuses it or
        cannot write it: an operator change that cannot be audited is reported, never taken as
        recorded."""
        emit = getattr(self._sink, "emit_event", None)
        if emit is not None and not emit(operator_event(kind, by, rfc3339(self._clock()), **details)):
            raise AuditError(
                f"the change was saved, but its {kind} event could not be written to the audit log "
                "(see the vigil.audit log)"
            )

    def __enter__(self) -> StateDesk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
