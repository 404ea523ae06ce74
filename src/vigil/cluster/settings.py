"""``[cluster]`` of ``vigil.toml``: how the processes sharing one state store tell each other about
changes (parsed and checked by :mod:`vigil.workspace.settings`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """``[cluster]``: ``redis`` a ``redis://`` URL (kept out of ``repr``: it may hold a password);
    ``""`` (the default) runs alone, noticing other processes' changes at the store tick (about
    a second). ``channel`` the prefix of the Redis channel (processes sharing one store use the
    same one; deployments sharing one Redis use different ones). ``share_behaviour``: with
    ``redis``, each process announces its identities' request counts and newly learned values
    and merges the others' (docs/deployment.md, "Behaviour across processes"); false: each
    process counts and learns on its own."""

    redis: str = field(default="", repr=False)
    channel: str = "vigil"
    share_behaviour: bool = True
