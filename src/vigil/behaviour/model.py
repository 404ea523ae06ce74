"""The behaviour model: signals of a request against its identity's profile, and learning.

Two steps, always in this order (ARCHITECTURE section 2):

1. :meth:`BehaviourModel.assess` reads the request into typed :class:`Features`
   (:meth:`~BehaviourModel.features`: event time, network, region, user agent, action class,
   resource info) and judges them against the profile (:meth:`~BehaviourModel.judge`, a pure
   function of the two), one detector per signal family: context novelty (region, network, user
   agent, impossible travel), time (unusual hour), privilege (drift, new action, escalation
   chain), resources (new resource, segment crossing, enumeration), rate (rate spike). It returns
   an :class:`~vigil.behaviour.signals.Assessment` (risk, signals, explanations) and the features.
2. :meth:`BehaviourModel.learn` runs after the decision, on those features. Every request updates
   the identity's counters of what it *attempts* (rate, new resources, privilege chain); only a
   request that was allowed (or, in shadow mode, would have been) teaches the profile what is
   normal: hours, regions, networks, user agents, actions, classes, resources, segments and the
   usual rates. So a request can never raise its own allowance, and a denied attacker cannot train
   the baseline. ``assess`` given the decision calls the same ``learn`` at once (one pass).

Everything is O(1) per request: table lookups, a few counters, one bitmap probe. Thresholds are
computed when the profile learns, not when it is read. Explanations are kept as a template and
its arguments and formatted only when read. This is the hottest code after the policy evaluator:
compiled, every step above is a C function (model.pxd) and :class:`Features` and
:class:`ResourceInfo` are structs, so the split costs no Python call; rare branches (a new value,
a spike) call further helpers.
"""

from __future__ import annotations

import math
import zlib
from array import array
from ipaddress import ip_address, ip_network
from socket import AF_INET, inet_pton
from typing import Any, Final

from vigil.behaviour import signals as S
from vigil.behaviour.arguments import argument_keys
from vigil.behaviour.context import ContextReader
from vigil.behaviour.credentials import workstation
from vigil.behaviour.peers import WORK, work_uid
from vigil.behaviour.privilege import ADMIN, CLASS_NAMES, READ, WRITE, ActionClasses, tool_class
from vigil.behaviour.profile import (
    BLOOM_BITS,
    BLOOM_BYTES,
    BLOOM_ROTATE_AT,
    CAPS,
    HALVE_AT,
    NO_THRESHOLD,
    NOV_ARG,
    NOV_FOR,
    NOV_IDENT,
    NOV_NET,
    NOV_REGION,
    NOV_UA,
    RECENT_NEW,
    RES_SAMPLE,
    Profile,
    remember,
)
from vigil.behaviour.regions import distance_km, locate
from vigil.behaviour.sessions import parse_rules
from vigil.behaviour.settings import BehaviourSettings
from vigil.behaviour.signals import Ago, Assessment, Hit, Unknown, combine
from vigil.model.timefmt import _MINUTES
from vigil.model.uid import EntityUid
from vigil.policy.entities import Entity, EntityStore
from vigil.policy.extensions import IPAddr

DAY: Final = 86_400
RESOURCE_CACHE: Final = 262_144
INTERN_LIMIT: Final = 1_000_000
CAND_CAP: Final = 32
BASELINE_ALPHA: Final = 0.01
MIN_SAMPLES: Final = 20
RATE_TAU1: Final = 60.0
RATE_TAU2: Final = 900.0
# the profile tables' caps by name (C integers when compiled, like the constants above: model.pxd)
CAP_REGION: Final = CAPS["region"]
CAP_NET: Final = CAPS["net"]
CAP_UA: Final = CAPS["ua"]
CAP_ACTION: Final = CAPS["action"]
CAP_RTYPE: Final = CAPS["rtype"]
CAP_SEG: Final = CAPS["seg"]
CAP_ARG: Final = CAPS["arg"]
TOOL_CACHE: Final = 65_536
CREDENTIALS_PER_IDENTITY: Final = 8
MAX_CREDENTIAL_ID: Final = 256
_NO_ARGS: Final[tuple[str, ...]] = ()
RATIO1: Final = 4.0  # a per-minute count is unusual from 4x its usual level ...
RATIO2: Final = 5.0  # ... a per-quarter-hour count from 5x (a busy day is 2-4x, a runaway 10x+)
ENUM_RATIO: Final = 4.0
MAD_Z: Final = 7.5  # 7.5 mean absolute deviations ~ 6 standard deviations
FOLD_S: Final = 30.0  # the usual rates learn from every 4th learned request, at most every 30 s
_NEVER: Final = -(10**9)
_LN10: Final = math.log(10.0)
INFORMATIVE: Final = 10**0.625  # novelty rates above 1 / 4.2 carry no signal (see _strength)
FEW: Final = 1.7  # strength scale of the few-valued kinds (regions, user agents, segments)
UNTRACKED_NEW_KIND: Final = 3  # resource state: not tracked, but of a new type or segment
_USED: Final = ("read", "read and write", "read, write and admin")
_OWN: Final = frozenset({S.IMPOSSIBLE_TRAVEL, S.ENUMERATION, S.RATE_SPIKE})
"""Signals of an identity's own history, never judged against its peers' profile."""

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


class ResourceInfo:
    """What the model keeps of one resource, computed once (on its Entity, or in the model's own
    table): ``h`` its stable hash (CRC-32 of ``Type::id``), ``byte`` and ``mask`` its bit in a
    resource bitmap, ``rtype`` its type and ``seg`` its segment (None: in no configured segment)."""

    __slots__ = ("byte", "h", "mask", "rtype", "seg")

    def __init__(self, h: int, byte: int, mask: int, rtype: str, seg: str | None) -> None:
        self.h = h
        self.byte = byte
        self.mask = mask
        self.rtype = rtype
        self.seg = seg


class Features:
    """One request as the detectors read it, and what learning takes from it.

    Read from the request (:meth:`BehaviourModel.features`): ``t`` the event time (epoch
    seconds), ``it`` its whole second, ``day`` its day number (one shared int object per day),
    ``hour_ok`` (False: ``context.time`` was not trusted), ``net`` (the /24 or /48 key), ``region``,
    ``ua`` (the user-agent family), ``mask`` (bits of the missing context fields), ``unknown`` (the
    malformed ones, with why; None when none), ``aname``, ``cls`` and ``sens`` (the action's name,
    privilege class and sensitivity; for a tool call, the tool's name and class: see
    :meth:`BehaviourModel.tool_class`), ``resource`` and its ``ri``, ``args`` (the places the
    call's ``context.arguments`` reach, :func:`vigil.behaviour.arguments.argument_keys`),
    ``cid`` (``context.credential_id``: the credential the request was made with, when the PEP
    names it; None otherwise) and ``place`` (where it was used from, :func:`_place`; None without
    a ``cid``); ``path`` the :class:`~vigil.escalation.reach.PathStep` this
    request takes (a step of a path to admin, known from the workspace's escalation graph) or None.

    Derived against the profile by the detectors (:meth:`BehaviourModel.judge`), for
    :meth:`BehaviourModel.learn`: ``net`` widened to /16 (/32) for an identity whose networks
    churn; ``fresh`` (every value was already learned today: learning only moves counters);
    ``novel_step`` (a privilege step new for the identity); ``tracked`` and ``res_state`` (0 known,
    1 only in the older bitmap, 2 new, 3 not tracked but of a new type or segment); ``nr_c`` and
    ``counted`` (the never-seen-resource count, and whether this request adds to it); ``c1`` and
    ``c2`` (request counts over about a minute and a quarter hour); the privilege chain after this
    request (``chain_t`` its start, ``top``, ``climbs``, ``chain_sens``).

    A plain record: compiled, an extension type with C fields (model.pxd); built without
    ``__init__`` on the hot path (``__init__`` is what mypy reads the field types from)."""

    __slots__ = (
        "aname",
        "args",
        "bad",
        "c1",
        "c2",
        "chain_sens",
        "chain_t",
        "cid",
        "climbs",
        "cls",
        "counted",
        "cred",
        "day",
        "fresh",
        "hour_ok",
        "it",
        "mask",
        "net",
        "novel_step",
        "nr_c",
        "path",
        "place",
        "region",
        "res_state",
        "resource",
        "ri",
        "sens",
        "t",
        "top",
        "tracked",
        "ua",
        "unknown",
    )

    def __init__(self) -> None:
        self.t = 0.0
        self.it = 0
        self.day: Any = None
        self.hour_ok = True
        self.net: str | None = None
        self.region: str | None = None
        self.ua: str | None = None
        self.mask = 0
        self.unknown: list[Unknown] | None = None
        self.aname = ""
        self.args: tuple[str, ...] = ()
        self.cls = 0
        self.sens = False
        self.resource: EntityUid = ("", "")
        self.ri = ResourceInfo(0, 0, 0, "", None)
        self.fresh = False
        self.novel_step = False
        self.tracked = True
        self.res_state = 0
        self.nr_c = 0.0
        self.counted = False
        self.c1 = 0.0
        self.c2 = 0.0
        self.chain_t = 0.0
        self.top = 0
        self.climbs = 0
        self.chain_sens = 0
        self.cred: str | None = None
        self.cid: str | None = None
        self.place: str | None = None
        self.bad: str | None = None
        self.path: Any = None


