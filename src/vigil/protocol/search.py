"""AuthZEN search (Authorization API 1.0 §8): which subjects, resources or actions are permitted.

A search names every entity of a request but one, and gets back the permitted entities of the
missing one's type (§8.3), transitively through entity parents (§8.1: a member of a group that has
access is returned). It is answered in two steps:

1. **Candidates from indexes**, built once per policy revision (:class:`SearchIndex`): entities by
   type, descendants by ancestor (``EntityStore.children``), permit policies by action. Only the
   permits that can apply are consulted: for a resource search, the evaluator's per-(principal,
   action) candidates (scopes plus principal-only guards, so a manager-only policy drops out for
   an employee). A permit whose scope on the searched variable is ``== E``, ``in E`` or
   ``is T in E`` contributes ``E`` and its descendants of the searched type; only a permit with an
   unconstrained scope (``principal``, ``resource is T``, or conditions alone) makes the whole type
   a candidate. No applicable permit: no candidates, nothing evaluated.
2. **Every candidate is decided** by the compiled authorizer with the engine's rules (unknown
   principal denies, an identity the registry holds as suspended, retired or expired denies,
   forbid overrides, an erroring forbid denies), so a result is exactly what an
   evaluation would permit at that moment. Checks are not audited and do not feed behaviour: a
   search is not an access. Risk is the neutral ``context.vigil`` (0, no signals).

Results are the workspace's entities (an id that no entity has is never returned), sorted by id
(actions by name). The actions an action search considers are the schema's, or without a schema
the action entities and every action uid the policies name (scopes, conditions, fallbacks too):
a policy that admits any action does not make up action names that nothing names. Pagination (§8.2): ``page.limit`` and opaque ``page.token``; a token is bound
to the request it came from and refused (``invalid_page_token``) for any other.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from vigil.engine import Engine
from vigil.errors import RequestError
from vigil.model.request import MAX_TYPE, parse_action, parse_entity
from vigil.pipeline.authorize import NEUTRAL_VIGIL, action_type, authorize
from vigil.policy.build import PolicySet
from vigil.policy.compiler import CompiledPolicy, Scope
from vigil.policy.overlay import OverlaySettings
from vigil.policy.request_values import property_overlay, typed_context
from vigil.policy.values import EntityUid, Record

_ALL: Final = None  # "every entity of the searched type"


class PageTokenError(RequestError):
    """A ``page.token`` that is malformed or belongs to another request (§8.2.1)."""

    code = "invalid_page_token"


class SearchIndex:
    """Lookups for one policy revision: entities by type, permits by action, actions known."""

    def __init__(
        self,
        policy_set: PolicySet,
        action_type: str,
        overlay: OverlaySettings | None = None,
        reach: Mapping[EntityUid, Record] | None = None,
    ) -> None:
        self.policy_set = policy_set
        # each identity's context.vigil with its escalation reach ([escalation] reach), or None
        self.reach = reach
        self.action_type = action_type
        self.overlay_rules = overlay if overlay is not None else OverlaySettings()
        store = policy_set.store
        self.changes = store.changes  # entity changes applied when built (rebuilt when it moves)
        self.by_uid = store.by_uid
        self.children = store.children
        by_type: dict[str, list[EntityUid]] = {}
        for uid in list(store.by_uid):  # a copy: an entity change may run meanwhile
            by_type.setdefault(uid[0], []).append(uid)
        self.by_type = {t: sorted(uids, key=_id_key) for t, uids in by_type.items()}
        self.policies = {p.id: p for p in policy_set.policies}
        self.permits = tuple(p for p in policy_set.policies if not p.forbid)
        self._permits_by_action: dict[EntityUid, tuple[CompiledPolicy, ...]] = {}
        self._lock = threading.Lock()
        self.actions = self._known_actions()

    def _known_actions(self) -> tuple[EntityUid, ...]:
        schema = self.policy_set.schema
        found: set[EntityUid] = set()
        if schema is not None:
            found.update(uid for uid, info in schema.actions.items() if info.context is not None)
        else:
            # Without a schema: the action entities, and every action uid a policy names: in its
            # action scope, anywhere else in its scope or conditions (`when { action in
            # [Action::"list"] }`), fallback policies included (their compiled form has no scope).
            found.update(uid for uid in self.by_uid if uid[0] == self.action_type)
            found.update(self.policy_set.named_uids())
        # An AuthZEN action name means (action type, name): an action of another type (e.g.
        # `NS::Action::"read"` beside `Action::"read"`) is not what a result's name would decide.
        return tuple(sorted((a for a in found if a[0] == self.action_type), key=_id_key))

    def permits_for_action(self, action: EntityUid) -> tuple[CompiledPolicy, ...]:
        """Permit policies whose action scope admits ``action`` (any principal, any resource)."""
        got = self._permits_by_action.get(action)
        if got is not None:
            return got
        ancestors = self.policy_set.store.ancestors(action)
        out = tuple(p for p in self.permits if _action_admits(p, action, ancestors))
        with self._lock:
            if len(self._permits_by_action) < 10_000:
                self._permits_by_action[action] = out
        return out

    def narrow(self, scopes: Iterable[Scope], etype: str) -> list[EntityUid]:
        """Entities of type ``etype`` that some scope admits, sorted by id (the whole type when a
        scope is unconstrained)."""
        acc: set[EntityUid] = set()
        for scope in scopes:
            got = self._scope_members(scope, etype)
            if got is _ALL:
                return self.by_type.get(etype, [])
            acc |= got
        return sorted((u for u in acc if u in self.by_uid), key=_id_key)

    def _scope_members(self, scope: Scope, etype: str) -> set[EntityUid] | None:
        kind = scope.kind
        if kind == "any":
            return _ALL
        if scope.entity_type is not None and scope.entity_type != etype:
            return set()
        if kind == "is":
            return _ALL
        entity = scope.entity
        assert entity is not None
        members = {entity} if entity[0] == etype else set()
        if kind != "eq":
            members.update(c for c in self.children.get(entity, ()) if c[0] == etype)
        return members


def _action_admits(policy: CompiledPolicy, action: EntityUid, ancestors: frozenset[EntityUid]) -> bool:
    if policy.actions is None:
        return True
    if policy.action_in:
        return any(a == action or a in ancestors for a in policy.actions)
    return action in policy.actions


def _id_key(uid: EntityUid) -> tuple[str, str]:
    return (uid[0], uid[1])


class Searcher:
    """The three searches over an engine's current workspace; the index follows reloads."""

    def __init__(self, engine: Engine, *, max_results: int = 1000) -> None:
        self._engine = engine
        self._max_results = max_results
        self._index: SearchIndex | None = None
        self._lock = threading.Lock()

    def index(self) -> SearchIndex:
        """The index of the engine's active policy set (rebuilt after a reload)."""
        ws = self._engine.workspace
        ps = ws.policy_set
        idx = self._index
        if idx is None or idx.policy_set is not ps or idx.changes != ps.store.changes:
            with self._lock:
                idx = self._index
                if idx is None or idx.policy_set is not ps or idx.changes != ps.store.changes:
                    idx = self._index = SearchIndex(
                        ps,
                        action_type(ps.schema),
                        ws.settings.overlay,
                        ws.reach.vigil if ws.reach is not None else None,
                    )
        return idx

    # -- the three endpoints ------------------------------------------------------------------
    def subject(self, request: dict[str, Any]) -> dict[str, Any]:
        """§8.4: permitted subjects of ``subject.type`` for ``action`` on ``resource``.

        Returns ``{"results": [{"type", "id"}...]}`` (plus ``page``); raises RequestError (400)
        for a malformed request or PageTokenError for a bad token.
        """
        stype = _type_only(request, "subject")
        action = _action(request)
        resource, rprops = _entity(request, "resource")
        idx = self.index()
        call = _Call(idx, request.get("context"), None, (None, None), (resource, rprops))
        action_uid = (idx.action_type, action[0])
        call.action_properties(action[1])
        scopes = [p.principal for p in idx.permits_for_action(action_uid)]
        active = self._engine.identity_active
        found = [u for u in idx.narrow(scopes, stype) if active(u) and call.allowed(u, action_uid, resource)]
        return self._page(request, [{"type": u[0], "id": u[1]} for u in found])

    def resource(self, request: dict[str, Any]) -> dict[str, Any]:
        """§8.5: permitted resources of ``resource.type`` for ``subject`` doing ``action``.

        Returns ``{"results": [{"type", "id"}...]}`` (plus ``page``); raises as :meth:`subject`.
        """
        principal, sprops = _entity(request, "subject")
        action = _action(request)
        rtype = _type_only(request, "resource")
        idx = self.index()
        call = _Call(idx, request.get("context"), None, (principal, sprops), (None, None))
        call.action_properties(action[1])
        action_uid = (idx.action_type, action[0])
        if principal not in idx.by_uid or not self._engine.identity_active(principal):
            return self._page(request, [])  # unknown or inactive identity: denied before any policy
        authorizer = idx.policy_set.authorizer
        if sprops is None:
            cands = authorizer.candidates(principal, action_uid)
        else:
            cands = authorizer.scope_candidates(principal, action_uid)
        pids = [c[0] for c in cands[2]] + [g[0] for g in cands[3]]
        scopes = [idx.policies[pid].resource for pid in pids if pid in idx.policies]
        found = [u for u in idx.narrow(scopes, rtype) if call.allowed(principal, action_uid, u)]
        return self._page(request, [{"type": u[0], "id": u[1]} for u in found])

    def action(self, request: dict[str, Any]) -> dict[str, Any]:
        """§8.6: permitted actions of ``subject`` on ``resource`` (no ``action`` key needed).

        Returns ``{"results": [{"name"}...]}`` (plus ``page``); raises as :meth:`subject`.
        """
        principal, sprops = _entity(request, "subject")
        resource, rprops = _entity(request, "resource")
        idx = self.index()
        call = _Call(idx, request.get("context"), None, (principal, sprops), (resource, rprops))
        if principal not in idx.by_uid or not self._engine.identity_active(principal):
            return self._page(request, [])
        schema = idx.policy_set.schema
        names = []
        for action_uid in idx.actions:
            if schema is not None:
                info = schema.actions.get(action_uid)
                if info is None or principal[0] not in info.principals or resource[0] not in info.resources:
                    continue
            if not idx.permits_for_action(action_uid):
                continue
            if call.allowed(principal, action_uid, resource):
                names.append({"name": action_uid[1]})
        return self._page(request, names)

    # -- pagination (§8.2) --------------------------------------------------------------------
    def _page(self, request: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
        page = request.get("page")
        if page is None:
            if len(results) <= self._max_results:
                return {"results": results}
            page = {}
        if type(page) is not dict:
            raise RequestError("'page' must be an object")
        limit = page.get("limit", self._max_results)
        if type(limit) is not int or limit < 0:
            raise RequestError("'page.limit' must be a non-negative integer")
        limit = min(limit, self._max_results)
        fingerprint = _fingerprint(request, limit)
        token = page.get("token", "")
        if type(token) is not str:
            raise PageTokenError("'page.token' must be a string")
        offset = _read_token(token, fingerprint) if token else 0
        chunk = results[offset : offset + limit]
        end = offset + len(chunk)
        next_token = _make_token(end, fingerprint) if end < len(results) and limit > 0 else ""
        return {
            "page": {"next_token": next_token, "count": len(chunk), "total": len(results)},
            "results": chunk,
        }


def _fingerprint(request: dict[str, Any], limit: int) -> str:
    rest = {k: v for k, v in request.items() if k != "page"}
    try:
        data = orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # pragma: no cover - bodies come from orjson.loads
        data = repr(rest).encode()
    return hashlib.sha256(data + b"|" + str(limit).encode()).hexdigest()[:16]


def _make_token(offset: int, fingerprint: str) -> str:
    raw = orjson.dumps({"o": offset, "f": fingerprint})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: str, fingerprint: str) -> int:
    """The offset in ``token``; raises PageTokenError when it is malformed or for another request."""
    try:
        if len(token) > 512:
            raise ValueError("too long")
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, fp = data["o"], data["f"]
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise PageTokenError("'page.token' is not a token this server issued") from None
    if fp != fingerprint:
        raise PageTokenError("'page.token' belongs to a different request (entities or limit changed)")
    if type(offset) is not int or offset < 0:
        raise PageTokenError("'page.token' is not a token this server issued")
    return offset


