"""``[overlay]`` of ``vigil.toml``: which attributes a caller may supply for an entity, per entity type
(parsed and checked by :mod:`vigil.workspace.settings`; applied by :mod:`vigil.policy.request_values`)."""

from __future__ import annotations

from dataclasses import dataclass, field

OVERLAY_MODES: tuple[str, ...] = ("none", "add", "replace")


@dataclass(frozen=True, slots=True)
class OverlayType:
    """``[overlay.types.<EntityType>]``: what a caller may supply for entities of one type.

    ``mode`` replaces ``[overlay] default`` for this type (``""``: the default applies);
    ``allow`` names attributes a caller may set whatever the mode, replacing a stored value.
    """

    mode: str = ""
    allow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OverlaySettings:
    """``[overlay]``: which ``subject.properties`` / ``resource.properties`` a caller may supply.

    A request's properties are laid over the stored attributes of that entity for that call only.
    ``default`` applies to every entity type: ``"add"`` (a caller may add attributes the stored
    entity does not have, never replace a stored one), ``"none"`` (no properties at all) or
    ``"replace"`` (any attribute, stored ones included: only for PEPs that own the attributes).
    ``types`` holds per-type :class:`OverlayType` tables. A request whose properties this does not
    allow is refused (``overlay_not_allowed``); see ``docs/http.md``.
    """

    default: str = "add"
    types: dict[str, OverlayType] = field(default_factory=dict)

    def mode_of(self, entity_type: str) -> tuple[str, tuple[str, ...]]:
        """``(mode, allowed attributes)`` for ``entity_type``."""
        t = self.types.get(entity_type)
        if t is None:
            return self.default, ()
        return (t.mode or self.default), t.allow
