"""``Engine.decide``: the one orchestration of the decision pipeline (ARCHITECTURE section 2).

parse -> identity -> signals (behaviour) -> policy (compiled Cedar) -> combine -> record -> audit
-> learn. Every failure denies; a malformed request raises :class:`~vigil.errors.RequestError`
before anything is decided or changed.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from vigil.audit.sink import AuditSink, JsonlSink, NullSink
from vigil.behaviour.activity import ActivityLog
from vigil.errors import RequestError, VigilError, WorkspaceError
from vigil.model.decision import DecisionRecord, ReasonCode
from vigil.model.request import AccessRequest, parse_authzen
from vigil.policy.build import PolicySet
from vigil.policy.json_values import record_to_cedar
from vigil.policy.schema import Schema, coerce_json
from vigil.policy.values import EntityUid, Record, make_set
from vigil.workspace.loader import Workspace, load_workspace

Clock = Callable[[], float]
IdSource = Callable[[], "str | int"]

_PERMIT: Final = (ReasonCode.POLICY_PERMIT.value,)
_PERMIT_ERR: Final = (ReasonCode.POLICY_PERMIT.value, ReasonCode.POLICY_ERRORED.value)
_FORBID: Final = (ReasonCode.POLICY_FORBID.value,)
_NO_PERMIT: Final = (ReasonCode.NO_MATCHING_PERMIT.value,)
_NO_PERMIT_ERR: Final = (ReasonCode.NO_MATCHING_PERMIT.value, ReasonCode.POLICY_ERRORED.value)
_UNKNOWN: Final = (ReasonCode.UNKNOWN_IDENTITY.value,)
_NONE: Final[tuple[str, ...]] = ()
_NO_ERRORS: Final[tuple[tuple[str, str], ...]] = ()
_NEUTRAL_VIGIL: Final = Record({"risk": 0, "signals": make_set(())})


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

    __slots__ = ("action_type", "authorizer", "by_uid", "mode", "revision", "schema", "workspace")

    def __init__(self, workspace: Workspace) -> None:
        ps: PolicySet = workspace.policy_set
        self.workspace = workspace
        self.authorizer = ps.authorizer
        self.by_uid = ps.store.by_uid
        self.schema: Schema | None = ps.schema
        self.revision = ps.revision
        self.mode = workspace.settings.behaviour.mode
        self.action_type = _action_type(ps.schema)


def _action_type(schema: Schema | None) -> str:
    if schema is None:
        return "Action"
    types = {uid[0] for uid in schema.actions}
    return types.pop() if len(types) == 1 else "Action"


class Engine:
    """vigil's decision engine over one workspace. Thread-safe for ``decide``; ``reload`` is atomic."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self._state = _State(workspace)
        self._clock: Clock = clock or time.time
        self._ids: IdSource = ids or _id_source()
        self._audit: AuditSink = audit if audit is not None else _default_sink(workspace)
        self._audit_required = workspace.settings.audit.required
        self.activity = ActivityLog()
        self._reload_lock = threading.Lock()
        self.reloads = 0
        self.last_reload_error: tuple[str, ...] = ()

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
    def reload(self) -> ReloadResult:
        """Load the workspace again and swap it in atomically; on failure keep the last good one."""
        with self._reload_lock:
            try:
                ws = load_workspace(self._state.workspace.path)
            except WorkspaceError as e:
                self.last_reload_error = tuple(e.problems) or (e.message,)
                return ReloadResult(False, self._state.revision, self.last_reload_error)
            self._state = _State(ws)
            self.reloads += 1
            self.last_reload_error = ()
            return ReloadResult(True, self._state.revision)

    def close(self) -> None:
        """Flush and close the audit sink."""
        self._audit.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- decisions ----------------------------------------------------------------------------
    def decide(self, request: dict[str, Any], *, now: datetime | None = None) -> DecisionRecord:
        """Decide one AuthZEN evaluation request.

        Returns a DecisionRecord (a deny for every failure to permit). Raises RequestError
        (``invalid_request``/``invalid_value``) for a malformed request, before any state changes.
        """
        t0 = time.perf_counter_ns()
        st = self._state
        req = parse_authzen(request, st.action_type)
        when = self._clock() if now is None else _epoch(now)
        return self._decide(st, req, when, t0)

    def decide_many(
        self, requests: Iterable[dict[str, Any]], *, now: datetime | None = None
    ) -> list[DecisionRecord]:
        """Decide each request in order; a malformed one yields a deny with reason ``invalid_request``
        and ``record.error`` = ``{"code", "message"}`` instead of raising."""
        out = []
        for request in requests:
            try:
                out.append(self.decide(request, now=now))
            except VigilError as e:
                out.append(self._invalid(request, e))
        return out

    def decide_access(self, req: AccessRequest, *, now: datetime | None = None) -> DecisionRecord:
        """Decide an already parsed request (replay, tests)."""
        t0 = time.perf_counter_ns()
        when = self._clock() if now is None else _epoch(now)
        return self._decide(self._state, req, when, t0)

    def _decide(self, st: _State, req: AccessRequest, when: float, t0: int) -> DecisionRecord:
        principal = req.principal
        if st.schema is None and req.action_properties is None:
            context = record_to_cedar(req.context, "context")
        else:
            context = self._typed_context(st, req)
        context["vigil"] = _NEUTRAL_VIGIL
        # `context` is a fresh, deep-converted snapshot: the audit event is built from it later,
        # so a caller mutating its request afterwards cannot change what is audited.
        entity = st.by_uid.get(principal)
        if entity is None:
            record = DecisionRecord(
                self._ids(),
                False,
                _UNKNOWN,
                _NONE,
                _NO_ERRORS,
                0,
                _NONE,
                _NONE,
                st.revision,
                time.perf_counter_ns() - t0,
                when,
                principal,
                req.action,
                req.resource,
                context,
            )
            self._finish(record)
            return record
        overlay = None
        if req.subject_properties is not None or req.resource_properties is not None:
            overlay = self._overlay(st, req)
        answer = st.authorizer.is_authorized(principal, req.action, req.resource, context, overlay, entity)
        errors = answer.errors
        if errors:
            allowed, reasons, policies, err_pairs = _with_errors(answer.allowed, answer.policies, errors)
        else:
            allowed = answer.allowed
            policies = answer.policies
            err_pairs = _NO_ERRORS
            reasons = _PERMIT if allowed else (_FORBID if policies else _NO_PERMIT)
        # Positional on purpose: keyword passing costs ~1 us on this path.
        record = DecisionRecord(
            self._ids(),
            allowed,
            reasons,
            policies,
            err_pairs,
            0,
            _NONE,
            _NONE,
            st.revision,
            time.perf_counter_ns() - t0,
            when,
            principal,
            req.action,
            req.resource,
            context,
        )
        self._finish(record)
        return record

    def _finish(self, record: DecisionRecord) -> None:
        """Audit, then learn: both after the decision is made."""
        if not self._audit.emit(record) and self._audit_required and record.allowed:
            record.allowed = False
            record.reason_codes = (ReasonCode.AUDIT_UNAVAILABLE.value,)
        self.activity.record(record.principal, record.allowed, record.time)

    def _typed_context(self, st: _State, req: AccessRequest) -> Record:
        """The context typed by the schema, with ``action_properties``; raises ValueConversionError."""
        raw = req.context
        if st.schema is not None and raw:
            ctype = st.schema.context_type(req.action)
            if ctype is not None:
                raw = coerce_json(raw, ctype)
        context = record_to_cedar(raw, "context")
        if req.action_properties is not None:
            context["action_properties"] = record_to_cedar(req.action_properties, "action.properties")
        return context

    def _overlay(self, st: _State, req: AccessRequest) -> dict[EntityUid, Record]:
        overlay: dict[EntityUid, Record] = {}
        for uid, props, where in (
            (req.principal, req.subject_properties, "subject.properties"),
            (req.resource, req.resource_properties, "resource.properties"),
        ):
            if props is None:
                continue
            if st.schema is not None:
                etype = st.schema.entity_types.get(uid[0])
                if etype is not None and etype.attributes is not None:
                    props = coerce_json(props, etype.attributes)
            entity = st.by_uid.get(uid)
            merged = Record(overlay.get(uid) or (entity.attrs if entity is not None else ()))
            merged.update(record_to_cedar(props, where))
            overlay[uid] = merged
        return overlay

    def _invalid(self, request: Any, error: VigilError) -> DecisionRecord:
        st = self._state
        record = DecisionRecord(
            id=self._ids(),
            allowed=False,
            reason_codes=(ReasonCode.INVALID_REQUEST.value,),
            policies=_NONE,
            errors=_NO_ERRORS,
            risk=0,
            signals=_NONE,
            advice=_NONE,
            policy_revision=st.revision,
            latency_ns=0,
            time=self._clock(),
            principal=_uid_or_blank(request, "subject"),
            action=(st.action_type, ""),
            resource=_uid_or_blank(request, "resource"),
            context=None,
            error=error.to_dict(),
        )
        self._audit.emit(record)
        return record

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
            "identities_seen": len(self.activity),
            "reloads": self.reloads,
        }


def _with_errors(
    allowed: bool, policies: tuple[str, ...], errors: tuple[Any, ...]
) -> tuple[bool, tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
    pairs = tuple((e.policy_id, e.message) for e in errors)
    errored_forbids = tuple(e.policy_id for e in errors if e.forbid)
    if errored_forbids:
        codes = [ReasonCode.FORBID_ERRORED.value]
        if policies and not allowed:
            codes.insert(0, ReasonCode.POLICY_FORBID.value)
            return False, tuple(codes), policies, pairs
        return False, tuple(codes), errored_forbids, pairs
    if allowed:
        return True, _PERMIT_ERR, policies, pairs
    if policies:
        return False, (ReasonCode.POLICY_FORBID.value, ReasonCode.POLICY_ERRORED.value), policies, pairs
    return False, _NO_PERMIT_ERR, policies, pairs


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


def _default_sink(workspace: Workspace) -> AuditSink:
    audit = workspace.settings.audit
    if audit.sink == "none":
        return NullSink()
    path = Path(audit.path)
    if not path.is_absolute():
        path = workspace.path / path
    return JsonlSink(
        path, capacity=audit.buffer, mask=audit.mask, flush_interval_s=audit.flush_interval_ms / 1000
    )