# -- request parts --------------------------------------------------------------------------------
def _type_only(request: dict[str, Any], field: str) -> str:
    """The searched entity's ``type`` (its ``id``, if any, is ignored: §8.4/§8.5)."""
    value = request.get(field)
    if type(value) is not dict:
        raise RequestError(f"request is missing the required field {field!r} (an object with 'type')")
    etype = value.get("type")
    if type(etype) is not str or not etype or len(etype) > MAX_TYPE:
        raise RequestError(f"'{field}.type' must be a non-empty string")
    return etype


def _entity(request: dict[str, Any], field: str) -> tuple[EntityUid, dict[str, Any] | None]:
    value = request.get(field)
    if type(value) is not dict:
        raise RequestError(
            f"request is missing the required field {field!r} (an object with 'type' and 'id')"
        )
    return parse_entity(value, field)


def _action(request: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    value = request.get("action")
    if type(value) is not dict:
        raise RequestError("request is missing the required field 'action' (an object with 'name')")
    return parse_action(value)


class _Call:
    """The fixed parts of one search's checks: typed context (per action), property overlays."""

    def __init__(
        self,
        idx: SearchIndex,
        context: Any,
        action_props: dict[str, Any] | None,
        subject: tuple[EntityUid | None, dict[str, Any] | None],
        resource: tuple[EntityUid | None, dict[str, Any] | None],
    ) -> None:
        if context is not None and type(context) is not dict:
            raise RequestError("'context' must be an object")
        self.idx = idx
        self.raw_context: dict[str, Any] = context or {}
        self.action_props = action_props
        self.contexts: dict[EntityUid, dict[str, Any]] = {}
        self.overlay: dict[EntityUid, dict[str, Any]] | None = None
        items = (
            (subject[0], subject[1], "subject.properties"),
            (resource[0], resource[1], "resource.properties"),
        )
        overlay, _applied = property_overlay(
            idx.policy_set.schema,
            idx.by_uid,
            ((uid, props, where) for uid, props, where in items if uid is not None),
            idx.overlay_rules,
        )
        self.overlay = overlay or None
        # Convert once up front so a bad context is a 400 even when nothing is a candidate.
        self._context_for(None)

    def action_properties(self, props: dict[str, Any] | None) -> None:
        self.action_props = props
        self.contexts.clear()
        self._context_for(None)

    def _context_for(self, action: EntityUid | None) -> dict[str, Any]:
        key = action if action is not None else ("", "")
        got = self.contexts.get(key)
        if got is not None:
            return got
        schema = self.idx.policy_set.schema if action is not None else None
        context = typed_context(schema, action or ("", ""), self.raw_context, self.action_props)
        context["vigil"] = NEUTRAL_VIGIL
        self.contexts[key] = context
        return context

    def allowed(self, principal: EntityUid, action: EntityUid, resource: EntityUid) -> bool:
        """The engine's decision for this triple, without audit or learning (False on any failure)."""
        if principal not in self.idx.by_uid:
            return False
        authorizer = self.idx.policy_set.authorizer
        context = self._context_for(action)
        reach = self.idx.reach
        if reach is not None:  # the principal's reach, as a decision gives it
            vigil = reach.get(principal)
            if vigil is not None:
                context = Record(context)
                context["vigil"] = vigil
        verdict = authorize(authorizer, principal, action, resource, context, self.overlay)
        return verdict.allowed
