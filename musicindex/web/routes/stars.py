"""The listener's marks: stars (``/api/library/starred``, star, unstar), ratings and plays (scrobble): the same
annotations a Subsonic app reads with ``getStarred2``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from musicindex.web.deps import WEB_CLIENT, ChangerDep, IndexDep, ListenerDep
from musicindex.web.presenters.albums import album_dict
from musicindex.web.presenters.songs import song_dicts
from musicindex.web.responses import Json
from musicindex.web.security import policy

router = APIRouter(default_response_class=Json, tags=["library"])


class Items(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(..., min_length=1, max_length=1000)
    type: Literal["track", "album", "artist"] = "track"


class Rating(BaseModel):
    id: int = Field(..., ge=1, le=2**62)
    type: Literal["track", "album", "artist"] = "track"
    rating: int = Field(..., ge=0, le=5)


class Scrobble(BaseModel):
    id: int = Field(..., ge=1, le=2**62)
    submission: bool = True


@router.get("/api/library/starred", summary="What the listener starred (the same as Subsonic getStarred2)")
def starred(index: IndexDep, user: ListenerDep) -> Any:
    s = index.listener.starred(user.id)
    return {
        "songs": song_dicts(s.songs),
        "albums": [album_dict(a) for a in s.albums],
        "artists": [asdict(a) for a in s.artists],
    }


@router.post("/api/library/star", summary="Star tracks, albums or artists")
@policy(body="json")
def star(index: IndexDep, user: ChangerDep, items: Items = Body(...)) -> Any:
    return {"starred": index.users.star(user.id, [(items.type, i) for i in items.ids])}


@router.post("/api/library/unstar", summary="Unstar tracks, albums or artists")
@policy(body="json")
def unstar(index: IndexDep, user: ChangerDep, items: Items = Body(...)) -> Any:
    return {"unstarred": index.users.unstar(user.id, [(items.type, i) for i in items.ids])}


@router.post("/api/library/rating", summary="Rate an item 1 to 5 (0 clears)")
@policy(body="json")
def rating(index: IndexDep, user: ChangerDep, body: Rating = Body(...)) -> Any:
    index.users.set_rating(user.id, (body.type, body.id), body.rating)
    return {"rated": body.id, "rating": body.rating}


@router.post("/api/library/scrobble", summary="A track was played (its play count goes up), or is playing now")
@policy(body="json")
def scrobble(index: IndexDep, user: ChangerDep, body: Scrobble = Body(...)) -> Any:
    index.users.scrobble(user.id, [body.id], submission=body.submission, client=WEB_CLIENT)
    return {"scrobbled": body.id, "submission": body.submission}
