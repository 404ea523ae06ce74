"""``vigil identity add|list|show|suspend|resume|retire|add-key|remove-key|bind|unbind|report``,
``revoke-token|revoke-delegation|revocations``.

Each command opens the workspace's settings and state store only (:attr:`StateDesk.identities
<vigil.operations.service.StateDesk.identities>`), never its policies, and calls one use case of
:class:`~vigil.operations.identities.IdentityDesk`. Changes are written to the store's change log
and the chained audit log with ``--by`` (default: your login name). A running server sees them
within about a second (its state refresh), at its next reload, or at once when they are made
through its admin API (``docs/identity.md``).

Exit status (the error table, ``vigil.errors.ErrorCode``): 0 done; 2 bad argument (``invalid_uid``,
``invalid_owner``, ``invalid_date``, ``invalid_key``, ``invalid_binding``, ``not_an_identity_type``,
``invalid_argument``); 3 bad workspace; 4 store or audit log unavailable; 5 not found
(``identity_not_found``, ``key_not_found``, ``binding_not_found``); 6 refused by the identity's
state (``identity_exists``, ``key_exists``, ``binding_exists``, ``invalid_transition``,
``registry_busy``).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vigil.cli.state import JsonOpt, NowOpt, WorkspaceOpt, _change, _desk, _fail, _out, _print_json, _when
from vigil.errors import VigilError
from vigil.identity.report import FINDINGS
from vigil.operations.identities import STATUS_FILTERS, IdentityDesk
from vigil.operations.revocations import revocation_dict
from vigil.store import IdentityEntry

T = TypeVar("T")

identity_app = typer.Typer(
    help="The identity registry: owners, lifecycle (suspend, resume, retire), keys, bindings, hygiene.",
    no_args_is_help=True,
)

UidArg = Annotated[
    str, typer.Argument(help="Identity, e.g. 'Agent::\"name\"' (quote it for the shell).", show_default=False)
]
ByOpt = Annotated[
    str | None,
    typer.Option(
        "--by", help="Who makes this change (audited; default: your login name).", show_default=False
    ),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (audited).")]


def _by(by: str | None) -> str:
    if by is not None:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"


def _run(
    workspace: Path, json_: bool, now: str | None, use: Callable[[IdentityDesk, float | None], T]
) -> tuple[T, dict[str, Any]]:
    """Run one use case at ``now``; returns its result and the identity as JSON-ready data (when
    the result holds one). Any VigilError exits through _fail with its table status."""
    when = _when(now, json_)
    with _desk(workspace, json_) as desk:
        try:
            ids = desk.identities
            out = use(ids, when)
            entry = out[0] if isinstance(out, tuple) else out
            shown = ids.describe(entry, when) if isinstance(entry, IdentityEntry) else {}
        except VigilError as e:
            _fail(e, json_)
    return out, shown


def _changed(json_: bool, shown: dict[str, Any], text: str) -> None:
    if json_:
        _print_json(shown)
    else:
        _out().print(text, soft_wrap=True)


@identity_app.command("add")
def identity_add(
    uid: UidArg,
    workspace: WorkspaceOpt,
    owner: Annotated[
        str | None, typer.Option("--owner", help="The person who owns it: an email address (required).")
    ] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", help="Why it exists (required).")] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="agent, service-account, workload, ... (default: from the type)."),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="YYYY-MM-DD (00:00 UTC), RFC 3339, or <N>d (N days from now)."),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="A public key file: JWK (JSON) or PEM.")
    ] = None,
    by: ByOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Register an identity that acts (its entity stays in entities/*.json): active from now on."""
    _, shown = _run(
        workspace,
        json_,
        now,
        lambda ids, when: ids.add(
            uid,
            owner=owner,
            purpose=purpose if purpose is not None else "",
            kind=kind,
            expires=expires,
            public_key=public_key,
            by=_by(by),
            now=when,
        ),
    )
    keys = f", key {shown['keys'][0]['kid']}" if shown.get("keys") else ""
    _changed(
        json_,
        shown,
        f"registered [bold]{escape(shown['uid'])}[/], owner {escape(shown['owner'])}{escape(keys)}",
    )


