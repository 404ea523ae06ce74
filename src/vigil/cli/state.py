"""``vigil approvals list|approve|deny`` and ``vigil quarantine list|add|lift``.

Each command opens the workspace's settings and state store only (:class:`vigil.operations.service.StateDesk`),
so an owner can act even while the workspace's policies fail to load. Changes are audited in the
store's change log with ``--by``. ``--now`` stamps the change with a given time instead of the clock
(for replayed timelines and tests).

Exit status: 0 done; 2 bad argument; 3 bad workspace; 4 store unavailable; 5 no such ticket or
quarantine; 6 the ticket was already decided or has expired.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vigil.audit.events import rfc3339
from vigil.cli import render
from vigil.errors import VigilError, WorkspaceError
from vigil.operations.service import StateDesk, change_dict, parse_uid, quarantine_dict, ticket_dict
from vigil.replay import ReplayInputError, parse_rfc3339
from vigil.store import TICKET_STATES, StoreError, Ticket

T = TypeVar("T")

approvals_app = typer.Typer(help="Step-up approval tickets: list, approve, deny.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Quarantined identities: list, add, lift.", no_args_is_help=True)

WorkspaceOpt = Annotated[
    Path, typer.Option("--workspace", "-w", help="Workspace folder.", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ByOpt = Annotated[str, typer.Option("--by", help="Who makes this change (audited).", show_default=False)]
NowOpt = Annotated[
    str | None, typer.Option("--now", help="Time of the change, RFC 3339 (default: the clock).")
]


def _out() -> Console:
    return Console(highlight=False, emoji=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False, emoji=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _fail(e: VigilError, json_: bool) -> NoReturn:
    if json_:
        _print_json({"error": {"code": e.code, "message": e.message}})
    elif isinstance(e, WorkspaceError):
        render.render_workspace_error(_err(), e)
    else:
        _err().print(f"[red]error[/] [bold]{e.code}[/]: {escape(e.message)}", soft_wrap=True)
    raise typer.Exit(render.exit_status(e.code))


def _desk(workspace: Path, json_: bool) -> StateDesk:
    try:
        return StateDesk(workspace)
    except VigilError as e:
        _fail(e, json_)


def _when(now: str | None, json_: bool) -> float | None:
    if now is None:
        return None
    try:
        return parse_rfc3339(now).timestamp()
    except ReplayInputError as e:
        _fail(e, json_)


def _change(
    workspace: Path, json_: bool, now: str | None, change: Callable[[StateDesk, float | None], T]
) -> T:
    """Run one state change on the workspace's desk at ``now``; any VigilError exits through _fail."""
    when = _when(now, json_)
    with _desk(workspace, json_) as desk:
        try:
            return change(desk, when)
        except VigilError as e:
            _fail(e, json_)


