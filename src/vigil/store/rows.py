"""Rows <-> values shared by the SQL backends (SQLite and PostgreSQL store the same columns in
the same order): one reading of a ticket, a revocation and an identity record for both."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from vigil.store.base import IdentityBinding, IdentityEntry, IdentityKey, Revocation, Ticket

# the identity queries both backends run in one snapshot (the column order ``identity_entries`` reads)
IDENTITY_COLUMNS = (
    "subject_type, subject_id, owner, purpose, kind, created, created_by, expires, "
    "status, status_since, status_by, status_reason, rotated"
)
IDENTITIES_QUERY = f"SELECT {IDENTITY_COLUMNS} FROM identities ORDER BY subject_type, subject_id"
IDENTITY_KEYS_QUERY = (
    "SELECT subject_type, subject_id, kid, jwk, added, by FROM identity_keys "
    "ORDER BY subject_type, subject_id, position"
)
IDENTITY_BINDINGS_QUERY = (
    "SELECT subject_type, subject_id, issuer, external_subject, added, by "
    "FROM identity_bindings ORDER BY subject_type, subject_id, position"
)


def identity_row(entry: IdentityEntry) -> tuple[Any, ...]:
    """An identity record's values in the order of ``IDENTITY_COLUMNS``."""
    return (
        entry.subject[0],
        entry.subject[1],
        entry.owner,
        entry.purpose,
        entry.kind,
        entry.created,
        entry.created_by,
        entry.expires,
        entry.status,
        entry.status_since,
        entry.status_by,
        entry.status_reason,
        entry.rotated,
    )


def identity_key_rows(entry: IdentityEntry) -> list[tuple[Any, ...]]:
    """Its keys as ``identity_keys`` rows: subject, position, kid, jwk, added, by."""
    uid = entry.subject
    return [(uid[0], uid[1], n, k.kid, k.jwk, k.added, k.by) for n, k in enumerate(entry.keys)]


def identity_binding_rows(entry: IdentityEntry) -> list[tuple[Any, ...]]:
    """Its bindings as ``identity_bindings`` rows: subject, position, issuer, external subject,
    added, by."""
    uid = entry.subject
    return [(uid[0], uid[1], n, b.issuer, b.subject, b.added, b.by) for n, b in enumerate(entry.bindings)]


def identity_entries(
    rows: Iterable[tuple[Any, ...]],
    key_rows: Iterable[tuple[Any, ...]],
    binding_rows: Iterable[tuple[Any, ...]],
) -> list[IdentityEntry]:
    """The identity records of the three queries' rows (``IDENTITIES_QUERY``, ``IDENTITY_KEYS_QUERY``,
    ``IDENTITY_BINDINGS_QUERY``), keys and bindings in their stored order."""
    keys: dict[tuple[str, str], list[IdentityKey]] = {}
    for t, i, kid, jwk, added, by in key_rows:
        keys.setdefault((t, i), []).append(IdentityKey(kid, jwk, added, by))
    bindings: dict[tuple[str, str], list[IdentityBinding]] = {}
    for t, i, issuer, sub, added, by in binding_rows:
        bindings.setdefault((t, i), []).append(IdentityBinding(issuer, sub, added, by))
    return [
        IdentityEntry(
            subject=(r[0], r[1]),
            owner=r[2],
            purpose=r[3],
            kind=r[4],
            created=r[5],
            created_by=r[6],
            expires=r[7],
            status=r[8],
            status_since=r[9],
            status_by=r[10],
            status_reason=r[11],
            rotated=r[12],
            keys=tuple(keys.get((r[0], r[1]), ())),
            bindings=tuple(bindings.get((r[0], r[1]), ())),
        )
        for r in rows
    ]


# the columns ``ticket_row`` fills and ``ticket`` reads, in order
TICKET_COLUMNS = (
    "id, subject_type, subject_id, action_type, action_id, resource_type, resource_id, "
    "created, expires, risk, signals, why, state, decided_by, decided_at, note, "
    "network, region, user_agent, uses"
)


def ticket(row: tuple[Any, ...]) -> Ticket:
    return Ticket(
        id=row[0],
        subject=(row[1], row[2]),
        action=(row[3], row[4]),
        resource=(row[5], row[6]),
        created=row[7],
        expires=row[8],
        risk=row[9],
        signals=tuple(orjson.loads(row[10])),
        why=row[11],
        state=row[12],
        decided_by=row[13],
        decided_at=row[14],
        note=row[15],
        network=row[16],
        region=row[17],
        user_agent=row[18],
        uses=row[19],
    )


def ticket_row(ticket: Ticket) -> tuple[Any, ...]:
    """A ticket's values in the order of ``TICKET_COLUMNS``."""
    return (
        ticket.id,
        ticket.subject[0],
        ticket.subject[1],
        ticket.action[0],
        ticket.action[1],
        ticket.resource[0],
        ticket.resource[1],
        ticket.created,
        ticket.expires,
        ticket.risk,
        orjson.dumps(list(ticket.signals)).decode(),
        ticket.why,
        ticket.state,
        ticket.decided_by,
        ticket.decided_at,
        ticket.note,
        ticket.network,
        ticket.region,
        ticket.user_agent,
        ticket.uses,
    )


def revocation(r: tuple[Any, ...]) -> Revocation:
    """A revocation from a row of (kind, jti, actor_type, actor_id, subject_type, subject_id,
    until, revoked, by, reason)."""
    return Revocation(
        r[0],
        r[1],
        (r[2], r[3]) if r[2] is not None else None,
        (r[4], r[5]) if r[4] is not None else None,
        r[6],
        r[7],
        r[8],
        r[9],
    )


def revocation_row(r: Revocation) -> tuple[Any, ...]:
    """A revocation's values: (kind, key, jti, actor_type, actor_id, subject_type, subject_id, until,
    revoked, by, reason)."""
    a, s = r.actor or (None, None), r.subject or (None, None)
    return (r.kind, r.key, r.jti, a[0], a[1], s[0], s[1], r.until, r.revoked, r.by, r.reason)
