"""The lifecycle of one registry record, as pure functions: each takes a record and returns the
changed one, or raises a typed error and changes nothing.

::

    add -> active --suspend--> suspended --resume--> active
             |                     |
             +-------retire--------+--> retired   (final: nothing changes a retired identity)

An active identity whose ``expires`` has passed is *expired* (:func:`state_at`): denied like a
suspended one, and shown as such; its stored status stays ``active`` (the report lists it as
"expired but active"). Keys and bindings change on active and suspended identities (a suspended
identity can rotate a leaked key before it is resumed).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from vigil.identity.errors import IdentityConflict, IdentityNotFound
from vigil.identity.keys import PublicKey
from vigil.identity.parse import uid_text
from vigil.model.uid import EntityUid
from vigil.store.base import (
    ACTIVE,
    RETIRED,
    SUSPENDED,
    IdentityBinding,
    IdentityEntry,
    IdentityKey,
)

EXPIRED: Final = "expired"
MAX_BINDINGS: Final = 32


def state_at(entry: IdentityEntry, now: float) -> str:
    """``active``, ``suspended``, ``retired``, or ``expired`` (active but past ``expires``)."""
    if entry.status == ACTIVE and entry.expires is not None and now >= entry.expires:
        return EXPIRED
    return entry.status


def is_active(entry: IdentityEntry, now: float) -> bool:
    """Whether decisions for this identity may go ahead at ``now``."""
    return entry.status == ACTIVE and (entry.expires is None or now < entry.expires)


def new_entry(
    subject: EntityUid,
    *,
    owner: str,
    purpose: str,
    kind: str,
    expires: float | None,
    key: PublicKey | None,
    by: str,
    now: float,
) -> IdentityEntry:
    """A new, active record (the arguments already checked by :mod:`vigil.identity.parse`)."""
    keys = (IdentityKey(key.kid, key.text(), now, by),) if key is not None else ()
    return IdentityEntry(
        subject=subject,
        owner=owner,
        purpose=purpose,
        kind=kind,
        created=now,
        created_by=by,
        expires=expires,
        status=ACTIVE,
        status_since=now,
        status_by=by,
        status_reason="",
        keys=keys,
    )


def _refuse(entry: IdentityEntry, doing: str, allowed: tuple[str, ...]) -> IdentityConflict:
    return IdentityConflict(
        f"cannot {doing} {uid_text(entry.subject)}: it is {entry.status} "
        f"({doing} applies to {' or '.join(allowed)} identities)",
        code="invalid_transition",
        status=entry.status,
    )


def _status(entry: IdentityEntry, status: str, by: str, reason: str, now: float) -> IdentityEntry:
    return replace(entry, status=status, status_since=now, status_by=by, status_reason=reason)


def suspend(entry: IdentityEntry, *, by: str, reason: str, now: float) -> IdentityEntry:
    """active -> suspended."""
    if entry.status != ACTIVE:
        raise _refuse(entry, "suspend", (ACTIVE,))
    return _status(entry, SUSPENDED, by, reason, now)


def resume(entry: IdentityEntry, *, by: str, reason: str, now: float) -> IdentityEntry:
    """suspended -> active (an expired identity stays expired: its expiry is not changed)."""
    if entry.status != SUSPENDED:
        raise _refuse(entry, "resume", (SUSPENDED,))
    return _status(entry, ACTIVE, by, reason, now)


def retire(entry: IdentityEntry, *, by: str, reason: str, now: float) -> IdentityEntry:
    """active or suspended -> retired (final)."""
    if entry.status not in (ACTIVE, SUSPENDED):
        raise _refuse(entry, "retire", (ACTIVE, SUSPENDED))
    return _status(entry, RETIRED, by, reason, now)


def _changeable(entry: IdentityEntry, doing: str) -> None:
    if entry.status == RETIRED:
        raise _refuse(entry, doing, (ACTIVE, SUSPENDED))


def add_key(entry: IdentityEntry, key: PublicKey, *, by: str, now: float, max_keys: int) -> IdentityEntry:
    """One more key (the ones there stay valid: rotation with overlap)."""
    _changeable(entry, "add a key to")
    if any(k.kid == key.kid for k in entry.keys):
        raise IdentityConflict(
            f"{uid_text(entry.subject)} already has the key {key.kid}", code="key_exists", kid=key.kid
        )
    if len(entry.keys) >= max_keys:
        raise IdentityConflict(
            f"{uid_text(entry.subject)} already holds {len(entry.keys)} keys (at most {max_keys}: "
            "remove an old one first)",
            code="invalid_transition",
        )
    return replace(entry, keys=(*entry.keys, IdentityKey(key.kid, key.text(), now, by)))


def remove_key(entry: IdentityEntry, kid: str, *, now: float) -> tuple[IdentityEntry, IdentityKey]:
    """Without the key ``kid``; removing one while another stays completes a rotation
    (``rotated``). Returns the record and the removed key."""
    _changeable(entry, "remove a key of")
    found = next((k for k in entry.keys if k.kid == kid), None)
    if found is None:
        raise IdentityNotFound(f"{uid_text(entry.subject)} has no key {kid[:80]!r}", code="key_not_found")
    keys = tuple(k for k in entry.keys if k.kid != kid)
    return replace(entry, keys=keys, rotated=now if keys else entry.rotated), found


def bind(entry: IdentityEntry, issuer: str, subject: str, *, by: str, now: float) -> IdentityEntry:
    """One more external name (issuer + subject)."""
    _changeable(entry, "bind")
    if any(b.issuer == issuer and b.subject == subject for b in entry.bindings):
        raise IdentityConflict(
            f"{uid_text(entry.subject)} is already bound to {subject} from {issuer}", code="binding_exists"
        )
    if len(entry.bindings) >= MAX_BINDINGS:
        raise IdentityConflict(
            f"{uid_text(entry.subject)} already has {MAX_BINDINGS} bindings", code="invalid_transition"
        )
    return replace(entry, bindings=(*entry.bindings, IdentityBinding(issuer, subject, now, by)))


def unbind(entry: IdentityEntry, issuer: str, subject: str) -> tuple[IdentityEntry, IdentityBinding]:
    """Without the binding (issuer, subject). Returns the record and the removed binding."""
    _changeable(entry, "unbind")
    found = next((b for b in entry.bindings if b.issuer == issuer and b.subject == subject), None)
    if found is None:
        raise IdentityNotFound(
            f"{uid_text(entry.subject)} is not bound to {subject[:200]!r} from {issuer[:200]!r}",
            code="binding_not_found",
        )
    return replace(entry, bindings=tuple(b for b in entry.bindings if b is not found)), found
