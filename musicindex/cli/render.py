"""Rendering for the terminal: the consoles, tables of results, the progress bar.

Commands and the demo print through these functions, so each kind of result looks the
same wherever it appears.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from musicindex.index import DoctorReport
    from musicindex.ingest.progress import Progress
    from musicindex.query.results import QueryResult

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

_CONTROLS = dict.fromkeys((*range(32), 127, *range(128, 160)))
_CONTROLS.update({ord("\n"): " ", ord("\t"): " ", ord("\r"): " "})
_CONTROLS_KEEP_LINES = {**_CONTROLS, ord("\n"): "\n"}


def safe(value: object, *, lines: bool = False) -> str:
    """Data (titles, paths, tags, reasons, error messages) made safe to print: control characters (terminal
    escape sequences included) removed, Rich markup escaped. ``lines`` keeps line breaks."""
    text = str(value).translate(_CONTROLS_KEEP_LINES if lines else _CONTROLS)
    return escape(text)


def doctor_table(report: DoctorReport) -> None:
    table = Table(title="musicindex doctor", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    ok, bad = "[green]ok[/]", "[red]!![/]"
    table.add_row(
        "PostgreSQL", f"{report.postgres_version}  ({'embedded' if report.embedded_database else 'external'})"
    )
    table.add_row("pgvector", f"{report.pgvector_version or 'not created'} (available: {report.pgvector_available})")
    table.add_row("Redis", f"{report.redis_version}  ({'embedded' if report.embedded_broker else 'external'})")
    table.add_row(
        "schema",
        f"{report.schema_current or 'base'} / head {report.schema_head} {ok if report.schema_at_head else bad}",
    )
    table.add_row("database", safe(report.database_url))
    table.add_row("broker", safe(report.broker_url))
    table.add_row("data folder", safe(report.home))
    table.add_row("workers", safe(", ".join(report.workers)) if report.workers else "none answering")
    console.print(table)
    for p in report.problems:
        console.print(f"  [yellow]-[/] {safe(p, lines=True)}", highlight=False)


def hits_table(result: QueryResult, title: str, score: bool = False) -> None:
    """A list answer (similar, recommend, by_genre, playlist, ...) with the version it came from."""
    where = f"space {result.space}" if result.space else "genre model"
    version = f"model version {result.model_version_id}" if result.model_version_id is not None else "no model"
    extra = f", {result.method}" + (f" ef_search={result.ef_search}" if result.ef_search else "")
    table = Table(
        "#",
        "id",
        "title",
        "artist",
        "album",
        "genre",
        "score" if score else "distance",
        title=f"{safe(title)}  ({where}, {version}{extra})",
    )
    for i, h in enumerate(result.items, 1):
        value = h.score if score else h.distance
        table.add_row(
            str(i),
            str(h.id),
            safe(h.title or h.path),
            safe(h.artist or ""),
            safe(h.album or ""),
            safe(h.genre or ""),
            "" if value is None else f"{value:.4f}",
        )
    console.print(table)
    if not result.items:
        console.print("no tracks match", style="yellow")
    for i, h in enumerate(result.items, 1):
        if h.why:
            console.print(f"  why #{i}: {safe(h.why.get('summary', ''))}", highlight=False)


def metric_text(d: dict[str, Any]) -> str:
    """The key metrics of a model version summary, in one short line."""
    m = d.get("metrics") or {}
    if "accuracy" in m:
        cv = f" cv {m['cv_accuracy_mean']:.3f}±{m['cv_accuracy_std']:.3f}" if "cv_accuracy_mean" in m else ""
        return f"acc {m['accuracy']:.3f} F1 {m.get('macro_f1', 0):.3f}{cv}"
    if "silhouette" in m and m["silhouette"] is not None:
        return f"k {m.get('n_clusters')} sil {m['silhouette']:.3f} DB {m.get('davies_bouldin') or 0:.3f}"
    if d.get("embedding_dim"):
        return f"dim {d['embedding_dim']}"
    return ""


def versions_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table("id", "kind", "state", "created", "key metrics", "train s", "sha256", title=title)
    colors = {"active": "green", "failed": "red", "retired": "dim", "candidate": "yellow", "training": "yellow"}
    for d in rows:
        state = d["state"]
        table.add_row(
            str(d["id"]),
            safe(d["kind"]),
            f"[{colors.get(state, 'white')}]{safe(state)}[/]",
            (d.get("created_at") or "")[:19].replace("T", " "),
            metric_text(d),
            f"{d['training_seconds']:.1f}" if d.get("training_seconds") is not None else "",
            (d.get("sha256") or "")[:12],
        )
    return table


def progress_bar() -> tuple[Callable[[Progress], None], Callable[[], None]]:
    """(update, finish) of a live ingest progress bar on stderr: done, failed, left, rate, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    state: dict[str, Any] = {"task": None, "t0": None}

    def update(p: Progress) -> None:
        if state["task"] is None:
            bar.start()
            state["task"] = bar.add_task("ingest", total=p.total, detail="")
            state["t0"] = time.monotonic()
        rate = p.done / max(time.monotonic() - state["t0"], 1e-6)
        bar.update(
            state["task"],
            completed=p.done,
            detail=f"indexed {p.indexed}"
            + ("" if p.embedded is None else f" (embedded {p.embedded})")
            + f"  failed {p.failed}  left {p.pending}  {rate:.1f} files/s",
        )

    def finish() -> None:
        if state["task"] is not None:
            bar.stop()

    return update, finish
