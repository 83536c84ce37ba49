"""A listener's state, the write side: stars, ratings, plays, now playing, the play queue and playlists.

Each function is one transaction on behalf of one user (``user_id``; the caller authenticated it). Items are named
``(item_type, id)`` with ``item_type`` in ``vocab.ITEM_TYPES``; an unknown one is a ``TrackNotFoundError`` (tracks)
or ``ItemNotFoundError`` (albums, artists, playlists). The read side is ``musicindex.query.catalog``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.orm import Session

from musicindex.db.orm import Annotation
from musicindex.db.upsert import upsert
from musicindex.errors import InvalidArgumentError, ItemNotFoundError, PermissionDeniedError, TrackNotFoundError
from musicindex.query.validation import check_text
from musicindex.vocab import ALBUM, ARTIST, INDEXED, ITEM_TYPES, TRACK

ItemRef = tuple[str, int]
MAX_ITEMS = 1000
"""At most this many items in one call (stars, scrobbles, queue entries, songs added to a playlist)."""
MAX_PLAYLIST = 10_000
"""Longest playlist."""
_TABLES = {TRACK: "tracks", ALBUM: "albums", ARTIST: "artists"}


def _check_items(s: Session, items: Sequence[ItemRef]) -> list[ItemRef]:
    """``items`` (duplicates dropped) after checking that each exists."""
    wanted = list(dict.fromkeys((str(k), int(i)) for k, i in items))
    if len(wanted) > MAX_ITEMS:
        raise InvalidArgumentError(f"at most {MAX_ITEMS} items at once")
    for kind in ITEM_TYPES:
        ids = [i for k, i in wanted if k == kind]
        if not ids:
            continue
        found = {
            int(r[0]) for r in s.execute(text(f"SELECT id FROM {_TABLES[kind]} WHERE id = ANY(:ids)"), {"ids": ids})
        }
        missing = [i for i in ids if i not in found]
        if missing:
            error = TrackNotFoundError if kind == TRACK else ItemNotFoundError
            raise error(f"no {kind} with id {missing[0]}")
    if any(k not in ITEM_TYPES for k, _ in wanted):
        raise InvalidArgumentError(f"items are {', '.join(ITEM_TYPES)}")
    return wanted


def _annotate(s: Session, user_id: int, items: Sequence[ItemRef], **values: Any) -> None:
    """Set ``values`` (columns of ``annotations``) on the user's annotation of each item (created as needed)."""
    rows = [{"user_id": user_id, "item_type": k, "item_id": i, **values} for k, i in items]
    upsert(s, Annotation, rows, keys=("user_id", "item_type", "item_id"), update=tuple(values))


def set_starred(db: Any, user_id: int, items: Sequence[ItemRef], starred: bool) -> int:
    """Star (now) or unstar ``items``; how many."""
    with db.session() as s:
        checked = _check_items(s, items)
        _annotate(s, user_id, checked, starred_at=dt.datetime.now(dt.UTC) if starred else None)
    return len(checked)


