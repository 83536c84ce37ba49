"""The SQL predicates of the search options: a query's :class:`~musicindex.query.options.SearchOptions` resolved in
its snapshot (:class:`Filters`), and one predicate function per filter (``PREDICATES``).

The vector search (``query.search``) and the tag search put ``where(filters, sql)`` into their WHERE clause: each
predicate reads its option (and what ``Filters.resolve`` looked up: the excluded track ids, the seeds' artists and
albums, the checked genres and tags) and returns one SQL condition, or None when the option is not set. Values are
always parameters (``sql.params``), never SQL text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from musicindex.dupes import links as dupes
from musicindex.errors import InvalidArgumentError
from musicindex.query.descriptor_options import COMPATIBLE, compatible
from musicindex.query.options import DEFAULT, SearchOptions
from musicindex.query.snapshot import Snapshot
from musicindex.query.tags import TagFilter, check_tag_filter, tag_condition


@dataclass(frozen=True)
class Filters:
    """``options`` resolved in a snapshot: what the predicates read.

    ``exclude_ids``: tracks that never appear (the options' excluded tracks, the seeds, what an answer already
    holds); ``genres`` / ``exclude_genres``: checked against the known genres (UnknownGenreError otherwise);
    ``exclude_artists``: lower-cased, the options' and, with ``exclude_same_artist``, the seeds' artists;
    ``exclude_albums``: with ``exclude_same_album``, the seeds' album ids; ``tags``: the checked tag filter;
    ``duplicate_ids``: unless ``allow_duplicates``, the other files of the duplicate groups of the excluded tracks
    (seeds, what the answer holds already: a radio's history).
    """

    options: SearchOptions = DEFAULT
    exclude_ids: tuple[int, ...] = ()
    genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    exclude_artists: tuple[str, ...] = ()
    exclude_albums: tuple[int, ...] = ()
    tags: TagFilter | None = None
    keys: tuple[str, ...] = ()
    """Camelot codes a track's key must be one of (``key``; with ``compatible``, those of the seeds' keys)."""
    duplicate_ids: tuple[int, ...] = ()

    @classmethod
    def resolve(
        cls, snap: Snapshot, options: SearchOptions, seeds: Sequence[int] = (), exclude_ids: Iterable[int] = ()
    ) -> Filters:
        """The filters of ``options`` in ``snap`` for a question about the tracks ``seeds`` (which never appear);
        TrackNotFoundError for an unknown excluded track, UnknownGenreError for an unknown genre, an
        InvalidArgumentError naming close tags for an unknown tag."""
        genres = tuple(snap.check_genre(g) for g in options.genres)
        exclude_genres = tuple(snap.check_genre(g) for g in options.exclude_genres)
        ids = {*snap.track_ids(options.exclude_tracks), *(int(s) for s in seeds), *(int(i) for i in exclude_ids)}
        artists = {a.lower() for a in options.exclude_artists}
        albums: set[int] = set()
        if seeds and (options.exclude_same_artist or options.exclude_same_album):
            for row in snap.all(
                "SELECT lower(artist) AS artist, album_id FROM tracks WHERE id = ANY(%(ids)s)",
                {"ids": [int(s) for s in seeds]},
            ):
                if options.exclude_same_artist and row.artist:
                    artists.add(row.artist)
                if options.exclude_same_album and row.album_id is not None:
                    albums.add(int(row.album_id))
        tags = check_tag_filter(snap, list(options.tags), options.min_tag_probability) if options.tags else None
        keys = seed_keys(snap, seeds) if options.key == COMPATIBLE else (options.key,) if options.key else ()
        twins = _twins(snap, options, ids)
        return cls(options, tuple(sorted(ids)), genres, exclude_genres, tuple(sorted(artists)), tuple(sorted(albums)),
                   tags, keys, tuple(sorted(twins - ids)))  # fmt: skip

    def excluding(self, ids: Iterable[int], snap: Snapshot | None = None) -> Filters:
        """These filters, also leaving out ``ids`` (and, given ``snap`` and unless ``allow_duplicates``, the other
        files of their duplicate groups)."""
        new = {int(i) for i in ids} - set(self.exclude_ids)
        twins = _twins(snap, self.options, new) if snap is not None else set()
        return replace(self, exclude_ids=tuple(sorted({*self.exclude_ids, *new})),
                       duplicate_ids=tuple(sorted({*self.duplicate_ids, *twins})))  # fmt: skip


def _twins(snap: Snapshot, options: SearchOptions, ids: set[int]) -> set[int]:
    """The other files of the duplicate groups of ``ids`` (none with ``allow_duplicates``)."""
    if options.allow_duplicates:
        return set()
    return {t for members in dupes.twins(snap.conn, ids).values() for t in members}


@dataclass
class Sql:
    """Where the predicates write: the candidate's track id column, its tracks row's alias, the genre expression
    (``Snapshot.genre_join``) and the statement's parameters."""

    track_id: str
    genre: str
    params: dict[str, Any] = field(default_factory=dict)
    tracks: str = "t"


