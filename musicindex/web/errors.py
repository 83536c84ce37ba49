"""Library errors as HTTP answers: one JSON shape, the same categories as the CLI's exit codes.

Every error answer is ``{"error": CATEGORY, "message": TEXT, "exit_code": N}`` (``exit_code``: what the
CLI would exit with). The table in docs/web.md lists each category and its status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from musicindex import errors as E


@dataclass(frozen=True)
class Category:
    name: str
    status: int


# most specific first: the first class an error is an instance of decides
CATEGORIES: tuple[tuple[type[BaseException], Category], ...] = (
    (E.TrackNotFoundError, Category("unknown_track", 404)),
    (E.ItemNotFoundError, Category("not_found", 404)),
    (E.TooManyAttemptsError, Category("too_many_attempts", 429)),
    (E.PermissionDeniedError, Category("forbidden", 403)),
    (E.TrackFileChangedError, Category("file_changed", 409)),
    (E.TrackFileOutsideError, Category("file_refused", 404)),
    (E.TrackFileError, Category("file_missing", 404)),
    (E.UnknownGenreError, Category("unknown_genre", 422)),
    (E.InvalidArgumentError, Category("bad_argument", 422)),
    (E.ConfigError, Category("bad_argument", 422)),
    (E.ModelNotTrainedError, Category("model_not_trained", 409)),
    (E.NotEnoughDataError, Category("not_enough_data", 409)),
    (E.AudioError, Category("audio_error", 422)),
    (E.SchemaOutdatedError, Category("schema_outdated", 503)),
    (E.ServiceError, Category("server_unreachable", 503)),
    (E.ArtifactIntegrityError, Category("artifact_integrity", 500)),
    (E.TrainingInProgressError, Category("training_in_progress", 409)),
    (E.WorkerLostError, Category("worker_lost", 503)),
    (E.QueryTimeoutError, Category("timeout", 504)),
    (TimeoutError, Category("timeout", 504)),
    (E.MusicIndexError, Category("error", 500)),
)

HTTP_CATEGORIES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "bad_argument",
    429: "busy",
    503: "unavailable",
}


class ApiError(Exception):
    """An HTTP answer with the API's error body (auth, size limits, missing files, ...)."""

    def __init__(self, status: int, category: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.headers = headers


def category_of(exc: BaseException) -> Category:
    for cls, cat in CATEGORIES:
        if isinstance(exc, cls):
            return cat
    return Category("error", 500)


def body(category: str, message: str, exit_code: int | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": category, "message": message, "exit_code": exit_code, **extra}


HtmlRenderer = Callable[[Request, int, str, str], Response]


def install(app: Any, html: HtmlRenderer | None = None) -> None:
    """Register the handlers on a FastAPI app; ``html`` renders the errors of pages (paths outside /api/)."""

    def answer(
        request: Request, status: int, category: str, message: str, exit_code: int | None = None, headers: Any = None
    ) -> Response:
        if html is not None and not request.url.path.startswith("/api/"):
            page = html(request, status, category, message)
            page.headers.update(headers or {})
            return page
        return JSONResponse(body(category, message, exit_code), status_code=status, headers=headers)

    async def library_error(request: Request, exc: Exception) -> Response:
        cat = category_of(exc)
        return answer(
            request, cat.status, cat.name, str(exc), getattr(exc, "exit_code", 1), getattr(exc, "http_headers", None)
        )

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return answer(request, exc.status, exc.category, exc.message, None, exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "path", "body"))
            problems.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        message = "; ".join(problems) or "invalid request"
        return answer(request, 422, "bad_argument", message, E.InvalidArgumentError.exit_code)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        cat = HTTP_CATEGORIES.get(exc.status_code, "error")
        return answer(request, exc.status_code, cat, str(exc.detail), None, getattr(exc, "headers", None))

    async def database_down(request: Request, exc: Exception) -> Response:
        text = str(getattr(exc, "orig", None) or exc).strip()
        reason = text.splitlines()[0] if text else "connection lost"
        return answer(
            request, 503, "server_unreachable", f"PostgreSQL does not answer: {reason}", E.ServiceError.exit_code
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        # errors the request guard (security.RequestGuard) did not see: logged with their traceback by the
        # server, answered in the API's shape (or as the HTML error page), never as a plain-text 500
        return answer(request, 500, "error", "unexpected server error (the server's log has the details)", 1)

    app.add_exception_handler(E.MusicIndexError, library_error)
    app.add_exception_handler(TimeoutError, library_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(OperationalError, database_down)
    app.add_exception_handler(Exception, unexpected)
