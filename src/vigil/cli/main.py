"""``vigil`` commands: each parses its arguments, calls one library function, renders the result.

Exit status: 0 success; error codes map through :data:`vigil.errors.EXIT_STATUS` (2 bad request
or argument, 3 bad workspace, ...); ``replay`` exits 1 when any line was bad, ``policy fmt
--check`` exits 1 when a file would change.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, BinaryIO, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from vigil import __version__
from vigil.audit import NullSink
from vigil.cli import render
from vigil.engine import Engine
from vigil.errors import RequestError, VigilError, WorkspaceError
from vigil.policy.cedar import CedarError
from vigil.replay import ReplayInputError, parse_rfc3339, replay_to

app = typer.Typer(
    name="vigil",
    help="Access control for non-human identities: Cedar policy plus learned behaviour.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold request data or secrets
)
policy_app = typer.Typer(help="Cedar policy tools.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

BAD_ARGUMENT = 2
PROGRESS_MIN_BYTES = 256 * 1024

Workspace = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.", show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _fail(console: Console, code: str, message: str, status: int) -> NoReturn:
    console.print(f"[red]error[/] [bold]{code}[/]: {escape(message)}", soft_wrap=True)
    raise typer.Exit(status)


def _load(workspace: Path, console: Console, **options: Any) -> Engine:
    """The engine on ``workspace``; a refused workspace prints every problem and exits 3."""
    try:
        return Engine.from_workspace(workspace, **options)
    except WorkspaceError as e:
        render.render_workspace_error(console, e)
        raise typer.Exit(render.exit_status(e.code)) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """vigil: Cedar policy and learned behaviour, decided in microseconds."""


@app.command()
def check(workspace: Workspace, json_: JsonFlag = False) -> None:
    """Load and validate a workspace; show what was compiled. Writes nothing (no audit).

    Exit 0 when the workspace loads; 3 when it is refused (every file:line problem is printed).
    """
    try:
        engine = Engine.from_workspace(workspace, audit=NullSink())
    except WorkspaceError as e:
        if json_:
            _print_json(render.workspace_error_report(e))
        else:
            render.render_workspace_error(_out(), e)
        raise typer.Exit(render.exit_status(e.code)) from None
    with engine:
        report = render.check_report(engine)
    if json_:
        _print_json(report)
    else:
        render.render_check(_out(), report)


def _read_request(arg: str) -> Any:
    """REQUEST_JSON: a JSON string, ``@file`` or ``-`` (stdin); raises RequestError when unreadable."""
    if arg == "-":
        text: str | bytes = sys.stdin.buffer.read()
    elif arg.startswith("@"):
        try:
            text = Path(arg[1:]).read_bytes()
        except OSError as e:
            raise RequestError(f"cannot read request file {arg[1:]!r}: {e.strerror}") from None
    else:
        text = arg
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise RequestError(f"request is not valid JSON: {e}") from None


@app.command()
def decide(
    request_json: Annotated[
        str, typer.Argument(help="AuthZEN request: JSON text, @file, or - for stdin.", show_default=False)
    ],
    workspace: Workspace,
    now: Annotated[
        str | None, typer.Option("--now", help="Decision time, RFC 3339 (default: the clock).")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Decide one AuthZEN evaluation request (audited like any other decision).

    Exit 0 when a decision was made (allow or deny), 2 for a bad request or --now, 3 for a bad workspace.
    """
    err = _err()
    try:
        request = _read_request(request_json)
        when = parse_rfc3339(now) if now is not None else None
    except (RequestError, ReplayInputError) as e:
        _error(err, e, json_, BAD_ARGUMENT)
    engine = _load(workspace, err)
    with engine:
        try:
            record = engine.decide(request, now=when)
        except VigilError as e:
            _error(err, e, json_, render.exit_status(e.code))
    if json_:
        _print_json(record.to_authzen())
    else:
        render.render_decision(_out(), record, engine.workspace.policy_set)


def _error(console: Console, e: VigilError, json_: bool, status: int) -> NoReturn:
    if json_:
        _print_json({"error": {"code": e.code, "message": e.message}})
        raise typer.Exit(status)
    _fail(console, e.code, e.message, status)


