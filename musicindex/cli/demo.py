"""`musicindex demo`: the end-to-end tour (see ``musicindex.sample.demo``)."""

from __future__ import annotations

import typer

from musicindex.cli.common import handle_errors
from musicindex.cli.render import console

cli = typer.Typer()


@cli.command()
@handle_errors
def demo() -> None:
    """The end-to-end tour: servers, a generated sample library, ingest, training, queries, report."""
    from musicindex.sample.demo import run_demo

    run_demo(console)
