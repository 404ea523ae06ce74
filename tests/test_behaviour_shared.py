"""Behaviour across processes, the math and the glue (no Redis here: tests/test_cluster_behaviour.py
and tests/test_server_shared_rates.py run it between real processes).

- :func:`fold` merges two decayed counts exactly: the merged count equals the decayed count of the
  union of the two sets of events (hypothesis).
- Two behaviour models exchanging batches every 250 ms (as two processes would) end with the
  counts one model would have had seeing every request (within the documented 0.4 % of the
  batch approximation), for requests and for never-seen resources.
- A value learned by one is known to the other; malformed entries are skipped and counted;
  counts for an identity without a profile wait until it has one.
"""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.behaviour.model import BehaviourModel, fold
from vigil.behaviour.profile import Profile
from vigil.behaviour.shared import Outbox, Pending, collect, take_learned, take_rates
from vigil.workspace.settings import BehaviourSettings

T0 = 1_790_000_000.0
READ = ("Action", "read")
WHO = ("Agent", "a-1")


def decayed(times: list[float], at: float, tau: float) -> float:
    """The decayed count of events at ``times`` as of ``at`` (the definition)."""
    return sum(math.exp(-(at - t) / tau) for t in times)


events = st.lists(st.tuples(st.floats(0.0, 3_600.0, allow_nan=False), st.booleans()), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(events, st.sampled_from([60.0, 900.0, 300.0]), st.floats(0.0, 600.0))  # the time constants
def test_fold_is_the_count_of_the_union(evs: list[tuple[float, bool]], tau: float, later: float) -> None:
    a = [T0 + t for t, side in evs if side]
    b = [T0 + t for t, side in evs if not side]
    ta = max(a) if a else 0.0  # an empty side: count 0.0 "as of" 0.0, as an empty inbox is
    tb = max(b) if b else 0.0
    merged = fold(decayed(a, ta, tau), ta, decayed(b, tb, tau), tb, tau)
    ref = max(ta, tb)
    union = a + b
    assert math.isclose(merged, decayed(union, ref, tau), rel_tol=1e-9, abs_tol=1e-12)
    # brought to any later instant, it is still the union's count
    at = ref + later
    assert math.isclose(merged * math.exp(-(at - ref) / tau), decayed(union, at, tau), rel_tol=1e-9)


def test_fold_keeps_the_newer_count_across_a_long_gap() -> None:
    assert fold(5.0, T0, 2.0, T0 + 1e6, 60.0) == 2.0
    assert fold(5.0, T0 + 1e6, 2.0, T0, 60.0) == 5.0
    assert fold(0.0, 0.0, 3.0, T0, 60.0) == 3.0  # an empty inbox


def model(outbox: Outbox | None) -> BehaviourModel:
    # min_history out of reach: resource novelty is never judged uninformative, so every new
    # resource is counted (not sampled, which would differ between the models)
    return BehaviourModel(BehaviourSettings(mode="shadow", min_history=10**9), None, {}, outbox=outbox)


def profile(uid: tuple[str, str] = WHO) -> Profile:
    p = Profile(T0)
    p.uid = uid
    return p


def exchange(src: Outbox, dst_model: BehaviourModel, dst: Profile) -> int:
    rates, learned = collect(src)
    pending = Pending()
    bad = take_rates(_Book({dst.uid: dst}), dst_model, pending, rates)
    bad += take_learned(_Book({dst.uid: dst}), dst_model, learned)
    assert not pending.counts
    return bad


class _Book:
    """The profile book's lookup (``get``), over a dict."""

    def __init__(self, profiles: dict[object, Profile]) -> None:
        self.profiles = profiles

    def get(self, uid: object) -> Profile | None:
        return self.profiles.get(uid)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 0.3), min_size=4, max_size=90), st.randoms(use_true_random=False))
def test_two_models_exchanging_batches_count_what_one_model_counts(
    gaps: list[float], rnd: random.Random
) -> None:
    """Requests of one identity split at random over two models that exchange batches every
    250 ms: after the last exchange, each one's next request sees the count (per minute, per
    quarter hour, never-seen resources) that one model seeing every request sees, to 0.5 %."""
    box_a, box_b = Outbox(), Outbox()
    ma, mb, mc = model(box_a), model(box_b), model(None)
    pa, pb, pc = profile(), profile(), profile()
    t = T0 + 1.0
    next_batch = t + 0.25
    for i, gap in enumerate(gaps):
        t += gap
        while t >= next_batch:  # the batch thread runs between requests
            exchange(box_a, mb, pb)
            exchange(box_b, ma, pa)
            next_batch += 0.25
        resource = ("Database", f"r-{i}")  # each one new: the never-seen count moves too
        m, p = (ma, pa) if rnd.random() < 0.5 else (mb, pb)
        m.assess(p, READ, resource, {}, t, True)
        mc.assess(pc, READ, resource, {}, t, True)
    exchange(box_a, mb, pb)
    exchange(box_b, ma, pa)
    end = t + 0.5
    last = ("Database", "last")
    for m, p in ((ma, pa), (mb, pb), (mc, pc)):
        m.assess(p, READ, last, {}, end, True)
    for p in (pa, pb):
        assert math.isclose(p.r1, pc.r1, rel_tol=5e-3), (p.r1, pc.r1)
        assert math.isclose(p.r2, pc.r2, rel_tol=5e-3), (p.r2, pc.r2)
        assert math.isclose(p.nr_c, pc.nr_c, rel_tol=5e-3), (p.nr_c, pc.nr_c)
    assert pa.allowed + pb.allowed == pc.allowed + 1


