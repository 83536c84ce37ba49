"""CLI commands for queries: similar, recommend, genre, cluster, playlist, similar-file, evaluate.

Registered on the main app; each is a thin layer over a ``MusicIndex`` query method.
TRACK arguments are a track id or the path the file was ingested under.
"""
from __future__ import annotations

from typing import Any, Optional

import typer
from rich.table import Table

from musicindex.cli import _index, _print_json, app, console, handle_errors  # noqa: F401

SPACE_HELP = "similarity space: features (works right after ingestion), ann, cnn"


def _track(ref: str) -> Any:
    """A CLI track argument: an integer id, or a path."""
    s = ref.strip()
    return int(s) if s.isdigit() and len(s) < 19 else ref


def _print_hits(result: Any, title: str, score: bool = False) -> None:
    where = f"space {result.space}" if result.space else "genre model"
    version = f"model version {result.model_version_id}" if result.model_version_id is not None else "no model"
    extra = f", {result.method}" + (f" ef_search={result.ef_search}" if result.ef_search else "")
    table = Table("#", "id", "title", "artist", "album", "genre", "score" if score else "distance",
                  title=f"{title}  ({where}, {version}{extra})")
    for i, h in enumerate(result.items, 1):
        value = h.score if score else h.distance
        table.add_row(str(i), str(h.id), h.title or h.path, h.artist or "", h.album or "", h.genre or "",
                      "" if value is None else f"{value:.4f}")
    console.print(table)
    if not result.items:
        console.print("no tracks match", style="yellow")


