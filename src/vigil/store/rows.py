"""Rows <-> values shared by the SQL backends (SQLite and PostgreSQL store the same columns in
the same order): one reading of a ticket and a revocation for both."""

from __future__ import annotations

from typing import Any

import orjson

from vigil.store.base import Revocation, Ticket

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
