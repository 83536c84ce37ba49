"""Saved playlists (a listener's own and the public ones of others): ``/playlists`` and its forms, and
``/api/library/playlists`` for the page's script (the same playlists a Subsonic app shows with ``getPlaylist``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from musicindex.errors import InvalidArgumentError
from musicindex.web.deps import ChangerDep, FormCsrfDep, IndexDep, ListenerDep, PageUserDep
from musicindex.web.errors import ApiError
from musicindex.web.presenters.playlists import playlist_dict
from musicindex.web.presenters.songs import song_dicts
from musicindex.web.render import PAGE, page
from musicindex.web.responses import Json
from musicindex.web.security import policy

router = APIRouter(default_response_class=Json, tags=["library"])
Id = Annotated[int, PathParam(ge=1, le=2**62)]


class PlaylistIn(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=500)
    track_ids: list[Annotated[int, Field(ge=1, le=2**62)]] | None = Field(None, max_length=10_000)
    comment: str | None = Field(None, max_length=5000)
    public: bool | None = None


# ------------------------------------------------------------------ JSON (the page's script)
@router.get("/api/library/playlists", summary="The listener's playlists and the public ones of others")
def playlists(index: IndexDep, user: ListenerDep) -> Any:
    return [asdict(p) for p in index.listener.playlists(user.id)]


@router.post("/api/library/playlists", summary="A new playlist", status_code=201)
@policy(body="json")
def create_playlist(index: IndexDep, user: ChangerDep, body: PlaylistIn = Body(...)) -> Any:
    if body.name is None:
        raise ApiError(422, "bad_argument", "a new playlist needs a name")
    pid = index.users.create_playlist(user.id, body.name, body.track_ids or [], is_admin=user.is_admin)
    return playlist_dict(index.listener.playlist(pid, user.id))


@router.get("/api/library/playlists/{playlist_id}", summary="A playlist with its songs (Subsonic getPlaylist's)")
def playlist(index: IndexDep, user: ListenerDep, playlist_id: Id) -> Any:
    return playlist_dict(index.listener.playlist(playlist_id, user.id))


@router.put("/api/library/playlists/{playlist_id}", summary="Rename a playlist, or replace its tracks")
@policy(body="json")
def update_playlist(index: IndexDep, user: ChangerDep, playlist_id: Id, body: PlaylistIn = Body(...)) -> Any:
    if body.track_ids is not None:
        index.users.create_playlist(user.id, body.name, body.track_ids, playlist_id=playlist_id, is_admin=user.is_admin)
    changes = {
        k: v
        for k, v in (
            ("name", body.name if body.track_ids is None else None),
            ("comment", body.comment),
            ("public", body.public),
        )
        if v is not None
    }
    if changes or body.track_ids is None:
        index.users.update_playlist(user.id, playlist_id, is_admin=user.is_admin, **changes)
    return playlist_dict(index.listener.playlist(playlist_id, user.id))


@router.delete("/api/library/playlists/{playlist_id}", summary="Delete a playlist")
def delete_playlist(index: IndexDep, user: ChangerDep, playlist_id: Id) -> Any:
    index.users.delete_playlist(user.id, playlist_id, is_admin=user.is_admin)
    return {"deleted": playlist_id}


# ------------------------------------------------------------------ pages and their forms
@router.get("/playlists", **PAGE)
def playlists_page(index: IndexDep, request: Request, user: PageUserDep) -> Response:
    return page(request, "playlists.html", playlists=index.listener.playlists(user.id), error=None)


@router.post("/playlists", **PAGE)
def create_playlist_form(
    index: IndexDep, request: Request, _: FormCsrfDep, user: PageUserDep, name: str = Form("", max_length=500)
) -> Response:
    try:
        pid = index.users.create_playlist(user.id, name.strip(), [])
    except InvalidArgumentError as exc:
        return page(
            request,
            "playlists.html",
            status_code=422,
            playlists=index.listener.playlists(user.id),
            error=f"The playlist was not created: {exc}",
        )
    return RedirectResponse(f"/playlists/{pid}", status_code=303)


@router.get("/playlists/{playlist_id}", **PAGE)
def playlist_page(index: IndexDep, request: Request, user: PageUserDep, playlist_id: Id) -> Response:
    p = index.listener.playlist(playlist_id, user.id)
    return page(
        request,
        "saved_playlist.html",
        playlist=p,
        songs=song_dicts(p.songs),
        mine=p.owner_id == user.id or user.is_admin,
        error=None,
    )


@router.post("/playlists/{playlist_id}/rename", **PAGE)
def rename_playlist_form(
    index: IndexDep,
    request: Request,
    _: FormCsrfDep,
    user: PageUserDep,
    playlist_id: Id,
    name: str = Form("", max_length=500),
) -> Response:
    try:
        index.users.update_playlist(user.id, playlist_id, name=name.strip(), is_admin=user.is_admin)
    except InvalidArgumentError as exc:
        p = index.listener.playlist(playlist_id, user.id)
        return page(
            request,
            "saved_playlist.html",
            status_code=422,
            playlist=p,
            mine=True,
            songs=song_dicts(p.songs),
            error=f"Not renamed: {exc}",
        )
    return RedirectResponse(f"/playlists/{playlist_id}", status_code=303)


@router.post("/playlists/{playlist_id}/delete", **PAGE)
def delete_playlist_form(
    index: IndexDep, request: Request, _: FormCsrfDep, user: PageUserDep, playlist_id: Id
) -> Response:
    index.users.delete_playlist(user.id, playlist_id, is_admin=user.is_admin)
    return RedirectResponse("/playlists", status_code=303)
