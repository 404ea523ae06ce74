"""Entity uids: the ``(type, id)`` pair that names a principal, an action or a resource in every layer
(Cedar's ``Type::"id"``). A plain tuple, so tables keyed by it hash and compare at C speed."""

from __future__ import annotations

EntityUid = tuple[str, str]
