"""What a music app reports of a listener's playback, and what a listener keeps: bookmarks, playback reports (plays
and skips), the index-based play queue, the listener's maximum bitrate.

Each function is one transaction on behalf of one user (``user_id``; the caller authenticated it).

Playback reports (OpenSubsonic ``reportPlayback``): an app reports ``starting`` when a song begins, ``playing``
(on resume, and every few seconds if it likes), ``paused`` and ``stopped``, with the position. One open event per
(user, client) holds the song being played; the time between a ``playing`` report and the next report counts as
listened (times the playback rate, at most what was left of the song plus :data:`GRACE_MS`). The song counts as a
**play** (play count and last played of the song, its album and artist: :func:`state.scrobble`) once the listener
heard half of it or 4 minutes (Last.fm's rule), and as a **skip** when it stops (``stopped``, or another song
starting on that client) before 30 s or a quarter of it, whichever comes first. ``ignoreScrobble`` keeps "now
playing" only. :func:`skipped_track_ids` is what a mix reads to stop offering what a listener keeps skipping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from musicindex.errors import InvalidArgumentError, ItemNotFoundError, TrackNotFoundError
from musicindex.query.listener import SKIPPED_SQL
from musicindex.query.validation import check_text
from musicindex.users import state
from musicindex.vocab import PLAYBACK_STATES, PLAYING, STARTING, STOPPED

MAX_POSITION_MS = 2**53
PLAY_FRACTION, PLAY_MS = 0.5, 240_000
"""A song counts as played once half of it or 4 minutes were heard."""
SKIP_FRACTION, SKIP_MS = 0.25, 30_000
"""A song stopped before a quarter of it or 30 s were heard (whichever comes first) is a skip."""
GRACE_MS = 30_000
"""How far past the rest of the song one interval between reports may count (a late report)."""
MAX_BOOKMARKS = 1000
"""Most bookmarks per listener."""


@dataclass(frozen=True)
class Bookmark:
    track_id: int
    position_ms: int
    comment: str | None
    created: dt.datetime
    changed: dt.datetime


@dataclass(frozen=True)
class PlaybackReport:
    """What :func:`report` made of one report: the event, what it counted."""

    event_id: int
    track_id: int
    state: str
    listened_ms: int
    counted: bool
    """This report made the song count as a play."""
    skipped: bool
    """This report (or the closing of the event before it) recorded a skip."""


def _position(value: Any, name: str = "position") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_POSITION_MS:
        raise InvalidArgumentError(f"{name} must be a number of milliseconds >= 0, got {value!r}")
    return value


def _track(s: Session, track_id: int) -> float | None:
    """The track's duration in seconds (None: unknown); ``TrackNotFoundError`` when there is no such track."""
    row = s.execute(text("SELECT duration FROM tracks WHERE id = :t"), {"t": int(track_id)}).first()
    if row is None:
        raise TrackNotFoundError(f"no track with id {track_id}")
    return float(row[0]) if row[0] is not None else None


# --------------------------------------------------------------------------- bookmarks
def create_bookmark(db: Any, user_id: int, track_id: int, position_ms: int, comment: str | None = None) -> None:
    """Keep ``position_ms`` in ``track_id`` for the user (replacing their bookmark of that song)."""
    position_ms = _position(position_ms)
    if comment is not None:
        comment = check_text(comment, "comment", max_length=2000, empty=True)
    with db.session() as s:
        _track(s, track_id)
        count = s.execute(text("SELECT count(*) FROM bookmarks WHERE user_id = :u"), {"u": user_id}).scalar_one()
        exists = s.execute(
            text("SELECT 1 FROM bookmarks WHERE user_id = :u AND track_id = :t"), {"u": user_id, "t": track_id}
        ).first()
        if exists is None and count >= MAX_BOOKMARKS:
            raise InvalidArgumentError(f"at most {MAX_BOOKMARKS} bookmarks per listener; delete some first")
        s.execute(
            text(
                "INSERT INTO bookmarks (user_id, track_id, position_ms, comment) VALUES (:u, :t, :p, :c) "
                "ON CONFLICT (user_id, track_id) DO UPDATE SET position_ms = EXCLUDED.position_ms, "
                "comment = EXCLUDED.comment, changed_at = now()"
            ),
            {"u": user_id, "t": int(track_id), "p": position_ms, "c": comment},
        )


def bookmarks(db: Any, user_id: int) -> list[Bookmark]:
    """The user's bookmarks, most recently changed first."""
    with db.session() as s:
        rows = s.execute(
            text(
                "SELECT track_id, position_ms, comment, created_at, changed_at FROM bookmarks "
                "WHERE user_id = :u ORDER BY changed_at DESC, track_id"
            ),
            {"u": user_id},
        ).all()
    return [Bookmark(int(r[0]), int(r[1]), r[2], r[3], r[4]) for r in rows]


