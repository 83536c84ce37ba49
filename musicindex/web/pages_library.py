"""The pages of the library and the listener: albums (a grid of covers), an album, artists, an artist, genres,
every song (sorted, paged), "for you", saved playlists, and login / logout / password change.

Server-rendered over ``index.catalog`` (reads) and ``index.users`` (writes) like the Subsonic API; the page's
script (``static/library.js``) does the changes through ``/api/library/`` (``api_library.py``). Forms that change
something carry the session's CSRF token (the ``csrf`` field): without it, 403. docs/web.md, "Login and CSRF".
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from musicindex.errors import InvalidArgumentError, MusicIndexError
from musicindex.query.catalog import SONG_SORTS
from musicindex.web import sessions
from musicindex.web.api_library import ALBUM_SORTS, album_dict, artist_index, for_you_answer, song_dict
from musicindex.web.deps import IndexDep, LimitsDep
from musicindex.web.pages import page, render_error, try_

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)

GRID_PAGE = 48
SONGS_PAGE = 50
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


def _uid(request: Request) -> int | None:
    user = sessions.viewer(request).user
    return user.id if user is not None else None


def _login_first(request: Request) -> Response | None:
    """A redirect to the login page when accounts exist and nobody is logged in (None: go on)."""
    if sessions.viewer(request).user is not None:
        return None
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _csrf_refused(request: Request, token: str) -> Response | None:
    v = sessions.viewer(request)
    if sessions.csrf_ok(request.app.state.index.settings, v.session, token):
        return None
    return render_error(
        request,
        403,
        "csrf",
        "this form was sent without the page's CSRF token (or with an old one): reload the page and send it again",
    )


def _safe_next(target: str) -> str:
    """Where to go after logging in: a path of this site only."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


# ------------------------------------------------------------------ browsing
@router.get("/albums")
def albums(
    index: IndexDep,
    request: Request,
    sort: Literal["name", "artist", "newest", "recent", "frequent", "starred", "rated", "random"] = Query("name"),
    offset: int = Query(0, ge=0, le=10_000_000),
    genre: str | None = Query(None, min_length=1, max_length=200),
) -> Response:
    kind = "byGenre" if genre else ALBUM_SORTS[sort]
    found = index.catalog.album_list(kind, GRID_PAGE + 1, offset, user_id=_uid(request), genre=genre)
    return page(
        request,
        "albums.html",
        albums=[album_dict(a) for a in found[:GRID_PAGE]],
        sort=sort,
        sorts=SORT_LABELS,
        offset=offset,
        size=GRID_PAGE,
        more=len(found) > GRID_PAGE,
        genre=genre or "",
    )


@router.get("/albums/{album_id}")
def album(index: IndexDep, request: Request, album_id: int = PathParam(..., ge=1, le=2**62)) -> Response:
    d = index.catalog.album(album_id, _uid(request))
    return page(request, "album.html", album=album_dict(d.album), songs=[song_dict(s) for s in d.songs])


@router.get("/artists")
def artists(index: IndexDep, limits: LimitsDep, request: Request) -> Response:
    return page(request, "artists.html", groups=artist_index(index, limits))


@router.get("/artists/{artist_id}")
def artist(index: IndexDep, request: Request, artist_id: int = PathParam(..., ge=1, le=2**62)) -> Response:
    d = index.catalog.artist(artist_id, _uid(request))
    return page(request, "artist.html", artist=d.artist, albums=[album_dict(a) for a in d.albums])


@router.get("/genres")
def genres(index: IndexDep, request: Request) -> Response:
    return page(request, "genres.html", genres=index.catalog.genres())