Predicate = Callable[[Filters, Sql], "str | None"]


def _exclude_ids(f: Filters, q: Sql) -> str | None:
    if not f.exclude_ids:
        return None
    q.params["xids"] = list(f.exclude_ids)
    return f"{q.track_id} <> ALL(%(xids)s)"


def _duplicates(f: Filters, q: Sql) -> str | None:
    if not f.duplicate_ids:
        return None
    q.params["xdup"] = list(f.duplicate_ids)
    return f"{q.track_id} <> ALL(%(xdup)s)"


def _genres(f: Filters, q: Sql) -> str | None:
    if not f.genres:
        return None
    q.params["genres"] = list(f.genres)
    return f"{q.genre} = ANY(%(genres)s)"


def _exclude_genres(f: Filters, q: Sql) -> str | None:
    if not f.exclude_genres:
        return None
    q.params["xgen"] = list(f.exclude_genres)
    return f"({q.genre} IS NULL OR {q.genre} <> ALL(%(xgen)s))"


def _exclude_artists(f: Filters, q: Sql) -> str | None:
    if not f.exclude_artists:
        return None
    q.params["xart"] = list(f.exclude_artists)
    return f"({q.tracks}.artist IS NULL OR lower({q.tracks}.artist) <> ALL(%(xart)s))"


def _exclude_albums(f: Filters, q: Sql) -> str | None:
    if not f.exclude_albums:
        return None
    q.params["xalb"] = list(f.exclude_albums)
    return f"({q.tracks}.album_id IS NULL OR {q.tracks}.album_id <> ALL(%(xalb)s))"


def _tags(f: Filters, q: Sql) -> str | None:
    return tag_condition(f.tags, q.track_id, q.params) if f.tags is not None else None


# --------------------------------------------------------------------------- descriptors (issue #30)
def seed_keys(snap: Snapshot, seeds: Sequence[int]) -> tuple[str, ...]:
    """The Camelot codes compatible with the seeds' keys (``key=compatible``); InvalidArgumentError when no seed
    has a known key (or there is no seed)."""
    if not seeds:
        raise InvalidArgumentError(
            "key='compatible' needs a seed track (similar, playlist, radio, instant mix); name a key instead, "
            "e.g. 'A minor' or '8A'"
        )
    codes = snap.all(
        "SELECT camelot FROM track_descriptors WHERE track_id = ANY(%(ids)s) AND camelot IS NOT NULL",
        {"ids": [int(s) for s in seeds]},
    )
    if not codes:
        raise InvalidArgumentError(
            "key='compatible': the seed track has no known key (atonal, modulating, unpitched or not analysed "
            "yet: `musicindex ingest` fills the descriptors); name a key instead, e.g. 'A minor' or '8A'"
        )
    return tuple(sorted({c for (code,) in codes for c in compatible(code)}))


def _described(q: Sql, cond: str) -> str:
    return f"EXISTS (SELECT 1 FROM track_descriptors dsc WHERE dsc.track_id = {q.track_id} AND {cond})"


def _tempo(f: Filters, q: Sql) -> str | None:
    if f.options.tempo is None:
        return None
    q.params["tempo_lo"], q.params["tempo_hi"] = f.options.tempo
    return _described(q, "dsc.tempo BETWEEN %(tempo_lo)s AND %(tempo_hi)s")


def _key(f: Filters, q: Sql) -> str | None:
    if not f.keys:
        return None
    q.params["camelot"] = list(f.keys)
    return _described(q, "dsc.camelot = ANY(%(camelot)s)")


def _moods(f: Filters, q: Sql) -> str | None:
    if not f.options.moods:
        return None
    q.params["moods"] = list(f.options.moods)
    return _described(q, "dsc.moods @> %(moods)s::text[]")


def _energy(f: Filters, q: Sql) -> str | None:
    if f.options.energy is None:
        return None
    q.params["energy_lo"], q.params["energy_hi"] = f.options.energy
    return _described(q, "dsc.energy BETWEEN %(energy_lo)s AND %(energy_hi)s")


PREDICATES: tuple[Predicate, ...] = (_exclude_ids, _genres, _exclude_genres, _exclude_artists, _exclude_albums, _tags,
                                     _tempo, _key, _moods, _energy, _duplicates)  # fmt: skip
"""One SQL condition per filter, in this order (a new filter adds its function here)."""


def where(f: Filters, q: Sql) -> list[str]:
    """The conditions of the filters that are set."""
    return [cond for predicate in PREDICATES if (cond := predicate(f, q)) is not None]
