"""Generated estates at three sizes: load time, memory and decision latency, against cedarpy.

    .venv/bin/python bench/estates.py [--sizes S,M,L] [--seed 7] [--requests 20000]
                                      [--agree 500] [--no-cedarpy] [--out FILE.json]
                                      [--teams-per 20] [--docs-per-folder 50] [--global 12]
                                      [--schema]

An estate is generated from a seed (``random.Random(seed)``), never read from a file, and shaped
differently from the shared benchmark's workload:

- identities (``Agent``) in a three-level group hierarchy (``Group::"org-*"`` > ``"dept-*"`` >
  ``"team-*"``; an agent is in one or two teams), with a kind, an environment, a clearance (Long),
  a set of tags, a home network (``ipaddr`` range) and, for some, an ``owner_team``;
- resources (``Doc``) in a two-level folder tree (``Folder::"root-*"`` > ``"sub-*"``), with a
  classification (Long), a label, a path (for ``like``), an environment, a set of tags and, for some,
  an ``owner`` (an entity reference, for ``has``);
- actions in a group (``Action::"mutate"`` holds write, delete and share);
- policies from ten templates: folder grants by team with a clearance comparison, label grants
  by department with an ip-range condition on the context, path grants with ``like``, owner
  grants with ``has``, direct grants, and forbids (frozen tags unless break-glass, context risk
  over a folder, deletes in production without MFA). ``--global`` policies apply to every
  principal (guardrails: their number does not grow with the estate); the rest are scoped to a
  team, a department or an organisation, which grow with the estate (``--teams-per``: agents per
  team).

Sizes: S ~ the shared workload's (1,000 identities, 10,000 resources, 200 policies), M (10,000,
100,000, 1,000), L (100,000, 500,000, 5,000). Each size is loaded in a fresh child process
(``vigil.Engine.from_workspace``, no audit, behaviour in shadow mode): the load's wall time, the
process's peak RSS and (``--heap``) the Python heap it keeps (tracemalloc, a second load); then, after
``gc.freeze()`` as ``vigil serve`` does, ``--requests`` decisions through ``Engine.decide`` (the full
path: identity, policy, behaviour in shadow) timed one by one, twice: the first pass is first contact
(``first_p50_us``: most identities, pairs and resources decided for the first time), the second the
steady state (``decide_p50_us``/``p99``); then the same requests through the authorizer alone; cedarpy (pre-parsed
PolicySet and Entities handles, as in the shared harness's adapter) decides a sample of them on S
and M, and ``--agree`` requests are checked to get the same decision from both (before the entity changes below, which cedarpy does not see). Entity changes: 20 batches of 100 documents (50 new, 50
changed) through ``Engine.change_entities``, timed (``upsert100_p50_ms``, ``upsert100_max_ms``), then one
delete of 50. Before them, a policy change three times: one policy appended to the policy file and
``Engine.reload`` timed (``reload_wall_s``, ``reload_cpu_s``: it reuses the unchanged policies and
the entities). At the end, issue 14's targets, each met or not, for the sizes that ran.

``--schema``: the workspace also has a Cedar schema declaring the estate's types, attributes,
actions and context (``SCHEMA``): policies are validated against it and entities read by it (vigil
reads entities that conform as written itself, policy/entity_schema.py; cedarpy the rest).

Prints one JSON line per size and a table at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIZES: dict[str, tuple[int, int, int]] = {
    "S": (1_000, 10_000, 200),
    "M": (10_000, 100_000, 1_000),
    "L": (100_000, 500_000, 5_000),
}
KINDS = ("ci", "llm", "etl", "monitor", "deploy", "support")
ENVS = ("prod", "staging", "dev")
TAGS = ("pci", "gdpr", "internal", "public", "breakglass", "oncall", "batch", "ml", "finance")
ACTIONS = ("read", "list", "write", "delete", "share", "admin")
MUTATE = ("write", "delete", "share")
ACTION_WEIGHTS = (50, 20, 15, 5, 5, 5)


SCHEMA = """\
entity Group in [Group] = { "level": Long };
entity Folder in [Folder];
entity Agent in [Group] = {
  "kind": String, "env": String, "clearance": Long, "tags": Set<String>,
  "home_net": __cedar::ipaddr, "owner_team"?: Group,
};
entity Doc in [Folder] = {
  "classification": Long, "label": String, "path": String, "env": String, "tags": Set<String>,
  "owner"?: Agent,
};
type Ctx = { "ip": __cedar::ipaddr, "hour": Long, "mfa": Bool, "risk"?: Long };
action mutate;
action read, list, admin appliesTo { principal: [Agent], resource: [Doc], context: Ctx };
action write, delete, share in [mutate] appliesTo { principal: [Agent], resource: [Doc], context: Ctx };
"""


@dataclass
class Estate:
    policies: str
    entities: list[dict[str, Any]]
    requests: list[dict[str, Any]]  # AuthZEN requests
    counts: dict[str, int]


def _uid(t: str, i: str) -> dict[str, str]:
    return {"type": t, "id": i}


def _ip(text: str) -> dict[str, Any]:
    return {"__extn": {"fn": "ip", "arg": text}}


def generate(
    identities: int,
    resources: int,
    n_policies: int,
    *,
    seed: int = 7,
    teams_per: int = 20,
    docs_per_folder: int = 50,
    n_global: int = 12,
    n_requests: int = 20_000,
) -> Estate:
    rng = random.Random(seed)
    n_teams = max(2, identities // teams_per)
    n_depts = max(2, n_teams // 10)
    n_orgs = max(2, n_depts // 10)
    n_subs = max(2, resources // docs_per_folder)
    n_roots = max(2, n_subs // 20)
    n_labels = max(10, resources // 200)
    n_projects = max(10, resources // 500)
    n_frozen = 20
    ents: list[dict[str, Any]] = []
    orgs = [f"org-{i}" for i in range(n_orgs)]
    depts = [f"dept-{i}" for i in range(n_depts)]
    teams = [f"team-{i}" for i in range(n_teams)]
    dept_of = {t: depts[i % n_depts] for i, t in enumerate(teams)}
    org_of = {d: orgs[i % n_orgs] for i, d in enumerate(depts)}
    for o in orgs:
        ents.append({"uid": _uid("Group", o), "attrs": {"level": 1}, "parents": []})
    for d in depts:
        ents.append({"uid": _uid("Group", d), "attrs": {"level": 2}, "parents": [_uid("Group", org_of[d])]})
    for t in teams:
        ents.append({"uid": _uid("Group", t), "attrs": {"level": 3}, "parents": [_uid("Group", dept_of[t])]})
    roots = [f"root-{i}" for i in range(n_roots)]
    subs = [f"sub-{i}" for i in range(n_subs)]
    root_of = {s: roots[i % n_roots] for i, s in enumerate(subs)}
    for r in roots:
        ents.append({"uid": _uid("Folder", r), "attrs": {}, "parents": []})
    for s in subs:
        ents.append({"uid": _uid("Folder", s), "attrs": {}, "parents": [_uid("Folder", root_of[s])]})
    for a in ACTIONS:
        parents = [_uid("Action", "mutate")] if a in MUTATE else []
        ents.append({"uid": _uid("Action", a), "attrs": {}, "parents": parents})
    ents.append({"uid": _uid("Action", "mutate"), "attrs": {}, "parents": []})

    agent_teams: list[list[str]] = []
    for i in range(identities):
        ts = [teams[rng.randrange(n_teams)]]
        if rng.random() < 0.3:
            ts.append(teams[rng.randrange(n_teams)])
        agent_teams.append(ts)
        attrs: dict[str, Any] = {
            "kind": rng.choice(KINDS),
            "env": rng.choice(ENVS),
            "clearance": rng.randrange(6),
            "tags": rng.sample(TAGS, rng.randrange(4)),
            "home_net": _ip(f"10.{rng.randrange(256)}.0.0/16"),
        }
        if rng.random() < 0.4:
            attrs["owner_team"] = {"__entity": _uid("Group", ts[0])}
        ents.append(
            {"uid": _uid("Agent", f"agent-{i}"), "attrs": attrs, "parents": [_uid("Group", t) for t in ts]}
        )
    docs_in: dict[str, list[str]] = {s: [] for s in subs}
    for i in range(resources):
        sub = subs[i % n_subs]
        docs_in[sub].append(f"doc-{i}")
        tags = rng.sample(TAGS, rng.randrange(3))
        if rng.random() < 0.05:
            tags.append(f"frozen-{rng.randrange(n_frozen)}")
        attrs = {
            "classification": rng.randrange(6),
            "label": f"L{rng.randrange(n_labels)}",
            "path": f"proj-{rng.randrange(n_projects)}/{rng.choice(('src', 'data', 'docs', 'ops'))}/f{i}.txt",
            "env": rng.choice(ENVS),
            "tags": tags,
        }
        if rng.random() < 0.3:
            attrs["owner"] = {"__entity": _uid("Agent", f"agent-{rng.randrange(identities)}")}
        ents.append({"uid": _uid("Doc", f"doc-{i}"), "attrs": attrs, "parents": [_uid("Folder", sub)]})

    # -- policies -----------------------------------------------------------------------------
    grants: dict[str, list[str]] = {}  # team -> folders it is granted (for requests that may pass)
    out: list[str] = []
    scoped = max(0, n_policies - n_global)
    for i in range(n_global):
        k = i % 6
        if k == 0:
            out.append(
                f'forbid (principal, action in Action::"mutate", resource)\n'
                f'when {{ resource.tags.contains("frozen-{rng.randrange(n_frozen)}") }}\n'
                f'unless {{ principal.tags.contains("breakglass") }};'
            )
        elif k == 1:
            out.append(
                f'permit (principal is Agent, action == Action::"read", resource)\n'
                f'when {{ resource.path like "proj-{rng.randrange(n_projects)}/*" && '
                f'principal.kind == "{rng.choice(KINDS)}" }};'
            )
        elif k == 2:
            out.append(
                f'forbid (principal, action, resource in Folder::"{rng.choice(roots)}")\n'
                f"when {{ context has risk && context.risk > {rng.randrange(60, 95)} && "
                f"resource.classification >= {rng.randrange(2, 5)} }};"
            )
        elif k == 3:
            out.append(
                f'permit (principal, action == Action::"list", resource)\n'
                f'when {{ principal.kind == "{rng.choice(KINDS)}" && resource.env == "{rng.choice(ENVS)}" '
                f"&& resource.classification < 2 }};"
            )
        elif k == 4:
            out.append(
                'forbid (principal, action == Action::"admin", resource)\n'
                'unless { principal has owner_team && principal.tags.contains("oncall") '
                "&& context.mfa };"
            )
        else:
            out.append(
                f"forbid (principal, action, resource is Doc)\n"
                f'when {{ resource has owner && resource.env == "prod" && context has risk && '
                f"context.risk > {rng.randrange(85, 99)} }};"
            )
    weights = [(0, 40), (1, 15), (2, 8), (3, 12), (4, 10), (5, 8), (6, 7)]
    kinds = [k for k, w in weights for _ in range(w)]
    for _ in range(scoped):
        k = rng.choice(kinds)
        team = rng.choice(teams)
        if k == 0:
            sub = rng.choice(subs)
            grants.setdefault(team, []).append(sub)
            out.append(
                f'permit (principal in Group::"{team}", action in [Action::"read", Action::"list"], '
                f'resource in Folder::"{sub}")\nwhen {{ resource.classification <= principal.clearance }};'
            )
        elif k == 1:
            out.append(
                f'permit (principal in Group::"{dept_of[team]}", action == Action::"write", resource)\n'
                f'when {{ resource.label == "L{rng.randrange(n_labels)}" && principal.env == resource.env '
                f"&& context.ip.isInRange(principal.home_net) }};"
            )
        elif k == 2:
            out.append(
                f'permit (principal in Group::"{org_of[dept_of[team]]}", action, resource is Doc)\n'
                f"when {{ resource has owner && resource.owner == principal && "
                f'resource.label == "L{rng.randrange(n_labels)}" }};'
            )
        elif k == 3:
            root = rng.choice(roots)
            out.append(
                f'permit (principal in Group::"{team}", action == Action::"read", resource in Folder::"{root}")\n'
                f'when {{ principal.tags.containsAny(["{rng.choice(TAGS)}", "{rng.choice(TAGS)}"]) '
                f"&& context.hour >= 8 && context.hour < 18 }};"
            )
        elif k == 4:
            agent = f"agent-{rng.randrange(identities)}"
            sub = rng.choice(subs)
            out.append(
                f'permit (principal == Agent::"{agent}", action in [Action::"share", Action::"write"], '
                f'resource in Folder::"{sub}");'
            )
        elif k == 5:
            out.append(
                f'forbid (principal in Group::"{org_of[dept_of[team]]}", action == Action::"delete", resource)\n'
                f'when {{ resource.env == "prod" && !context.mfa }};'
            )
        else:
            out.append(
                f'permit (principal in Group::"{dept_of[team]}", action in Action::"mutate", resource is Doc)\n'
                f'when {{ resource.tags.containsAll(["{rng.choice(TAGS)}"]) && '
                f'resource.path like "*/ops/*" && principal.clearance >= 3 }};'
            )
    policies = "\n\n".join(f'@id("p{i}")\n{text}' for i, text in enumerate(out)) + "\n"

    # -- requests -----------------------------------------------------------------------------
    requests: list[dict[str, Any]] = []
    for _ in range(n_requests):
        i = rng.randrange(identities)
        action = rng.choices(ACTIONS, ACTION_WEIGHTS)[0]
        granted = [s for t in agent_teams[i] for s in grants.get(t, ())]
        if granted and rng.random() < 0.6:
            folder = docs_in[rng.choice(granted)]
            doc = rng.choice(folder) if folder else f"doc-{rng.randrange(resources)}"
        else:
            doc = f"doc-{rng.randrange(resources)}"
        ctx: dict[str, Any] = {
            "ip": _ip(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"),
            "hour": rng.randrange(24),
            "mfa": rng.random() < 0.7,
        }
        if rng.random() < 0.3:
            ctx["risk"] = rng.randrange(100)
        requests.append(
            {
                "subject": {"type": "Agent", "id": f"agent-{i}"},
                "action": {"name": action},
                "resource": {"type": "Doc", "id": doc},
                "context": ctx,
            }
        )
    counts = {
        "identities": identities,
        "resources": resources,
        "groups": n_orgs + n_depts + n_teams,
        "folders": n_roots + n_subs,
        "entities": len(ents),
        "policies": len(out),
    }
    return Estate(policies, ents, requests, counts)


CHILD = r"""
import gc, json, resource, statistics, sys, time, tracemalloc
ws, reqfile, n_cedar, n_agree, heap = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
requests = json.load(open(reqfile))
import vigil
from vigil.audit import NullSink
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
c0 = time.process_time()
engine = vigil.Engine.from_workspace(ws, audit=NullSink())
load_s = time.perf_counter() - t0
load_cpu = time.process_time() - c0
rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {"load_s": round(load_s, 3), "load_cpu_s": round(load_cpu, 3), "rss_after_load_mb": round(rss_load / 1024, 1)}
gc.freeze()  # as `vigil serve` does after loading: the estate is out of the collector's passes
decide = engine.decide
pc = time.perf_counter_ns
q = lambda xs, p: round(xs[min(len(xs) - 1, int(p * len(xs)))] / 1000, 2)
# first contact: every request's identity, pair and resource decided for the first time or not
lat = []
for r in requests:
    a = pc()
    decide(r)
    lat.append(pc() - a)
