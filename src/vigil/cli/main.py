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
from vigil.cli.audit import audit_app
from vigil.cli.identity import identity_app
from vigil.cli.mcp import mcp_app
from vigil.cli.oauth import oauth_app
from vigil.cli.paths import paths as paths_command
from vigil.cli.policy_diff import policy_diff as policy_diff_command
from vigil.cli.rightsize import rightsize as rightsize_command
from vigil.cli.state import approvals_app, quarantine_app
from vigil.engine import Engine
from vigil.errors import RequestError, VigilError, WorkspaceError
from vigil.model.jsonkeys import check_unique_keys
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
policy_app.command("diff")(policy_diff_command)
app.add_typer(approvals_app, name="approvals")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(audit_app, name="audit")
app.add_typer(identity_app, name="identity")
app.add_typer(mcp_app, name="mcp")
app.add_typer(oauth_app, name="oauth")
app.command("paths")(paths_command)
app.command("rightsize")(rightsize_command)

BAD_ARGUMENT = 2
PROGRESS_MIN_BYTES = 256 * 1024

Workspace = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.", show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _out() -> Console:
    return Console(highlight=False, emoji=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False, emoji=False)


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
        from vigil.compiled import summary

        typer.echo(f"vigil {__version__} ({summary()})")
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
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise RequestError(f"request is not valid JSON: {e}") from None
    check_unique_keys(text, obj)
    return obj


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
        _print_json(record.to_authzen(full=True))
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
    state: Annotated[
        bool,
        typer.Option(
            "--state",
            "--learn",
            help="Use the workspace's state store: the replay trains the live behaviour profiles "
            "(and, without --audit, appends to the workspace's audit log). Default: a dry run.",
        ),
    ] = False,
    audit: Annotated[
        str | None,
        typer.Option(
            "--audit", help='Write the replay\'s audit events (marked "replay": true) to this file.'
        ),
    ] = None,
) -> None:
    """Decide recorded requests at their own event times (shadow mode testing).

    One output line per non-blank input line: the AuthZEN response, or {"line", "error"} when it cannot be decided.

    A dry run by default: a scratch in-memory state, no audit; the workspace's state database and
    audit log are left untouched. --state (alias --learn) opts in to the live state; --audit
    writes audit events. Every audit event a replay writes is marked "replay": true.

    The summary table goes to stdout when --output is given, else to stderr.

    Exit 1 when any line was bad, 2 when a file cannot be opened, 3 for a bad workspace, 4 when
    the audit file cannot be opened.
    """
    from vigil.replay import replay_engine

    err = _err()
    try:
        engine = replay_engine(workspace, state=state, audit=audit)
    except WorkspaceError as e:
        render.render_workspace_error(err, e)
        raise typer.Exit(render.exit_status(e.code)) from None
    except VigilError as e:
        _fail(err, e.code, e.message, render.exit_status(e.code))
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


@app.command()
def serve(
    workspace: Workspace,
    host: Annotated[
        str | None, typer.Option("--host", help="Listen address (default: [server] host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Listen port (default: [server] port, 8181; 0 picks one).")
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve without caller API keys. Refused unless the address is loopback; logged loudly.",
        ),
    ] = False,
    echo: Annotated[
        bool, typer.Option("--echo-endpoint", hidden=True, help="Add POST /bench/echo (benchmark floor).")
    ] = False,
    new_state: Annotated[
        bool,
        typer.Option(
            "--new-state",
            help="Start with an empty state database although one existed and is gone "
            "(quarantines, approvals and profiles start afresh).",
        ),
    ] = False,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            "--grpc-port",
            help="Also serve Envoy's gRPC ext_authz (Authorization/Check) on this port "
            "(default: [server] grpc_port; -1: off; 0 picks one).",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Run N server processes on one port (SO_REUSEPORT), sharing the store "
            "(SQLite or PostgreSQL; docs/deployment.md). A worker that dies is started again.",
        ),
    ] = 1,
    reuse_port: Annotated[
        bool, typer.Option("--reuse-port", hidden=True, help="Bind with SO_REUSEPORT (one of --workers).")
    ] = False,
) -> None:
    """Serve AuthZEN decisions over HTTP (plus Envoy ext_authz, admin, health and metrics).

    API keys: VIGIL_API_KEYS (comma-separated) or [server] api_keys_file; admin keys:
    VIGIL_ADMIN_KEYS or [server] admin_keys_file. Stops gracefully on SIGINT/SIGTERM.

    Exit 2 when the server refuses to start (no key, insecure off loopback, address in use), 3 for
    a bad workspace or keys file, or a state database that existed and is gone (see --new-state).
    """
    from vigil.server import ServeError
    from vigil.server import serve as run_server

    err = _err()
    try:
        if workers != 1:
            from vigil.server.workers import supervise

            passed = ("--insecure-no-auth",) * insecure_no_auth + ("--new-state",) * new_state
            supervise(workspace, workers=workers, host=host, port=port, grpc_port=grpc_port, args=passed)
            return
        run_server(
            workspace,
            host=host,
            port=port,
            insecure_no_auth=insecure_no_auth,
            echo=echo,
            new_state=new_state,
            grpc_port=grpc_port,
            reuse_port=reuse_port,
        )
    except WorkspaceError as e:
        render.render_workspace_error(err, e)
        raise typer.Exit(render.exit_status(e.code)) from None
    except ServeError as e:
        _fail(err, e.code, e.message, BAD_ARGUMENT)


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


