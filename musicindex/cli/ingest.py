"""Ingestion and worker commands: `ingest`, `watch`, `status`, `worker`, `scheduler`."""

from __future__ import annotations

import contextlib
import os
import sys

import typer
from rich.table import Table

from musicindex.cli.common import handle_errors, open_index, print_json
from musicindex.cli.render import console, err_console, progress_bar, safe
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
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="analyse failed tracks again (by themselves only environment failures retry)"
    ),
    follow_symlinks: bool | None = typer.Option(
        None, "--follow-symlinks/--no-follow-symlinks", help="follow symlinks leading outside the roots"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Scan PATHS, register new or changed files and queue their analysis on the workers.

    With --wait it returns when every queued file is indexed and embedded in the musicnn space (answerable), or
    failed with a reason."""
    index = open_index()
    progress_cb, finish = progress_bar() if wait and not as_json else (None, lambda: None)
    scanning = None if as_json else err_console.status("scanning ...", spinner="dots")

    def on_scan(report) -> None:
        if scanning is not None:
            scanning.update(
                f"{'scanned' if report.done else 'scanning'}: {report.n_files} audio files in {report.n_dirs} folders"
                + (f", {report.n_errors} unreadable" if report.n_errors else "")
                + ("; registering and queueing ..." if report.done else "")
            )

    try:
        if scanning is not None:
            scanning.start()
        summary = index.ingest(
            paths,
            wait=wait,
            label_from=label_from,
            reanalyse_outdated=reanalyse_outdated,
            retry_failed=retry_failed,
            follow_symlinks=follow_symlinks,
            on_progress=_stop_then(scanning, progress_cb),
            on_scan=on_scan,
        )
    finally:
        if scanning is not None:
            scanning.stop()
        finish()
    if as_json:
        print_json(summary.to_dict())
        return
    print_registration(summary)
    if summary.final is not None:
        console.print(
            f"done in {summary.seconds:.1f} s: {summary.final['indexed']} indexed "
            f"({summary.final['embedded']} in the musicnn space), {summary.final['failed']} failed "
            "(see `musicindex status`)",
            highlight=False,
        )
    elif summary.queued:
        console.print("the workers are on it: `musicindex status` shows progress")


def _stop_then(status, callback):
    """A progress callback that first ends the scanning spinner (the progress bar takes over)."""
    if callback is None:
        return None

    def call(p) -> None:
        if status is not None:
            status.stop()
        callback(p)

    return call


def print_registration(summary) -> None:
    """What a registration found and queued, in one or two lines."""
    pending = ""
    if summary.still_pending:
        pending = f", {summary.still_pending} still pending from earlier ({summary.held} of them held by a job)"
    console.print(
        f"scanned {summary.scanned} files: {summary.new} new, {summary.changed} changed or outdated{pending}, "
        f"{summary.unchanged} unchanged, {summary.missing} now missing; "
        f"queued {len(summary.send_ids)} in {summary.jobs} jobs (batch {summary.batch_id})",
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
        extras.append(f"{len(summary.scan_errors)} scan problems (first: {safe(summary.scan_errors[0])})")
    if summary.protected:
        extras.append(f"{summary.protected} tracks in unreadable or empty folders kept as they were (not missing)")
    if summary.retried:
        extras.append(f"{summary.retried} failed tracks analysed again")
    if extras:
        console.print("  " + "; ".join(extras), highlight=False)


@cli.command()
@handle_errors
def watch(
    paths: list[str] = typer.Argument(..., help="folders (or files) to watch, recursively"),
    label_from: str | None = typer.Option(None, "--label-from", help="training labels from: folder | tag | csv:FILE"),
    settle: float | None = typer.Option(
        None, "--settle", help="seconds without change before a file is queued (default MUSICINDEX_WATCH_SETTLE)"
    ),
    initial_scan: bool = typer.Option(
        True, "--initial-scan/--no-initial-scan", help="ingest the folders once before watching"
    ),
    follow_symlinks: bool | None = typer.Option(
        None, "--follow-symlinks/--no-follow-symlinks", help="follow symlinks leading outside the roots"
    ),
) -> None:
    """Watch PATHS and queue new, changed, moved and deleted files as they happen (Ctrl-C stops).

    A file is queued once it has stopped changing, so one still being copied is not analysed
    half-written. File events do not arrive from network file systems changed elsewhere:
    there, let `musicindex scheduler` rescan (MUSICINDEX_RESCAN_INTERVAL).
    """
    import signal
    import threading
    import time

    index = open_index()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def on_batch(summary) -> None:
        if summary.new or summary.changed or summary.missing or summary.send_ids:
            console.print(time.strftime("%H:%M:%S "), end="", highlight=False)
            print_registration(summary)

    console.print(f"watching {', '.join(safe(p) for p in paths)} (Ctrl-C stops)", highlight=False)
    with contextlib.suppress(KeyboardInterrupt):
        index.ingestion.watch(
            paths,
            label_from=label_from,
            settle=settle,
            initial_scan=initial_scan,
            follow_symlinks=follow_symlinks,
            stop=stop,
            on_batch=on_batch,
        )
    console.print("stopped watching")


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
            fails.add_row(safe(path), safe(reason))
        console.print(fails)
    console.print(
        "queues: "
        + ", ".join(f"{q} {n}" for q, n in report.queues.items())
        + f"; workers answering: {len(report.workers)}",
        highlight=False,
    )
    e = report.embedding or {}
    if e.get("version") is not None:
        console.print(
            f"musicnn space: {e['embedded']} of {e['indexed']} indexed tracks embedded (version {e['version']}, "
            f"{e['state']})",
            highlight=False,
        )
    else:
        console.print("musicnn space: no track embedded yet (`musicindex embed`)", highlight=False)


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
    index = open_index()  # starts the embedded servers; fails early, clearly, when the schema is not migrated
    try:
        from musicindex.ml.keycheck import check_artifact_key

        with index.db.session() as session:  # this host's artifact key must be the one the others sign with
            check_artifact_key(session, get_settings())
    finally:
        index.close()
    argv = [
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
    # the worker proper, in this process but without what the checks loaded (its pool processes inherit its memory)
    os.execv(sys.executable, [sys.executable, "-m", "workers", *argv])


@cli.command()
@handle_errors
def scheduler(loglevel: str = typer.Option("INFO", "--loglevel")) -> None:
    """Run Celery beat with the nightly retrain (MUSICINDEX_RETRAIN_CRON)."""
    from musicindex import servers

    settings = get_settings()
    servers.ensure_broker(settings)
    home = servers.paths_for(settings).home
    home.mkdir(parents=True, exist_ok=True)
    from workers.celery_app import app as celery_app

    celery_app.start(["beat", "--loglevel", loglevel, "-s", str(home / "celerybeat-schedule")])