# -- approvals ---------------------------------------------------------------------------------
@approvals_app.command("list")
def approvals_list(
    workspace: WorkspaceOpt,
    state: Annotated[
        str, typer.Option("--state", help=f"One of {', '.join(TICKET_STATES)} or all.")
    ] = "pending",
    subject: Annotated[
        str | None, typer.Option("--subject", help='Only this identity, e.g. Agent::"name".')
    ] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List approval tickets (pending ones by default), oldest first."""
    when = _when(now, json_)
    with _desk(workspace, json_) as desk:
        try:
            uid = parse_uid(subject) if subject is not None else None
            at = desk.now() if when is None else when
            items = desk.tickets(state=None if state == "all" else state, subject=uid, now=at)
        except VigilError as e:
            _fail(e, json_)
    if json_:
        _print_json([ticket_dict(t, at) for t in items])
        return
    _render_tickets(_out(), items, at, state)


def _render_tickets(console: Console, items: list[Ticket], now: float, state: str) -> None:
    if not items:
        console.print(f"no {'' if state == 'all' else state + ' '}tickets")
        return
    table = Table(show_lines=False)
    for col in ("ticket", "state", "subject", "action", "resource", "risk", "signals", "expires"):
        table.add_column(col, overflow="fold")
    for t in items:
        st = t.state_at(now)
        who = f" by {t.decided_by}" if t.decided_by else ""
        table.add_row(
            t.id,
            st + who,
            f"{t.subject[0]}::{t.subject[1]}",
            t.action[1],
            f"{t.resource[0]}::{t.resource[1]}",
            str(t.risk),
            ", ".join(t.signals),
            rfc3339(t.expires)[:16] + "Z",
        )
    console.print(table)
    # what an approval is bound to: the context each ticket was requested from
    for t in items:
        console.print(f"{t.id} from {escape(_bound(t))}", soft_wrap=True)


def _bound(t: Ticket) -> str:
    """The context an approval of ``t`` is bound to (``-`` for an absent field), and the uses left."""
    return f"network {t.network or '-'}, region {t.region or '-'}, user agent {t.user_agent or '-'}" + (
        f"; uses left {t.uses}" if t.state == "approved" else ""
    )


@approvals_app.command("approve")
def approvals_approve(
    ticket: Annotated[str, typer.Argument(help="Ticket id (tkt_...).", show_default=False)],
    workspace: WorkspaceOpt,
    by: ByOpt,
    note: Annotated[str, typer.Option("--note", help="Why (audited).")] = "",
    uses: Annotated[
        int, typer.Option("--uses", help="How many requests the approval lets through (default: one).")
    ] = 1,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Approve a pending ticket: the same subject, action and resource, from the context the ticket
    was requested from, are allowed ``--uses`` times (once by default) until the approval expires."""
    t = _change(
        workspace, json_, now, lambda desk, when: desk.approve(ticket, by=by, note=note, now=when, uses=uses)
    )
    if json_:
        _print_json(ticket_dict(t))
        return
    _out().print(
        f"approved [bold]{t.id}[/] ({escape(t.subject[0])}::{escape(t.subject[1])} {escape(t.action[1])} "
        f"{escape(t.resource[0])}::{escape(t.resource[1])}) for {t.uses} use{'s' if t.uses != 1 else ''} from the "
        f"ticket's context until {rfc3339(t.expires)[:19]}Z, by {escape(t.decided_by or '')}"
    )


@approvals_app.command("deny")
def approvals_deny(
    ticket: Annotated[str, typer.Argument(help="Ticket id (tkt_...).", show_default=False)],
    workspace: WorkspaceOpt,
    by: ByOpt,
    note: Annotated[str, typer.Option("--note", help="Why (audited).")] = "",
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Deny a pending ticket (the request stays denied)."""
    t = _change(workspace, json_, now, lambda desk, when: desk.deny(ticket, by=by, note=note, now=when))
    if json_:
        _print_json(ticket_dict(t))
        return
    _out().print(f"denied [bold]{t.id}[/], by {escape(t.decided_by or '')}")


# -- quarantine --------------------------------------------------------------------------------
@quarantine_app.command("list")
def quarantine_list(
    workspace: WorkspaceOpt,
    history: Annotated[
        bool, typer.Option("--history", help="Also show the audited changes, newest first.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="Changes per page (1..1000).")] = 100,
    before: Annotated[
        int | None, typer.Option("--before", help="Only changes older than this change number (paging).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """List quarantined identities, oldest first (and, with --history, who changed what, newest
    first; --before N shows the page after the one that ended at change N)."""
    with _desk(workspace, json_) as desk:
        try:
            items = desk.quarantined()
            changes = desk.recent_changes(before=before, limit=limit) if history else []
        except VigilError as err:
            _fail(err, json_)
    nxt = changes[-1].seq if history and len(changes) == limit and changes[-1].seq > 1 else None
    if json_:
        data: Any = [quarantine_dict(q) for q in items]
        if history:
            data = {"quarantined": data, "changes": [change_dict(c) for c in changes], "next": nxt}
        _print_json(data)
        return
    console = _out()
    if not items:
        console.print("no quarantined identities")
    else:
        table = Table()
        for col in ("subject", "since", "by", "reason"):
            table.add_column(col, overflow="fold")
        for q in items:
            table.add_row(
                f"{q.subject[0]}::{q.subject[1]}", rfc3339(q.since)[:19] + "Z", q.by, escape(q.reason)
            )
        console.print(table)
    if history:
        table = Table(title="changes")
        for col in ("#", "time", "change", "subject", "by", "detail"):
            table.add_column(col, overflow="fold")
        for c in changes:
            detail = " ".join(str(c.detail[k]) for k in ("ticket", "note", "reason") if c.detail.get(k))
            table.add_row(
                str(c.seq),
                rfc3339(c.time)[:19] + "Z",
                c.kind,
                f"{c.subject[0]}::{c.subject[1]}",
                c.by,
                escape(detail),
            )
        console.print(table)
        if nxt is not None:
            console.print(f"older changes: --history --before {nxt}")


@quarantine_app.command("add")
def quarantine_add(
    subject: Annotated[str, typer.Argument(help='Identity, e.g. Agent::"name".', show_default=False)],
    workspace: WorkspaceOpt,
    by: ByOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")] = "",
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Quarantine an identity: every request from it is denied until an owner lifts it.

    Exit 4 when the store cannot save it: then it is NOT in effect (nothing was recorded)."""
    when = _when(now, json_)
    with _desk(workspace, json_) as desk:
        try:
            e = desk.add(parse_uid(subject), by=by, reason=reason, now=when)
        except StoreError as err:
            message = f"the quarantine of {subject} was NOT saved and is not in effect: {err.message}"
            if json_:
                _print_json({"error": {"code": err.code, "message": message, "durable": False}})
            else:
                _err().print(f"[red]error[/] [bold]{err.code}[/]: {escape(message)}", soft_wrap=True)
            raise typer.Exit(render.exit_status(err.code)) from None
        except VigilError as err:
            _fail(err, json_)
    if json_:
        _print_json({**quarantine_dict(e), "durable": True})
        return
    _out().print(
        f"quarantined [bold]{escape(e.subject[0])}::{escape(e.subject[1])}[/] since {rfc3339(e.since)[:19]}Z, by {escape(e.by)} (saved)"
    )


@quarantine_app.command("lift")
def quarantine_lift(
    subject: Annotated[str, typer.Argument(help='Identity, e.g. Agent::"name".', show_default=False)],
    workspace: WorkspaceOpt,
    by: ByOpt,
    note: Annotated[str, typer.Option("--note", help="Why (audited).")] = "",
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Lift the quarantine of an identity."""
    e = _change(
        workspace, json_, now, lambda desk, when: desk.lift(parse_uid(subject), by=by, note=note, now=when)
    )
    if json_:
        _print_json({"lifted": quarantine_dict(e)})
        return
    _out().print(
        f"lifted the quarantine of [bold]{escape(e.subject[0])}::{escape(e.subject[1])}[/], by {escape(by)}"
    )
