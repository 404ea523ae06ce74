"""Several vigil processes or nodes on one shared store: change events over Redis
(:class:`ChangeBus`), caught up from the store's durable change log on every (re)connect."""

from __future__ import annotations

from vigil.cluster.bus import ChangeBus, announcing
from vigil.cluster.settings import ClusterSettings

__all__ = ["ChangeBus", "ClusterSettings", "announcing"]
