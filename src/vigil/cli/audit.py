"""``vigil audit verify``: check an audit log's hash chain and signed checkpoints.

Exit status: 0 intact (warnings, e.g. unsigned trailing events, are printed); 1 the log is broken
(the first broken line is named with why); 2 bad argument (no key, unreadable key); 3 bad workspace.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from vigil.audit.logfile import public_key_path
from vigil.audit.verify import load_public_key, verify_log
from vigil.errors import WorkspaceError

audit_app = typer.Typer(help="The audit log: verify its hash chain and signatures.", no_args_is_help=True)

BROKEN = 1
BAD_ARGUMENT = 2
BAD_WORKSPACE = 3


@audit_app.command("verify")
def verify(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="The audit log (rotated files beside it are checked too). Default: the workspace's."
        ),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The audit public key (PEM).", show_default=False)
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Read the log path and public key from this workspace.",
            show_default=False,
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check every line's hash chain and every checkpoint's Ed25519 signature, oldest file first.

    Exits 0 when the log is intact, 1 naming the first broken line (edited, removed, reordered or
    inserted lines; a forged or foreign checkpoint signature)."""
    err = Console(stderr=True, highlight=False, emoji=False)
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
    result = verify_log(path, pub)
    if json_:
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
                }
            ).decode()
            + "\n"
        )
    else:
        out = Console(highlight=False, emoji=False)
        for w in result.warnings:
            err.print(f"[yellow]warning[/]: {escape(w)}", soft_wrap=True)
        if result.ok:
            out.print(
                f"intact: {result.events} events, {result.checkpoints} checkpoints in "
                f"{len(result.files)} file(s)",
                soft_wrap=True,
            )
        else:
            err.print(f"[red]broken[/]: {escape(result.problem)}", soft_wrap=True)
    if not result.ok:
        raise typer.Exit(BROKEN)
