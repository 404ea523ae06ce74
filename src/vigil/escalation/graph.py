"""The escalation graph of an IAM estate: who can become whom, and who can reach admin.

Nodes are principals (by ARN), :data:`ADMIN` and one node per service whose existing resources
(functions, instances, stacks) run as roles (:func:`service_node`). Edges (:class:`Edge`) are one step each:

* ``become``: the source can act as the target (new credentials for a user, assume a role, pass a
  role to a service resource it controls, join a group, rewrite a trust policy and assume);
* ``holds``: the source already holds admin-equivalent permissions (target :data:`ADMIN`);
* ``grant``: the source can write admin permissions onto ``grantee`` and can act as it (itself, a
  group it is in, or a principal it can become: ``through`` are those become steps), so it reaches
  admin (target :data:`ADMIN`). A grant to a principal it cannot act as (``delegated``) also
  reaches admin by default: whoever holds that principal's credentials gets admin from it, so the
  actor decides who is admin. ``build_graph(..., require_credentials=True)`` makes such steps
  conditional instead, naming the credentials they need (AWS's narrowest reading, e.g. a role
  with ``iam:AttachUserPolicy`` cannot use the user it makes admin).

Every edge names its method (catalogue id), the statements that grant it (``via``) and, when it
is conditional, what it ``requires`` (a request condition, a resource the export cannot show,
credentials). :func:`build_graph` is the only constructor.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from functools import lru_cache

from vigil.escalation import methods as M
from vigil.escalation.conditions import Truth
from vigil.escalation.edges import ADMIN, HUB_MIN, Edge, Graph, fold, service_node
from vigil.escalation.grantees import Direct, Grantees, Holders
from vigil.escalation.iam_export import Estate, Principal
from vigil.escalation.patterns import has_variable, matches
from vigil.escalation.permissions import Grant, PermissionSet, ResourceIndex, combine
from vigil.escalation.policy import Statement


def _requires(g: Grant, extra: Iterable[str] = ()) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*g.depends_on, *extra)))


@lru_cache(maxsize=65536)
def _describe(s: Statement) -> str:
    return s.describe()


def _via(g: Grant) -> tuple[str, ...]:
    return tuple(_describe(s) for s in g.via)


class _Builder:
    def __init__(self, estate: Estate, require_credentials: bool, hub_min: int) -> None:
        self.estate = estate
        self.hub_min = hub_min
        self.require_credentials = require_credentials
        self.graph = Graph(estate.principals)
        self.users = [p for p in estate.principals.values() if p.kind == "user"]
        self.roles = [p for p in estate.principals.values() if p.kind == "role"]
        self.groups = [p for p in estate.principals.values() if p.kind == "group"]
        self.user_index = ResourceIndex([p.arn for p in self.users])
        self.role_index = ResourceIndex([p.arn for p in self.roles])
        self.group_index = ResourceIndex([p.arn for p in self.groups])
        self.policy_index = ResourceIndex([a for a, p in estate.policies.items() if not p.aws_managed])
        self.attached = estate.attached_to()
        self._sets: dict[tuple[int, ...], PermissionSet] = {}
        self.perms: dict[str, PermissionSet] = {p.arn: self._perm_set(p) for p in estate.principals.values()}
        self.service_roles = self._service_roles()
        self.admins: set[str] = set()
        self.pending: dict[str, list[tuple[str, Grantees]]] = {}
        self._admin_versions: dict[str, bool] = {}

    # -- permission sets -------------------------------------------------------------------
    def _statements(self, p: Principal) -> list[Statement]:
        out = list(p.inline)
        for arn in p.managed:
            out.extend(self.estate.policies[arn].statements)
        for g in p.groups:
            group = self.estate.principals.get(g)
            if group is not None:
                out.extend(group.inline)
                for arn in group.managed:
                    out.extend(self.estate.policies[arn].statements)
        return out

    def _intern(self, statements: list[Statement], boundary: PermissionSet | None) -> PermissionSet:
        key = (*(id(s) for s in statements), -1, id(boundary))
        hit = self._sets.get(key)
        if hit is None:
            hit = PermissionSet(statements, boundary)
            self._sets[key] = hit
        return hit

    def _perm_set(self, p: Principal, *, with_boundary: bool = True) -> PermissionSet:
        boundary = None
        if with_boundary and p.boundary is not None:
            bpol = self.estate.policies[p.boundary]
            boundary = self._intern(list(bpol.statements), None)
        return self._intern(self._statements(p), boundary)

    @staticmethod
    def variables(p: Principal) -> dict[str, str | None]:
        """The policy variables a principal's own requests carry (IAM policy variables reference):
        ``aws:username`` for users only (None, no value, for roles), ``aws:userid``,
        ``aws:principaltype``, ``aws:PrincipalAccount``."""
        return {
            "aws:username": p.name if p.kind == "user" else None,
            "aws:userid": p.id or None,
            "aws:principaltype": {"user": "User", "role": "AssumedRole"}.get(p.kind),
            "aws:principalaccount": p.account,
        }

    def admin_grant(self, perms: PermissionSet, account: str) -> Grant:
        probe = f"arn:aws:iam::{account}:vigil-probe/any"
        return combine(perms.check(a, probe) for a in M.ADMIN_PROBE_ACTIONS)

    def _service_linked(self, arn: str) -> bool:
        return self.estate.principals[arn].service_linked

    def _become(
        self,
        p: Principal,
        perms: PermissionSet,
        action: str,
        index: ResourceIndex,
        method: str,
        variables: dict[str, str | None],
        *,
        skip: Callable[[str], bool] = lambda arn: False,
        extra: tuple[str, ...] = (),
        delegated: bool = False,
    ) -> None:
        """Become edges from ``p`` to every resource of ``index`` that ``action`` is allowed on,
        but ``p`` itself and the targets ``skip`` refuses (a property of the target alone, since
        shared nodes serve every principal).

        When nothing can take a target away again (no deny for the action, no boundary) and a
        statement's resource pattern matches at least ``hub_min`` targets, ``p`` gets one edge
        to a shared node for that pattern (:meth:`_hub`), which has the edges to the targets: a
        wildcard held by many principals costs principals + targets edges, not their product.
        """
        allows, denies = perms.for_action(action)
        if not allows:
            return
        plain = not denies and perms.boundary is None
        plain = plain and all(
            s.resources is not None and not any(has_variable(x) for x in s.resources) for s in allows
        )
        if not plain:
            for arn, gr in perms.targets(action, index, variables).items():
                if arn != p.arn and not skip(arn):
                    self.graph.add(
                        Edge(
                            p.arn, arn, "become", method, _via(gr), _requires(gr, extra), delegated=delegated
                        )
                    )
            return
        for s in allows:
            gr = Grant(s.condition.truth, (s,), s.condition.depends_on)
            for pattern in s.resources or ():
                hits = index.matching(pattern)
                if len(hits) >= self.hub_min:
                    node = self._hub(f"{method} {pattern}", hits, skip)
                    self.graph.add(
                        Edge(
                            p.arn, node, "become", method, _via(gr), _requires(gr, extra), delegated=delegated
                        )
                    )
                    continue
                for arn in hits:
                    if arn != p.arn and not skip(arn):
                        self.graph.add(
                            Edge(
                                p.arn,
                                arn,
                                "become",
                                method,
                                _via(gr),
                                _requires(gr, extra),
                                delegated=delegated,
                            )
                        )

    def _hub(
        self,
        name: str,
        targets: Iterable[str],
        skip: Callable[[str], bool],
        trust: dict[str, Grant] | None = None,
    ) -> str:
        """The shared node ``name`` with an edge to each of ``targets`` (made once)."""
        node = f"hub:{name}"
        if node not in self.graph.out:
            self.graph.out[node] = []
            for arn in sorted(targets):
                if skip(arn):
                    continue
                t = trust.get(arn) if trust is not None else None
                via, requires = (_via(t), _requires(t)) if t is not None else ((), ())
                self.graph.add(Edge(node, arn, "become", "match", via, requires))
        return node

    # -- trust -----------------------------------------------------------------------------
    def _service_roles(self) -> dict[str, list[tuple[Principal, Grant]]]:
        out: dict[str, list[tuple[Principal, Grant]]] = {}
        for role in self.roles:
            for s in role.trust:
                if not s.allow or s.principal is None or s.condition.truth is Truth.NEVER:
                    continue
                if not s.covers_action("sts:AssumeRole"):
                    continue
                g = Grant(s.condition.truth, (s,), s.condition.depends_on)
                for svc in s.principal.service:
                    out.setdefault(svc.lower(), []).append((role, g))
        return out

    def _trusted(self, role: Principal) -> tuple[dict[str, Grant], dict[str, Grant], Grant | None]:
        """(principal ARN -> grant named directly, account id -> grant via the account, anyone)."""
        direct: dict[str, Grant] = {}
        accounts: dict[str, Grant] = {}
        anyone: Grant | None = None
        for s in role.trust:
            if not s.allow or s.condition.truth is Truth.NEVER or not s.covers_action("sts:AssumeRole"):
                continue
            g = Grant(s.condition.truth, (s,), s.condition.depends_on)
            pr = s.principal
            if pr is None:
                continue
            if pr.anyone:
                anyone = g
            for text in pr.aws:
                if text == "*":
                    continue
                if text.isdigit():
                    accounts[text] = g
                    continue
                parts = text.split(":", 5)
                if len(parts) != 6:
                    continue
                resource = parts[5]
                if resource == "root":
                    accounts[parts[4]] = g
                elif parts[2] == "sts" and resource.startswith("assumed-role/"):
                    name = resource.split("/")[1]
                    for r in self.roles:
                        if r.name == name and r.account == parts[4]:
                            direct[r.arn] = g
                else:
                    direct[text] = g
        return direct, accounts, anyone

    def _trust_denied(self, role: Principal, source: Principal) -> bool:
        for s in role.trust:
            if s.allow or s.condition.truth is not Truth.ALWAYS or s.principal is None:
                continue
            if not s.covers_action("sts:AssumeRole"):
                continue
            named = s.principal.aws
            root = f"arn:aws:iam::{source.account}:root"
            if s.principal.anyone or source.arn in named or source.account in named or root in named:
                return True
        return False

    # -- edges -----------------------------------------------------------------------------
    def build(self) -> Graph:
        for p in self.estate.principals.values():
            self._edges_from(p)
        self._assume_role_edges()
        self._resolve_grants()
        return self.graph

    def _edges_from(self, p: Principal) -> None:
        perms = self.perms[p.arn]
        g = self.graph
        admin = self.admin_grant(perms, p.account)
        if admin.possible:
            g.add(Edge(p.arn, ADMIN, "holds", "admin", _via(admin), _requires(admin)))
            if admin.truth is Truth.ALWAYS:
                # Already admin: it can act as anyone; no step from it leads further.
                self.admins.add(p.arn)
                return
        for group in p.groups:
            if group in self.estate.principals:
                g.add(Edge(p.arn, group, "become", "member", (f"group membership of {p.name}",)))
        if not perms.statements:
            return
        variables = self.variables(p)
        for method, action in M.USER_CREDENTIALS:
            self._become(p, perms, action, self.user_index, method, variables)
        mid, action = M.UPDATE_TRUST
        self._become(p, perms, action, self.role_index, mid, variables, skip=self._service_linked)
        mid, action = M.ADD_TO_GROUP
        if p.kind == "user":
            self._become(p, perms, action, self.group_index, mid, variables)
        else:
            need = ("credentials of an IAM user to add to the group",) if self.require_credentials else ()
            self._become(p, perms, action, self.group_index, mid, variables, extra=need, delegated=True)
        for rules, index in (
            (M.GRANT_USER, self.user_index),
            (M.GRANT_ROLE, self.role_index),
            (M.GRANT_GROUP, self.group_index),
        ):
            for method, action in rules:
                found = perms.targets(action, index, variables)
                if found:
                    self._grants(p, method, Direct(found, self.estate))
        self._boundary_edges(p, perms, variables)
        self._policy_version_edges(p, perms, variables)
        self._pass_role_edges(p, perms, variables)
        self._existing_edges(p, perms)

    def _grants(self, p: Principal, method: str, grantees: Grantees) -> None:
        """Note that ``p`` can give any of ``grantees`` admin permissions by ``method``: an edge to
        admin for ``p`` itself and its groups now, the others resolved by :meth:`_resolve_grants`
        (which asks ``grantees`` about the few principals ``p`` can become, never lists them all)."""
        for own in (p.arn, *p.groups):
            gr = grantees.get(own)
            if gr is not None:
                self.graph.add(Edge(p.arn, ADMIN, "grant", method, _via(gr), _requires(gr), grantee=own))
        self.pending.setdefault(p.arn, []).append((method, grantees))

    def _boundary_edges(self, p: Principal, perms: PermissionSet, variables: dict[str, str | None]) -> None:
        for rules, index in ((M.BOUNDARY_USER, self.user_index), (M.BOUNDARY_ROLE, self.role_index)):
            for method, action in rules:
                found: dict[str, Grant] = {}
                for arn, gr in perms.targets(action, index, variables).items():
                    t = self.estate.principals[arn]
                    if t.boundary is None:
                        continue
                    unbounded = self.admin_grant(self._perm_set(t, with_boundary=False), t.account)
                    if unbounded.possible:
                        found[arn] = combine((gr, unbounded))
                if found:
                    self._grants(p, method, Direct(found, self.estate))

    def _policy_version_edges(
        self, p: Principal, perms: PermissionSet, variables: dict[str, str | None]
    ) -> None:
        mid, action = M.CREATE_POLICY_VERSION
        found = perms.targets(action, self.policy_index, variables)
        if found:
            self._grants(p, mid, Holders(found, self.estate, self.attached))
        mid, action = M.SET_DEFAULT_VERSION
        found = {
            arn: gr
            for arn, gr in perms.targets(action, self.policy_index, variables).items()
            if self._admin_version(arn)
        }
        if found:
            self._grants(p, mid, Holders(found, self.estate, self.attached))

    def _admin_version(self, arn: str) -> bool:
        """True when a non-default version of the managed policy ``arn`` is admin-equivalent."""
        hit = self._admin_versions.get(arn)
        if hit is None:
            pol = self.estate.policies[arn]
            hit = any(
                self.admin_grant(PermissionSet(stmts), "0").possible
                for vid, stmts in pol.versions.items()
                if vid != pol.default_version
            )
            self._admin_versions[arn] = hit
        return hit

    def _pass_role_edges(self, p: Principal, perms: PermissionSet, variables: dict[str, str | None]) -> None:
        passable = perms.targets("iam:PassRole", self.role_index, variables)
        if not passable:
            return
        for m in M.PASS_ROLE:
            service = combine(perms.any_resource(a) for a in m.actions)
            if not service.possible:
                continue
            extra: tuple[str, ...] = ()
            if m.requires and not (
                m.unless and combine(perms.any_resource(a) for a in m.unless).truth is Truth.ALWAYS
            ):
                extra = (m.requires,)
            for svc in m.services:
                for role, trust in self.service_roles.get(svc, ()):
                    if role.arn == p.arn or role.arn not in passable:
                        continue
                    if m.instance_profile and not role.instance_profile:
                        continue
                    gr = combine((passable[role.arn], service, trust))
                    self.graph.add(Edge(p.arn, role.arn, "become", m.id, _via(gr), _requires(gr, extra)))

    def _existing_edges(self, p: Principal, perms: PermissionSet) -> None:
        """Actions on an existing service resource: one conditional edge to the service's node,
        which has one edge to each role trusting the service (shared by every actor, so the
        graph grows with actors + roles, not actors x roles)."""
        for m in M.EXISTING:
            gr = combine(perms.any_resource(a) for a in m.actions)
            if not gr.possible:
                continue
            for svc in m.services:
                if not self.service_roles.get(svc):
                    continue
                node = self._service_node(svc, m.instance_profile)
                requires = _requires(gr, (f"{m.requires} running as a role that trusts {svc}",))
                self.graph.add(Edge(p.arn, node, "become", m.id, _via(gr), requires))

    def _service_node(self, svc: str, instance_profile: bool) -> str:
        node = service_node(svc, instance_profile)
        if node not in self.graph.out:
            self.graph.out[node] = []
            for role, trust in self.service_roles.get(svc, ()):
                if instance_profile and not role.instance_profile:
                    continue
                self.graph.add(Edge(node, role.arn, "become", "runs-as", _via(trust), _requires(trust)))
        return node

    def _assume_role_edges(self) -> None:
        mid, action = M.ASSUME_ROLE
        by_account: dict[str, list[tuple[Principal, Grant]]] = {}
        anyone: list[tuple[Principal, Grant]] = []
        for role in self.roles:
            direct, accounts, any_ = self._trusted(role)
            for arn, trust in direct.items():
                src = self.estate.principals.get(arn)
                if src is None or src.arn == role.arn or src.kind == "group" or src.arn in self.admins:
                    continue
                # A trust policy naming the principal grants on its own (same account); an
                # explicit deny in the trust policy or the caller's identity policies still wins.
                if self._trust_denied(role, src) or self._denied(src, role.arn):
                    continue
                self.graph.add(Edge(src.arn, role.arn, "become", mid, _via(trust), _requires(trust)))
            for account, trust in accounts.items():
                by_account.setdefault(account, []).append((role, trust))
            if any_ is not None:
                anyone.append((role, any_))
        if not by_account and not anyone:
            return
        # Roles whose trust policy has no Deny can sit behind a shared node (see _become).
        clean = {r.arn for r in self.roles if all(st.allow for st in r.trust)}
        anyone_trust = {r.arn: t for r, t in anyone}
        anyone_clean = [a for a in anyone_trust if a in clean]
        by_account_trust = {acct: {r.arn: t for r, t in roles} for acct, roles in by_account.items()}
        by_account_index = {
            acct: ResourceIndex([a for a in trusts if a in clean])
            for acct, trusts in by_account_trust.items()
        }
        for src in self.estate.principals.values():
            if src.kind == "group" or src.arn in self.admins:
                continue
            perms = self.perms[src.arn]
            allows, denies = perms.for_action(action)
            if anyone:
                pairs = list(anyone)
                if not denies and len(anyone_clean) >= self.hub_min:
                    node = self._hub("sts-001 trusted by anyone", anyone_clean, lambda a: False, anyone_trust)
                    self.graph.add(Edge(src.arn, node, "become", mid, ("trust policies with Principal '*'",)))
                    pairs = [(r, t) for r, t in anyone if r.arn not in clean]
                for role, trust in pairs:
                    if (
                        role.arn != src.arn
                        and not self._trust_denied(role, src)
                        and not self._denied(src, role.arn)
                    ):
                        self.graph.add(Edge(src.arn, role.arn, "become", mid, _via(trust), _requires(trust)))
            mine = by_account.get(src.account)
            if not mine or not allows:
                continue
            variables = self.variables(src)
            plain = not denies and perms.boundary is None
            plain = plain and all(
                st.resources is not None and not any(has_variable(x) for x in st.resources) for st in allows
            )
            if not plain:
                allowed = perms.targets(action, self.role_index, variables)
                for role, trust in mine:
                    own = allowed.get(role.arn)
                    if own is None or role.arn == src.arn or self._trust_denied(role, src):
                        continue
                    gr = combine((own, trust))
                    self.graph.add(Edge(src.arn, role.arn, "become", mid, _via(gr), _requires(gr)))
                continue
            trusts = by_account_trust[src.account]
            index = by_account_index[src.account]
            for st in allows:
                own = Grant(st.condition.truth, (st,), st.condition.depends_on)
                for pattern in st.resources or ():
                    hits = index.matching(pattern)
                    if len(hits) >= self.hub_min:
                        node = self._hub(f"sts-001 {src.account} {pattern}", hits, lambda a: False, trusts)
                        self.graph.add(Edge(src.arn, node, "become", mid, _via(own), _requires(own)))
                        continue
                    for arn in hits:
                        if arn != src.arn:
                            gr = combine((own, trusts[arn]))
                            self.graph.add(Edge(src.arn, arn, "become", mid, _via(gr), _requires(gr)))
            for role, trust in mine:
                if role.arn in clean or role.arn == src.arn or self._trust_denied(role, src):
                    continue
                own = perms.check(action, role.arn, variables)
                if own.possible:
                    gr = combine((own, trust))
                    self.graph.add(Edge(src.arn, role.arn, "become", mid, _via(gr), _requires(gr)))

    def _denied(self, src: Principal, resource: str) -> bool:
        _, denies = self.perms[src.arn].for_action("sts:AssumeRole")
        for d in denies:
            if d.condition.truth is not Truth.ALWAYS:
                continue
            patterns = d.resources if d.resources is not None else d.not_resources
            hit = any(matches(p, resource) for p in patterns or ())
            if hit == (d.resources is not None):
                return True
        return False

    # -- grants: a step to admin only for a principal the actor can act as -----------------
    def _resolve_grants(self) -> None:
        """Turn each grant onto another principal into a step to admin: through the become steps
        to it when the actor can act as it (looked for up to 4 steps deep with
        ``require_credentials``, 1 otherwise), else delegated. One edge per (actor, method) is
        kept: a verdict needs one, the paths show one per method."""
        for source, grants in self.pending.items():
            p = self.estate.principals[source]
            own = {source, *p.groups}
            parent = self._become_tree(source, 4 if self.require_credentials else 1)
            reachable = [n for n in parent if n not in own and n in self.estate.principals]
            for method, grantees in grants:
                best: Edge | None = None
                for node in reachable:  # breadth-first order: the shortest first
                    gr = grantees.get(node)
                    if gr is None:
                        continue
                    path = self._path(parent, node)
                    extra = tuple(r for step in path for r in step.requires)
                    e = Edge(
                        source, ADMIN, "grant", method, _via(gr), _requires(gr, extra), node, tuple(path)
                    )
                    if best is None or (best.requires and not e.requires):
                        best = e
                    if not best.requires:
                        break
                if best is not None:
                    self.graph.add(best)
                    if not best.requires:
                        continue
                example = grantees.first(own)
                if example is None:
                    continue
                grantee, gr = example
                who = self.estate.principals[grantee].name
                need = f"credentials of {who} (or of another principal it can give permissions to)"
                requires = _requires(gr, (need,) if self.require_credentials else ())
                self.graph.add(
                    Edge(source, ADMIN, "grant", method, _via(gr), requires, grantee, delegated=True)
                )

    def _become_tree(self, source: str, limit: int = 4) -> dict[str, Edge | None]:
        """Principals ``source`` can become in at most ``limit`` become steps -> the edge reaching
        each (breadth first: shortest)."""
        parent: dict[str, Edge | None] = {source: None}
        queue = deque([(source, 0)])
        while queue:
            node, depth = queue.popleft()
            if depth >= limit:
                continue
            for e in self.graph.out.get(node, ()):
                if e.kind == "become" and e.target not in parent:
                    parent[e.target] = e
                    # a shared node is half a step: its edges complete the step into it
                    step = 0 if e.target not in self.estate.principals else 1
                    queue.append((e.target, depth + step))
        return parent

    def _path(self, parent: dict[str, Edge | None], node: str) -> list[Edge]:
        path: list[Edge] = []
        while (edge := parent[node]) is not None:
            path.append(edge)
            node = edge.source
        return fold(path[::-1], self.estate.principals)


def build_graph(estate: Estate, *, require_credentials: bool = False, hub_min: int = HUB_MIN) -> Graph:
    """The escalation graph of ``estate`` (never raises for a parsed estate).

    ``require_credentials``: a step that gives admin to a principal the actor cannot act as is
    conditional (on that principal's credentials) instead of reaching admin. ``hub_min``: how many
    targets a wildcard must match to go through a shared node (a speed setting; the answers are
    the same for any value, which the property tests check).
    """
    if hub_min < 1:
        raise ValueError("hub_min must be at least 1")
    return _Builder(estate, require_credentials, hub_min).build()
