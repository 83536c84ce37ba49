"""A saved playlist as its page and ``/api/library/playlists`` read it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from musicindex.query.items import Playlist
from musicindex.web.presenters.songs import song_dicts


def playlist_dict(p: Playlist) -> dict[str, Any]:
    """A playlist with its songs (as the lists read them)."""
    d = asdict(p)
    d["songs"] = song_dicts(p.songs)
    return d
