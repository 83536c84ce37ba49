"""The library model, maintained by ingestion: each indexed track's artist and album, the albums' counters and
covers, and the columns search and browsing read.

* :func:`track_values` turns what an analysis read from a file (its tags) into the ``tracks`` columns of the
  library (album artist, track and disc numbers, genres, MusicBrainz id, bit rate, embedded picture, the folded
  search text and its trigram hashes);
* :func:`assign` gives tracks their artist and album rows, from their stored columns: the album artist (else the
  artist) and the album tag; a track without an album tag belongs to an album named after its folder, keyed by
  the folder (two folders never merge into one "Unknown" album), by the artist named after the folder above
  (when it lies inside an ingested root) or after the folder itself;
* :func:`refresh_albums` recounts albums (indexed tracks only) and, in the worker, finds their covers: a
  ``cover.*``/``folder.*``/``front.*``/``albumart.*``/``album.*`` image beside their files, else a track's
  embedded picture.

Artists and albums are never deleted: an album emptied by a re-tag keeps its id (and its stars) for when the
tag comes back; lists show only albums with indexed tracks. Everything runs in the caller's transaction.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from musicindex import textnorm
from musicindex.db.paths import display, fs_path, raw_bytes
from musicindex.ingest.scan import outermost, within
from musicindex.vocab import COVER_NAMES, INDEXED

TAGS_VERSION = 1
"""Version of what :func:`track_values` fills; tracks read by an older one (or before the library existed) are
read again by the next ingest (tags only, no audio work)."""
COVER_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")
MAX_NAME = 500


def track_values(tags: dict[str, Any], path: str) -> dict[str, Any]:
    """The library columns of a track from its tags (``audio.read_tags``) and its path (display form)."""
    folder = os.path.basename(os.path.dirname(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    genres = [display(g).replace("\x00", " ") for g in tags.get("genres") or []]
    text_of = [tags.get("title") or stem, tags.get("artist"), tags.get("albumartist"), tags.get("album"), *genres]
    search = textnorm.search_text([*(display(t) for t in text_of if t), display(folder)])
    return {
        "album_artist": _clean(tags.get("albumartist")),
        "track_no": tags.get("track"),
        "disc_no": tags.get("disc"),
        "musicbrainz_id": _clean(tags.get("musicbrainz_id")),
        "bit_rate": tags.get("bit_rate"),
        "has_picture": bool(tags.get("has_picture")),
        "genres": genres,
        "search_text": search,
        "search_grams": textnorm.grams(search),
        "tags_version": TAGS_VERSION,
    }


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    s = display(str(value)).replace("\x00", " ").strip()
    return s[:MAX_NAME] or None


def known_roots(session: Session) -> list[str]:
    """The outermost roots of every ingest (where folder-named artists stop)."""
    rows = session.execute(text("SELECT DISTINCT jsonb_array_elements_text(roots) FROM ingest_batches")).scalars()
    return outermost([str(r) for r in rows])


def names_for(path: str, artist: str | None, album_artist: str | None, album: str | None, roots: Sequence[str]):
    """(album artist name, album name, album folder or None, track artist name) of a track: its tags, else
    names from its folders (see the module docstring)."""
    folder = os.path.dirname(path)
    folder_name = os.path.basename(folder) or folder or "/"
    parent = os.path.dirname(folder)
    inside = bool(roots) and within(parent, roots) and parent not in roots
    folder_artist = os.path.basename(parent) if inside and os.path.basename(parent) else folder_name
    album_artist_name = album_artist or artist or folder_artist
    if album:
        return album_artist_name, album, None, artist or album_artist_name
    return album_artist_name, folder_name, folder, artist or album_artist_name


def assign(session: Session, track_ids: Iterable[int]) -> set[int]:
    """Give ``track_ids`` their artist and album (rows created as needed); the ids of the albums they left or
    joined (to refresh)."""
    ids = sorted({int(t) for t in track_ids})
    if not ids:
        return set()
    rows = session.execute(
        text(
            "SELECT id, path, artist, album_artist, album, album_id FROM tracks WHERE id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"ids": ids},
    ).all()
    if not rows:
        return set()
    roots = known_roots(session)
    plans = []
    for tid, path, artist, album_artist, album, old_album in rows:
        aa, al, folder, track_artist = names_for(path, artist, album_artist, album, roots)
        plans.append((int(tid), aa, al, folder, track_artist, old_album))
    artist_ids = _artists(session, {n for p in plans for n in (p[1], p[4])})
    album_ids = _albums(session, {(artist_ids[textnorm.fold(p[1])], p[2], p[3]) for p in plans})
    values = []
    for tid, aa, al, folder, track_artist, _old in plans:
        key = (artist_ids[textnorm.fold(aa)], _album_key(al, folder))
        values.append({"t": tid, "ar": artist_ids[textnorm.fold(track_artist)], "al": album_ids[key]})
    session.execute(
        text(
            "UPDATE tracks SET artist_id = :ar, album_id = :al WHERE id = :t "
            "AND (artist_id, album_id) IS DISTINCT FROM (CAST(:ar AS bigint), CAST(:al AS bigint))"
        ),
        values,
    )
    return {v["al"] for v in values} | {int(p[5]) for p in plans if p[5] is not None}


def _album_key(name: str, folder: str | None) -> str:
    """What identifies an album under its artist: the folded name; for a folder-named album, the folder."""
    return "folder:" + folder if folder is not None else textnorm.fold(name)


def _artists(session: Session, names: set[str]) -> dict[str, int]:
    """Folded name -> artist id for ``names`` (created when new; the first spelling seen is kept)."""
    by_key = {textnorm.fold(n): n for n in sorted(names) if n}
    if not by_key:
        return {}
    rows = [{"n": n[:MAX_NAME], "k": k, "s": textnorm.sort_key(n)} for k, n in by_key.items()]
    session.execute(
        text("INSERT INTO artists (name, name_key, sort_key) VALUES (:n, :k, :s) ON CONFLICT (name_key) DO NOTHING"),
        rows,
    )
    found = session.execute(
        text("SELECT name_key, id FROM artists WHERE name_key = ANY(:keys)"), {"keys": list(by_key)}
    ).all()
    return {str(k): int(i) for k, i in found}


def _albums(session: Session, wanted: set[tuple[int, str, str | None]]) -> dict[tuple[int, str], int]:
    """(artist id, album key) -> album id for ``wanted`` (artist id, name, folder), created when new."""
    if not wanted:
        return {}
    rows = [
        {"a": a, "n": n[:MAX_NAME], "k": _album_key(n, f), "s": textnorm.sort_key(n), "f": f}
        for a, n, f in sorted(wanted, key=lambda w: (w[0], w[1], w[2] or ""))
    ]
    session.execute(
        text(
            "INSERT INTO albums (artist_id, name, name_key, sort_key, folder) VALUES (:a, :n, :k, :s, :f) "
            "ON CONFLICT (artist_id, name_key) DO NOTHING"
        ),
        rows,
    )
    found = session.execute(
        text(
            "SELECT a.artist_id, a.name_key, a.id FROM albums a "
            "JOIN unnest(CAST(:artists AS bigint[]), CAST(:keys AS text[])) AS w(artist_id, name_key) "
            "ON a.artist_id = w.artist_id AND a.name_key = w.name_key"
        ),
        {"artists": [r["a"] for r in rows], "keys": [r["k"] for r in rows]},
    ).all()
    return {(int(a), str(k)): int(i) for a, k, i in found}


def refresh_albums(session: Session, album_ids: Iterable[int] | None, *, covers: bool = False) -> int:
    """Recount ``album_ids`` (None: every album) from their indexed tracks: songs, duration, size, year (the
    latest), genre (the most common genre tag, else label) and, with ``covers``, where the cover comes from.
    Returns how many albums were refreshed."""
    ids = None if album_ids is None else sorted({int(a) for a in album_ids if a is not None})
    if ids is not None and not ids:
        return 0
    scope = "" if ids is None else "WHERE al.id = ANY(CAST(:ids AS bigint[]))"
    n = session.execute(
        text(
            "WITH s AS (SELECT al.id, count(t.id) AS n, coalesce(sum(t.duration), 0) AS d, "
            "coalesce(sum(t.size), 0) AS b, max(t.year) AS y, "
            "mode() WITHIN GROUP (ORDER BY coalesce(t.genres[1], t.label)) AS g "
            f"FROM albums al LEFT JOIN tracks t ON t.album_id = al.id AND t.status = '{INDEXED}' {scope} "
            "GROUP BY al.id) "
            "UPDATE albums a SET song_count = s.n, duration = s.d, size = s.b, year = s.y, genre = s.g, "
            "updated_at = now() FROM s WHERE a.id = s.id "
            "AND (a.song_count, a.duration, a.size, a.year, a.genre) IS DISTINCT FROM (s.n, s.d, s.b, s.y, s.g)"
        ),
        {} if ids is None else {"ids": ids},
    ).rowcount  # type: ignore[attr-defined]
    if covers:
        _find_covers(session, ids)
    return int(n or 0)


def _find_covers(session: Session, album_ids: list[int] | None) -> None:
    """Where each album's cover comes from: an image beside its files (the first of ``COVER_NAMES`` found), else
    the embedded picture of its first track that has one; nothing when neither exists."""
    scope = "" if album_ids is None else "AND t.album_id = ANY(CAST(:ids AS bigint[]))"
    rows = session.execute(
        text(
            "SELECT t.album_id, t.id, t.path, t.path_bytes, t.has_picture FROM tracks t "
            f"WHERE t.status = '{INDEXED}' AND t.album_id IS NOT NULL {scope} "
            "ORDER BY t.album_id, t.disc_no NULLS FIRST, t.track_no NULLS FIRST, t.id"
        ),
        {} if album_ids is None else {"ids": album_ids},
    ).all()
    by_album: dict[int, list[Any]] = {}
    for r in rows:
        by_album.setdefault(int(r[0]), []).append(r)
    updates = []
    listed: dict[str, str | None] = {}
    for album_id, tracks in by_album.items():
        cover: dict[str, Any] = {"a": album_id, "k": None, "p": None, "b": None, "t": None}
        for folder in dict.fromkeys(os.path.dirname(fs_path(t[2], t[3])) for t in tracks[:50]):
            if folder not in listed:
                listed[folder] = _cover_file(folder)
            found = listed[folder]
            if found is not None:
                cover.update(k="file", p=display(found), b=raw_bytes(found))
                break
        else:
            with_picture = next((t for t in tracks if t[4]), None)
            if with_picture is not None:
                cover.update(k="embedded", t=int(with_picture[1]))
        updates.append(cover)
    if updates:
        session.execute(
            text(
                "UPDATE albums SET cover_kind = :k, cover_path = :p, cover_path_bytes = :b, cover_track_id = :t "
                "WHERE id = :a AND (cover_kind, cover_path, cover_path_bytes, cover_track_id) "
                "IS DISTINCT FROM (CAST(:k AS varchar), CAST(:p AS text), CAST(:b AS bytea), CAST(:t AS bigint))"
            ),
            updates,
        )


def _cover_file(folder: str) -> str | None:
    """The cover image in ``folder`` (a regular file, not a link), or None."""
    try:
        with os.scandir(folder) as entries:
            images: dict[str, str] = {}
            for e in entries:
                stem, suffix = os.path.splitext(e.name)
                if (
                    suffix.lower() in COVER_SUFFIXES
                    and stem.lower() in COVER_NAMES
                    and e.is_file(follow_symlinks=False)
                ):
                    images.setdefault(stem.lower(), e.path)
    except OSError:
        return None
    return next((images[n] for n in COVER_NAMES if n in images), None)


def albums_of(session: Session, track_ids: Sequence[int]) -> set[int]:
    """The albums of ``track_ids`` (to refresh after their status changed)."""
    if not track_ids:
        return set()
    return {
        int(a)
        for a in session.execute(
            text(
                "SELECT DISTINCT album_id FROM tracks WHERE id = ANY(CAST(:ids AS bigint[])) AND album_id IS NOT NULL"
            ),
            {"ids": [int(t) for t in track_ids]},
        ).scalars()
    }
