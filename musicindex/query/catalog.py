"""``CatalogService``: the library as music apps browse it (``index.catalog``). Reads only.

Artists (album artists), albums, songs, genres, album lists, random songs, search (words found inside names, any
case or accent; an empty query lists everything, paged in a stable order), folder-style browsing and the cover
source of an item. A listener's stars, queue, playlists and what is playing are ``index.listener``
(``query.listener``); the sonic answers (similar artists, instant mixes, sonic paths, "for you") are
``index.mixes`` (``query.mixes``).

Every method answers from ONE read-only snapshot (``query.snapshot``). ``user_id`` names the listener whose
annotations the items carry (None: none). The Subsonic API (``musicindex.web.subsonic``) and the web page call
these same methods; the write side of a listener's state is ``musicindex.users``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from musicindex import textnorm
from musicindex.db.paths import fs_path
from musicindex.errors import InvalidArgumentError, ItemNotFoundError, TrackNotFoundError
from musicindex.query import catalog_rows as rows
from musicindex.query import textsearch
from musicindex.query.base import Reader
from musicindex.query.catalog_rows import (
    MAX_PAGE,
    album_songs,
    annotation_join,
    genres_sql,
    one_album,
    one_artist,
    page,
)
from musicindex.query.items import (
    Album,
    AlbumDetail,
    Artist,
    ArtistDetail,
    CoverSource,
    Directory,
    Genre,
    IndexGroup,
    MusicFolder,
    SearchPage,
    Song,
)
from musicindex.query.snapshot import Snapshot
from musicindex.query.textsearch import INDEXED_ALBUM as _INDEXED_ALBUM
from musicindex.query.validation import check_int, check_text
from musicindex.vocab import ALBUM, ARTIST, INDEXED, TRACK

ALBUM_LIST_TYPES = (
    "random", "newest", "frequent", "recent", "starred", "alphabeticalByName", "alphabeticalByArtist", "byYear",
    "byGenre", "highest",
)  # fmt: skip
SONG_SORTS = ("title", "artist", "album", "year", "added", "duration", "tempo", "plays", "recent", "starred")


class CatalogService(Reader):
    """What music apps browse, each answer read in one snapshot."""

    ALBUM_LIST_TYPES = ALBUM_LIST_TYPES
    MAX_PAGE = MAX_PAGE

    # ------------------------------------------------------------------ folders and artists
    def music_folders(self) -> list[MusicFolder]:
        """One music folder per outermost ingested folder (ids from 1, by path)."""
        with self.snapshot() as snap:
            return [
                MusicFolder(i + 1, r.rstrip("/").rsplit("/", 1)[-1] or r) for i, r in enumerate(rows.music_roots(snap))
            ]

    def artists(self, user_id: int | None = None) -> list[IndexGroup]:
        """Album artists (those with albums of indexed songs) by index letter, sorted without leading articles
        (``textnorm.IGNORED_ARTICLES``)."""
        with self.snapshot() as snap:
            ids = snap.ids(f"SELECT DISTINCT al.artist_id FROM albums al WHERE {_INDEXED_ALBUM}")
            found = rows.artists(snap, user_id, ids)
        found.sort(key=lambda a: (a.sort_name, a.id))
        groups: dict[str, list[Artist]] = {}
        for a in found:
            groups.setdefault(a.index_letter, []).append(a)
        return [IndexGroup(letter, groups[letter]) for letter in sorted(groups, key=lambda x: (x == "#", x))]

    def artist(self, artist_id: int, user_id: int | None = None) -> ArtistDetail:
        """An artist and its albums (those it is the album artist of, then those holding its songs), newest
        first."""
        with self.snapshot() as snap:
            artist = one_artist(snap, user_id, artist_id)
            ids = snap.ids(
                f"SELECT al.id FROM albums al WHERE {rows.artist_albums('%(a)s')} "
                "ORDER BY al.artist_id <> %(a)s, al.year NULLS LAST, al.sort_key, al.id",
                {"a": artist_id},
            )
            albums = rows.albums(snap, user_id, ids)
        return ArtistDetail(replace(artist, album_count=len(albums)), albums)  # the count of the list it answers

    def album(self, album_id: int, user_id: int | None = None) -> AlbumDetail:
        """An album and its songs in disc and track order."""
        with self.snapshot() as snap:
            return AlbumDetail(one_album(snap, user_id, album_id), album_songs(snap, user_id, album_id))

    def song(self, track_id: int, user_id: int | None = None) -> Song:
        """One indexed song; TrackNotFoundError otherwise."""
        found = self.songs([track_id], user_id)
        if not found:
            raise TrackNotFoundError(f"no indexed track with id {track_id}")
        return found[0]

    def songs(self, track_ids: Sequence[int], user_id: int | None = None) -> list[Song]:
        """The indexed songs of ``track_ids``, in that order (others left out)."""
        with self.snapshot() as snap:
            return rows.songs(snap, user_id, track_ids)

    def song_count(self) -> int:
        """How many songs (indexed tracks) the library holds."""
        with self.snapshot() as snap:
            return int(snap.value(f"SELECT count(*) FROM tracks WHERE status = '{INDEXED}'"))

    # ------------------------------------------------------------------ folder-style browsing
    def directory(self, kind: str, item_id: int, user_id: int | None = None) -> Directory:
        """An artist as a folder of its albums, or an album as a folder of its songs."""
        with self.snapshot() as snap:
            if kind == ARTIST:
                artist = one_artist(snap, user_id, item_id)
                ids = snap.ids(
                    f"SELECT al.id FROM albums al WHERE al.artist_id = %(a)s AND {_INDEXED_ALBUM} "
                    "ORDER BY al.year NULLS LAST, al.sort_key, al.id",
                    {"a": item_id},
                )
                albums = rows.albums(snap, user_id, ids)
                return Directory(ARTIST, artist.id, artist.name, None, artist.annotation, albums=albums)
            if kind == ALBUM:
                album = one_album(snap, user_id, item_id)
                songs = album_songs(snap, user_id, item_id)
                return Directory(ALBUM, album.id, album.name, album.artist_id, album.annotation, songs=songs)
        raise InvalidArgumentError(f"a directory is an artist or an album, not a {kind}")

    # ------------------------------------------------------------------ lists
    def album_list(
        self,
        list_type: str,
        size: int = 10,
        offset: int = 0,
        *,
        user_id: int | None = None,
        from_year: int | None = None,
        to_year: int | None = None,
        genre: str | None = None,
    ) -> list[Album]:
        """Albums of one Subsonic list type (``ALBUM_LIST_TYPES``): random, newest, frequent / recent / starred /
        highest (the listener's plays, stars and ratings), alphabeticalByName, alphabeticalByArtist, byYear
        (``from_year`` > ``to_year`` lists newest first) or byGenre."""
        if list_type not in ALBUM_LIST_TYPES:
            raise InvalidArgumentError(f"unknown list type {list_type!r}; one of: {', '.join(ALBUM_LIST_TYPES)}")
        size, offset = page(size, offset)
        params: dict[str, Any] = {"uid": user_id or 0, "n": size, "o": offset}
        join, where, order = "", [_INDEXED_ALBUM], "al.sort_key, al.id"
        listener = {
            "frequent": ("a.play_count > 0", "a.play_count DESC, a.last_played DESC"),
            "recent": ("a.last_played IS NOT NULL", "a.last_played DESC"),
            "starred": ("a.starred_at IS NOT NULL", "a.starred_at DESC"),
            "highest": ("a.rating IS NOT NULL", "a.rating DESC, a.starred_at DESC NULLS LAST"),
        }
        if list_type in listener:
            join = annotation_join("a", ALBUM, "al.id", inner=True)
            cond, order = listener[list_type]
            where.append(cond)
            order += ", al.id"
        elif list_type == "random":
            order = "random()"
        elif list_type == "newest":
            order = "al.created_at DESC, al.id DESC"
        elif list_type == "alphabeticalByArtist":
            join, order = "JOIN artists ar ON ar.id = al.artist_id ", "ar.sort_key, al.sort_key, al.id"
        elif list_type == "byYear":
            lo = check_int(from_year if from_year is not None else 0, "fromYear", 0, 9999)
            hi = check_int(to_year if to_year is not None else 9999, "toYear", 0, 9999)
            params.update(lo=min(lo, hi), hi=max(lo, hi))
            where.append("al.year BETWEEN %(lo)s AND %(hi)s")
            order = f"al.year {'DESC' if lo > hi else 'ASC'}, al.sort_key, al.id"
        elif list_type == "byGenre":
            params["g"] = check_text(genre, "genre", max_length=200)
            where.append("al.genre = %(g)s")
        with self.snapshot() as snap:
            ids = snap.ids(
                f"SELECT al.id FROM albums al {join}WHERE {' AND '.join(where)} ORDER BY {order} "
                "LIMIT %(n)s OFFSET %(o)s",
                params,
            )
            return rows.albums(snap, user_id, ids)

    def random_songs(
        self,
        size: int = 10,
        *,
        user_id: int | None = None,
        genre: str | None = None,
        from_year: int | None = None,
        to_year: int | None = None,
    ) -> list[Song]:
        """Up to ``size`` (<= 500) random songs, of ``genre`` and between the years when given."""
        size, _ = page(size)
        with self.snapshot() as snap:
            gjoin, where, params = self._song_filters(snap, genre, from_year, to_year)
            ids = snap.ids(f"SELECT t.id FROM tracks t {gjoin}WHERE {where} ORDER BY random() LIMIT {size}", params)
            return rows.songs(snap, user_id, ids)

    def songs_by_genre(self, genre: str, count: int = 10, offset: int = 0, *, user_id: int | None = None) -> list[Song]:
        """Songs of ``genre`` (their tag genres, else label, else predicted genre), by id."""
        count, offset = page(count, offset)
        with self.snapshot() as snap:
            gjoin, where, params = self._song_filters(snap, genre, None, None)
            ids = snap.ids(
                f"SELECT t.id FROM tracks t {gjoin}WHERE {where} ORDER BY t.id LIMIT {count} OFFSET {offset}",
                params,
            )
            return rows.songs(snap, user_id, ids)

    @staticmethod
    def _song_filters(
        snap: Snapshot, genre: str | None, from_year: int | None, to_year: int | None
    ) -> tuple[str, str, dict[str, Any]]:
        where, gjoin = [f"t.status = '{INDEXED}'"], ""
        params: dict[str, Any] = {}
        if genre is not None:
            params["g"] = check_text(genre, "genre", max_length=200)
            gjoin, genres = genres_sql(snap)
            where.append(f"{genres} @> ARRAY[%(g)s]::text[]")
        if from_year is not None:
            params["lo"] = check_int(from_year, "fromYear", 0, 9999)
            where.append("t.year >= %(lo)s")
        if to_year is not None:
            params["hi"] = check_int(to_year, "toYear", 0, 9999)
            where.append("t.year <= %(hi)s")
        return gjoin, " AND ".join(where), params

    SONG_SORTS = SONG_SORTS

    def song_list(
        self, sort: str = "title", descending: bool = False, size: int = 50, offset: int = 0, *,
        user_id: int | None = None,
    ) -> list[Song]:  # fmt: skip
        """One page of every song, sorted by ``sort`` (``SONG_SORTS``: title, artist, album, year, added, duration,
        tempo (the measured BPM; songs without a steady beat last), plays, recent, starred; the listener's plays,
        recent plays and stars list only the songs they touched), ascending unless ``descending``; ties by id."""
        if sort not in SONG_SORTS:
            raise InvalidArgumentError(f"unknown sort {sort!r}; one of: {', '.join(SONG_SORTS)}")
        size, offset = page(size, offset, default=50)
        way = "DESC" if descending else "ASC"
        nulls = "NULLS LAST"
        join, where = "", [f"t.status = '{INDEXED}'"]
        listener = {"plays": "a.play_count", "recent": "a.last_played", "starred": "a.starred_at"}
        if sort in listener:
            join = annotation_join("a", TRACK, "t.id", inner=True)
            where.append("a.play_count > 0" if sort == "plays" else f"{listener[sort]} IS NOT NULL")
            way = "ASC" if descending else "DESC"  # most first unless reversed
            order = f"{listener[sort]} {way}, t.id"
        else:
            order = {
                "title": f"lower(t.title) {way} {nulls}, t.id",
                "artist": f"lower(t.artist) {way} {nulls}, t.album_id, t.disc_no NULLS FIRST, t.track_no NULLS FIRST, "
                "t.id",
                "album": f"lower(t.album) {way} {nulls}, t.disc_no NULLS FIRST, t.track_no NULLS FIRST, t.id",
                "year": f"t.year {way} {nulls}, t.album_id, t.track_no NULLS FIRST, t.id",
                "added": f"t.created_at {'ASC' if descending else 'DESC'}, t.id",
                "duration": f"t.duration {way} {nulls}, t.id",
                "tempo": f"(SELECT d.tempo FROM track_descriptors d WHERE d.track_id = t.id) {way} {nulls}, t.id",
            }[sort]
        with self.snapshot() as snap:
            ids = snap.ids(
                f"SELECT t.id FROM tracks t {join}WHERE {' AND '.join(where)} ORDER BY {order} "
                "LIMIT %(n)s OFFSET %(o)s",
                {"uid": user_id or 0, "n": size, "o": offset},
            )
            return rows.songs(snap, user_id, ids)

    def genres(self) -> list[Genre]:
        """Every genre with its song and album counts, by name."""
        with self.snapshot() as snap:
            gjoin, genres = genres_sql(snap)
            found = snap.all(
                f"SELECT g AS name, count(*) AS songs, count(DISTINCT t.album_id) AS albums FROM tracks t {gjoin}"
                f"CROSS JOIN LATERAL unnest({genres}) AS g WHERE t.status = '{INDEXED}' GROUP BY g ORDER BY g"
            )
        return [Genre(str(r.name), int(r.songs), int(r.albums)) for r in found]

    def top_songs(self, artist: str, count: int = 50, *, user_id: int | None = None) -> list[Song]:
        """The most played songs (every listener's plays) of the artist called ``artist`` (any case or accent):
        its own songs and those of the albums it is the album artist of (a soundtrack's composer)."""
        count, _ = page(count)
        key = textnorm.fold(check_text(artist, "artist", max_length=1000))
        named = "(SELECT id FROM artists WHERE name_key = %(k)s)"
        with self.snapshot() as snap:
            ids = snap.ids(
                f"SELECT t.id FROM tracks t LEFT JOIN annotations a ON a.item_type = '{TRACK}' AND a.item_id = t.id "
                f"WHERE (t.artist_id IN {named} OR t.album_id IN (SELECT id FROM albums WHERE artist_id IN {named})) "
                f"AND t.status = '{INDEXED}' "
                f"GROUP BY t.id ORDER BY coalesce(sum(a.play_count), 0) DESC, t.id LIMIT {count}",
                {"k": key},
            )
            return rows.songs(snap, user_id, ids)

    def find_song(self, title: str, artist: str | None = None, *, user_id: int | None = None) -> Song | None:
        """The first song (lowest id) titled ``title`` (any case), by the artist called ``artist`` (any case or
        accent) when given; None when there is none (``getLyrics``)."""
        title = check_text(title, "title", max_length=1000)
        where, params = [f"lower(t.title) = lower(%(t)s) AND t.status = '{INDEXED}'"], {"t": title, "k": ""}
        if artist:
            params["k"] = textnorm.fold(check_text(artist, "artist", max_length=1000))
            where.append("t.artist_id IN (SELECT id FROM artists WHERE name_key = %(k)s)")
        with self.snapshot() as snap:
            ids = snap.ids(f"SELECT t.id FROM tracks t WHERE {' AND '.join(where)} ORDER BY t.id LIMIT 1", params)
            found = rows.songs(snap, user_id, ids)
        return found[0] if found else None

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: str,
        *,
        user_id: int | None = None,
        artist_count: int = 20,
        artist_offset: int = 0,
        album_count: int = 20,
        album_offset: int = 0,
        song_count: int = 20,
        song_offset: int = 0,
    ) -> SearchPage:
        """Artists, albums and songs holding every word of ``query`` inside their names (any case or accent:
        ``wésnoth`` finds *Wesnoth*; songs match on title, artist, album, genre and folder: the word rule of
        ``query.textsearch``, the same as the track search's). An empty query (no letter or digit) lists
        everything, by name (songs by id), each kind paged on its own."""
        pages = (page(artist_count, artist_offset, default=20), page(album_count, album_offset, default=20),
                 page(song_count, song_offset, default=20))  # fmt: skip
        with self.snapshot() as snap:
            return textsearch.search_catalog(snap, query, user_id, *pages)

    # ------------------------------------------------------------------ covers
    def cover_source(self, kind: str, item_id: int) -> CoverSource:
        """Where the cover of an album (an artist: its newest album with one; a song or a playlist: its (first)
        album's) comes from; ItemNotFoundError when it has none."""
        album_of = {
            ALBUM: "SELECT %(i)s::bigint",
            ARTIST: "SELECT id FROM albums WHERE artist_id = %(i)s AND cover_kind IS NOT NULL "
            "ORDER BY year DESC NULLS LAST, id LIMIT 1",
            TRACK: "SELECT album_id FROM tracks WHERE id = %(i)s",
            "playlist": "SELECT t.album_id FROM playlist_tracks pt JOIN tracks t ON t.id = pt.track_id "
            f"WHERE pt.playlist_id = %(i)s AND t.status = '{INDEXED}' ORDER BY pt.position LIMIT 1",
        }
        if kind not in album_of:
            raise InvalidArgumentError(f"covers belong to albums, artists, songs and playlists, not {kind!r}")
        with self.snapshot() as snap:
            row = snap.one(
                "SELECT al.id, al.cover_kind, al.cover_path, al.cover_path_bytes, al.cover_track_id FROM albums al "
                f"WHERE al.id = ({album_of[kind]}) AND al.cover_kind IS NOT NULL",
                {"i": int(item_id)},
            )
        if row is None:
            raise ItemNotFoundError(f"{kind} {item_id} has no cover")
        path = fs_path(row.cover_path, row.cover_path_bytes) if row.cover_path is not None else None
        track = int(row.cover_track_id) if row.cover_track_id is not None else None
        return CoverSource(row.cover_kind, int(row.id), path, row.cover_path, track)
