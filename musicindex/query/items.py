"""Typed results of the catalog (``musicindex.query.catalog``): songs, albums, artists, genres, playlists, a
listener's queue and what is playing, search pages, folder directories, cover sources, sonic matches.

Everything a music app shows, with the listener's annotation on each item. Times are ISO 8601 in UTC with
milliseconds (``2026-12-02T10:00:00.000Z``). Every object serializes with ``to_dict()`` (JSON-ready).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any


def iso(value: dt.datetime | None) -> str | None:
    """A timestamp as ISO 8601 in UTC with milliseconds and ``Z`` (None stays None)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True)
class Annotation:
    """A listener's relation to an item: starred (when), rating (1-5), plays, last played."""

    starred: str | None = None
    rating: int | None = None
    play_count: int = 0
    played: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NO_ANNOTATION = Annotation()


@dataclass(frozen=True)
class ReplayGain:
    """ReplayGain 2.0 of a song as OpenSubsonic's ``replayGain``: gains in dB (-18 LUFS reference), peaks linear
    (1.0 = full scale; the true peak)."""

    track_gain: float | None
    album_gain: float | None
    track_peak: float | None
    album_peak: float | None

    @classmethod
    def of(cls, *values: float | None) -> ReplayGain | None:
        """None when nothing is known (not measured yet, or a silent window)."""
        return cls(*values) if any(v is not None for v in values) else None


@dataclass(frozen=True)
class Song:
    """An indexed track as a music app shows it (``path``: relative to its music folder)."""

    id: int
    title: str
    album_id: int | None
    album: str | None
    artist_id: int | None
    artist: str | None
    album_artist_id: int | None
    track: int | None
    disc: int | None
    year: int | None
    genres: tuple[str, ...]
    size: int | None
    suffix: str
    content_type: str
    duration: float | None
    bit_rate: int | None
    path: str
    created: str | None
    has_cover: bool
    musicbrainz_id: str | None
    bpm: int | None
    """The measured tempo (``track_descriptors``), None when the track has no steady beat."""
    moods: tuple[str, ...]
    annotation: Annotation = NO_ANNOTATION
    replay_gain: ReplayGain | None = None

    @property
    def genre(self) -> str | None:
        return self.genres[0] if self.genres else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["genre"] = self.genre
        return d


@dataclass(frozen=True)
class Album:
    id: int
    name: str
    sort_name: str
    artist_id: int
    artist: str
    song_count: int
    duration: float
    year: int | None
    genre: str | None
    created: str | None
    has_cover: bool
    musicbrainz_id: str | None
    annotation: Annotation = NO_ANNOTATION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Artist:
    id: int
    name: str
    sort_name: str
    album_count: int
    has_cover: bool
    musicbrainz_id: str | None
    annotation: Annotation = NO_ANNOTATION

    @property
    def index_letter(self) -> str:
        from musicindex.textnorm import index_letter

        return index_letter(self.name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ArtistDetail:
    artist: Artist
    albums: list[Album]

    def to_dict(self) -> dict[str, Any]:
        return {"artist": self.artist.to_dict(), "albums": [a.to_dict() for a in self.albums]}


@dataclass(frozen=True)
class AlbumDetail:
    album: Album
    songs: list[Song]

    def to_dict(self) -> dict[str, Any]:
        return {"album": self.album.to_dict(), "songs": [s.to_dict() for s in self.songs]}


@dataclass(frozen=True)
class IndexGroup:
    """Artists under one index letter (``#`` for names that start with no letter)."""

    letter: str
    artists: list[Artist]

    def to_dict(self) -> dict[str, Any]:
        return {"letter": self.letter, "artists": [a.to_dict() for a in self.artists]}


@dataclass(frozen=True)
class Genre:
    name: str
    song_count: int
    album_count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: artists, albums and songs (each with its own count and offset)."""

    query: str
    artists: list[Artist]
    albums: list[Album]
    songs: list[Song]

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "artists": [a.to_dict() for a in self.artists],
            "albums": [a.to_dict() for a in self.albums],
            "songs": [s.to_dict() for s in self.songs],
        }


@dataclass(frozen=True)
class Starred:
    artists: list[Artist]
    albums: list[Album]
    songs: list[Song]

    def to_dict(self) -> dict[str, Any]:
        return {
            "artists": [a.to_dict() for a in self.artists],
            "albums": [a.to_dict() for a in self.albums],
            "songs": [s.to_dict() for s in self.songs],
        }


@dataclass(frozen=True)
class Playlist:
    id: int
    name: str
    comment: str | None
    owner: str
    owner_id: int
    public: bool
    song_count: int
    duration: float
    created: str | None
    changed: str | None
    cover_album_id: int | None
    songs: list[Song] | None = None
    """The entries in order (None: not asked for, as in a list of playlists)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["songs"] = None if self.songs is None else [s.to_dict() for s in self.songs]
        return d


@dataclass(frozen=True)
class PlayQueue:
    username: str
    songs: list[Song]
    current: int | None
    position_ms: int
    changed: str | None
    changed_by: str | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["songs"] = [s.to_dict() for s in self.songs]
        return d


@dataclass(frozen=True)
class NowPlaying:
    song: Song
    username: str
    minutes_ago: int
    player_id: int
    player_name: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["song"] = self.song.to_dict()
        return d


@dataclass(frozen=True)
class MusicFolder:
    id: int
    name: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Directory:
    """Folder-style browsing: an artist (its albums) or an album (its songs)."""

    kind: str
    id: int
    name: str
    parent_id: int | None
    annotation: Annotation
    albums: list[Album] = field(default_factory=list)
    songs: list[Song] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["albums"] = [a.to_dict() for a in self.albums]
        d["songs"] = [s.to_dict() for s in self.songs]
        return d


@dataclass(frozen=True)
class CoverSource:
    """Where an item's cover comes from: ``kind`` ``file`` (``path``: the image beside the tracks, as the file
    system names it) or ``embedded`` (``track_id``: the track whose embedded picture it is)."""

    kind: str
    album_id: int
    path: str | None = None
    display_path: str | None = None
    track_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "album_id": self.album_id, "path": self.display_path, "track_id": self.track_id}


@dataclass(frozen=True)
class SongMatch:
    """A song in a sonic answer with its similarity in [0, 1] (1: the same sound; ``TrackHit.similarity``)."""

    song: Song
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {"song": self.song.to_dict(), "similarity": self.similarity}


@dataclass(frozen=True)
class ForYou:
    """ "For you": what a listener's recommendations were seeded with (their latest stars, their most played
    songs) and the answer (None without seeds: nothing to go on yet)."""

    liked: list[int]
    played: list[int]
    result: Any = None
    """A ``results.QueryResult`` (``recommend`` from the seeds), or None."""

    def to_dict(self) -> dict[str, Any]:
        d = None if self.result is None else self.result.to_dict()
        return {
            "seeds": {"liked": self.liked, "played": self.played},
            "items": [] if d is None else d["items"],
            "space": None if d is None else d.get("space"),
        }