@app.command()
@handle_errors
def similar(
    track: str = typer.Argument(..., help="track id or path"),
    k: int = typer.Option(10, "-k", "--k", help="how many tracks (1-1000)"),
    space: str = typer.Option("features", "--space", help=SPACE_HELP),
    genre: Optional[str] = typer.Option(None, "--genre", help="only tracks of this genre"),
    exclude_same_artist: bool = typer.Option(False, "--exclude-same-artist", help="skip the seed's artist"),
    exact: bool = typer.Option(False, "--exact", help="brute-force search instead of the HNSW index"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """The K tracks that sound most like TRACK."""
    result = _index().similar(_track(track), k=k, space=space, genre=genre,
                              exclude_same_artist=exclude_same_artist, exact=exact)
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_hits(result, f"similar to {track}")


@app.command()
@handle_errors
def recommend(
    like: list[str] = typer.Option(..., "--like", help="a liked track (id or path); repeat"),
    dislike: Optional[list[str]] = typer.Option(None, "--dislike", help="a disliked track; repeat"),
    k: int = typer.Option(10, "-k", "--k", help="how many tracks (1-1000)"),
    space: str = typer.Option("features", "--space", help=SPACE_HELP),
    exclude_track: Optional[list[str]] = typer.Option(None, "--exclude-track", help="never suggest this track"),
    exclude_artist: Optional[list[str]] = typer.Option(None, "--exclude-artist", help="never suggest this artist"),
    exclude_genre: Optional[list[str]] = typer.Option(None, "--exclude-genre", help="never suggest this genre"),
    artist_spacing: int = typer.Option(3, "--artist-spacing", help="tracks between two of one artist (0: off)"),
    exact: bool = typer.Option(False, "--exact"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Tracks for someone who likes the --like tracks (and not the --dislike ones)."""
    result = _index().recommend([_track(t) for t in like], [_track(t) for t in dislike or []], k=k, space=space,
                                exclude_tracks=[_track(t) for t in exclude_track or []],
                                exclude_artists=exclude_artist or [], exclude_genres=exclude_genre or [],
                                artist_spacing=artist_spacing, exact=exact)
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_hits(result, "recommended", score=True)


@app.command("genre")
@handle_errors
def genre_cmd(
    track: str = typer.Argument(..., help="track id or path"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The genre model's answer for TRACK: label, confidence, class probabilities."""
    result = _index().genre_of(_track(track))
    if as_json:
        _print_json(result.to_dict())
        return
    console.print(f"[bold]{result.genre}[/] ({result.confidence:.1%})  track {result.track_id}, "
                  f"model version {result.model_version_id} ({result.model_kind})"
                  + (f", label {result.label}" if result.label else ""), highlight=False)
    table = Table("genre", "probability")
    for g, p in sorted(result.probabilities.items(), key=lambda kv: -kv[1]):
        table.add_row(g, f"{p:.3f}")
    console.print(table)


@app.command("by-genre")
@handle_errors
def by_genre_cmd(
    genre: str = typer.Argument(..., help="a genre (label or genre-model class)"),
    k: int = typer.Option(10, "-k", "--k"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """K tracks of GENRE, most confident first."""
    result = _index().by_genre(genre, k=k)
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_hits(result, f"genre {genre}", score=True)


@app.command()
@handle_errors
def cluster(
    track: str = typer.Argument(..., help="track id or path"),
    model: str = typer.Option("kmeans", "--model", help="kmeans, birch or gmm"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The cluster of TRACK in the active clustering."""
    result = _index().cluster_of(_track(track), model=model)
    if as_json:
        _print_json(result.to_dict())
        return
    console.print(f"track {result.track_id}: cluster {result.cluster} of {result.model_kind} "
                  f"(model version {result.model_version_id}, {result.size} tracks in it)", highlight=False)


@app.command()
@handle_errors
def playlist(
    start: str = typer.Argument(..., help="first track (id or path)"),
    end: str = typer.Argument(..., help="last track (id or path)"),
    n: int = typer.Option(10, "-n", "--n", help="tracks in the playlist, start and end included"),
    space: str = typer.Option("features", "--space", help=SPACE_HELP),
    artist_spacing: int = typer.Option(3, "--artist-spacing", help="tracks between two of one artist (0: off)"),
    exclude_artist: Optional[list[str]] = typer.Option(None, "--exclude-artist"),
    exclude_genre: Optional[list[str]] = typer.Option(None, "--exclude-genre"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A smooth path of N tracks from START to END."""
    result = _index().playlist(_track(start), _track(end), n=n, space=space, artist_spacing=artist_spacing,
                               exclude_artists=exclude_artist or [], exclude_genres=exclude_genre or [])
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_hits(result, f"playlist {start} -> {end}")


@app.command("similar-file")
@handle_errors
def similar_file(
    path: str = typer.Argument(..., help="an audio file (analysed, not stored)"),
    k: int = typer.Option(10, "-k", "--k"),
    space: str = typer.Option("features", "--space", help=SPACE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The K indexed tracks that sound most like an outside audio file."""
    result = _index().similar_to_file(path, k=k, space=space)
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_hits(result, f"similar to file {path}")


@app.command()
@handle_errors
def evaluate(as_json: bool = typer.Option(False, "--json")) -> None:
    """Genre precision@10 and hubness of each similarity space; classifiers' cross-validated accuracy."""
    report = _index().evaluate()
    if as_json:
        _print_json(report.to_dict())
        return

    def pct(x: Any) -> str:
        return "" if x is None else f"{x:.1%}"

    spaces = Table("space", "model version", "dim", "tracks", "precision@10", "hubness (N10 skew)",
                   "never in a top 10", title=f"similarity spaces ({report.sampled_tracks} of "
                                              f"{report.labelled_tracks} labelled tracks)")
    for s in report.spaces:
        spaces.add_row(s.space, str(s.model_version_id or "-"), str(s.dimension), str(s.tracks),
                       pct(s.precision_at_10), f"{s.hubness_skewness:.2f}", pct(s.never_in_top10))
    console.print(spaces)
    if report.classifiers:
        cls = Table("classifier", "model version", "cv accuracy", "held-out accuracy", "macro F1", "genre model",
                    title="classifiers (registry metrics)")
        for c in report.classifiers:
            cv = "" if c.cv_accuracy_mean is None else (
                f"{c.cv_accuracy_mean:.1%}" + (f" ± {c.cv_accuracy_std:.1%}" if c.cv_accuracy_std is not None else ""))
            cls.add_row(c.kind, str(c.model_version_id), cv, pct(c.accuracy), pct(c.macro_f1),
                        "yes" if c.genre_model else "")
        console.print(cls)
    else:
        console.print("no classifier trained yet (`musicindex train`)", style="yellow")
