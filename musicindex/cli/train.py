"""Training commands: `train`, `models`, `evaluate`, `report`."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Column, Table

from musicindex.cli.common import handle_errors, open_index, print_json
from musicindex.cli.render import console, safe, versions_table
from musicindex.vocab import TRAINABLE_KINDS

cli = typer.Typer()

models_app = typer.Typer(no_args_is_help=True, help="The model registry: versions, metrics, activation.")
cli.add_typer(models_app, name="models")


@cli.command()
@handle_errors
def train(
    models: str = typer.Option("all", "--models", "-m", help=f"comma-separated: {','.join(TRAINABLE_KINDS)}"),
    wait: bool = typer.Option(False, "--wait", help="wait for the worker to finish and show the result"),
    local: bool = typer.Option(False, "--local", help="train in this process (no worker needed)"),
    test_size: float = typer.Option(0.2, "--test-size", help="held-out fraction of the stratified split (0.4 = 60:40)"),
    seed: int = typer.Option(42, "--seed"),
    cv_folds: int = typer.Option(5, "--cv-folds", help="k-fold of the scikit-learn classifiers (artist-grouped)"),
    net_cv_folds: int = typer.Option(3, "--net-cv-folds", help="stratified k-fold of the ANN / CNN (0: skip)"),
    clusters: int | None = typer.Option(None, "--clusters", help="k of the clusterers (default: silhouette sweep)"),
    quick: bool = typer.Option(False, "--quick", help="small grids and tiny network budgets (smoke runs)"),
    drop_rare_labels: bool = typer.Option(False, "--drop-rare-labels", help="leave out genres with too few tracks"),
    force: bool = typer.Option(
        False, "--force", help="train even if the labelled data has not changed since the active models were trained"
    ),
    inputs: str = typer.Option(
        "auto", "--inputs", help="what the classifiers (not the cnn) read: features, musicnn, or auto (better CV wins)"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train genre classifiers and clusterers on the indexed tracks (queued on the `train` queue).

    A retrained model becomes active only if it is not worse than the active one on held-out
    macro-F1 (silhouette for clusterers), within MUSICINDEX_PROMOTION_TOLERANCE.
    """
    index = open_index()
    options: dict[str, Any] = {
        "test_size": test_size,
        "seed": seed,
        "cv_folds": cv_folds,
        "net_cv_folds": net_cv_folds,
        "n_clusters": clusters,
        "quick": quick,
        "drop_rare_labels": drop_rare_labels,
        "force": force,
        "inputs": inputs,
    }
    if local:
        with console.status("training ...") if not as_json else contextlib.nullcontext():
            res = index.train(
                models,
                local=True,
                on_progress=None if as_json else (lambda msg: console.print(msg, highlight=False)),
                **options,
            )
    else:
        res = index.train(models, wait=wait, **options)
    if as_json:
        print_json(res.to_dict())
        return
    if res.status == "queued":
        console.print(
            f"training queued (task {res.task_id}); a worker on the `train` queue runs it "
            "(`musicindex worker --queues train`). `musicindex models list` shows the result."
        )
        return
    if res.status == "skipped":
        console.print(
            "the labelled data has not changed since the active models were trained: nothing to do "
            "(--force trains anyway)"
        )
        return
    console.print(
        versions_table(res.versions, title=f"training run {res.run_id}: {res.status} in {res.seconds or 0:.1f} s")
    )


