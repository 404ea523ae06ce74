"""Peer groups: identities that share a team or owner share one baseline.

Every identity whose entity has one of the ``[behaviour] peers`` attributes (default ``team``,
then ``owner``) belongs to the peer group named by the first one it has (its text, or an entity
reference's ``Type::"id"``, or a record ``{"type", "id"}``'s). The group has one profile, shared by its members (not a copy per
member), kept with the identities' profiles under the uid ``vigil::PeerGroup::"<attribute>=<value>"``
and snapshotted like them. Every learnable request of a member also teaches the group profile
(hours, places, clients, actions, resources, segments, usual rates). The group is a second
opinion, not a copy (a member's privileges stay its own: a reader in a team whose CI creates keys
is still a reader):

- "never done" signals of a member backed by too little history of its own: ``new_region``,
  ``new_network`` and ``segment_crossing`` take the larger of the member's strength and the
  group's, when the group has never done it either. A quiet identity with 40 requests that reads
  another team's table is judged with the evidence of its team's 40,000.

This module is a leaf: the group key of an entity's attributes.
"""

from __future__ import annotations

from typing import Any, Final

from vigil.model.uid import EntityUid

GROUP_TYPE: Final = "vigil::PeerGroup"


def group_uid(attrs: Any, names: tuple[str, ...]) -> EntityUid | None:
    """The peer group of an identity with entity attributes ``attrs`` (a mapping, or None): the
    first of ``names`` it has, as ``(GROUP_TYPE, "name=value")``; None when it has none of them
    (or the value is neither text nor an entity reference nor a ``{"type", "id"}`` record)."""
    if attrs is None:
        return None
    for name in names:
        value = attrs.get(name)
        if type(value) is str and value:
            return (GROUP_TYPE, f"{name}={value}")
        if type(value) is tuple and len(value) == 2:
            return (GROUP_TYPE, f'{name}={value[0]}::"{value[1]}"')
        if isinstance(value, dict):  # a record written like a reference: {"type": ..., "id": ...}
            etype, eid = value.get("type"), value.get("id")
            if type(etype) is str and type(eid) is str:
                return (GROUP_TYPE, f'{name}={etype}::"{eid}"')
    return None


__all__ = ["GROUP_TYPE", "group_uid"]
