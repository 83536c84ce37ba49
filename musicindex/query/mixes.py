"""``MixService``: the sonic answers music apps and the web player ask for (``index.mixes``). Reads only.

Instant mixes (songs that sound like a song, an album or an artist), similar songs with their similarity, a sonic
path from one song to another, similar artists and "for you" (recommendations from a listener's stars and plays).
Every one is asked of the similarity engine (``query.engine``) with :class:`~musicindex.query.options.
SearchOptions` (default: the library's best space; the mix rule: no two songs of one artist in a row, none of one
album back to back), and answered as the catalog's songs and artists, with the listener's annotations.
"""

from __future__ import annotations

from musicindex.errors import InvalidArgumentError
from musicindex.query import catalog_rows as rows
from musicindex.query import engine
from musicindex.query.base import Reader
from musicindex.query.catalog_rows import MAX_PAGE, one_album, one_artist
from musicindex.query.items import Artist, ForYou, Song, SongMatch
from musicindex.query.listener import listener_seeds, skipped_ids
from musicindex.query.options import SearchOptions
from musicindex.query.snapshot import Snapshot
from musicindex.vocab import ALBUM, ARTIST, INDEXED, TRACK

SEED_TRACKS = 50
"""An album's or artist's sound is the mean direction of at most this many of its tracks."""
MAX_PATH = 100
FOR_YOU_SEEDS = 80
"""At most this many of a listener's stars and plays seed "for you"."""


def _options(options: SearchOptions | None, k: int) -> SearchOptions:
    """The options of a mix (``k`` songs by default, at most ``MAX_PAGE``; no explanations: apps show none)."""
    opts = SearchOptions.of(options, explain=False) if options is not None else SearchOptions(k=k, explain=False)
    return SearchOptions.of(opts, k=min(opts.k, MAX_PAGE))


class MixService(Reader):
    """Sonic answers as songs and artists, each read in one snapshot."""

    def instant_mix(
        self, kind: str, item_id: int, options: SearchOptions | None = None, *, user_id: int | None = None
    ) -> list[Song]:
        """``options.k`` (default 50) songs that sound like a song, an album or an artist (its tracks' mean
        direction), nearest first, keeping the mix rule; the seeds themselves and the songs the listener keeps
        skipping (``listener.SKIPPED_SQL``) left out. Without a ``tempo``
        option, the songs within the seeds' tempo range (+-8 %) come first (``engine.mix``)."""
        opts = _options(options, 50)
        with self.snapshot() as snap:
            if kind == TRACK:
                seeds = [snap.track(int(item_id)).id]
            elif kind == ALBUM:
                one_album(snap, user_id, item_id)
                seeds = _seed_tracks(snap, ALBUM, item_id)
            elif kind == ARTIST:
                one_artist(snap, user_id, item_id)
                seeds = _seed_tracks(snap, ARTIST, item_id)
            else:
                raise InvalidArgumentError(f"an instant mix starts from a track, an album or an artist, not {kind!r}")
            skipped = skipped_ids(snap, user_id)  # what the listener keeps skipping is not offered (issue #29)
            answer = engine.mix(snap, seeds, opts, keep_tempo=True, exclude_ids=skipped)  # seeds' tempo first (#30)
            return rows.songs(snap, user_id, [h.id for h in answer.items])

    def sonic_similar(
        self, track_id: int, options: SearchOptions | None = None, *, user_id: int | None = None
    ) -> list[SongMatch]:
        """The ``options.k`` (default 10) songs nearest to a song, each with its similarity in [0, 1]."""
        opts = _options(options, 10)
        with self.snapshot() as snap:
            answer = engine.similar(snap, snap.track(int(track_id)), opts)
            songs = {s.id: s for s in rows.songs(snap, user_id, [h.id for h in answer.items])}
        return [SongMatch(songs[h.id], float(h.similarity or 0.0)) for h in answer.items if h.id in songs]

    def sonic_path(
        self, start_id: int, end_id: int, options: SearchOptions | None = None, *, user_id: int | None = None
    ) -> list[SongMatch]:
        """A path of ``options.k`` (2 to 100, default 25) songs from one song to another (both included: the start
        first, the end last; ``engine.path`` with the mix rule), each with its similarity to the start song."""
        opts = _options(options, 25)
        if not 2 <= opts.k <= MAX_PATH:
            raise InvalidArgumentError(f"count must be between 2 and {MAX_PATH}, got {opts.k}")
        with self.snapshot() as snap:
            a, b = snap.track(int(start_id)), snap.track(int(end_id))
            if a.id == b.id:
                raise InvalidArgumentError("the start and end songs must differ")
            answer = engine.path(snap, a, b, opts, engine.MIX)
            ids = [h.id for h in answer.items]
            near = engine.similarities(snap, answer.space, a.id, ids)
            songs = {s.id: s for s in rows.songs(snap, user_id, ids)}
        return [SongMatch(songs[i], near[i]) for i in ids if i in songs]

    def similar_artists(
        self, artist_id: int, options: SearchOptions | None = None, *, user_id: int | None = None
    ) -> list[Artist]:
        """Up to ``options.k`` (default 20) artists whose songs sound like this artist's (the artists of the
        tracks nearest to the mean direction of its tracks, by their best match)."""
        opts = _options(options, 20)
        with self.snapshot() as snap:
            one_artist(snap, user_id, artist_id)
            seeds = _seed_tracks(snap, ARTIST, artist_id)
            return rows.artists(snap, user_id, engine.similar_artists(snap, artist_id, seeds, opts))

    def for_you(self, user_id: int, options: SearchOptions | None = None) -> ForYou:
        """Recommendations from the listener's latest stars and most played songs (``engine.recommend`` of them:
        the recommend rule, no explanations, what they keep skipping left out); no answer before the listener
        starred or played anything."""
        opts = SearchOptions.of(options or SearchOptions(k=20), explain=False)
        with self.snapshot() as snap:
            liked, played = listener_seeds(snap, user_id)
            seeds = list(dict.fromkeys([*liked, *played]))[:FOR_YOU_SEEDS]
            if not seeds:
                return ForYou(liked, played)
            answer = engine.recommend(snap, seeds, [], opts, exclude_ids=skipped_ids(snap, user_id))
        return ForYou(liked, played, answer.result("recommend", opts))


def _seed_tracks(snap: Snapshot, kind: str, item_id: int) -> list[int]:
    """At most ``SEED_TRACKS`` indexed tracks of an album, or of an artist: its own songs first, then the songs of
    the albums it is the album artist of (a soundtrack's composer, a compilation's "Various Artists"). Each part
    is an index probe (an ``OR`` of the two would read the whole table)."""
    if kind == ALBUM:
        sql = f"SELECT id FROM tracks WHERE album_id = %(i)s AND status = '{INDEXED}' ORDER BY id LIMIT {SEED_TRACKS}"
    else:
        sql = (
            f"(SELECT id, 0 AS o FROM tracks WHERE artist_id = %(i)s AND status = '{INDEXED}' ORDER BY id "
            f"LIMIT {SEED_TRACKS}) UNION ALL (SELECT t.id, 1 FROM albums al JOIN tracks t ON t.album_id = al.id "
            f"WHERE al.artist_id = %(i)s AND t.status = '{INDEXED}' AND t.artist_id IS DISTINCT FROM %(i)s "
            f"ORDER BY t.id LIMIT {SEED_TRACKS}) ORDER BY o, id LIMIT {SEED_TRACKS}"
        )
    return snap.ids(sql, {"i": int(item_id)})
