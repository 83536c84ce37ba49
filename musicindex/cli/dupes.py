"""Duplicate commands: ``duplicates`` (the groups of files that hold one recording or one song, each with its
preferred file) and ``prefer`` (make a file the preferred one of its groups). Thin layers over
``MusicIndex.duplicates`` and ``MusicIndex.prefer_duplicate``; nothing is ever deleted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from musicindex.cli.common import handle_errors, open_index, print_json, track_arg
from musicindex.cli.render import console, safe

if TYPE_CHECKING:
    from musicindex.query.duplicates import DuplicateGroup

cli = typer.Typer()


def _size(value: float | int | None, unit: str) -> str:
    return f"{value:.0f} {unit}" if value else "?"


def groups_table(groups: list[DuplicateGroup]) -> None:
    if not groups:
        console.print("no duplicate groups (copies are found as files are ingested)")
        return
    for n, g in enumerate(groups, 1):
        table = Table(title=f"{n}. {g.kind} ({g.confidence:.2f}); preferred: {g.preferred} ({safe(g.reason)})",
                      title_justify="left", show_edge=False)  # fmt: skip
        for col in ("", "id", "path", "format", "kbit/s", "Hz", "s"):
            table.add_column(col, overflow="fold")
        for t in g.tracks:
            table.add_row("*" if t.preferred else "", str(t.id), safe(t.path), safe(t.format or "?"),
                          _size(t.bit_rate, ""), _size(t.sample_rate, ""), _size(t.duration, ""))  # fmt: skip
        console.print(table)


@cli.command()
@handle_errors
def duplicates(
    kind: str | None = typer.Option(None, "--kind", help="'recording' (same recording) or 'song' (same song)"),
    limit: int = typer.Option(1000, "--limit", help="at most this many groups (1-1000)"),
    offset: int = typer.Option(0, "--offset", help="skip this many groups"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Groups of files that hold one recording or versions of one song, each with its preferred file (*)."""
    groups = open_index(broker=False).duplicates(kind, limit=limit, offset=offset)
    if as_json:
        print_json([g.to_dict() for g in groups])
    else:
        groups_table(groups)


@cli.command()
@handle_errors
def prefer(
    track: str = typer.Argument(..., help="a track id or the path it was ingested under"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Make TRACK the preferred file of its duplicate groups (what browse lists show once)."""
    groups = open_index(broker=False).prefer_duplicate(track_arg(track))
    if as_json:
        print_json([g.to_dict() for g in groups])
    else:
        groups_table(groups)
