"""``[store]`` of ``vigil.toml``: where runtime state lives (parsed and checked by
:mod:`vigil.workspace.settings`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """``[store]``: where behaviour profiles, approval tickets and quarantines live.

    ``backend`` ``"sqlite"`` (default: one file, ``path`` relative to the workspace), ``"postgres"``
    (shared by several processes or nodes: ``url`` a ``postgresql://`` URL, kept out of ``repr``;
    ``schema`` the schema of vigil's tables, created when missing, ``""`` the connection's default;
    ``pool_size`` the most connections one process opens) or ``"memory"`` (nothing survives a
    restart); ``snapshot_interval_s`` how often changed profiles are written.
    ``busy_timeout_ms`` the longest any store call waits for a lock (operators, the admin API,
    snapshots; an admin call answers ``store_unavailable`` after about three times this);
    ``decision_timeout_ms`` the longest a decision waits for the store (a step-up ticket, an
    approval, an automatic quarantine): past it the decision denies with ``store_unavailable``.
    """

    backend: str = "sqlite"
    path: str = ".vigil/state.db"
    snapshot_interval_s: int = 5
    busy_timeout_ms: int = 1_000
    decision_timeout_ms: int = 20
    url: str = field(default="", repr=False)
    schema: str = ""
    pool_size: int = 4
