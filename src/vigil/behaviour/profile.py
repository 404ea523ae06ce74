"""One identity's learned behaviour: fixed-size counters and capped tables, O(1) to update.

What a profile holds (see ``docs/behaviour.md`` for how each part is used):

- activity by hour of week: 168 counters (``how``) over the learned requests, whose sum is ``n``;
- ``seen``: regions, networks (/24 or /48), user-agent families, actions, resource types,
  segments and the places tool calls reached (``args``: path prefixes, hosts, tables,
  :mod:`vigil.behaviour.arguments`), each mapped to the day it was last learned (forgotten after ``forget_days``); capped
  tables, the least recently seen entry evicted first;
- ``cand``: contextual values (region, network, user agent) seen but not yet *established* (first
  learned less than ``establish_s`` ago): they still count as new;
- privilege: the last day each class (read, write, admin) was learned;
- resources: a two-generation bitmap (2 x 2,048 bits, one bit per resource by a stable hash; the
  older generation is dropped every ``forget_days / 2`` or when the newer one fills). For an
  identity whose resources are mostly new (novelty uninformative, ``res_sat``), the bitmap is
  consulted and taught on 1 request in :data:`RES_SAMPLE` only, with its own count ``res_n``, so
  tracking resumes when the identity settles;
- networks are /24 (IPv6 /48) keys until those churn (uninformative), then /16 (IPv6 /32) keys
  (``net_wide``);
- ``novelty``: how often each kind of value was new when learned (decayed like ``how``), so a
  signal is stronger for an identity that rarely sees anything new;
- request rate: two exponentially decayed request counts (time constants of one minute and of
  fifteen minutes: "requests in the last minute / quarter hour") and, for each, the smoothed mean
  and variance of its value at the identity's learned requests (its usual level);
- new resources: a decayed count of never-seen resources (time constant ``enumeration_window_s``),
  its usual level (mean, variance), and the last few new resource hashes (a retry of one resource
  is not a sweep);
- the last learned region and its time (travel), the current privilege chain, the times of recent
  high-risk decisions (quarantine), activity counts (allowed, denied, first and last seen);
- sharing across processes (``[cluster] redis``, :mod:`vigil.behaviour.shared`; none of it
  snapshotted): ``uid`` (the identity, set by the profile book), ``queued`` (waiting in the
  outbox of requests to announce), ``pub_n`` and ``pub_k`` (own requests and own counted new
  resources already announced), ``nr_k`` (own counted new resources), and the inbox of other
  processes' counts not yet merged: ``x1``, ``x2``, ``xk`` (requests decayed over a minute and a
  quarter hour, new resources over the enumeration window) as of ``x_t`` (0.0: empty).

Decay: when ``n`` reaches :data:`HALVE_AT`, or every ``forget_days`` of time, the hour counters and
novelty counts are halved, so old habits fade and new ones take over.

Snapshots: a profile needs writing when its request count differs from ``saved`` or ``dirty`` is
set (quarantine, high-risk times); requests themselves never touch a flag.
"""

from __future__ import annotations

import base64
import zlib
from array import array
from typing import Any, Final

import orjson

HOURS_OF_WEEK: Final = 168
HALVE_AT: Final = 4_096
BLOOM_BYTES: Final = 256  # per generation
BLOOM_BITS: Final = BLOOM_BYTES * 8
BLOOM_ROTATE_AT: Final = 600  # insertions into the newer generation
CAPS: Final = {"region": 16, "net": 48, "ua": 16, "action": 64, "rtype": 32, "seg": 32, "arg": 64}
KINDS: Final = ("region", "net", "ua", "action", "resource", "rtype", "seg", "arg", "ident", "for")
# tool-call places (paths, hosts, mail domains), identifiers (tables, ...) and the subjects an agent
# acts for share the ``args`` table but each kind has its own novelty count: a kind that is new on
# every call (a request id) silences only itself
NOV_REGION, NOV_NET, NOV_UA, NOV_ACTION, NOV_RESOURCE, NOV_RTYPE, NOV_SEG, NOV_ARG, NOV_IDENT, NOV_FOR = (
    range(10)
)
RECENT_NEW: Final = 16
RES_SAMPLE: Final = 64
NO_THRESHOLD: Final = 1e300  # a rate or new-resource threshold not computed yet (too few samples)
FORMAT: Final = 1
_DAYS: dict[int, int] = {}  # one int object per day number across restored profiles (memory)
FORGET_S: Final = 45 * 86_400


