"""``Engine.decide``: the one orchestration of the decision pipeline (ARCHITECTURE section 2).

parse -> identity (registry gate, quarantine) -> signals (behaviour) -> authorize (compiled Cedar,
:mod:`vigil.pipeline.authorize`) -> combine (:mod:`vigil.pipeline.combine`, pure: the outcome and
the effect it wants; the engine applies it: a ticket, a quarantine) -> record -> audit -> learn.
Every failure denies; a malformed request raises :class:`~vigil.errors.RequestError` before
anything is decided or changed. The operator use cases are the engine's desks (:attr:`Engine.desk`,
:attr:`Engine.identities`), the same classes the CLI uses without an engine.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from time import perf_counter_ns
from typing import Any, Final, TypeVar, cast

from vigil.audit.events import rfc3339
from vigil.audit.keys import AuditKeyError
from vigil.audit.sink import AuditSink, sink_from_settings
from vigil.behaviour.book import ProfileBook
from vigil.behaviour.model import ADMIN, BehaviourModel, Features
from vigil.behaviour.peers import GROUP_TYPE, group_uid, groups_also
from vigil.behaviour.profile import Profile
from vigil.behaviour.sessions import parent_of
from vigil.behaviour.shared import Outbox, Sharing
from vigil.behaviour.signals import Assessment
from vigil.cluster import ChangeBus, announcing
from vigil.cluster.bus import kinds_touch
from vigil.cluster.sharing import BehaviourChannel
from vigil.delegation import decide_with_token, delegated_vigil
from vigil.errors import AuditError, RequestError, VigilError, WorkspaceError
from vigil.identity.registry import Registry
from vigil.identity.tokens import (
    Issuer,
    RemoteKeys,
    Revocations,
    SigningKeys,
    TokenService,
    TokenSettings,
    Verifier,
    issuers_of,
    resolve_issuer,
)
from vigil.identity.tokens.jwks import Fetch
from vigil.identity.tokens.signing import FILE_NAME as SIGNING_KEYS_FILE
from vigil.model.decision import Advice, DecisionRecord, ReasonCode, new_record
from vigil.model.request import AccessRequest, parse_authzen
from vigil.operations.approvals import Approvals, bound_context, check_actor, ticket_dict
from vigil.operations.desk import OperatorDesk
from vigil.operations.events import operator_event, uid_dict
from vigil.operations.identities import IdentityDesk
from vigil.operations.quarantine import Quarantine
from vigil.operations.revocations import RevocationDesk
from vigil.pipeline.authorize import NEUTRAL_VIGIL, action_type, authorize
from vigil.pipeline.combine import QUARANTINE, Outcome, asks_approval, combine, counts_high, unsaved
from vigil.policy.build import PolicySet
from vigil.policy.entities import Entity
from vigil.policy.entity_changes import EntityBatch, read_batch
from vigil.policy.extensions import IPAddr
from vigil.policy.json_values import record_to_cedar
from vigil.policy.request_values import property_overlay, typed_context
from vigil.policy.schema import Schema
from vigil.policy.values import EntityUid, Record, make_set
from vigil.store import Change, Store, StoreError, Ticket, open_store, state_dir
from vigil.workspace.loader import Workspace, load_workspace, workspace_reach
from vigil.workspace.settings import Settings

_log = logging.getLogger("vigil.engine")

Clock = Callable[[], float]
IdSource = Callable[[], "str | int"]

_UNKNOWN: Final = (ReasonCode.UNKNOWN_IDENTITY.value,)
_INACTIVE: Final = (ReasonCode.IDENTITY_INACTIVE.value,)
_NONE: Final[tuple[str, ...]] = ()
_NO_ERRORS: Final[tuple[tuple[str, str], ...]] = ()
_QUARANTINED: Final = (ReasonCode.QUARANTINED.value,)
MAX_TOOL_HINTS: Final = 10_000
"""The most tools whose upstream-published annotations an engine keeps (:meth:`Engine.note_tools`)."""
_ADVICE_QUARANTINED: Final = (Advice.QUARANTINED.value,)
_T = TypeVar("_T")


def _id_source() -> IdSource:
    """Decision ids: a counter, formatted with the per-process prefix when first read."""
    return itertools.count(1).__next__


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: ``ok``, the active revision, and the problems when it was refused."""

    ok: bool
    revision: str
    problems: tuple[str, ...] = ()


