"""Per-identity activity, recorded *after* each decision so a request cannot raise its own allowance.

The behaviour step of the pipeline: today it only records activity (count, first and last seen,
allow/deny counts); signals and risk build on it.
"""

from __future__ import annotations

from typing import Final

from vigil.policy.values import EntityUid

MAX_IDENTITIES: Final = 1_000_000


class IdentityActivity:
    """Counters for one identity (O(1) update, fixed size)."""

    __slots__ = ("allowed", "denied", "first_seen", "last_seen")

    def __init__(self, now: float) -> None:
        self.allowed = 0
        self.denied = 0
        self.first_seen = now
        self.last_seen = now

    @property
    def requests(self) -> int:
        return self.allowed + self.denied


class ActivityLog:
    """Activity by identity, bounded to ``limit`` identities (new identities past it are not tracked)."""

    __slots__ = ("_by_identity", "limit", "untracked")

    def __init__(self, limit: int = MAX_IDENTITIES) -> None:
        self._by_identity: dict[EntityUid, IdentityActivity] = {}
        self.limit = limit
        self.untracked = 0

    def record(self, principal: EntityUid, allowed: bool, now: float) -> None:
        """Count one decided request of ``principal`` at ``now`` (epoch seconds)."""
        act = self._by_identity.get(principal)
        if act is None:
            if len(self._by_identity) >= self.limit:
                self.untracked += 1
                return
            act = self._by_identity[principal] = IdentityActivity(now)
        if allowed:
            act.allowed += 1
        else:
            act.denied += 1
        if now > act.last_seen:
            act.last_seen = now

    def get(self, principal: EntityUid) -> IdentityActivity | None:
        """The activity of ``principal``, or None when it has none."""
        return self._by_identity.get(principal)

    def __len__(self) -> int:
        return len(self._by_identity)
