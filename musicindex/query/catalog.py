"""``CatalogService``: the library as music apps browse it (``index.catalog``). Reads only.

Artists (album artists), albums, songs, genres, album lists, random songs, search (words found inside names, any
case or accent; an empty query lists everything, paged in a stable order), folder-style browsing, a listener's
stars, ratings, plays, play queue, playlists and what is playing now, the cover source of an item, and the sonic
answers of the index: similar artists, instant mixes, similar songs with their similarity, a sonic path.

Every method answers from ONE read-only snapshot (``query.snapshot``). ``user_id`` names the listener whose
annotations the items carry (None: none). The Subsonic API (``musicindex.web.subsonic``) and the web page call
these same methods; the write side of a listener's state is ``musicindex.users``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

import numpy as np

from musicindex import textnorm
from musicindex.config import Settings
from musicindex.db.paths import fs_path
from musicindex.db.session import Database
from musicindex.errors import InvalidArgumentError, ItemNotFoundError, TrackNotFoundError
from musicindex.query import catalog_rows as rows
from musicindex.query.catalog_rows import annotation_join, genres_sql
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
    NowPlaying,
    Playlist,
    PlayQueue,
    SearchPage,
    Song,
    SongMatch,
    Starred,
    iso,
)
from musicindex.query.search import Exclusions, Filters, search
from musicindex.query.service import QueryService, path_in
from musicindex.query.snapshot import Snapshot, snapshot
from musicindex.query.spaces import Space, default_space, load_space_matrix, open_space, vectors
from musicindex.query.validation import check_int, check_text
from musicindex.query.vectors import unit
from musicindex.vocab import ALBUM, ARTIST, INDEXED, TRACK

ALBUM_LIST_TYPES = (
    "random", "newest", "frequent", "recent", "starred", "alphabeticalByName", "alphabeticalByArtist", "byYear",
    "byGenre", "highest",
)  # fmt: skip
SONG_SORTS = ("title", "artist", "album", "year", "added", "duration", "plays", "recent", "starred")
MAX_PAGE = 500
"""Most items of one list answer (a larger size is cut to this)."""
MAX_OFFSET = 10_000_000
MAX_SEARCH_WORDS = 8
SEED_TRACKS = 50
"""An album's or artist's sound is the mean direction of at most this many of its tracks."""
SIMILAR_ARTIST_POOL = 300
"""Similar artists are found among the artists of this many nearest tracks."""
MAX_PATH = 100
NOW_PLAYING_GRACE = "interval '10 minutes'"
"""A song stays "now playing" for its duration and this long after it started."""
_INDEXED_ALBUM = "al.song_count > 0"


def page(size: Any, offset: Any = 0, *, default: int = 10) -> tuple[int, int]:
    """(size, offset) of a list: size 0..MAX_PAGE (larger is cut to MAX_PAGE), offset 0..MAX_OFFSET."""
    size = default if size is None else check_int(size, "size", 0, 2**31 - 1)
    return min(size, MAX_PAGE), check_int(offset or 0, "offset", 0, MAX_OFFSET)


class CatalogService:
    """What music apps browse, each answer read in one snapshot."""

    ALBUM_LIST_TYPES = ALBUM_LIST_TYPES
    MAX_PAGE = MAX_PAGE

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    def snapshot(self) -> AbstractContextManager[Snapshot]:
        return snapshot(self.db, self.settings.genre_model, timeout=self.settings.query_timeout)

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
            ids = rows.ids(snap, f"SELECT DISTINCT al.artist_id FROM albums al WHERE {_INDEXED_ALBUM}")
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
            artist = self._one_artist(snap, user_id, artist_id)
            ids = rows.ids(
                snap,
                f"SELECT al.id FROM albums al WHERE {_INDEXED_ALBUM} AND (al.artist_id = %(a)s OR al.id IN "
                f"(SELECT album_id FROM tracks WHERE artist_id = %(a)s AND status = '{INDEXED}')) "
                "ORDER BY al.artist_id <> %(a)s, al.year NULLS LAST, al.sort_key, al.id",
                {"a": artist_id},
            )
            return ArtistDetail(artist, rows.albums(snap, user_id, ids))

    @staticmethod
    def _one_artist(snap: Snapshot, user_id: int | None, artist_id: int) -> Artist:
        found = rows.artists(snap, user_id, [artist_id])
        if not found:
            raise ItemNotFoundError(f"no artist with id {artist_id}")
        return found[0]

    def album(self, album_id: int, user_id: int | None = None) -> AlbumDetail:
        """An album and its songs in disc and track order."""
        with self.snapshot() as snap:
            return AlbumDetail(self._one_album(snap, user_id, album_id), self._album_songs(snap, user_id, album_id))

    @staticmethod
    def _one_album(snap: Snapshot, user_id: int | None, album_id: int) -> Album:
        found = rows.albums(snap, user_id, [album_id])
        if not found:
            raise ItemNotFoundError(f"no album with id {album_id}")
        return found[0]

    @staticmethod
    def _album_songs(snap: Snapshot, user_id: int | None, album_id: int) -> list[Song]:
        ids = rows.ids(
            snap,
            f"SELECT id FROM tracks WHERE album_id = %(a)s AND status = '{INDEXED}' "
            "ORDER BY disc_no NULLS FIRST, track_no NULLS FIRST, id",
            {"a": album_id},
        )
        return rows.songs(snap, user_id, ids)

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
            return int(snap.one(f"SELECT count(*) FROM tracks WHERE status = '{INDEXED}'")[0])

    # ------------------------------------------------------------------ folder-style browsing
    def directory(self, kind: str, item_id: int, user_id: int | None = None) -> Directory:
        """An artist as a folder of its albums, or an album as a folder of its songs."""
        with self.snapshot() as snap:
            if kind == ARTIST:
                artist = self._one_artist(snap, user_id, item_id)
                ids = rows.ids(
                    snap,
                    f"SELECT al.id FROM albums al WHERE al.artist_id = %(a)s AND {_INDEXED_ALBUM} "
                    "ORDER BY al.year NULLS LAST, al.sort_key, al.id",
                    {"a": item_id},
                )
                albums = rows.albums(snap, user_id, ids)
                return Directory(ARTIST, artist.id, artist.name, None, artist.annotation, albums=albums)
            if kind == ALBUM:
                album = self._one_album(snap, user_id, item_id)
                songs = self._album_songs(snap, user_id, item_id)
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
            ids = rows.ids(
                snap,
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
            ids = rows.ids(
                snap, f"SELECT t.id FROM tracks t {gjoin}WHERE {where} ORDER BY random() LIMIT {size}", params
            )
            return rows.songs(snap, user_id, ids)

    def songs_by_genre(self, genre: str, count: int = 10, offset: int = 0, *, user_id: int | None = None) -> list[Song]:
        """Songs of ``genre`` (their tag genres, else label, else predicted genre), by id."""
        count, offset = page(count, offset)
        with self.snapshot() as snap:
            gjoin, where, params = self._song_filters(snap, genre, None, None)
            ids = rows.ids(
                snap,
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
        plays, recent, starred; the listener's plays, recent plays and stars list only the songs they touched),
        ascending unless ``descending``; ties by id."""
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
            }[sort]
        with self.snapshot() as snap:
            ids = rows.ids(
                snap,
                f"SELECT t.id FROM tracks t {join}WHERE {' AND '.join(where)} ORDER BY {order} "
                "LIMIT %(n)s OFFSET %(o)s",
                {"uid": user_id or 0, "n": size, "o": offset},
            )
            return rows.songs(snap, user_id, ids)

    def listener_seeds(self, user_id: int, likes: int = 50, plays: int = 30) -> tuple[list[int], list[int]]:
        """(the listener's most recently starred songs, their most played ones): the seeds of "for you"."""
        with self.snapshot() as snap:
            starred = rows.ids(
                snap,
                f"SELECT a.item_id FROM annotations a JOIN tracks t ON t.id = a.item_id AND t.status = '{INDEXED}' "
                f"WHERE a.user_id = %(uid)s AND a.item_type = '{TRACK}' AND a.starred_at IS NOT NULL "
                f"ORDER BY a.starred_at DESC, a.item_id LIMIT {int(likes)}",
                {"uid": user_id},
            )
            played = rows.ids(
                snap,
                f"SELECT a.item_id FROM annotations a JOIN tracks t ON t.id = a.item_id AND t.status = '{INDEXED}' "
                f"WHERE a.user_id = %(uid)s AND a.item_type = '{TRACK}' AND a.play_count > 0 "
                f"ORDER BY a.play_count DESC, a.last_played DESC, a.item_id LIMIT {int(plays)}",
                {"uid": user_id},
            )
        return starred, played

    def genres(self) -> list[Genre]:
        """Every genre with its song and album counts, by name."""
        with self.snapshot() as snap:
            gjoin, genres = genres_sql(snap)
            found = snap.all(
                f"SELECT g, count(*), count(DISTINCT t.album_id) FROM tracks t {gjoin}"
                f"CROSS JOIN LATERAL unnest({genres}) AS g WHERE t.status = '{INDEXED}' GROUP BY g ORDER BY g"
            )
        return [Genre(str(r[0]), int(r[1]), int(r[2])) for r in found]

    def top_songs(self, artist: str, count: int = 50, *, user_id: int | None = None) -> list[Song]:
        """The most played songs (every listener's plays) of the artist called ``artist`` (any case or accent)."""
        count, _ = page(count)
        key = textnorm.fold(check_text(artist, "artist", max_length=1000))
        with self.snapshot() as snap:
            ids = rows.ids(
                snap,
                "SELECT t.id FROM tracks t JOIN artists ar ON ar.id = t.artist_id LEFT JOIN annotations a "
                f"ON a.item_type = '{TRACK}' AND a.item_id = t.id WHERE ar.name_key = %(k)s AND t.status = '{INDEXED}' "
                f"GROUP BY t.id ORDER BY coalesce(sum(a.play_count), 0) DESC, t.id LIMIT {count}",
                {"k": key},
            )
            return rows.songs(snap, user_id, ids)

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
        ``wésnoth`` finds *Wesnoth*; songs match on title, artist, album, genre and folder). An empty query (no
        letter or digit) lists everything, by name (songs by id), each kind paged on its own."""
        query = check_text(query or "", "query", max_length=1000, empty=True)
        words = textnorm.words(query)[:MAX_SEARCH_WORDS]
        a_n, a_o = page(artist_count, artist_offset, default=20)
        b_n, b_o = page(album_count, album_offset, default=20)
        s_n, s_o = page(song_count, song_offset, default=20)
        params: dict[str, Any] = {f"p{i}": f"%{w}%" for i, w in enumerate(words)}
        params.update({f"g{i}": textnorm.grams(w) for i, w in enumerate(words) if len(w) >= 3})
        song_where = [f"t.status = '{INDEXED}'"]
        artist_where, album_where = [_INDEXED_ALBUM], [_INDEXED_ALBUM]
        for i, w in enumerate(words):
            if len(w) >= 3:
                song_where.append(f"t.search_grams @> %(g{i})s::int[]")
            song_where.append(f"t.search_text LIKE %(p{i})s")
            artist_where.append(f"ar.name_key LIKE %(p{i})s")
            album_where.append(f"(al.sort_key LIKE %(p{i})s OR (al.folder IS NULL AND al.name_key LIKE %(p{i})s))")
        song_order = "position(%(w0)s IN t.search_text), t.id" if words else "t.id"
        if words:
            params["w0"] = words[0]
        with self.snapshot() as snap:
            found_artists = _paged(
                snap,
                "SELECT ar.id FROM artists ar WHERE EXISTS (SELECT 1 FROM albums al WHERE al.artist_id = ar.id AND "
                f"{' AND '.join(artist_where)}) ORDER BY ar.sort_key, ar.id",
                a_n, a_o, params,
            )  # fmt: skip
            found_albums = _paged(
                snap,
                f"SELECT al.id FROM albums al WHERE {' AND '.join(album_where)} ORDER BY al.sort_key, al.id",
                b_n, b_o, params,
            )  # fmt: skip
            found_songs = _paged(
                snap,
                f"SELECT t.id FROM tracks t WHERE {' AND '.join(song_where)} ORDER BY {song_order}",
                s_n, s_o, params,
            )  # fmt: skip
            return SearchPage(
                query,
                rows.artists(snap, user_id, found_artists),
                rows.albums(snap, user_id, found_albums),
                rows.songs(snap, user_id, found_songs),
            )

    # ------------------------------------------------------------------ a listener's state
    def starred(self, user_id: int) -> Starred:
        """What ``user_id`` starred, most recent first."""
        with self.snapshot() as snap:

            def of(kind: str) -> list[int]:
                return rows.ids(
                    snap,
                    "SELECT item_id FROM annotations WHERE user_id = %(uid)s AND item_type = %(k)s "
                    "AND starred_at IS NOT NULL ORDER BY starred_at DESC, item_id",
                    {"uid": user_id, "k": kind},
                )

            return Starred(
                rows.artists(snap, user_id, of(ARTIST)),
                [a for a in rows.albums(snap, user_id, of(ALBUM)) if a.song_count > 0],
                rows.songs(snap, user_id, of(TRACK)),
            )

    def now_playing(self, user_id: int | None = None) -> list[NowPlaying]:
        """What every listener is playing (songs started less than their duration and 10 minutes ago)."""
        with self.snapshot() as snap:
            found = snap.all(
                "SELECT np.track_id, u.name, floor(extract(epoch FROM now() - np.started_at) / 60)::int, np.client "
                "FROM now_playing np JOIN users u ON u.id = np.user_id JOIN tracks t ON t.id = np.track_id "
                f"WHERE np.started_at + make_interval(secs => coalesce(t.duration, 0)) + {NOW_PLAYING_GRACE} > now() "
                "ORDER BY np.started_at DESC"
            )
            songs = {s.id: s for s in rows.songs(snap, user_id, [int(r[0]) for r in found])}
        return [
            NowPlaying(songs[int(r[0])], r[1], max(0, int(r[2])), i + 1, r[3])
            for i, r in enumerate(found)
            if int(r[0]) in songs
        ]

    def play_queue(self, user_id: int) -> PlayQueue | None:
        """The listener's saved play queue, or None."""
        with self.snapshot() as snap:
            row = snap.one(
                "SELECT q.track_ids, q.current_id, q.position_ms, q.changed_at, q.changed_by, u.name "
                "FROM play_queues q JOIN users u ON u.id = q.user_id WHERE q.user_id = %(uid)s",
                {"uid": user_id},
            )
            if row is None:
                return None
            songs = rows.songs(snap, user_id, list(row[0] or []))
        return PlayQueue(row[5], songs, row[1], int(row[2] or 0), iso(row[3]), row[4])

    def playlists(self, user_id: int) -> list[Playlist]:
        """The listener's playlists and the public ones of others, by name."""
        with self.snapshot() as snap:
            return self._playlists(snap, user_id, None)

    def playlist(self, playlist_id: int, user_id: int) -> Playlist:
        """A playlist (the listener's own, or a public one) with its songs."""
        with self.snapshot() as snap:
            found = self._playlists(snap, user_id, playlist_id)
            if not found:
                raise ItemNotFoundError(f"no playlist with id {playlist_id}")
            entries = rows.ids(
                snap,
                "SELECT track_id FROM playlist_tracks WHERE playlist_id = %(p)s ORDER BY position",
                {"p": playlist_id},
            )
            songs = rows.songs(snap, user_id, entries)
        return replace(found[0], songs=songs)

    @staticmethod
    def _playlists(snap: Snapshot, user_id: int, playlist_id: int | None) -> list[Playlist]:
        one = "AND p.id = %(p)s " if playlist_id is not None else ""
        found = snap.all(
            "SELECT p.id, p.name, p.comment, u.name, p.owner_id, p.public, count(t.id), "
            "coalesce(sum(t.duration), 0), p.created_at, p.changed_at, "
            "(array_agg(t.album_id ORDER BY pt.position) FILTER (WHERE t.id IS NOT NULL))[1] "
            "FROM playlists p JOIN users u ON u.id = p.owner_id LEFT JOIN playlist_tracks pt ON pt.playlist_id = p.id "
            f"LEFT JOIN tracks t ON t.id = pt.track_id AND t.status = '{INDEXED}' "
            f"WHERE (p.owner_id = %(uid)s OR p.public) {one}GROUP BY p.id, u.name ORDER BY lower(p.name), p.id",
            {"uid": user_id, "p": playlist_id},
        )
        return [
            Playlist(
                int(r[0]), r[1], r[2], r[3], int(r[4]), bool(r[5]), int(r[6]), float(r[7]), iso(r[8]), iso(r[9]), r[10]
            )
            for r in found
        ]

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
        path = fs_path(row[2], row[3]) if row[2] is not None else None
        return CoverSource(row[1], int(row[0]), path, row[2], int(row[4]) if row[4] is not None else None)

    # ------------------------------------------------------------------ sonic answers
    def similar_artists(self, artist_id: int, count: int = 20, *, user_id: int | None = None) -> list[Artist]:
        """Artists whose songs sound like this artist's (the default similarity space: the artists of the tracks
        nearest to the mean direction of its tracks, by their best match)."""
        count, _ = page(count)
        with self.snapshot() as snap:
            self._one_artist(snap, user_id, artist_id)
            seeds = self._seed_tracks(snap, ARTIST, artist_id)
            sp, q = self._seed_vector(snap, seeds)
            if q is None or not count:
                return []
            hits = search(snap, sp, q, SIMILAR_ARTIST_POOL, Filters(exclude_ids=seeds))
            owner = dict(
                snap.all("SELECT id, artist_id FROM tracks WHERE id = ANY(%(ids)s)", {"ids": [h.id for h in hits]})
            )
            best: dict[int, float] = {}
            for h in hits:
                a = owner.get(h.id)
                if a is not None and int(a) != artist_id:
                    best.setdefault(int(a), h.similarity or 0.0)
            chosen = sorted(best, key=lambda a: -best[a])[:count]
            return rows.artists(snap, user_id, chosen)

    def instant_mix(self, kind: str, item_id: int, count: int = 50, *, user_id: int | None = None) -> list[Song]:
        """Songs that sound like a song, an album or an artist (its tracks' mean direction in the default space),
        nearest first with no two songs of one artist in a row and none of one album back to back; the seeds
        themselves left out."""
        count, _ = page(count)
        with self.snapshot() as snap:
            if kind == TRACK:
                seeds = [snap.track(int(item_id)).id]
            elif kind == ALBUM:
                self._one_album(snap, user_id, item_id)
                seeds = self._seed_tracks(snap, ALBUM, item_id)
            else:
                self._one_artist(snap, user_id, item_id)
                seeds = self._seed_tracks(snap, ARTIST, item_id)
            sp, q = self._seed_vector(snap, seeds)
            if q is None or not count:
                return []
            ex = Exclusions(artist_spacing=1, album_spacing=True)  # few candidates break only these rules
            hits = QueryService.diverse_neighbours(snap, sp, q, count, ex, seeds, first_fetch=2 * count + 10)
            return rows.songs(snap, user_id, [h.id for h in hits])

    def sonic_similar(self, track_id: int, count: int = 10, *, user_id: int | None = None) -> list[SongMatch]:
        """The songs nearest to a song in the default space, each with its similarity in [0, 1]."""
        count, _ = page(count)
        with self.snapshot() as snap:
            seed = snap.track(int(track_id))
            sp = open_space(snap, default_space(snap, [seed.id]))
            hits = search(snap, sp, vectors(snap, sp, [seed.id])[seed.id], count, Filters(exclude_ids=[seed.id]))
            songs = {s.id: s for s in rows.songs(snap, user_id, [h.id for h in hits])}
        return [SongMatch(songs[h.id], float(h.similarity or 0.0)) for h in hits if h.id in songs]

    def sonic_path(self, start_id: int, end_id: int, count: int = 25, *, user_id: int | None = None) -> list[SongMatch]:
        """A path of ``count`` songs from one song to another (both included: the start first, the end last) through
        the default space (``QueryService.playlist``), each with its similarity to the start song."""
        count = check_int(count, "count", 2, MAX_PATH)
        with self.snapshot() as snap:
            a, b = snap.track(int(start_id)), snap.track(int(end_id))
            if a.id == b.id:
                raise InvalidArgumentError("the start and end songs must differ")
            sp, picks, _ = path_in(snap, a, b, count, Exclusions(artist_spacing=1, album_spacing=True))
            ids = [h.id for h in picks]
            vecs = vectors(snap, sp, ids)
            start = unit(vecs[a.id])
            songs = {s.id: s for s in rows.songs(snap, user_id, ids)}
        return [SongMatch(songs[i], _similarity(start, vecs[i])) for i in ids if i in songs]

    @staticmethod
    def _seed_tracks(snap: Snapshot, kind: str, item_id: int) -> list[int]:
        column = "album_id" if kind == ALBUM else "artist_id"
        return rows.ids(
            snap,
            f"SELECT id FROM tracks WHERE {column} = %(i)s AND status = '{INDEXED}' ORDER BY id LIMIT {SEED_TRACKS}",
            {"i": int(item_id)},
        )

    @staticmethod
    def _seed_vector(snap: Snapshot, seeds: Sequence[int]) -> tuple[Space, np.ndarray | None]:
        """The default space and the mean direction of those of ``seeds`` that have vectors (None: none has)."""
        sp = open_space(snap, default_space(snap, seeds))
        _, mat = load_space_matrix(snap, sp, seeds)
        if not len(mat):
            return sp, None
        return sp, unit(mat.mean(axis=0))


def _paged(snap: Snapshot, sql: str, n: int, offset: int, params: dict[str, Any]) -> list[int]:
    """The ids of one page of ``sql`` (none when ``n`` is 0)."""
    return rows.ids(snap, f"{sql} LIMIT {int(n)} OFFSET {int(offset)}", params) if n else []


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """``TrackHit.similarity`` of two vectors: 1 - cosine distance / 2, in [0, 1]."""
    cos = float(np.dot(unit(a), unit(b)))
    return min(1.0, max(0.0, 1.0 - (1.0 - cos) / 2.0))
