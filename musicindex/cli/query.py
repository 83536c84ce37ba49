"""Query commands: similar, recommend, genre, by-genre, cluster, playlist, similar-file, tags, search.

Each is a thin layer over a ``MusicIndex`` query method.
TRACK arguments are a track id or the path the file was ingested under.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from musicindex.cli.common import handle_errors, open_index, print_json, track_arg
from musicindex.cli.render import console, hits_table, safe

if TYPE_CHECKING:
    from musicindex.query.options import SearchOptions

cli = typer.Typer()


def _options(values: dict[str, Any]) -> SearchOptions:
    """The search options of a command's flags (``SearchOptions.parse``: the parser of every surface)."""
    from musicindex.query.options import SearchOptions

    return SearchOptions.parse(values)


def _write_m3u(result: Any, out: Path | None, base: str | None, title: str, quiet: bool = False) -> None:
    """``--m3u FILE``: the answer as an M3U8 playlist (durations from the index; paths absolute or relative, byte-exact
    for names that are not UTF-8)."""
    if out is None:
        return
    from musicindex.playlists import entries, write_m3u8

    index = open_index(broker=False)
    paths = {f.id: f.path for f in index.track_files(result.ids)} if result.ids else {}
    path = write_m3u8(out, entries(index.track_summaries(result.ids), paths), base=base, title=title)
    if not quiet:
        console.print(f"wrote {len(result.ids)} tracks to {path}", highlight=False)


# descriptor filters (issue #30): the same four flags on every similarity command
TEMPO_OPT = typer.Option(None, "--tempo", help="only tracks of this tempo: MIN-MAX BPM ('118-128') or one BPM (+-4 %)")
KEY_OPT = typer.Option(None, "--key", help="only this key ('A minor', 'Am', Camelot '8A') or 'compatible' with the "
                       "seed (same, relative, +-1 on the Camelot wheel)")  # fmt: skip
MOOD_OPT = typer.Option(None, "--mood", help="only tracks with this mood (calm, energetic, happy, sad, aggressive, "
                        "danceable); repeat")  # fmt: skip
ENERGY_OPT = typer.Option(None, "--energy", help="only tracks of this energy: MIN-MAX in 0-1 ('0.6-1')")
HARMONIC_OPT = typer.Option(
    False,
    "--harmonic",
    help="a harmonic mix: each track key-compatible with the one "
    "before and within 8 % of its tempo (or half/double); each transition's reason in --json",
)


def _described(tempo: str | None, key: str | None, mood: list[str] | None, energy: str | None) -> dict[str, Any]:
    return {"tempo": tempo, "key": key, "mood": mood, "energy": energy}


SPACE_HELP = (
    "similarity space: musicnn (pretrained), features (works right after ingestion), ann, cnn; "
    "default: the best available (musicnn once tracks are embedded)"
)


