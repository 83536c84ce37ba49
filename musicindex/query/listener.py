"""``ListenerService``: a listener's state as the listener's apps read it (``index.listener``). Reads only.

What a listener starred, what every listener is playing now, a listener's saved play queue and playlists (their
own and the public ones of others), and the seeds of "for you" (their latest stars and most played songs). The
write side is ``musicindex.users`` (``index.users``); the Subsonic API and the web page read these same answers, so
a star set in one shows in the other.
"""

from __future__ import annotations

from dataclasses import replace

from musicindex.errors import ItemNotFoundError
from musicindex.query import catalog_rows as rows
from musicindex.query.base import Reader
from musicindex.query.items import NowPlaying, Playlist, PlayQueue, Starred, iso
from musicindex.query.snapshot import Snapshot
from musicindex.vocab import ALBUM, ARTIST, INDEXED, TRACK

NOW_PLAYING_GRACE = "interval '10 minutes'"
SKIPPED_SQL = (
    "SELECT track_id FROM play_events WHERE user_id = %(u)s AND started_at > now() - make_interval(days => %(d)s) "
    "AND ended_at IS NOT NULL GROUP BY track_id HAVING count(*) FILTER (WHERE skipped) >= %(k)s "
    "AND count(*) FILTER (WHERE skipped) > count(*) FILTER (WHERE counted) "
    "ORDER BY count(*) FILTER (WHERE skipped) DESC, track_id"
)
"""The songs a listener (``u``) skipped at least ``k`` times in the last ``d`` days, more often than they played
them through then, most skipped first: what the mixes stop offering them (``users.playback.skipped_track_ids``)."""
SKIP_RULE = {"k": 2, "d": 90}
"""The rule of the mixes: skipped twice or more in 90 days (and more often than played through)."""
"""A song stays "now playing" for its duration and this long after it started."""


class ListenerService(Reader):
    """A listener's stars, queue, playlists and plays, each read in one snapshot."""

    def starred(self, user_id: int) -> Starred:
        """What ``user_id`` starred, most recent first."""
        with self.snapshot() as snap:

            def of(kind: str) -> list[int]:
                return snap.ids(
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
                "SELECT np.track_id, u.name, floor(extract(epoch FROM now() - np.started_at) / 60)::int AS minutes, "
                "np.client "
                "FROM now_playing np JOIN users u ON u.id = np.user_id JOIN tracks t ON t.id = np.track_id "
                f"WHERE np.started_at + make_interval(secs => coalesce(t.duration, 0)) + {NOW_PLAYING_GRACE} > now() "
                "ORDER BY np.started_at DESC"
            )
            songs = {s.id: s for s in rows.songs(snap, user_id, [int(r.track_id) for r in found])}
        return [
            NowPlaying(songs[int(r.track_id)], r.name, max(0, int(r.minutes)), i + 1, r.client)
            for i, r in enumerate(found)
            if int(r.track_id) in songs
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
            songs = rows.songs(snap, user_id, list(row.track_ids or []))
        position = int(row.position_ms or 0)
        return PlayQueue(row.name, songs, row.current_id, position, iso(row.changed_at), row.changed_by)

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
            entries = snap.ids(
                "SELECT track_id FROM playlist_tracks WHERE playlist_id = %(p)s ORDER BY position",
                {"p": playlist_id},
            )
            songs = rows.songs(snap, user_id, entries)
        return replace(found[0], songs=songs)

    @staticmethod
    def _playlists(snap: Snapshot, user_id: int, playlist_id: int | None) -> list[Playlist]:
        one = "AND p.id = %(p)s " if playlist_id is not None else ""
        found = snap.all(
            "SELECT p.id, p.name, p.comment, u.name AS owner, p.owner_id, p.public, count(t.id) AS song_count, "
            "coalesce(sum(t.duration), 0) AS duration, p.created_at, p.changed_at, "
            "(array_agg(t.album_id ORDER BY pt.position) FILTER (WHERE t.id IS NOT NULL))[1] AS cover_album_id "
            "FROM playlists p JOIN users u ON u.id = p.owner_id LEFT JOIN playlist_tracks pt ON pt.playlist_id = p.id "
            f"LEFT JOIN tracks t ON t.id = pt.track_id AND t.status = '{INDEXED}' "
            f"WHERE (p.owner_id = %(uid)s OR p.public) {one}GROUP BY p.id, u.name ORDER BY lower(p.name), p.id",
            {"uid": user_id, "p": playlist_id},
        )
        return [
            Playlist(
                id=int(r.id), name=r.name, comment=r.comment, owner=r.owner, owner_id=int(r.owner_id),
                public=bool(r.public), song_count=int(r.song_count), duration=float(r.duration),
                created=iso(r.created_at), changed=iso(r.changed_at), cover_album_id=r.cover_album_id,
            )
            for r in found
        ]  # fmt: skip

    def listener_seeds(self, user_id: int, likes: int = 50, plays: int = 30) -> tuple[list[int], list[int]]:
        """(the listener's most recently starred songs, their most played ones): the seeds of "for you"."""
        with self.snapshot() as snap:
            return listener_seeds(snap, user_id, likes, plays)


def listener_seeds(snap: Snapshot, user_id: int, likes: int = 50, plays: int = 30) -> tuple[list[int], list[int]]:
    """``ListenerService.listener_seeds`` in a snapshot."""
    starred = snap.ids(
        f"SELECT a.item_id FROM annotations a JOIN tracks t ON t.id = a.item_id AND t.status = '{INDEXED}' "
        f"WHERE a.user_id = %(uid)s AND a.item_type = '{TRACK}' AND a.starred_at IS NOT NULL "
        f"ORDER BY a.starred_at DESC, a.item_id LIMIT {int(likes)}",
        {"uid": user_id},
    )
    played = snap.ids(
        f"SELECT a.item_id FROM annotations a JOIN tracks t ON t.id = a.item_id AND t.status = '{INDEXED}' "
        f"WHERE a.user_id = %(uid)s AND a.item_type = '{TRACK}' AND a.play_count > 0 "
        f"ORDER BY a.play_count DESC, a.last_played DESC, a.item_id LIMIT {int(plays)}",
        {"uid": user_id},
    )
    return starred, played


def skipped_ids(snap: Snapshot, user_id: int | None) -> list[int]:
    """The songs the listener keeps skipping (``SKIPPED_SQL`` with ``SKIP_RULE``); none without a listener."""
    return snap.ids(SKIPPED_SQL, {"u": int(user_id), **SKIP_RULE}) if user_id else []
