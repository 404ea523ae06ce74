"""``vigil policy diff OLD NEW``: what a workspace change gives and takes away (docs/escalation.md).

Access (every principal x action x resource, decided for every context at once with both
workspaces' compiled policies over their own entities), escalation paths (``vigil paths
--workspace`` on both) and, with ``--replay FILE``, the recorded requests both workspaces decide
differently (each workspace replays the file as a dry run).

Exit status: 0 nothing widened (unchanged or narrowed only); 1 access widened (a request allowed,
or allowed under more contexts, a path to admin that appears or shortens its verdict's distance
class, a replayed request now allowed); 2 bad argument or unreadable replay file; 3 a workspace
is refused.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from vigil.cli.render import exit_status, render_workspace_error
from vigil.errors import VigilError, WorkspaceError
from vigil.escalation import analyse, diff
from vigil.escalation.access_diff import MAX_REQUESTS, Side, access_diff
from vigil.escalation.cedar_grants import identities, workspace_graph
from vigil.workspace.loader import Workspace, load_workspace

_SHOW = 4


def _side(ws: Workspace) -> Side:
    ps = ws.policy_set
    return Side(ps.policies, ps.store, frozenset(ws.settings.escalation.context_guards), ps.named_uids())


def _types(ws: Workspace) -> tuple[str, ...]:
    return ws.settings.escalation.principals or ws.settings.identity.types


def _paths(old: Workspace, new: Workspace) -> dict[str, Any]:
    graphs = []
    for ws in (old, new):
        ps = ws.policy_set
        graphs.append(
            workspace_graph(ps.policies, ps.store, ws.settings.escalation, ws.settings.identity.types)
        )
    data = diff(analyse(graphs[0]), analyse(graphs[1]))
    keep = set(identities(graphs[0])) | set(identities(graphs[1]))
    data["gained"] = [e for e in data["gained"] if e["id"] in keep]
    data["lost"] = [e for e in data["lost"] if e["id"] in keep]
    data["widened"] = bool(data["gained"])
    return data


def replay_diff(old: Path, new: Path, replay_file: Path, *, keep: int = 50) -> dict[str, Any]:
    """Replay ``replay_file`` on both workspaces (dry runs); the lines decided differently."""
    from vigil.replay import replay, replay_engine

    changed: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    lines = 0
    try:
        f_old = open(replay_file, "rb")  # noqa: SIM115 - closed below
        f_new = open(replay_file, "rb")  # noqa: SIM115
    except OSError as e:
        raise VigilError(
            f"cannot read replay file {str(replay_file)!r}: {e.strerror}", code="invalid_input"
        ) from None
    with f_old, f_new, replay_engine(old) as e_old, replay_engine(new) as e_new:
        for a, b in zip(replay(e_old, f_old), replay(e_new, f_new), strict=True):
            lines += 1
            if a.record is None or b.record is None or a.record.allowed == b.record.allowed:
                continue
            kind = "now_allowed" if b.record.allowed else "now_denied"
            counts[kind] += 1
            if len(changed) < keep:
                r = b.record
                changed.append(
                    {
                        "line": a.line,
                        "change": kind,
                        "principal": f'{r.principal[0]}::"{r.principal[1]}"',
                        "action": r.action[1],
                        "resource": f'{r.resource[0]}::"{r.resource[1]}"',
                        "before": {
                            "decision": a.record.allowed,
                            "reasons": list(a.record.reason_codes),
                            "policies": list(a.record.policies),
                        },
                        "after": {
                            "decision": r.allowed,
                            "reasons": list(r.reason_codes),
                            "policies": list(r.policies),
                        },
                    }
                )
    return {
        "lines": lines,
        "now_allowed": counts["now_allowed"],
        "now_denied": counts["now_denied"],
        "changed": changed,
    }


def policy_diff(
    old: Annotated[Path, typer.Argument(help="The workspace before the change.", show_default=False)],
    new: Annotated[Path, typer.Argument(help="The workspace after the change.", show_default=False)],
    replay_file: Annotated[
        Path | None,
        typer.Option(
            "--replay", help="Recorded requests (replay JSON lines): which are now decided differently."
        ),
    ] = None,
    max_requests: Annotated[
        int,
        typer.Option(
            "--max-requests",
            min=1,
            help="Refuse to evaluate more requests than this (skipped ones do not count).",
        ),
    ] = MAX_REQUESTS,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """What a workspace change gives and takes away: access, escalation paths, replayed decisions.

    Exit 0 when nothing widened, 1 when access widened, 2 bad argument, 3 a refused workspace.
    """
    err = Console(stderr=True, highlight=False)
    try:
        ws_old, ws_new = load_workspace(old), load_workspace(new)
        types = tuple(dict.fromkeys((*_types(ws_old), *_types(ws_new))))
        access = access_diff(_side(ws_old), _side(ws_new), types, max_requests=max_requests)
        paths = _paths(ws_old, ws_new)
        replayed = replay_diff(old, new, replay_file) if replay_file is not None else None
    except WorkspaceError as e:
        if json_:
            sys.stdout.write(orjson.dumps({"error": e.to_dict()}).decode() + "\n")
        else:
            render_workspace_error(err, e)
        raise typer.Exit(exit_status(e.code)) from None
    except VigilError as e:
        if json_:
            sys.stdout.write(orjson.dumps({"error": e.to_dict()}).decode() + "\n")
        else:
            err.print(f"[red]error[/] [bold]{e.code}[/]: {escape(e.message)}", soft_wrap=True)
        raise typer.Exit(exit_status(e.code)) from None
    widened = bool(access["gained"]) or paths["widened"] or bool(replayed and replayed["now_allowed"])
    data = {
        "widened": widened,
        "access": {"gained": access["gained"], "lost": access["lost"]},
        "paths": {"gained": paths["gained"], "lost": paths["lost"]},
        "replay": replayed,
        "enumerated": access["enumerated"],
    }
    if json_:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _render(Console(highlight=False, emoji=False), data)
    if widened:
        raise typer.Exit(1)


def _brief(items: list[str]) -> str:
    """A few uids, or a count per type when there are many."""
    if len(items) <= _SHOW:
        return ", ".join(items)
    by_type = Counter(u.split('::"', 1)[0] for u in items)
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(by_type.items()))
    return f"{len(items)} ({kinds}: {', '.join(items[:2])}, ...)"


def _action_names(actions: list[str]) -> str:
    return ", ".join(a.split('::"', 1)[-1].rstrip('"') for a in actions)


_CHANGE = {
    ("never", "always"): "may now",
    ("never", "depends"): "may now, depending on the request context,",
    ("depends", "always"): "may now, whatever the request context,",
    ("always", "never"): "may no longer",
    ("depends", "never"): "may no longer (was: depending on the context)",
    ("always", "depends"): "may now only depending on the request context",
}


def _render(out: Console, data: dict[str, Any]) -> None:
    n = data["enumerated"]
    out.print(
        f"[dim]enumerated {n['principals']} principals x {n['actions']} actions x {n['resources']} resources "
        f"({n['requests']:,} requests, {n['evaluated']:,} evaluated) in {n['seconds']} s[/]"
    )
    for title, sign, style in (("gained", "+", "red"), ("lost", "-", "green")):
        groups = data["access"][title]
        out.print(f"[bold]access {title}[/]: {len(groups)} group(s)" + ("" if groups else " (none)"))
        for g in groups:
            verb = _CHANGE.get((g["before"], g["after"]), f"{g['before']} -> {g['after']}:")
            line = (
                f"  [{style}]{sign}[/] {escape(_brief(g['principals']))} {verb} "
                f"[bold]{escape(_action_names(g['actions']))}[/] on {escape(_brief(g['resources']))}"
            )
            if g["via"]:
                line += f"  [dim](via {escape(', '.join(g['via']))})[/]"
            out.print(line, soft_wrap=True)
    paths = data["paths"]
    out.print(f"[bold]escalation paths[/]: {len(paths['gained'])} gained, {len(paths['lost'])} lost")
    for title, entries in (("gains", paths["gained"]), ("loses", paths["lost"])):
        for e in entries:
            out.print(
                f"  {escape(e['name'])} ({e['kind']}) {title}: {e['before']} -> {e['after']}", soft_wrap=True
            )
            if title == "gains" and e["path"]:
                for i, s in enumerate(e["path"]["steps"], 1):
                    to = "" if s["to"] == "admin" else f" {s['to']}"
                    out.print(f"     {i}. {escape(s['from'])} {s['action']}{escape(to)}", soft_wrap=True)
    r = data["replay"]
    if r is not None:
        out.print(
            f"[bold]replay[/]: {r['lines']:,} request(s), {r['now_allowed']} now allowed, {r['now_denied']} now denied"
        )
        for c in r["changed"][:10]:
            out.print(
                f"  line {c['line']}: {escape(c['principal'])} {escape(c['action'])} {escape(c['resource'])}: "
                f"{'allow' if c['before']['decision'] else 'deny'} -> {'allow' if c['after']['decision'] else 'deny'}",
                soft_wrap=True,
            )
    out.print("[red]access widened[/]" if data["widened"] else "[green]nothing widened[/]")