lat.sort()
out.update(first_p50_us=q(lat, 0.5), first_p99_us=q(lat, 0.99))
# steady state: the same requests again (identities, pairs and resources seen before)
lat = []
allowed = 0
for r in requests:
    a = pc()
    rec = decide(r)
    lat.append(pc() - a)
    allowed += rec.allowed
lat.sort()
out.update(decide_p50_us=q(lat, 0.5), decide_p99_us=q(lat, 0.99), allowed=allowed, decisions=len(lat))
# the authorizer alone (the Cedar part of a decision)
from vigil.policy.json_values import record_to_cedar
st = engine._state
auth = st.authorizer
by_uid = st.by_uid
natives = []
for r in requests:
    p = ("Agent", r["subject"]["id"]); a = ("Action", r["action"]["name"]); res = ("Doc", r["resource"]["id"])
    natives.append((p, a, res, record_to_cedar(r["context"])))
lat = []
for p, a, res, c in natives:
    t = pc()
    auth.is_authorized(p, a, res, c)
    lat.append(pc() - t)
lat.sort()
out.update(policy_p50_us=q(lat, 0.5), policy_p99_us=q(lat, 0.99))
out["rss_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
if n_cedar or n_agree:
    import cedarpy
    t = time.perf_counter()
    text = open(ws + "/policies/estate.cedar").read()
    ps = cedarpy.PolicySet.from_str(text)
    ents = cedarpy.Entities.from_json_str(open(ws + "/entities/estate.json").read())
    out["cedarpy_load_s"] = round(time.perf_counter() - t, 3)
    def native(r):
        return {"principal": r["subject"], "action": {"type": "Action", "id": r["action"]["name"]},
                "resource": r["resource"], "context": r["context"]}
    if n_cedar:
        lat = []
        for r in requests[:n_cedar]:
            n = native(r)
            t = pc()
            cedarpy.is_authorized(n, ps, ents)
            lat.append(pc() - t)
        lat.sort()
        out.update(cedarpy_p50_us=q(lat, 0.5), cedarpy_p99_us=q(lat, 0.99), cedarpy_samples=len(lat))
    agree = 0
    sample = requests[-n_agree:] if n_agree else []
    disagree = []
    for r in sample:
        mine = decide(r).allowed
        theirs = cedarpy.is_authorized(native(r), ps, ents).allowed
        if mine == theirs:
            agree += 1
        elif len(disagree) < 3:
            disagree.append(r)
    out["agree"] = f"{agree}/{len(sample)}"
    if disagree:
        out["disagree_examples"] = disagree
# a policy change: one policy appended to the policy file, then a reload (three times; before the
# entity changes below, after which a reload reads the entity files again)
reloads = []
pfile = ws + "/policies/estate.cedar"
for k in range(3):
    with open(pfile, "a") as f:
        f.write(f'\n@id("bench-reload-{k}")\npermit(principal, action == Action::"read", resource) when {{ resource has label && resource.label == "bench-{k}" }};\n')
    t, c = time.perf_counter(), time.process_time()
    ok = engine.reload(by="bench").ok
    reloads.append((round(time.perf_counter() - t, 2), round(time.process_time() - c, 2), ok))
out["reload_wall_s"] = [r[0] for r in reloads]
out["reload_cpu_s"] = [r[1] for r in reloads]
out["reload_ok"] = all(r[2] for r in reloads)
# entity changes without a reload: batches of 100 (half new documents, half existing ones changed)
if hasattr(engine, "change_entities"):
    items = json.load(open(ws + "/entities/estate.json"))
    docs = [it for it in items if it["uid"]["type"] == "Doc"]
    del items
    times = []
    for b in range(20):
        batch = []
        for k in range(50):
            d = docs[(b * 50 + k) * 7 % len(docs)]
            batch.append({**d, "attrs": {**d["attrs"], "classification": (d["attrs"]["classification"] + 1) % 6}})
            batch.append({**d, "uid": {"type": "Doc", "id": f"new-{b}-{k}"}})
        t = pc()
        engine.change_entities(batch, by="bench")
        times.append(pc() - t)
    times.sort()
    out.update(upsert100_p50_ms=round(times[len(times) // 2] / 1e6, 2), upsert100_max_ms=round(times[-1] / 1e6, 2))
    t = pc()
    engine.change_entities(deletes=[{"type": "Doc", "id": f"new-0-{k}"} for k in range(50)], by="bench")
    out["delete50_ms"] = round((pc() - t) / 1e6, 2)
if heap:
    del engine, st, auth, by_uid
    gc.collect()
    tracemalloc.start()
    engine = vigil.Engine.from_workspace(ws, audit=NullSink())
    out["heap_retained_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
    tracemalloc.stop()
print(json.dumps(out))
"""


def run_size(name: str, args: argparse.Namespace) -> dict[str, Any]:
    ids, res, pols = SIZES[name]
    t = __import__("time").perf_counter()
    est = generate(
        ids,
        res,
        pols,
        seed=args.seed,
        teams_per=args.teams_per,
        docs_per_folder=args.docs_per_folder,
        n_global=args.n_global,
        n_requests=args.requests,
    )
    gen_s = __import__("time").perf_counter() - t
    with tempfile.TemporaryDirectory(prefix=f"vigil-estate-{name}-") as tmp:
        ws = Path(tmp)
        (ws / "policies").mkdir()
        (ws / "entities").mkdir()
        (ws / "vigil.toml").write_text('[behaviour]\nmode = "shadow"\n[store]\nbackend = "memory"\n')
        if args.schema:
            (ws / "schema.cedarschema").write_text(SCHEMA)
        (ws / "policies" / "estate.cedar").write_text(est.policies)
        (ws / "entities" / "estate.json").write_text(json.dumps(est.entities))
        (ws / "requests.json").write_text(json.dumps(est.requests))
        del est.entities
        cedar_n = 0 if args.no_cedarpy or name == "L" else args.cedarpy_requests
        agree_n = 0 if args.no_cedarpy else args.agree
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(ws),
                str(ws / "requests.json"),
                str(cedar_n),
                str(agree_n),
                "1" if args.heap else "0",
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            return {"size": name, **est.counts, "error": proc.stderr.strip().splitlines()[-1:]}
        got = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"size": name, **est.counts, "generate_s": round(gen_s, 1), **got}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="S,M,L")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--cedarpy-requests", type=int, default=2_000)
    ap.add_argument("--agree", type=int, default=500)
    ap.add_argument("--no-cedarpy", action="store_true")
    ap.add_argument(
        "--heap", action="store_true", help="also measure the retained Python heap (a second load)"
    )
    ap.add_argument("--teams-per", type=int, default=20)
    ap.add_argument("--docs-per-folder", type=int, default=50)
    ap.add_argument("--global", dest="n_global", type=int, default=12)
    ap.add_argument("--schema", action="store_true", help="the workspace has a Cedar schema (SCHEMA)")
    ap.add_argument("--out")
    args = ap.parse_args()
    rows = []
    for name in args.sizes.split(","):
        row = run_size(name.strip().upper(), args)
        print(json.dumps(row), flush=True)
        rows.append(row)
    cols = (
        "size",
        "entities",
        "policies",
        "load_s",
        "load_cpu_s",
        "rss_peak_mb",
        "first_p50_us",
        "decide_p50_us",
        "decide_p99_us",
        "policy_p50_us",
        "cedarpy_p50_us",
        "agree",
        "upsert100_p50_ms",
        "reload_wall_s",
    )
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "-")) for c in cols))
    s = next((r for r in rows if r["size"] == "S" and "decide_p50_us" in r), None)
    for r in rows:
        if "decide_p50_us" not in r:
            continue
        notes = []
        if s is not None and r is not s:
            notes.append(f"p50 {r['decide_p50_us'] / s['decide_p50_us']:.2f}x S")
        if "cedarpy_p50_us" in r:
            notes.append(f"cedarpy/vigil {r['cedarpy_p50_us'] / r['decide_p50_us']:.1f}")
        print(r["size"], "; ".join(notes))
    for line in _targets({r["size"]: r for r in rows}):
        print(line)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


def _targets(by: dict[str, dict[str, Any]]) -> list[str]:
    """Issue 14's single-node targets against this run's rows (those whose sizes ran)."""
    out = []

    def check(name: str, value: float | None, limit: float, unit: str = "") -> None:
        if value is None:
            return
        out.append(
            f"target {name}: {value:g}{unit} <= {limit:g}{unit}: {'met' if value <= limit else 'NOT met'}"
        )

    s, m, big = by.get("S", {}), by.get("M", {}), by.get("L", {})
    check("load M (wall)", m.get("load_s"), 6, " s")
    check("load L (wall)", big.get("load_s"), 60, " s")
    check("RSS L", big.get("rss_peak_mb"), 4096, " MB")
    if "decide_p50_us" in s and "decide_p50_us" in big:
        check("decision p50 L / S", round(big["decide_p50_us"] / s["decide_p50_us"], 2), 1.5, "x")
    if "cedarpy_p50_us" in m and "decide_p50_us" in m:
        check("M p50 / cedarpy p50", round(m["decide_p50_us"] / m["cedarpy_p50_us"], 4), round(1 / 30, 4))
    check("upsert of 100 at L (p50)", big.get("upsert100_p50_ms"), 10, " ms")
    if big.get("reload_wall_s"):
        check("policy change reload at L (slowest of 3, wall)", max(big["reload_wall_s"]), 5, " s")
    return out


if __name__ == "__main__":
    main()