@models_app.command("list")
@handle_errors
def models_list(
    kind: str | None = typer.Option(None, "--kind", help="only this kind"),
    state: str | None = typer.Option(None, "--state", help="only this state (active, retired, failed, ...)"),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Model versions, newest first: id, kind, state, created, key metrics, sha256 prefix."""
    rows = open_index(broker=False).models(kind=kind, state=state, limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no model version yet: `musicindex train --wait` (or `--local`) trains them")
        return
    console.print(versions_table(rows))


@models_app.command("show")
@handle_errors
def models_show(
    version_id: int = typer.Argument(..., help="model version id"), as_json: bool = typer.Option(False, "--json")
) -> None:
    """One version: parameters, training-set snapshot and metrics."""
    d = open_index(broker=False).model(version_id)
    if as_json:
        print_json(d)
        return
    console.print(versions_table([d]))
    m = d.get("metrics") or {}
    table = Table("metric", "value", title="metrics")
    for key, val in m.items():
        if key in ("per_class", "confusion_matrix", "history", "sweep"):
            continue
        table.add_row(safe(key), f"{val:.4f}" if isinstance(val, float) else safe(val))
    console.print(table)
    if m.get("per_class"):
        pc = Table("class", "precision", "recall", "f1", "support", title="per class (held-out)")
        for label, row in m["per_class"].items():
            if isinstance(row, dict):
                pc.add_row(
                    safe(label),
                    *(f"{row.get(k, 0):.3f}" for k in ("precision", "recall", "f1-score")),
                    str(int(row.get("support", 0))),
                )
        console.print(pc)
    console.print("params:", d.get("params"), highlight=False)
    snapshot = {k: v for k, v in (d.get("snapshot") or {}).items() if k not in ("feature_names", "heldout_track_ids")}
    if (d.get("snapshot") or {}).get("heldout_track_ids"):
        snapshot["heldout_tracks"] = len(d["snapshot"]["heldout_track_ids"])
    console.print("snapshot:", snapshot, highlight=False)


@models_app.command("promote")
@handle_errors
def models_promote(version_ids: list[int] = typer.Argument(..., help="version ids to activate (one per kind)")) -> None:
    """Activate versions; the active versions of their kinds are retired."""
    retired = open_index(broker=False).promote(version_ids)
    console.print(f"active: {', '.join(map(str, version_ids))}; retired: {', '.join(map(str, retired)) or 'none'}")


@models_app.command("rollback")
@handle_errors
def models_rollback(kind: str = typer.Argument(..., help="model kind, e.g. knn")) -> None:
    """Re-activate the most recently retired version of KIND."""
    d = open_index(broker=False).rollback(kind)
    console.print(f"{kind}: version {d['id']} is active again")


@cli.command()
@handle_errors
def report(out: Path = typer.Option(Path("musicindex-report"), "--out", "-o", help="output folder")) -> None:
    """Write the HTML model report (metrics, confusion matrices, learning curves, maps) to --out."""
    path = open_index(broker=False).report(out)
    console.print(f"report written: {path}")


@cli.command()
@handle_errors
def evaluate(
    labels: str | None = typer.Option(
        None, "--labels", help="csv:FILE of labels not used for training (rows path,label): scored instead"
    ),
    max_tracks: int = typer.Option(20_000, "--max-tracks", help="at most this many tracks take part (2-50000)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Genre precision@10 and hubness of each similarity space and the classifiers' scores, never measured on
    tracks they were trained on (the protocol is printed with the numbers)."""
    report = open_index(broker=False).evaluate(labels=labels, max_tracks=max_tracks)
    if as_json:
        print_json(report.to_dict())
        return

    def pct(x: Any) -> str:
        return "" if x is None or math.isnan(x) else f"{x:.1%}"

    spaces = Table(
        Column("space", no_wrap=True),
        Column("dim", no_wrap=True),
        "queries",
        Column("precision@10", no_wrap=True),
        "other-artist p@10",
        "vote accuracy",
        "hubness (N10 skew)",
        "never in a top 10",
        title="similarity spaces",
    )
    for sp in report.spaces:
        spaces.add_row(
            sp.space + (f" v{sp.model_version_id}" if sp.model_version_id else ""),
            str(sp.dimension),
            str(sp.queries),
            pct(sp.precision_at_10),
            pct(sp.other_artist_precision_at_10),
            pct(sp.accuracy),
            f"{sp.hubness_skewness:.2f}",
            pct(sp.never_in_top10),
        )
    console.print(spaces)
    for sp in report.spaces:
        console.print(f"  {sp.space}: {safe(sp.protocol)}", highlight=False)
    if report.classifiers:
        labelled = labels is not None
        # two tables so that each reads at 80 columns: how the model was chosen, then how it does on
        # tracks it never saw
        chosen = Table(
            Column("classifier", no_wrap=True),
            "input",
            Column("cv accuracy", no_wrap=True),
            "cv macro F1",
            "folds",
            "genre model",
            title="classifiers: cross-validation",
        )
        held = Table(
            Column("classifier", no_wrap=True),
            "held-out accuracy",
            *(("labels-file accuracy", "labels-file macro F1") if labelled else ()),
            "unseen-artist accuracy",
            Column("precision@10", no_wrap=True),
            "other-artist p@10",
            title="classifiers: tracks not trained on",
        )
        for c in report.classifiers:
            name = f"{c.kind} v{c.model_version_id}"
            cv = (
                ""
                if c.cv_accuracy_mean is None
                else f"{c.cv_accuracy_mean:.1%}"
                + (f" ± {c.cv_accuracy_std:.1%}" if c.cv_accuracy_std is not None else "")
            )
            chosen.add_row(
                name, c.input or "", cv, pct(c.cv_macro_f1_mean), c.cv_protocol or "", "yes" if c.genre_model else ""
            )
            file_cols = (pct(c.labels_accuracy), pct(c.labels_macro_f1)) if labelled else ()
            held.add_row(
                name,
                pct(c.accuracy),
                *file_cols,
                pct(c.unseen_artist_accuracy) + (f" ({c.unseen_artist_queries})" if c.unseen_artist_queries else ""),
                pct(c.precision_at_10),
                pct(c.other_artist_precision_at_10),
            )
        console.print(chosen)
        console.print(held)
    else:
        console.print("no classifier trained yet (`musicindex train`)", style="yellow")
    console.print(f"protocol: {safe(report.protocol)}", highlight=False)
    for note in report.notes:
        console.print(f"note: {safe(note)}", highlight=False)


@cli.command()
@handle_errors
def embed(
    wait: bool = typer.Option(False, "--wait", help="wait until the embed jobs are done"),
    local: bool = typer.Option(False, "--local", help="embed in this process (no worker needed)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Embed every indexed track that has no musicnn embedding yet (the pretrained space and its tags).

    New tracks are embedded on the `embed` queue as they are indexed; this is the backfill of a
    library that predates the space, or of a new extractor version (then queries switch to it once
    every track is embedded)."""
    index = open_index(broker=not local)
    summary = index.embed(local=local, wait=wait)
    if as_json:
        print_json(summary.to_dict())
        return
    if not summary.queued:
        console.print(f"every indexed track is embedded (musicnn version {summary.version_id})")
        return
    if local or wait:
        console.print(
            f"embedded {summary.embedded} of {summary.queued} tracks (musicnn version {summary.version_id}); "
            f"{len(summary.failed)} could not be read" + ("; the new version is active" if summary.promoted else ""),
            highlight=False,
        )
    else:
        console.print(
            f"queued {summary.queued} tracks in {summary.jobs} jobs on the embed queue (musicnn version "
            f"{summary.version_id}); `musicindex status` shows the progress",
            highlight=False,
        )
