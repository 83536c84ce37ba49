"""The model registry: versions, the active ones, one version (``/api/models``, the ``/models`` page), the honest
evaluation, and the changes that need the API token (train, promote, roll back)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from musicindex.errors import ModelNotTrainedError
from musicindex.web.deps import IndexDep, LimitsDep
from musicindex.web.errors import ApiError
from musicindex.web.presenters.models import model_rows
from musicindex.web.render import PAGE, page
from musicindex.web.responses import Json
from musicindex.web.security import check_token, policy

if TYPE_CHECKING:
    from musicindex.index import MusicIndex

router = APIRouter(default_response_class=Json, tags=["models"])
VersionId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


@router.get("/api/models", summary="The model registry: versions, states, key metrics")
def models(
    index: IndexDep,
    kind: str | None = Query(None, max_length=16),
    state: str | None = Query(None, max_length=16),
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    return index.models(kind=kind, state=state, limit=limit)


@router.get("/api/models/active", summary="The active version of each kind")
def active_models(index: IndexDep) -> Any:
    return index.active_models()


@router.get("/api/models/{version_id}", summary="Everything about one model version")
def model(index: IndexDep, version_id: VersionId) -> Any:
    return _model(index, version_id)


def _model(index: MusicIndex, version_id: int) -> dict[str, Any]:
    """``index.model``; an id that names no version is a 404 (the registry says 'not trained')."""
    try:
        return index.model(version_id)
    except ModelNotTrainedError as exc:
        if str(exc).startswith(f"no model version {version_id}"):
            raise ApiError(404, "unknown_model", str(exc)) from None
        raise


@router.get("/models", **PAGE)
def models_page(index: IndexDep, request: Request) -> Response:
    """Every version (``presenters.models``: roll back offered where a retired version exists, zero scores
    flagged) and the active ones."""
    return page(request, "models.html", models=model_rows(index.models(limit=200)), active=index.active_models())


@router.get("/api/evaluate", summary="Genre precision@k and hubness of each space; classifiers")
@policy(costly=True)
def evaluate(
    index: IndexDep,
    limits: LimitsDep,
    k: int = Query(10, ge=1, le=100),
    max_tracks: int = Query(5000, ge=10, le=20_000, description="a random sample of labelled tracks above this"),
) -> Any:
    with limits.try_slot(limits.evaluation, "evaluation"):
        return index.evaluate(k=k, max_tracks=max_tracks).to_dict()


# ------------------------------------------------------------------ changes (token)
@router.post("/api/models/{version_id}/promote", tags=["changes"], summary="Activate a version (token)")
@policy(token=True)
def promote(
    index: IndexDep,
    version_id: VersionId,
    authorization: str | None = Header(None, include_in_schema=False),
) -> Any:
    check_token(authorization, index.settings)
    _model(index, version_id)
    retired = index.promote([version_id])
    return {"promoted": version_id, "retired": retired, "model": index.model(version_id)}


@router.post(
    "/api/models/{kind}/rollback", tags=["changes"], summary="Re-activate the previous version of a kind (token)"
)
@policy(token=True)
def rollback(
    index: IndexDep,
    kind: str = PathParam(..., min_length=1, max_length=16),
    authorization: str | None = Header(None, include_in_schema=False),
) -> Any:
    check_token(authorization, index.settings)
    return {"rolled_back": kind, "model": index.rollback(kind)}


@router.post("/api/train", tags=["changes"], summary="Queue a training run on the workers (token)")
@policy(token=True, body="json")
def train(
    index: IndexDep,
    authorization: str | None = Header(None, include_in_schema=False),
    models: list[str] | None = Body(None, embed=True, max_length=16, description="model kinds (default: all)"),
    quick: bool = Body(False, embed=True, description="small grids, tiny network budgets"),
    force: bool = Body(False, embed=True, description="train even if the labelled data has not changed"),
) -> Any:
    check_token(authorization, index.settings)
    return index.train(models, wait=False, quick=quick, force=force, trigger="api").to_dict()
