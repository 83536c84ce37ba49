"""Administration commands: `services`, `db`, `doctor`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from musicindex.cli.common import handle_errors, open_index, print_json
from musicindex.cli.render import console, doctor_table, safe
from musicindex.config import get_settings

cli = typer.Typer()
services_app = typer.Typer(no_args_is_help=True, help="The embedded PostgreSQL and Redis servers.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema (Alembic migrations).")
cli.add_typer(services_app, name="services")
cli.add_typer(db_app, name="db")


# --------------------------------------------------------------------------- services
@services_app.command("status")
@handle_errors
def services_status(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Show whether the servers run, their pids, URLs and data folders."""
    from musicindex import servers

    rows = servers.status()
    if as_json:
        print_json([r.__dict__ for r in rows])
        return
    table = Table("server", "state", "pid", "version", "url", "data")
    for r in rows:
        state = "[green]running[/]" if r.running else "[yellow]stopped[/]"
        if not r.embedded:
            state = "external"
        url = "\n".join([r.url or "", *(f"TCP: {u}" for u in r.listen)])
        table.add_row(r.name, state, str(r.pid or ""), safe(r.version or ""), safe(url), safe(r.data_dir or ""))
    console.print(table)


@services_app.command("start")
@handle_errors
def services_start(
    listen: str | None = typer.Option(
        None,
        "--listen",
        metavar="ADDR",
        help="also listen on TCP at these addresses of this host (comma-separated; PostgreSQL 5432, Redis 6379), "
        "for workers on other hosts; 'none': unix sockets only again. Kept for later starts.",
    ),
    password_file: Path | None = typer.Option(
        None,
        "--password-file",
        metavar="FILE",
        help="private file whose first line is the password every TCP connection needs (needed with --listen)",
    ),
) -> None:
    """Start the embedded servers (no-op for those given by URL or already running)."""
    from musicindex import servers
    from musicindex.errors import InvalidArgumentError

    if listen is not None or password_file is not None:
        addresses = servers.network.parse_addresses(listen or "")
        if addresses and password_file is None:
            raise InvalidArgumentError("--listen needs --password-file FILE (e.g. `openssl rand -hex 32 > FILE`)")
        if not addresses and password_file is not None and listen is None:
            raise InvalidArgumentError("--password-file goes with --listen ADDR")
        setting = None
        if addresses and password_file is not None:
            setting = servers.Listen(addresses, servers.network.read_password_file(password_file))
        settings = get_settings()
        if not (settings.embedded_database or settings.embedded_broker):
            raise InvalidArgumentError(
                "--listen sets how the embedded servers listen, but MUSICINDEX_DATABASE_URL and MUSICINDEX_BROKER_URL "
                "name servers of your own: configure those servers instead"
            )
        if servers.set_listen(settings, setting):
            console.print("restarting the embedded servers with the new listening setting")
    servers.start()
    services_status(as_json=False)


@services_app.command("stop")
@handle_errors
def services_stop() -> None:
    """Stop the embedded servers of this MUSICINDEX_HOME. Data is kept."""
    from musicindex import servers

    stopped = servers.stop()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


# --------------------------------------------------------------------------- db
@db_app.command("upgrade")
@handle_errors
def db_upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Migrate the schema to REVISION (default: head). Creates the pgvector extension."""
    index = open_index(check_schema=False, broker=False)
    index.upgrade(revision)
    info = index.db.schema_info()
    console.print(f"schema at {info.current} (head {info.head})")


@db_app.command("downgrade")
@handle_errors
def db_downgrade(revision: str = typer.Argument(..., help="target revision, 'base' drops everything")) -> None:
    """Migrate the schema down to REVISION."""
    index = open_index(check_schema=False, broker=False)
    index.db.downgrade(revision)
    console.print(f"schema at {index.db.schema_info().current or 'base'}")


@db_app.command("current")
@handle_errors
def db_current() -> None:
    """Print the schema revision and the head revision."""
    info = open_index(check_schema=False, broker=False).db.schema_info()
    console.print(f"current: {info.current or 'base'}\nhead:    {info.head}")


# --------------------------------------------------------------------------- doctor
@cli.command()
@handle_errors
def doctor(as_json: bool = typer.Option(False, "--json")) -> None:
    """Versions of PostgreSQL, pgvector and Redis, schema revision, data location, live workers."""
    report = open_index(check_schema=False).doctor()
    if as_json:
        print_json(report.to_dict())
    else:
        doctor_table(report)
    if not report.schema_at_head or report.pgvector_available is None:
        raise typer.Exit(4)
