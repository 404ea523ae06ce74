"""Each identity's reach, precomputed for decisions (docs/escalation.md, "At decision time").

When ``[escalation] reach = true``, the workspace's escalation graph
(:func:`vigil.escalation.cedar_grants.workspace_graph`) is built once when the workspace loads and
turned into two tables the engine reads with one dict lookup each:

* ``vigil``: identity uid -> the neutral ``context.vigil`` record with ``reach`` =
  ``{verdict, distance, privileged}``: ``verdict`` as :func:`~vigil.escalation.query.analyse`
  gives it (``admin``, ``reaches_admin``, ``conditional``, ``none``), ``distance`` the steps of its
  shortest path to admin (the unconditional one when there is one; 0 for an admin, also one whose
  admin grant needs a request context; -1 for none),
  ``privileged`` how many *other* identities whose verdict is ``admin`` it can become through any
  path (conditional steps included).
* ``steps``: identity uid -> {(action uid, resource uid) -> :class:`PathStep`}: every request that
  is one step of a shortest path to admin (the same source, target and method as an edge whose
  target is one step nearer admin), for the ``escalation_path`` signal. The actions of a step are
  every ``[escalation] privilege_actions`` action of the edge's method; the resource is the
  identity it becomes, or the group it joins.

Identities outside the analysed types (``[escalation] principals``, else ``[identity] types``) have
no entry: their ``context.vigil`` has no ``reach``.

With ``[escalation] aws_iam`` (an ``aws iam get-account-authorization-details`` export), the
export's users and roles get ``vigil`` entries too (:func:`aws_reach`), under the uids the
CloudTrail importer gives the principals of AWS calls (``IamUser`` / ``IamRole`` by ARN,
:mod:`vigil.importers.cloudtrail`), with the verdicts ``vigil paths --aws-iam`` gives, and the
steps of their shortest paths whose call CloudTrail records on the identity it reaches
(:data:`AWS_CALLS`: ``iam:CreateAccessKey`` on a user, ``sts:AssumeRole`` on a role, a policy put
or attached onto a user, role or group, ...) are ``escalation_path`` steps for the imported calls
(action ``iam:CreateAccessKey``, resource ``AwsResource::"<ARN>"``, as the importer names them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from time import perf_counter
from typing import Any

from vigil.escalation.cedar_grants import build_workspace_graph
from vigil.escalation.edges import ADMIN, Edge, Graph
from vigil.escalation.graph import build_graph
from vigil.escalation.iam_export import Estate
from vigil.escalation.query import Analysis, analyse
from vigil.escalation.settings import EscalationSettings
from vigil.model.uid import EntityUid
from vigil.policy.compiler import CompiledPolicy
from vigil.policy.entities import EntityStore
from vigil.policy.values import make_set

_NO_SIGNALS = make_set(())


@dataclass(frozen=True, slots=True)
class PathStep:
    """One request that is a step of a path to admin: ``method`` (``assume``, ``create_key``, ...),
    ``target`` (the node it reaches: uid text, or ``X in G`` for a membership), ``remaining`` (the
    steps still needed after it: 0 when it makes the requester admin), ``path`` (the readable shortest path it belongs to, from the
    requester: ``A -create_key-> B -assume-> C -> admin``) and ``conditional`` (a step of that
    path needs a request context)."""

    method: str
    target: str
    remaining: int
    path: str
    conditional: bool


@dataclass(frozen=True, slots=True)
class ReachTable:
    """The precomputed tables (see the module docstring), with what building them cost:
    ``checks`` requests decided, ``seconds`` wall time, ``identities`` analysed."""

    vigil: Mapping[EntityUid, dict[str, Any]]
    steps: Mapping[EntityUid, Mapping[tuple[EntityUid, EntityUid], PathStep]]
    checks: int
    seconds: float
    identities: int

    def reach(self, uid: EntityUid) -> dict[str, Any] | None:
        """The ``reach`` record of ``uid`` (verdict, distance, privileged), or None (not analysed)."""
        v = self.vigil.get(uid)
        return None if v is None else v["reach"]


def _distance(an: Analysis, node: str) -> int:
    """Steps to become admin: the graph's distance less its last step (``holds``, into
    :data:`ADMIN`); -1 when there is no path."""
    hit = an.strict.get(node) or an.loose.get(node)
    return -1 if hit is None else hit[0] - 1


def _privileged(graph: Graph, admins: Sequence[str]) -> dict[str, int]:
    """Node -> bitset of the admin identities it can reach (through any edge), by propagating each
    admin's bit backwards until nothing changes: linear in edges x admins / 64."""
    bits: dict[str, int] = {a: 1 << i for i, a in enumerate(admins)}
    queue = deque(admins)
    while queue:
        u = queue.popleft()
        b = bits[u]
        for e in graph.into.get(u, ()):
            old = bits.get(e.source, 0)
            new = old | b
            if new != old:
                bits[e.source] = new
                queue.append(e.source)
    return bits


