"""The routes of ``musicindex serve``, one router per resource; each holds the resource's JSON routes (under
``/api/``) and its pages, which shape their data with the same presenter (``web.presenters``) and declare login,
CSRF and the listener as dependencies (``web.deps``). ``create_app`` includes ``ROUTERS`` in this order (the
Subsonic API under ``/rest`` is its own package, ``web.subsonic``)."""

from __future__ import annotations

from fastapi import APIRouter

from musicindex.web.routes import (
    account,
    albums,
    artists,
    duplicates,
    genres,
    library,
    mixes,
    models,
    playlists,
    queue,
    search,
    stars,
    status,
    tracks,
)

ROUTERS: tuple[APIRouter, ...] = tuple(
    m.router
    for m in (
        library,
        search,
        tracks,
        albums,
        artists,
        genres,
        playlists,
        queue,
        stars,
        mixes,
        models,
        status,
        account,
        duplicates,
    )
)
