"""Ingestion and worker commands: `ingest`, `status`, `worker`, `scheduler`."""

from __future__ import annotations

import typer
from rich.table import Table

from musicindex.cli.common import handle_errors, open_index, print_json
from musicindex.cli.render import console, progress_bar
from musicindex.config import get_settings

cli = typer.Typer()


@cli.command()
@handle_errors
def ingest(
    paths: list[str] = typer.Argument(..., help="files or folders, scanned recursively"),
    wait: bool = typer.Option(False, "--wait", help="show live progress until every file is indexed or failed"),
    label_from: str | None = typer.Option(None, "--label-from", help="training labels from: folder | tag | csv:FILE"),
    reanalyse_outdated: bool = typer.Option(
        True,
        "--reanalyse-outdated/--no-reanalyse-outdated",
        help="re-run extractors whose version changed, on affected tracks only",
    ),
    follow_symlinks: bool | None = typer.Option(
        None, "--follow-symlinks/--no-follow-symlinks", help="follow symlinks leading outside the roots"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Scan PATHS, register new or changed files and queue their analysis on the workers."""
    index = open_index()
    progress_cb, finish = progress_bar() if wait and not as_json else (None, lambda: None)
    try:
        summary = index.ingest(
            paths,
            wait=wait,
            label_from=label_from,
            reanalyse_outdated=reanalyse_outdated,
            follow_symlinks=follow_symlinks,
            on_progress=progress_cb,
        )
    finally:
        finish()
    if as_json:
        print_json(summary.to_dict())
        return
    console.print(
        f"scanned {summary.scanned} files: {summary.new} new, {summary.changed} changed or outdated, "
        f"{summary.unchanged} unchanged, {summary.missing} now missing; "
        f"queued {summary.queued} in {summary.jobs} jobs (batch {summary.batch_id})",
        highlight=False,
    )
    extras = []
    if summary.ignored:
        extras.append(f"{summary.ignored} non-audio files ignored")
    if summary.skipped_links:
        extras.append(f"{summary.skipped_links} symlinks leading outside the roots not followed")
    if summary.loops:
        extras.append(f"{summary.loops} symlink loops skipped")
    if summary.scan_errors:
        extras.append(f"{len(summary.scan_errors)} unreadable entries (first: {summary.scan_errors[0]})")
    if extras:
        console.print("  " + "; ".join(extras), highlight=False)
    if summary.final is not None:
        console.print(
            f"done in {summary.seconds:.1f} s: {summary.final['indexed']} indexed, "
            f"{summary.final['failed']} failed (see `musicindex status`)",
            highlight=False,
        )
    elif summary.queued:
        console.print("the workers are on it: `musicindex status` shows progress")


@cli.command()
@handle_errors
def status(
    failures: int = typer.Option(10, help="how many of the latest failures to list"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Tracks by status, the latest failures with their reasons, queue depths, live workers."""
    report = open_index().status(failures=failures)
    if as_json:
        print_json(report.to_dict())
        return
    counts = Table("status", "tracks", title="tracks")
    for key in ("indexed", "pending", "failed", "missing"):
        counts.add_row(key, str(report.counts.get(key, 0)))
    console.print(counts)
    if report.failures:
        fails = Table("file", "reason", title="latest failures")
        for path, reason in report.failures:
            fails.add_row(path, reason)
        console.print(fails)
    console.print(
        "queues: "
        + ", ".join(f"{q} {n}" for q, n in report.queues.items())
        + f"; workers answering: {len(report.workers)}",
        highlight=False,
    )


@cli.command()
@handle_errors
def worker(
    queues: str = typer.Option("ingest,embed,train", "--queues", "-Q", help="comma-separated queues to serve"),
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-c", help="worker processes (default: MUSICINDEX_WORKER_CONCURRENCY, one per core)"
    ),
    loglevel: str = typer.Option("INFO", "--loglevel"),
    hostname: str | None = typer.Option(None, "--hostname", "-n", help="node name, e.g. ingest1@%h"),
) -> None:
    """Start a Celery worker (real processes; stops on Ctrl-C, finishing current jobs)."""
    from musicindex.vocab import QUEUES

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(names) - set(QUEUES))
    if unknown or not names:
        raise typer.BadParameter(f"unknown queue(s) {unknown}; choose from {', '.join(QUEUES)}")
    open_index().close()  # starts the embedded servers; fails early, clearly, when the schema is not migrated
    from workers.app import app as celery_app

    argv = [
        "worker",
        "-Q",
        ",".join(names),
        "-c",
        str(concurrency or get_settings().worker_concurrency),
        "--loglevel",
        loglevel,
        "-P",
        "prefork",
    ]
    if hostname:
        argv += ["-n", hostname]
    celery_app.worker_main(argv)


@cli.command()
@handle_errors
def scheduler(loglevel: str = typer.Option("INFO", "--loglevel")) -> None:
    """Run Celery beat with the nightly retrain (MUSICINDEX_RETRAIN_CRON)."""
    from musicindex import services

    settings = get_settings()
    services.ensure_broker(settings)
    home = services.paths_for(settings).home
    home.mkdir(parents=True, exist_ok=True)
    from workers.app import app as celery_app

    celery_app.start(["beat", "--loglevel", loglevel, "-s", str(home / "celerybeat-schedule")])
