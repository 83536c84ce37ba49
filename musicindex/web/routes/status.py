"""The index's state: counts, failures, queues, workers and ingest progress (``/api/status``, the ``/status`` page
that refreshes during an ingest), and a re-scan of the known folders (``POST /api/ingest``, token)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import Response

from musicindex.errors import InvalidArgumentError
from musicindex.web import status as web_status
from musicindex.web.deps import IndexDep, LimitsDep
from musicindex.web.render import PAGE, page
from musicindex.web.responses import Json
from musicindex.web.security import check_token, policy

router = APIRouter(default_response_class=Json, tags=["status"])


@router.get("/api/status", summary="Counts, latest failures, queues, workers and ingest progress")
def status(index: IndexDep, limits: LimitsDep, failures: int = Query(10, ge=0, le=100)) -> Any:
    """Counts, failures and progress are read for each answer; queue depths and workers are what the broker said at
    most a few seconds ago (`checked_seconds_ago`; asking the workers takes up to a second, so it is done in the
    background). `hint` says what to do when no worker runs."""
    return web_status.status(index, limits, failures, wait=3.0)


@router.get("/status", **PAGE)
def status_page(index: IndexDep, limits: LimitsDep, request: Request) -> Response:
    """Never waits for the workers: what they said last (the page's script refreshes it every 2 s)."""
    return page(request, "status.html", status=web_status.status(index, limits, 10, wait=0))


@router.post(
    "/api/ingest", tags=["changes"], summary="Re-scan the library's folders and queue new or changed files (token)"
)
@policy(token=True, body="json")
def ingest(
    index: IndexDep,
    authorization: str | None = Header(None, include_in_schema=False),
    label_from: Literal["folder", "tag"] | None = Body(None, embed=True),
    roots: list[str] | None = Body(
        None, embed=True, max_length=100, description="a subset of the folders ingested before (default: all)"
    ),
    retry_failed: bool = Body(False, embed=True, description="analyse failed tracks again"),
) -> Any:
    check_token(authorization, index.settings)
    known = index.ingestion.ingest_progress()["roots"]
    if not known:
        raise InvalidArgumentError(
            "no folder was ever ingested: run `musicindex ingest PATH` once (the API re-scans known folders only)"
        )
    chosen = known if roots is None else roots
    unknown = [x for x in chosen if x not in known]
    if unknown:
        raise InvalidArgumentError(
            f"{unknown[0]!r} is not a folder ingested before; the API re-scans only these: {', '.join(known)}"
        )
    return index.ingest(chosen, wait=False, label_from=label_from, retry_failed=retry_failed).to_dict()