def _path_text(an: Analysis, first: Edge, names: Mapping[str, str]) -> tuple[str, bool]:
    """``first`` then the shortest path of its target, as ``A -m-> B -m-> admin``; and whether a
    step of it is conditional."""
    parts = [names.get(first.source, first.source), f" -{first.method}-> "]
    conditional = first.conditional
    node = first.target
    table = an.strict if (node in an.strict and not first.conditional) else an.loose
    while node != ADMIN:
        parts.append(names.get(node, node))
        hit = table.get(node)
        if hit is None or hit[1] is None:
            break
        e = hit[1]
        conditional = conditional or e.conditional
        parts.append(" -> " if e.kind == "holds" else f" -{e.method}-> ")
        node = e.target
    if node == ADMIN:
        parts.append("admin")
    return "".join(parts), conditional


def reach_table(
    policies: Sequence[CompiledPolicy],
    store: EntityStore,
    settings: EscalationSettings,
    identity_types: Sequence[str],
) -> ReachTable:
    """The reach tables of a workspace (see the module docstring).

    Raises VigilError (``invalid_workspace``) for ``context_guards`` naming no forbid, and
    EscalationLimitError (``escalation_too_large``) when the graph would decide more than
    ``settings.reach_max_checks`` requests."""
    t0 = perf_counter()
    graph, nodes, checks = build_workspace_graph(
        policies, store, settings, identity_types, settings.reach_max_checks
    )
    an = analyse(graph)
    idents = {n: u for n, (u, grp) in nodes.items() if grp is None}
    vigil = _records(graph, an, idents)
    steps = _steps(graph, an, nodes, settings)
    return ReachTable(vigil, steps, checks, perf_counter() - t0, len(idents))


AWS_TYPES = {"user": "IamUser", "role": "IamRole"}
"""The entity types of AWS principals, as :data:`vigil.importers.cloudtrail.SUBJECT_TYPES` names
them (``IAMUser`` -> ``IamUser``; an assumed role's calls are its role's, ``IamRole``)."""


AWS_CALLS: Mapping[str, tuple[str, str]] = {
    "iam-002": ("iam:CreateAccessKey", "target"),
    "iam-004": ("iam:CreateLoginProfile", "target"),
    "iam-006": ("iam:UpdateLoginProfile", "target"),
    "iam-012": ("iam:UpdateAssumeRolePolicy", "target"),
    "sts-001": ("sts:AssumeRole", "target"),
    "iam-005": ("iam:PutRolePolicy", "grantee"),
    "iam-007": ("iam:PutUserPolicy", "grantee"),
    "iam-011": ("iam:PutGroupPolicy", "grantee"),
    "iam-008": ("iam:AttachUserPolicy", "grantee"),
    "iam-009": ("iam:AttachRolePolicy", "grantee"),
    "iam-010": ("iam:AttachGroupPolicy", "grantee"),
}
"""Escalation methods (``iam-privesc-methods`` ids) whose call CloudTrail records with the identity
the step reaches as its resource: the call's action, and whether that identity is the edge's
target (the user a key is made for, the role assumed) or its grantee (who gets the policy). Other
methods (a pass-role through a service, a policy version, a group membership) name another
resource and are not matched."""

AwsSteps = dict[EntityUid, dict[tuple[EntityUid, EntityUid], PathStep]]


def aws_reach(estate: Estate) -> tuple[dict[EntityUid, dict[str, Any]], AwsSteps]:
    """The ``context.vigil`` records of an IAM export's users and roles (``IamUser`` / ``IamRole``
    uids by ARN: the verdicts, distances and privileged counts of its escalation graph, as
    ``vigil paths --aws-iam`` analyses it) and their path steps (:data:`AWS_CALLS`). Never raises
    for a parsed export."""
    graph = build_graph(estate)
    an = analyse(graph)
    idents = {arn: (AWS_TYPES[p.kind], arn) for arn, p in estate.principals.items() if p.kind in AWS_TYPES}
    return _records(graph, an, idents), _aws_steps(graph, an, idents)


def _aws_steps(graph: Graph, an: Analysis, idents: Mapping[str, EntityUid]) -> AwsSteps:
    """Identity uid -> {(action uid, resource uid) -> PathStep} for the CloudTrail calls that are a
    step of one of its shortest paths to admin. A step into a hub (``any user``) is a step onto
    each identity the hub leads to that is one step nearer admin."""
    out: AwsSteps = {}
    for node, uid in idents.items():
        for e in graph.out.get(node, ()):
            call = AWS_CALLS.get(e.method)
            if call is None:
                continue
            remaining = _nearer(an, e)
            if remaining is None:
                continue
            if call[1] == "grantee":
                targets = [(e.grantee, max(0, remaining))] if e.grantee else []
            elif e.target in graph.principals:
                targets = [(e.target, remaining)]
            else:  # a hub: the identities it matches that are nearer admin
                targets = []
                for m in graph.out.get(e.target, ()):
                    left = _nearer(an, m)
                    if left is not None:
                        targets.append((m.target, left))
            mine = out.setdefault(uid, {})
            action = ("Action", call[0])
            for arn, left in targets:
                # the path through this very identity (a hub's step named by where it lands)
                direct = e if arn == e.target or call[1] == "grantee" else replace(e, target=arn)
                path, conditional = _path_text(an, direct, {})
                step = PathStep(e.method, arn, left, path, conditional)
                for form in _arn_forms(arn):
                    _keep_nearer(mine, (action, ("AwsResource", form)), step)
    return out


