"""``vigil oauth keys|rotate-key|metadata``: the token service's signing keys (``docs/identity.md``).

The keys live in the workspace's state directory (``.vigil/oauth-keys.json``, mode 0600). A
rotation adds a key that signs from then on; the previous one stays published (JWKS) for ``[identity]
token_ttl_s`` plus the clock skew, so tokens it signed keep verifying until they expire. A running
server on the same workspace picks the new key up at its next token.
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from vigil.cli.identity import ByOpt, _by
from vigil.cli.state import JsonOpt, NowOpt, WorkspaceOpt, _change, _out, _print_json
from vigil.identity.report import time_text

oauth_app = typer.Typer(
    help="The token service (OAuth 2.0 for machines): signing keys.", no_args_is_help=True
)


@oauth_app.command("keys")
def oauth_keys(workspace: WorkspaceOpt, now: NowOpt = None, json_: JsonOpt = False) -> None:
    """List the signing keys: the one signing, those retiring (still published) and until when."""
    keys = _change(
        workspace,
        json_,
        now,
        lambda desk, when: desk.signing_keys.describe(when if when is not None else desk.now()),
    )
    if json_:
        _print_json({"keys": keys})
        return
    table = Table("kid", "alg", "state", "created", "retires")
    for k in keys:
        table.add_row(k["kid"], k["alg"], k["state"], time_text(k["created"]), time_text(k["retires"]) or "")
    _out().print(table)


@oauth_app.command("rotate-key")
def oauth_rotate_key(
    workspace: WorkspaceOpt,
    by: ByOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add a new signing key (it signs from now on); the previous one retires after an overlap."""
    kid = _change(workspace, json_, now, lambda desk, when: desk.rotate_signing_key(by=_by(by), now=when))
    if json_:
        _print_json({"kid": kid})
    else:
        _out().print(f"signing with the new key [bold]{escape(kid)}[/]")
