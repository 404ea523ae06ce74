"""What counts as a detection, a miss and a false positive, and the figures built from them.

**Verdict of one decision** (:func:`verdict`), from the public :class:`~vigil.DecisionRecord`:

- ``quarantined`` / ``step_up``: denied with that advice;
- ``deny``: denied without advice (the evaluation workspaces permit everything, so a deny can only
  come from behaviour);
- ``flag``: allowed, but with a named signal and ``risk`` at or above the step-up threshold (what
  shadow mode reports instead of stepping up);
- ``signal``: allowed with named signals below the threshold (reported, never counted as detection);
- ``pass``.

**Detected**: a request whose verdict is ``quarantined``, ``step_up``, ``deny`` or ``flag``. An
episode is detected when any of its requests is; *requests until detection* is the 1-based position
of the first detected request in the episode. An episode is detected **in time** when that position
is at most 3 (20 for ``enumeration`` and ``rate_spike``); an ``escalation_chain`` is in time when
its first ``grant`` or ``create_key`` request is itself detected (it does not go through).

**False positive**: a benign request after the learning period that behaviour denied or stepped up
(``quarantined``, ``step_up`` or ``deny``). A victim's benign requests from its episode start on are
left out (a quarantine that keeps a compromised identity out is not a false positive). The
*flag rate* adds allowed-but-flagged benign requests (the alert load in shadow mode).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from vigil.evaluation.attacks import DEFAULT_WITHIN, EXPECTED_SIGNALS, WITHIN
from vigil.model.decision import DecisionRecord

__all__ = [
    "BLOCKED",
    "DETECTED",
    "Outcome",
    "Scorecard",
    "TypeResult",
    "verdict",
]

DETECTED: Final = frozenset({"quarantined", "step_up", "deny", "flag"})
BLOCKED: Final = frozenset({"quarantined", "step_up", "deny"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """The part of a decision the scoring needs."""

    verdict: str
    risk: int
    signals: tuple[str, ...]

    @property
    def detected(self) -> bool:
        return self.verdict in DETECTED

    @property
    def blocked(self) -> bool:
        return self.verdict in BLOCKED


def verdict(record: DecisionRecord, step_up_threshold: int) -> Outcome:
    """The :class:`Outcome` of one decision (see the module docstring)."""
    advice = record.advice
    signals = tuple(str(s) for s in record.signals)
    risk = int(record.risk)
    if not record.allowed:
        if "quarantined" in advice:
            v = "quarantined"
        elif "step_up" in advice:
            v = "step_up"
        else:
            v = "deny"
    elif signals and risk >= step_up_threshold:
        v = "flag"
    elif signals:
        v = "signal"
    else:
        v = "pass"
    return Outcome(v, risk, signals)


@dataclass
class TypeResult:
    """Figures for one attack type (or one data-set technique)."""

    attack: str
    expected: tuple[str, ...] = ()
    episodes: int = 0
    detected: int = 0
    in_time: int = 0
    blocked: int = 0
    by_expected_signal: int = 0
    first_detection: list[int] = field(default_factory=list)
    requests: int = 0
    requests_detected: int = 0
    signal_alerts: int = 0
    signal_alerts_true: int = 0
    misses: list[dict[str, Any]] = field(default_factory=list)
    late: list[dict[str, Any]] = field(default_factory=list)
    signals_seen: Counter[str] = field(default_factory=Counter)
    variants: dict[str, list[int]] = field(default_factory=dict)  # variant -> [episodes, detected, in time]
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # per episode: info, first detection

    @property
    def recall(self) -> float:
        return self.detected / self.episodes if self.episodes else 0.0

    @property
    def in_time_rate(self) -> float:
        return self.in_time / self.episodes if self.episodes else 0.0

    @property
    def precision(self) -> float | None:
        """Of the post-learning requests detected with one of this type's signals, the share that
        were attack requests (None when the signals never fired)."""
        return self.signal_alerts_true / self.signal_alerts if self.signal_alerts else None

    def to_dict(self) -> dict[str, Any]:
        firsts = sorted(self.first_detection)
        return {
            "attack": self.attack,
            "expected_signals": list(self.expected),
            "episodes": self.episodes,
            "detected": self.detected,
            "detected_in_time": self.in_time,
            "blocked": self.blocked,
            "detected_by_expected_signal": self.by_expected_signal,
            "recall": round(self.recall, 4),
            "in_time_rate": round(self.in_time_rate, 4),
            "requests_until_detection": _dist(firsts),
            "attack_requests": self.requests,
            "attack_requests_detected": self.requests_detected,
            "signal_alerts": self.signal_alerts,
            "signal_precision": None if self.precision is None else round(self.precision, 4),
            "signals_seen": dict(self.signals_seen.most_common()),
            "variants": {
                k: {"episodes": v[0], "detected": v[1], "detected_in_time": v[2]}
                for k, v in sorted(self.variants.items())
            },
            "misses": self.misses,
            "episode_outcomes": self.outcomes,
            "late": self.late,
        }


def _dist(values: Sequence[int]) -> dict[str, float | int | None]:
    if not values:
        return {"median": None, "p90": None, "max": None}
    n = len(values)
    return {
        "median": values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2,
        "p90": values[min(n - 1, int(0.9 * n))],
        "max": values[-1],
    }


@dataclass
class Scorecard:
    """Accumulates scored requests (several runs may feed one card) and produces the figures."""

    types: dict[str, TypeResult] = field(default_factory=dict)
    benign_after_learning: int = 0
    benign_blocked: int = 0
    benign_quarantined: int = 0
    benign_flagged: int = 0
    benign_signalled: int = 0
    benign_signals: Counter[str] = field(default_factory=Counter)
    quarantined_identities: set[str] = field(default_factory=set)
    benign_learning: int = 0
    benign_learning_blocked: int = 0
    excluded_post_attack: int = 0
    fp_by_drift: Counter[str] = field(default_factory=Counter)
    benign_by_drift: Counter[str] = field(default_factory=Counter)
    fp_by_signal: Counter[str] = field(default_factory=Counter)
    fp_by_group: Counter[str] = field(default_factory=Counter)
    benign_by_group: Counter[str] = field(default_factory=Counter)
    fp_identities: Counter[str] = field(default_factory=Counter)
    attack_detected_requests: int = 0
    requests: int = 0
    out_of_band: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_archetype: dict[str, list[int]] = field(
        default_factory=dict
    )  # victim's -> [episodes, detected, in time]

    def type_result(self, attack: str, expected: tuple[str, ...] | None = None) -> TypeResult:
        result = self.types.get(attack)
        if result is None:
            exp = EXPECTED_SIGNALS.get(attack, ()) if expected is None else expected
            result = self.types[attack] = TypeResult(attack, exp)
        return result

    # -- feeding -------------------------------------------------------------------------------
    def benign(self, outcome: Outcome, *, learned: bool, drift: str, group: str, identity: str) -> None:
        """Count one benign request (``learned``: after the learning period)."""
        self.requests += 1
        if not learned:
            self.benign_learning += 1
            self.benign_learning_blocked += outcome.blocked
            return
        self.benign_after_learning += 1
        self.benign_by_drift[drift] += 1
        self.benign_by_group[group] += 1
        if outcome.signals:
            self.benign_signalled += 1
            self.benign_signals.update(outcome.signals)
        if outcome.detected:
            self.benign_flagged += 1
            self._signal_alerts(outcome, true=False)
        if outcome.blocked:
            self.benign_blocked += 1
            self.fp_by_drift[drift] += 1
            self.fp_by_group[group] += 1
            self.fp_identities[identity] += 1
            if outcome.verdict == "quarantined":
                self.benign_quarantined += 1
                self.quarantined_identities.add(identity)
            self.fp_by_signal.update(outcome.signals or ("(no signal)",))

    def out_of_band_change(self, outcome: Outcome, *, drift: str, identity: str) -> None:
        """Count one benign request of an out-of-band change (reported apart from the FP rate);
        ``identity`` must be unique per replay (several fleets may feed one card)."""
        self.requests += 1
        row = self.out_of_band.setdefault(
            drift,
            {
                "seen": {},
                "requests": 0,
                "blocked": 0,
                "quarantined": 0,
                "first_blocked": {},
                "signals": Counter(),
            },
        )
        position = row["seen"][identity] = row["seen"].get(identity, 0) + 1
        row["requests"] += 1
        row["signals"].update(outcome.signals)
        if outcome.blocked:
            row["blocked"] += 1
            row["first_blocked"].setdefault(identity, position)
            if outcome.verdict == "quarantined":
                row["quarantined"] += 1

    def excluded(self) -> None:
        self.requests += 1
        self.excluded_post_attack += 1

    def episode(
        self,
        attack: str,
        outcomes: Sequence[Outcome],
        actions: Sequence[str],
        info: dict[str, Any],
        *,
        expected: tuple[str, ...] | None = None,
        within: int | None = None,
    ) -> None:
        """Score one episode from the outcomes of its requests, in order."""
        result = self.type_result(attack, expected)
        result.episodes += 1
        tally = self.by_archetype.setdefault(str(info.get("archetype", "")), [0, 0, 0])
        tally[0] += 1
        result.requests += len(outcomes)
        self.requests += len(outcomes)
        first = next((i for i, o in enumerate(outcomes, 1) if o.detected), None)
        variant = result.variants.setdefault(str(info["variant"]), [0, 0, 0]) if info.get("variant") else None
        if variant is not None:
            variant[0] += 1
        result.outcomes.append({**info, "first_detection": first, "requests": len(outcomes)})
        for o in outcomes:
            result.signals_seen.update(o.signals)
            if o.detected:
                result.requests_detected += 1
                self.attack_detected_requests += 1
                self._signal_alerts(o, true=True)
        if first is None:
            peak = max(outcomes, key=lambda o: o.risk, default=None)
            result.misses.append(
                {
                    **info,
                    "max_risk": peak.risk if peak else 0,
                    "signals": sorted({s for o in outcomes for s in o.signals}),
                }
            )
            return
        result.detected += 1
        tally[1] += 1
        if variant is not None:
            variant[1] += 1
        result.blocked += any(o.blocked for o in outcomes)
        result.first_detection.append(first)
        if any(s in result.expected for o in outcomes if o.detected for s in o.signals):
            result.by_expected_signal += 1
        if _in_time(attack, outcomes, actions, first, within):
            result.in_time += 1
            tally[2] += 1
            if variant is not None:
                variant[2] += 1
        else:
            result.late.append(
                {**info, "first_detection": first, "signals": list(outcomes[first - 1].signals)}
            )

    def _signal_alerts(self, outcome: Outcome, *, true: bool) -> None:
        for result in self.types.values():
            if any(s in result.expected for s in outcome.signals):
                result.signal_alerts += 1
                result.signal_alerts_true += true

    # -- figures -------------------------------------------------------------------------------
    @property
    def fp_rate(self) -> float:
        return self.benign_blocked / self.benign_after_learning if self.benign_after_learning else 0.0

    @property
    def flag_rate(self) -> float:
        return self.benign_flagged / self.benign_after_learning if self.benign_after_learning else 0.0

    def totals(self) -> dict[str, Any]:
        episodes = sum(t.episodes for t in self.types.values())
        in_time = sum(t.in_time for t in self.types.values())
        detected = sum(t.detected for t in self.types.values())
        alerts = self.attack_detected_requests + self.benign_flagged
        return {
            "requests": self.requests,
            "episodes": episodes,
            "detected": detected,
            "detected_in_time": in_time,
            "in_time_rate": round(in_time / episodes, 4) if episodes else 0.0,
            "recall": round(detected / episodes, 4) if episodes else 0.0,
            "request_precision": round(self.attack_detected_requests / alerts, 4) if alerts else None,
            "benign_after_learning": self.benign_after_learning,
            "benign_blocked": self.benign_blocked,
            "benign_blocked_by_quarantine": self.benign_quarantined,
            "benign_identities_quarantined": len(self.quarantined_identities),
            "fp_rate_own_risk": round(
                (self.benign_blocked - self.benign_quarantined) / self.benign_after_learning, 6
            )
            if self.benign_after_learning
            else 0.0,
            "benign_with_signals": self.benign_signalled,
            "fp_rate": round(self.fp_rate, 6),
            "benign_flagged": self.benign_flagged,
            "flag_rate": round(self.flag_rate, 6),
            "benign_learning": self.benign_learning,
            "benign_learning_blocked": self.benign_learning_blocked,
            "excluded_post_attack": self.excluded_post_attack,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "totals": self.totals(),
            "by_type": {name: t.to_dict() for name, t in self.types.items()},
            "by_archetype": {
                k: {"episodes": v[0], "detected": v[1], "detected_in_time": v[2]}
                for k, v in sorted(self.by_archetype.items())
            },
            "false_positives": {
                "by_drift": _rates(self.fp_by_drift, self.benign_by_drift),
                "by_group": _rates(self.fp_by_group, self.benign_by_group),
                "by_signal": dict(self.fp_by_signal.most_common()),
                "top_identities": dict(self.fp_identities.most_common(10)),
                "quarantined_identities": sorted(self.quarantined_identities),
                "signals_below_threshold": dict(self.benign_signals.most_common()),
            },
            "out_of_band": {
                k: {
                    "identities": len(v["seen"]),
                    "requests": v["requests"],
                    "blocked": v["blocked"],
                    "blocked_by_quarantine": v["quarantined"],
                    "first_blocked_request": sorted(v["first_blocked"].values()),
                    "signals": dict(v["signals"].most_common()),
                }
                for k, v in self.out_of_band.items()
            },
        }


def _rates(hits: Counter[str], totals: Counter[str]) -> dict[str, dict[str, float | int]]:
    return {
        key: {"requests": n, "blocked": hits[key], "rate": round(hits[key] / n, 6) if n else 0.0}
        for key, n in totals.most_common()
    }


def _in_time(
    attack: str, outcomes: Sequence[Outcome], actions: Sequence[str], first: int, within: int | None
) -> bool:
    if attack == "escalation_chain":
        for o, action in zip(outcomes, actions, strict=True):
            if action in ("grant", "create_key"):
                return o.detected
        return True
    return first <= (within if within is not None else WITHIN.get(attack, DEFAULT_WITHIN))
