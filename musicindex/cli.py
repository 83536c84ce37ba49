"""The `musicindex` command: a thin layer over the Python API (``MusicIndex``).

Errors from the library are printed as one clear message (no traceback) and exit with
the error class's ``exit_code``; ``MUSICINDEX_LOG_LEVEL=DEBUG`` shows tracebacks.
"""
from __future__ import annotations

import functools
import json
import logging
import sys
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from musicindex.config import get_settings
from musicindex.errors import MusicIndexError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Index a music folder and answer genre and 'sounds like' questions.")
services_app = typer.Typer(no_args_is_help=True, help="The embedded PostgreSQL and Redis servers.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema (Alembic migrations).")
app.add_typer(services_app, name="services")
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def handle_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MusicIndexError as exc:
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(exc.exit_code) from None
    return wrapper


def _index(check_schema: bool = True):
    from musicindex.api import MusicIndex

    return MusicIndex.connect(check_schema=check_schema)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str, ensure_ascii=False))


# --------------------------------------------------------------------------- services
@services_app.command("status")
@handle_errors
def services_status(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Show whether the servers run, their pids, URLs and data folders."""
    from musicindex import services

    rows = services.status()
    if as_json:
        _print_json([r.__dict__ for r in rows])
        return
    table = Table("server", "state", "pid", "version", "url", "data")
    for r in rows:
        state = "[green]running[/]" if r.running else "[yellow]stopped[/]"
        if not r.embedded:
            state = "external"
        table.add_row(r.name, state, str(r.pid or ""), r.version or "", r.url or "", str(r.data_dir or ""))
    console.print(table)


@services_app.command("start")
@handle_errors
def services_start() -> None:
    """Start the embedded servers (no-op for those given by URL or already running)."""
    from musicindex import services

    services.start()
    services_status(as_json=False)


@services_app.command("stop")
@handle_errors
def services_stop() -> None:
    """Stop the embedded servers of this MUSICINDEX_HOME. Data is kept."""
    from musicindex import services

    stopped = services.stop()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


# --------------------------------------------------------------------------- db
@db_app.command("upgrade")
@handle_errors
def db_upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Migrate the schema to REVISION (default: head). Creates the pgvector extension."""
    index = _index(check_schema=False)
    index.upgrade(revision)
    info = index.db.schema_info()
    console.print(f"schema at {info.current} (head {info.head})")


@db_app.command("downgrade")
@handle_errors
def db_downgrade(revision: str = typer.Argument(..., help="target revision, 'base' drops everything")) -> None:
    """Migrate the schema down to REVISION."""
    index = _index(check_schema=False)
    index.db.downgrade(revision)
    console.print(f"schema at {index.db.schema_info().current or 'base'}")


@db_app.command("current")
@handle_errors
def db_current() -> None:
    """Print the schema revision and the head revision."""
    info = _index(check_schema=False).db.schema_info()
    console.print(f"current: {info.current or 'base'}\nhead:    {info.head}")


# --------------------------------------------------------------------------- doctor
@app.command()
@handle_errors
def doctor(as_json: bool = typer.Option(False, "--json")) -> None:
    """Versions of PostgreSQL, pgvector and Redis, schema revision, data location, live workers."""
    report = _index(check_schema=False).doctor()
    if as_json:
        _print_json(report.to_dict())
    else:
        print_doctor(report)
    if not report.schema_at_head or report.pgvector_available is None:
        raise typer.Exit(4)


def print_doctor(report) -> None:
    table = Table(title="musicindex doctor", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    ok, bad = "[green]ok[/]", "[red]!![/]"
    table.add_row("PostgreSQL", f"{report.postgres_version}  ({'embedded' if report.embedded_database else 'external'})")
    table.add_row("pgvector", f"{report.pgvector_version or 'not created'} (available: {report.pgvector_available})")
    table.add_row("Redis", f"{report.redis_version}  ({'embedded' if report.embedded_broker else 'external'})")
    table.add_row("schema", f"{report.schema_current or 'base'} / head {report.schema_head} "
                  f"{ok if report.schema_at_head else bad}")
    table.add_row("database", report.database_url)
    table.add_row("broker", report.broker_url)
    table.add_row("data folder", report.home)
    table.add_row("workers", ", ".join(report.workers) if report.workers else "none answering")
    console.print(table)
    for p in report.problems:
        console.print(f"  [yellow]-[/] {p}", highlight=False)


# --------------------------------------------------------------------------- ingestion
@app.command()
@handle_errors
def ingest(
    paths: list[str] = typer.Argument(..., help="files or folders, scanned recursively"),
    wait: bool = typer.Option(False, "--wait", help="show live progress until every file is indexed or failed"),
    label_from: Optional[str] = typer.Option(None, "--label-from",
                                             help="training labels from: folder | tag | csv:FILE"),
    reanalyse_outdated: bool = typer.Option(True, "--reanalyse-outdated/--no-reanalyse-outdated",
                                            help="re-run extractors whose version changed, on affected tracks only"),
    follow_symlinks: Optional[bool] = typer.Option(None, "--follow-symlinks/--no-follow-symlinks",
                                                   help="follow symlinks leading outside the roots"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Scan PATHS, register new or changed files and queue their analysis on the workers."""
    index = _index()
    progress_cb, finish = (_progress_bar() if wait and not as_json else (None, lambda: None))
    try:
        summary = index.ingest(paths, wait=wait, label_from=label_from, reanalyse_outdated=reanalyse_outdated,
                               follow_symlinks=follow_symlinks, on_progress=progress_cb)
    finally:
        finish()
    if as_json:
        _print_json(summary.to_dict())
        return
    console.print(
        f"scanned {summary.scanned} files: {summary.new} new, {summary.changed} changed or outdated, "
        f"{summary.unchanged} unchanged, {summary.missing} now missing; "
        f"queued {summary.queued} in {summary.jobs} jobs (batch {summary.batch_id})", highlight=False)
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
        console.print(f"done in {summary.seconds:.1f} s: {summary.final['indexed']} indexed, "
                      f"{summary.final['failed']} failed (see `musicindex status`)", highlight=False)
    elif summary.queued:
        console.print("the workers are on it: `musicindex status` shows progress")


def _progress_bar():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    bar = Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err_console,
                   transient=False)
    state: dict = {"task": None, "t0": None}

    def update(p) -> None:
        import time

        if state["task"] is None:
            bar.start()
            state["task"] = bar.add_task("ingest", total=p.total, detail="")
            state["t0"] = time.monotonic()
        elapsed = max(time.monotonic() - state["t0"], 1e-6)
        rate = p.done / elapsed
        bar.update(state["task"], completed=p.done,
                   detail=f"indexed {p.indexed}  failed {p.failed}  left {p.pending}  {rate:.1f} files/s")

    def finish() -> None:
        if state["task"] is not None:
            bar.stop()

    return update, finish


@app.command()
@handle_errors
def status(
    failures: int = typer.Option(10, help="how many of the latest failures to list"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Tracks by status, the latest failures with their reasons, queue depths, live workers."""
    report = _index().status(failures=failures)
    if as_json:
        _print_json(report.to_dict())
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
    console.print("queues: " + ", ".join(f"{q} {n}" for q, n in report.queues.items())
                  + f"; workers answering: {len(report.workers)}", highlight=False)


@app.command()
@handle_errors
def worker(
    queues: str = typer.Option("ingest,embed,train", "--queues", "-Q", help="comma-separated queues to serve"),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", "-c",
                                              help="worker processes (default: MUSICINDEX_WORKER_CONCURRENCY, "
                                                   "one per core)"),
    loglevel: str = typer.Option("INFO", "--loglevel"),
    hostname: Optional[str] = typer.Option(None, "--hostname", "-n", help="node name, e.g. ingest1@%h"),
) -> None:
    """Start a Celery worker (real processes; stops on Ctrl-C, finishing current jobs)."""
    from musicindex.taskclient import QUEUES

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(names) - set(QUEUES))
    if unknown or not names:
        raise typer.BadParameter(f"unknown queue(s) {unknown}; choose from {', '.join(QUEUES)}")
    from musicindex import services

    services.ensure_database()
    _index()  # fails early, clearly, when the schema is not migrated
    from workers.app import app as celery_app

    argv = ["worker", "-Q", ",".join(names), "-c", str(concurrency or get_settings().worker_concurrency),
            "--loglevel", loglevel, "-P", "prefork"]
    if hostname:
        argv += ["-n", hostname]
    celery_app.worker_main(argv)


@app.command()
@handle_errors
def scheduler(loglevel: str = typer.Option("INFO", "--loglevel")) -> None:
    """Run Celery beat with the nightly retrain (MUSICINDEX_RETRAIN_CRON)."""
    from musicindex import services

    home = services.paths_for().home
    home.mkdir(parents=True, exist_ok=True)
    from workers.app import app as celery_app

    celery_app.start(["beat", "--loglevel", loglevel, "-s", str(home / "celerybeat-schedule")])


# --------------------------------------------------------------------------- demo
@app.command()
@handle_errors
def demo() -> None:
    """Run the end-to-end demo (services, migrations, doctor; more as features land)."""
    from musicindex.demo import run_demo

    run_demo(console)


def _register_command_modules() -> None:
    from musicindex import cli_query, cli_train  # noqa: F401  (they add their commands to `app`)


def main() -> None:
    settings = get_settings() if _settings_ok() else None
    level = getattr(logging, (settings.log_level if settings else "WARNING").upper(), logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    _register_command_modules()
    app()


def _settings_ok() -> bool:
    try:
        get_settings()
        return True
    except MusicIndexError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    # run the imported module's main, so command modules register on the same `app`
    from musicindex.cli import main as _main

    _main()
