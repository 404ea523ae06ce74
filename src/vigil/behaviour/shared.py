"""One identity's behaviour across processes: what this process tells the others, and how it
takes in what they tell it (the transport is :mod:`vigil.cluster.behaviour`; the design and its
cost are in docs/deployment.md, "Behaviour across processes").

- **Request counts.** The behaviour model puts a profile in :attr:`Outbox.rates` at its first
  decided request after a batch (a flag on the profile: the decision path pays one C comparison).
  :func:`collect` takes them every batch (~250 ms) as ``[type, id, n, k, t]``: ``n`` requests
  decided here since the last batch, ``k`` of them counted as never-seen resources, at about
  ``t`` (the profile's last request time). :func:`take_rates` adds each into the receiving
  profile's inbox (``BehaviourModel.merge_remote``); its next decision merges the inbox into its
  decayed counts. Counts are exponentially decayed with fixed time constants, so merging is
  exact but for one approximation: the ``n`` requests of one batch are counted at its ``t`` (an
  over-count of at most ``e**(0.25 s / 60 s) - 1`` = 0.4 % on the per-minute count).
- **Learned values.** A value a profile learns for the first time (region, network, user agent,
  action, resource type, segment, a resource's hash) goes to :attr:`Outbox.learned`;
  :func:`collect` takes them as ``[type, id, prefix, value, day]`` and :func:`take_learned` marks
  each known on the receiving profile (``BehaviourModel.learn_remote``).

Counts for an identity this process holds no profile of wait in :class:`Pending` (bounded) until
its first request here makes one (:meth:`Pending.settle`, every batch) or they are older than a
quarter hour. Learned values for such an identity are dropped: its first request here is judged
as a new identity's anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Final

from vigil.behaviour.book import ProfileBook
from vigil.behaviour.model import BehaviourModel
from vigil.behaviour.profile import Profile

MAX_LEARNED: Final = 100_000  # values waiting for a batch; the oldest dropped past it
MAX_PENDING: Final = 100_000  # identities with counts but no profile here
PENDING_S: Final = 900.0  # counts older than this are negligible (the longest time constant)
MAX_COUNT: Final = 1_000_000  # requests of one identity in one batch: more is not a real count
AHEAD_S: Final = 1.0  # an announced time later than this past the clock here is taken as this
PREFIXES: Final = frozenset({"r:", "n:", "u:", "a:", "t:", "s:", "x:", "g:"})

Rate = list[Any]  # [type, id, n, k, t]
Learned = list[Any]  # [type, id, prefix, value, day]


class Outbox:
    """What the behaviour model hands to the batches: ``rates`` the profiles with requests not yet
    announced, ``learned`` ``(profile, prefix, value, day)`` of the values learned for the first
    time. Plain lists (compiled, an append is a C call): the deciding threads only append, the
    batch thread alone takes from the front (:func:`_drain`), so under the interpreter lock no
    item is lost or taken twice."""

    __slots__ = ("learned", "rates")

    def __init__(self) -> None:
        self.rates: list[Profile] = []
        self.learned: list[tuple[Profile, str, Any, int]] = []


def _drain(items: list[Any]) -> list[Any]:
    """The items of ``items`` now, removed from it; items appended meanwhile stay (appends only
    add at the end, and this is the one place that removes)."""
    n = len(items)
    taken = items[:n]
    del items[:n]
    return taken


def collect(outbox: Outbox) -> tuple[list[Rate], list[Learned]]:
    """Empty ``outbox``: the request counts and learned values to announce (see the module
    docstring). A profile's flag is cleared before its counts are read, so a request decided
    meanwhile either is in this batch or queues the profile again. Never fails."""
    rates: list[Rate] = []
    for p in _drain(outbox.rates):
        p.queued = False
        n = p.allowed + p.denied
        k = p.nr_k
        dn = n - p.pub_n
        dk = k - p.pub_k
        p.pub_n = n
        p.pub_k = k
        uid = p.uid
        if (dn > 0 or dk > 0) and uid is not None:
            rates.append([uid[0], uid[1], dn, dk, p.last_seen])
    learned: list[Learned] = []
    seen: set[tuple[Any, str, Any]] = set()
    values = _drain(outbox.learned)
    if len(values) > MAX_LEARNED:  # a burst of novelty: the newest are kept
        values = values[-MAX_LEARNED:]
    for p, prefix, value, day in values:
        uid = p.uid
        if uid is None or (uid, prefix, value) in seen:
            continue
        seen.add((uid, prefix, value))
        learned.append([uid[0], uid[1], prefix, value, day])
    return rates, learned


def _rate(entry: Any) -> tuple[tuple[str, str], float, float, float] | None:
    """``(uid, n, k, t)`` of an announced ``[type, id, n, k, t]``; None when it is not one."""
    if not isinstance(entry, list) or len(entry) != 5:
        return None
    etype, eid, n, k, t = entry
    if not (isinstance(etype, str) and isinstance(eid, str)):
        return None
    if not all(type(x) in (int, float) for x in (n, k, t)):
        return None
    if not (0 <= n <= MAX_COUNT and 0 <= k <= n + MAX_COUNT and math.isfinite(t) and t > 0):
        return None
    return (etype, eid), float(n), float(k), float(t)


class Pending:
    """Counts announced for identities without a profile here, until one is made (bounded:
    :data:`MAX_PENDING` identities, the first come dropped first)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        self.dropped = 0

    def add(self, uid: tuple[str, str], n: float, k: float, t: float) -> None:
        got = self.counts.get(uid)
        if got is None:
            if len(self.counts) >= MAX_PENDING:
                del self.counts[next(iter(self.counts))]
                self.dropped += 1
            got = self.counts[uid] = []
        got.append((n, k, t))
        if len(got) > 64:  # a busy identity that never comes here: keep the newest
            del got[:32]

    def settle(self, book: ProfileBook, model: BehaviourModel, now: float) -> int:
        """Hand the counts of identities that have a profile now to it; forget those older than
        :data:`PENDING_S`. Returns how many identities were settled."""
        settled = 0
        for uid, entries in list(self.counts.items()):
            p = book.get(uid)
            if p is not None:
                for n, k, t in entries:
                    model.merge_remote(p, n, k, t)
                del self.counts[uid]
                settled += 1
            elif entries[-1][2] < now - PENDING_S:
                del self.counts[uid]
        return settled


