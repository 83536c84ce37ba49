"""Duplicates: the groups of files that hold one recording or versions of one song, each with its preferred file
(``/api/duplicates``, the ``/duplicates`` page with play buttons). Reads only, under the library's login rule
(``web/access.py``): choosing the preferred file is the CLI's and the Python API's (``musicindex prefer``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from musicindex.query.duplicates import MAX_GROUPS
from musicindex.web.deps import IndexDep
from musicindex.web.render import PAGE, page
from musicindex.web.responses import Json

router = APIRouter(default_response_class=Json, tags=["library"])
KIND_DOC = "'same recording' (or 'recording') or 'same song' (or 'song'); empty: both"


@router.get("/api/duplicates", summary="Groups of files that hold one recording or one song, with the preferred file")
def duplicates(
    index: IndexDep,
    kind: str | None = Query(None, max_length=32, description=KIND_DOC),
    limit: int = Query(100, ge=1, le=MAX_GROUPS),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[dict[str, Any]]:
    return [g.to_dict() for g in index.duplicates(kind or None, limit=limit, offset=offset)]


@router.get("/duplicates", **PAGE)
def duplicates_page(
    index: IndexDep,
    request: Request,
    kind: str | None = Query(None, max_length=32),
    limit: int = Query(100, ge=1, le=MAX_GROUPS),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Response:
    groups = index.duplicates(kind or None, limit=limit, offset=offset)
    return page(request, "duplicates.html", groups=groups, kind=kind or "", limit=limit, offset=offset)