class _State:
    """One immutable generation of the engine: workspace + compiled policy set + derived lookups."""

    __slots__ = (
        "action_type",
        "authorizer",
        "behaviour",
        "by_type",
        "by_uid",
        "entity_seq",
        "entity_versions",
        "mode",
        "overlay_rules",
        "path_steps",
        "policy_reads_vigil",
        "reach",
        "revision",
        "schema",
        "workspace",
    )

    def __init__(
        self,
        workspace: Workspace,
        strings: dict[str, str],
        tool_hints: dict[EntityUid, dict[str, bool]] | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        ps: PolicySet = workspace.policy_set
        self.workspace = workspace
        # the change log's last entry this generation's entities include (the entity batches
        # replayed when it was built, [cluster]); the bus skips batches up to it
        self.entity_seq = 0
        # uid -> the change log entry of the batch that last put or deleted it ([cluster]): a
        # batch applied late (out of log order) never overwrites a later one's entity
        self.entity_versions: dict[EntityUid, int] = {}
        self.authorizer = ps.authorizer
        self.by_uid = ps.store.by_uid
        # the same entities by type, then id: the decision's two lookups hash and compare one
        # string each (the request's tuple is not the stored one, so a uid-keyed lookup compares
        # both strings and reads the stored tuple, one more cache miss)
        self.by_type: dict[str, dict[str, Entity]] = {}
        for uid, e in ps.store.by_uid.items():
            self.by_type.setdefault(uid[0], {})[uid[1]] = e
        self.schema: Schema | None = ps.schema
        self.revision = ps.revision
        self.mode = workspace.settings.behaviour.mode
        self.overlay_rules = workspace.settings.overlay
        self.action_type = action_type(ps.schema)
        self.behaviour = BehaviourModel(workspace.settings.behaviour, ps.store, strings, tool_hints, outbox)
        # Does any policy read context.vigil? If none does, behaviour can always be assessed after
        # the policy, in one pass with learning. (A fallback policy's code is not ours to read.)
        self.policy_reads_vigil = any(
            "vigil" in pol.source or pol.fallback_reason is not None for pol in ps.policies
        )
        # [escalation] reach: identity -> its neutral context.vigil with `reach`, and identity ->
        # {(action, resource): PathStep} for escalation_path (None when off: one comparison)
        reach = workspace.reach
        self.reach: dict[EntityUid, Record] | None = None if reach is None else dict(reach.vigil)
        self.path_steps: dict[EntityUid, Any] | None = None if reach is None else dict(reach.steps)


def _on_behalf(subject: EntityUid) -> str:
    """The behaviour feature of a delegated request's subject (the agent acts for it)."""
    return f'for:{subject[0]}::"{subject[1]}"'


def _established(beh: BehaviourModel, prof: Profile, when: float) -> bool:
    """Whether ``prof`` is past learning (enough requests, long enough since its first)."""
    return prof.learned >= beh.learning_requests and when - prof.first_seen >= beh.learning_s


def _entity(by_type: dict[str, dict[str, Entity]], uid: EntityUid) -> Entity | None:
    """The stored entity of ``uid`` (``_State.by_type``), or None."""
    ids = by_type.get(uid[0])
    return ids.get(uid[1]) if ids is not None else None


class Engine:
    """vigil's decision engine over one workspace. Thread-safe for ``decide``; ``reload`` is atomic.

    ``store`` replaces the state store the workspace names (``[store]``: profiles, approval
    tickets, quarantines, the identity registry); ``ticket_ids`` the source of approval ticket
    ids. ``new_state`` accepts starting with a new state database where one existed and is gone
    (otherwise refused).

    ``registry``: the identity registry (:class:`vigil.identity.Registry`), whose gate
    (``inactive``, ``next_expiry``) the decision path reads; ``identities``: its operator use
    cases (:class:`vigil.operations.identities.IdentityDesk`), audited in this engine's log.

    Tokens (``docs/identity.md``): ``verifier`` (:class:`vigil.identity.tokens.Verifier`) checks
    the tokens :meth:`decide` is given; ``tokens`` is the token service
    (:class:`vigil.identity.tokens.TokenService`) whose issuer is ``issuer`` (default: ``[identity]
    issuer``, else the ``[server]`` URL); ``revocations`` (:class:`vigil.operations.revocations.
    RevocationDesk`) revokes tokens and delegations. ``fetch``: how trusted issuers' JWK Sets are
    fetched (default: urllib).
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        audit: AuditSink | None = None,
        store: Store | None = None,
        ticket_ids: Callable[[], str] | None = None,
        new_state: bool = False,
        issuer: str | None = None,
        fetch: Fetch | None = None,
    ) -> None:
        self._strings: dict[str, str] = {}
        # tools' MCP annotations as upstreams publish them (note_tools), kept across reloads
        self._tool_hints: dict[EntityUid, dict[str, bool]] = {}
        self._tool_sources: dict[str, frozenset[EntityUid]] = {}  # who published which hints
        # [cluster] redis + share_behaviour: the model hands its request counts and newly learned
        # values to this outbox, announced to the other processes (vigil.behaviour.shared)
        cs = workspace.settings.cluster
        self._outbox = Outbox() if cs.redis and cs.share_behaviour else None
        self._state = _State(workspace, self._strings, self._tool_hints, self._outbox)
        self._clock: Clock = clock or time.time
        self._ids: IdSource = ids or _id_source()
        try:
            self._store: Store = (
                store
                if store is not None
                else open_store(workspace.settings.store, workspace.path, new_state=new_state)
            )
            # [cluster] redis: changes made here are announced; others' are applied at once
            self.cluster: ChangeBus | None = None
            cluster = workspace.settings.cluster
            if cluster.redis:
                self.cluster = ChangeBus(
                    cluster.redis,
                    cluster.channel,
                    self._store,
                    apply=_weakly(self, _apply_cluster_changes, gone=None),
                    on_changes=_weakly(self, _apply_entity_changes, gone=None),
                    signal=_cluster_signal(self),
                )
                self._store = announcing(self._store, self.cluster)
                # the entity batches made through the API since the files, by any process
                self._replay_entity_log(self._state)
                self.cluster.resume_after(self._state.entity_seq)
            self.profiles = ProfileBook(self._store, strings=self._strings)
            self.approvals = Approvals(self._store, ids=ticket_ids)
            self.quarantine = Quarantine(self._store, self.profiles)
            wait = workspace.settings.store.decision_timeout_ms / 1000
            self.approvals.decision_timeout_s = self.quarantine.decision_timeout_s = wait
            # the registry's gate, as the decision path reads it (set by the listener below)
            self._id_inactive: frozenset[EntityUid] = frozenset()
            self._id_expiry = math.inf
            self._seen: dict[EntityUid, float] = {}  # uses the profiles do not record
            self.registry = Registry(self._store, used=_used_reader(self.profiles, self._seen))
            self.registry.listen(_weakly(self, _copy_gate, gone=None))
            self._revoked = Revocations(self._store)
        except StoreError as e:
            raise WorkspaceError(
                f"cannot use the state store: {e.message}", [f"[store]: {e.message}"]
            ) from None
        self._profiles = self.profiles.profiles
        self.sharing: BehaviourChannel | None = None
        if self._outbox is not None:
            shared = Sharing(self.profiles, _weakly(self, _behaviour_model), self._clock, self._outbox)
            self.sharing = BehaviourChannel(
                cluster.redis, cluster.channel, collect=shared.collect, receive=shared.receive
            )
        self._attach_groups()
        self.store_errors = 0
        self._audit: AuditSink = audit if audit is not None else _default_sink(workspace)
        self._audit_required = workspace.settings.audit.required
        self.desk = OperatorDesk(
            self.approvals,
            self.quarantine,
            self._store,
            audit=_weakly(self, _record_event, gone=None),
            recordable=_weakly(self, _check_recordable, gone=None),
            clock=_weakly(self, _engine_now),
            approval_ttl=_weakly(self, _approval_ttl),
        )
        self.identities = IdentityDesk(
            self.registry,
            self._store,
            audit=_weakly(self, _record_event, gone=None),
            recordable=_weakly(self, _check_recordable, gone=None),
            clock=self._clock,
            settings=_weakly(self, _identity_settings),
            entities=_weakly(self, _entity_uids),
        )
        self.revocations = RevocationDesk(
            self._revoked,
            self._store,
            audit=_weakly(self, _record_event, gone=None),
            recordable=_weakly(self, _check_recordable, gone=None),
            clock=self._clock,
        )
        # tokens: the verifier of decide(..., token=), the token service, its signing keys
        self._require_token = workspace.settings.identity.require_token
        self._fetch = fetch
        self._issuer_override = issuer
        self.signing_keys = SigningKeys(
            state_dir(workspace.settings.store, workspace.path) / SIGNING_KEYS_FILE
        )
        self.verifier = Verifier(
            [],
            bindings=_binding_reader(self.registry),
            revocations=self._revoked,
            clock=self._clock,
        )
        self.tokens = TokenService(
            "",
            keys=self.signing_keys,
            registry=self.registry,
            verifier=self.verifier,
            act_for=_weakly(self, _decide_act_for, gone=(False, "")),
            record=_weakly(self, _record_event, gone=None),
            recordable=_weakly(self, _check_recordable, gone=None),
            clock=self._clock,
        )
        self._trust(workspace.settings)
        interval = workspace.settings.store.snapshot_interval_s
        self.profiles.start(
            interval,
            _tick(self.quarantine, self.registry, interval, self._revoked, self.verifier, self._clock),
        )
        self._reload_lock = threading.Lock()
        self.reloads = 0
        self.last_reload_error: tuple[str, ...] = ()
        if self.cluster is not None:
            self.cluster.start()
        if self.sharing is not None:
            self.sharing.start()

    @classmethod
    def from_workspace(cls, path: str | Path, **options: Any) -> Engine:
        """An engine on the workspace at ``path``; raises WorkspaceError (every problem listed)."""
        return cls(load_workspace(path), **options)

    # -- properties ---------------------------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        return self._state.workspace

    @property
    def policy_revision(self) -> str:
        return self._state.revision

    @property
    def audit(self) -> AuditSink:
        return self._audit

    # -- lifecycle ----------------------------------------------------------------------------
    def reload(self, *, by: str = "vigil") -> ReloadResult:
        """Load the workspace again and swap it in atomically; on failure keep the last good one.
        Audited (``reloaded``/``reload_refused``) with ``by``. The identity registry is read again
        from the store either way (a change another process made is in effect from here on).
        With ``[cluster] redis``, a successful reload is announced: the other processes reload
        their copy of the workspace too. Raises AuditError (the last good one stays) when
        ``[audit] required`` and the audit log cannot record the reload."""
        result = self._reload(by)
        if result.ok and self.cluster is not None:
            self.cluster.signal("reload", by=by)
        return result

    def _reload(self, by: str) -> ReloadResult:
        with self._reload_lock:
            self._recordable()
            try:
                self.registry.refresh()
                self._revoked.refresh()
            except StoreError:
                self.store_errors += 1
            try:
                ws = load_workspace(
                    self._state.workspace.path,
                    previous=self._state.workspace,
                    batches_logged=self.cluster is not None,
                )
            except WorkspaceError as e:
                return self._refuse_reload(by, tuple(e.problems) or (e.message,))
            state = _State(ws, self._strings, self._tool_hints, self._outbox)
            if self.cluster is not None:
                if ws.policy_set.entities_reused:  # a copy of the store the batches were applied to
                    state.entity_versions = dict(self._state.entity_versions)
                try:
                    self._replay_entity_log(state)
                except StoreError as e:  # without them this process's entities would differ
                    self.store_errors += 1
                    return self._refuse_reload(
                        by, (f"[store]: the entity changes cannot be read: {e.message}",)
                    )
            try:
                issuers = self._issuers(ws.settings, ws.path)
            except WorkspaceError as e:
                return self._refuse_reload(by, tuple(e.problems) or (e.message,))
            if not self._operator_event("reloaded", by, revision=state.revision) and self._audit_required:
                raise AuditError("the audit log refused the reload's event ([audit] required): not reloaded")
            self._state = state
            self._apply_trust(ws.settings, issuers)
            self.reloads += 1
            self.last_reload_error = ()
            return ReloadResult(True, self._state.revision)

    def _refuse_reload(self, by: str, problems: tuple[str, ...]) -> ReloadResult:
        """Keep the last good generation: note ``problems``, audit ``reload_refused``, and say so."""
        self.last_reload_error = problems
        self._operator_event("reload_refused", by, revision=self._state.revision, problems=list(problems))
        return ReloadResult(False, self._state.revision, problems)

    # -- tokens -------------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        """The token service's issuer (``iss`` of the tokens it signs)."""
        return self.tokens.issuer

    def set_issuer(self, issuer: str) -> None:
        """Name the token service ``issuer`` (the server, once it knows its public URL) unless
        ``[identity] issuer`` names it; its tokens are verified under that name from now on."""
        self._issuer_override = issuer
        ws = self._state.workspace
        self._apply_trust(ws.settings, self._issuers(ws.settings, ws.path))

    def _trust(self, settings: Settings) -> None:
        """Build the verifier's issuers (raises WorkspaceError: a jwks_file is unusable)."""
        ws = self._state.workspace
        self._apply_trust(settings, self._issuers(settings, ws.path))

    def _issuers(self, settings: Settings, root: Path) -> list[Issuer]:
        """vigil's own issuer and the trusted ones of ``settings``; raises WorkspaceError."""
        ids = settings.identity
        server = settings.server
        fallback = server.policy_decision_point or f"http://{server.host}:{server.port}"
        issuer = resolve_issuer(ids, self._issuer_override or fallback)
        remote = {i.name: i.keys for i in self.verifier.issuers.values() if isinstance(i.keys, RemoteKeys)}
        audiences = (*ids.audiences, issuer)
        return issuers_of(
            ids,
            root,
            issuer=issuer,
            audiences=audiences,
            keys=self.signing_keys,
            fetch=self._fetch,
            remote=remote,
        )

    def _apply_trust(self, settings: Settings, issuers: list[Issuer]) -> None:
        ids = settings.identity
        v = self.verifier
        v.skew_s = ids.clock_skew_s
        v.max_bytes = ids.max_token_bytes
        v.max_depth = ids.max_delegation_depth
        v.cache_size = ids.token_cache
        v.set_issuers(issuers)
        self._require_token = ids.require_token
        self.tokens.issuer = issuers[0].name
        self.tokens.settings = TokenSettings(
            token_ttl_s=ids.token_ttl_s,
            assertion_ttl_s=ids.assertion_ttl_s,
            max_delegation_depth=ids.max_delegation_depth,
            clock_skew_s=ids.clock_skew_s,
            max_token_bytes=ids.max_token_bytes,
            audiences=tuple(ids.audiences),
        )

    def change_entities(
        self, upserts: Any = None, deletes: Any = None, *, by: str = "vigil"
    ) -> dict[str, Any]:
        """Put a batch of Cedar entity JSON objects in (``upserts``, replacing entities with the same
        uid) and take uids out (``deletes``: ``{"type", "id"}`` objects), without a reload; the next
        decision sees the change. Atomic: the whole batch is checked first, and a bad item raises
        EntityChangeError (``invalid_entities``, with its ``index``) with nothing changed. Audited
        (``entities_changed``, with ``by``); raises AuditError first when ``[audit] required`` and the
        log cannot be written. Without ``[cluster]``, in memory: a reload reads the workspace's
        files again.

        With ``[cluster] redis`` the batch is also written to the store's change log (before it is
        applied here: when the store cannot take it, StoreError ``store_unavailable`` is raised and
        nothing changed) and announced: every other running process applies it too
        (:func:`_apply_entity_changes`), at once or when it catches up from the log; a process
        started later, and every reload, applies the log's batches on top of the files
        (:meth:`_replay_entity_log`)."""
        result = self._change_entities(upserts, deletes, by, announce=self.cluster is not None)
        assert result is not None  # only a logged batch (seq) is ever skipped
        return result

    def _change_entities(
        self, upserts: Any, deletes: Any, by: str, *, announce: bool, seq: int | None = None
    ) -> dict[str, Any] | None:
        """``seq``: the change log entry of another process's batch; None (nothing done) when this
        generation's replay included it already (a reload read the log after it was written)."""
        with self._reload_lock:
            st = self._state
            if seq is not None and seq <= st.entity_seq:
                return None
            self._recordable()
            ps = st.workspace.policy_set
            batch = read_batch(upserts, deletes, schema_handle=ps.schema_handle, action_type=st.action_type)
            if announce and self.cluster is not None:
                detail = {
                    "origin": self.cluster.origin,
                    "upserts": upserts if upserts is not None else [],
                    "deletes": deletes if deletes is not None else [],
                }
                seq = self._store.append_change(
                    self._clock(), ENTITIES_CHANGED, _ENTITIES_SUBJECT, by, detail
                ).seq
            deleted, moved = _apply_batch(st, batch, seq)
            st.authorizer.forget(moved)
            self._recompute_reach(st)
            result = {
                "upserted": len(batch.upserts),
                "deleted": deleted,
                "entities": len(ps.store),
                "changes": ps.store.changes,
                "revision": st.revision,
            }
            self._record(
                "entities_changed",
                by,
                upserted=[uid_dict(e.uid) for e in batch.upserts[:_AUDIT_UIDS]],
                deleted=[uid_dict(u) for u in batch.deletes[:_AUDIT_UIDS]],
                counts={"upserted": len(batch.upserts), "deleted": deleted},
                entities=len(ps.store),
            )
            return result

    def _replay_entity_log(self, st: _State) -> int:
        """Apply to ``st`` (a generation just built from the files) every entity batch of the
        store's change log, in order ([cluster]: batches are logged, so a process started or
        reloaded after them has them too), and note the last entry read (``st.entity_seq``: the
        bus skips what the replay covered). A batch this workspace refuses (a schema deployed
        since) is skipped and logged, as the bus does. Returns the batches applied; raises
        StoreError when the log cannot be read."""
        ps = st.workspace.policy_set
        after = 0
        applied = 0
        moved: list[Entity] = []
        while True:
            page = self._store.changes(after=after, limit=_REPLAY_PAGE)
            for c in page:
                if c.kind != ENTITIES_CHANGED:
                    continue
                d = c.detail
                try:
                    batch = read_batch(
                        d.get("upserts") or None,
                        d.get("deletes") or None,
                        schema_handle=ps.schema_handle,
                        action_type=st.action_type,
                    )
                except VigilError as err:
                    _log.warning("entity change %d not replayed: %s", c.seq, err)
                    continue
                moved.extend(_apply_batch(st, batch, c.seq)[1])
                applied += 1
            if page:
                after = page[-1].seq
            if len(page) < _REPLAY_PAGE:
                break
        st.entity_seq = after
        if applied:
            st.authorizer.forget(moved)
            self._recompute_reach(st)
        return applied

    def _recompute_reach(self, st: _State) -> None:
        """After an entity change: each identity's escalation reach again (``[escalation]
        reach``). When it cannot be computed (over ``reach_max_checks``), the reach of before the
        change stays, and the failure is logged (a reload then refuses the workspace)."""
        ws = st.workspace
        if ws.reach is None:
            return
        try:
            reach = workspace_reach(ws.policy_set, ws.settings, ws.path)
        except WorkspaceError as e:
            _log.warning("escalation reach not recomputed after an entity change: %s", e.message)
            return
        if reach is not None:
            st.workspace = replace(ws, reach=reach)
            st.reach = dict(reach.vigil)
            st.path_steps = dict(reach.steps)

    def close(self) -> None:
        """Flush and close the audit sink; write the last profile snapshot and the identities'
        usage; stop the cluster threads; close the store."""
        if self.sharing is not None:
            self.sharing.close()
        if self.cluster is not None:
            self.cluster.close()
        self._audit.close()
        self.profiles.close()
        try:
            self.registry.flush_usage()
        except StoreError:
            self.store_errors += 1
        self._store.close()

    @property
    def activity(self) -> ProfileBook:
        """Per-identity activity (the behaviour profiles: allowed, denied, first and last seen)."""
        return self.profiles

    @property
    def store(self) -> Store:
        return self._store

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- decisions ----------------------------------------------------------------------------
    def decide(
        self, request: dict[str, Any], *, now: datetime | None = None, token: str | bytes | None = None
    ) -> DecisionRecord:
        """Decide one AuthZEN evaluation request, backed by ``token`` (a JWT) when given.

        Returns a DecisionRecord (a deny for every failure to permit; a token that does not verify,
        names another subject, or whose delegation chain holds a party that may not act, is a
        deny: :mod:`vigil.delegation`). Raises RequestError (``invalid_request``/``invalid_value``)
        for a malformed request, before any state changes.
        """
        t0 = perf_counter_ns()
        st = self._state
        req = parse_authzen(request, st.action_type)
        when = self._clock() if now is None else _epoch(now)
        if token is None and not self._require_token:
            return self._decide(st, req, when, t0)
        return decide_with_token(self, st, req, when, t0, token)

    def decide_many(
        self, requests: Iterable[dict[str, Any]], *, now: datetime | None = None
    ) -> list[DecisionRecord]:
        """Decide each request in order (:meth:`decide_item`); never raises for one item, so
        one bad or failing item never aborts the batch."""
        return [self.decide_item(request, now=now) for request in requests]

    def decide_item(
        self, request: Any, *, now: datetime | None = None, token: str | bytes | None = None
    ) -> DecisionRecord:
        """Decide one batch item; never raises. A malformed request yields a deny with reason
        ``invalid_request`` and ``record.error`` = ``{"code", "message"}``; any unexpected
        exception while deciding it, a deny with reason ``internal_error`` (logged on
        ``vigil.engine`` with the exception; the record's error says nothing of it)."""
        try:
            return self.decide(request, now=now, token=token)
        except VigilError as e:
            return self._invalid(request, e)
        except Exception:
            _log.exception("deciding a batch item failed; denied with internal_error")
            return self._internal(request)

    def decide_access(self, req: AccessRequest, *, now: datetime | None = None) -> DecisionRecord:
        """Decide an already parsed request (replay, tests)."""
        t0 = perf_counter_ns()
        when = self._clock() if now is None else _epoch(now)
        return self._decide(self._state, req, when, t0)

    def _decide(
        self, st: _State, req: AccessRequest, when: float, t0: int, delegation: Any = None
    ) -> DecisionRecord:
        """parse (done) -> context -> identity -> signals -> authorize -> combine -> record ->
        audit -> learn. ``delegation``: the actors of a delegated token (:mod:`vigil.delegation`),
        who were allowed already; policies see them in ``context.vigil``."""
        context = self._context(st, req)
        if delegation is not None:
            context["vigil"] = delegated_vigil(NEUTRAL_VIGIL, delegation)
        # `context` is a fresh, deep-converted snapshot: the audit event is built from it later,
        # so a caller mutating its request afterwards cannot change what is audited.
        entity = _entity(st.by_type, req.principal)
        if entity is None:
            return self._denied_early(st, req, context, req.principal, _UNKNOWN, when, t0, None, delegation)
        # From here on the principal is the stored entity's own uid tuple: tables keyed by it
        # (profiles) then match by identity rather than by comparing strings.
        principal = entity.uid
        if self._gated(principal, when):
            return self._denied_early(st, req, context, principal, _INACTIVE, when, t0, None, delegation)
        # the per-call attribute overlay: raises OverlayError before anything is decided or
        # changed (it is pure; the identity step below may make a profile)
        overlay = None
        applied = None
        if req.subject_properties is not None or req.resource_properties is not None:
            overlay, applied = self._overlay(st, req)
        # the resource's entity, looked up once for the policy and the behaviour model; the
        # address the context conversion parsed, for the behaviour model's network key
        rentity = _entity(st.by_type, req.resource)
        # [escalation] reach: the identity's reach in context.vigil, and whether this request is
        # a step of a path to admin (two dict lookups; nothing when reach is off)
        step = None
        if st.reach is not None:
            rv = st.reach.get(principal)
            if rv is not None:
                context["vigil"] = rv if delegation is None else delegated_vigil(rv, delegation)
            steps = st.path_steps
            mine = steps.get(principal) if steps is not None else None
            if mine is not None:
                step = mine.get((req.action, req.resource))
        ip = context.get("ip")
        if type(ip) is not IPAddr:
            ip = None
        # identity: a quarantined identity is denied before anything else
        beh = st.behaviour
        # whose behaviour this is: the subject's, or for a delegated token the current actor's
        # (the agent doing the work; the subject it acts for is one of the request's features)
        actor = _entity(st.by_type, delegation[0]) if delegation else None
        on_behalf = None
        if actor is None:
            actor = entity
        else:
            on_behalf = _on_behalf(principal)
            sprof = self._profiles.get(principal)
            if (sprof is not None and sprof.quarantined) or principal in self.quarantine:
                return self._quarantined(st, req, context, sprof, when, t0, delegation)
        who = actor.uid
        prof = self._profile_of(beh, actor, req, rentity, when)
        a = None
        if prof is not None:
            if prof.quarantined:
                return self._quarantined(st, req, context, prof, when, t0, delegation)
            # signals: computed before the policy only when they can matter to it (a policy reads
            # context.vigil and the identity is enforced); otherwise after it, in one pass
            if st.policy_reads_vigil and beh.enforce and _established(beh, prof, when):
                a, f = self._signals_first(beh, prof, req, context, when, rentity, ip, on_behalf, step)
                if delegation is not None:
                    context["vigil"] = delegated_vigil(context["vigil"], delegation)
        elif who in self.quarantine:
            return self._quarantined(st, req, context, prof, when, t0, delegation)
        v = authorize(st.authorizer, principal, req.action, req.resource, context, overlay, entity, rentity)
        allowed = v.allowed
        reasons = v.reasons
        if a is None:
            # The policy saw a neutral context.vigil (or does not read it): assess now, and learn
            # in the same pass unless the risk changes the decision (then `f` comes back).
            a, f = beh.assess(
                prof, req.action, req.resource, req.context, when, allowed, rentity, ip, on_behalf, step
            )
        # combine: only a risk at the step-up threshold can change anything
        advice = _NONE
        ticket = None
        learnable = allowed
        if a.risk >= beh.step_up_risk:
            out, ticket = self._combine(beh, prof, who, req, a, f, allowed, reasons)
            allowed, reasons, advice, learnable = out.allowed, out.reasons, out.advice, out.learnable
        record = new_record(
            self._ids(),
            allowed,
            reasons,
            v.policies,
            v.errors,
            a.risk,
            a.signals,
            advice,
            st.revision,
            perf_counter_ns() - t0,
            when,
            principal,
            req.action,
            req.resource,
            context,
            a,
            ticket,
        )
        if applied:
            record.overlay = applied
        if delegation is not None:
            record.delegation = delegation
        self._finish(record)
        # learn: after the decision, so a request cannot raise its own allowance
        self._learn(beh, prof, who, f, learnable, record.allowed, when)
        if record.allowed:
            ac = beh._acls.get(req.action)
            if (ac is not None and ac[0] == ADMIN) or step is not None:
                # an admin step, or a step of a path to admin, on another identity
                self._link(beh, who, req.resource, when)
        return record

    def _link(self, beh: BehaviourModel, actor: EntityUid, resource: EntityUid, when: float) -> None:
        """An allowed admin step of ``actor`` on another identity (a key created for it, a role
        assumed, a grant to it) links that identity's next privileged steps to the actor's chain
        (:meth:`BehaviourModel.link`); nothing when the resource is no identity with a profile."""
        target = self._profiles.get(resource)
        if target is not None and resource != actor:
            beh.link(target, actor, when)

    def _context(self, st: _State, req: AccessRequest) -> Record:
        """The Cedar context of ``req`` with a neutral ``context.vigil``: a fresh, deep-converted
        snapshot (typed by the schema, with ``action_properties``); raises ValueConversionError."""
        if st.schema is None and req.action_properties is None:
            context = record_to_cedar(req.context, "context")
        else:
            context = self._typed_context(st, req)
        context["vigil"] = NEUTRAL_VIGIL
        return context

    def _gated(self, principal: EntityUid, when: float) -> bool:
        """The identity registry's gate: True when ``principal`` is suspended, retired or expired
        (its use noted). One float comparison, and a set lookup while any registered identity is
        inactive."""
        if when >= self._id_expiry:
            self.registry.expire(when)
        inactive = self._id_inactive
        if inactive and principal in inactive:
            self._seen[principal] = when
            return True
        return False

    def _signals_first(
        self,
        beh: BehaviourModel,
        prof: Profile,
        req: AccessRequest,
        context: Record,
        when: float,
        rentity: Entity | None,
        ip: IPAddr | None,
        on_behalf: str | None,
        step: Any,
    ) -> tuple[Assessment, Features | None]:
        """Assess before the policy, so that it reads the risk and signals in ``context.vigil``
        (keeping its ``reach``, when there is one)."""
        a, f = beh.assess(
            prof, req.action, req.resource, req.context, when, None, rentity, ip, on_behalf, step
        )
        if not a.learning and a.risk:
            v = Record({"risk": a.risk, "signals": make_set(a.signals)})
            reach = context["vigil"].get("reach")
            if reach is not None:
                v["reach"] = reach
            context["vigil"] = v
        return a, f

    def _profile_of(
        self, beh: BehaviourModel, entity: Entity, req: AccessRequest, rentity: Entity | None, when: float
    ) -> Profile | None:
        """The identity's behaviour profile; at its first request (``req``, on ``rentity``), the
        one :meth:`_inherit` gives (a quarantined identity without a profile gets none: it stays on
        the quarantine path)."""
        prof = self._profiles.get(entity.uid)
        if prof is None and not beh.off and entity.uid not in self.quarantine:
            prof = self._inherit(beh, entity, req, rentity, when)
        return prof

    def _inherit(
        self, beh: BehaviourModel, entity: Entity, req: AccessRequest, rentity: Entity | None, when: float
    ) -> Profile | None:
        """The profile of an identity's first request (``req``): for a short-lived one, a copy of
        its parent's baseline (:mod:`vigil.behaviour.sessions`: the entity's ``parent`` attribute,
        a ``[behaviour] sessions`` rule), which its requests then also teach; else an empty one
        whose base is its peer group (named by an attribute, else learned from the work of this
        request: :mod:`vigil.behaviour.peers`), so the first request is judged against its peers
        (``BehaviourModel._judge_first``); None when there is neither (the profile is made when
        the request is learned)."""
        parent = parent_of(entity.uid, entity.attrs, beh.sessions)
        base = self._profiles.get(parent) if parent is not None else None
        if base is None or base.quarantined:
            # no parent: an empty profile whose first request is judged against its peer group
            group = self._group(beh, entity.uid, when)
            if group is None and beh.peers:  # no attribute names one: the group of its work
                group = self._group_profile(beh.work_of(req.action, req.resource, rentity), when)
            if group is None or not group.learned:
                return None
            prof = self.profiles.create(entity.uid, when)
            if prof is not None:
                prof.base = group
                prof.peers = self._also(beh, entity.uid, when, group, rentity, req)
            return prof
        prof = self.profiles.inherit(entity.uid, base, when)
        if prof is not None:
            prof.base = base
            prof.peers = self._also(beh, entity.uid, when, base, rentity, req)
        return prof

    def _attach_groups(self) -> None:
        """Profiles restored from the store teach their peer group again (a parent link is not
        kept across restarts)."""
        beh = self._state.behaviour
        for uid, prof in list(self._profiles.items()):
            if uid[0] != GROUP_TYPE and prof.base is None:
                work = beh.work_of_profile(prof)
                prof.base = self._group(beh, uid, prof.first_seen, work)
                if beh.settings.peers_also and prof.base is not None:
                    prof.peers = self._groups_also(beh, uid, prof.first_seen, work, prof.base)

    def _also(
        self,
        beh: BehaviourModel,
        uid: EntityUid,
        when: float,
        base: Profile,
        rentity: Entity | None,
        req: AccessRequest,
    ) -> tuple[Profile, ...] | None:
        """:meth:`_groups_also` at an identity's first request (None, at no cost, without
        ``[behaviour] peers_also``)."""
        if not beh.settings.peers_also:
            return None
        return self._groups_also(beh, uid, when, beh.work_of(req.action, req.resource, rentity), base)

    def _groups_also(
        self, beh: BehaviourModel, uid: EntityUid, when: float, work: EntityUid | None, base: Profile
    ) -> tuple[Profile, ...] | None:
        """The shared profiles of the further peer groups ``uid`` belongs to (``[behaviour]
        peers_also``), made empty at their first member, ``base`` left out; None when there are
        none."""
        out = []
        for guid in groups_also(self._group_attrs(uid), beh.settings.peers_also, work):
            group = self._group_profile(guid, when)
            if group is not None and group is not base:
                out.append(group)
        return tuple(out) or None

    def _group_profile(self, guid: EntityUid | None, when: float) -> Profile | None:
        """The shared profile of the peer group ``guid`` (made empty at its first member), or None
        (no group, or the profile book is full)."""
        if guid is None:
            return None
        group = self._profiles.get(guid)
        if group is None:
            group = self.profiles.create(guid, when)
        return group

    def _group_attrs(self, uid: EntityUid) -> Any:
        """The attributes peer groups are named by: the entity's, with the registry's owner,
        purpose and kind where the entity has none (None: neither knows ``uid``)."""
        entity = self._state.by_uid.get(uid)
        attrs: Any = entity.attrs if entity is not None else None
        entry = self.registry.get(uid)
        if entry is not None:
            attrs = {"owner": entry.owner, "purpose": entry.purpose, "kind": entry.kind, **(attrs or {})}
        return attrs

    def _group(
        self, beh: BehaviourModel, uid: EntityUid, when: float, work: EntityUid | None = None
    ) -> Profile | None:
        """The shared profile of ``uid``'s peer group (made empty at its first member): the one a
        ``[behaviour] peers`` attribute of its entity names, else ``work`` (its learned group,
        :func:`vigil.behaviour.peers.work_uid`), or None."""
        if not beh.peers:
            return None
        guid = group_uid(self._group_attrs(uid), beh.peers)
        return self._group_profile(work if guid is None else guid, when)

    def _learn(
        self,
        beh: BehaviourModel,
        prof: Profile | None,
        principal: EntityUid,
        f: Features | None,
        learnable: bool,
        allowed: bool,
        when: float,
    ) -> None:
        """Learn the decided request (``f``) on the identity's profile, created at its first
        request. A request let through on an approval is not learnable (see
        :mod:`vigil.pipeline.combine`): an approval accepts one risk once, it does not make the
        risky context normal. Without ``f`` (``[behaviour] mode = "off"``) the use is noted for
        the registry's ``last_used``."""
        if f is None:
            if beh.off:
                self._seen[principal] = when
            return
        if prof is None:
            prof = self.profiles.create(principal, f.t)
            if prof is None:
                return
            prof.base = self._group(beh, principal, f.t)
            if prof.base is None and beh.peers and f.resource in self._state.by_uid:
                # no attribute names one: the group of its work (on a resource the workspace holds)
                prof.base = self._group_profile(beh.work_of_features(f), f.t)
            if beh.settings.peers_also and prof.base is not None:
                prof.peers = self._groups_also(beh, principal, f.t, beh.work_of_features(f), prof.base)
        beh.learn(prof, f, learnable and allowed, allowed)

    def _denied_early(
        self,
        st: _State,
        req: AccessRequest,
        context: Record,
        principal: EntityUid,
        reasons: tuple[str, ...],
        when: float,
        t0: int,
        error: dict[str, Any] | None = None,
        delegation: tuple[EntityUid, ...] | None = None,
    ) -> DecisionRecord:
        """A deny before any policy runs (``unknown_identity``, ``identity_inactive``, and the
        token denies of :mod:`vigil.delegation`, with the token ``error`` or the ``delegation``
        chain): no risk, nothing learned; audited."""
        record = DecisionRecord(
            self._ids(),
            False,
            reasons,
            _NONE,
            _NO_ERRORS,
            0,
            _NONE,
            _NONE,
            st.revision,
            perf_counter_ns() - t0,
            when,
            principal,
            req.action,
            req.resource,
            context,
            error,
        )
        if delegation is not None:
            record.delegation = delegation
        self._finish(record)
        return record

    def _request_context(self, st: _State, req: AccessRequest) -> Record:
        """The request's Cedar context as a decision builds it, with a neutral ``context.vigil``
        (:mod:`vigil.delegation`); raises ValueConversionError."""
        return self._context(st, req)

    def _party_blocked(self, st: _State, uid: EntityUid, when: float) -> tuple[str, ...] | None:
        """Why a party of a delegation chain may not act at ``when`` (``unknown_identity``,
        ``identity_inactive``, ``quarantined``), or None."""
        if uid not in st.by_uid:
            return _UNKNOWN
        if when >= self._id_expiry:
            self.registry.expire(when)
        if uid in self._id_inactive:
            return _INACTIVE
        prof = self._profiles.get(uid)
        if (prof is not None and prof.quarantined) or uid in self.quarantine:
            return _QUARANTINED
        return None

    def _combine(
        self,
        beh: BehaviourModel,
        prof: Profile | None,
        who: EntityUid,
        req: AccessRequest,
        a: Assessment,
        f: Features | None,
        allowed: bool,
        reasons: tuple[str, ...],
    ) -> tuple[Outcome, dict[str, Any] | None]:
        """Risk at or above the step-up threshold: :func:`vigil.pipeline.combine.combine`, with the
        state it reads gathered first (an approval of this request used, the identity's high-risk
        decisions counted) and the effect it wants applied; ``(outcome, ticket or None)``. ``who``:
        the identity whose behaviour ``prof`` is (the subject, or a delegated token's current
        actor), the one a quarantine takes; a ticket is for the request as made."""
        if prof is None or f is None:
            return combine(beh, a, False, allowed, reasons), None
        granted = False
        highs = 0
        if asks_approval(beh, a, True, allowed):
            granted = self._granted(req, f.t) is not None
        if not granted and counts_high(beh, a, True):
            highs = beh.note_high(prof, f.t)
        out = combine(beh, a, True, allowed, reasons, granted, highs)
        effect = out.effect
        if effect is None:
            return out, None
        if effect.kind == QUARANTINE:
            return (out if self._quarantine(who, effect.reason, f.t) else unsaved(out)), None
        ticket = self._open_ticket(beh, req, a, f.t)
        return (out, ticket) if ticket is not None else (unsaved(out), None)

    def _granted(self, req: AccessRequest, t: float) -> Ticket | None:
        """Use an approval of this request from its bound context; None (deny) when there is
        none or the store cannot record the use."""
        try:
            return self.approvals.granted(
                req.principal, req.action, req.resource, bound_context(req.context), t
            )
        except StoreError:
            self.store_errors += 1
            return None

    def _quarantine(self, principal: EntityUid, why: str, t: float) -> bool:
        """Quarantine ``principal`` (vigil's own decision, audited as ``quarantine_added`` by
        ``vigil``); False when it holds in memory only (the store could not save it)."""
        self.quarantine.add_automatic(principal, reason=why, now=t)
        self._operator_event("quarantine_added", "vigil", subject=uid_dict(principal), reason=why)
        return self.quarantine.durable(principal)

    def _open_ticket(
        self, beh: BehaviourModel, req: AccessRequest, a: Assessment, t: float
    ) -> dict[str, Any] | None:
        """An approval ticket for this request, bound to its context; None when the store cannot
        save it (counted in ``store_errors``)."""
        try:
            t_ = self.approvals.request(
                req.principal,
                req.action,
                req.resource,
                risk=a.risk,
                signals=a.signals,
                why=a.why(),
                now=t,
                ttl_s=beh.settings.ticket_ttl_s,
                bound=bound_context(req.context),
            )
        except StoreError:
            self.store_errors += 1
            return None
        return ticket_dict(t_)

    def _quarantined(
        self,
        st: _State,
        req: AccessRequest,
        context: Record,
        prof: Profile | None,
        when: float,
        t0: int,
        delegation: tuple[EntityUid, ...] | None = None,
    ) -> DecisionRecord:
        """A quarantined identity: denied before the policy; its signals are still reported (and
        the delegation chain when a delegated token backed the request)."""
        beh = st.behaviour
        a, f = beh.assess(prof, req.action, req.resource, req.context, when)
        record = DecisionRecord(
            self._ids(),
            False,
            _QUARANTINED,
            _NONE,
            _NO_ERRORS,
            a.risk,
            a.signals,
            _ADVICE_QUARANTINED,
            st.revision,
            perf_counter_ns() - t0,
            when,
            req.principal,
            req.action,
            req.resource,
            context,
            None,
            a,
        )
        if delegation is not None:
            record.delegation = delegation
        self._finish(record)
        if f is None:  # [behaviour] mode = "off": nothing to learn
            return record
        if prof is None:
            prof = self.profiles.create(req.principal, f.t)
            if prof is None:
                return record
            prof.quarantined = True
        beh.learn(prof, f, False, False)
        return record

    def _finish(self, record: DecisionRecord) -> None:
        """Audit, after the decision is made (``audit = required``: an unbuffered event denies)."""
        if not self._audit.emit(record) and self._audit_required and record.allowed:
            record.allowed = False
            record.reason_codes = (ReasonCode.AUDIT_UNAVAILABLE.value,)

    def _typed_context(self, st: _State, req: AccessRequest) -> Record:
        """The context typed by the schema, with ``action_properties``; raises ValueConversionError."""
        return typed_context(st.schema, req.action, req.context, req.action_properties)

    def _overlay(self, st: _State, req: AccessRequest) -> tuple[dict[EntityUid, Record], dict[str, Record]]:
        """The per-call attribute overlay and the supplied values by side; raises OverlayError
        (what ``[overlay]`` refuses) or ValueConversionError."""
        return property_overlay(
            st.schema,
            st.by_uid,
            (
                (req.principal, req.subject_properties, "subject.properties"),
                (req.resource, req.resource_properties, "resource.properties"),
            ),
            st.overlay_rules,
        )

    def refuse(self, request: Any, error: VigilError) -> DecisionRecord:
        """The audited deny (``invalid_request``, ``record.error`` from ``error``) of a request a
        transport refused before deciding it (e.g. MCP arguments Cedar cannot hold)."""
        return self._invalid(request, error)

    def _invalid(self, request: Any, error: VigilError) -> DecisionRecord:
        """The deny of a malformed item (``invalid_request``, the error in ``record.error``)."""
        record = self._item_deny(
            request, self._ids(), self._clock(), ReasonCode.INVALID_REQUEST.value, error.to_dict()
        )
        self._audit.emit(record)
        return record

    def _internal(self, request: Any) -> DecisionRecord:
        """The deny of an item whose decision failed unexpectedly; never raises (the failing
        component may be the id source, the clock or the audit sink)."""
        try:
            rid: str | int = self._ids()
        except Exception:
            rid = "internal-error"
        error = {"code": "internal_error", "message": "the decision failed unexpectedly; denied"}
        record = self._item_deny(request, rid, time.time(), ReasonCode.INTERNAL_ERROR.value, error)
        try:
            self._audit.emit(record)
        except Exception:
            _log.exception("auditing an internal_error deny failed")
        return record

    def _item_deny(
        self, request: Any, rid: str | int, when: float, reason: str, error: dict[str, Any]
    ) -> DecisionRecord:
        """A denied batch item that was never decided: no policy, no risk, the uids it names."""
        st = self._state
        return DecisionRecord(
            id=rid,
            allowed=False,
            reason_codes=(reason,),
            policies=_NONE,
            errors=_NO_ERRORS,
            risk=0,
            signals=_NONE,
            advice=_NONE,
            policy_revision=st.revision,
            latency_ns=0,
            time=when,
            principal=_uid_or_blank(request, "subject"),
            action=(st.action_type, ""),
            resource=_uid_or_blank(request, "resource"),
            context=None,
            error=error,
        )

    # -- approvals and quarantine (operators: CLI, admin HTTP API) ------------------------------
    def now(self) -> float:
        """The engine's clock (epoch seconds): the time operator actions are stamped with."""
        return self._clock()

    def rotate_signing_key(self, *, by: Any) -> str:
        """Rotate the token service's signing key: a new key signs from now on, the previous one
        stays published for ``[identity] token_ttl_s`` plus the clock skew. Audited
        (``signing_key_rotated``). Returns the new kid; raises RequestError, SigningKeyError or
        AuditError."""
        who = check_actor(by)
        self._recordable()
        ids = self._state.workspace.settings.identity
        kid = self.signing_keys.rotate(self._clock(), ids.token_ttl_s + ids.clock_skew_s)
        self._record("signing_key_rotated", who, kid=kid)
        return kid

    def note_tools(self, hints: Mapping[EntityUid, Mapping[str, bool]], source: str = "") -> None:
        """The MCP annotations upstreams publish for their tools (``readOnlyHint``,
        ``destructiveHint``, ...), so that behaviour classes each tool call by what the tool does
        (a read-only tool reads; a destructive one is a sensitive write) when the workspace does
        not declare the tool. ``hints`` is everything ``source`` (an upstream) publishes now: it
        replaces what that source published before (a tool it no longer lists loses its hints).
        At most :data:`MAX_TOOL_HINTS` tools have hints; beyond, a new tool is classed by its name
        only (hints can only raise a class). Kept across reloads; never raises."""
        beh = self._state.behaviour
        known = self._tool_hints
        fresh = {uid: {k: v for k, v in h.items() if type(v) is bool} for uid, h in hints.items()}
        for uid in self._tool_sources.get(source, frozenset()):
            if uid not in fresh:
                beh.forget_tool(uid)
        kept = []
        for uid, h in fresh.items():
            if uid in known or len(known) < MAX_TOOL_HINTS:
                beh.note_tool(uid, h)
                kept.append(uid)
        if kept:
            self._tool_sources[source] = frozenset(kept)
        else:
            self._tool_sources.pop(source, None)

    def identity_active(self, uid: EntityUid) -> bool:
        """Whether the registry lets ``uid`` act now (True for an identity it does not hold)."""
        return self.registry.is_active(uid, self._clock())

    def audit_operator(self, kind: str, by: str, **details: Any) -> bool:
        """Write an operator event (``type`` ``kind``, ``by``, the engine's time, ``details``) to
        the audit log, chained with the decisions. Returns False when the sink refused it."""
        return self._operator_event(kind, by, **details)

    def _operator_event(self, kind: str, by: str, **details: Any) -> bool:
        emit = getattr(self._audit, "emit_event", None)
        if emit is None:
            return True
        ok: bool = emit(operator_event(kind, by, rfc3339(self._clock()), **details))
        return ok

    # Operator changes (self.desk, self.identities) are audited with `by`. With [audit] required,
    # one the audit log cannot record fails with AuditError (audit_unavailable): before anything
    # changes while the log is known not to be writable, after the change when its event is
    # refused (the error says so).
    def _recordable(self) -> None:
        """Before an operator change: raises AuditError (nothing changed) when ``[audit] required``
        and the audit log cannot be written."""
        if not self.audit_ready():
            raise AuditError("the audit log cannot be written ([audit] required): nothing was changed")

    def _record(self, kind: str, by: str, **details: Any) -> None:
        """After an operator change: its event. Raises AuditError when ``[audit] required`` and the
        audit log refused it (the change stands, unrecorded)."""
        if not self._operator_event(kind, by, **details) and self._audit_required:
            raise AuditError(
                f"the change was made, but the audit log refused its {kind} event ([audit] required; "
                "see the vigil.audit log)"
            )

    def audit_ready(self) -> bool:
        """False while ``[audit] required`` is set and the audit log cannot be written."""
        return not self._audit_required or bool(getattr(self._audit, "healthy", True))

    # -- introspection ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Revision, counts, fallbacks, audit and activity figures (for `vigil check` and admin APIs)."""
        ps = self._state.workspace.policy_set
        return {
            "policy_revision": ps.revision,
            "policies": len(ps.policies),
            "compiled": len(ps.policies) - len(ps.fallbacks),
            "fallbacks": [{"policy": f.policy_id, "reason": f.reason} for f in ps.fallbacks],
            "entities": len(ps.store),
            "schema": ps.schema is not None,
            "behaviour_mode": self._state.mode,
            "audit_dropped": self._audit.dropped,
            "audit_write_errors": getattr(self._audit, "write_errors", 0),
            "audit_healthy": bool(getattr(self._audit, "healthy", True)),
            "audit_alarms": getattr(self._audit, "alarms", 0),
            "identities_seen": len(self.profiles),
            "quarantined": len(self.quarantine),
            "identities_registered": len(self.registry),
            "identities_inactive": len(self._id_inactive),
            "token_issuer": self.tokens.issuer,
            "tokens_issued": self.tokens.issued,
            "tokens_verified": self.verifier.fresh,
            "token_cache_hits": self.verifier.hits,
            "revocations": len(self._revoked.items()),
            "profile_snapshot_errors": self.profiles.snapshot_errors,
            "store_errors": self.store_errors + self.quarantine.store_errors,
            "reloads": self.reloads,
            **({"cluster": self.cluster.status()} if self.cluster is not None else {}),
            **({"behaviour_sharing": self.sharing.status()} if self.sharing is not None else {}),
            "entity_changes": ps.store.changes,
        }


_AUDIT_UIDS: Final = 1_000  # uids an entities_changed event lists (the counts are always whole)
ENTITIES_CHANGED: Final = "entities_changed"  # the change-log kind of an entity batch (cluster)
_ENTITIES_SUBJECT: Final = ("Vigil::Workspace", "entities")


def _epoch(now: datetime) -> float:
    if now.tzinfo is None:
        raise RequestError("'now' must be a timezone-aware datetime")
    return now.timestamp()


def _uid_or_blank(request: Any, field: str) -> tuple[str, str]:
    if isinstance(request, dict):
        v = request.get(field)
        if isinstance(v, dict) and isinstance(v.get("type"), str) and isinstance(v.get("id"), str):
            return (v["type"], v["id"])
    return ("", "")


def _tick(
    quarantine: Quarantine,
    registry: Registry,
    flush_s: float,
    revoked: Revocations | None = None,
    verifier: Verifier | None = None,
    clock: Clock = time.time,
) -> Callable[[], None]:
    """The snapshot thread's tick (about once a second): notice quarantines, registry changes
    and revocations made by another process; fetch trusted issuers' JWK Sets that are due (off
    the decision path); every ``flush_s`` seconds, write the identities' usage. Raises the last
    StoreError after trying each."""
    qref = weakref.ref(quarantine)
    rref = weakref.ref(registry)
    vref = weakref.ref(revoked) if revoked is not None else None
    last_flush = [time.monotonic()]

    def tick() -> None:
        failed: StoreError | None = None
        q = qref()
        r = rref()
        steps: list[Callable[[], Any]] = []
        if q is not None:
            steps.append(q.refresh)
        v = vref() if vref is not None else None
        if v is not None:
            steps.append(v.refresh)
        if verifier is not None:
            now = clock()
            for issuer in verifier.issuers.values():
                if isinstance(issuer.keys, RemoteKeys):
                    issuer.keys.maintain(now)
        if r is not None:
            steps.append(r.refresh)
            if time.monotonic() - last_flush[0] >= flush_s:
                last_flush[0] = time.monotonic()
                steps.append(r.flush_usage)
        for step in steps:
            try:
                step()
            except StoreError as e:
                failed = e
        if failed is not None:
            raise failed

    return tick


def _binding_reader(registry: Registry) -> Callable[[str, str], EntityUid | None]:
    """The registered identity an external (issuer, subject) names, or None."""

    def bound(issuer: str, subject: str) -> EntityUid | None:
        entry = registry.find_binding(issuer, subject)
        return entry.subject if entry is not None else None

    return bound


_GONE: Final = object()


def _weakly(engine: Engine, use: Callable[..., _T], gone: Any = _GONE) -> Callable[..., _T]:
    """``use(engine, *args, **kwargs)`` through a weak reference: the desks, the registry and the
    cluster bus hold this callable, not the engine (no reference cycle). Once the engine is gone
    it returns ``gone``, or raises ReferenceError when none is given."""
    ref = weakref.ref(engine)

    def call(*args: Any, **kwargs: Any) -> _T:
        e = ref()
        if e is None:
            if gone is _GONE:
                raise ReferenceError("the engine is gone")
            return cast(_T, gone)
        return use(e, *args, **kwargs)

    return call


def _behaviour_model(e: Engine) -> BehaviourModel:
    """The engine's current behaviour model (a reload makes a new one)."""
    return e._state.behaviour


def _decide_act_for(e: Engine, actor: EntityUid, subject: EntityUid, now: float) -> tuple[bool, str]:
    """The token exchange's access decision: principal = the actor, action ``act_for``, resource =
    the subject; audited like every decision. Returns (allowed, decision id)."""
    st = e._state
    req = parse_authzen(
        {
            "subject": {"type": actor[0], "id": actor[1]},
            "action": {"name": "act_for"},
            "resource": {"type": subject[0], "id": subject[1]},
            "context": {},
        },
        st.action_type,
    )
    record = e._decide(st, req, now, perf_counter_ns())
    return bool(record.allowed), record.id


def _apply_batch(st: _State, batch: EntityBatch, seq: int | None) -> tuple[int, list[Entity]]:
    """Put a checked entity batch into ``st``'s store and lookups; returns (how many of its
    deletes were there, the stored entities whose ancestors moved) for the caller to forget.

    ``seq``: the batch's change log entry ([cluster]; None: not logged). An entity a later entry
    already put or deleted is left as it is, so the processes converge on the log's order
    whatever order the batches reach them in (the last entry's version of each entity wins)."""
    if seq is not None:
        versions = st.entity_versions
        upserts = tuple(e for e in batch.upserts if versions.get(e.uid, -1) < seq)
        deletes = tuple(u for u in batch.deletes if versions.get(u, -1) < seq)
        for e in upserts:
            versions[e.uid] = seq
        for u in deletes:
            versions[u] = seq
        batch = EntityBatch(upserts, deletes)
    ps = st.workspace.policy_set
    deleted = sum(1 for u in batch.deletes if u in ps.store.by_uid)
    _, moved = ps.store.apply(batch.upserts, batch.deletes)
    by_type = st.by_type
    for uid in batch.deletes:
        ids = by_type.get(uid[0])
        if ids is not None:
            ids.pop(uid[1], None)
    for e in batch.upserts:
        by_type.setdefault(e.uid[0], {})[e.uid[1]] = e
    tools = st.behaviour._tools  # a Tool entity's declared hints may have changed
    for e in batch.upserts:
        tools.pop(e.uid, None)
    for uid in batch.deletes:
        tools.pop(uid, None)
    return deleted, list(moved)


_REPLAY_PAGE: Final = 1_000


def _apply_entity_changes(e: Engine, changes: list[Change]) -> None:
    """What the cluster bus calls with each page of the change log it reads (in order): apply the
    entity batches other processes made (``entities_changed``; this process's own were applied
    when made). A batch this workspace refuses (a schema deployed to one process and not yet to
    this one) is logged and skipped: the others keep it, a reload reads the files again."""
    origin = e.cluster.origin if e.cluster is not None else None
    for c in changes:
        if c.kind != ENTITIES_CHANGED or c.detail.get("origin") == origin:
            continue
        d = c.detail
        try:
            e._change_entities(
                d.get("upserts") or None,
                d.get("deletes") or None,
                f"{c.by} (cluster)",
                announce=False,
                seq=c.seq,
            )
        except (VigilError, AuditError) as err:
            e.store_errors += 1
            _log.warning("cluster: entity change %d not applied here: %s", c.seq, err)


def _apply_cluster_changes(e: Engine, kinds: set[str]) -> None:
    """What the cluster bus calls with the kinds of changes other processes made: refresh the
    quarantine set and/or the registry's gate from the store."""
    if kinds_touch(kinds, "quarantine_"):
        e.quarantine.refresh()
    if kinds_touch(kinds, "identity_"):
        e.registry.refresh()


def _reload_quietly(e: Engine, by: str) -> None:
    with contextlib.suppress(AuditError):  # not reloaded: the last good workspace stays
        e._reload(by)


def _cluster_signal(engine: Engine) -> Callable[[str, dict[str, Any]], None]:
    """Announcements that are not changes: ``reload`` (another process reloaded the workspace):
    reloaded on a thread of its own, so a long reload never holds up the changes that follow."""
    reload = _weakly(engine, _reload_quietly, gone=None)

    def signal(kind: str, body: dict[str, Any]) -> None:
        if kind == "reload":
            by = body.get("by")
            who = f"{by if isinstance(by, str) else 'vigil'} (cluster)"
            threading.Thread(target=reload, args=(who,), name="vigil-cluster-reload", daemon=True).start()

    return signal


def _copy_gate(e: Engine, inactive: frozenset[EntityUid], next_expiry: float) -> None:
    """The registry's gate into the engine's fields; drops the verified-token cache when the
    bindings changed (a verified token's subject may come from one)."""
    e._id_inactive = inactive
    e._id_expiry = next_expiry
    verifier = getattr(e, "verifier", None)
    if verifier is not None:
        verifier.bindings_changed(e.registry.bindings)


def _used_reader(profiles: ProfileBook, seen: dict[EntityUid, float]) -> Callable[[EntityUid], float]:
    """The latest decision time of an identity that the engine keeps anyway: its behaviour
    profile's ``last_seen``, or (mode ``off``, inactive identities) ``seen``; 0.0 when none."""

    def used(uid: EntityUid) -> float:
        p = profiles.get(uid)
        t = p.last_seen if p is not None else 0.0
        s = seen.get(uid, 0.0)
        return t if t > s else s

    return used


def _record_event(e: Engine, kind: str, by: str, **details: Any) -> None:
    """An operator event into the engine's log; raises AuditError when ``[audit] required`` and
    the log refused it."""
    e._record(kind, by, **details)


def _check_recordable(e: Engine) -> None:
    e._recordable()


def _approval_ttl(e: Engine) -> float:
    """``[behaviour] approval_ttl_s`` of the active workspace."""
    ttl_s: float = e._state.behaviour.settings.approval_ttl_s
    return ttl_s


def _identity_settings(e: Engine) -> Any:
    return e._state.workspace.settings.identity


def _entity_uids(e: Engine) -> Iterable[EntityUid]:
    return list(e._state.by_uid)


def _engine_now(e: Engine) -> float:
    now: float = e._clock()
    return now


def _default_sink(workspace: Workspace) -> AuditSink:
    """The workspace's ``[audit]`` sink; raises WorkspaceError when its log or key is unusable."""
    try:
        return sink_from_settings(workspace.settings.audit, workspace.path)
    except (OSError, AuditKeyError) as e:
        message = f"cannot open the audit log: {e}"
        raise WorkspaceError(message, [f"[audit]: {message}"]) from None