def _strength(novel: float, n: float, scale: float = 2.5) -> float:
    """How surprising a new value is for an identity that saw ``novel`` new values in ``n``
    learned requests: ``-log10(rate) / scale``, 1.0 when new values are rarer than 1 in
    ``10**scale`` (~300; ~50 for the few-valued kinds: regions, user agents, segments), and 0.0
    (no signal) when more than about 1 in 4 learned requests brought a new value: for such an
    identity a new value carries no information."""
    r = (novel + 1.0) / (n + 2.0)
    if r * INFORMATIVE >= 1.0:
        return 0.0
    s = -math.log(r) / (scale * _LN10)
    return 1.0 if s >= 1.0 else (0.25 if s < 0.25 else s)


def _wide(net: str) -> str:
    """The wider network of a network key, as a table key: ``10.40.8.0/24`` -> ``10.40.*``,
    ``2001:db8:1::/48`` -> ``2001:db8:*``."""
    if "." in net:
        return net[: net.find(".", net.find(".") + 1) + 1] + "*"
    return net[: net.find(":", net.find(":") + 1) + 1] + "*"


def _group_strength(g: Profile, p: Profile, kind: int, value: str) -> float:
    """A group's second opinion on a region, network or user agent ``value`` new to member ``p``:
    the group's own surprise when it never used the value either, -1.0 when it did (the value is
    normal among these peers), 0.0 when the group cannot say (no history; networks that churn)."""
    if not g.n or (kind == NOV_NET and (p.net_wide or g.net_wide)):
        return 0.0
    gtable = g.regions if kind == NOV_REGION else (g.nets if kind == NOV_NET else g.uas)
    if value in gtable:
        return -1.0
    return _strength(g.novel(kind), g.n, 2.5 if kind == NOV_NET else FEW)


def _latest(table: dict[str, int]) -> str:
    """The key of ``table`` learned most recently (the highest day; the first of equals), or ""."""
    best = ""
    day = -(10**18)
    for key, d in table.items():
        if d > day:
            best, day = key, d
    return best


def _arg_kind(key: str) -> int:
    """The novelty kind of an ``args`` key: a subject acted for (``for:``), an identifier
    (``name=value``) or a place (``path:``, ``host:``, ``mail:``)."""
    if key.startswith("for:"):
        return NOV_FOR
    if key.startswith(("path:", "host:", "mail:")):
        return NOV_ARG
    return NOV_IDENT


def _place(f: Features) -> str | None:
    """Where a request came from, for ``credential_two_places``: its /16 (IPv6 /32) network and its
    region (``10.40.*|eu-west-1``); None when it has neither."""
    net = f.net
    region = f.region
    if net is None and region is None:
        return None
    return (_wide(net) if net is not None else "") + "|" + (region if region is not None else "")


def _inside_known(net: str, table: dict[str, int]) -> bool:
    """Is ``net`` inside the wider network (/16, /32) of a network in ``table``?"""
    prefix = _wide(net)[:-1]
    return any(k.startswith(prefix) for k in list(table))


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


def _ewma(mean: float, mad: float, sample: float, a: float, capped: bool) -> tuple[float, float]:
    """The smoothed ``mean`` and mean absolute deviation ``mad`` moved toward ``sample`` by ``a``,
    the sample first capped at mean + 2.5 deviations once the baseline is trusted (``capped``), so
    one burst cannot raise its own bar. Returns the new (mean, deviation)."""
    if capped:
        cap = mean + 2.5 * mad + 0.5
        if sample > cap:
            sample = cap
    delta = sample - mean
    mean = mean + a * delta
    mad = mad + a * ((delta if delta >= 0.0 else -delta) - mad)
    return mean, mad


def _exp(x: float) -> float:
    """e ** x. Written as a power of a float literal so that, compiled, it is one C ``pow`` call
    on doubles (``math.exp`` would be a Python call on boxed floats); the same ``pow`` runs in
    pure Python, so both agree to the bit."""
    y: float = 2.718281828459045**x  # typeshed: float ** float may be complex (not for e > 0)
    return y


def _recent_has(recent: array[int], value: int) -> bool:
    """``value in recent`` for the profile's window of recent new-resource hashes. Compiled, a loop
    over the array's C items (``in`` on an array makes an int object of each item it compares)."""
    items = recent
    for i in range(len(items)):  # noqa: SIM110 - compiled, any() over a generator allocates one
        if items[i] == value:
            return True
    return False


def fold(c: float, ref: float, d: float, t: float, tau: float) -> float:
    """Two exponentially decayed counts (time constant ``tau``) merged: ``c`` as of ``ref`` and
    ``d`` as of ``t``, as one count as of ``max(ref, t)``. Exact: the decayed count of the union
    of two sets of events is the sum of their decayed counts brought to one instant (``e**(-dt /
    tau)``). An empty ``c`` (``ref`` of 0.0) or a gap of more than 150 time constants keeps
    only the newer count (the older one is below 1e-65). Never fails."""
    if t >= ref:
        dt = ref - t
        return d + (c * _exp(dt / tau) if dt > -150.0 * tau else 0.0)
    dt = t - ref
    return c + (d * _exp(dt / tau) if dt > -150.0 * tau else 0.0)


def _note_unknown(f: Features, name: str, why: str) -> None:
    """Signal ``name`` cannot be judged for ``f``: a context field it reads is malformed (``why``)."""
    if f.unknown is None:
        f.unknown = []
    f.unknown.append((name, why))


def _count_new(p: Profile, ri: ResourceInfo, nr_c: float, t: float) -> None:
    """Count a resource new to ``p`` at ``t``: the decayed level ``nr_c``, the window of recent
    new-resource hashes (the last RECENT_NEW) and the own count (``nr_k``, shared)."""
    p.nr_c = nr_c
    p.nr_k += 1
    if t > p.nr_t:
        p.nr_t = t
    recent = p.nr_recent
    if recent is None:
        p.nr_recent = array("I", (ri.h,))
    else:
        recent.append(ri.h)
        if len(recent) > RECENT_NEW:
            del recent[0]


