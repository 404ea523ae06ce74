"""Peer groups: identities that share a team or owner share one baseline.

Every identity that has one of the ``[behaviour] peers`` attributes (default ``team``, then
``owner``; ``a+b`` names a group by several, e.g. ``kind+purpose``) belongs to the peer group named
by the first one it has (its text, or an entity reference's ``Type::"id"``, or a record
``{"type", "id"}``'s). The attributes are its entity's, with the identity registry's ``owner``,
``purpose`` and ``kind`` where the entity has none of that name. The group has one profile, shared by its members (not a copy per
member), kept with the identities' profiles under the uid ``vigil::PeerGroup::"<attribute>=<value>"``
and snapshotted like them. Every learnable request of a member also teaches the group profile
(hours, places, clients, actions, resources, segments, usual rates). The group is a second
opinion, not a copy (a member's privileges stay its own: a reader in a team whose CI creates keys
is still a reader):

- "never done" signals of a member backed by too little history of its own: ``new_region``,
  ``new_network`` and ``segment_crossing`` take the larger of the member's strength and the
  group's, when the group has never done it either. A quiet identity with 40 requests that reads
  another team's table is judged with the evidence of its team's 40,000.

**Groups learned from behaviour** (``work`` in ``[behaviour] peers``, on by default, last): an
identity that none of the named attributes places (an IAM role, a service account imported as it
is) belongs to the group of the identities that do the same work: the segment of the resources it
works on (else their entity type) and its privilege class, ``vigil::PeerGroup::"work=Team::\"data\"+read"``
(:func:`work_uid`). It is read from the identity's first request (a new identity's first request is
then judged against that group), and from a restored profile's most recent segment, type and
highest class. It is coarse on purpose: one key per (segment or type, class), so a group forms
from the first few identities that share a kind of work and a new one can join it at once.

This module is a leaf: the group key of an entity's attributes.
"""

from __future__ import annotations

from typing import Any, Final

from vigil.model.uid import EntityUid

GROUP_TYPE: Final = "vigil::PeerGroup"


def _text(attrs: Any, name: str) -> str | None:
    """An attribute as group-key text: a string, an entity reference's or a ``{"type", "id"}``
    record's ``Type::"id"``; None when absent, empty or of another kind."""
    value = attrs.get(name)
    if type(value) is str:
        return value or None
    if type(value) is tuple and len(value) == 2:
        return f'{value[0]}::"{value[1]}"'
    if isinstance(value, dict):  # a record written like a reference: {"type": ..., "id": ...}
        etype, eid = value.get("type"), value.get("id")
        if type(etype) is str and type(eid) is str:
            return f'{etype}::"{eid}"'
    return None


WORK: Final = "work"
"""The name in ``[behaviour] peers`` of the groups learned from behaviour (not an attribute)."""
_CLASS_NAMES: Final = ("read", "write", "admin")


def work_uid(segment: str | None, rtype: str, cls: int) -> EntityUid | None:
    """The learned group of an identity working on a resource of ``segment`` (its ``Type::"id"``
    text, or None) and type ``rtype`` with privilege class ``cls`` (0 read, 1 write, 2 admin):
    ``(GROUP_TYPE, "work=<segment or type>+<class>")``; None when there is neither."""
    where = segment or rtype
    if not where:
        return None
    return (GROUP_TYPE, f"{WORK}={where}+{_CLASS_NAMES[min(max(cls, 0), 2)]}")


def group_uid(attrs: Any, names: tuple[str, ...]) -> EntityUid | None:
    """The peer group of an identity with attributes ``attrs`` (a mapping, or None): the first of
    ``names`` it has, as ``(GROUP_TYPE, "name=value")``; a name ``a+b`` needs every part
    (``"a=x+b=y"``: e.g. ``kind+purpose``). None when it has none of them (``work``, the learned
    groups, is no attribute: :func:`work_uid`)."""
    if attrs is None:
        return None
    for name in names:
        if name == WORK:
            continue
        parts = name.split("+")
        values = [_text(attrs, part) for part in parts]
        if all(v is not None for v in values):
            return (GROUP_TYPE, "+".join(f"{part}={v}" for part, v in zip(parts, values, strict=True)))
    return None


def groups_also(attrs: Any, names: tuple[str, ...], work: EntityUid | None) -> list[EntityUid]:
    """Every group of ``names`` (``[behaviour] peers_also``) that applies to an identity with
    attributes ``attrs``: one per name it has (``work``: its learned group, when known)."""
    out: list[EntityUid] = []
    for name in names:
        guid = work if name == WORK else group_uid(attrs, (name,))
        if guid is not None and guid not in out:
            out.append(guid)
    return out


__all__ = ["GROUP_TYPE", "WORK", "group_uid", "groups_also", "work_uid"]
