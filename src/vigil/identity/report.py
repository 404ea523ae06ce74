"""The registry's hygiene report: per identity and in total, what an owner should look at.

Findings (each identity row lists its own; ``totals`` counts them):

- ``no_owner``: an identity that acts with no valid owner on record: a registered identity whose
  owner is not an email address (records written before owners were checked, or by hand), and
  every entity of an acting type that is not registered (the registry has no owner for it);
- ``expired_active``: status ``active`` but past ``expires`` (denied; retire it or re-register);
- ``unused``: not used (nor registered) for ``unused_days`` days: the later of its last use and
  its registration is older than that;
- ``old_keys``: keys registered more than ``key_age_days`` days ago (the total counts keys);
- ``never_rotated``: it holds standing keys and has never completed a rotation (no key was ever
  removed while another stayed);
- ``not_in_entities``: registered but no entity in ``entities/*.json`` has its uid (its requests
  are denied ``unknown_identity``);
- ``unregistered``: an entity of an acting type (``[identity] types``) with no registry record.

Retired identities are listed with their status and no findings: they are done. Suspended
identities are checked like active ones (a suspension is meant to end, one way or another).
``tokens_24h``: tokens issued in the hour of ``now`` and the 23 before (0 until the token
service issues any).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final

from vigil.identity.lifecycle import EXPIRED, state_at
from vigil.identity.parse import uid_text, valid_owner
from vigil.model.timefmt import format_rfc3339
from vigil.model.uid import EntityUid
from vigil.store.base import ACTIVE, RETIRED, SUSPENDED, IdentityEntry

DAY: Final = 86_400.0
FINDINGS: Final = (
    "no_owner",
    "expired_active",
    "unused",
    "old_keys",
    "never_rotated",
    "not_in_entities",
    "unregistered",
)


def time_text(t: float | None) -> str | None:
    """Epoch seconds as RFC 3339 UTC (``2026-11-02T09:00:00Z``, fractions only when there are
    any); None stays None."""
    return None if t is None else format_rfc3339(datetime.fromtimestamp(t, UTC))


def hygiene(
    entries: Iterable[IdentityEntry],
    entity_uids: Iterable[EntityUid],
    *,
    types: Iterable[str],
    now: float,
    unused_days: int,
    key_age_days: int,
    last_used: Callable[[EntityUid], float | None],
    tokens_24h: Callable[[EntityUid], int],
) -> dict[str, Any]:
    """The report as JSON-ready data: ``time``, ``unused_days``, ``key_age_days``, ``totals``
    (``identities`` registered, ``by_status``, each finding, ``old_keys`` in keys, ``tokens_24h``)
    and ``identities`` (one row per registered identity and per unregistered acting entity, by
    uid). ``entity_uids``: every entity uid of the workspace."""
    acting = set(types)
    in_entities = set(entity_uids)
    unused_before = now - unused_days * DAY
    keys_before = now - key_age_days * DAY
    totals: dict[str, Any] = {
        "identities": 0,
        "by_status": {ACTIVE: 0, SUSPENDED: 0, RETIRED: 0, EXPIRED: 0},
        **{f: 0 for f in FINDINGS},
        "tokens_24h": 0,
    }
    rows: list[dict[str, Any]] = []
    registered: set[EntityUid] = set()
    for e in entries:
        uid = e.subject
        registered.add(uid)
        state = state_at(e, now)
        used = last_used(uid)
        tokens = tokens_24h(uid)
        old = [k for k in e.keys if k.added < keys_before]
        findings: list[str] = []
        if e.status != RETIRED:
            if not valid_owner(e.owner):
                findings.append("no_owner")
            if state == EXPIRED:
                findings.append("expired_active")
            if max(used or 0.0, e.created) < unused_before:
                findings.append("unused")
            if old:
                findings.append("old_keys")
            if e.keys and e.rotated is None:
                findings.append("never_rotated")
            if uid not in in_entities:
                findings.append("not_in_entities")
        totals["identities"] += 1
        totals["by_status"][state] += 1
        totals["tokens_24h"] += tokens
        for f in findings:
            totals[f] += len(old) if f == "old_keys" else 1
        rows.append(
            {
                "uid": uid_text(uid),
                "subject": {"type": uid[0], "id": uid[1]},
                "registered": True,
                "in_entities": uid in in_entities,
                "status": state,
                "owner": e.owner or None,
                "kind": e.kind,
                "created": time_text(e.created),
                "expires": time_text(e.expires),
                "last_used": time_text(used),
                "keys": len(e.keys),
                "oldest_key_days": int((now - min(k.added for k in e.keys)) // DAY) if e.keys else None,
                "old_keys": len(old),
                "rotated": time_text(e.rotated),
                "tokens_24h": tokens,
                "findings": findings,
            }
        )
    for uid in sorted(u for u in in_entities if u[0] in acting and u not in registered):
        totals["no_owner"] += 1
        totals["unregistered"] += 1
        rows.append(
            {
                "uid": uid_text(uid),
                "subject": {"type": uid[0], "id": uid[1]},
                "registered": False,
                "in_entities": True,
                "status": None,
                "owner": None,
                "kind": None,
                "created": None,
                "expires": None,
                "last_used": None,
                "keys": 0,
                "oldest_key_days": None,
                "old_keys": 0,
                "rotated": None,
                "tokens_24h": 0,
                "findings": ["no_owner", "unregistered"],
            }
        )
    rows.sort(key=lambda r: (r["subject"]["type"], r["subject"]["id"]))
    return {
        "time": time_text(now),
        "unused_days": unused_days,
        "key_age_days": key_age_days,
        "types": sorted(acting),
        "totals": totals,
        "identities": rows,
    }
