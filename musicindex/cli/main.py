"""The `musicindex` app: the command groups put together, logging, and the entry point ``main``."""

from __future__ import annotations

import logging
import sys

import typer

from musicindex.cli import admin, demo, dupes, ingest, query, train, user, web
from musicindex.cli.render import err_console, safe
from musicindex.config import get_settings
from musicindex.errors import MusicIndexError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Index a music folder and answer genre and 'sounds like' questions.",
)
for _group in (admin, ingest, train, query, dupes, web, user, demo):
    app.registered_commands.extend(_group.cli.registered_commands)
    app.registered_groups.extend(_group.cli.registered_groups)


def main() -> None:
    """Entry point of the `musicindex` command (and of ``python -m musicindex``)."""
    try:
        settings = get_settings()
    except MusicIndexError as exc:
        err_console.print(f"[bold red]error:[/] {safe(exc, lines=True)}")
        sys.exit(exc.exit_code)
    level = getattr(logging, settings.log_level.upper(), logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
