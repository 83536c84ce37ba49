"""A song as the page's lists, the player and ``/api/library/`` read it."""

from __future__ import annotations

from typing import Any

from musicindex.query.items import Song


def song_dict(s: Song) -> dict[str, Any]:
    """A song with the listener's star, rating and plays."""
    return {
        "id": s.id,
        "title": s.title,
        "artist": s.artist or "",
        "album": s.album or "",
        "album_id": s.album_id,
        "artist_id": s.artist_id,
        "genre": s.genres[0] if s.genres else "",
        "genres": list(s.genres),
        "path": s.path,
        "duration": s.duration,
        "track": s.track,
        "disc": s.disc,
        "year": s.year,
        "starred": s.annotation.starred is not None,
        "rating": s.annotation.rating or 0,
        "play_count": s.annotation.play_count,
    }


def song_dicts(songs: list[Song] | None) -> list[dict[str, Any]]:
    return [song_dict(s) for s in songs or []]
