"""`musicindex user`: the accounts of the Subsonic API and the web page (add, list, passwd, remove, apikey,
bitrate, logout).

Passwords are read from standard input (``--password-stdin``: the first line) or typed at a hidden prompt; they
are never printed, logged or put in an error message. ``apikey`` prints a new key once (stored as its sha256),
lists the keys (``--list``: ids and dates, never the keys) or revokes one (``--revoke ID``). ``passwd`` revokes the
account's API keys and ends its web sessions; ``logout`` ends its web sessions ("log out everywhere").
"""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from musicindex.cli.common import handle_errors, open_index, print_json
from musicindex.cli.render import console, err_console, safe
from musicindex.errors import InvalidArgumentError

cli = typer.Typer()
user_app = typer.Typer(no_args_is_help=True, help="Accounts of the Subsonic API (music apps) and the web page.")
cli.add_typer(user_app, name="user")

PASSWORD_STDIN = typer.Option(False, "--password-stdin", help="read the password from standard input (first line)")


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if password.endswith("\r"):
            password = password[:-1]
        if not password:
            raise InvalidArgumentError("no password on standard input (give it as the first line)")
        return password
    if not sys.stdin.isatty():
        raise InvalidArgumentError("give the password with --password-stdin (standard input is not a terminal)")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
@handle_errors
def user_add(
    name: str = typer.Argument(..., help="login name (unique in any case; no ':' or control characters)"),
    admin: bool = typer.Option(False, "--admin", help="may start scans and manage every playlist"),
    password_stdin: bool = PASSWORD_STDIN,
) -> None:
    """Add an account (then /rest answers music apps: see docs/subsonic.md)."""
    password = read_password(password_stdin)
    user = open_index(broker=False).users.add_user(name, password, admin=admin)
    console.print(f"user [bold]{safe(user.name)}[/] added{' (admin)' if user.is_admin else ''}", highlight=False)


@user_app.command("list")
@handle_errors
def user_list(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """The accounts (never their passwords)."""
    users = open_index(broker=False).users.list_users()
    if as_json:
        print_json([u.to_dict() for u in users])
        return
    table = Table("name", "admin", "created")
    for u in users:
        table.add_row(safe(u.name), "yes" if u.is_admin else "", u.created_at or "")
    console.print(table)


@user_app.command("passwd")
@handle_errors
def user_passwd(name: str = typer.Argument(..., help="login name"), password_stdin: bool = PASSWORD_STDIN) -> None:
    """Change the password of an account."""
    index = open_index(broker=False)
    index.users.user(name)  # an unknown name is refused before a password is asked for
    keys = len(index.users.api_keys(name))
    user = index.users.set_password(name, read_password(password_stdin))
    console.print(
        f"password of [bold]{safe(user.name)}[/] changed; its web sessions ended and its {keys} API key(s) revoked "
        "(`musicindex user apikey NAME` makes a new one)",
        highlight=False,
    )


@user_app.command("remove")
@handle_errors
def user_remove(name: str = typer.Argument(..., help="login name")) -> None:
    """Delete an account with its API keys, stars, ratings, plays, play queue and playlists."""
    user = open_index(broker=False).users.remove_user(name)
    console.print(f"user [bold]{safe(user.name)}[/] removed", highlight=False)


@user_app.command("apikey")
@handle_errors
def user_apikey(
    name: str = typer.Argument(..., help="login name"),
    list_keys: bool = typer.Option(False, "--list", help="list the account's keys (id, made, last used)"),
    revoke: int | None = typer.Option(None, "--revoke", metavar="ID", help="revoke the key with this id"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output (with --list)"),
) -> None:
    """Print a new API key (OpenSubsonic apiKey) of an account, shown only this once; or list or revoke its keys."""
    users = open_index(broker=False).users
    if list_keys and revoke is not None:
        raise InvalidArgumentError("give --list or --revoke ID, not both")
    if revoke is not None:
        users.revoke_api_key(name, revoke)
        console.print(f"API key {revoke} of [bold]{safe(name)}[/] revoked", highlight=False)
        return
    if list_keys:
        keys = users.api_keys(name)
        if as_json:
            print_json([k.to_dict() for k in keys])
            return
        table = Table("id", "made", "last used")
        for k in keys:
            table.add_row(str(k.id), k.created_at or "", k.last_used_at or "never")
        console.print(table)
        return
    key = users.new_api_key(name)
    print(key)
    err_console.print(
        "(shown once; kept only as its sha256: `musicindex user apikey NAME --list` lists the keys, "
        "`--revoke ID` revokes one)",
        style="dim",
    )


@user_app.command("bitrate")
@handle_errors
def user_bitrate(
    name: str = typer.Argument(..., help="login name"),
    kbps: int | None = typer.Argument(None, help="most kbps of this listener's streams (32-320); 0: no limit"),
) -> None:
    """Show or set the most kilobits per second of an account's streams (music apps get a transcode above it)."""
    index = open_index(broker=False)
    if kbps is None:
        current = index.users.max_bit_rate(index.users.user(name).id)
        console.print(f"{safe(name)}: {f'{current} kbps' if current else 'no limit of its own'}", highlight=False)
        return
    user = index.users.set_max_bit_rate(name, kbps)
    shown = f"{kbps} kbps" if kbps else "no limit of its own"
    console.print(f"streams of [bold]{safe(user.name)}[/]: {shown}", highlight=False)


@user_app.command("logout")
@handle_errors
def user_logout(name: str = typer.Argument(..., help="login name")) -> None:
    """Log an account out everywhere: every web session of theirs ends (API keys and passwords stay)."""
    ended = open_index(broker=False).users.end_sessions(name)
    console.print(f"{ended} web session(s) of [bold]{safe(name)}[/] ended", highlight=False)
