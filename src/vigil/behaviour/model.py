"""The behaviour model: signals of a request against its identity's profile, and learning.

Two steps, always in this order (ARCHITECTURE section 2):

1. :meth:`BehaviourModel.assess` reads the profile and the request and returns an
   :class:`~vigil.behaviour.signals.Assessment` (risk, signals, explanations) and the request's
   features. It changes nothing.
2. :meth:`BehaviourModel.learn` runs after the decision. Every request updates the identity's
   counters of what it *attempts* (rate, new resources, privilege chain); only a request that was
   allowed (or, in shadow mode, would have been) teaches the profile what is normal: hours,
   regions, networks, user agents, actions, classes, resources, segments and the usual rates. So a
   request can never raise its own allowance, and a denied attacker cannot train the baseline.

Everything is O(1) per request: table lookups, a few counters, one bitmap probe. Thresholds are
computed when the profile learns, not when it is read. Explanations are kept as a template and
its arguments and formatted only when read. This is the hottest code after the policy evaluator:
common branches are written inline on purpose; rare ones (a new value, a spike) call helpers.
"""

from __future__ import annotations

import math
import zlib
from operator import itemgetter
from socket import AF_INET, inet_pton
from typing import Any, Final

from vigil.behaviour import signals as S
from vigil.behaviour.context import ContextReader
from vigil.behaviour.privilege import ADMIN, CLASS_NAMES, READ, WRITE, ActionClasses
from vigil.behaviour.profile import (
    BLOOM_BITS,
    BLOOM_BYTES,
    BLOOM_ROTATE_AT,
    CAPS,
    HALVE_AT,
    NO_THRESHOLD,
    NOV_ACTION,
    NOV_NET,
    NOV_REGION,
    NOV_RESOURCE,
    NOV_RTYPE,
    NOV_SEG,
    NOV_UA,
    RECENT_NEW,
    Profile,
    remember,
)
from vigil.behaviour.regions import distance_km, locate
from vigil.behaviour.signals import Ago, Assessment, Hit, Unknown, combine
from vigil.policy.entities import EntityStore
from vigil.policy.values import EntityUid
from vigil.workspace.settings import BehaviourSettings

DAY: Final = 86_400
RESOURCE_CACHE: Final = 262_144
INTERN_LIMIT: Final = 1_000_000
CAND_CAP: Final = 32
BASELINE_ALPHA: Final = 0.01
MIN_SAMPLES: Final = 20
RATE_TAU1: Final = 60.0
RATE_TAU2: Final = 900.0
RATIO1: Final = 4.0  # a per-minute count is unusual from 4x its usual level ...
RATIO2: Final = 5.0  # ... a per-quarter-hour count from 5x (a busy day is 2-4x, a runaway 10x+)
ENUM_RATIO: Final = 4.0
MAD_Z: Final = 7.5  # 7.5 mean absolute deviations ~ 6 standard deviations
FOLD_S: Final = 5.0  # the usual rates are sampled at most once every 5 s per identity
_NEVER: Final = -(10**9)
_LN10: Final = math.log(10.0)
_name: Final = itemgetter(0)

# bits of the "missing field" mask
_NO_IP: Final = 1
_NO_REGION: Final = 2
_NO_UA: Final = 4
_MISSING_WHY: Final = {
    _NO_IP: ((S.NEW_NETWORK, "context.ip is missing"),),
    _NO_REGION: (
        (S.NEW_REGION, "context.region is missing"),
        (S.IMPOSSIBLE_TRAVEL, "context.region is missing"),
    ),
    _NO_UA: ((S.NEW_USER_AGENT, "context.user_agent is missing"),),
}
_UNKNOWN_BY_MASK: Final[tuple[tuple[Unknown, ...], ...]] = tuple(
    tuple(u for bit in (_NO_IP, _NO_REGION, _NO_UA) if mask & bit for u in _MISSING_WHY[bit])
    for mask in range(8)
)
# Calm assessments (no signal raised), shared: [mask][learning]
_CALM: Final = tuple(
    (Assessment(0, (), (), unknown, False), Assessment(0, (), (), unknown, True))
    for unknown in _UNKNOWN_BY_MASK
)
# resource info: (stable hash, bitmap byte, bitmap mask, resource type, segment or None)
ResourceInfo = tuple[int, int, int, str, "str | None"]
# features of one request, passed from assess to learn:
# (t, day, net, region, ua, action id, class, sensitive, resource info, resource state (0 known,
#  1 known in the older bitmap, 2 new), count 1 min, count 15 min, new-resource count, counted,
#  chain start, chain top, chain climbs, chain sensitive count, epoch second)
Features = tuple[Any, ...]


