"""Prometheus metrics and recent decision statistics, kept in plain dicts.

All updates happen on the event loop thread, so no locks are needed. :meth:`Metrics.render`
writes the text exposition format (version 0.0.4).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

from vigil.model.decision import DecisionRecord

REQUEST_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DECISION_BUCKETS: Final = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2)
WINDOW_S: Final = 60
monotonic_s = time.monotonic


class Histogram:
    """Cumulative buckets, sum and count (Prometheus histogram)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out = []
        acc = 0
        sep = "," if labels else ""
        for bound, n in zip(self.bounds, self.counts, strict=False):
            acc += n
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {acc}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        out.append(f"{name}_sum{{{labels}}} {self.sum:.9f}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


class Metrics:
    """Counters, gauges and histograms of one server process, plus a one-minute window."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.request_seconds: dict[str, Histogram] = {}
        self.decisions: dict[tuple[str, str], int] = {}
        self.decision_seconds = Histogram(DECISION_BUCKETS)
        self.errors: dict[str, int] = {}
        self.reloads: dict[str, int] = {"ok": 0, "failed": 0}
        self.in_flight = 0
        self.started = time.time()
        self._window: deque[list[int]] = deque(maxlen=WINDOW_S)  # [second, allow, deny]
        self._latencies: deque[int] = deque(maxlen=4096)

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        h = self.request_seconds.get(endpoint)
        if h is None:
            h = self.request_seconds[endpoint] = Histogram(REQUEST_BUCKETS)
        h.observe(seconds)

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def decided(self, records: Iterable[DecisionRecord]) -> None:
        """Count decisions by outcome and first reason code; feed the window and latency samples."""
        now = int(monotonic_s())
        window = self._window
        slot = window[-1] if window and window[-1][0] == now else None
        if slot is None:
            slot = [now, 0, 0]
            window.append(slot)
        decisions = self.decisions
        hist = self.decision_seconds
        lat = self._latencies
        for r in records:
            reason = r.reason_codes[0] if r.reason_codes else ""
            key = ("allow" if r.allowed else "deny", reason)
            decisions[key] = decisions.get(key, 0) + 1
            slot[1 if r.allowed else 2] += 1
            hist.observe(r.latency_ns / 1e9)
            lat.append(r.latency_ns)

    def recent(self) -> dict[str, Any]:
        """Decisions of the last minute and since start, by outcome and reason; engine latency
        percentiles over the last 4,096 decisions (microseconds)."""
        now = int(monotonic_s())
        allow = sum(s[1] for s in self._window if now - s[0] < WINDOW_S)
        deny = sum(s[2] for s in self._window if now - s[0] < WINDOW_S)
        lat = sorted(self._latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] / 1000, 1) if lat else None

        by_reason: dict[str, int] = {}
        totals: dict[str, int] = {"allow": 0, "deny": 0}
        for (decision, reason), n in self.decisions.items():
            totals[decision] += n
            by_reason[reason] = by_reason.get(reason, 0) + n
        return {
            "uptime_s": round(time.time() - self.started, 3),
            "last_minute": {"allow": allow, "deny": deny},
            "since_start": {"allow": totals["allow"], "deny": totals["deny"], "by_reason": by_reason},
            "engine_latency_us": {"p50": pct(0.5), "p99": pct(0.99), "samples": len(lat)},
            "in_flight": self.in_flight,
            "errors": dict(self.errors),
            "reloads": dict(self.reloads),
        }

    def render(self, status: dict[str, Any]) -> str:
        """The text exposition of every metric; ``status`` is ``Engine.status()``."""
        out = [
            "# HELP vigil_http_requests_total HTTP requests by endpoint and status.",
            "# TYPE vigil_http_requests_total counter",
        ]
        for (endpoint, status_code), n in sorted(self.requests.items()):
            out.append(f'vigil_http_requests_total{{endpoint="{endpoint}",status="{status_code}"}} {n}')
        out += [
            "# HELP vigil_http_request_duration_seconds Time from request start to response sent.",
            "# TYPE vigil_http_request_duration_seconds histogram",
        ]
        for endpoint, h in sorted(self.request_seconds.items()):
            out += h.lines("vigil_http_request_duration_seconds", f'endpoint="{endpoint}"')
        out += [
            "# HELP vigil_decisions_total Decisions by outcome and first reason code.",
            "# TYPE vigil_decisions_total counter",
        ]
        for (decision, reason), n in sorted(self.decisions.items()):
            out.append(f'vigil_decisions_total{{decision="{decision}",reason="{reason}"}} {n}')
        out += [
            "# HELP vigil_decision_duration_seconds Engine time per decision.",
            "# TYPE vigil_decision_duration_seconds histogram",
            *self.decision_seconds.lines("vigil_decision_duration_seconds", ""),
            "# HELP vigil_errors_total Error responses by error code.",
            "# TYPE vigil_errors_total counter",
        ]
        for code, n in sorted(self.errors.items()):
            out.append(f'vigil_errors_total{{code="{code}"}} {n}')
        out += [
            "# HELP vigil_reloads_total Workspace reloads by result.",
            "# TYPE vigil_reloads_total counter",
        ]
        for result, n in sorted(self.reloads.items()):
            out.append(f'vigil_reloads_total{{result="{result}"}} {n}')
        out += [
            "# HELP vigil_http_in_flight Requests being handled.",
            "# TYPE vigil_http_in_flight gauge",
            f"vigil_http_in_flight {self.in_flight}",
            "# HELP vigil_policy_info The active policy revision.",
            "# TYPE vigil_policy_info gauge",
            f'vigil_policy_info{{revision="{status.get("policy_revision", "")}"}} 1',
            "# HELP vigil_policies Policies in the active workspace, and those evaluated by fallback.",
            "# TYPE vigil_policies gauge",
            f'vigil_policies{{kind="all"}} {status.get("policies", 0)}',
            f'vigil_policies{{kind="fallback"}} {len(status.get("fallbacks", ()))}',
            "# HELP vigil_entities Entities in the active workspace.",
            "# TYPE vigil_entities gauge",
            f"vigil_entities {status.get('entities', 0)}",
            "# HELP vigil_identities Identities in the registry, and those denied as inactive.",
            "# TYPE vigil_identities gauge",
            f'vigil_identities{{state="registered"}} {status.get("identities_registered", 0)}',
            f'vigil_identities{{state="inactive"}} {status.get("identities_inactive", 0)}',
            "# HELP vigil_audit_dropped_total Audit events dropped (full buffer or write error).",
            "# TYPE vigil_audit_dropped_total counter",
            f"vigil_audit_dropped_total {status.get('audit_dropped', 0)}",
        ]
        cluster = status.get("cluster")
        if isinstance(cluster, dict):  # [cluster] redis (docs/deployment.md)
            out += [
                "# HELP vigil_cluster_connected 1 while the subscription to the cluster's Redis is up.",
                "# TYPE vigil_cluster_connected gauge",
                f"vigil_cluster_connected {int(cluster.get('redis') == 'connected')}",
                "# HELP vigil_cluster_events_total Cluster announcements sent, received and dropped.",
                "# TYPE vigil_cluster_events_total counter",
                f'vigil_cluster_events_total{{kind="published"}} {cluster.get("published", 0)}',
                f'vigil_cluster_events_total{{kind="received"}} {cluster.get("received", 0)}',
                f'vigil_cluster_events_total{{kind="dropped"}} {cluster.get("dropped", 0)}',
                "# HELP vigil_cluster_errors_total Redis or store failures met by the cluster threads.",
                "# TYPE vigil_cluster_errors_total counter",
                f"vigil_cluster_errors_total {cluster.get('errors', 0)}",
            ]
        return "\n".join(out) + "\n"