def set_rating(db: Any, user_id: int, item: ItemRef, rating: int) -> None:
    """Rate ``item`` 1 to 5; 0 clears the rating."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 0 <= rating <= 5:
        raise InvalidArgumentError(f"a rating is an integer from 0 (none) to 5, got {rating!r}")
    with db.session() as s:
        _annotate(s, user_id, _check_items(s, [item]), rating=rating or None)


def _tracks(s: Session, track_ids: Iterable[int], *, indexed: bool = False) -> list[int]:
    """``track_ids`` as given (order and repeats kept) after checking each exists (and is indexed)."""
    ids = [int(t) for t in track_ids]
    if len(ids) > MAX_ITEMS:
        raise InvalidArgumentError(f"at most {MAX_ITEMS} tracks at once")
    cond = f" AND status = '{INDEXED}'" if indexed else ""
    found = {int(r[0]) for r in s.execute(text(f"SELECT id FROM tracks WHERE id = ANY(:ids){cond}"), {"ids": ids})}
    for t in ids:
        if t not in found:
            raise TrackNotFoundError(f"no {'indexed ' if indexed else ''}track with id {t}")
    return ids


def scrobble(
    db: Any,
    user_id: int,
    track_ids: Sequence[int],
    times: Sequence[dt.datetime | None] = (),
    *,
    submission: bool = True,
    client: str = "",
) -> None:
    """``submission``: each track was played (at its time, else now): its play count goes up by one and its last
    played time is set, and so are its album's and artist's. Otherwise the last of ``track_ids`` is what the user
    is playing now on ``client``."""
    client = check_text(client or "unknown", "client", max_length=200)
    with db.session() as s:
        ids = _tracks(s, track_ids)
        if not ids:
            return
        if not submission:
            s.execute(
                text(
                    "INSERT INTO now_playing (user_id, client, track_id, started_at) VALUES (:u, :c, :t, now()) "
                    "ON CONFLICT (user_id, client) DO UPDATE SET track_id = EXCLUDED.track_id, started_at = now()"
                ),
                {"u": user_id, "c": client, "t": ids[-1]},
            )
            return
        scrobble_in(s, user_id, ids, times)


def scrobble_in(s: Session, user_id: int, ids: Sequence[int], times: Sequence[dt.datetime | None] = ()) -> None:
    """The plays of ``ids`` (checked to exist) in the open session ``s``: play count and last played of each song,
    its album and artist."""
    owners = {
        int(r[0]): (r[1], r[2])
        for r in s.execute(text("SELECT id, album_id, artist_id FROM tracks WHERE id = ANY(:ids)"), {"ids": ids})
    }
    now = dt.datetime.now(dt.UTC)
    for j, tid in enumerate(ids):
        when = times[j] if j < len(times) and times[j] is not None else now
        album, artist = owners[tid]
        played = [(TRACK, tid)] + [(k, int(i)) for k, i in ((ALBUM, album), (ARTIST, artist)) if i is not None]
        rows = [{"user_id": user_id, "item_type": k, "item_id": i, "play_count": 1, "last_played": when}
                for k, i in played]  # fmt: skip
        upsert(
            s,
            Annotation,
            rows,
            keys=("user_id", "item_type", "item_id"),
            update=(),
            also_set={
                "play_count": Annotation.play_count + 1,
                "last_played": func.greatest(Annotation.last_played, when),
            },
        )


def save_play_queue(
    db: Any, user_id: int, track_ids: Sequence[int], current: int | None, position_ms: int, client: str
) -> None:
    """Replace the user's play queue (an empty one deletes it)."""
    client = check_text(client or "unknown", "client", max_length=200)
    if isinstance(position_ms, bool) or not isinstance(position_ms, int) or not 0 <= position_ms < 2**53:
        raise InvalidArgumentError(f"position must be a number of milliseconds >= 0, got {position_ms!r}")
    with db.session() as s:
        ids = _tracks(s, track_ids)
        if not ids:
            s.execute(text("DELETE FROM play_queues WHERE user_id = :u"), {"u": user_id})
            return
        if current is not None and current not in ids:
            raise InvalidArgumentError(f"the current track {current} is not in the queue")
        s.execute(
            text(
                "INSERT INTO play_queues (user_id, track_ids, current_id, position_ms, changed_at, changed_by) "
                "VALUES (:u, :ids, :c, :p, now(), :by) ON CONFLICT (user_id) DO UPDATE SET track_ids = :ids, "
                "current_id = :c, position_ms = :p, changed_at = now(), changed_by = :by"
            ),
            {"u": user_id, "ids": ids, "c": current, "p": position_ms, "by": client},
        )


# --------------------------------------------------------------------------- playlists
def _own_playlist(s: Session, user_id: int, playlist_id: int, is_admin: bool) -> None:
    row = s.execute(text("SELECT owner_id FROM playlists WHERE id = :p FOR UPDATE"), {"p": playlist_id}).first()
    if row is None:
        raise ItemNotFoundError(f"no playlist with id {playlist_id}")
    if int(row[0]) != user_id and not is_admin:
        raise PermissionDeniedError(f"playlist {playlist_id} belongs to another user")


