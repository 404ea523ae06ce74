"""``vigil rightsize -w WS [--since 30d] [--audit FILE | --replay FILE]``: least agency from
observed use (docs/escalation.md, "Right-sizing").

1. Observed use: the decision events of an audit log (JSON lines; checkpoints and other lines are
   skipped) or the requests of a replay file, since ``--since`` before ``--now``. Each is replayed
   on the workspace (a dry run): the allowed ones, and the permits that allowed them, are the
   observed use under the current policies.
2. A narrower policy set (:func:`vigil.escalation.rightsize.narrow`), written as a copy of the
   workspace (``--output``), loaded (parsed and validated by cedarpy and vigil's build).
3. The check: the same requests replayed on the copy; every one allowed before must be allowed.
4. The access it removes: ``vigil policy diff`` of the workspace and the copy (the granted
   requests never used), per identity.

Exit status: 0 the check passed; 1 it failed (an observed allowed request is no longer allowed);
2 bad argument or unreadable input; 3 a refused workspace.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from vigil.cli.policy_diff import _side, _types
from vigil.cli.render import exit_status, render_workspace_error
from vigil.errors import VigilError, WorkspaceError
from vigil.escalation.access_diff import access_diff
from vigil.escalation.rightsize import Triple, narrow
from vigil.model.timefmt import parse_datetime
from vigil.workspace.loader import load_workspace

_SINCE = re.compile(r"(\d{1,6})([dhm])\Z")


def parse_since(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m`` -> a duration; raises VigilError (``invalid_argument``)."""
    m = _SINCE.match(text.strip()) if type(text) is str else None
    if m is None:
        raise VigilError(
            f"--since {text[:40]!r} is not a duration like 30d, 12h or 90m", code="invalid_argument"
        )
    n = int(m.group(1))
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[m.group(2)]