@cli.command()
@handle_errors
def similar(
    track: str = typer.Argument(..., help="track id or path"),
    k: int = typer.Option(10, "-k", "--k", help="how many tracks (1-1000)"),
    space: str | None = typer.Option(None, "--space", help=SPACE_HELP),
    genre: list[str] | None = typer.Option(None, "--genre", help="only tracks of this genre; repeat for several"),
    exclude_same_artist: bool = typer.Option(False, "--exclude-same-artist", help="skip the seed's artist"),
    exclude_same_album: bool = typer.Option(False, "--exclude-same-album", help="skip the seed's album"),
    exact: bool = typer.Option(False, "--exact", help="brute-force search instead of the HNSW index"),
    tag: list[str] | None = typer.Option(None, "--tag", help="only tracks with this musicnn tag; repeat"),
    min_tag_probability: float = typer.Option(0.3, "--min-tag-probability", help="threshold of --tag (0-1)"),
    tempo: str | None = TEMPO_OPT,
    key: str | None = KEY_OPT,
    mood: list[str] | None = MOOD_OPT,
    energy: str | None = ENERGY_OPT,
    m3u: Path | None = typer.Option(None, "--m3u", help="also write the list as an M3U8 playlist to this file"),
    m3u_base: str | None = typer.Option(None, "--m3u-base", help="M3U8 paths relative to this folder"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """The K tracks that sound most like TRACK, each with why it matched."""
    options = _options(
        {"k": k, "space": space, "genre": genre, "exclude_same_artist": exclude_same_artist, "exact": exact,
         "exclude_same_album": exclude_same_album, "tag": tag, "min_tag_probability": min_tag_probability,
         **_described(tempo, key, mood, energy)}
    )  # fmt: skip
    result = open_index(broker=False).similar(track_arg(track), options)
    if as_json:
        print_json(result.to_dict())
    else:
        hits_table(result, f"similar to {track}")
    _write_m3u(result, m3u, m3u_base, f"similar to {track}", quiet=as_json)


@cli.command()
@handle_errors
def recommend(
    like: list[str] = typer.Option(..., "--like", help="a liked track (id or path); repeat"),
    dislike: list[str] | None = typer.Option(None, "--dislike", help="a disliked track; repeat"),
    k: int = typer.Option(10, "-k", "--k", help="how many tracks (1-1000)"),
    space: str | None = typer.Option(None, "--space", help=SPACE_HELP),
    exclude_track: list[str] | None = typer.Option(None, "--exclude-track", help="never suggest this track"),
    exclude_artist: list[str] | None = typer.Option(None, "--exclude-artist", help="never suggest this artist"),
    exclude_genre: list[str] | None = typer.Option(None, "--exclude-genre", help="never suggest this genre"),
    artist_spacing: int = typer.Option(3, "--artist-spacing", help="tracks between two of one artist (0: off)"),
    exact: bool = typer.Option(False, "--exact"),
    harmonic: bool = HARMONIC_OPT,
    tempo: str | None = TEMPO_OPT,
    key: str | None = KEY_OPT,
    mood: list[str] | None = MOOD_OPT,
    energy: str | None = ENERGY_OPT,
    m3u: Path | None = typer.Option(None, "--m3u", help="also write the list as an M3U8 playlist to this file"),
    m3u_base: str | None = typer.Option(None, "--m3u-base", help="M3U8 paths relative to this folder"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Tracks for someone who likes the --like tracks (and not the --dislike ones)."""
    options = _options(
        {"k": k, "space": space, "exclude_track": [track_arg(t) for t in exclude_track or []],
         "exclude_artist": exclude_artist, "exclude_genre": exclude_genre, "artist_spacing": artist_spacing,
         "exact": exact, "harmonic": harmonic, **_described(tempo, key, mood, energy)}
    )  # fmt: skip
    index = open_index(broker=False)
    result = index.recommend([track_arg(t) for t in like], [track_arg(t) for t in dislike or []], options=options)
    if as_json:
        print_json(result.to_dict())
    else:
        hits_table(result, "recommended", score=True)
    _write_m3u(result, m3u, m3u_base, "recommended", quiet=as_json)


@cli.command("genre")
@handle_errors
def genre_cmd(
    track: str = typer.Argument(..., help="track id or path"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The genre model's answer for TRACK: label, confidence, class probabilities."""
    result = open_index(broker=False).genre_of(track_arg(track))
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"[bold]{result.genre}[/] ({result.confidence:.1%})  track {result.track_id}, "
        f"model version {result.model_version_id} ({result.model_kind})"
        + (f", label {result.label}" if result.label else ""),
        highlight=False,
    )
    table = Table("genre", "probability")
    for g, p in sorted(result.probabilities.items(), key=lambda kv: -kv[1]):
        table.add_row(safe(g), f"{p:.3f}")
    console.print(table)


@cli.command("by-genre")
@handle_errors
def by_genre_cmd(
    genre: str = typer.Argument(..., help="a genre (label or genre-model class)"),
    k: int = typer.Option(10, "-k", "--k"),
    m3u: Path | None = typer.Option(None, "--m3u", help="also write the list as an M3U8 playlist to this file"),
    m3u_base: str | None = typer.Option(None, "--m3u-base", help="M3U8 paths relative to this folder"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """K tracks of GENRE, most confident first."""
    result = open_index(broker=False).by_genre(genre, k=k)
    if as_json:
        print_json(result.to_dict())
    else:
        hits_table(result, f"genre {genre}", score=True)
    _write_m3u(result, m3u, m3u_base, f"genre {genre}", quiet=as_json)


@cli.command()
@handle_errors
def cluster(
    track: str = typer.Argument(..., help="track id or path"),
    model: str = typer.Option("kmeans", "--model", help="kmeans, birch or gmm"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The cluster of TRACK in the active clustering."""
    result = open_index(broker=False).cluster_of(track_arg(track), model=model)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"track {result.track_id}: cluster {result.cluster} of {result.model_kind} "
        f"(model version {result.model_version_id}, {result.size} tracks in it)",
        highlight=False,
    )


@cli.command()
@handle_errors
def playlist(
    start: str = typer.Argument(..., help="first track (id or path)"),
    end: str = typer.Argument(..., help="last track (id or path)"),
    n: int = typer.Option(10, "-n", "--n", help="tracks in the playlist, start and end included"),
    space: str | None = typer.Option(None, "--space", help=SPACE_HELP),
    artist_spacing: int = typer.Option(3, "--artist-spacing", help="tracks between two of one artist (0: off)"),
    exclude_artist: list[str] | None = typer.Option(None, "--exclude-artist"),
    exclude_genre: list[str] | None = typer.Option(None, "--exclude-genre"),
    tempo: str | None = TEMPO_OPT,
    key: str | None = KEY_OPT,
    mood: list[str] | None = MOOD_OPT,
    energy: str | None = ENERGY_OPT,
    harmonic: bool = HARMONIC_OPT,
    m3u: Path | None = typer.Option(None, "--m3u", help="also write the list as an M3U8 playlist to this file"),
    m3u_base: str | None = typer.Option(None, "--m3u-base", help="M3U8 paths relative to this folder"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A smooth path of N tracks from START to END."""
    options = _options(
        {"n": n, "space": space, "artist_spacing": artist_spacing, "exclude_artist": exclude_artist,
         "exclude_genre": exclude_genre, "harmonic": harmonic, **_described(tempo, key, mood, energy)}
    )  # fmt: skip
    result = open_index(broker=False).playlist(track_arg(start), track_arg(end), options)
    if as_json:
        print_json(result.to_dict())
    else:
        hits_table(result, f"playlist {start} -> {end}")
    _write_m3u(result, m3u, m3u_base, f"playlist {start} -> {end}", quiet=as_json)


@cli.command("similar-file")
@handle_errors
def similar_file(
    path: str = typer.Argument(..., help="an audio file (analysed, not stored)"),
    k: int = typer.Option(10, "-k", "--k"),
    space: str | None = typer.Option(None, "--space", help=SPACE_HELP),
    tempo: str | None = TEMPO_OPT,
    mood: list[str] | None = MOOD_OPT,
    energy: str | None = ENERGY_OPT,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The K indexed tracks that sound most like an outside audio file."""
    options = _options({"k": k, "space": space, **_described(tempo, None, mood, energy)})
    result = open_index(broker=False).similar_to_file(path, options)
    if as_json:
        print_json(result.to_dict())
    else:
        hits_table(result, f"similar to file {path}")


@cli.command()
@handle_errors
def tags(
    track: str = typer.Argument(..., help="track id or path"),
    n: int = typer.Option(10, "-n", "--n", help="how many tags (1-50)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The most probable musicnn tags of TRACK (rock, jazz, mellow, female vocalists, ...)."""
    result = open_index(broker=False).tags_of(track_arg(track), n=n)
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(
        "tag", "probability", title=f"tags of track {result.track_id} (musicnn version {result.model_version_id})"
    )
    for tag, p in result.tags:
        table.add_row(safe(tag), f"{p:.3f}")
    console.print(table)


@cli.command()
@handle_errors
def search(
    tag: list[str] = typer.Option(..., "--tag", help="a musicnn tag every track must have; repeat"),
    min_probability: float = typer.Option(0.3, "--min-probability", help="least probability of each tag (0-1)"),
    k: int = typer.Option(10, "-k", "--k", help="how many tracks (1-1000)"),
    genre: list[str] | None = typer.Option(None, "--genre", help="only tracks of this genre; repeat for several"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Tracks with all the --tag tags (musicnn), most probable first."""
    options = _options({"tag": tag, "min_probability": min_probability, "k": k, "genre": genre})
    result = open_index(broker=False).search_by_tags((), options)
    if as_json:
        print_json(result.to_dict())
    else:
        hits_table(result, f"tracks tagged {' + '.join(tag)} (>= {min_probability})", score=True)
