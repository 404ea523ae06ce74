"""``vigil paths``: escalation paths in an AWS IAM export (``--iam``) or in a workspace's own Cedar
grants (``--workspace``; ``[escalation]`` in its vigil.toml) (docs/escalation.md).

Without ``--from``: every principal that is admin, reaches admin or reaches it conditionally, with
its shortest path (``--all`` lists the ``none`` verdicts too). With ``--from``: that principal's
verdict and up to ``--limit`` paths to admin, or to the principal named by ``--to``.

With ``--before OLD.json``: what the change from OLD to the export gives away (principals whose
verdict rises, with their new path) and takes away; exit status 1 when access widened (a CI gate).

Exit status: 0 answered (with ``--before``: nothing widened); 1 (``--before``) access widened; 2
unreadable or malformed export, bad argument; 3 a refused workspace; 5 unknown principal.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vigil.cli.render import exit_status
from vigil.errors import VigilError
from vigil.escalation import (
    analyse,
    build_graph,
    diff,
    load_export,
    paths_between,
    principal_report,
    report,
    resolve,
)
from vigil.escalation.cedar_grants import identities, workspace_graph
from vigil.escalation.edges import Graph
from vigil.escalation.picture import to_dot, to_svg
from vigil.model.timefmt import parse_datetime
from vigil.workspace.loader import load_workspace

_VERDICT_STYLE = {"admin": "bold red", "reaches_admin": "red", "conditional": "yellow", "none": "green"}


def _fail(e: VigilError, json_: bool) -> None:
    if json_:
        sys.stdout.write(orjson.dumps({"error": e.to_dict()}).decode() + "\n")
    else:
        Console(stderr=True, highlight=False).print(
            f"[red]error[/] [bold]{e.code}[/]: {escape(e.message)}", soft_wrap=True
        )
    raise typer.Exit(exit_status(e.code))


def _steps_text(path: dict[str, Any], names: dict[str, str]) -> str:
    lines = []
    for i, s in enumerate(path["steps"], 1):
        src, dst = escape(names.get(s["from"], s["from"])), escape(names.get(s["to"], s["to"]))
        line = f"  {i}. {src} {s['action']} {dst}" if s["to"] != "admin" else f"  {i}. {src} {s['action']}"
        line += f"  [dim]({s['method']})[/]"
        if s["via"]:
            line += f"\n       [dim]via {escape('; '.join(s['via']))}[/]"
        if s["requires"]:
            line += f"\n       [yellow]requires {escape('; '.join(s['requires']))}[/]"
        lines.append(line)
    return "\n".join(lines)


def _chain(path: dict[str, Any], names: dict[str, str]) -> str:
    parts = []
    for s in path["steps"]:
        if s["method"] == "admin":
            continue
        parts.append(f"-{s['method']}{'?' if s['requires'] else ''}-> {names.get(s['to'], s['to'])}")
    return escape(" ".join(parts) + (" -> admin" if parts else "holds admin"))


def _render(data: dict[str, Any], names: dict[str, str], detail: bool) -> None:
    out = Console(highlight=False, emoji=False)
    if detail:
        for entry in data["principals"]:
            style = _VERDICT_STYLE.get(entry["verdict"], "")
            goal = names.get(entry.get("target", ""), "admin")
            out.print(f"[bold]{escape(entry['name'])}[/] ({entry['kind']}): [{style}]{entry['verdict']}[/]")
            if not entry["paths"]:
                out.print(f"  no path to {escape(goal)}")
            for n, p in enumerate(entry["paths"], 1):
                tag = " [yellow](conditional)[/]" if p["conditional"] else ""
                out.print(f"path {n} to {escape(goal)}{tag}:")
                out.print(_steps_text(p, names), soft_wrap=True)
        return
    table = Table()
    table.add_column("principal", overflow="fold")
    table.add_column("kind")
    table.add_column("verdict")
    table.add_column("shortest path (? = conditional step)", overflow="fold")
    for entry in data["principals"]:
        style = _VERDICT_STYLE[entry["verdict"]]
        chain = _chain(entry["paths"][0], names) if entry["paths"] else "-"
        table.add_row(escape(entry["name"]), entry["kind"], f"[{style}]{entry['verdict']}[/]", chain)
    out.print(table)
    if "summary" in data:
        out.print("  ".join(f"{k}: {v}" for k, v in data["summary"].items()))


def paths(
    iam: Annotated[
        Path | None,
        typer.Option(
            "--iam",
            help="AWS IAM export (aws iam get-account-authorization-details JSON).",
            show_default=False,
        ),
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="A vigil workspace: its Cedar grants over its entities ([escalation] in vigil.toml).",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--from", help="Only this principal (ARN or unique name).", show_default=False),
    ] = None,
    target: Annotated[
        str, typer.Option("--to", help="'admin', or a principal (ARN or unique name) to reach; needs --from.")
    ] = "admin",
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100, help="Paths per principal with --from.")
    ] = 3,
    all_: Annotated[bool, typer.Option("--all", help="List principals with verdict 'none' too.")] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Judge date conditions at this RFC 3339 instant (default: now).", show_default=False
        ),
    ] = None,
    require_credentials: Annotated[
        bool,
        typer.Option(
            "--require-credentials",
            help="A step giving admin to a principal the actor cannot act as is conditional, not a path.",
        ),
    ] = False,
    before: Annotated[
        Path | None,
        typer.Option(
            "--before",
            help="An earlier export of the account: show what the change gives away.",
            show_default=False,
        ),
    ] = None,
    graph_out: Annotated[
        Path | None,
        typer.Option(
            "--graph",
            help="Also write the paths as a picture: PATH.svg (drawn by vigil) and PATH.dot (Graphviz).",
            show_default=False,
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Escalation paths to admin (or to a principal) in an AWS IAM export or a vigil workspace."""
    try:
        if (iam is None) == (workspace is None):
            raise _argument("give exactly one of --iam FILE and --workspace DIR")
        now = parse_datetime(at) if at is not None else datetime.now(UTC)
        listed: list[str] | None = None
        if workspace is not None:
            if before is not None or require_credentials:
                raise _argument("--before and --require-credentials are for --iam (see vigil policy diff)")
            graph = workspace_graph_of(workspace)
            listed = identities(graph)
        else:
            assert iam is not None
            graph = build_graph(load_export(iam, now), require_credentials=require_credentials)
        analysis = analyse(graph)
        if before is not None:
            old = analyse(build_graph(load_export(before, now), require_credentials=require_credentials))
            _diff_out(diff(old, analysis), {a: p.name for a, p in graph.principals.items()}, json_)
            return
        if source is None:
            if target != "admin":
                raise _argument("--to a principal needs --from")
            data = report(analysis, listed)
            if not all_:
                data["principals"] = [e for e in data["principals"] if e["verdict"] != "none"]
        else:
            where = "the IAM export" if workspace is None else "the workspace's identities"
            arn = resolve(graph, source, where)
            if target == "admin":
                data = {"principals": [principal_report(analysis, arn, limit=limit)]}
            else:
                to = resolve(graph, target, where)
                found = paths_between(graph, arn, to, limit=limit, where=where)
                p = graph.principals[arn]
                data = {
                    "principals": [
                        {
                            "id": arn,
                            "name": p.name,
                            "kind": p.kind,
                            "target": to,
                            "verdict": analysis.verdict(arn),
                            "reaches_target": bool(found),
                            "paths": [q.to_dict() for q in found],
                        }
                    ]
                }
        if graph_out is not None:
            _write_pictures(graph_out, data)
    except VigilError as e:
        _fail(e, json_)
        return
    if json_:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    names = {a: p.name for a, p in graph.principals.items()}
    _render(data, names, detail=source is not None)
    if listed is not None and not listed:
        Console(stderr=True, highlight=False).print(
            escape(
                "no identities: no entity has one of the types of [escalation] principals (default: [identity] types)"
            )
        )