@app.command()
def replay(
    workspace: Workspace,
    input_: Annotated[
        str,
        typer.Option("--input", "-i", help="JSON lines of AuthZEN requests with context.time; - for stdin."),
    ],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Where decisions go (default: stdout).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Decide recorded requests at their own event times (shadow mode testing).

    One output line per non-blank input line: the AuthZEN response, or {"line", "error"} when it cannot be decided.

    The summary table goes to stdout when --output is given, else to stderr.

    Exit 1 when any line was bad, 2 when a file cannot be opened, 3 for a bad workspace.
    """
    err = _err()
    engine = _load(workspace, err)
    with ExitStack() as stack:
        stack.enter_context(engine)
        src, size = _open_input(input_, err, stack)
        dst = _open_output(output, input_, err, stack)
        to_stdout = output in (None, "-")
        show_progress = (
            not quiet
            and err.is_terminal
            and not (to_stdout and sys.stdout.isatty())
            and (size is None or size >= PROGRESS_MIN_BYTES)
        )
        with render.progress_lines(src, size, err, enabled=show_progress) as lines:
            summary = replay_to(engine, lines, dst)
    dropped = engine.audit.dropped
    render.render_replay_summary(err if to_stdout else _out(), summary, audit_dropped=dropped)
    if summary.bad_lines:
        err.print(f"[red]{summary.bad_lines} bad line(s)[/] of {summary.lines}")
        raise typer.Exit(1)


def _open_input(name: str, err: Console, stack: ExitStack) -> tuple[BinaryIO, int | None]:
    if name == "-":
        return sys.stdin.buffer, None
    try:
        f = stack.enter_context(open(name, "rb"))  # noqa: SIM115 - closed by the stack
        size = os.fstat(f.fileno()).st_size
    except OSError as e:
        _fail(err, "invalid_input", f"cannot read input {name!r}: {e.strerror}", BAD_ARGUMENT)
    return f, size or None


def _open_output(name: str | None, input_: str, err: Console, stack: ExitStack) -> BinaryIO:
    if name is None or name == "-":
        stdout = sys.stdout.buffer
        stack.callback(stdout.flush)
        return stdout
    try:
        if input_ != "-" and os.path.exists(name) and os.path.samefile(name, input_):
            _fail(err, "invalid_output", f"output {name!r} is the input file", BAD_ARGUMENT)
        return stack.enter_context(open(name, "wb", buffering=1 << 16))
    except OSError as e:
        _fail(err, "invalid_output", f"cannot write output {name!r}: {e.strerror}", BAD_ARGUMENT)


@policy_app.command("fmt")
def policy_fmt(
    files: Annotated[list[Path], typer.Argument(help="Cedar policy files.", show_default=False)],
    check_: Annotated[
        bool, typer.Option("--check", help="Exit 1 and list the files that would change.")
    ] = False,
    write: Annotated[bool, typer.Option("--write", help="Rewrite the files in place.")] = False,
) -> None:
    """Format Cedar policy files canonically (to stdout unless --check or --write).

    Exit 0 when done, 1 with --check when a file would change, 2 when a file cannot be read or parsed.
    """
    if check_ and write:
        _fail(_err(), "invalid_argument", "--check and --write cannot be used together", BAD_ARGUMENT)
    bad = 0
    changed: list[Path] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            formatted = render.format_policy(str(path), text)
            if write and formatted != text:
                _replace(path, formatted)
                typer.echo(f"formatted {path}", err=True)
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not valid UTF-8"
            typer.echo(f"{path}: cannot read or write: {reason}", err=True)
            bad += 1
            continue
        except CedarError as e:  # the message starts with "path:line:"
            typer.echo(str(e), err=True)
            bad += 1
            continue
        if formatted != text:
            changed.append(path)
        if not (write or check_):
            sys.stdout.write(formatted)
    if check_:
        for path in changed:
            typer.echo(f"would reformat {path}", err=True)
        if changed:
            typer.echo(f"{len(changed)} file(s) would be reformatted", err=True)
    if bad:
        raise typer.Exit(BAD_ARGUMENT)
    if check_ and changed:
        raise typer.Exit(1)


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (same folder temp file, then rename), keeping its mode."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


if __name__ == "__main__":  # pragma: no cover
    app()