class Profile:
    """The behaviour of one identity (see the module docstring). Plain slots, no methods on the hot path."""

    __slots__ = (
        "actions",
        "allowed",
        "args",
        "base",
        "bloom",
        "bloom_n",
        "bloom_t",
        "cand",
        "chain_climbs",
        "chain_last",
        "chain_sens",
        "chain_t",
        "chain_top",
        "class_day",
        "creds",
        "decay_at",
        "denied",
        "dirty",
        "first_seen",
        "fold_at",
        "high",
        "how",
        "last_region",
        "last_region_t",
        "last_seen",
        "learned",
        "link_from",
        "link_t",
        "max_cls",
        "max_cls_until",
        "n",
        "net_wide",
        "nets",
        "nov_action",
        "nov_arg",
        "nov_for",
        "nov_ident",
        "nov_net",
        "nov_region",
        "nov_resource",
        "nov_rtype",
        "nov_seg",
        "nov_ua",
        "nr_c",
        "nr_fold_at",
        "nr_k",
        "nr_mad",
        "nr_mean",
        "nr_n",
        "nr_recent",
        "nr_t",
        "nr_thr",
        "peers",
        "pub_k",
        "pub_n",
        "quarantined",
        "queued",
        "r1",
        "r1_mad",
        "r1_mean",
        "r1_thr",
        "r2",
        "r2_mad",
        "r2_mean",
        "r2_thr",
        "rate_n",
        "regions",
        "res_n",
        "res_sat",
        "rtypes",
        "saved",
        "segs",
        "uas",
        "uid",
        "x1",
        "x2",
        "x_t",
        "xk",
    )

    def __init__(self, now: float) -> None:
        self.first_seen = now
        self.last_seen = now
        self.allowed = 0
        self.denied = 0
        self.learned = 0
        self.n = 0
        self.how = array("H", bytes(2 * HOURS_OF_WEEK))
        self.decay_at = now + FORGET_S  # next time-based decay (the model sets its own horizon)
        # novelty: how many learned values of each kind were new (decayed with `how`); one plain
        # field per kind (C doubles when compiled), in KINDS order
        self.nov_region = 0.0
        self.nov_net = 0.0
        self.nov_ua = 0.0
        self.nov_action = 0.0
        self.nov_resource = 0.0
        self.nov_rtype = 0.0
        self.nov_seg = 0.0
        self.nov_arg = 0.0
        self.nov_ident = 0.0
        self.nov_for = 0.0
        self.regions: dict[str, int] = {}
        self.nets: dict[str, int] = {}
        # networks are judged by /24 (IPv6 /48) until those churn; then by /16 (IPv6 /32)
        self.net_wide = False
        self.uas: dict[str, int] = {}
        self.actions: dict[str, int] = {}
        self.rtypes: dict[str, int] = {}
        self.segs: dict[str, int] = {}
        self.args: dict[str, int] = {}  # places tool calls reached (vigil.behaviour.arguments)
        self.cand: dict[str, float] | None = None
        self.class_day = array("i", (-(10**9), -(10**9), -(10**9)))
        # the highest class learned within the forgetting horizon, valid through day max_cls_until
        self.max_cls = 0
        self.max_cls_until = -(10**9)
        self.bloom = bytearray(2 * BLOOM_BYTES)
        self.bloom_n = 0
        self.bloom_t = now
        # resource novelty is tracked while informative; else on 1 request in RES_SAMPLE
        self.res_sat = False
        self.res_n = 0
        # request rate over about a minute (r1) and a quarter hour (r2): the decayed counts (last
        # updated at last_seen), their usual level (mean, mean absolute deviation) and thresholds.
        # Plain fields, not an array: compiled, each is a C double read without boxing.
        self.r1 = 0.0
        self.r2 = 0.0
        self.r1_mean = 0.0
        self.r1_mad = 0.0
        self.r2_mean = 0.0
        self.r2_mad = 0.0
        self.r1_thr = NO_THRESHOLD
        self.r2_thr = NO_THRESHOLD
        self.rate_n = 0
        self.fold_at = -1e18  # next time the usual rates may learn
        self.nr_t = now
        # never-seen resources: decayed count, its usual level (mean, deviation), threshold
        self.nr_c = 0.0
        self.nr_mean = 0.0
        self.nr_mad = 0.0
        self.nr_thr = NO_THRESHOLD
        self.nr_n = 0
        self.nr_fold_at = -1e18  # next time the usual new-resource count may learn
        self.nr_recent: array[int] | None = None  # crc32 hashes: 4 bytes each
        self.last_region: str | None = None
        self.last_region_t = 0.0
        self.chain_t = -1e18
        self.chain_top = 0
        self.chain_climbs = 0
        self.chain_sens = 0
        self.chain_last: str | None = None  # the chain's last sensitive action (not snapshotted)
        # credential id -> (its last place, when, the place before, when): credential_two_places;
        # a few per identity, made at the first credential_id (not snapshotted: a window of minutes)
        self.creds: dict[str, tuple[str, float, str | None, float]] | None = None
        self.high: list[float] | None = None
        self.quarantined = False
        self.dirty = True  # changed other than by a request (quarantine, high-risk times)
        self.saved = -1  # requests (allowed + denied) at the last snapshot
        # the baseline this identity's requests also teach and its "never done" signals consult:
        # its parent's profile (a short-lived identity) or its peer group's (shared by members);
        # not snapshotted (set again when the engine meets the identity)
        self.base: Profile | None = None
        # further peer groups ([behaviour] peers_also): taught too, and second opinions; not
        # snapshotted (set again when the engine meets the identity)
        self.peers: tuple[Profile, ...] | None = None
        # the last enabling step another identity took on this one (created a key for it,
        # assumed it, granted it): when, and who (not snapshotted: a window of minutes)
        self.link_t = -1e18
        self.link_from: Any = None
        # sharing across processes (vigil.behaviour.shared): not snapshotted
        self.uid: Any = None
        self.queued = False
        self.pub_n = 0
        self.pub_k = 0
        self.nr_k = 0
        self.x1 = 0.0
        self.x2 = 0.0
        self.xk = 0.0
        self.x_t = 0.0

    @property
    def requests(self) -> int:
        """Decided requests seen (allowed + denied)."""
        return self.allowed + self.denied

    def table(self, kind: str) -> dict[str, int]:
        """The ``seen`` table of ``kind`` (``region``, ``net``, ``ua``, ``action``, ``rtype``, ``seg``,
        ``arg``)."""
        got: dict[str, int] = getattr(self, _TABLE_ATTR[kind])
        return got

    def novel(self, kind: int) -> float:
        """The novelty count of ``kind`` (``NOV_REGION`` ... ``NOV_ARG``; literal numbers below,
        so compiled code compares C ints; tests/test_behaviour_model.py checks they match)."""
        if kind == 1:  # NOV_NET
            return self.nov_net
        if kind == 0:  # NOV_REGION
            return self.nov_region
        if kind == 2:  # NOV_UA
            return self.nov_ua
        if kind == 3:  # NOV_ACTION
            return self.nov_action
        if kind == 4:  # NOV_RESOURCE
            return self.nov_resource
        if kind == 5:  # NOV_RTYPE
            return self.nov_rtype
        if kind == 7:  # NOV_ARG
            return self.nov_arg
        if kind == 8:  # NOV_IDENT
            return self.nov_ident
        if kind == 9:  # NOV_FOR
            return self.nov_for
        return self.nov_seg

    def count_novel(self, kind: int) -> None:
        """One more new value of ``kind``."""
        if kind == 1:  # NOV_NET
            self.nov_net += 1.0
        elif kind == 0:  # NOV_REGION
            self.nov_region += 1.0
        elif kind == 2:  # NOV_UA
            self.nov_ua += 1.0
        elif kind == 3:  # NOV_ACTION
            self.nov_action += 1.0
        elif kind == 4:  # NOV_RESOURCE
            self.nov_resource += 1.0
        elif kind == 5:  # NOV_RTYPE
            self.nov_rtype += 1.0
        elif kind == 7:  # NOV_ARG
            self.nov_arg += 1.0
        elif kind == 8:  # NOV_IDENT
            self.nov_ident += 1.0
        elif kind == 9:  # NOV_FOR
            self.nov_for += 1.0
        else:
            self.nov_seg += 1.0

    def novelties(self) -> list[float]:
        """The novelty counts in ``KINDS`` order."""
        return [
            self.nov_region,
            self.nov_net,
            self.nov_ua,
            self.nov_action,
            self.nov_resource,
            self.nov_rtype,
            self.nov_seg,
            self.nov_arg,
            self.nov_ident,
            self.nov_for,
        ]

    def halve(self) -> None:
        """Decay: halve the hour counters, ``n`` and the novelty counts."""
        how = self.how
        total = 0
        for i in range(HOURS_OF_WEEK):
            v = how[i] >> 1
            how[i] = v
            total += v
        self.n = total
        self.nov_region *= 0.5
        self.nov_net *= 0.5
        self.nov_ua *= 0.5
        self.nov_action *= 0.5
        self.nov_resource *= 0.5
        self.nov_rtype *= 0.5
        self.nov_seg *= 0.5
        self.nov_arg *= 0.5
        self.nov_ident *= 0.5
        self.nov_for *= 0.5
        self.res_n >>= 1

    # -- persistence ---------------------------------------------------------------------------
    def to_blob(self) -> bytes:
        """A compact, versioned snapshot (zlib-compressed JSON)."""
        data: dict[str, Any] = {
            "v": FORMAT,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "allowed": self.allowed,
            "denied": self.denied,
            "learned": self.learned,
            "how": base64.b64encode(self.how.tobytes()).decode(),
            "decay_at": self.decay_at,
            "novelty": self.novelties(),
            "regions": dict(self.regions),
            "nets": dict(self.nets),
            "uas": dict(self.uas),
            "actions": dict(self.actions),
            "rtypes": dict(self.rtypes),
            "segs": dict(self.segs),
            "args": dict(self.args),
            "cand": dict(self.cand) if self.cand else None,
            "class_day": list(self.class_day),
            "max_cls": [self.max_cls, self.max_cls_until],
            "bloom": base64.b64encode(bytes(self.bloom)).decode(),
            "bloom_n": self.bloom_n,
            "res": [int(self.res_sat), self.res_n, int(self.net_wide)],
            "bloom_t": self.bloom_t,
            "rate": [
                self.r1,
                self.r2,
                self.r1_mean,
                self.r1_mad,
                self.r2_mean,
                self.r2_mad,
                self.r1_thr,
                self.r2_thr,
                self.rate_n,
            ],
            "nr": [self.nr_t, self.nr_c, self.nr_mean, self.nr_mad, self.nr_thr, self.nr_n],
            "nr_recent": list(self.nr_recent) if self.nr_recent else None,
            "last_region": self.last_region,
            "last_region_t": self.last_region_t,
            "chain": [self.chain_t, self.chain_top, self.chain_climbs, self.chain_sens],
            "high": list(self.high) if self.high else None,
        }
        return zlib.compress(orjson.dumps(data), 1)

    @classmethod
    def from_blob(cls, blob: bytes, intern: dict[str, str] | None = None) -> Profile:
        """A profile from :meth:`to_blob`; raises ValueError when the blob is not one."""
        try:
            d = orjson.loads(zlib.decompress(blob))
            if d.get("v") != FORMAT:
                raise ValueError(f"profile format {d.get('v')!r} is not {FORMAT}")
            p = cls(float(d["first_seen"]))
            p.last_seen = float(d["last_seen"])
            p.allowed = int(d["allowed"])
            p.denied = int(d["denied"])
            p.learned = int(d["learned"])
            how = array("H")
            how.frombytes(base64.b64decode(d["how"]))
            if len(how) != HOURS_OF_WEEK:
                raise ValueError("hour-of-week counters have the wrong size")
            p.how = how
            p.n = sum(how)
            p.decay_at = float(d["decay_at"])
            nov = [float(x) for x in d["novelty"]]
            while 7 <= len(nov) < len(KINDS):
                nov.append(0.0)  # a snapshot from before tool-call places were learned
            if len(nov) != len(KINDS):
                raise ValueError("novelty counters have the wrong size")
            (
                p.nov_region,
                p.nov_net,
                p.nov_ua,
                p.nov_action,
                p.nov_resource,
                p.nov_rtype,
                p.nov_seg,
                p.nov_arg,
                p.nov_ident,
                p.nov_for,
            ) = nov
            share = intern if intern is not None else {}
            days = _DAYS
            for attr in ("regions", "nets", "uas", "actions", "rtypes", "segs", "args"):
                raw = d.get(attr, {}) if attr == "args" else d[attr]
                table = {share.setdefault(k, k): days.setdefault(int(v), int(v)) for k, v in raw.items()}
                setattr(p, attr, table)
            p.cand = {share.setdefault(k, k): float(v) for k, v in d["cand"].items()} if d["cand"] else None
            p.class_day = array("i", [int(x) for x in d["class_day"]][:3])
            p.max_cls, p.max_cls_until = (int(x) for x in d["max_cls"])
            bloom = base64.b64decode(d["bloom"])
            if len(bloom) != 2 * BLOOM_BYTES:
                raise ValueError("resource bitmap has the wrong size")
            p.bloom = bytearray(bloom)
            p.bloom_n = int(d["bloom_n"])
            res = d["res"]
            p.res_sat, p.res_n, p.net_wide = bool(res[0]), int(res[1]), bool(res[2])
            p.bloom_t = float(d["bloom_t"])
            rate = d["rate"]
            nr = d["nr"]
            if len(rate) != 9 or len(nr) != 6:
                raise ValueError("rate counters have the wrong size")
            p.r1, p.r2, p.r1_mean, p.r1_mad, p.r2_mean, p.r2_mad, p.r1_thr, p.r2_thr = (
                float(x) for x in rate[:8]
            )
            p.rate_n = int(rate[8])
            p.fold_at = p.last_seen
            p.nr_t = float(nr[0])
            p.nr_c, p.nr_mean, p.nr_mad, p.nr_thr = (float(x) for x in nr[1:5])
            p.nr_n = int(nr[5])
            p.nr_fold_at = p.nr_t
            p.nr_recent = array("I", [int(x) for x in d["nr_recent"]]) if d["nr_recent"] else None
            region = d["last_region"]
            p.last_region = share.setdefault(region, region) if region else None
            p.last_region_t = float(d["last_region_t"])
            p.chain_t, p.chain_top, p.chain_climbs, p.chain_sens = d["chain"]
            p.high = [float(x) for x in d["high"]] if d["high"] else None
        except (KeyError, TypeError, ValueError, zlib.error, orjson.JSONDecodeError) as e:
            raise ValueError(f"not a profile snapshot: {e}") from None
        p.dirty = False
        p.saved = p.pub_n = p.allowed + p.denied  # what it did before counts nowhere again
        return p


