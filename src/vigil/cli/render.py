"""What the ``vigil`` commands show: reports built from the library, rendered with rich.

The builders (:func:`check_report`, :func:`policy_locations`, :func:`format_policy`) are plain
functions over library objects; the ``render_*`` functions only print. Nothing here decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from vigil.engine import Engine
from vigil.errors import EXIT_STATUS, WorkspaceError
from vigil.model.decision import DecisionRecord, ReasonCode
from vigil.policy.build import PolicySet
from vigil.policy.cedar import CedarError, PolicySource, format_text, parse_policies
from vigil.replay import ReplaySummary

Location = tuple[str, int]


def exit_status(code: str) -> int:
    """The CLI exit status of an error code (``vigil.errors.EXIT_STATUS``; unknown codes exit 1)."""
    return EXIT_STATUS.get(code, EXIT_STATUS["vigil_error"])


def reason_text(code: str) -> str:
    """Human text of a reason code; the code itself when vigil does not know it."""
    try:
        return ReasonCode(code).text
    except ValueError:
        return code


# -- check --------------------------------------------------------------------------------------
def policy_locations(policy_set: PolicySet) -> dict[str, Location]:
    """Policy id (the ``@id`` annotation, else Cedar's ``policyN``) -> (file, line) where it starts.

    Template-linked policies have no location of their own and are left out.
    """
    out: dict[str, Location] = {}
    for pol in policy_set.policies:
        loc = policy_set.locations.get(pol.cedar_id)
        if loc is not None:
            out[pol.id] = loc
    return out


def _where(loc: Location | None) -> str:
    return f"{loc[0]}:{loc[1]}" if loc else "-"


def check_report(engine: Engine) -> dict[str, Any]:
    """Everything ``vigil check`` reports about the engine's workspace, as JSON-ready data."""
    ws = engine.workspace
    ps = ws.policy_set
    status = engine.status()
    where = policy_locations(ps)
    fallbacks = [
        {"policy": f["policy"], "reason": f["reason"], "location": _where(where.get(f["policy"]))}
        for f in status["fallbacks"]
    ]
    without_id = [
        {"policy": pol.id, "location": _where(where.get(pol.id))}
        for pol in ps.policies
        if "id" not in pol.annotations
    ]
    report: dict[str, Any] = {
        "ok": True,
        "workspace": str(ws.path),
        "policy_revision": status["policy_revision"],
        "policy_files": list(ws.policy_files),
        "policies": status["policies"],
        "compiled": status["compiled"],
        "fallback": len(status["fallbacks"]),
        "fallbacks": fallbacks,
        "entities": status["entities"],
        "entity_files": list(ws.entity_files),
        "schema": ws.has_schema,
        "behaviour_mode": status["behaviour_mode"],
        "policies_without_id": without_id,
        "validation_warnings": list(ps.validation_warnings),
    }
    if ws.reach is not None:  # [escalation] reach: what computing it found and cost
        verdicts: dict[str, int] = {}
        for v in ws.reach.vigil.values():
            verdict = v["reach"]["verdict"]
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
        report["escalation_reach"] = {
            "identities": ws.reach.identities,
            "verdicts": dict(sorted(verdicts.items())),
            "path_steps": sum(len(m) for m in ws.reach.steps.values()),
            "checks": ws.reach.checks,
            "seconds": round(ws.reach.seconds, 3),
        }
    return report


def workspace_error_report(error: WorkspaceError) -> dict[str, Any]:
    """The JSON form of a refused workspace: ``{"ok": false, "error": {"code", "message", "problems"}}``."""
    problems = error.problems or [error.message]
    return {"ok": False, "error": {"code": error.code, "message": error.message, "problems": problems}}


def render_workspace_error(console: Console, error: WorkspaceError) -> None:
    """Every file:line problem of a refused workspace, one per line."""
    problems = error.problems or [error.message]
    console.print(f"[bold red]workspace refused[/]: {len(problems)} problem(s)")
    for p in problems:
        console.print(f"  [red]✗[/] {escape(p)}", soft_wrap=True)


def render_check(console: Console, report: Mapping[str, Any]) -> None:
    """The ``vigil check`` table, then fallbacks and warnings."""
    t = Table(title=f"workspace {escape(report['workspace'])}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("policy revision", report["policy_revision"])
    t.add_row("policy files", escape(", ".join(report["policy_files"])))
    t.add_row("policies", str(report["policies"]))
    t.add_row("compiled", f"[green]{report['compiled']}[/]")
    fb = report["fallback"]
    t.add_row("fallback (cedarpy)", f"[yellow]{fb}[/]" if fb else "0")
    t.add_row("entities", f"{report['entities']} ({escape(', '.join(report['entity_files']))})")
    t.add_row("schema", "yes" if report["schema"] else "no")
    t.add_row("behaviour mode", report["behaviour_mode"])
    reach = report.get("escalation_reach")
    if reach is not None:
        counts = ", ".join(f"{n} {v}" for v, n in reach["verdicts"].items())
        t.add_row(
            "escalation reach",
            f"{reach['identities']} identities ({counts}); {reach['path_steps']} path steps; "
            f"{reach['checks']} checks, {reach['seconds']} s",
        )
    console.print(t)
    if report["fallbacks"]:
        ft = Table(title="policies evaluated by cedarpy (fallback)", title_justify="left")
        ft.add_column("policy")
        ft.add_column("location")
        ft.add_column("reason")
        for f in report["fallbacks"]:
            ft.add_row(escape(f["policy"]), escape(f["location"]), escape(f["reason"]))
        console.print(ft)
    if report["policies_without_id"]:
        names = ", ".join(f"{p['policy']} ({p['location']})" for p in report["policies_without_id"])
        console.print(
            f"[yellow]warning[/]: policies without an @id annotation: {escape(names)}", soft_wrap=True
        )
    for w in report["validation_warnings"]:
        console.print(f"[yellow]warning[/]: {escape(w)}", soft_wrap=True)
    console.print("[green]ok[/]")


# -- decide -------------------------------------------------------------------------------------
def render_decision(console: Console, record: DecisionRecord, policy_set: PolicySet) -> None:
    """One decision, readably: outcome, reasons with their text, policies with file:line, the rest."""
    where = policy_locations(policy_set)
    colour = "green" if record.allowed else "red"
    console.print(f"[bold {colour}]{record.decision.upper()}[/]")
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    reasons = "\n".join(f"{escape(c)}  [dim]{escape(reason_text(c))}[/]" for c in record.reason_codes)
    t.add_row("reasons", reasons or "-")
    policies = "\n".join(f"{escape(p)}  [dim]{escape(_where(where.get(p)))}[/]" for p in record.policies)
    t.add_row("policies", policies or "-")
    if record.errors:
        t.add_row("errors", "\n".join(f"[red]{escape(p)}[/]: {escape(m)}" for p, m in record.errors))
    if record.error is not None:
        t.add_row("error", escape(f"{record.error.get('code')}: {record.error.get('message')}"))
    t.add_row("risk", str(record.risk))
    t.add_row("signals", escape(", ".join(record.signals)) or "-")
    t.add_row("advice", escape(", ".join(record.advice)) or "-")
    t.add_row("decision id", record.id)
    t.add_row("policy revision", record.policy_revision)
    t.add_row("latency", f"{record.latency_ns / 1000:.1f} µs")
    console.print(t)


# -- replay -------------------------------------------------------------------------------------
@contextmanager
def progress_lines(
    lines: Iterable[bytes], total_bytes: int | None, console: Console, *, enabled: bool
) -> Iterator[Iterable[bytes]]:
    """``lines`` passed through, advancing a byte progress bar on ``console`` when ``enabled``."""
    if not enabled:
        yield lines
        return
    columns = (TextColumn("replay"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("replay", total=total_bytes)

        def counted() -> Iterator[bytes]:
            pending = 0
            for i, raw in enumerate(lines):
                pending += len(raw)
                if i & 1023 == 1023:
                    progress.advance(task, pending)
                    pending = 0
                yield raw
            progress.advance(task, pending)

        yield counted()


def render_replay_summary(console: Console, summary: ReplaySummary, *, audit_dropped: int = 0) -> None:
    """Decisions by outcome and reason code, bad lines (with samples), speed."""
    t = Table(title="replay", title_justify="left")
    t.add_column("")
    t.add_column("count", justify="right")
    t.add_column("share", justify="right")
    n = summary.decisions or 1
    t.add_row("[bold]decisions[/]", str(summary.decisions), "")
    for outcome, colour in (("allow", "green"), ("deny", "red")):
        c = summary.by_outcome[outcome]
        t.add_row(f"  [{colour}]{outcome}[/]", str(c), f"{100 * c / n:.1f}%")
    t.add_section()
    for code, c in summary.by_reason.most_common():
        t.add_row(f"  {escape(code)}", str(c), f"{100 * c / n:.1f}%")
    t.add_section()
    t.add_row("[bold]bad lines[/]", f"[red]{summary.bad_lines}[/]" if summary.bad_lines else "0", "")
    for code, c in summary.errors_by_code.most_common():
        t.add_row(f"  {escape(code)}", str(c), "")
    t.add_section()
    t.add_row("elapsed", f"{summary.elapsed_s:.2f} s", "")
    t.add_row("decisions / s", f"{summary.decisions_per_second:,.0f}", "")
    if audit_dropped:
        t.add_row("[red]audit events dropped[/]", str(audit_dropped), "")
    console.print(t)
    for item in summary.first_errors:
        err = item.error or {}
        console.print(
            f"[red]line {item.line}[/]: {escape(str(err.get('code')))}: {escape(str(err.get('message')))}",
            soft_wrap=True,
        )
    if summary.bad_lines > len(summary.first_errors):
        console.print(f"... and {summary.bad_lines - len(summary.first_errors)} more bad line(s)")


# -- policy fmt ---------------------------------------------------------------------------------
def format_policy(label: str, text: str) -> str:
    """Cedar's canonical formatting of ``text``; a file with no code is returned unchanged.

    Raises CedarError with a ``label:line: message`` text when the policies do not parse.
    """
    if not text.strip():
        return text
    try:
        return format_text(text)
    except CedarError as e:
        try:
            parse_policies([PolicySource(label, text)])  # locates the first bad statement
        except CedarError as located:
            raise located from None
        raise CedarError(f"{label}: {e}") from None
