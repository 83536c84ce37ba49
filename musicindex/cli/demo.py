"""`musicindex demo`: the end-to-end tour on the embedded servers (the sample library comes from
``musicindex.sample``, which never imports the CLI).

1. start the embedded PostgreSQL + pgvector and Redis (or use the configured URLs),
   migrate the schema, print the doctor report;
2. generate a sample library of synthesized music in clearly different styles under
   ``MUSICINDEX_HOME/demo-library`` (reused by the next run);
3. start real Celery workers, ingest the library with a live progress bar, and show
   what was stored;
4. embed every track in the pretrained musicnn space (the `embed` queue) and show a
   track's tags;
5. train every model on the `train` queue (skipped on a second run when the labelled data
   has not changed since the active models were trained), print the metrics table;
6. run example queries (similar in the default space with why each hit matched, in each
   other space, tag search, recommend, by genre, genre of, playlist, query by an outside
   file), the honest evaluation, and write the HTML report; print how to browse it;
7. make the ``demo`` account of the Subsonic API with a random password (printed once) and print how to
   point a music app at the server.

Synthesized styles are separable by construction: the demo proves the plumbing, not the
quality on real music (benchmarks/quality.py measures that on real recordings).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from musicindex.cli.common import handle_errors
from musicindex.cli.render import console as default_console
from musicindex.cli.render import doctor_table, hits_table, progress_bar

DEMO_GENRES = ("ambient", "techno", "rock", "jazz", "classical", "hiphop", "metal", "reggae")
PER_GENRE = 12
CLIP_SECONDS = 30.0

cli = typer.Typer()


@cli.command()
@handle_errors
def demo() -> None:
    """The end-to-end tour: servers, a generated sample library, ingest, training, queries, report."""
    run_demo(default_console)


def run_demo(console: Console) -> None:
    from musicindex import servers
    from musicindex.config import get_settings
    from musicindex.index import MusicIndex
    from musicindex.localworker import LocalWorker
    from musicindex.sample.library import generate_library

    t0 = time.monotonic()
    console.rule("[bold]musicindex demo")
    console.print("1. servers: starting the embedded PostgreSQL + pgvector and Redis if needed ...")
    servers.start()
    index = MusicIndex.connect(check_schema=False)
    index.upgrade()
    home = servers.paths_for().home

    settings = get_settings()
    worker = LocalWorker(settings, name=f"demo-{os.getpid()}", log_path=home / "demo-worker.log")
    with worker:
        console.print(f"worker [bold]{worker.name}[/] started ({settings.worker_concurrency} processes)")
        doctor_table(index.doctor(worker_timeout=1.0))

        library = home / "demo-library"
        console.print(
            f"\n2. sample library: {len(DEMO_GENRES)} styles x {PER_GENRE} clips of {CLIP_SECONDS:.0f} s in {library}"
        )
        t = time.monotonic()
        tracks = generate_library(
            library,
            per_genre=PER_GENRE,
            genres=DEMO_GENRES,
            duration=CLIP_SECONDS,
            formats=("wav", "flac", "ogg", "mp3"),
            seed=2026,
        )
        console.print(
            f"   {len(tracks)} files ready in {time.monotonic() - t:.1f} s "
            "(formats wav, flac, ogg, mp3; tags written with mutagen)"
        )

        console.print("\n3. ingest: real Celery workers analyse every file")
        update, finish = progress_bar()
        try:
            summary = index.ingest([library], wait=True, label_from="folder", on_progress=update)
        finally:
            finish()
        console.print(
            f"   scanned {summary.scanned}: {summary.new} new, {summary.changed} changed, "
            f"{summary.unchanged} unchanged (a second run does no audio work)"
        )
        status = index.status()
        console.print("   " + ", ".join(f"{k} {v}" for k, v in sorted(status.counts.items())), highlight=False)
        _show_features(console, index)

        console.print("\n4. the pretrained musicnn space: every track embedded on the `embed` queue")
        t = time.monotonic()
        embedded = index.embed(wait=True, timeout=1800)
        cov = index.status().embedding or {}
        console.print(
            f"   {embedded.queued} tracks needed embedding, done in {time.monotonic() - t:.1f} s; "
            f"{cov.get('embedded')} of {cov.get('indexed')} indexed tracks are in musicnn version {cov.get('version')}",
            highlight=False,
        )

        console.print(
            "\n5. training: KNN, logistic regression, ANN (each on the 43 features and on the musicnn embedding), "
            "CNN, K-Means, Birch, GMM on the `train` queue"
        )
        t = time.monotonic()
        result = index.train(wait=True, force=False)
        state = getattr(result, "status", None) or "done"
        console.print(f"   training {state} in {time.monotonic() - t:.1f} s", highlight=False)
        _show_models(console, index)

        console.print("\n6. queries")
        _show_queries(console, index, library)

        out = home / "demo-report"
        path = index.report(out)
        console.print(
            f"\n7. report: [bold]{path}[/] (metrics, confusion matrices, learning curves, "
            "silhouette sweep, a map of the tracks)"
        )
    _demo_user(console, index)
    index.close()
    console.print(
        f"\ndemo finished in {time.monotonic() - t0:.1f} s. Data lives in {home}; "
        "`musicindex services stop` stops the servers."
    )
    console.print(
        "browse the demo library in a web browser: run [bold].venv/bin/musicindex serve[/] and open "
        "[bold]http://127.0.0.1:8765/[/] (search, a track's player, similar tracks with why, playlists, the map)"
    )


DEMO_USER = "demo"


def _demo_user(console: Console, index) -> None:
    """The ``demo`` account of the Subsonic API with a new random password (printed once, never stored in the clear)
    and how to point a music app at the server."""
    import secrets

    from musicindex.errors import UserNotFoundError

    password = secrets.token_urlsafe(12)
    try:
        index.users.user(DEMO_USER)
        index.users.set_password(DEMO_USER, password)
    except UserNotFoundError:
        index.users.add_user(DEMO_USER, password)
    console.print(
        f"\n8. music apps: account [bold]{DEMO_USER}[/], password [bold]{password}[/] (shown once; "
        "`musicindex user passwd demo --password-stdin` sets another). Run [bold].venv/bin/musicindex serve[/] and "
        "add a Subsonic server in your app (Symfonium, Feishin, DSub, Substreamer, Supersonic, Tempo, ...): "
        "[bold]http://127.0.0.1:8765[/] (a phone needs --host 0.0.0.0 with MUSICINDEX_API_TOKEN and "
        "MUSICINDEX_ALLOWED_HOSTS set: docs/subsonic.md)",
        highlight=False,
    )


def _show_models(console: Console, index) -> None:
    rows = sorted(index.models(state="active"), key=lambda r: r["kind"])
    table = Table(
        "kind",
        "version",
        "input",
        "held-out accuracy",
        "CV accuracy",
        "CV macro F1",
        "silhouette",
        "seconds",
        title="active models (held-out split 80:20; CV = stratified k-fold mean ± sd; input: the better by CV)",
    )

    def fmt(m: dict, key: str) -> str:
        v = m.get(key)
        return f"{v:.3f}" if isinstance(v, (int, float)) else ""

    for r in rows:
        m = r.get("metrics") or {}
        cv = (
            f"{m['cv_accuracy_mean']:.3f} ± {m.get('cv_accuracy_std', 0):.3f}"
            if isinstance(m.get("cv_accuracy_mean"), (int, float))
            else ""
        )
        secs = r.get("training_seconds")
        table.add_row(
            r["kind"],
            str(r["id"]),
            r.get("input") or "",
            fmt(m, "accuracy"),
            cv,
            fmt(m, "cv_macro_f1_mean"),
            fmt(m, "silhouette"),
            f"{secs:.1f}" if isinstance(secs, (int, float)) else "",
        )
    console.print(table)


def _show_queries(console: Console, index, library: Path) -> None:
    from musicindex.sample.library import write_audio
    from musicindex.sample.synth import synthesize

    with index.db.session() as s:
        from sqlalchemy import text

        seed_a, seed_b, seed_c = s.execute(
            text(
                "SELECT min(id) FILTER (WHERE label = 'jazz'), min(id) FILTER (WHERE label = 'techno'), "
                "min(id) FILTER (WHERE label = 'metal') FROM tracks WHERE status = 'indexed'"
            )
        ).one()
    g = index.genre_of(seed_a)
    top = sorted(g.probabilities.items(), key=lambda kv: -kv[1])[:3]
    console.print(
        f"genre_of(track {seed_a}, labelled {g.label!r}): [bold]{g.genre}[/] "
        f"({', '.join(f'{k} {v:.2f}' for k, v in top)}; {g.model_kind} v{g.model_version_id})"
    )
    tags = index.tags_of(seed_a, n=5)
    console.print(
        f"tags_of(track {seed_a}): "
        + ", ".join(f"{t} {p:.2f}" for t, p in tags.tags)
        + f" (musicnn version {tags.model_version_id})",
        highlight=False,
    )
    best = index.similar(seed_a, k=5)
    hits_table(best, f"similar to track {seed_a} (jazz), default space, with why each hit matched")

    for space in ("features", "ann", "cnn"):
        hits_table(index.similar(seed_a, k=5, space=space), f"similar to track {seed_a} (jazz) in the {space} space")
    tag = tags.tags[0][0]
    hits_table(index.search_by_tags([tag], k=5, min_probability=0.1), f"search_by_tags([{tag!r}])", score=True)
    hits_table(
        index.recommend(liked=[seed_a, seed_b], disliked=[seed_c], k=8),
        f"recommend: liked {seed_a} (jazz) and {seed_b} (techno), disliked {seed_c} (metal)",
        score=True,
    )
    hits_table(index.by_genre("reggae", k=5), "by_genre('reggae')", score=True)
    hits_table(index.playlist(seed_a, seed_b, n=8), f"playlist from {seed_a} (jazz) to {seed_b} (techno)")
    outside = library.parent / "demo-outside-clip.wav"
    write_audio(outside, synthesize("classical", 30.0, 22050, seed=424242), 22050)
    hits_table(index.similar_to_file(outside, k=5), "similar_to_file(a new classical clip, not stored)")
    report = index.evaluate()
    console.print(
        "evaluate (never on tracks a model trained on): "
        + "; ".join(
            f"{sp.space} precision@10 {sp.precision_at_10:.2f} ({sp.queries} held-out queries)" for sp in report.spaces
        ),
        highlight=False,
    )


def _show_features(console: Console, index) -> None:
    from sqlalchemy import text

    with index.db.session() as s:
        rows = s.execute(
            text(
                "SELECT t.label, count(*) AS n, avg(f.tempo) AS tempo, avg(f.spectral_centroid_mean) AS centroid, "
                "avg(f.rms_mean) AS rms, avg(f.zero_crossing_rate_mean) AS zcr "
                "FROM tracks t JOIN track_features f ON f.track_id = t.id "
                "WHERE t.status = 'indexed' GROUP BY t.label ORDER BY t.label"
            )
        ).all()
    table = Table(
        "genre (label)", "tracks", "tempo", "centroid Hz", "rms", "zcr", title="stored features, averaged per genre"
    )
    for r in rows:
        table.add_row(str(r.label), str(r.n), f"{r.tempo:.0f}", f"{r.centroid:.0f}", f"{r.rms:.3f}", f"{r.zcr:.3f}")
    console.print(table)
