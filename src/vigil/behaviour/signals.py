"""Named behaviour signals, their default weights, the risk formula and the assessment of a request.

Each raised signal contributes ``points = round(weight x strength)`` where ``weight`` is the
signal's points at full strength (``[behaviour.weights]`` overrides them) and ``strength`` is in
``(0, 1]`` (how new or how far from the identity's habit the request is). Risk combines them as
independent evidence (a noisy-OR)::

    risk = round(100 x (1 - prod(1 - points_i / 100)))

so one signal alone never exceeds its own points, two signals add up less than their sum, and risk
stays in 0..100. ``docs/behaviour.md`` has the calibration.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Final

NEW_REGION: Final = "new_region"
NEW_NETWORK: Final = "new_network"
NEW_USER_AGENT: Final = "new_user_agent"
UNUSUAL_HOUR: Final = "unusual_hour"
IMPOSSIBLE_TRAVEL: Final = "impossible_travel"
PRIVILEGE_DRIFT: Final = "privilege_drift"
NEW_ACTION: Final = "new_action"
NEW_RESOURCE: Final = "new_resource"
ENUMERATION: Final = "enumeration"
RATE_SPIKE: Final = "rate_spike"
SEGMENT_CROSSING: Final = "segment_crossing"
ESCALATION_CHAIN: Final = "escalation_chain"
CREDENTIAL_MISUSE: Final = "credential_misuse"
BAD_NETWORK: Final = "bad_network"
NEW_ARGUMENT: Final = "new_argument"
NEW_ON_BEHALF: Final = "new_on_behalf"
CREDENTIAL_TWO_PLACES: Final = "credential_two_places"
ESCALATION_PATH: Final = "escalation_path"

DEFAULT_WEIGHTS: Final[dict[str, int]] = {
    NEW_REGION: 50,
    NEW_NETWORK: 50,
    NEW_USER_AGENT: 30,
    UNUSUAL_HOUR: 30,
    IMPOSSIBLE_TRAVEL: 65,
    PRIVILEGE_DRIFT: 70,
    NEW_ACTION: 25,
    NEW_RESOURCE: 20,
    ENUMERATION: 85,
    RATE_SPIKE: 85,
    SEGMENT_CROSSING: 60,
    ESCALATION_CHAIN: 75,
    CREDENTIAL_MISUSE: 70,
    BAD_NETWORK: 70,
    NEW_ARGUMENT: 40,
    NEW_ON_BEHALF: 30,
    CREDENTIAL_TWO_PLACES: 70,
    # a step of a known path to admin ([escalation] reach): alone below step-up (60), so a
    # deployer's habitual step does not block; with a second signal of 20 points or more (a new
    # resource, network, hour, user agent, a chain) it reaches step-up: 1 - 0.5 x 0.8 = 0.6
    ESCALATION_PATH: 50,
}
SIGNALS: Final = tuple(DEFAULT_WEIGHTS)

# A raised signal: (name, points, explanation template, template arguments). The explanation is
# formatted only when someone reads it (audit writer, response rendering), never on the hot path;
# an argument may be a profile table (rendered by ``known``) or an ``Ago`` duration.
Hit = tuple[str, int, str, tuple[Any, ...]]
Unknown = tuple[str, str]  # (signal name, why it could not be judged)


class Ago(float):
    """A duration in seconds that formats itself for people (``12 s``, ``5 min``, ``3.5 h``)."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        seconds = max(0.0, float(self))
        if seconds < 90:
            return f"{seconds:.0f} s"
        if seconds < 5400:
            return f"{seconds / 60:.0f} min"
        if seconds < 172_800:
            return f"{seconds / 3600:.1f} h"
        return f"{seconds / 86_400:.0f} days"


def known(table: dict[str, int], exclude: tuple[Any, ...] = (), limit: int = 4) -> str:
    """The most recently seen keys of a profile table, for an explanation (``'a', 'b' and 3 more``)."""
    items = [(k, d) for k, d in list(table.items()) if k not in exclude and not k.endswith("*")]
    if not items:
        return "none"
    # nlargest is a stable sort's first `limit` (ties keep insertion order) without sorting all
    shown = ", ".join(repr(k) for k, _ in heapq.nlargest(limit, items, key=itemgetter(1)))
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _render(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Template arguments as text: a profile table (a dict) becomes its known keys, leaving out the
    other arguments of the same explanation (the value that was new may have been learned since)."""
    if not any(type(a) is dict for a in args):
        return args
    return tuple(known(a, args) if type(a) is dict else a for a in args)


def _by_points(hit: Hit) -> int:
    return -hit[1]


def combine(hits: Sequence[Hit]) -> int:
    """Risk 0..100 from the raised signals (noisy-OR of their points)."""
    keep = 1.0
    for h in hits:
        keep *= 1.0 - h[1] / 100.0
    return round(100.0 * (1.0 - keep))


class Assessment:
    """Behaviour's view of one request: ``risk``, raised ``signals`` (names), ``hits`` (points and
    explanations), ``unknown`` (signals that could not be judged, with why: the first ``malformed``
    of them because a context field was malformed, the rest because it was missing) and
    ``learning`` (the identity is still learning: nothing is enforced). Immutable once built; calm
    assessments are shared."""

    __slots__ = ("hits", "learning", "malformed", "risk", "signals", "unknown")

    def __init__(
        self,
        risk: int,
        signals: tuple[str, ...],
        hits: tuple[Hit, ...],
        unknown: tuple[Unknown, ...],
        learning: bool,
        malformed: int = 0,
    ) -> None:
        self.risk = risk
        self.signals = signals
        self.hits = hits
        self.unknown = unknown
        self.learning = learning
        self.malformed = malformed

    def details(self) -> list[dict[str, Any]]:
        """``[{"signal", "points", "why"}]`` for the raised signals, highest points first."""
        return [
            {"signal": name, "points": points, "why": template.format(*_render(args))}
            for name, points, template, args in sorted(self.hits, key=_by_points)
        ]

    def unknown_details(self, *, malformed_only: bool = False) -> list[dict[str, str]]:
        """``[{"signal", "why"}]`` for the signals that could not be judged (``malformed_only``:
        only those whose context field was malformed, not missing)."""
        items = self.unknown[: self.malformed] if malformed_only else self.unknown
        return [{"signal": name, "why": why} for name, why in items]

    def why(self) -> str:
        """One line: the raised signals with their explanations (for tickets and quarantines)."""
        return "; ".join(f"{d['signal']} (+{d['points']}): {d['why']}" for d in self.details())

    def __repr__(self) -> str:
        return f"Assessment(risk={self.risk}, signals={list(self.signals)!r}, learning={self.learning})"
