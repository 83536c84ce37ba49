"""`musicindex serve`: the HTTP API and web page (see ``musicindex.web`` and docs/web.md)."""

from __future__ import annotations

import typer

from musicindex.cli.common import handle_errors, open_index
from musicindex.cli.render import console

cli = typer.Typer()


@cli.command()
@handle_errors
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="address to listen on (non-loopback needs MUSICINDEX_API_TOKEN)"
    ),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="TCP port"),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level (info shows each request)"),
) -> None:
    """The web page and JSON API over the index (FastAPI on uvicorn; API docs at /api/docs)."""
    from musicindex.config import get_settings
    from musicindex.web import serve as run
    from musicindex.web.security import check_bind

    check_bind(host, get_settings())  # before starting anything
    index = open_index()
    shown = f"[{host}]" if ":" in host else host
    console.print(f"musicindex serving on [bold]http://{shown}:{port}/[/] (API docs: /api/docs); Ctrl-C stops")
    if index.users.has_logins():
        console.print(
            f"music apps (Subsonic): server [bold]http://{shown}:{port}[/], your musicindex user and password"
        )
    else:
        console.print(
            "no /rest (Subsonic API for music apps) until an account exists: "
            "`musicindex user add NAME --password-stdin` (see docs/subsonic.md)"
        )
    run(index, host=host, port=port, log_level=log_level.lower())