def _diff_out(data: dict[str, Any], names: dict[str, str], json_: bool) -> None:
    if json_:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out = Console(highlight=False, emoji=False)
        if not data["gained"] and not data["lost"]:
            out.print("no principal's reach to admin changed")
        for title, entries in (("gains", data["gained"]), ("loses", data["lost"])):
            for e in entries:
                style = _VERDICT_STYLE.get(e["after"], "")
                out.print(
                    f"[bold]{escape(e['name'])}[/] ({e['kind']}) {title}: {e['before']} -> [{style}]{e['after']}[/]"
                )
                if title == "gains" and e["path"]:
                    out.print(_steps_text(e["path"], names), soft_wrap=True)
    if data["widened"]:
        raise typer.Exit(1)


def workspace_graph_of(path: Path) -> Graph:
    """The escalation graph of the workspace at ``path`` (raises WorkspaceError / VigilError)."""
    ws = load_workspace(path)
    ps = ws.policy_set
    return workspace_graph(ps.policies, ps.store, ws.settings.escalation, ws.settings.identity.types)


def _write_pictures(base: Path, data: dict[str, Any]) -> None:
    """``base``.svg and ``base``.dot (a ``.svg``/``.dot`` suffix on ``base`` is dropped); raises
    VigilError (``invalid_argument``) when they cannot be written."""
    if base.suffix in (".svg", ".dot"):
        base = base.with_suffix("")
    try:
        base.with_name(base.name + ".svg").write_text(to_svg(data), encoding="utf-8")
        base.with_name(base.name + ".dot").write_text(to_dot(data), encoding="utf-8")
    except OSError as e:
        raise _argument(f"cannot write the picture {str(base)!r}: {e.strerror}") from None


def _argument(message: str) -> VigilError:
    return VigilError(message, code="invalid_argument")
