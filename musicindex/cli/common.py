"""What every command shares: error handling, the index connection, JSON output, track arguments."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from musicindex.cli.render import err_console, safe
from musicindex.config import get_settings
from musicindex.errors import MusicIndexError

if TYPE_CHECKING:  # the API is imported when a command runs, not at CLI start-up
    from musicindex.index import MusicIndex

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Library errors become one clear message and the error class's exit code (MUSICINDEX_LOG_LEVEL=DEBUG
    also logs the traceback; the exit code is the same at every log level)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MusicIndexError as exc:
            if logging.getLogger().isEnabledFor(logging.DEBUG):  # the traceback too; the exit code stays
                logging.getLogger("musicindex").debug("%s", type(exc).__name__, exc_info=True)
            err_console.print(f"[bold red]error:[/] {safe(exc, lines=True)}", highlight=False, markup=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def open_index(check_schema: bool = True, broker: bool = True) -> MusicIndex:
    """The index of the configured servers, or of the embedded ones (started here when not running;
    ``broker=False``: only PostgreSQL, for commands that send no task)."""
    from musicindex import servers
    from musicindex.index import MusicIndex

    settings = get_settings()
    servers.ensure_database(settings)
    if broker:
        servers.ensure_broker(settings)
    return MusicIndex.connect(settings=settings, check_schema=check_schema)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str, ensure_ascii=False))


def track_arg(ref: str) -> int | str:
    """A CLI track argument: an integer id, or a path."""
    s = ref.strip()
    return int(s) if s.isdigit() and len(s) < 19 else ref