def take_rates(
    book: ProfileBook,
    model: BehaviourModel,
    pending: Pending,
    entries: Iterable[Any],
    now: float | None = None,
) -> int:
    """Add another process's announced counts to the profiles here (or to ``pending``). With
    ``now`` (the clock here), a time more than :data:`AHEAD_S` ahead of it counts as that: a
    request time in the future (a client's ``context.time`` within the allowed skew, a fast clock)
    would otherwise move the identity's counts ahead on every process and make its requests here
    weigh as late ones. Returns how many entries were malformed (skipped)."""
    bad = 0
    latest = now + AHEAD_S if now is not None else math.inf
    for entry in entries:
        got = _rate(entry)
        if got is None:
            bad += 1
            continue
        uid, n, k, t = got
        if t > latest:
            t = latest
        p = book.get(uid)
        if p is None:
            pending.add(uid, n, k, t)
        else:
            model.merge_remote(p, n, k, t)
    return bad


def take_learned(book: ProfileBook, model: BehaviourModel, entries: Iterable[Any]) -> int:
    """Mark another process's learned values known on the profiles here (identities without a
    profile here are skipped). Returns how many entries were malformed (skipped)."""
    bad = 0
    for entry in entries:
        if not isinstance(entry, list) or len(entry) != 5:
            bad += 1
            continue
        etype, eid, prefix, value, day = entry
        if not (
            isinstance(etype, str)
            and isinstance(eid, str)
            and prefix in PREFIXES
            and type(day) is int
            and type(value) in (str, int)
        ):
            bad += 1
            continue
        p = book.get((etype, eid))
        if p is not None and not model.learn_remote(p, prefix, value, day):
            bad += 1
    return bad


class Sharing:
    """This process's side of the behaviour shared across processes: the :class:`Outbox` the
    model fills, :meth:`collect` for the batches, :meth:`receive` for what the others send.
    ``model()`` returns the current behaviour model (it changes at a reload); ``clock`` the
    time (epoch seconds)."""

    def __init__(
        self,
        book: ProfileBook,
        model: Callable[[], BehaviourModel],
        clock: Callable[[], float],
        outbox: Outbox | None = None,
    ) -> None:
        self.outbox = outbox if outbox is not None else Outbox()
        self.pending = Pending()
        self._book = book
        self._model = model
        self._clock = clock
        self.malformed = 0

    def collect(self) -> tuple[list[Rate], list[Learned]]:
        """The next batch to announce (see :func:`collect`); also settles pending counts."""
        if self.pending.counts:
            self.pending.settle(self._book, self._model(), self._clock())
        return collect(self.outbox)

    def receive(self, rates: Iterable[Any], learned: Iterable[Any]) -> None:
        """Take in another process's batch; malformed entries are counted and skipped."""
        model = self._model()
        self.malformed += take_rates(self._book, model, self.pending, rates, self._clock())
        self.malformed += take_learned(self._book, model, learned)
