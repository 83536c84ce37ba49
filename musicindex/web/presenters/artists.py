"""Artists as the artist index (by letter), the artist page and ``/api/library/artists`` read them."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from musicindex.query.items import ArtistDetail
from musicindex.web.presenters.albums import album_dict

if TYPE_CHECKING:
    from musicindex.index import MusicIndex
    from musicindex.web.deps import Limits

ARTISTS_TTL = 10.0
"""Seconds the artist index (every album artist: thousands of rows, the same for every listener) is shared by
all callers; an ingest shows in it within this time."""


def artist_index(index: MusicIndex, limits: Limits) -> list[dict[str, Any]]:
    """The album artists by index letter (shared ``ARTISTS_TTL`` s; no listener's annotation)."""

    def make() -> list[dict[str, Any]]:
        return [
            {"letter": g.letter, "artists": [{**asdict(a), "annotation": None} for a in g.artists]}
            for g in index.catalog.artists(None)
        ]

    found: list[dict[str, Any]] = limits.cached("artist-index", ARTISTS_TTL, make)
    return found


def artist_detail(d: ArtistDetail) -> dict[str, Any]:
    """An artist and its albums."""
    return {"artist": asdict(d.artist), "albums": [album_dict(a) for a in d.albums]}
