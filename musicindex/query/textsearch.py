"""Search by words: the one rule of "a track matches these words", and the two answers built on it.

A track matches when its folded search text (title, artist, album, genre, folder; ``textnorm``) holds every word
of the query, inside words too, any case or accent: the trigram index (``tracks.search_grams``, GIN, migration
0006) narrows, ``LIKE`` decides (:func:`word_conditions`). :func:`search_tracks` ranks the matching tracks (title
matches first: the web page and ``/api/tracks``); :func:`search_catalog` pages artists, albums and songs (what
music apps search: Subsonic ``search3`` and ``/api/library/search``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from musicindex import textnorm
from musicindex.errors import InvalidArgumentError
from musicindex.query import catalog_rows as rows
from musicindex.query.items import SearchPage
from musicindex.query.results import SearchResult, TrackSummary
from musicindex.query.snapshot import Snapshot
from musicindex.query.validation import check_int, check_k, check_text
from musicindex.vocab import INDEXED

SEARCH_FIELDS = ("any", "title", "artist", "album")
SEARCH_CANDIDATES = 1000
"""At most this many matches of a track search are ranked (a longer query narrows the answer)."""
MAX_SEARCH_WORDS = 8
INDEXED_ALBUM = "al.song_count > 0"


def word_conditions(words: Sequence[str], prefix: str, track: str = "t") -> list[str]:
    """SQL conditions: the search text of the tracks row ``track`` holds every one of ``words`` (folded; the
    parameters of :func:`word_params`)."""
    out = []
    for i, w in enumerate(words):
        if textnorm.grams(w):
            out.append(f"{track}.search_grams @> %({prefix}g{i})s::int[]")
        out.append(f"{track}.search_text LIKE %({prefix}l{i})s")
    return out


def word_params(words: Sequence[str], prefix: str) -> dict[str, Any]:
    """The parameters of :func:`word_conditions` (words are letters and digits: nothing in them is LIKE syntax)."""
    params: dict[str, Any] = {}
    for i, w in enumerate(words):
        params[f"{prefix}g{i}"] = textnorm.grams(w)
        params[f"{prefix}l{i}"] = f"%{w}%"
    return params


def word_match_sql(words: Sequence[str], prefix: str) -> str:
    """SQL selecting the ids of the indexed tracks that match ``words``. Tracks whose search text was not made yet
    (read before the library existed) are matched on their raw title, artist, album, genre tag and path,
    case-insensitively, until the next ingest reads them again."""
    raw = "lower(concat_ws(' ', t.title, t.artist, t.album, t.genre_tag, t.path))"
    legacy = " AND ".join(f"{raw} LIKE %({prefix}l{i})s" for i in range(len(words)))
    return (
        f"SELECT t.id FROM tracks t WHERE t.status = '{INDEXED}' AND {' AND '.join(word_conditions(words, prefix))} "
        f"UNION ALL SELECT t.id FROM tracks t WHERE t.search_text IS NULL AND t.status = '{INDEXED}' AND {legacy}"
    )


def search_tracks(snap: Snapshot, query: str, field: str = "any", limit: int = 20, offset: int = 0) -> SearchResult:
    """Indexed tracks matching every word of ``query``, best first: title matches rank above artist, album and
    other ones, a word's start above its inside. ``field`` restricts the match to ``title``, ``artist`` or
    ``album``. At most ``SEARCH_CANDIDATES`` matches are ranked (``truncated`` says so)."""
    query = check_text(query, "query", max_length=1000, empty=True)
    if field not in SEARCH_FIELDS:
        raise InvalidArgumentError(f"unknown search field {field!r}; choose one of: {', '.join(SEARCH_FIELDS)}")
    limit = check_k(limit, "limit")
    offset = check_int(offset, "offset", 0, 10_000)
    words = textnorm.words(query)[:MAX_SEARCH_WORDS]
    if not words:
        raise InvalidArgumentError(f"search query {query!r} has no letter or digit to look for")
    gjoin, gexpr = snap.genre_join()
    found = snap.all(
        f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr} AS genre, t.duration FROM tracks t {gjoin}"
        f"WHERE t.id IN ({word_match_sql(words, 'w')}) LIMIT {SEARCH_CANDIDATES}",
        word_params(words, "w"),
    )
    ranked = sorted(
        ((score, r) for r in found if (score := _rank(r, words, field)) > 0),
        key=lambda pair: (-pair[0], textnorm.fold(pair[1].title), int(pair[1].id)),
    )
    return SearchResult(
        query=query,
        field=field,
        items=[TrackSummary.of(r) for _, r in ranked[offset : offset + limit]],
        candidates=len(ranked),
        truncated=len(found) >= SEARCH_CANDIDATES,
        limit=limit,
        offset=offset,
    )


_FIELD_WEIGHT = {"title": 3.0, "artist": 2.0, "album": 1.5}


def _rank(r: Any, words: Sequence[str], field: str) -> float:
    """How well a candidate row (title, artist, album) matches: per word, the best field it is in (title 3,
    artist 2, album 1.5, elsewhere 0.5; x1.5 at a word's start); 0 when ``field`` does not hold every word."""
    texts = {"title": textnorm.fold(r.title), "artist": textnorm.fold(r.artist), "album": textnorm.fold(r.album)}
    score = 0.0
    for w in words:
        best = 0.0
        for name, folded in texts.items():
            at = folded.find(w)
            if at >= 0:
                start = at == 0 or not folded[at - 1].isalnum()
                best = max(best, _FIELD_WEIGHT[name] * (1.5 if start else 1.0))
        if field != "any" and w not in texts[field]:
            return 0.0
        score += best or 0.5
    return score


def search_catalog(
    snap: Snapshot,
    query: str,
    user_id: int | None,
    artists: tuple[int, int],
    albums: tuple[int, int],
    songs: tuple[int, int],
) -> SearchPage:
    """Artists, albums and songs holding every word of ``query`` inside their names (songs: the rule of
    :func:`word_conditions`), each kind paged on its own ((count, offset)). An empty query (no letter or digit)
    lists everything, by name (songs by id)."""
    query = check_text(query or "", "query", max_length=1000, empty=True)
    words = textnorm.words(query)[:MAX_SEARCH_WORDS]
    params = word_params(words, "w")
    song_where = [f"t.status = '{INDEXED}'", *word_conditions(words, "w")]
    artist_where, album_where = [INDEXED_ALBUM], [INDEXED_ALBUM]
    for i in range(len(words)):
        artist_where.append(f"ar.name_key LIKE %(wl{i})s")
        album_where.append(f"(al.sort_key LIKE %(wl{i})s OR (al.folder IS NULL AND al.name_key LIKE %(wl{i})s))")
    song_order = "position(%(first)s IN t.search_text), t.id" if words else "t.id"
    if words:
        params["first"] = words[0]
    found_artists = _paged(
        snap,
        "SELECT ar.id FROM artists ar WHERE EXISTS (SELECT 1 FROM albums al WHERE al.artist_id = ar.id AND "
        f"{' AND '.join(artist_where)}) ORDER BY ar.sort_key, ar.id",
        artists, params,
    )  # fmt: skip
    found_albums = _paged(
        snap, f"SELECT al.id FROM albums al WHERE {' AND '.join(album_where)} ORDER BY al.sort_key, al.id", albums,
        params,
    )  # fmt: skip
    found_songs = _paged(
        snap, f"SELECT t.id FROM tracks t WHERE {' AND '.join(song_where)} ORDER BY {song_order}", songs, params
    )
    return SearchPage(
        query,
        rows.artists(snap, user_id, found_artists),
        rows.albums(snap, user_id, found_albums),
        rows.songs(snap, user_id, found_songs),
    )


def _paged(snap: Snapshot, sql: str, page: tuple[int, int], params: dict[str, Any]) -> list[int]:
    """The ids of one page (count, offset) of ``sql`` (none when the count is 0)."""
    n, offset = page
    return snap.ids(f"{sql} LIMIT {int(n)} OFFSET {int(offset)}", params) if n else []