def test_without_exchange_each_model_counts_its_part_only() -> None:
    """The control: the same split without batches leaves each model about half the count."""
    ma, mb, mc = model(Outbox()), model(Outbox()), model(None)
    pa, pb, pc = profile(), profile(), profile()
    for i in range(40):
        t = T0 + 0.1 * i
        m, p = (ma, pa) if i % 2 else (mb, pb)
        m.assess(p, READ, ("Database", "x"), {}, t, True)
        mc.assess(pc, READ, ("Database", "x"), {}, t, True)
    assert pc.r1 > 38 and pa.r1 < 20.5 and pb.r1 < 20.5


def test_a_value_learned_by_one_is_known_to_the_other() -> None:
    box = Outbox()
    ma, mb = model(box), model(Outbox())
    pa, pb = profile(), profile()
    ctx = {"region": "eu-west-1", "user_agent": "boto3/1.34", "ip": "10.1.2.3"}
    for i in range(3):
        mb.assess(pb, READ, ("Database", "known"), ctx, T0 + i, True)
    new_ctx = {"region": "ap-south-1", "user_agent": "curl/8.0", "ip": "192.0.2.9"}
    ma.assess(pa, ("Action", "write"), ("Queue", "fresh"), new_ctx, T0 + 10, True)
    _rates, learned = collect(box)
    kinds = {(e[2], e[3]) for e in learned}
    assert {("a:", "write"), ("t:", "Queue"), ("r:", "ap-south-1"), ("u:", "curl")} <= kinds
    assert any(e[2] == "x:" for e in learned) and any(e[2] == "n:" for e in learned)
    assert take_learned(_Book({WHO: pb}), mb, learned) == 0
    assert "ap-south-1" in pb.regions and "write" in pb.actions and "Queue" in pb.rtypes
    # the resource's bit is set in b's bitmap: the same request there is no new resource
    _a, f = mb.assess(pb, ("Action", "write"), ("Queue", "fresh"), new_ctx, T0 + 11, None)
    assert f is not None and f.res_state == 0


def test_malformed_entries_are_skipped_and_counted() -> None:
    m = model(Outbox())
    p = profile()
    book = _Book({WHO: p})
    pending = Pending()
    bad = [
        "x",
        [],
        ["Agent", "a-1", -1, 0, T0],
        ["Agent", "a-1", 1, 0, float("nan")],
        ["Agent", "a-1", 1, 0, 0],
        ["Agent", 5, 1, 0, T0],
        ["Agent", "a-1", True, 0, T0],
        ["Agent", "a-1", 10**9, 0, T0],
    ]
    assert take_rates(book, m, pending, bad) == len(bad)
    assert p.x_t == 0.0 and not pending.counts
    assert take_rates(book, m, pending, [["Agent", "a-1", 3, 1, T0 + 5]]) == 0
    assert p.x_t == T0 + 5 and p.x1 == 3.0 and p.xk == 1.0
    bad_learned = [
        ["Agent", "a-1", "q:", "x", 1],
        ["Agent", "a-1", "r:", 3.5, 1],
        ["Agent", "a-1", "x:", "s", 1],
        7,
    ]
    assert take_learned(book, m, bad_learned) == len(bad_learned)


def test_counts_for_an_identity_without_a_profile_wait_for_it() -> None:
    m = model(Outbox())
    pending = Pending()
    profiles: dict[object, Profile] = {}
    book = _Book(profiles)
    assert take_rates(book, m, pending, [["Agent", "a-1", 4, 0, T0]]) == 0
    assert ("Agent", "a-1") in pending.counts
    assert pending.settle(book, m, T0 + 1) == 0  # no profile yet: kept  # type: ignore[arg-type]
    p = profiles[WHO] = profile()
    assert pending.settle(book, m, T0 + 2) == 1  # type: ignore[arg-type]
    assert p.x1 == 4.0 and not pending.counts
    take_rates(book, m, pending, [["Agent", "gone", 4, 0, T0]])
    pending.settle(book, m, T0 + 10_000)  # type: ignore[arg-type]
    assert not pending.counts  # too old to matter


def test_a_restored_profile_announces_only_what_it_decides_from_now_on() -> None:
    p = profile()
    box = Outbox()
    m = model(box)
    for i in range(5):
        m.assess(p, READ, ("Database", "x"), {}, T0 + i, True)
    restored = Profile.from_blob(p.to_blob())
    restored.uid = WHO
    m.assess(restored, READ, ("Database", "x"), {}, T0 + 10, True)
    rates, _ = collect(box)
    assert [e[2] for e in rates] == [5, 1]  # the first profile's five, the restored one's one


def test_a_time_ahead_of_the_clock_here_counts_as_now() -> None:
    """A batch stamped in the future (a client's context.time, a fast clock) is merged as of the
    clock here (plus 1 s), not as of its stamp: it cannot push the identity's counts ahead."""
    m = model(Outbox())
    p = profile()
    book = _Book({WHO: p})
    assert take_rates(book, m, Pending(), [["Agent", "a-1", 3, 0, T0 + 300.0]], now=T0) == 0  # type: ignore[arg-type]
    assert p.x_t == T0 + 1.0 and p.x1 == 3.0
