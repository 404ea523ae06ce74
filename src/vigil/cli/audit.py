"""``vigil audit verify|head``: check an audit log's hash chain and signed checkpoints; print the
last checkpoint as an anchor to keep elsewhere.

Exit status: 0 intact (warnings, e.g. unsigned trailing events, are printed); 1 the log is broken
(the first broken line is named with why), not signed although a key was given, or (``--strict``)
ends in unsigned events or has no key to check it with, or lacks the ``--expect-head`` anchor; 2
bad argument (no log named, unreadable key, malformed anchor); 3 bad workspace.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from vigil.audit.keys import public_key_path
from vigil.audit.verify import Verification, load_public_key, parse_head, verify_log
from vigil.errors import WorkspaceError

audit_app = typer.Typer(
    help="The audit log: verify its hash chain and signatures; print its signed head.", no_args_is_help=True
)

BROKEN = 1
BAD_ARGUMENT = 2
BAD_WORKSPACE = 3

PathArg = Annotated[
    Path | None,
    typer.Argument(help="The audit log (rotated files beside it are checked too). Default: the workspace's."),
]
PublicKeyOption = Annotated[
    Path | None, typer.Option("--public-key", help="The audit public key (PEM).", show_default=False)
]
WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help="Read the log path and public key from this workspace.", show_default=False
    ),
]
StrictOption = Annotated[
    bool,
    typer.Option("--strict", help="Also fail on events after the last checkpoint and on a missing key."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@audit_app.command("verify")
def verify(
    path: PathArg = None,
    public_key: PublicKeyOption = None,
    workspace: WorkspaceOption = None,
    strict: StrictOption = False,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="SEQ:HASH",
            help="Fail unless the log still holds this checkpoint (what `vigil audit head` printed "
            "earlier, kept elsewhere): a log cut just after a checkpoint looks intact otherwise.",
            show_default=False,
        ),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Check every line's hash chain and every checkpoint's Ed25519 signature, oldest file first.

    Exits 0 when the log is intact, 1 naming the first broken line (edited, removed, reordered or
    inserted lines; a forged or foreign checkpoint signature), or when a key was given and nothing
    in the log is signed."""
    err = Console(stderr=True, highlight=False, emoji=False)
    anchor = None
    if expect_head is not None:
        try:
            anchor = parse_head(expect_head)
        except ValueError as e:
            err.print(f"[red]error[/] invalid_argument: --expect-head: {escape(str(e))}")
            raise typer.Exit(BAD_ARGUMENT) from None
    result = _verify(err, path, public_key, workspace, strict=strict, expect_head=anchor)
    if json_:
        _print_json(result)
    else:
        for w in result.warnings:
            err.print(f"[yellow]warning[/]: {escape(w)}", soft_wrap=True)
        if result.ok:
            Console(highlight=False, emoji=False).print(
                f"intact: {result.events} events, {result.checkpoints} checkpoints in "
                f"{len(result.files)} file(s)",
                soft_wrap=True,
            )
        else:
            err.print(f"[red]broken[/]: {escape(result.problem)}", soft_wrap=True)
    if not result.ok:
        raise typer.Exit(BROKEN)


@audit_app.command("head")
def head(
    path: PathArg = None,
    public_key: PublicKeyOption = None,
    workspace: WorkspaceOption = None,
    json_: JsonOption = False,
) -> None:
    """Verify the log, then print its last checkpoint as ``SEQ:HASH``: keep it somewhere the log's
    writer cannot change (another host, a ticket, a transparency log) and check it later with
    ``vigil audit verify --expect-head SEQ:HASH``.

    Exits 1 when the log is broken or has no checkpoint."""
    err = Console(stderr=True, highlight=False, emoji=False)
    result = _verify(err, path, public_key, workspace, strict=False, expect_head=None)
    if result.ok and result.head is None:
        result.ok, result.problem = False, "no checkpoint: nothing in the log is signed yet"
    if not result.ok or result.head is None:
        err.print(f"[red]broken[/]: {escape(result.problem)}", soft_wrap=True)
        raise typer.Exit(BROKEN)
    seq, digest = result.head
    if json_:
        sys.stdout.write(orjson.dumps({"seq": seq, "hash": digest, "files": result.files}).decode() + "\n")
    else:
        sys.stdout.write(f"{seq}:{digest}\n")


def _verify(
    err: Console,
    path: Path | None,
    public_key: Path | None,
    workspace: Path | None,
    *,
    strict: bool,
    expect_head: tuple[int, str] | None,
) -> Verification:
    """The log and key named (or the workspace's) verified; exits 2 or 3 when they cannot be read."""
    if workspace is not None:
        from vigil.workspace.settings import parse_settings

        toml = workspace / "vigil.toml"
        try:
            settings = parse_settings(toml.read_text(encoding="utf-8") if toml.exists() else "").audit
        except (OSError, UnicodeDecodeError) as e:
            err.print(f"[red]error[/] invalid_workspace: cannot read {escape(str(toml))}: {escape(str(e))}")
            raise typer.Exit(BAD_WORKSPACE) from None
        except WorkspaceError as e:
            err.print(f"[red]error[/] invalid_workspace: {escape(e.message)}")
            raise typer.Exit(BAD_WORKSPACE) from None
        if path is None:
            path = Path(settings.path) if Path(settings.path).is_absolute() else workspace / settings.path
        if public_key is None:
            key = Path(settings.signing_key)
            public_key = public_key_path(key if key.is_absolute() else workspace / key)
    if path is None:
        err.print("[red]error[/] invalid_argument: name the log (PATH) or --workspace")
        raise typer.Exit(BAD_ARGUMENT)
    pub = None
    if public_key is not None:
        try:
            pub = load_public_key(public_key)
        except (OSError, ValueError) as e:
            err.print(
                f"[red]error[/] invalid_argument: cannot read public key {escape(str(public_key))}: {escape(str(e))}"
            )
            raise typer.Exit(BAD_ARGUMENT) from None
    return verify_log(path, pub, strict=strict, expect_head=expect_head)


def _print_json(result: Verification) -> None:
    sys.stdout.write(
        orjson.dumps(
            {
                "ok": result.ok,
                "problem": result.problem,
                "warnings": result.warnings,
                "files": result.files,
                "lines": result.lines,
                "events": result.events,
                "checkpoints": result.checkpoints,
                "unsigned": result.unsigned,
                "head": {"seq": result.head[0], "hash": result.head[1]} if result.head else None,
            }
        ).decode()
        + "\n"
    )