def _strength(novel: float, n: float) -> float:
    """How surprising a new value is for an identity that saw ``novel`` new values in ``n``
    learned requests: 1.0 when new values are rarer than 1 in ~300, down to 0.25."""
    r = (novel + 1.0) / (n + 2.0)
    s = -math.log(r) / (2.5 * _LN10)
    return 1.0 if s >= 1.0 else (0.25 if s < 0.25 else s)


def _wide(net: str) -> str:
    """The wider network of a network key, as a table key: ``10.40.8.0/24`` -> ``10.40.*``,
    ``2001:db8:1::/48`` -> ``2001:db8:*``."""
    if "." in net:
        return net[: net.find(".", net.find(".") + 1) + 1] + "*"
    return net[: net.find(":", net.find(":") + 1) + 1] + "*"


def _threshold(floor: float, mean: float, mad: float, ratio: float) -> float:
    """A count is unusual from ``max(floor, ratio x mean, mean + 7.5 x mean absolute deviation)``."""
    t = ratio * mean
    u = mean + MAD_Z * mad
    if u > t:
        t = u
    return t if t > floor else float(floor)


def _over(points: int, over: float) -> int:
    """Points of a count ``over`` times its threshold: 74% of the weight at the threshold, all of
    it at three times the threshold."""
    s = 0.74 + 0.13 * (over - 1.0)
    return max(1, round(points * (s if s < 1.0 else 1.0)))