_TABLE_ATTR: Final = {
    "region": "regions",
    "net": "nets",
    "ua": "uas",
    "action": "actions",
    "rtype": "rtypes",
    "seg": "segs",
    "arg": "args",
}


def inherited(parent: Profile, now: float, intern: dict[str, str] | None = None) -> Profile:
    """A new profile that starts from ``parent``'s learned baseline (a short-lived identity made
    per task or session judged as its parent agent or class, docs/behaviour.md): a copy of what
    ``parent`` learned (hours, places, clients, actions and classes, resources, segments, usual
    rates and sweeps, last region, and its age, so it is as backed as its parent), with the
    session's own state empty (request counts and rates, new-resource count, privilege chain,
    candidates, high-risk times, quarantine). Its own requests then teach it, not the parent.
    Returns the copy; never raises for a valid ``parent``."""
    p = Profile.from_blob(parent.to_blob(), intern)
    p.allowed = 0
    p.denied = 0
    p.pub_n = 0
    p.last_seen = now
    p.r1 = 0.0
    p.r2 = 0.0
    p.nr_c = 0.0
    p.nr_t = now
    p.nr_recent = None
    p.chain_t = -1e18
    p.chain_top = 0
    p.chain_climbs = 0
    p.chain_sens = 0
    p.cand = None
    p.high = None
    p.quarantined = False
    p.dirty = True
    p.saved = -1
    return p


def remember(table: dict[str, int], key: str, day: int, cap: int) -> bool:
    """Record ``key`` as seen on ``day``; when the table is full, evict the entry learned first
    (O(1): tables keep insertion order). Returns True when ``key`` was not in the table."""
    if key in table:
        table[key] = day
        return False
    if len(table) >= cap:
        del table[next(iter(table))]
    table[key] = day
    return True