@router.get("/songs")
def songs(
    index: IndexDep,
    request: Request,
    sort: Literal[SONG_SORTS] = Query("title"),  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = Query("asc"),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Response:
    found = index.catalog.song_list(sort, order == "desc", SONGS_PAGE + 1, offset, user_id=_uid(request))
    items = [{**song_dict(s), "score": s.annotation.play_count} for s in found[:SONGS_PAGE]]
    return page(
        request,
        "songs.html",
        songs=items,
        sort=sort,
        order=order,
        sorts=SONG_SORTS,
        offset=offset,
        size=SONGS_PAGE,
        more=len(found) > SONGS_PAGE,
    )


# ------------------------------------------------------------------ the listener's
@router.get("/for-you")
def for_you(index: IndexDep, request: Request) -> Response:
    if (go := _login_first(request)) is not None:
        return go
    uid = _uid(request)
    assert uid is not None
    answer, error = try_(for_you_answer, index, uid, 20)
    starred = index.catalog.starred(uid)
    return page(
        request,
        "for_you.html",
        answer=answer,
        error=error,
        liked=[song_dict(s) for s in starred.songs[:50]],
        played=[song_dict(s) for s in index.catalog.song_list("plays", size=20, user_id=uid)],
    )


@router.get("/playlists")
def playlists(index: IndexDep, request: Request) -> Response:
    if (go := _login_first(request)) is not None:
        return go
    uid = _uid(request)
    assert uid is not None
    return page(request, "playlists.html", playlists=index.catalog.playlists(uid), error=None)


@router.post("/playlists")
def create_playlist(
    index: IndexDep, request: Request, name: str = Form("", max_length=500), csrf: str = Form("", max_length=200)
) -> Response:
    if (refused := _csrf_refused(request, csrf)) is not None:
        return refused
    if (go := _login_first(request)) is not None:
        return go
    user = sessions.viewer(request).user
    try:
        pid = index.users.create_playlist(user.id, name.strip(), [])
    except InvalidArgumentError as exc:
        return page(
            request,
            "playlists.html",
            status_code=422,
            playlists=index.catalog.playlists(user.id),
            error=f"The playlist was not created: {exc}",
        )
    return RedirectResponse(f"/playlists/{pid}", status_code=303)


@router.get("/playlists/{playlist_id}")
def saved_playlist(index: IndexDep, request: Request, playlist_id: int = PathParam(..., ge=1, le=2**62)) -> Response:
    if (go := _login_first(request)) is not None:
        return go
    user = sessions.viewer(request).user
    p = index.catalog.playlist(playlist_id, user.id)
    return page(
        request,
        "saved_playlist.html",
        playlist=p,
        songs=[song_dict(s) for s in p.songs or []],
        mine=p.owner_id == user.id or user.is_admin,
        error=None,
    )


@router.post("/playlists/{playlist_id}/rename")
def rename_playlist(
    index: IndexDep,
    request: Request,
    playlist_id: int = PathParam(..., ge=1, le=2**62),
    name: str = Form("", max_length=500),
    csrf: str = Form("", max_length=200),
) -> Response:
    if (refused := _csrf_refused(request, csrf)) is not None:
        return refused
    if (go := _login_first(request)) is not None:
        return go
    user = sessions.viewer(request).user
    try:
        index.users.update_playlist(user.id, playlist_id, name=name.strip(), is_admin=user.is_admin)
    except InvalidArgumentError as exc:
        p = index.catalog.playlist(playlist_id, user.id)
        return page(
            request,
            "saved_playlist.html",
            status_code=422,
            playlist=p,
            mine=True,
            songs=[song_dict(s) for s in p.songs or []],
            error=f"Not renamed: {exc}",
        )
    return RedirectResponse(f"/playlists/{playlist_id}", status_code=303)


@router.post("/playlists/{playlist_id}/delete")
def delete_playlist(
    index: IndexDep,
    request: Request,
    playlist_id: int = PathParam(..., ge=1, le=2**62),
    csrf: str = Form("", max_length=200),
) -> Response:
    if (refused := _csrf_refused(request, csrf)) is not None:
        return refused
    if (go := _login_first(request)) is not None:
        return go
    user = sessions.viewer(request).user
    index.users.delete_playlist(user.id, playlist_id, is_admin=user.is_admin)
    return RedirectResponse("/playlists", status_code=303)


# ------------------------------------------------------------------ login, logout, password
@router.get("/login")
def login_page(request: Request, next: str = Query("/", max_length=2000)) -> Response:
    return page(request, "login.html", next=_safe_next(next), error=None, login_name="")


@router.post("/login")
def login(
    index: IndexDep,
    request: Request,
    name: str = Form("", max_length=200),
    password: str = Form("", max_length=1024),
    csrf: str = Form("", max_length=200),
    next: str = Form("/", max_length=2000),
) -> Response:
    if (refused := _csrf_refused(request, csrf)) is not None:
        return refused
    v = sessions.viewer(request)
    if not v.accounts:
        return page(
            request,
            "login.html",
            status_code=400,
            next=_safe_next(next),
            login_name=name,
            error="This server has no accounts: the page is yours without logging in "
            "(`musicindex user add NAME` creates one).",
        )
    user = index.users.authenticate_password(name, password)
    if user is None:
        return page(
            request,
            "login.html",
            status_code=401,
            next=_safe_next(next),
            login_name=name,
            error="Wrong name or password.",
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    sessions.start(request, response, user)
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("", max_length=200)) -> Response:
    if (refused := _csrf_refused(request, csrf)) is not None:
        return refused
    response = RedirectResponse("/login" if sessions.viewer(request).accounts else "/", status_code=303)
    sessions.start(request, response, None)
    return response


@router.get("/account")
def account(request: Request, changed: bool = Query(False)) -> Response:
    if (go := _login_first(request)) is not None:
        return go
    return page(request, "account.html", error=None, done=changed)


@router.post("/account")
def change_password(
    index: IndexDep,
    request: Request,
    current: str = Form("", max_length=1024),
    new: str = Form("", max_length=1024),
    repeat: str = Form("", max_length=1024),
    csrf: str = Form("", max_length=200),
) -> Response:
    if (refused := _csrf_refused(request, csrf)) is not None:
        return refused
    if (go := _login_first(request)) is not None:
        return go
    v = sessions.viewer(request)
    if not v.logged_in:
        return page(
            request,
            "account.html",
            status_code=400,
            done=False,
            error="This server has no accounts: there is no password to change.",
        )
    problem = None
    if index.users.authenticate_password(v.user.name, current) is None:
        problem = "The current password is wrong."
    elif new != repeat:
        problem = "The new password and its repetition differ."
    if problem is None:
        try:
            index.users.set_password(v.user.name, new)
        except MusicIndexError as exc:
            problem = str(exc)
    if problem is not None:
        return page(request, "account.html", status_code=422, error=problem, done=False)
    response = RedirectResponse("/account?changed=1", status_code=303)
    sessions.start(request, response, v.user)  # the epoch moved: this browser stays in, every other session ends
    return response


__all__ = ["router"]
