"""An album as the album grid, the album page and ``/api/library/albums`` read it; the grid's sorts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from musicindex.query.items import Album

ALBUM_SORTS: dict[str, str] = {
    "name": "alphabeticalByName",
    "artist": "alphabeticalByArtist",
    "newest": "newest",
    "recent": "recent",
    "frequent": "frequent",
    "starred": "starred",
    "rated": "highest",
    "random": "random",
}
"""The album grid's sorts and the Subsonic album list type each is."""
SORT_LABELS = {
    "name": "name",
    "artist": "artist",
    "newest": "newest",
    "recent": "recently played",
    "frequent": "most played",
    "starred": "starred",
    "rated": "rated",
    "random": "random",
}
"""What the album grid calls each sort."""


def album_dict(a: Album) -> dict[str, Any]:
    """An album with the listener's star, rating and plays, and its cover's address."""
    d = asdict(a)
    d.pop("annotation")
    d.update(
        starred=a.annotation.starred is not None,
        rating=a.annotation.rating or 0,
        play_count=a.annotation.play_count,
        cover=f"/api/library/covers/album/{a.id}" if a.has_cover else None,
    )
    return d


def album_list_type(sort: str, genre: str | None) -> str:
    """The catalog's album list of a grid sorted by ``sort`` (of one genre: ``byGenre``)."""
    return "byGenre" if genre else ALBUM_SORTS[sort]