def delete_bookmark(db: Any, user_id: int, track_id: int) -> None:
    """Delete the user's bookmark of ``track_id`` (``ItemNotFoundError`` when there is none)."""
    with db.session() as s:
        gone = s.execute(
            text("DELETE FROM bookmarks WHERE user_id = :u AND track_id = :t RETURNING track_id"),
            {"u": user_id, "t": int(track_id)},
        ).first()
    if gone is None:
        raise ItemNotFoundError(f"no bookmark of song {track_id}")


# --------------------------------------------------------------------------- playback reports
def report(
    db: Any,
    user_id: int,
    track_id: int,
    state_name: str,
    position_ms: int,
    *,
    rate: float = 1.0,
    ignore_scrobble: bool = False,
    client: str = "",
    now: dt.datetime | None = None,
) -> PlaybackReport:
    """Record one playback report (module docstring); ``now`` is for tests (default: the database's clock)."""
    if state_name not in PLAYBACK_STATES:
        raise InvalidArgumentError(f"state must be one of {', '.join(PLAYBACK_STATES)}, got {state_name!r}")
    position_ms = _position(position_ms, "positionMs")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < float(rate) <= 16:
        raise InvalidArgumentError(f"playbackRate must be a number above 0 and at most 16, got {rate!r}")
    client = check_text(client or "unknown", "client", max_length=200)
    with db.session() as s:
        duration = _track(s, track_id)
        when = now or s.execute(text("SELECT now()")).scalar_one()
        s.execute(text("SELECT pg_advisory_xact_lock(hashtext('play_events'), :u)"), {"u": user_id})
        event = s.execute(
            text(
                "SELECT id, track_id, state, position_ms, listened_ms, rate, counted, reported_at, ignore_scrobble "
                "FROM play_events WHERE user_id = :u AND client = :c AND ended_at IS NULL"
            ),
            {"u": user_id, "c": client},
        ).first()
        skipped = False
        if event is not None and (state_name == STARTING or int(event[1]) != int(track_id)):
            skipped = _close(s, event, when, int(event[3]))  # the app moved on: the old song ends where it was
            event = None
        if event is None:
            if state_name == STOPPED:  # a stop without a start: nothing was being played here
                return PlaybackReport(0, int(track_id), state_name, 0, False, skipped)
            event_id = int(
                s.execute(
                    text(
                        "INSERT INTO play_events (user_id, track_id, client, state, position_ms, rate, "
                        "ignore_scrobble, started_at, reported_at) VALUES (:u, :t, :c, :st, :p, :r, :i, :w, :w) "
                        "RETURNING id"
                    ),
                    {
                        "u": user_id,
                        "t": int(track_id),
                        "c": client,
                        "st": state_name,
                        "p": position_ms,
                        "r": float(rate),
                        "i": bool(ignore_scrobble),
                        "w": when,
                    },
                ).scalar_one()
            )
            listened, counted_before, ignored, before = 0, False, bool(ignore_scrobble), STARTING
        else:
            event_id, counted_before, before = int(event[0]), bool(event[6]), str(event[2])
            ignored = bool(event[8]) or bool(ignore_scrobble)
            listened = int(event[4]) + _interval(event, when, duration)
        counted = False
        if not counted_before and not ignored and _heard(listened, duration, PLAY_FRACTION, PLAY_MS):
            state.scrobble_in(s, user_id, [int(track_id)], [when])
            counted = True
        if state_name == STOPPED:
            skipped = _is_skip(before, listened, position_ms, duration, counted_before or counted or ignored) or skipped
        _now_playing(s, user_id, client, int(track_id), when, playing=state_name != STOPPED)
        s.execute(
            text(
                "UPDATE play_events SET state = :st, position_ms = :p, listened_ms = :l, rate = :r, "
                "counted = counted OR :counted, ignore_scrobble = :i, reported_at = :w, skipped = :k, "
                "ended_at = CASE WHEN :st = 'stopped' THEN CAST(:w AS timestamptz) END WHERE id = :e"
            ),
            {
                "st": state_name,
                "p": position_ms,
                "l": listened,
                "r": float(rate),
                "counted": counted,
                "i": ignored,
                "w": when,
                "k": state_name == STOPPED and skipped,
                "e": event_id,
            },
        )
    return PlaybackReport(event_id, int(track_id), state_name, listened, counted, skipped)


def _now_playing(s: Session, user_id: int, client: str, track_id: int, when: dt.datetime, *, playing: bool) -> None:
    if not playing:
        s.execute(text("DELETE FROM now_playing WHERE user_id = :u AND client = :c"), {"u": user_id, "c": client})
        return
    s.execute(
        text(
            "INSERT INTO now_playing (user_id, client, track_id, started_at) VALUES (:u, :c, :t, :w) "
            "ON CONFLICT (user_id, client) DO UPDATE SET track_id = EXCLUDED.track_id, "
            "started_at = CASE WHEN now_playing.track_id = EXCLUDED.track_id THEN now_playing.started_at "
            "ELSE EXCLUDED.started_at END"
        ),
        {"u": user_id, "c": client, "t": track_id, "w": when},
    )