class BehaviourModel:
    """Signals and learning for one workspace generation (settings, action classes, segments)."""

    __slots__ = (
        "_acls",
        "_off",
        "_resources",
        "_segment_types",
        "_segment_uids",
        "chain_s",
        "classes",
        "deny_risk",
        "enforce",
        "enum_min",
        "enum_w",
        "establish_s",
        "forget_days",
        "forget_s",
        "learning_requests",
        "learning_s",
        "min_history",
        "quarantine_after",
        "quarantine_risk",
        "quarantine_window_s",
        "rate_min",
        "rate_min2",
        "reader",
        "settings",
        "step_up_risk",
        "store",
        "strings",
        "travel_kmh",
        "travel_min_km",
        "w",
    )

    def __init__(
        self,
        settings: BehaviourSettings,
        store: EntityStore | None = None,
        strings: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.enforce = settings.mode == "enforce"
        weights = dict(S.DEFAULT_WEIGHTS)
        weights.update(settings.weights)
        self.w = weights
        self._off = frozenset(name for name, points in weights.items() if points <= 0)
        self.step_up_risk = settings.step_up_risk
        self.deny_risk = settings.deny_risk
        self.quarantine_after = settings.quarantine_after
        self.quarantine_risk = settings.quarantine_risk
        self.quarantine_window_s = float(settings.quarantine_window_s)
        self.learning_requests = settings.learning_requests
        self.learning_s = settings.learning_days * DAY
        self.min_history = settings.min_history
        self.establish_s = float(settings.establish_s)
        self.forget_days = settings.forget_days
        self.forget_s = settings.forget_days * DAY
        self.rate_min = settings.rate_min_per_minute
        self.rate_min2 = settings.rate_min_per_quarter_hour
        self.enum_min = settings.enumeration_min
        self.enum_w = float(settings.enumeration_window_s)
        self.chain_s = float(settings.chain_window_s)
        self.travel_kmh = float(settings.travel_kmh)
        self.travel_min_km = float(settings.travel_min_km)
        self.reader = ContextReader(settings.max_time_skew_s)
        self.classes = ActionClasses(
            store,
            read=settings.read_actions,
            write=settings.write_actions,
            admin=settings.admin_actions,
            sensitive=settings.sensitive_actions,
            by_name=settings.classify_by_name,
        )
        self._acls = self.classes.cache
        seg_types: set[str] = set()
        seg_uids: set[EntityUid] = set()
        for item in settings.segments:
            if "::" in item:
                etype, _, eid = item.rpartition("::")
                seg_uids.add((etype, eid.strip('"')))
            else:
                seg_types.add(item)
        self._segment_types = frozenset(seg_types)
        self._segment_uids = frozenset(seg_uids)
        self._resources: dict[EntityUid, ResourceInfo] = {}
        self.strings: dict[str, str] = strings if strings is not None else {}

    # -- helpers -------------------------------------------------------------------------------
    def intern(self, s: str) -> str:
        """One shared copy of a learned key (regions, networks, ... repeat across identities)."""
        got = self.strings.get(s)
        if got is not None:
            return got
        if len(self.strings) < INTERN_LIMIT:
            self.strings[s] = s
        return s

    def resource_info(self, resource: EntityUid) -> ResourceInfo:
        """Stable hash, bitmap position, type and segment of a resource (cached)."""
        got = self._resources.get(resource)
        if got is not None:
            return got
        h = zlib.crc32(f"{resource[0]}::{resource[1]}".encode("utf-8", "surrogatepass"))
        bit = h % BLOOM_BITS
        seg = None
        if (self._segment_types or self._segment_uids) and self.store is not None:
            segs = sorted(
                a
                for a in self.store.ancestors(resource)
                if a[0] in self._segment_types or a in self._segment_uids
            )
            if segs:
                seg = self.intern(f'{segs[0][0]}::"{segs[0][1]}"')
        info = (h, bit >> 3, 1 << (bit & 7), self.intern(resource[0]), seg)
        if len(self._resources) >= RESOURCE_CACHE:
            self._resources.clear()
        self._resources[resource] = info
        return info

    def is_learning(self, p: Profile | None, t: float) -> bool:
        """True while ``p`` has not yet learned enough (requests and days) to be enforced."""
        return p is None or p.learned < self.learning_requests or t - p.first_seen < self.learning_s

    # -- assess ----------------------------------------------------------------------------------
    def assess(
        self,
        p: Profile | None,
        action: EntityUid,
        resource: EntityUid,
        ctx: dict[str, Any],
        when: float,
        allowed: bool | None = None,
    ) -> tuple[Assessment, Features | None]:
        """Signals of one request against ``p`` (None: the identity's first request).

        ``ctx`` is the raw JSON context; ``when`` the decision time (epoch seconds).

        ``allowed`` None: pure, nothing changes; the request's features are returned for
        :meth:`learn`. ``allowed`` the final decision (the policy's, which behaviour will not
        change because the risk stays below step-up or the identity is learning): the profile
        learns in the same pass and the features returned are None. When the risk would change the
        decision, nothing is learned yet and the features are returned: the engine combines, then
        calls :meth:`learn` with the final decision. Both ways leave the same profile
        (``tests/test_behaviour_model.py`` checks it).
        """
        unknown: list[Unknown] | None = None
        mask = 0
        hour_ok = True
        v = ctx.get("time")
        if v is None:
            t = when
        else:
            t, why = self.reader.event_time(v, when)
            if why is not None:
                hour_ok = False
                unknown = [(S.UNUSUAL_HOUR, why)]
        v = ctx.get("ip")
        if v is None:
            net = None
            mask = _NO_IP
        else:
            if type(v) is dict:
                ext = v.get("__extn")
                v = ext.get("arg") if type(ext) is dict and ext.get("fn") == "ip" else v
            net = None
            if type(v) is str:
                try:
                    inet_pton(AF_INET, v)  # a strict dotted quad: its /24 is a slice
                    net = v[: v.rfind(".")] + ".0/24"
                except (OSError, ValueError):
                    pass
            if net is None:
                net = self.reader.network(v)
                if net is None:
                    unknown = unknown or []
                    unknown.append((S.NEW_NETWORK, self.reader.network_why(v)))
        region = ctx.get("region")
        if region is None:
            mask |= _NO_REGION
        elif type(region) is not str or not 0 < len(region) <= 64 or not region.isprintable():
            unknown = unknown or []
            unknown.append((S.NEW_REGION, self.reader.region_why(region)))
            unknown.append((S.IMPOSSIBLE_TRAVEL, self.reader.region_why(region)))
            region = None
        v = ctx.get("user_agent")
        if v is None:
            ua = None
            mask |= _NO_UA
        else:
            ua = self.reader.user_agent(v)
            if ua is None:
                unknown = unknown or []
                unknown.append((S.NEW_USER_AGENT, self.reader.user_agent_why(v)))
        ac = self._acls.get(action)
        cls, sens = ac if ac is not None else self.classes.get(action)
        ri = self._resources.get(resource)
        if ri is None:
            ri = self.resource_info(resource)
        it = int(t)
        day = it // DAY
        aname = action[1]

        if p is None:
            # First request of this identity: no baseline, nothing to compare with.
            f = (
                t,
                day,
                net,
                region,
                ua,
                aname,
                cls,
                sens,
                ri,
                2,
                1.0,
                1.0,
                1.0,
                True,
                t,
                cls,
                0,
                int(sens),
                it,
            )
            if unknown is None:
                return _CALM[mask][True], f
            return Assessment(0, (), (), self._unknown(mask, unknown), True), f

        hits: list[Hit] | None = None
        n = p.n
        forget = self.forget_days
        d_region = d_net = d_ua = d_action = None

        # -- context: region, network, user agent (and travel) --------------------------------
        if n:
            if region is not None:
                d_region = p.regions.get(region)
                if d_region is None or day - d_region > forget:
                    hits = []
                    self._new_context(hits, p, S.NEW_REGION, "r:", region, p.regions, NOV_REGION, n, t)
                    if region != p.last_region:
                        self._travel(hits, p, region, t)
                elif region != p.last_region and day - d_region > 1:
                    # a known region, but not used lately: the jump from the last one still counts
                    hits = []
                    self._travel(hits, p, region, t)
            if net is not None:
                d_net = p.nets.get(net)
                if d_net is None or day - d_net > forget:
                    if hits is None:
                        hits = []
                    self._new_context(hits, p, S.NEW_NETWORK, "n:", net, p.nets, NOV_NET, n, t)
            if ua is not None:
                d_ua = p.uas.get(ua)
                if d_ua is None or day - d_ua > forget:
                    if hits is None:
                        hits = []
                    self._new_context(hits, p, S.NEW_USER_AGENT, "u:", ua, p.uas, NOV_UA, n, t)

            # -- hour of week -------------------------------------------------------------------
            if hour_ok and n >= self.min_history:
                how = p.how
                slot = (it // 3600 + 72) % 168  # 1970-01-01 was a Thursday: slot 0 = Monday 00:00 UTC
                if (how[slot - 1] + how[slot] + how[slot + 1 if slot < 167 else 0]) * 560 < n * 3:
                    # under 30% of a uniform share of the week (3 slots of 168)
                    hit = self._hour(p, slot, n, it)
                    if hit is not None:
                        if hits is None:
                            hits = []
                        hits.append(hit)

        # -- privilege, actions -----------------------------------------------------------------
        novel_step = False
        if n:
            if day > p.max_cls_until:
                known_max = self._known_max(p, day)
            else:
                known_max = p.max_cls
            if cls > known_max:
                novel_step = True
                if hits is None:
                    hits = []
                hits.append(self._drift(cls, known_max, aname))
            d_action = p.actions.get(aname)
            if d_action is None or day - d_action > forget:
                novel_step = True
                if cls <= known_max:
                    s = _strength(p.novelty[NOV_ACTION], n)
                    if s:
                        if hits is None:
                            hits = []
                        hits.append(
                            (
                                S.NEW_ACTION,
                                max(1, round(self.w[S.NEW_ACTION] * s)),
                                "first use of action {0!r}; known: {1}",
                                (aname, p.actions),
                            )
                        )

        # -- resources: new, segments, enumeration -------------------------------------------------
        bloom = p.bloom
        byte = ri[1]
        nr_c = 0.0
        counted = False
        if bloom[byte] & ri[2]:
            res_state = 0
        elif bloom[byte + BLOOM_BYTES] & ri[2]:
            res_state = 1
        else:
            res_state = 2
            recent = p.nr_recent
            nr_c = p.nr[0]
            if recent is None or ri[0] not in recent:
                dt = t - p.nr_t
                nr_c = nr_c * math.exp(-dt / self.enum_w) + 1.0 if dt > 0 else nr_c + 1.0
                counted = True
            if n:
                hits = self._new_resource(hits, p, resource, ri, n, nr_c if counted else 0.0)

        # -- request rate: decayed counts over about a minute and a quarter hour -------------------
        rate = p.rate
        dt = t - p.rate_t
        if dt <= 0.0:
            c1 = rate[0] + 1.0
            c2 = rate[1] + 1.0
        elif dt < 9_000.0:
            c1 = rate[0] * math.exp(-dt / RATE_TAU1) + 1.0
            c2 = rate[1] * math.exp(-dt / RATE_TAU2) + 1.0
        else:
            c1 = c2 = 1.0
        if c1 >= rate[6] or c2 >= rate[7]:
            if hits is None:
                hits = []
            hits.append(self._rate(c1, c2, rate))

        # -- escalation chain (plain reads neither start nor extend one) ---------------------------
        chain = cls or sens
        if chain:
            if t - p.chain_t > self.chain_s:
                chain_t = t
                top = cls
                climbs = 0
                chain_sens = int(sens)
            else:
                chain_t = p.chain_t
                top = p.chain_top
                climbs = p.chain_climbs
                chain_sens = p.chain_sens + sens
                if cls > top:
                    climbs += 1
                    top = cls
                if novel_step and (climbs >= 2 or chain_sens >= 2 or (climbs and sens and cls == ADMIN)):
                    if hits is None:
                        hits = []
                    hits.append(
                        (
                            S.ESCALATION_CHAIN,
                            self.w[S.ESCALATION_CHAIN],
                            "within {0}: {1} privilege climb(s) and {2} sensitive action(s), now {3!r}",
                            (Ago(t - chain_t), climbs, chain_sens, aname),
                        )
                    )

        learning = p.learned < self.learning_requests or t - p.first_seen < self.learning_s
        if hits is None:
            a = (
                _CALM[mask][learning]
                if unknown is None
                else Assessment(0, (), (), self._unknown(mask, unknown), learning)
            )
        else:
            a = self._assessment(hits, mask, unknown, learning)
        if allowed is None or (a.risk >= self.step_up_risk and not learning):
            if not chain:
                chain_t = p.chain_t
                top = p.chain_top
                climbs = p.chain_climbs
                chain_sens = p.chain_sens
            return a, (
                t,
                day,
                net,
                region,
                ua,
                aname,
                cls,
                sens,
                ri,
                res_state,
                c1,
                c2,
                nr_c,
                counted,
                chain_t,
                top,
                climbs,
                chain_sens,
                it,
            )

        # -- learn, in the same pass (the same updates as `learn`) ---------------------------------
        if allowed:
            p.allowed += 1
        else:
            p.denied += 1
        if t > p.last_seen:
            p.last_seen = t
        p.dirty = True
        rate[0] = c1
        rate[1] = c2
        if t > p.rate_t:
            p.rate_t = t
        if counted:
            self._count_new(p, ri, nr_c, t)
        if chain:
            p.chain_t = chain_t
            p.chain_top = top
            p.chain_climbs = climbs
            p.chain_sens = chain_sens
        if not allowed:
            return a, None
        p.learned += 1
        if t - p.rate_fold_t >= FOLD_S or t < p.rate_fold_t:
            self._fold_rate(p, c1, c2, t)
        if counted:
            self._fold_new(p, nr_c)
        p.how[(it // 3600 + 72) % 168] += 1
        p.n = n = n + 1
        if n >= HALVE_AT or t - p.decay_t > self.forget_s:
            self._decay(p, t)
        if region is not None:
            if d_region != day:
                self._learn_context(p, "r:", region, p.regions, CAPS["region"], NOV_REGION, day, t)
            if p.last_region != region:
                p.last_region = self.intern(region)
            p.last_region_t = t
        if net is not None and d_net != day:
            self._learn_context(p, "n:", net, p.nets, CAPS["net"], NOV_NET, day, t)
        if ua is not None and d_ua != day:
            self._learn_context(p, "u:", ua, p.uas, CAPS["ua"], NOV_UA, day, t)
        if d_action != day:
            self._learn_action(p, aname, day)
        if p.class_day[cls] != day:
            self._learn_class(p, cls, day)
        if res_state:
            self._learn_resource(p, ri, res_state, t)
        if p.rtypes.get(ri[3]) != day:
            self._learn_kind(p.rtypes, ri[3], NOV_RTYPE, p, day, CAPS["rtype"])
        seg = ri[4]
        if seg is not None and p.segs.get(seg) != day:
            self._learn_kind(p.segs, seg, NOV_SEG, p, day, CAPS["seg"])
        return a, None

    def _assessment(
        self, hits: list[Hit], mask: int, unknown: list[Unknown] | None, learning: bool
    ) -> Assessment:
        if self._off:  # signals switched off by a weight of 0
            hits = [h for h in hits if h[0] not in self._off]
            if not hits:
                if unknown is None:
                    return _CALM[mask][learning]
                return Assessment(0, (), (), self._unknown(mask, unknown), learning)
        if len(hits) == 1:
            h = hits[0]
            risk = h[1] if h[1] < 100 else 100
        else:
            risk = combine(hits)
        return Assessment(
            risk,
            tuple(map(_name, hits)),
            tuple(hits),
            _UNKNOWN_BY_MASK[mask] if unknown is None else self._unknown(mask, unknown),
            learning,
        )

    @staticmethod
    def _unknown(mask: int, extra: list[Unknown]) -> tuple[Unknown, ...]:
        return tuple(extra) + _UNKNOWN_BY_MASK[mask]

    def _new_context(
        self,
        hits: list[Hit],
        p: Profile,
        name: str,
        prefix: str,
        value: str,
        table: dict[str, int],
        kind: int,
        n: float,
        t: float,
    ) -> None:
        strength = _strength(p.novelty[kind], n)
        cand = p.cand
        first = cand.get(prefix + value) if cand else None
        label = ("region", "network", "user agent")[kind]
        if kind == NOV_NET and _wide(value) in table:
            strength *= 0.5
            label = "network (inside a known wider network)"
        pts = max(1, round(self.w[name] * strength))
        if first is not None:
            hits.append(
                (
                    name,
                    pts,
                    "{0} {1!r} first seen {2} ago, not established yet; known: {3}",
                    (label, value, Ago(t - first), table),
                )
            )
        else:
            hits.append((name, pts, "first request from {0} {1!r}; known: {2}", (label, value, table)))

    def _new_resource(
        self, hits: list[Hit] | None, p: Profile, resource: EntityUid, ri: ResourceInfo, n: float, nr_c: float
    ) -> list[Hit] | None:
        """``new_resource``, ``segment_crossing`` and ``enumeration`` of a never-seen resource."""
        w = self.w
        rtype = ri[3]
        seg = ri[4]
        type_new = rtype not in p.rtypes
        if n >= self.min_history or type_new:
            if hits is None:
                hits = []
            strength = _strength(p.novelty[NOV_RESOURCE], n) * (1.0 if type_new else 0.5)
            hits.append(
                (
                    S.NEW_RESOURCE,
                    max(1, round(w[S.NEW_RESOURCE] * strength)),
                    "first access to {0}::{1!r}{2}",
                    (resource[0], resource[1], f" (first {rtype} ever)" if type_new else ""),
                )
            )
        if seg is not None and p.segs and seg not in p.segs:
            if hits is None:
                hits = []
            hits.append(
                (
                    S.SEGMENT_CROSSING,
                    max(1, round(w[S.SEGMENT_CROSSING] * _strength(p.novelty[NOV_SEG], n))),
                    "resource is in segment {0}; the identity has only worked in {1}",
                    (seg, p.segs),
                )
            )
        thr = p.nr[3]
        if nr_c >= thr:
            if hits is None:
                hits = []
            hits.append(
                (
                    S.ENUMERATION,
                    _over(w[S.ENUMERATION], nr_c / thr),
                    "{0:.0f} never-seen resources within about {1:.0f} s (usual: {2:.1f})",
                    (nr_c, self.enum_w, p.nr[1]),
                )
            )
        return hits

    def _travel(self, hits: list[Hit], p: Profile, region: str, t: float) -> None:
        last = p.last_region
        if last is None or last == region:
            return
        here = locate(region)
        there = locate(last)
        if here is None or there is None:
            return
        km = distance_km(here[0], there[0])
        if km < self.travel_min_km:
            return
        hours = max(t - p.last_region_t, 60.0) / 3600.0
        speed = km / hours
        if speed <= self.travel_kmh:
            return
        approx = "" if here[1] and there[1] else " (approximate: region placed by its prefix)"
        hits.append(
            (
                S.IMPOSSIBLE_TRAVEL,
                self.w[S.IMPOSSIBLE_TRAVEL],
                "{0!r} is {1:.0f} km from {2!r}, where it was {3} ago ({4:.0f} km/h){5}",
                (region, km, last, Ago(t - p.last_region_t), speed, approx),
            )
        )

    def _hour(self, p: Profile, slot: int, n: int, it: int) -> Hit | None:
        """``unusual_hour``: the hour (+-1) is rare this weekday; judged against the same hour on
        every day when the history is shorter than two weeks or the hour is common on other days."""
        how = p.how
        hour = slot % 24
        near = how[slot - 1] + how[slot] + how[slot + 1 if slot < 167 else 0]
        day_share = 0
        for d in range(0, 168, 24):
            day_share += how[d + hour - 1 if hour else d + 23] + how[d + hour] + how[d + (hour + 1) % 24]
        uniform_day = n * 3 / 24
        weekday = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[slot // 24]
        if day_share >= 0.3 * uniform_day:
            if it - p.first_seen < 14 * DAY or near > 0:
                return None
            return (
                S.UNUSUAL_HOUR,
                max(1, round(self.w[S.UNUSUAL_HOUR] * 0.5)),
                "{0} {1:02d}:00 UTC: never active then on a {0}, though usual at that hour on other days",
                (weekday, hour),
            )
        strength = 1.0 - day_share / (0.3 * uniform_day)
        return (
            S.UNUSUAL_HOUR,
            max(1, round(self.w[S.UNUSUAL_HOUR] * strength)),
            "{0} {1:02d}:00 UTC: {2:.1f}% of its activity falls within an hour of this time",
            (weekday, hour, 100.0 * day_share / n),
        )

    def _rate(self, c1: float, c2: float, rate: Any) -> Hit:
        """``rate_spike``: a decayed count at or above its threshold (see docs/behaviour.md)."""
        over1 = c1 / rate[6]
        over2 = c2 / rate[7]
        if over1 >= over2:
            count, over, mean, mad, span = c1, over1, rate[2], rate[3], "minute"
        else:
            count, over, mean, mad, span = c2, over2, rate[4], rate[5], "15 minutes"
        return (
            S.RATE_SPIKE,
            _over(self.w[S.RATE_SPIKE], over),
            "about {0:.0f} requests in the last {1} (usual: {2:.1f} +/- {3:.1f})",
            (count, span, mean, 1.25 * mad),
        )

    # -- learn -----------------------------------------------------------------------------------
    def learn(self, p: Profile, f: Features, learnable: bool, allowed: bool) -> None:
        """Update ``p`` after the decision from the features :meth:`assess` returned. Every
        request counts toward rate, new resources and the privilege chain; only a ``learnable`` one
        teaches what is normal."""
        (
            t,
            day,
            net,
            region,
            ua,
            aname,
            cls,
            sens,
            ri,
            res_state,
            c1,
            c2,
            nr_c,
            counted,
            chain_t,
            top,
            climbs,
            chain_sens,
            it,
        ) = f
        if allowed:
            p.allowed += 1
        else:
            p.denied += 1
        if t > p.last_seen:
            p.last_seen = t
        p.dirty = True
        rate = p.rate
        rate[0] = c1
        rate[1] = c2
        if t > p.rate_t:
            p.rate_t = t
        if counted:
            self._count_new(p, ri, nr_c, t)
        if cls or sens:
            p.chain_t = chain_t
            p.chain_top = top
            p.chain_climbs = climbs
            p.chain_sens = chain_sens
        if not learnable:
            return
        p.learned += 1
        if t - p.rate_fold_t >= FOLD_S or t < p.rate_fold_t:
            self._fold_rate(p, c1, c2, t)
        if counted:
            self._fold_new(p, nr_c)
        p.how[(it // 3600 + 72) % 168] += 1
        p.n += 1
        if p.n >= HALVE_AT or t - p.decay_t > self.forget_s:
            self._decay(p, t)
        if region is not None:
            if p.regions.get(region) != day:
                self._learn_context(p, "r:", region, p.regions, CAPS["region"], NOV_REGION, day, t)
            if p.last_region != region:
                p.last_region = self.intern(region)
            p.last_region_t = t
        if net is not None and p.nets.get(net) != day:
            self._learn_context(p, "n:", net, p.nets, CAPS["net"], NOV_NET, day, t)
        if ua is not None and p.uas.get(ua) != day:
            self._learn_context(p, "u:", ua, p.uas, CAPS["ua"], NOV_UA, day, t)
        if p.actions.get(aname) != day:
            self._learn_action(p, aname, day)
        if p.class_day[cls] != day:
            self._learn_class(p, cls, day)
        if res_state:
            self._learn_resource(p, ri, res_state, t)
        if p.rtypes.get(ri[3]) != day:
            self._learn_kind(p.rtypes, ri[3], NOV_RTYPE, p, day, CAPS["rtype"])
        seg = ri[4]
        if seg is not None and p.segs.get(seg) != day:
            self._learn_kind(p.segs, seg, NOV_SEG, p, day, CAPS["seg"])

    # -- learning helpers (rare paths) ---------------------------------------------------------------
    @staticmethod
    def _count_new(p: Profile, ri: ResourceInfo, nr_c: float, t: float) -> None:
        p.nr[0] = nr_c
        if t > p.nr_t:
            p.nr_t = t
        recent = p.nr_recent
        if recent is None:
            p.nr_recent = [ri[0]]
        else:
            recent.append(ri[0])
            if len(recent) > RECENT_NEW:
                del recent[0]

    def _decay(self, p: Profile, t: float) -> None:
        if p.n >= HALVE_AT:
            p.halve()
        if t - p.decay_t > self.forget_s:
            p.halve()
            p.decay_t = t

    def _learn_action(self, p: Profile, aname: str, day: int) -> None:
        actions = p.actions
        if aname not in actions:
            p.novelty[NOV_ACTION] += 1
            aname = self.intern(aname)
        remember(actions, aname, day, CAPS["action"])

    def _learn_class(self, p: Profile, cls: int, day: int) -> None:
        p.class_day[cls] = day
        self._known_max(p, day)

    def _known_max(self, p: Profile, day: int) -> int:
        """The highest class learned within the forgetting horizon (cached on the profile)."""
        cd = p.class_day
        forget = self.forget_days
        m = 2 if day - cd[2] <= forget else (1 if day - cd[1] <= forget else 0)
        p.max_cls = m
        p.max_cls_until = cd[m] + forget if day - cd[m] <= forget else day
        return m

    @staticmethod
    def _learn_kind(table: dict[str, int], key: str, kind: int, p: Profile, day: int, cap: int) -> None:
        if key not in table:
            p.novelty[kind] += 1
        remember(table, key, day, cap)

    def _drift(self, cls: int, known_max: int, aname: str) -> Hit:
        return (
            S.PRIVILEGE_DRIFT,
            max(1, round(self.w[S.PRIVILEGE_DRIFT] * (1.0 if cls - known_max >= 2 else 0.9))),
            "first {0} action ({1!r}); it has only used {2} actions",
            (CLASS_NAMES[cls], aname, " and ".join(CLASS_NAMES[: known_max + 1])),
        )

    def _learn_resource(self, p: Profile, ri: ResourceInfo, res_state: int, t: float) -> None:
        bloom = p.bloom
        bloom[ri[1]] |= ri[2]
        if res_state == 2:
            p.novelty[NOV_RESOURCE] += 1
        p.bloom_n += 1
        if p.bloom_n >= BLOOM_ROTATE_AT or t - p.bloom_t > self.forget_s / 2:
            bloom[BLOOM_BYTES:] = bloom[:BLOOM_BYTES]
            bloom[:BLOOM_BYTES] = bytes(BLOOM_BYTES)
            p.bloom_n = 0
            p.bloom_t = t

    def _learn_context(
        self,
        p: Profile,
        prefix: str,
        value: str,
        table: dict[str, int],
        cap: int,
        kind: int,
        day: int,
        t: float,
    ) -> None:
        """A region, network or user agent: known ones are refreshed; a new one is a candidate
        until it has been seen for ``establish_s`` (so one request cannot make itself normal)."""
        d = table.get(value)
        if d is not None and day - d <= self.forget_days:
            table[value] = day
            return
        if self.establish_s <= 0 or p.n <= 1:
            # no establishment period, or the identity's very first learned request
            if d is None:
                p.novelty[kind] += 1
            self._establish(table, value, kind, day, cap)
            return
        key = prefix + value
        cand = p.cand
        if cand is None:
            cand = p.cand = {}
        first = cand.get(key)
        if first is None:
            if len(cand) >= CAND_CAP:
                del cand[next(iter(cand))]  # the oldest candidate (insertion order)
            cand[key] = t
            p.novelty[kind] += 1
        elif t - first >= self.establish_s:
            del cand[key]
            if not cand:
                p.cand = None
            self._establish(table, value, kind, day, cap)

    def _establish(self, table: dict[str, int], value: str, kind: int, day: int, cap: int) -> None:
        remember(table, self.intern(value), day, cap)
        if kind == NOV_NET:  # the wider network (/16, /32) too: a new /24 inside it is less new
            remember(table, self.intern(_wide(value)), day, cap)

    def _fold_rate(self, p: Profile, c1: float, c2: float, t: float) -> None:
        rate = p.rate
        p.rate_fold_t = t
        k = p.rate_n = p.rate_n + 1
        a = 1.0 / k if k < 100 else BASELINE_ALPHA
        mean = rate[2]
        mad = rate[3]
        if k > MIN_SAMPLES:
            cap = mean + 2.5 * mad + 0.5
            if c1 > cap:
                c1 = cap
        delta = c1 - mean
        rate[2] = mean = mean + a * delta
        rate[3] = mad = mad + a * ((delta if delta >= 0.0 else -delta) - mad)
        mean2 = rate[4]
        mad2 = rate[5]
        if k > MIN_SAMPLES:
            cap = mean2 + 2.5 * mad2 + 0.5
            if c2 > cap:
                c2 = cap
        delta = c2 - mean2
        rate[4] = mean2 = mean2 + a * delta
        rate[5] = mad2 = mad2 + a * ((delta if delta >= 0.0 else -delta) - mad2)
        if k >= MIN_SAMPLES:
            rate[6] = _threshold(self.rate_min, mean, mad, RATIO1)
            rate[7] = _threshold(self.rate_min2, mean2, mad2, RATIO2)

    def _fold_new(self, p: Profile, c: float) -> None:
        nr = p.nr
        k = p.nr_n = p.nr_n + 1
        a = 1.0 / k if k < 100 else BASELINE_ALPHA
        mean = nr[1]
        mad = nr[2]
        if k > MIN_SAMPLES:
            cap = mean + 2.5 * mad + 0.5
            if c > cap:
                c = cap
        delta = c - mean
        nr[1] = mean = mean + a * delta
        nr[2] = mad = mad + a * ((delta if delta >= 0.0 else -delta) - mad)
        if k >= MIN_SAMPLES:
            nr[3] = _threshold(self.enum_min, mean, mad, ENUM_RATIO)

    # -- verdicts ----------------------------------------------------------------------------------
    def note_high(self, p: Profile, t: float) -> int:
        """Record a high-risk decision of ``p`` at ``t``; the number within the quarantine window."""
        high = p.high
        if high is None:
            high = p.high = []
        high.append(t)
        start = t - self.quarantine_window_s
        while high and high[0] < start:
            del high[0]
        if len(high) > self.quarantine_after:
            del high[: len(high) - self.quarantine_after]
        p.dirty = True
        return len(high)


__all__ = ["ADMIN", "NO_THRESHOLD", "READ", "WRITE", "BehaviourModel"]