# -- import and eval ------------------------------------------------------------------------------

import_app = typer.Typer(
    help="Turn other systems' logs into replayable AuthZEN requests.", no_args_is_help=True
)
app.add_typer(import_app, name="import")


@import_app.command("cloudtrail")
def import_cloudtrail(
    files: Annotated[
        list[Path],
        typer.Argument(help="CloudTrail files: Records JSON, JSON lines, .gz.", show_default=False),
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="Where requests go (- for stdout).")] = "-",
    errors: Annotated[
        str | None, typer.Option("--errors", help="Where error lines go (default: stderr).")
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Also write a permit-all workspace for the identities seen."),
    ] = None,
    no_sort: Annotated[
        bool, typer.Option("--no-sort", help="Keep file order (default: by event time).")
    ] = False,
) -> None:
    """Import AWS CloudTrail records as AuthZEN requests for `vigil replay` (see docs/detection.md).

    A record that cannot be mapped becomes an error line {"file", "line"|"record", "error"} and the
    import goes on. Exit 1 when any record was bad, 2 when an output cannot be written.
    """
    from vigil.importers import import_cloudtrail as run_import
    from vigil.importers import write_workspace

    err = _err()
    if workspace is not None and workspace.exists() and (not workspace.is_dir() or any(workspace.iterdir())):
        _fail(
            err,
            "invalid_output",
            f"workspace folder {str(workspace)!r} exists and is not empty",
            BAD_ARGUMENT,
        )
    for name in (output, errors):
        if name not in (None, "-") and os.path.exists(name) and any(_same(name, f) for f in files):
            _fail(err, "invalid_output", f"output {name!r} is one of the input files", BAD_ARGUMENT)
    with ExitStack() as stack:
        dst = _open_output(output, "-", err, stack)
        if errors is None or errors == "-":
            bad: BinaryIO = sys.stderr.buffer
        else:
            try:
                bad = stack.enter_context(open(errors, "wb"))
            except OSError as e:
                _fail(err, "invalid_output", f"cannot write errors {errors!r}: {e.strerror}", BAD_ARGUMENT)
        summary = run_import([str(f) for f in files], dst, bad, sort=not no_sort)
    if workspace is not None:
        try:
            write_workspace(workspace, summary.identities)
        except (VigilError, OSError) as e:
            _fail(err, "invalid_output", str(getattr(e, "message", e)), BAD_ARGUMENT)
    err.print(
        f"imported {summary.requests} request(s) from {summary.files} file(s), "
        f"{len(summary.identities)} identities"
        + (f"; workspace {escape(str(workspace))}" if workspace is not None else ""),
        soft_wrap=True,
    )
    if summary.bad_records:
        codes = ", ".join(f"{k} {v}" for k, v in sorted(summary.errors_by_code.items()))
        err.print(f"[red]{summary.bad_records} bad record(s)[/] ({codes})", soft_wrap=True)
        raise typer.Exit(1)


def _same(a: str, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@app.command("eval")
def eval_(
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="How many generated fleets (seeds).")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="The first seed.")] = 20261005,
    teams: Annotated[int, typer.Option("--teams", min=1, max=8, help="Teams of 8 identities per fleet.")] = 8,
    days: Annotated[int, typer.Option("--days", min=16, help="Days of traffic (the first 14 learn).")] = 28,
    holdout: Annotated[
        int,
        typer.Option(
            "--holdout", min=0, help="Also run this many held-out seeds (from 7001), reported apart."
        ),
    ] = 0,
    datasets: Annotated[
        Path | None, typer.Option("--datasets", help="Also evaluate on the shared data sets in this folder.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json-out", help="Write the full report as JSON.")
    ] = None,
    update_doc: Annotated[
        Path | None,
        typer.Option("--update-doc", help="Rewrite the figures between the eval markers of this file."),
    ] = None,
    write_fleet_dir: Annotated[
        Path | None,
        typer.Option(
            "--write-fleet", help="Only write one labelled fleet (workspace, events, labels) and exit."
        ),
    ] = None,
    check_: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless >= 95% in time and <= 0.5% false positives.")
    ] = False,
) -> None:
    """Evaluate behaviour detection: a generated fleet with labelled attacks (and the public data sets).

    Prints the figures as Markdown. Exit 1 with --check when a done criterion is not met.
    """
    from vigil.evaluation.report import markdown, passed, update_document
    from vigil.evaluation.run import evaluate, write_fleet

    err = _err()
    if write_fleet_dir is not None:
        counts = write_fleet(write_fleet_dir, seed=seed, teams=teams, days=days)
        err.print(
            f"wrote {escape(str(write_fleet_dir))}: " + ", ".join(f"{v} {k}" for k, v in counts.items())
        )
        return
    if datasets is not None and not datasets.is_dir():
        _fail(err, "invalid_input", f"data sets folder {str(datasets)!r} not found", BAD_ARGUMENT)
    report = evaluate(
        seeds=seeds,
        seed=seed,
        datasets=datasets,
        teams=teams,
        days=days,
        holdout=holdout,
        progress=lambda m: err.print(escape(m)),
    )
    figures = markdown(report)
    sys.stdout.write(figures)
    try:
        if json_out is not None:
            json_out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        if update_doc is not None:
            update_document(update_doc, figures)
    except (OSError, VigilError) as e:
        _fail(err, "invalid_output", str(getattr(e, "message", e)), BAD_ARGUMENT)
    if check_ and not passed(report):
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()