def _arn_forms(arn: str) -> tuple[str, ...]:
    """An IAM ARN as CloudTrail's importer may name it: as exported, and without its IAM path
    (``role/service-role/name`` -> ``role/name``: the importer builds ARNs from names)."""
    for kind in (":user/", ":role/", ":group/"):
        head, sep, rest = arn.partition(kind)
        if sep:
            return (arn, head + sep + rest.rsplit("/", 1)[1]) if "/" in rest else (arn,)
    return (arn,)


def with_aws(
    table: ReachTable,
    aws: Mapping[EntityUid, dict[str, Any]],
    steps: Mapping[EntityUid, Mapping[tuple[EntityUid, EntityUid], PathStep]],
    seconds: float,
) -> ReachTable:
    """``table`` with the AWS principals' records and path steps added (a workspace identity of
    the same uid keeps its own)."""
    vigil = {**aws, **table.vigil}
    merged = {**steps, **table.steps}
    return ReachTable(vigil, merged, table.checks, table.seconds + seconds, table.identities + len(aws))


def _records(graph: Graph, an: Analysis, idents: Mapping[str, EntityUid]) -> dict[EntityUid, dict[str, Any]]:
    """Identity uid -> its neutral ``context.vigil`` with ``reach`` (one shared record per distinct
    reach), for the graph nodes ``idents`` (node -> uid)."""
    admins = [n for n in idents if an.verdict(n) == "admin"]
    bits = _privileged(graph, admins)
    own = {a: 1 << i for i, a in enumerate(admins)}
    shared: dict[tuple[str, int, int], dict[str, Any]] = {}
    vigil: dict[EntityUid, dict[str, Any]] = {}
    for node, uid in idents.items():
        verdict = an.verdict(node)
        n = (bits.get(node, 0) & ~own.get(node, 0)).bit_count()
        key = (verdict, _distance(an, node), n)
        rec = shared.get(key)
        if rec is None:
            reach = {"verdict": verdict, "distance": key[1], "privileged": n}
            rec = shared[key] = {"risk": 0, "signals": _NO_SIGNALS, "reach": reach}
        vigil[uid] = rec
    return vigil


def _steps(
    graph: Graph,
    an: Analysis,
    nodes: Mapping[str, tuple[EntityUid, EntityUid | None]],
    settings: EscalationSettings,
) -> dict[EntityUid, dict[tuple[EntityUid, EntityUid], PathStep]]:
    by_method: dict[str, list[EntityUid]] = {}
    for action, method in sorted(settings.privilege_actions.items()):
        by_method.setdefault(method, []).append(action)
    names = {k: p.name if p.kind == "membership" else k for k, p in graph.principals.items()}
    out: dict[EntityUid, dict[tuple[EntityUid, EntityUid], PathStep]] = {}
    for node, (actor, _grp) in nodes.items():
        for e in graph.out.get(node, ()):
            if e.kind == "holds" or e.target == ADMIN:
                continue
            remaining = _nearer(an, e)
            if remaining is None:
                continue
            target = nodes.get(e.target)
            if target is None:
                continue
            resource = target[1] if target[1] is not None else target[0]
            path, conditional = _path_text(an, e, names)
            step = PathStep(e.method, e.target, remaining, path, conditional)
            mine = out.setdefault(actor, {})
            for action in by_method.get(e.method, ()):
                _keep_nearer(mine, (action, resource), step)
    return out


def _keep_nearer(
    mine: dict[tuple[EntityUid, EntityUid], PathStep], key: tuple[EntityUid, EntityUid], step: PathStep
) -> None:
    """``step`` for the request ``key``, unless a step already kept for it leaves fewer steps to
    admin (or as few, unconditionally)."""
    old = mine.get(key)
    if old is None or (old.remaining, old.conditional) > (step.remaining, step.conditional):
        mine[key] = step


def _nearer(an: Analysis, e: Edge) -> int | None:
    """The steps left after ``e`` when ``e`` is on a shortest path to admin (unconditional, or
    any), else None."""
    for table, ok in ((an.strict, not e.conditional), (an.loose, True)):
        if not ok:
            continue
        src, dst = table.get(e.source), table.get(e.target)
        if src is not None and dst is not None and dst[0] == src[0] - 1:
            return dst[0] - 1
    return None


__all__ = ["AWS_CALLS", "AWS_TYPES", "PathStep", "ReachTable", "aws_reach", "reach_table", "with_aws"]
