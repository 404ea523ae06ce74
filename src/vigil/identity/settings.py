"""``[identity]`` of ``vigil.toml`` (parsed and checked by :mod:`vigil.workspace.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TYPES = ("Agent", "ServiceAccount", "Workload")


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """``[identity]``: the identity registry.

    ``types``: the entity types that act (principals the registry is for): ``vigil identity add``
    refuses other types, and the report lists entities of these types that are not registered
    (namespaced names such as ``Acme::Agent`` match exactly). ``unused_days`` and
    ``key_age_days``: the report's defaults for "unused for N days" and "keys older than N days".
    ``max_keys``: the most public keys one identity holds at once (rotation overlaps a few).
    """

    types: tuple[str, ...] = DEFAULT_TYPES
    unused_days: int = 30
    key_age_days: int = 90
    max_keys: int = 10
