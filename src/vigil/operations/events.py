"""Operator events: what an approval, a denial of a ticket, a quarantine or its lift, a reload or
an admin key's use writes into the chained audit log (beside the decisions). One builder for the
engine (server, admin API) and :class:`~vigil.operations.service.StateDesk` (the CLI), so both
write the same event for the same act."""

from __future__ import annotations

from typing import Any

from vigil.model.uid import EntityUid
from vigil.store.base import Ticket


def uid_dict(uid: EntityUid) -> dict[str, str]:
    """``{"type", "id"}`` of an entity uid."""
    return {"type": uid[0], "id": uid[1]}


def ticket_details(t: Ticket) -> dict[str, Any]:
    """A ticket's fields in an operator event: id, subject, action, resource, the bound context."""
    return {
        "ticket": t.id,
        "subject": uid_dict(t.subject),
        "action": uid_dict(t.action),
        "resource": uid_dict(t.resource),
        "bound": {"network": t.network, "region": t.region, "user_agent": t.user_agent},
    }


def operator_event(kind: str, by: str, time: str, **details: Any) -> dict[str, Any]:
    """The event dict (``type``, RFC 3339 ``time``, ``by``, ``details``) a sink's ``emit_event`` takes."""
    return {"type": kind, "time": time, "by": by, **details}