def observed_requests(path: Path, *, audit: bool, since: datetime) -> Iterator[bytes]:
    """The AuthZEN requests (JSON lines with ``context.time``) of an audit log's decision events
    or a replay file, at or after ``since``. Lines that are not decisions (checkpoints), cannot be
    read or have no time are skipped; raises VigilError (``invalid_input``) when the file cannot
    be opened."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise VigilError(f"cannot read {str(path)!r}: {e.strerror}", code="invalid_input") from None
    with f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if type(obj) is not dict:
                continue
            if audit:
                obj = _request_of_event(obj)
                if obj is None:
                    continue
            ctx = obj.get("context")
            stamp = ctx.get("time") if type(ctx) is dict else None
            try:
                when = parse_datetime(stamp) if type(stamp) is str else None
            except VigilError:
                when = None
            if when is None or when < since:
                continue
            yield orjson.dumps(obj)


def _request_of_event(ev: dict[str, Any]) -> dict[str, Any] | None:
    if ev.get("type") != "decision":
        return None
    subject, action, resource = ev.get("subject"), ev.get("action"), ev.get("resource")
    if not (type(subject) is dict and type(action) is dict and type(resource) is dict):
        return None
    ctx = ev.get("context")
    context = {k: v for k, v in ctx.items() if k != "vigil"} if type(ctx) is dict else {}
    if "time" not in context and type(ev.get("time")) is str:
        context["time"] = ev["time"]
    return {
        "subject": {"type": subject.get("type"), "id": subject.get("id")},
        "action": {"name": action.get("name")},
        "resource": {"type": resource.get("type"), "id": resource.get("id")},
        "context": context,
    }


def _allowed(workspace: Path, lines: list[bytes]) -> list[tuple[int, Triple, tuple[str, ...]] | None]:
    """Each line replayed on ``workspace`` (dry run): (index, triple, determining policies) when
    allowed, else None."""
    from vigil.replay import replay, replay_engine

    out: list[tuple[int, Triple, tuple[str, ...]] | None] = []
    with replay_engine(workspace) as engine:
        for i, item in enumerate(replay(engine, lines)):
            r = item.record
            if r is None or not r.allowed:
                out.append(None)
            else:
                out.append((i, (r.principal, r.action, r.resource), r.policies))
    return out


def rightsize(
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", help="Workspace folder.", show_default=False)
    ],
    since: Annotated[str, typer.Option("--since", help="Observed use since this long before --now.")] = "30d",
    audit: Annotated[
        Path | None,
        typer.Option("--audit", help="Audit log (JSON lines) of the observed use.", show_default=False),
    ] = None,
    replay_file: Annotated[
        Path | None,
        typer.Option(
            "--replay", help="Or: a replay file (AuthZEN requests with context.time).", show_default=False
        ),
    ] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="RFC 3339 instant --since counts back from (default: now).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the narrowed workspace here (default: a temporary copy)."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Least agency: the access each identity never used, and a narrower policy set that keeps every
    observed allowed request allowed (checked by replaying them).

    Exit 0 when the check passed, 1 when it failed, 2 bad argument or input, 3 a refused workspace.
    """
    err = Console(stderr=True, highlight=False)
    scratch: str | None = None
    try:
        if (audit is None) == (replay_file is None):
            raise VigilError("give exactly one of --audit FILE and --replay FILE", code="invalid_argument")
        instant = parse_datetime(now) if now is not None else datetime.now(UTC)
        try:
            cutoff = instant - parse_since(since)
        except OverflowError:  # further back than datetime goes: everything
            cutoff = datetime.min.replace(tzinfo=UTC)
        if output is not None and output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise VigilError(
                f"output {str(output)!r} exists and is not an empty folder", code="invalid_output"
            )
        ws = load_workspace(workspace)
        source = audit if audit is not None else replay_file
        assert source is not None
        lines = list(observed_requests(source, audit=audit is not None, since=cutoff))
        before = _allowed(workspace, lines)
        by_id = {p.id: p for p in ws.policy_set.policies}
        permits = {
            p.cedar_id: p.id for p in ws.policy_set.policies if not p.forbid and p.fallback_reason is None
        }
        used: dict[str, set[Triple]] = defaultdict(set)
        for hit in before:
            if hit is not None:
                for pid in hit[2]:
                    if pid in by_id and not by_id[pid].forbid:
                        used[pid].add(hit[1])
        files = [(name, (ws.path / name).read_text(encoding="utf-8")) for name in ws.policy_files]
        result = narrow(files, permits, used)
        if output is None:
            scratch = tempfile.mkdtemp(prefix="vigil-rightsize-")
            target = Path(scratch) / "workspace"
        else:
            target = output
        shutil.copytree(workspace, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".vigil"))
        for name, text in result.files.items():
            (target / name).write_text(text, encoding="utf-8")
        try:
            narrowed_ws = load_workspace(target)  # parsed and validated like any workspace
        except WorkspaceError as e:
            invalid: list[str] = e.problems or [e.message]
        else:
            invalid = []
        if invalid:
            after: list[Any] = [None] * len(before)
            removed: dict[str, Any] = {"gained": [], "lost": []}
        else:
            after = _allowed(target, lines)
            removed = access_diff(_side(ws), _side(narrowed_ws), _types(ws))
        broken = [
            i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b is not None and a is None
        ]
    except WorkspaceError as e:
        _cleanup(scratch)
        if json_:
            sys.stdout.write(orjson.dumps({"error": e.to_dict()}).decode() + "\n")
        else:
            render_workspace_error(err, e)
        raise typer.Exit(exit_status(e.code)) from None
    except VigilError as e:
        _cleanup(scratch)
        if json_:
            sys.stdout.write(orjson.dumps({"error": e.to_dict()}).decode() + "\n")
        else:
            err.print(f"[red]error[/] [bold]{e.code}[/]: {escape(e.message)}", soft_wrap=True)
        raise typer.Exit(exit_status(e.code)) from None
    allowed = sum(1 for b in before if b is not None)
    per_identity: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in removed["lost"]:
        for p in g["principals"]:
            per_identity[p].append({k: g[k] for k in ("actions", "resources", "before", "via")})
    data = {
        "observed": {
            "source": "audit" if audit is not None else "replay",
            "since": cutoff.isoformat().replace("+00:00", "Z"),
            "requests": len(lines),
            "allowed": allowed,
        },
        "policies": {"narrowed": list(result.narrowed), "removed": list(result.removed)},
        "check": {
            "valid": not invalid,
            "problems": invalid[:20],
            "replayed": allowed,
            "still_allowed": allowed - len(broken),
            "ok": not broken and not invalid,
            "broken_lines": broken[:20],
        },
        "unused": [{"id": k, "never_used": v} for k, v in sorted(per_identity.items())],
        "removed_access": removed["lost"],
        "widened": bool(removed["gained"]),
        "output": str(target) if output is not None else None,
    }
    if json_:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _render(Console(highlight=False, emoji=False), data)
    _cleanup(scratch)
    if broken or invalid or removed["gained"]:
        raise typer.Exit(1)


def _cleanup(scratch: str | None) -> None:
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


def _render(out: Console, data: dict[str, Any]) -> None:
    o, c = data["observed"], data["check"]
    out.print(
        f"observed ({o['source']}, since {o['since']}): {o['requests']:,} requests, {o['allowed']:,} allowed"
    )
    pol = data["policies"]
    out.print(
        f"policies narrowed: {len(pol['narrowed'])}; removed (allowed nothing observed): {len(pol['removed'])}"
    )
    for pid in pol["removed"]:
        out.print(f"  - {escape(pid)}")
    out.print(f"[bold]never used[/] ({len(data['unused'])} identities; requests granted but not observed):")
    for entry in data["unused"]:
        counts: dict[str, int] = defaultdict(int)
        for g in entry["never_used"]:
            for a in g["actions"]:
                counts[a.split('::"', 1)[-1].rstrip('"')] += len(g["resources"])
        text = ", ".join(f"{a} {n}" for a, n in sorted(counts.items()))
        out.print(f"  {escape(entry['id'])}: {escape(text)}", soft_wrap=True)
    verdict = "[green]ok[/]" if c["ok"] else "[red]FAILED[/]"
    if not c["valid"]:
        out.print(
            f"check: the narrowed policies do not load: {escape('; '.join(c['problems'][:3]))}: {verdict}"
        )
    else:
        out.print(
            f"check: the narrowed policies parse and validate; {c['still_allowed']:,}/{c['replayed']:,} "
            f"observed allowed requests still allowed: {verdict}"
        )
    if data["output"]:
        out.print(f"narrowed workspace: {escape(data['output'])}")