def _write_entries(s: Session, playlist_id: int, track_ids: Sequence[int]) -> None:
    if len(track_ids) > MAX_PLAYLIST:
        raise InvalidArgumentError(f"a playlist holds at most {MAX_PLAYLIST} tracks")
    s.execute(text("DELETE FROM playlist_tracks WHERE playlist_id = :p"), {"p": playlist_id})
    if track_ids:
        s.execute(
            text(
                "INSERT INTO playlist_tracks (playlist_id, position, track_id) "
                "SELECT :p, o - 1, t FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS e(t, o)"
            ),
            {"p": playlist_id, "ids": list(track_ids)},
        )
    s.execute(text("UPDATE playlists SET changed_at = now() WHERE id = :p"), {"p": playlist_id})


def _entries(s: Session, playlist_id: int) -> list[int]:
    return [
        int(r[0])
        for r in s.execute(
            text("SELECT track_id FROM playlist_tracks WHERE playlist_id = :p ORDER BY position"), {"p": playlist_id}
        )
    ]


def create_playlist(
    db: Any,
    user_id: int,
    name: str | None,
    track_ids: Sequence[int],
    *,
    playlist_id: int | None = None,
    is_admin: bool = False,
) -> int:
    """A new playlist of ``track_ids`` named ``name``; with ``playlist_id``, that playlist's tracks replaced (and its
    name, when given). Returns the playlist's id."""
    if name is not None:
        name = check_text(name, "name", max_length=500)
    with db.session() as s:
        ids = _tracks(s, track_ids)
        if playlist_id is None:
            if name is None:
                raise InvalidArgumentError("a new playlist needs a name")
            playlist_id = int(
                s.execute(
                    text("INSERT INTO playlists (owner_id, name) VALUES (:u, :n) RETURNING id"),
                    {"u": user_id, "n": name},
                ).scalar_one()
            )
        else:
            _own_playlist(s, user_id, playlist_id, is_admin)
            if name is not None:
                s.execute(text("UPDATE playlists SET name = :n WHERE id = :p"), {"n": name, "p": playlist_id})
        _write_entries(s, playlist_id, ids)
    return playlist_id


def update_playlist(
    db: Any,
    user_id: int,
    playlist_id: int,
    *,
    name: str | None = None,
    comment: str | None = None,
    public: bool | None = None,
    add: Sequence[int] = (),
    remove_positions: Sequence[int] = (),
    is_admin: bool = False,
) -> None:
    """Rename, comment, share (``public``), remove the entries at ``remove_positions`` (0-based, of the playlist
    before this change) and append ``add``."""
    changes = {
        k: check_text(v, k, max_length=500 if k == "name" else 5000, empty=k == "comment")
        for k, v in (("name", name), ("comment", comment))
        if v is not None
    }
    with db.session() as s:
        _own_playlist(s, user_id, playlist_id, is_admin)
        for column, value in [*changes.items(), *([("public", bool(public))] if public is not None else [])]:
            s.execute(text(f"UPDATE playlists SET {column} = :v WHERE id = :p"), {"v": value, "p": playlist_id})
        if add or remove_positions:
            entries = _entries(s, playlist_id)
            drop = {int(i) for i in remove_positions}
            if any(not 0 <= i < len(entries) for i in drop):
                raise InvalidArgumentError(f"songIndexToRemove must be between 0 and {len(entries) - 1}")
            kept = [t for j, t in enumerate(entries) if j not in drop]
            _write_entries(s, playlist_id, kept + _tracks(s, add))
        else:
            s.execute(text("UPDATE playlists SET changed_at = now() WHERE id = :p"), {"p": playlist_id})


def delete_playlist(db: Any, user_id: int, playlist_id: int, *, is_admin: bool = False) -> None:
    """Delete a playlist (its owner, or an admin)."""
    with db.session() as s:
        _own_playlist(s, user_id, playlist_id, is_admin)
        s.execute(text("DELETE FROM playlists WHERE id = :p"), {"p": playlist_id})