class BehaviourModel:
    """Signals and learning for one workspace generation (settings, action classes, segments)."""

    __slots__ = (
        "_acls",
        "_day",
        "_off",
        "_regions_ok",
        "_resources",
        "_segment_types",
        "_segment_uids",
        "_skew",
        "_tools",
        "_uas",
        "bad_networks",
        "chain_s",
        "classes",
        "cred_window",
        "deny_risk",
        "enforce",
        "enum_min",
        "enum_w",
        "establish_s",
        "forget_days",
        "forget_s",
        "learned_out",
        "learning_requests",
        "learning_s",
        "min_history",
        "off",
        "peers",
        "quarantine_after",
        "quarantine_risk",
        "quarantine_window_s",
        "rate_min",
        "rate_min2",
        "rates_out",
        "reader",
        "sessions",
        "settings",
        "step_up_risk",
        "store",
        "strings",
        "tool_actions",
        "tool_hints",
        "travel_kmh",
        "travel_min_km",
        "w",
    )

    def __init__(
        self,
        settings: BehaviourSettings,
        store: EntityStore | None = None,
        strings: dict[str, str] | None = None,
        tool_hints: dict[EntityUid, dict[str, bool]] | None = None,
        outbox: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.enforce = settings.mode == "enforce"
        self.off = settings.mode == "off"  # assess returns calm and learns nothing
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
        self._day = -1
        self._skew = float(settings.max_time_skew_s)
        self._uas = self.reader.ua_cache
        self._regions_ok: set[str] = set()
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
        self.sessions = parse_rules(settings.sessions)
        self.peers = settings.peers
        self.bad_networks = tuple(ip_network(c, strict=False) for c in settings.bad_networks)
        # tool calls: classed by the tool (its MCP annotations, else its name), not the action
        self.tool_actions = frozenset(settings.tool_actions)
        self.tool_hints: dict[EntityUid, dict[str, bool]] = tool_hints if tool_hints is not None else {}
        self._tools: dict[EntityUid, tuple[int, bool, str]] = {}
        self.cred_window = float(settings.credential_window_s)
        # sharing across processes (vigil.behaviour.shared.Outbox; None: alone): the profiles
        # with requests to announce, and the values learned for the first time
        self.rates_out: list[Profile] | None = outbox.rates if outbox is not None else None
        self.learned_out: list[tuple[Profile, str, Any, int]] | None = (
            outbox.learned if outbox is not None else None
        )

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
        """Stable hash, bitmap position, type and segment of a resource (cached here for resources
        the entity store does not hold; stored ones keep it on their Entity, see :meth:`assess`)."""
        got = self._resources.get(resource)
        if got is not None:
            return got
        info = self._resource_info(resource)
        if len(self._resources) >= RESOURCE_CACHE:
            self._resources.clear()
        self._resources[resource] = info
        return info

    def _resource_info(self, resource: EntityUid) -> ResourceInfo:
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
        return ResourceInfo(h, bit >> 3, 1 << (bit & 7), self.intern(resource[0]), seg)

    def work_of(
        self, action: EntityUid, resource: EntityUid, entity: Entity | None = None
    ) -> EntityUid | None:
        """The learned peer group (:func:`vigil.behaviour.peers.work_uid`) of an identity whose
        request is ``action`` on ``resource`` (whose stored entity is ``entity``): the resource's
        segment (else its type) and the request's privilege class; None when ``work`` is not in
        ``[behaviour] peers`` or the resource is not one the workspace holds (a client cannot name
        a group into being)."""
        if WORK not in self.peers or entity is None:
            return None
        ri = entity.resource_info
        if ri is None:
            ri = entity.resource_info = self._resource_info(resource)
        if action[1] in self.tool_actions:
            cls = self.tool_class(resource, entity)[0]
        else:
            cls = self.classes.get(action)[0]
        return work_uid(ri.seg, ri.rtype, cls)

    def work_of_features(self, f: Features) -> EntityUid | None:
        """The learned peer group of an identity whose first learned request is ``f``."""
        if WORK not in self.peers:
            return None
        return work_uid(f.ri.seg, f.ri.rtype, f.cls)

    def work_of_profile(self, p: Profile) -> EntityUid | None:
        """The learned peer group of a restored profile: its most recently learned segment (else
        resource type) and its highest learned class; None when it has neither, or ``work`` is not
        in ``[behaviour] peers``."""
        if WORK not in self.peers:
            return None
        return work_uid(_latest(p.segs) or None, _latest(p.rtypes), p.max_cls)

    def tool_class(self, tool: EntityUid, entity: Entity | None = None) -> tuple[int, bool, str]:
        """``(class, sensitive, name)`` of a call of ``tool``: the MCP annotations the workspace
        declares on its entity (``readOnlyHint``, ``destructiveHint``: the operator's word, which
        may class a tool below its name) or, failing those, its name, raised (never lowered) by the
        annotations its upstream published (:meth:`note_tool`: an upstream is not trusted to make
        its own tool look harmless) (:func:`vigil.behaviour.privilege.tool_class`). Cached; never
        raises."""
        got = self._tools.get(tool)
        if got is not None:
            return got
        declared: dict[str, bool] | None = None
        if entity is not None:
            attrs = entity.attrs
            declared = {k: v for k in ("readOnlyHint", "destructiveHint") if type(v := attrs.get(k)) is bool}
        if declared:
            cls, sens = tool_class(tool[1], declared)
        else:
            # an upstream's own hints may say a tool does more than its name, never less
            cls, sens = tool_class(tool[1], self.tool_hints.get(tool), raise_only=True)
        got = (cls, sens, self.intern(tool[1]))
        if len(self._tools) >= TOOL_CACHE:
            self._tools.clear()
        self._tools[tool] = got
        return got

    def note_tool(self, tool: EntityUid, hints: dict[str, bool]) -> None:
        """The annotations an upstream publishes for ``tool`` (the MCP gateway tells them when it
        lists its upstreams' tools); a changed hint re-classes the tool's next call."""
        if self.tool_hints.get(tool) != hints:
            self.tool_hints[tool] = dict(hints)
            self._tools.pop(tool, None)

    def forget_tool(self, tool: EntityUid) -> None:
        """Drop what an upstream published for ``tool`` (it no longer lists it): its next call is
        classed by the workspace and its name only."""
        if self.tool_hints.pop(tool, None) is not None:
            self._tools.pop(tool, None)

    def is_learning(self, p: Profile | None, t: float) -> bool:
        """True while ``p`` has not yet learned enough (requests and days) to be enforced."""
        return p is None or p.learned < self.learning_requests or t - p.first_seen < self.learning_s

    # -- assess: features, then one detector per signal family -------------------------------------
    def assess(
        self,
        p: Profile | None,
        action: EntityUid,
        resource: EntityUid,
        ctx: dict[str, Any],
        when: float,
        allowed: bool | None = None,
        resource_entity: Entity | None = None,
        ip: IPAddr | None = None,
        on_behalf: str | None = None,
        path: Any = None,
    ) -> tuple[Assessment, Features | None]:
        """Signals of one request against ``p`` (None: the identity's first request):
        :meth:`features` of the request, then :meth:`judge` (a pure function of the profile and
        the features).

        ``ctx`` is the raw JSON context; ``when`` the decision time (epoch seconds).

        ``allowed`` None: nothing changes; the request's features are returned for :meth:`learn`.
        ``allowed`` the final decision (the policy's, which behaviour will not change because the
        risk stays below step-up or the identity is learning): :meth:`learn` runs at once and the
        features returned are None. When the risk would change the decision, nothing is learned
        yet and the features are returned: the engine combines, then calls :meth:`learn` with the
        final decision. Both ways run the same :meth:`learn` on the same features.

        ``resource_entity``: the stored entity of ``resource`` when the caller has it (the engine
        does); its resource info is kept on it. ``ip``: the caller's Cedar value of ``ctx["ip"]``
        when it parsed one (the engine's context conversion does), so it is not parsed twice.
        ``on_behalf``: for a delegated request assessed on its acting agent's profile, the subject
        it acts for (``for:Type::"id"``), learned and judged like the places of its arguments
        (``new_on_behalf``).
        ``path``: the step of a path to admin this request is (``[escalation] reach``:
        :class:`~vigil.escalation.reach.PathStep`), which raises ``escalation_path``; None: none.

        ``[behaviour] mode = "off"``: a calm assessment and no features, whatever ``allowed`` is;
        nothing is read or learned.
        """
        if self.off:
            return _CALM[0][False], None
        f = self.features(action, resource, ctx, when, resource_entity, ip, on_behalf)
        f.path = path
        if p is None:
            return self._first(f), f
        if p.x_t != 0.0:  # other processes' counts arrived (vigil.behaviour.shared)
            self._merge(p)
        a = self.judge(p, f)
        if allowed is None or (a.risk >= self.step_up_risk and not a.learning):
            return a, f
        self.learn(p, f, allowed, allowed)
        return a, None

    def features(
        self,
        action: EntityUid,
        resource: EntityUid,
        ctx: dict[str, Any],
        when: float,
        resource_entity: Entity | None = None,
        ip: IPAddr | None = None,
        on_behalf: str | None = None,
    ) -> Features:
        """What the detectors read of one request (see :class:`Features`), from the request alone."""
        f = Features.__new__(Features)
        f.mask = 0
        f.unknown = None
        self._read_time(f, ctx.get("time"), when)
        self._read_network(f, ctx.get("ip"), ip)
        self._read_region(f, ctx.get("region"))
        self._read_user_agent(f, ctx.get("user_agent"))
        source = ctx.get("credential_source")
        f.cred = None if source is None else self._credential(source, ctx.get("user_agent"))
        cid = ctx.get("credential_id")
        f.cid = cid if type(cid) is str and 0 < len(cid) <= MAX_CREDENTIAL_ID else None
        f.place = None if f.cid is None else _place(f)
        f.bad = self._bad_network(ctx.get("ip")) if self.bad_networks else None
        f.path = None
        aname = action[1]
        if aname in self.tool_actions:
            tc = self._tools.get(resource)
            if tc is None:
                tc = self.tool_class(resource, resource_entity)
            f.cls = tc[0]
            f.sens = tc[1]
            f.aname = tc[2]
            arguments = ctx.get("arguments")
            f.args = _NO_ARGS if arguments is None else argument_keys(arguments)
        else:
            ac = self._acls.get(action)
            cls, sens = ac if ac is not None else self.classes.get(action)
            f.cls = cls
            f.sens = sens
            f.aname = aname
            f.args = _NO_ARGS
        if on_behalf is not None:
            f.args = (*f.args, on_behalf)
        f.resource = resource
        if resource_entity is not None:
            ri = resource_entity.resource_info
            if ri is None:
                ri = resource_entity.resource_info = self._resource_info(resource)
        else:
            ri = self._resources.get(resource)
            if ri is None:
                ri = self.resource_info(resource)
        f.ri = ri
        it = int(f.t)
        f.it = it
        day = it // DAY
        if day == self._day:
            day = self._day  # one int object per day, shared by every table entry learned that day
        else:
            self._day = day
        f.day = day
        return f

    def _read_time(self, f: Features, v: Any, when: float) -> None:
        """``context.time``: the event time, or ``when`` (missing; or untrusted: the hour unknown)."""
        f.hour_ok = True
        if v is None:
            f.t = when
            return
        # the common "YYYY-MM-DDTHH:MM:SSZ" of a minute the one parser (model.timefmt) has read
        # already: its cached epoch plus two ASCII digits, inline; anything else parsed
        base = _MINUTES.get(v[:16]) if type(v) is str and len(v) == 20 and v[19] == "Z" else None
        sec = v[17:19] if base is not None else ""
        if (
            base is not None
            and v[16] == ":"
            and "0" <= sec[0] <= "5"
            and "0" <= sec[1] <= "9"
            and -self._skew <= base + int(sec) - when <= self._skew
        ):
            f.t = base + int(sec)
            return
        t, why = self.reader.event_time(v, when)
        f.t = t
        if why is not None:
            f.hour_ok = False
            _note_unknown(f, S.UNUSUAL_HOUR, why)

    def _read_network(self, f: Features, v: Any, ip: IPAddr | None) -> None:
        """``context.ip``: its network key (/24, /48), or missing, or unknown (malformed)."""
        if v is None:
            f.net = None
            f.mask |= _NO_IP
            return
        if (
            ip is not None
            and ip.version == 4
            and ip.prefix == 32
            and ip.text is not None
            and "/" not in ip.text
        ):
            # the caller's parse of this very value: a strict dotted quad, whose /24 is a slice
            iptext = ip.text
            f.net = iptext[: iptext.rfind(".")] + ".0/24"
            return
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
                _note_unknown(f, S.NEW_NETWORK, self.reader.network_why(v))
        f.net = net

    def _read_region(self, f: Features, region: Any) -> None:
        """``context.region``: the region, or missing, or unknown (malformed)."""
        if region is None:
            f.mask |= _NO_REGION
        elif type(region) is str and region in self._regions_ok:
            pass
        elif type(region) is str and 0 < len(region) <= 64 and region.isprintable():
            if len(self._regions_ok) < 4_096:
                self._regions_ok.add(region)
        else:
            _note_unknown(f, S.NEW_REGION, self.reader.region_why(region))
            _note_unknown(f, S.IMPOSSIBLE_TRAVEL, self.reader.region_why(region))
            region = None
        f.region = region

    def _read_user_agent(self, f: Features, v: Any) -> None:
        """``context.user_agent``: its family, or missing, or unknown (malformed)."""
        if v is None:
            f.ua = None
            f.mask |= _NO_UA
            return
        ua = self._uas.get(v) if type(v) is str else None
        if ua is None:
            ua = self.reader.user_agent(v)
        if ua is None:
            _note_unknown(f, S.NEW_USER_AGENT, self.reader.user_agent_why(v))
        f.ua = ua

    def _credential(self, source: Any, user_agent: Any) -> str | None:
        """``credential_misuse`` evidence: the workstation platform a workload-bound credential
        (``context.credential_source``) is used from, or None (:mod:`vigil.behaviour.credentials`)."""
        if type(source) is not str or not source:
            return None
        platform = workstation(user_agent)
        return None if platform is None else f"{source}|{platform}"

    def _bad_network(self, v: Any) -> str | None:
        """The ``[behaviour] bad_networks`` entry ``context.ip`` is in (as text), or None (not in
        one, missing or malformed)."""
        if type(v) is dict:
            ext = v.get("__extn")
            v = ext.get("arg") if type(ext) is dict and ext.get("fn") == "ip" else None
        if type(v) is not str:
            return None
        try:
            addr = ip_address(v.partition("/")[0])
        except ValueError:
            return None
        for net in self.bad_networks:
            if addr.version == net.version and addr in net:
                return str(net)
        return None

    def _evident(self, hits: list[Hit] | None, f: Features) -> list[Hit] | None:
        """The signals that need no history, from the request alone: ``credential_misuse``,
        ``bad_network``, ``escalation_path``."""
        if f.path is not None:
            hits = self._path(hits, f)
        if f.cred is not None:
            hits = self._misuse(hits, f.cred)
        if f.bad is not None:
            if hits is None:
                hits = []
            hits.append(
                (
                    S.BAD_NETWORK,
                    self.w[S.BAD_NETWORK],
                    "from {0}, a known-bad network ([behaviour] bad_networks)",
                    (f.bad,),
                )
            )
        return hits

    def _path(self, hits: list[Hit] | None, f: Features) -> list[Hit]:
        """``escalation_path``: the request is one step of a path to admin of the workspace's
        escalation graph (the step, the path, the steps left after it)."""
        step = f.path
        if hits is None:
            hits = []
        hits.append(
            (
                S.ESCALATION_PATH,
                self.w[S.ESCALATION_PATH],
                "{0!r} on {1} is a step of a path to admin ({2}{3}); {4} steps remain after it",
                (
                    f.aname,
                    step.target,
                    step.path,
                    ", a step of it needs a request context" if step.conditional else "",
                    step.remaining,
                ),
            )
        )
        return hits

    def _judge_first(self, g: Profile, f: Features) -> Assessment:
        """The first request of an identity with a peer group ``g`` (and no history of its own):
        judged against what its peers have done (places, clients, actions and classes,
        resources, segments; not travel, rates or sweeps, which are an identity's own), graded by
        the group's backing. Then ``f`` is set up for learning as any first request
        (:meth:`_first`). Returns the assessment; never raises."""
        net = f.net
        f.fresh = True
        hits = self._context_signals(None, g, f)
        hits = self._privilege_signals(hits, g, f)
        hits = self._resource_signals(hits, g, f)
        if f.args:
            hits = self._argument_signals(hits, g, f)
        f.net = net  # the member keeps its own granularity
        calm = self._first(f)
        hits = self._evident(hits, f)
        if not hits:
            return calm
        kept = [h for h in hits if h[0] not in _OWN]
        if not kept:
            return calm
        for i in range(len(kept)):
            h = kept[i]
            kept[i] = (h[0], h[1], h[2] + " [its peers: first request]", h[3])
        return self._graded(kept, g, f)

    def _misuse(self, hits: list[Hit] | None, cred: str) -> list[Hit]:
        """``credential_misuse`` (evidence ``source|platform``, from :meth:`_credential`)."""
        source, _, platform = cred.partition("|")
        if hits is None:
            hits = []
        hits.append(
            (
                S.CREDENTIAL_MISUSE,
                self.w[S.CREDENTIAL_MISUSE],
                "a credential bound to a workload ({0}) is used from a workstation ({1})",
                (source, platform.rstrip("/")),
            )
        )
        return hits

    def _first(self, f: Features) -> Assessment:
        """The first request of an identity: no baseline, nothing to compare with; everything in
        it is new when it is learned. Only evidence that needs no history is judged
        (``credential_misuse``, ``bad_network``)."""
        f.fresh = False
        f.novel_step = False
        f.tracked = True
        f.res_state = 2
        f.c1 = 1.0
        f.c2 = 1.0
        f.nr_c = 1.0
        f.counted = True
        f.chain_t = f.t
        f.top = f.cls
        f.climbs = 0
        f.chain_sens = int(f.sens)
        if f.cred is not None or f.bad is not None or f.path is not None:
            # needs no history: judged (and enforced) from the first request
            hits = self._evident(None, f)
            if hits:
                return self._assessment(hits, f.mask, f.unknown, False)
        if f.unknown is None:
            return _CALM[f.mask][True]
        return Assessment(0, (), (), self._unknown(f.mask, f.unknown), True, len(f.unknown))

    def judge(self, p: Profile, f: Features) -> Assessment:
        """The signals of the request ``f`` against the profile ``p``: a pure function of the two
        (``p`` is read, never changed; each detector records in ``f`` what it derived, for
        :meth:`learn`). One detector per signal family, in the order their signals are listed."""
        if not p.n and p.base is not None:
            return self._judge_first(p.base, f)
        f.fresh = True  # until a detector finds a value not learned today
        hits = self._context_signals(None, p, f)
        hits = self._time_signals(hits, p, f)
        hits = self._privilege_signals(hits, p, f)
        hits = self._resource_signals(hits, p, f)
        if f.args:
            hits = self._argument_signals(hits, p, f)
        hits = self._rate_signals(hits, p, f)
        hits = self._chain_signals(hits, p, f)
        if f.t - p.link_t <= self.chain_s and (
            f.cls == ADMIN or f.path is not None or (f.novel_step and (f.cls or f.sens))
        ):
            hits = self._linked(hits, p, f)
        if f.cred is not None or f.bad is not None or f.path is not None:
            hits = self._evident(hits, f)
        if f.cid is not None and self.cred_window > 0.0:
            hits = self._two_places(hits, p, f)
        learning = p.learned < self.learning_requests or f.t - p.first_seen < self.learning_s
        if hits:
            if learning:
                return self._graded(hits, p, f)
            return self._assessment(hits, f.mask, f.unknown, False)
        if f.unknown is None:
            return _CALM[f.mask][learning]
        return Assessment(0, (), (), self._unknown(f.mask, f.unknown), learning, len(f.unknown))

    def _context_signals(self, hits: list[Hit] | None, p: Profile, f: Features) -> list[Hit] | None:
        """Context novelty: ``new_region`` and ``impossible_travel``, ``new_network``,
        ``new_user_agent``."""
        n = p.n
        day = f.day
        region = f.region
        if region is not None:
            d = p.regions.get(region)
            if d != day:
                f.fresh = False
                if n:
                    hits = self._region(hits, p, region, d, day, n, f.t)
        net = f.net
        if net is not None:
            if p.net_wide:  # this identity's /24s churn: judge its /16s
                net = f.net = _wide(net)
            d = p.nets.get(net)
            if d != day:
                f.fresh = False
                if (
                    n
                    and (d is None or day - d > self.forget_days)
                    and (p.nov_net + 1.0) * INFORMATIVE < n + 2.0
                ):
                    hits = self._context(hits, p, S.NEW_NETWORK, "n:", net, p.nets, NOV_NET, n, f.t)
        ua = f.ua
        if ua is not None:
            d = p.uas.get(ua)
            if d != day:
                f.fresh = False
                if (
                    n
                    and (d is None or day - d > self.forget_days)
                    and (p.nov_ua + 1.0) * INFORMATIVE < n + 2.0
                ):
                    hits = self._context(hits, p, S.NEW_USER_AGENT, "u:", ua, p.uas, NOV_UA, n, f.t)
        return hits

    def _time_signals(self, hits: list[Hit] | None, p: Profile, f: Features) -> list[Hit] | None:
        """Time: ``unusual_hour``."""
        n = p.n
        if not f.hour_ok or n < self.min_history:
            return hits
        how = p.how
        it = f.it
        slot = (it // 3600 + 72) % 168  # 1970-01-01 was a Thursday: slot 0 = Monday 00:00 UTC
        if (how[slot - 1] + how[slot] + how[slot + 1 if slot < 167 else 0]) * 560 < n * 3:
            # under 30% of a uniform share of the week (3 slots of 168)
            hit = self._hour(p, slot, n, it)
            if hit is not None:
                if hits is None:
                    hits = []
                hits.append(hit)
        return hits

    def _privilege_signals(self, hits: list[Hit] | None, p: Profile, f: Features) -> list[Hit] | None:
        """Privilege: ``privilege_drift`` and ``new_action`` (the chain is :meth:`_chain_signals`)."""
        n = p.n
        day = f.day
        aname = f.aname
        cls = f.cls
        f.novel_step = False
        d = p.actions.get(aname)
        if d != day:
            f.fresh = False
            if not n:
                return hits
            known_max = p.max_cls if day <= p.max_cls_until else self._known_max(p, day)
            if cls > known_max:
                f.novel_step = True
                if hits is None:
                    hits = []
                hits.append(self._drift(cls, known_max, aname))
            if d is None or day - d > self.forget_days:
                f.novel_step = True
                if cls <= known_max and (p.nov_action + 1.0) * INFORMATIVE < n + 2.0:
                    if hits is None:
                        hits = []
                    hits.append(
                        (
                            S.NEW_ACTION,
                            max(1, round(self.w[S.NEW_ACTION] * _strength(p.nov_action, n))),
                            "first use of action {0!r}; known: {1}",
                            (aname, p.actions),
                        )
                    )
        elif cls > p.max_cls:
            # a known action whose class was raised since it was learned (workspace change)
            f.fresh = False
            f.novel_step = True
            if hits is None:
                hits = []
            hits.append(self._drift(cls, p.max_cls, aname))
        return hits

    def _resource_signals(self, hits: list[Hit] | None, p: Profile, f: Features) -> list[Hit] | None:
        """Resources: ``new_resource``, ``segment_crossing``, ``enumeration``."""
        ri = f.ri
        n = p.n
        nr_c = 0.0
        counted = False
        tracked = not p.res_sat or not (p.allowed + p.denied) % RES_SAMPLE
        f.tracked = tracked
        if not tracked:
            # resources are mostly new for this identity: only their type and segment count
            f.res_state = 0
            if ri.rtype not in p.rtypes or (ri.seg is not None and ri.seg not in p.segs):
                f.fresh = False
                f.res_state = UNTRACKED_NEW_KIND
                if n:
                    hits = self._new_resource(hits, p, f.resource, ri, n, 0.0)
        elif p.bloom[ri.byte] & ri.mask:
            f.res_state = 0
        elif p.bloom[ri.byte + BLOOM_BYTES] & ri.mask:
            f.fresh = False
            f.res_state = 1
        else:
            f.fresh = False
            f.res_state = 2
            recent = p.nr_recent
            nr_c = p.nr_c
            if recent is None or not _recent_has(recent, ri.h):
                dt = f.t - p.nr_t
                if dt > 0:
                    nr_c = nr_c * _exp(-dt / self.enum_w) + 1.0
                else:
                    nr_c += _exp(dt / self.enum_w)
                counted = True
            if n and (
                (p.nov_resource + 1.0) * INFORMATIVE < p.res_n + 2.0
                or ri.rtype not in p.rtypes
                or (ri.seg is not None and ri.seg not in p.segs)
                or (counted and nr_c >= self.enum_min and n >= self.min_history)
            ):
                hits = self._new_resource(hits, p, f.resource, ri, n, nr_c if counted else 0.0)
        f.nr_c = nr_c
        f.counted = counted
        return hits

    def _argument_signals(self, hits: list[Hit] | None, p: Profile, f: Features) -> list[Hit] | None:
        """Arguments: ``new_argument``, a call of a tool the identity already uses reaching a place
        (path prefix, host, table) its calls never reached, or not within ``forget_days`` (one
        signal per request: the first such place; a tool's first call is new_action or
        privilege_drift already, and of course reaches new places); ``new_on_behalf``, a delegated
        request for a subject the acting agent never acted for (a ``for:`` key). Each kind of key
        (places; identifiers; subjects) has its own novelty count, and a kind that is new so often
        for this identity that novelty says nothing (as ``new_network``) is not judged: a request
        id new on every call silences identifiers only."""
        n = p.n
        if not n:
            for key in f.args:
                if p.args.get(key) != f.day:
                    f.fresh = False
            return hits
        day = f.day
        table = p.args
        known_tool = f.aname in p.actions
        for key in f.args:
            d = table.get(key)
            if d == day:
                continue
            f.fresh = False
            if d is not None and day - d <= self.forget_days:
                continue
            kind = _arg_kind(key)
            if kind == NOV_FOR:
                novel = p.nov_for
            elif not known_tool:
                continue  # a tool's first call: new_action or privilege_drift says it
            else:
                novel = p.nov_ident if kind == NOV_IDENT else p.nov_arg
            if (novel + 1.0) * INFORMATIVE >= n + 2.0:
                continue  # this kind is new so often for this identity that it says nothing
            if hits is None:
                hits = []
            if kind == NOV_FOR:
                hits.append(
                    (
                        S.NEW_ON_BEHALF,
                        max(1, round(self.w[S.NEW_ON_BEHALF] * _strength(novel, n))),
                        "first request on behalf of {0}; known: {1}",
                        (key[4:], {k[4:]: v for k, v in list(table.items()) if k.startswith("for:")}),
                    )
                )
            else:
                hits.append(
                    (
                        S.NEW_ARGUMENT,
                        max(1, round(self.w[S.NEW_ARGUMENT] * _strength(novel, n))),
                        "first call reaching {0!r} (with {1!r}); known: {2}",
                        (key, f.aname, {k: v for k, v in list(table.items()) if not k.startswith("for:")}),
                    )
                )
            return hits  # one signal a request: the first such place
        return hits

    def _rate_signals(self, hits: list[Hit] | None, p: Profile, f: Features) -> list[Hit] | None:
        """Rate: ``rate_spike``, on decayed request counts over about a minute and a quarter hour."""
        dt = f.t - p.last_seen
        if dt <= 0.0:
            # same instant, or a late event (logs arrive out of order): counted with the weight it
            # has at the newest time seen
            c1 = p.r1 + (_exp(dt / RATE_TAU1) if dt else 1.0)
            c2 = p.r2 + (_exp(dt / RATE_TAU2) if dt else 1.0)
        elif dt < 9_000.0:
            c1 = p.r1 * _exp(-dt / RATE_TAU1) + 1.0
            c2 = p.r2 * _exp(-dt / RATE_TAU2) + 1.0
        else:
            c1 = c2 = 1.0
        f.c1 = c1
        f.c2 = c2
        if c1 >= p.r1_thr or c2 >= p.r2_thr:
            if hits is None:
                hits = []
            hits.append(self._rate(c1, c2, p))
        return hits

    def _chain_signals(self, hits: list[Hit] | None, p: Profile, f: Features) -> list[Hit] | None:
        """Privilege: ``escalation_chain`` (plain reads neither start nor extend a chain)."""
        cls = f.cls
        sens = f.sens
        if not (cls or sens):
            f.chain_t = p.chain_t
            f.top = p.chain_top
            f.climbs = p.chain_climbs
            f.chain_sens = p.chain_sens
            return hits
        t = f.t
        if t - p.chain_t > self.chain_s:
            f.chain_t = t
            f.top = cls
            f.climbs = 0
            f.chain_sens = int(sens)
            return hits
        chain_t = f.chain_t = p.chain_t
        top = p.chain_top
        climbs = p.chain_climbs
        # the same sensitive action again (a retry after a step-up, a batch) is not another step
        chain_sens = f.chain_sens = p.chain_sens + (sens and f.aname != p.chain_last)
        if cls > top:
            climbs += 1
            top = cls
        f.top = top
        f.climbs = climbs
        if f.novel_step and (climbs >= 2 or chain_sens >= 2 or (climbs and sens and cls == ADMIN)):
            if hits is None:
                hits = []
            hits.append(
                (
                    S.ESCALATION_CHAIN,
                    self.w[S.ESCALATION_CHAIN],
                    "within {0}: {1} privilege climb(s) and {2} sensitive action(s), now {3!r}",
                    (Ago(t - chain_t), climbs, chain_sens, f.aname),
                )
            )
        return hits

    def _two_places(self, hits: list[Hit] | None, p: Profile, f: Features) -> list[Hit] | None:
        """``credential_two_places``: the request's credential was used from another place (the
        /16 (IPv6 /32) network and region) within ``credential_window_s``, and before that from
        this one, also within the window: two parties alternate with one credential (a copy
        in use beside its owner). One switch of place is not enough (a workload that moves, a
        person who travels). Not judged for an identity whose networks churn (``new_network``'s
        informative rule), nor without a network or region to compare."""
        cid = f.cid
        creds = p.creds
        if cid is None or creds is None:
            return hits
        got = creds.get(cid)
        if got is None:
            return hits
        place = f.place
        if place is None:
            return hits
        last_place, last_t, before, before_t = got
        t = f.t
        w = self.cred_window
        if place == last_place or place != before or t - last_t > w or t - before_t > w:
            return hits
        n = p.n
        if n >= self.min_history and (p.nov_net + 1.0) * INFORMATIVE >= n + 2.0:
            return hits
        if hits is None:
            hits = []
        hits.append(
            (
                S.CREDENTIAL_TWO_PLACES,
                self.w[S.CREDENTIAL_TWO_PLACES],
                "credential {0!r} is in use from two places at once: {1} now, {2} {3} ago, {1} {4} ago",
                (cid[:24], place, last_place, Ago(t - last_t), Ago(t - before_t)),
            )
        )
        return hits

    def note_credential(self, p: Profile, f: Features) -> None:
        """Where ``f``'s credential was used, on ``p`` (every decided request, learnable or not;
        called by :meth:`learn`): its last place and the one before. Kept per identity (a
        credential named by another identity's requests never mixes in), at most
        :data:`CREDENTIALS_PER_IDENTITY` credentials, the least recently used forgotten first."""
        place = f.place
        cid = f.cid
        if place is None or cid is None:
            return
        creds = p.creds
        if creds is None:
            creds = p.creds = {}
        got = creds.pop(cid, None)  # re-inserted below: the dict's order is the order of use
        t = f.t
        if got is None:
            if len(creds) >= CREDENTIALS_PER_IDENTITY:
                del creds[next(iter(creds))]
            creds[cid] = (place, t, None, 0.0)
        elif got[0] == place:
            creds[cid] = (place, t, got[2], got[3]) if t > got[1] else got
        else:
            creds[cid] = (place, t, got[0], got[1])

    def _graded(self, hits: list[Hit], p: Profile, f: Features) -> Assessment:
        """The assessment of a learning identity (learning is not a free pass).

        Each signal is graded by how much history backs it (:meth:`backing`, ``b``, the share of
        the learning period done). Impossible travel needs no history (two places too far apart
        too quickly) and keeps its points, as do ``credential_misuse`` (a workload's credential
        on a workstation), ``bad_network`` (a request from a known-bad network) and
        ``escalation_path`` (a step of a path to admin, known from the workspace's grants, not
        from the identity's history). An escalation chain and a first admin action
        (*high-severity* evidence) need little: their points are times ``min(1, 4 b)``, full once
        a quarter of the learning period backs them. Any other signal (novelty: a new region,
        network, user agent, hour, action, resource or segment; a rate or a sweep against a young
        baseline) is times ``b``. When the graded risk reaches ``step_up_risk`` the graded
        assessment is enforced (``learning`` False); otherwise the ungraded one is recorded, not
        enforced (``learning`` True), as before. Returns the assessment; never raises."""
        b = self.backing(p, f.t)
        if b >= 1.0:  # a quiet identity past learning_days: every signal is fully backed
            return self._assessment(hits, f.mask, f.unknown, False)
        graded: list[Hit] = []
        for h in hits:
            name = h[0]
            if (
                name == S.IMPOSSIBLE_TRAVEL
                or name == S.CREDENTIAL_MISUSE
                or name == S.BAD_NETWORK
                or name == S.CREDENTIAL_TWO_PLACES
                or name == S.ESCALATION_PATH
            ):
                graded.append(h)
                continue
            k = b
            if name == S.ESCALATION_CHAIN or (name == S.PRIVILEGE_DRIFT and f.cls == ADMIN):
                k = 4.0 * b
                if k >= 1.0:
                    graded.append(h)
                    continue
            pts = round(h[1] * k)
            if pts >= 1:
                args = h[3]
                graded.append(
                    (
                        name,
                        pts,
                        h[2] + " [learning: {" + str(len(args)) + ":.0f}% of its points]",
                        (*args, 100.0 * k),
                    )
                )
        if graded:
            a = self._assessment(graded, f.mask, f.unknown, False)
            if a.risk >= self.step_up_risk:
                return a
        return self._assessment(hits, f.mask, f.unknown, True)

    def backing(self, p: Profile, t: float) -> float:
        """How much history backs a learning identity's signals, 0..1: the share of
        ``learning_days`` elapsed since its first request (the time it takes to see an
        identity's rhythm: a busy identity reaches ``learning_requests`` on its first day,
        before its nightly or weekly work has shown), or, with ``learning_days = 0``, the share
        of ``learning_requests`` learned; 1.0 when both are 0. A quiet identity (two checks a
        day) is fully backed after ``learning_days``, however few its requests."""
        ls = self.learning_s
        if ls > 0:
            b = (t - p.first_seen) / ls
        elif self.learning_requests > 0:
            b = p.learned / self.learning_requests
        else:
            return 1.0
        return 1.0 if b > 1.0 else (0.0 if b < 0.0 else b)

    def _linked(self, hits: list[Hit] | None, p: Profile, f: Features) -> list[Hit]:
        """``escalation_chain`` across identities: another identity enabled this one (created a
        key for it, assumed it, granted it: :meth:`link`) within ``chain_window_s``, and this
        one now takes a privileged step new to it (or an admin one): one chain."""
        if hits is None:
            hits = []
        for h in hits:
            if h[0] == S.ESCALATION_CHAIN:  # a chain of its own already: one signal, not two
                return hits
        who = p.link_from
        hits.append(
            (
                S.ESCALATION_CHAIN,
                self.w[S.ESCALATION_CHAIN],
                "{0} after {1} {2} this identity, it takes a new privileged step {3!r}",
                (
                    Ago(f.t - p.link_t),
                    f"{who[0]}::{who[1]!r}" if who else "another identity",
                    "enabled",
                    f.aname,
                ),
            )
        )
        return hits

    def link(self, target: Profile, actor: Any, t: float) -> None:
        """``actor``'s allowed request ``f`` enabled ``target`` (an admin-class step whose resource
        is that identity: a key created for it, a role assumed, a grant to it): its next
        privileged steps within ``chain_window_s`` continue the actor's chain (:meth:`_linked`)."""
        target.link_t = t
        target.link_from = actor

    def _assessment(
        self, hits: list[Hit], mask: int, unknown: list[Unknown] | None, learning: bool
    ) -> Assessment:
        if self._off:  # signals switched off by a weight of 0
            hits = [h for h in hits if h[0] not in self._off]
            if not hits:
                if unknown is None:
                    return _CALM[mask][learning]
                return Assessment(0, (), (), self._unknown(mask, unknown), learning, len(unknown))
        if len(hits) == 1:
            h = hits[0]
            risk = h[1] if h[1] < 100 else 100
            names: tuple[str, ...] = (h[0],)
        else:
            risk = combine(hits)
            names = tuple([h[0] for h in hits])
        return Assessment(
            risk,
            names,
            tuple(hits),
            _UNKNOWN_BY_MASK[mask] if unknown is None else self._unknown(mask, unknown),
            learning,
            0 if unknown is None else len(unknown),
        )

    @staticmethod
    def _unknown(mask: int, extra: list[Unknown]) -> tuple[Unknown, ...]:
        return tuple(extra) + _UNKNOWN_BY_MASK[mask]

    def _context(
        self,
        hits: list[Hit] | None,
        p: Profile,
        name: str,
        prefix: str,
        value: str,
        table: dict[str, int],
        kind: int,
        n: int,
        t: float,
    ) -> list[Hit] | None:
        """``new_region`` / ``new_network`` / ``new_user_agent`` for a value not (yet) learned."""
        strength = _strength(p.novel(kind), n, 2.5 if kind == NOV_NET else FEW)
        if not strength:
            return hits
        g = p.base
        if strength < 1.0 and g is not None:
            if p.peers is None:
                gs = _group_strength(g, p, kind, value)
            else:  # several groups: never used by any of them, with the best-backed one's strength
                gs = 0.0
                for g2 in (g, *p.peers):
                    s2 = _group_strength(g2, p, kind, value)
                    if s2 < 0.0:
                        gs = 0.0
                        break
                    gs = max(gs, s2)
            if gs > strength:
                strength = gs
        cand = p.cand
        first = cand.get(prefix + value) if cand else None
        label = ("region", "network", "user agent")[kind]
        if kind == NOV_NET and not p.net_wide and _inside_known(value, table):
            strength *= 0.5
            label = "network (inside a known wider network)"
        pts = max(1, round(self.w[name] * strength))
        if hits is None:
            hits = []
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
        return hits

    def _new_resource(
        self, hits: list[Hit] | None, p: Profile, resource: EntityUid, ri: ResourceInfo, n: float, nr_c: float
    ) -> list[Hit] | None:
        """``new_resource``, ``segment_crossing`` and ``enumeration`` of a never-seen resource."""
        w = self.w
        rtype = ri.rtype
        seg = ri.seg
        type_new = rtype not in p.rtypes
        strength = _strength(p.nov_resource, p.res_n) * (1.0 if type_new else 0.5)
        if strength and (n >= self.min_history or type_new):
            if hits is None:
                hits = []
            hits.append(
                (
                    S.NEW_RESOURCE,
                    max(1, round(w[S.NEW_RESOURCE] * strength)),
                    "first access to {0}::{1!r}{2}",
                    (resource[0], resource[1], f" (first {rtype} ever)" if type_new else ""),
                )
            )
        if seg is not None and p.segs and seg not in p.segs and _strength(p.nov_seg, n):
            strength = _strength(p.nov_seg, n, FEW)
            why = "resource is in segment {0}; the identity has only worked in {1}"
            g = p.base
            if strength < 1.0 and g is not None and g.segs and seg not in g.segs:
                gs = _strength(g.nov_seg, g.n, FEW)
                if p.peers is not None:  # several groups: none of them worked there
                    for g2 in p.peers:
                        if seg in g2.segs:
                            gs = 0.0
                            break
                if gs > strength:  # its peers (or parent) never worked there either
                    strength = gs
                    why = "resource is in segment {0}; the identity has only worked in {1}, its peers in {2}"
            if hits is None:
                hits = []
            hits.append(
                (
                    S.SEGMENT_CROSSING,
                    max(1, round(w[S.SEGMENT_CROSSING] * strength)),
                    why,
                    (seg, p.segs, g.segs if g is not None else {}),
                )
            )
        thr = p.nr_thr
        if thr >= NO_THRESHOLD:  # too few bursts of its own yet: the floor
            thr = float(self.enum_min)
        if nr_c >= thr and n >= self.min_history:
            if hits is None:
                hits = []
            hits.append(
                (
                    S.ENUMERATION,
                    _over(w[S.ENUMERATION], nr_c / thr),
                    "{0:.0f} never-seen resources within about {1:.0f} s (usual: {2:.1f})",
                    (nr_c, self.enum_w, p.nr_mean),
                )
            )
        return hits

    def _travel(self, hits: list[Hit] | None, p: Profile, region: str, t: float) -> list[Hit] | None:
        last = p.last_region
        if last is None or last == region:
            return hits
        here = locate(region)
        there = locate(last)
        if here is None or there is None:
            return hits
        km = distance_km(here[0], there[0])
        if km < self.travel_min_km:
            return hits
        hours = max(t - p.last_region_t, 60.0) / 3600.0
        speed = km / hours
        if speed <= self.travel_kmh:
            return hits
        approx = "" if here[1] and there[1] else " (approximate: region placed by its prefix)"
        if hits is None:
            hits = []
        hits.append(
            (
                S.IMPOSSIBLE_TRAVEL,
                self.w[S.IMPOSSIBLE_TRAVEL],
                "{0!r} is {1:.0f} km from {2!r}, where it was {3} ago ({4:.0f} km/h){5}",
                (region, km, last, Ago(t - p.last_region_t), speed, approx),
            )
        )
        return hits

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

    def _rate(self, c1: float, c2: float, p: Profile) -> Hit:
        """``rate_spike``: a decayed count at or above its threshold (see docs/behaviour.md)."""
        over1 = c1 / p.r1_thr
        over2 = c2 / p.r2_thr
        if over1 >= over2:
            count, over, mean, mad, span = c1, over1, p.r1_mean, p.r1_mad, "minute"
        else:
            count, over, mean, mad, span = c2, over2, p.r2_mean, p.r2_mad, "15 minutes"
        return (
            S.RATE_SPIKE,
            _over(self.w[S.RATE_SPIKE], over),
            "about {0:.0f} requests in the last {1} (usual: {2:.1f} +/- {3:.1f})",
            (count, span, mean, 1.25 * mad),
        )

    # -- learn -----------------------------------------------------------------------------------
    def learn(self, p: Profile, f: Features, learnable: bool, allowed: bool, vetted: bool = False) -> None:
        """Update ``p`` after the decision from the request's features (as :meth:`judge` left
        them). Every request counts toward rate, new resources and the privilege chain; only a
        ``learnable`` one teaches what is normal. ``vetted``: a human approved this request (a
        step-up ticket), so its new region, network and user agent are established at once instead
        of becoming candidates. The only learning there is: :meth:`assess` with a decision calls it."""
        if allowed:
            p.allowed += 1
        else:
            p.denied += 1
        t = f.t
        p.r1 = f.c1
        p.r2 = f.c2
        if t > p.last_seen:
            p.last_seen = t
        if f.counted:
            _count_new(p, f.ri, f.nr_c, t)
        if f.cid is not None:
            self.note_credential(p, f)
        if self.rates_out is not None and not p.queued:
            p.queued = True  # its requests are announced at the next batch
            self.rates_out.append(p)
        if f.cls or f.sens:
            p.chain_t = f.chain_t
            p.chain_top = f.top
            p.chain_climbs = f.climbs
            p.chain_sens = f.chain_sens
            if f.sens:
                p.chain_last = f.aname
            elif f.chain_t == f.t:  # a new chain starts with this step: no sensitive step yet
                p.chain_last = None
        if learnable:
            self._learn_normal(p, f, vetted)
            if p.base is not None:
                self.teach(p.base, f)
                if p.peers is not None:
                    for g in p.peers:
                        self.teach(g, f)

    def teach(self, base: Profile, f: Features) -> None:
        """A member's learnable request also teaches its baseline ``base`` (its parent's or its
        peer group's profile, :mod:`vigil.behaviour.peers`): what is normal (hours, usual rates,
        values, resources), not what was attempted (the member's own counts stay its own). A
        request whose values the member had all learned today (``f.fresh``) taught them to the
        base then too, so only its counters move (the cheap path, as for the member)."""
        self._learn_normal(base, f, False)

    def _learn_normal(self, p: Profile, f: Features, vetted: bool) -> None:
        """What a learnable request teaches: its hour, the usual rates, the last region, and (unless
        ``f.fresh``: every value already learned today) its values."""
        t = f.t
        p.learned += 1
        if t >= p.fold_at and (p.learned & 3 == 0 or p.rate_n < MIN_SAMPLES):
            self._fold_rate(p, f.c1, f.c2, t)
        p.how[(f.it // 3600 + 72) % 168] += 1
        p.n += 1
        if p.n >= HALVE_AT or t > p.decay_at:
            self._decay(p, t)
        region = f.region
        if region is not None:
            p.last_region_t = t
            if p.last_region != region:
                p.last_region = self.intern(region)
        if f.tracked:
            p.res_n += 1
        if not f.fresh:
            self._learn_values(p, f, vetted)
        if f.tracked and p.res_sat:
            self._resource_novelty(p)

    # -- learning helpers (the parts a fresh request skips) -----------------------------------------
    def _learn_values(self, p: Profile, f: Features, vetted: bool) -> None:
        """Learn the request's values: regions, networks and user agents (through candidates,
        unless ``vetted``), the action and its class, the resource, its type and segment."""
        t = f.t
        day = f.day
        if f.counted and t >= p.nr_fold_at:
            self._fold_new(p, f.nr_c, t)
        region = f.region
        if region is not None:
            d = p.regions.get(region)
            if d != day:
                self._learn_context(p, "r:", region, p.regions, CAP_REGION, NOV_REGION, day, t, d, vetted)
        net = f.net
        if net is not None:
            d = p.nets.get(net)
            if d != day:
                self._learn_context(p, "n:", net, p.nets, CAP_NET, NOV_NET, day, t, d, vetted)
        ua = f.ua
        if ua is not None:
            d = p.uas.get(ua)
            if d != day:
                self._learn_context(p, "u:", ua, p.uas, CAP_UA, NOV_UA, day, t, d, vetted)
        actions = p.actions
        aname = f.aname
        d = actions.get(aname)
        if d != day:
            if d is None:
                p.nov_action += 1.0
                aname = self.intern(aname)
                if len(actions) >= CAP_ACTION:
                    del actions[next(iter(actions))]
                if self.learned_out is not None:
                    self.learned_out.append((p, "a:", aname, day))
            actions[aname] = day
        if p.class_day[f.cls] != day:
            p.class_day[f.cls] = day
            self._known_max(p, day)
        if f.res_state:  # else a resource in the newer bitmap: its type and segment were learned with it
            self._learn_resource(p, f)
        for key in f.args:
            d = p.args.get(key)
            if d != day:
                self._learn_context(p, "g:", key, p.args, CAP_ARG, _arg_kind(key), day, t, d, vetted)

    def _learn_resource(self, p: Profile, f: Features) -> None:
        """A resource not in the newer bitmap: its bit (when tracked), its type and segment."""
        ri = f.ri
        res_state = f.res_state
        if res_state != UNTRACKED_NEW_KIND:
            bloom = p.bloom
            bloom[ri.byte] |= ri.mask
            if res_state == 2:
                p.nov_resource += 1.0
                if not p.res_sat and p.res_n >= self.min_history:
                    self._resource_novelty(p)
                if self.learned_out is not None:
                    self.learned_out.append((p, "x:", ri.h, f.day))
            p.bloom_n += 1
            if p.bloom_n >= BLOOM_ROTATE_AT or f.t - p.bloom_t > self.forget_s / 2:
                self._rotate(p, f.t)
        rtypes = p.rtypes
        rtype = ri.rtype
        if rtypes.get(rtype) != f.day:
            if rtype not in rtypes:
                p.nov_rtype += 1.0
                if self.learned_out is not None:
                    self.learned_out.append((p, "t:", rtype, f.day))
            remember(rtypes, rtype, f.day, CAP_RTYPE)
        seg = ri.seg
        if seg is not None and p.segs.get(seg) != f.day:
            if seg not in p.segs:
                p.nov_seg += 1.0
                if self.learned_out is not None:
                    self.learned_out.append((p, "s:", seg, f.day))
            remember(p.segs, seg, f.day, CAP_SEG)

    def _decay(self, p: Profile, t: float) -> None:
        if p.n >= HALVE_AT:
            p.halve()
        if t > p.decay_at:
            p.halve()
            p.decay_at = t + self.forget_s

    def _known_max(self, p: Profile, day: int) -> int:
        """The highest class learned within the forgetting horizon (cached on the profile)."""
        cd = p.class_day
        forget = self.forget_days
        m = 2 if day - cd[2] <= forget else (1 if day - cd[1] <= forget else 0)
        p.max_cls = m
        p.max_cls_until = cd[m] + forget if day - cd[m] <= forget else day
        return m

    def _drift(self, cls: int, known_max: int, aname: str) -> Hit:
        return (
            S.PRIVILEGE_DRIFT,
            max(1, round(self.w[S.PRIVILEGE_DRIFT] * (1.0 if cls - known_max >= 2 else 0.9))),
            "first {0} action ({1!r}); it has only used {2} actions",
            (CLASS_NAMES[cls], aname, _USED[known_max]),
        )

    def _region(
        self, hits: list[Hit] | None, p: Profile, region: str, d: int | None, day: int, n: int, t: float
    ) -> list[Hit] | None:
        """``new_region`` and ``impossible_travel`` for a region not learned today."""
        if d is None or day - d > self.forget_days:
            if (p.nov_region + 1.0) * INFORMATIVE < n + 2.0:
                hits = self._context(hits, p, S.NEW_REGION, "r:", region, p.regions, NOV_REGION, n, t)
            if region != p.last_region:
                hits = self._travel(hits, p, region, t)
        elif region != p.last_region and day - d > 1:
            # a known region, but not used lately: the jump from the last one still counts
            hits = self._travel(hits, p, region, t)
        return hits

    def _resource_novelty(self, p: Profile) -> None:
        """Suspend per-resource tracking while new resources are the norm (uninformative);
        resume when they have become rare again (with some hysteresis)."""
        k = p.res_n + 2.0
        weight = (p.nov_resource + 1.0) * INFORMATIVE
        if p.res_sat:
            if weight * 1.5 < k:
                p.res_sat = False
        elif p.res_n >= self.min_history and weight >= k:
            p.res_sat = True

    def _rotate(self, p: Profile, t: float) -> None:
        """Drop the older resource bitmap; the newer one becomes the older."""
        bloom = p.bloom
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
        d: int | None,
        vetted: bool = False,
    ) -> None:
        """A region, network, user agent or tool-call place: known ones are refreshed; a new one is a candidate
        until it has been seen for ``establish_s`` (so one request cannot make itself normal),
        or at once when a human ``vetted`` the request. ``d``: the day ``table`` holds for
        ``value`` (None: not in it), as the caller just read it."""
        if d is not None and day - d <= self.forget_days:
            table[value] = day
            return
        if (
            kind == NOV_NET
            and not p.net_wide
            and p.n >= self.min_history
            and (p.nov_net + 1.0) * INFORMATIVE >= p.n + 2.0
        ):
            self._widen(p, value, day)
            return
        if self.establish_s <= 0 or p.n <= 1 or (p.novel(kind) + 1.0) * INFORMATIVE >= p.n + 2.0:
            # no establishment period, the identity's very first learned request, or a kind of
            # value that is new so often that it raises no signal: learned at once (plainly: such
            # values are rarely worth sharing or widening)
            if d is None:
                p.count_novel(kind)
                if len(table) >= cap:
                    del table[next(iter(table))]
            table[value] = day
            if self.learned_out is not None:
                self.learned_out.append((p, prefix, value, day))
            return
        key = prefix + value
        if vetted:
            if d is None and not (p.cand and key in p.cand):
                p.count_novel(kind)
            if p.cand and key in p.cand:
                del p.cand[key]
            self._establish(p, prefix, table, value, day, cap)
            return
        cand = p.cand
        if cand is None:
            cand = p.cand = {}
        first = cand.get(key)
        if first is None:
            if len(cand) >= CAND_CAP:
                del cand[next(iter(cand))]  # the oldest candidate (insertion order)
            cand[key] = t
            p.count_novel(kind)
        elif t - first >= self.establish_s:
            del cand[key]
            if not cand:
                p.cand = None
            self._establish(p, prefix, table, value, day, cap)

    def _widen(self, p: Profile, value: str, day: int) -> None:
        """This identity's /24s churn: from now on its networks are /16s (IPv6 /32s)."""
        wide: dict[str, int] = {}
        for k, d in p.nets.items():
            w = self.intern(_wide(k))
            if d > wide.get(w, -(10**9)):
                wide[w] = d
        wide[self.intern(_wide(value))] = day
        p.nets = wide
        p.net_wide = True
        p.nov_net = float(len(wide))
        if p.cand:
            p.cand = {k: v for k, v in p.cand.items() if not k.startswith("n:")} or None

    def _establish(
        self, p: Profile, prefix: str, table: dict[str, int], value: str, day: int, cap: int
    ) -> None:
        """``value`` becomes known to ``p`` (and, shared, to the other processes)."""
        remember(table, self.intern(value), day, cap)
        if self.learned_out is not None:
            self.learned_out.append((p, prefix, value, day))

    def _fold_rate(self, p: Profile, c1: float, c2: float, t: float) -> None:
        p.fold_at = t + FOLD_S
        k = p.rate_n = p.rate_n + 1
        a = 1.0 / k if k < 100 else BASELINE_ALPHA
        mean, mad = _ewma(p.r1_mean, p.r1_mad, c1, a, k > MIN_SAMPLES)
        mean2, mad2 = _ewma(p.r2_mean, p.r2_mad, c2, a, k > MIN_SAMPLES)
        p.r1_mean = mean
        p.r1_mad = mad
        p.r2_mean = mean2
        p.r2_mad = mad2
        if k >= MIN_SAMPLES and (k & 3 == 0 or k < 2 * MIN_SAMPLES):  # thresholds move slowly
            p.r1_thr = _threshold(self.rate_min, mean, mad, RATIO1)
            p.r2_thr = _threshold(self.rate_min2, mean2, mad2, RATIO2)

    def _fold_new(self, p: Profile, c: float, t: float) -> None:
        p.nr_fold_at = t + 5.0
        k = p.nr_n = p.nr_n + 1
        a = 1.0 / k if k < 100 else BASELINE_ALPHA
        mean, mad = _ewma(p.nr_mean, p.nr_mad, c, a, k > MIN_SAMPLES)
        p.nr_mean = mean
        p.nr_mad = mad
        if k >= MIN_SAMPLES:
            p.nr_thr = _threshold(self.enum_min, mean, mad, ENUM_RATIO)

    # -- sharing across processes (vigil.behaviour.shared) ------------------------------------------
    def _merge(self, p: Profile) -> None:
        """Move the other processes' counts waiting in ``p``'s inbox into its own decayed counts
        (requests, new resources), which from then on count the identity's requests everywhere.
        Runs on the deciding thread, before the detectors read the counts."""
        t = p.x_t
        ls = p.last_seen
        p.r1 = fold(p.r1, ls, p.x1, t, RATE_TAU1)
        p.r2 = fold(p.r2, ls, p.x2, t, RATE_TAU2)
        if t > ls:
            p.last_seen = t
        if p.xk != 0.0:
            p.nr_c = fold(p.nr_c, p.nr_t, p.xk, t, self.enum_w)
            if t > p.nr_t:
                p.nr_t = t
        p.x1 = 0.0
        p.x2 = 0.0
        p.xk = 0.0
        p.x_t = 0.0

    def merge_remote(self, p: Profile, n: float, k: float, t: float) -> None:
        """Another process decided ``n`` requests of ``p``'s identity, ``k`` of them on resources
        new to it, at about ``t`` (epoch seconds, > 0): added to ``p``'s inbox, merged into its
        counts at its next decision here. Compiled, one C function: atomic against the deciding
        threads (it never gives up the interpreter lock). Never fails."""
        x_t = p.x_t
        p.x1 = fold(p.x1, x_t, n, t, RATE_TAU1)
        p.x2 = fold(p.x2, x_t, n, t, RATE_TAU2)
        p.xk = fold(p.xk, x_t, k, t, self.enum_w)
        if t > x_t:
            p.x_t = t

    def learn_remote(self, p: Profile, prefix: str, value: Any, day: int) -> bool:
        """Another process learned ``value`` (``prefix``: ``r:`` region, ``n:`` network, ``u:``
        user agent, ``a:`` action, ``t:`` resource type, ``s:`` segment, ``x:`` a resource's
        hash, ``g:`` a tool-call place or a subject acted for) for ``p``'s identity on ``day``: it is known here too, without counting as a
        request or a novelty here. Returns False (nothing changed) for a prefix or value it does
        not know how to apply."""
        if prefix == "x:":
            if type(value) is not int:
                return False
            bit = value % BLOOM_BITS
            mask = 1 << (bit & 7)
            bloom = p.bloom
            if not bloom[bit >> 3] & mask:
                bloom[bit >> 3] |= mask
                p.bloom_n += 1
            p.dirty = True
            return True
        if type(value) is not str:
            return False
        if prefix == "r:":
            table, cap = p.regions, CAP_REGION
        elif prefix == "n:":
            if p.net_wide and not value.endswith("*"):
                value = _wide(value)
            elif not p.net_wide and value.endswith("*"):
                return False  # a wider network than this identity's keys: nothing to mark
            table, cap = p.nets, CAP_NET
        elif prefix == "u:":
            table, cap = p.uas, CAP_UA
        elif prefix == "a:":
            table, cap = p.actions, CAP_ACTION
        elif prefix == "t:":
            table, cap = p.rtypes, CAP_RTYPE
        elif prefix == "s:":
            table, cap = p.segs, CAP_SEG
        elif prefix == "g:":
            table, cap = p.args, CAP_ARG
        else:
            return False
        d = table.get(value)
        if d is None or d < day:
            remember(table, self.intern(value), self._day if day == self._day else day, cap)
        cand = p.cand
        if cand:
            cand.pop(prefix + value, None)
            if not cand:
                p.cand = None
        p.dirty = True
        return True

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