def _status_command(name: str, verb: str, doc: str) -> None:
    def command(
        uid: UidArg,
        workspace: WorkspaceOpt,
        reason: ReasonOpt = "",
        by: ByOpt = None,
        now: NowOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        _, shown = _run(
            workspace,
            json_,
            now,
            lambda ids, when: getattr(ids, name)(uid, by=_by(by), reason=reason, now=when),
        )
        _changed(json_, shown, f"{verb} [bold]{escape(shown['uid'])}[/]: now {shown['status']}")

    command.__doc__ = doc
    identity_app.command(name)(command)


_status_command(
    "suspend",
    "suspended",
    "Suspend an active identity: every request from it is denied (identity_inactive) until resumed.",
)
_status_command("resume", "resumed", "Resume a suspended identity (a retired one cannot be resumed).")
_status_command("retire", "retired", "Retire an identity for good (denied from now on; the record stays).")


@identity_app.command("add-key")
def identity_add_key(
    uid: UidArg,
    workspace: WorkspaceOpt,
    public_key: Annotated[Path, typer.Option("--public-key", help="The new public key: JWK or PEM file.")],
    by: ByOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add a public key; the keys already there stay valid (rotation with overlap: add the new
    key, move the identity to it, then remove-key the old one)."""
    out, shown = _run(
        workspace, json_, now, lambda ids, when: ids.add_key(uid, public_key, by=_by(by), now=when)
    )
    key = out[1]
    _changed(
        json_, shown, f"added key [bold]{key.kid}[/] to {escape(shown['uid'])} ({len(shown['keys'])} keys)"
    )


@identity_app.command("remove-key")
def identity_remove_key(
    uid: UidArg,
    kid: Annotated[
        str, typer.Argument(help="The key's kid (its RFC 7638 thumbprint; see show).", show_default=False)
    ],
    workspace: WorkspaceOpt,
    by: ByOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Remove a public key (removing an old key while a newer one stays completes a rotation)."""
    _, shown = _run(workspace, json_, now, lambda ids, when: ids.remove_key(uid, kid, by=_by(by), now=when))
    _changed(
        json_,
        shown,
        f"removed key [bold]{escape(kid)}[/] from {escape(shown['uid'])} ({len(shown['keys'])} left)",
    )


IssuerOpt = Annotated[
    str, typer.Option("--issuer", help="The external issuer: https:// URL or spiffe://trust-domain.")
]
SubjectOpt = Annotated[
    str,
    typer.Option(
        "--subject",
        help="Its name for the identity: a SPIFFE ID, system:serviceaccount:NS:NAME, an OIDC sub.",
    ),
]


def _binding_command(name: str, verb: str, doc: str) -> None:
    def command(
        uid: UidArg,
        workspace: WorkspaceOpt,
        issuer: IssuerOpt,
        subject: SubjectOpt,
        by: ByOpt = None,
        now: NowOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        _, shown = _run(
            workspace,
            json_,
            now,
            lambda ids, when: getattr(ids, name)(uid, issuer=issuer, subject=subject, by=_by(by), now=when),
        )
        _changed(
            json_, shown, f"{verb} {escape(subject)} from {escape(issuer)}: [bold]{escape(shown['uid'])}[/]"
        )

    command.__doc__ = doc
    identity_app.command(name)(command)


_binding_command(
    "bind", "bound", "Bind an external name (issuer + subject) to the identity; one identity per name."
)
_binding_command("unbind", "unbound", "Remove a binding.")


@identity_app.command("list")
def identity_list(
    workspace: WorkspaceOpt,
    status: Annotated[
        str | None, typer.Option("--status", help=f"Only identities that are {', '.join(STATUS_FILTERS)}.")
    ] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List registered identities (by uid) with their state now."""
    rows, _ = _run(
        workspace,
        json_,
        now,
        lambda ids, when: [ids.describe(e, when) for e in ids.list(status=status, now=when)],
    )
    if json_:
        _print_json(rows)
        return
    console = _out()
    if not rows:
        console.print("no registered identities" + (f" that are {status}" if status else ""))
        return
    table = Table()
    table.add_column("identity", no_wrap=True)
    for col in ("status", "owner", "kind", "keys", "bindings", "expires", "last used"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            escape(r["uid"]),
            r["status"],
            escape(r["owner"]),
            r["kind"],
            str(len(r["keys"])),
            str(len(r["bindings"])),
            _day(r["expires"]),
            _day(r["last_used"]),
        )
    console.print(table)


def _day(text: str | None) -> str:
    return "-" if text is None else text[:19].replace("T", " ")


@identity_app.command("show")
def identity_show(uid: UidArg, workspace: WorkspaceOpt, now: NowOpt = None, json_: JsonOpt = False) -> None:
    """Show one identity: owner, purpose, state, keys (with their ages), bindings, last use."""
    _, shown = _run(workspace, json_, now, lambda ids, when: ids.show(uid))
    if json_:
        _print_json(shown)
        return
    _render_identity(_out(), shown)


def _render_identity(console: Console, r: dict[str, Any]) -> None:
    console.print(f"[bold]{escape(r['uid'])}[/]  {r['status']}", soft_wrap=True)
    status = f"{r['status']} since {_day(r['status_since'])} by {r['status_by']}" + (
        f": {r['status_reason']}" if r["status_reason"] else ""
    )
    for label, value in (
        ("owner", r["owner"]),
        ("purpose", r["purpose"]),
        ("kind", r["kind"]),
        ("created", f"{_day(r['created'])} by {r['created_by']}"),
        ("expires", _day(r["expires"]) if r["expires"] else "never"),
        ("status", status),
        ("last used", _day(r["last_used"]) if r["last_used"] else "never"),
        ("tokens (24 h)", str(r["tokens_24h"])),
        ("last rotation", _day(r["rotated"]) if r["rotated"] else "never"),
    ):
        console.print(f"  {label:<14} {escape(value)}", soft_wrap=True)
    if r["keys"]:
        table = Table(title="keys")
        for col in ("kid", "key", "added", "by", "age (days)"):
            table.add_column(col, overflow="fold")
        for k in r["keys"]:
            table.add_row(k["kid"], k["key"], _day(k["added"]), escape(k["by"]), str(k["age_days"]))
        console.print(table)
    else:
        console.print("  no keys")
    if r["bindings"]:
        table = Table(title="bindings")
        for col in ("issuer", "subject", "added", "by"):
            table.add_column(col, overflow="fold")
        for b in r["bindings"]:
            table.add_row(escape(b["issuer"]), escape(b["subject"]), _day(b["added"]), escape(b["by"]))
        console.print(table)
    else:
        console.print("  no bindings")


@identity_app.command("report")
def identity_report(
    workspace: WorkspaceOpt,
    unused_days: Annotated[
        int | None,
        typer.Option("--unused-days", help="Unused for N days (default: [identity] unused_days, 30)."),
    ] = None,
    key_age_days: Annotated[
        int | None,
        typer.Option("--key-age-days", help="Keys older than N days (default: [identity] key_age_days, 90)."),
    ] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Hygiene per identity and in total: no owner, expired but active, unused, old keys, keys
    never rotated, tokens issued in the last 24 h, registered but not in entities and the reverse."""
    report, _ = _run(
        workspace,
        json_,
        now,
        lambda ids, when: ids.report(now=when, unused_days=unused_days, key_age_days=key_age_days),
    )
    if json_:
        _print_json(report)
        return
    console = _out()
    table = Table(title=f"identities at {_day(report['time'])} UTC")
    table.add_column("identity", no_wrap=True)
    for col in ("status", "owner", "last used", "keys", "oldest key (days)", "tokens 24 h", "findings"):
        table.add_column(col, overflow="fold")
    for r in report["identities"]:
        table.add_row(
            escape(r["uid"]),
            r["status"] or "unregistered",
            escape(r["owner"] or "-"),
            _day(r["last_used"]),
            str(r["keys"]),
            "-" if r["oldest_key_days"] is None else str(r["oldest_key_days"]),
            str(r["tokens_24h"]),
            ", ".join(r["findings"]) or "ok",
        )
    console.print(table)
    t = report["totals"]
    states = ", ".join(f"{n} {s}" for s, n in t["by_status"].items())
    console.print(f"registered: {t['identities']} ({states})")
    labels = {
        "no_owner": "no owner",
        "expired_active": "expired but active",
        "unused": f"unused for {report['unused_days']} days",
        "old_keys": f"keys older than {report['key_age_days']} days",
        "never_rotated": "standing keys never rotated",
        "not_in_entities": "registered, not in entities",
        "unregistered": f"in entities ({', '.join(report['types'])}), not registered",
    }
    for f in FINDINGS:
        console.print(f"  {labels[f]:<44} {t[f]}", soft_wrap=True)
    console.print(f"  {'tokens issued in the last 24 h':<44} {t['tokens_24h']}")


# -- revocation (operations/revocations.py) ----------------------------------------------------------
@identity_app.command("revoke-token")
def identity_revoke_token(
    jti: Annotated[str, typer.Argument(help="The token's jti claim.", show_default=False)],
    workspace: WorkspaceOpt,
    reason: ReasonOpt = "",
    by: ByOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Revoke one token by its jti: refused at its next use (a running server on the same state
    within about a second)."""
    r, added = _change(
        workspace,
        json_,
        now,
        lambda desk, when: desk.revocations.revoke_token(jti, by=_by(by), reason=reason, now=when),
    )
    shown = {**revocation_dict(r), "new": added}
    _changed(json_, shown, f"revoked token [bold]{escape(jti)}[/]" + ("" if added else " (already revoked)"))


@identity_app.command("revoke-delegation")
def identity_revoke_delegation(
    actor: Annotated[str, typer.Argument(help="The actor, e.g. 'Agent::\"bot\"'.", show_default=False)],
    subject: Annotated[str, typer.Argument(help="The subject it acts for, e.g. 'User::\"alice\"'.")],
    workspace: WorkspaceOpt,
    reason: ReasonOpt = "",
    by: ByOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Revoke a delegation: every token whose chain holds ACTOR acting for SUBJECT is refused."""
    r, added = _change(
        workspace,
        json_,
        now,
        lambda desk, when: desk.revocations.revoke_delegation(
            actor, subject, by=_by(by), reason=reason, now=when
        ),
    )
    shown = {**revocation_dict(r), "new": added}
    _changed(
        json_,
        shown,
        f"revoked the delegation {escape(shown['actor'])} -> {escape(shown['subject'])}"
        + ("" if added else " (already revoked)"),
    )


@identity_app.command("revocations")
def identity_revocations(workspace: WorkspaceOpt, json_: JsonOpt = False) -> None:
    """List revoked tokens and delegations."""
    items = _change(
        workspace, json_, None, lambda desk, _: [revocation_dict(r) for r in desk.revocations.list()]
    )
    if json_:
        _print_json({"revocations": items})
        return
    table = Table("kind", "what", "revoked", "by", "reason")
    for r in items:
        what = r["jti"] if r["kind"] == "token" else f"{r['actor']} -> {r['subject']}"
        table.add_row(r["kind"], escape(what), r["revoked"], escape(r["by"]), escape(r["reason"]))
    _out().print(table)