def _interval(event: Any, when: dt.datetime, duration: float | None) -> int:
    """Milliseconds heard since the event's last report: only while it was playing, times its rate, at most the
    rest of the song plus :data:`GRACE_MS`."""
    if event[2] != PLAYING:
        return 0
    elapsed = max(0.0, (when - event[7]).total_seconds() * 1000) * float(event[5])
    if duration is not None:
        elapsed = min(elapsed, max(0.0, duration * 1000 - int(event[3])) + GRACE_MS)
    return int(elapsed)


def _heard(listened_ms: int, duration: float | None, fraction: float, cap_ms: int) -> bool:
    need = cap_ms if duration is None else min(cap_ms, fraction * duration * 1000)
    return listened_ms >= need


def _is_skip(before: str, listened_ms: int, position_ms: int, duration: float | None, exempt: bool) -> bool:
    """A playback that ends now (it was in state ``before``) is a skip: it was played (never only "starting"),
    neither counted as a play nor exempt, and heard for less than 30 s or a quarter of the song. An app that never
    said "playing" is judged by its position."""
    if exempt or (before == STARTING and listened_ms == 0):
        return False
    heard = listened_ms if listened_ms > 0 else position_ms
    return not _heard(heard, duration, SKIP_FRACTION, SKIP_MS)


def _close(s: Session, event: Any, when: dt.datetime, position_ms: int) -> bool:
    """End an open event where the app left it (another song started on that client); whether it was a skip."""
    duration = _track(s, int(event[1]))
    listened = int(event[4]) + _interval(event, when, duration)
    skipped = _is_skip(str(event[2]), listened, position_ms, duration, bool(event[6]) or bool(event[8]))
    s.execute(
        text("UPDATE play_events SET ended_at = :w, state = :st, listened_ms = :l, skipped = :k WHERE id = :e"),
        {"w": when, "st": STOPPED, "l": listened, "k": skipped, "e": int(event[0])},
    )
    return skipped


def skipped_track_ids(db: Any, user_id: int, *, min_skips: int = 2, days: int = 90) -> list[int]:
    """The songs the user skipped at least ``min_skips`` times in the last ``days`` days, more often than they
    played them through in that time: what a mix should stop offering them. Most skipped first."""
    if min_skips < 1 or not 1 <= days <= 36500:
        raise InvalidArgumentError("min_skips must be >= 1 and days between 1 and 36500")
    with db.session() as s:
        rows = s.connection().exec_driver_sql(SKIPPED_SQL, {"u": user_id, "d": days, "k": min_skips}).all()
    return [int(r[0]) for r in rows]


# --------------------------------------------------------------------------- the index-based play queue
def save_play_queue_by_index(
    db: Any, user_id: int, track_ids: Sequence[int], current_index: int | None, position_ms: int, client: str
) -> None:
    """Replace the play queue, its current entry named by position (``indexBasedQueue``; the same song may be in it
    twice). No songs: the queue is deleted (and ``current_index`` must be None)."""
    ids = [int(t) for t in track_ids]
    if not ids:
        if current_index is not None:
            raise InvalidArgumentError("currentIndex is given without any song")
        state.save_play_queue(db, user_id, [], None, 0, client)
        return
    if current_index is None or not 0 <= current_index < len(ids):
        raise InvalidArgumentError(f"currentIndex must be between 0 and {len(ids) - 1}")
    state.save_play_queue(db, user_id, ids, ids[current_index], position_ms, client)
    with db.session() as s:
        s.execute(
            text("UPDATE play_queues SET current_index = :i WHERE user_id = :u"), {"i": current_index, "u": user_id}
        )


def play_queue_index(db: Any, user_id: int, track_ids: Sequence[int], current: int | None) -> int | None:
    """The index of the current entry of the user's queue (``track_ids``, current ``current``, as read): the saved
    one while it still names ``current``, else the first place of ``current``."""
    if current is None:
        return None
    with db.session() as s:
        saved = s.execute(text("SELECT current_index FROM play_queues WHERE user_id = :u"), {"u": user_id}).scalar()
    ids = [int(t) for t in track_ids]
    if saved is not None and 0 <= int(saved) < len(ids) and ids[int(saved)] == int(current):
        return int(saved)
    return ids.index(int(current)) if int(current) in ids else None


# --------------------------------------------------------------------------- the listener's maximum bitrate
def set_max_bit_rate(db: Any, user_id: int, kbps: int) -> None:
    """The most kilobits per second of the user's streams: 0 (no limit of their own) or 32 to 320."""
    if isinstance(kbps, bool) or not isinstance(kbps, int) or not (kbps == 0 or 32 <= kbps <= 320):
        raise InvalidArgumentError(f"a maximum bitrate is 0 (no limit) or 32 to 320 kbps, got {kbps!r}")
    with db.session() as s:
        s.execute(text("UPDATE users SET max_bit_rate = :k WHERE id = :u"), {"k": kbps or None, "u": user_id})


def max_bit_rate(db: Any, user_id: int) -> int | None:
    """The user's own maximum in kbps (None: none)."""
    with db.session() as s:
        value = s.execute(text("SELECT max_bit_rate FROM users WHERE id = :u"), {"u": user_id}).scalar()
    return int(value) if value else None
