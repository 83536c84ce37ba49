"""How a Subsonic endpoint is declared and called.

``@endpoint(router, "getAlbum")`` registers a handler at ``/rest/getAlbum`` and ``/rest/getAlbum.view``, GET and
POST (query string, ``application/x-www-form-urlencoded`` or multipart form fields). Each call: the parameters are
read (bounded), the format chosen, the caller authenticated (``auth.authenticate``; ``auth=False`` for the
endpoints the API answers without it), then the handler runs in a worker thread with a :class:`Call` and returns
either the payload of the answer (a dict) or a Response (a stream, an image). Errors become Subsonic error
answers, never a 500: unknown items 70, refused 50, bad arguments 0 or 10.

With no login account, ``/rest`` answers 404 (the server speaks Subsonic only once ``musicindex user add`` made one).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from musicindex import errors as E
from musicindex.query.catalog_rows import MAX_PAGE
from musicindex.query.options import SearchOptions
from musicindex.web.subsonic import auth
from musicindex.web.subsonic.protocol import (
    GENERIC,
    MAX_BODY_BYTES,
    MAX_VALUES,
    MISSING,
    NOT_AUTHORIZED,
    NOT_FOUND,
    Format,
    Params,
    SubsonicError,
    error_response,
    render,
)

if TYPE_CHECKING:
    from musicindex.config import Settings
    from musicindex.index import MusicIndex
    from musicindex.media.transcode import Transcoder
    from musicindex.users import UserInfo

log = logging.getLogger("musicindex.subsonic")

LOGINS_TTL = 5.0
"""Seconds the answer to "is there any login account?" is shared by all calls."""


@dataclass
class Call:
    """One call of an endpoint: the request, the index, the parameters and the caller."""

    request: Request
    index: MusicIndex
    params: Params
    user: UserInfo | None
    state: Any
    """The app's Subsonic state (``SubsonicState``: the scan in progress)."""

    @property
    def user_id(self) -> int:
        assert self.user is not None
        return self.user.id

    @property
    def client(self) -> str:
        return (self.params.get("c") or "unknown")[:200]

    def search_options(self, default: int) -> SearchOptions | None:
        """The search options of a sonic endpoint (instant mix, similar songs and artists, sonic path): its
        ``count`` (Subsonic's name of ``k``; default ``default``, above ``MAX_PAGE`` cut to it, as every list)
        read by ``SearchOptions.parse``; None for ``count=0`` (nothing asked: an empty answer)."""
        count = self.params.integer("count", default, low=0) or 0
        return SearchOptions.parse({"count": min(count, MAX_PAGE)}) if count else None

    def require_admin(self) -> None:
        if self.user is None or not self.user.is_admin:
            raise SubsonicError(NOT_AUTHORIZED, "user is not authorized for the given operation (admins only)")


Handler = Callable[[Call], "dict[str, Any] | Response"]


def endpoint(
    router: APIRouter, name: str, *, auth_required: bool = True, changes: bool = False
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the endpoint ``name`` (and ``name.view``), GET and POST, and HEAD (a player asking
    a stream's length) unless it ``changes`` something: then HEAD is a 405 that changes nothing."""

    def register(handler: Handler) -> Handler:
        async def view(request: Request) -> Response:
            if changes and request.method == "HEAD":
                return Response(status_code=405, headers={"Allow": "GET, POST"})
            return await answer(request, handler, auth_required)

        for path in (f"/rest/{name}", f"/rest/{name}.view"):
            router.add_api_route(
                path, view, methods=["GET", "POST", "HEAD"], include_in_schema=False, name=f"subsonic.{name}"
            )
        return handler

    return register


def server_version() -> str:
    from musicindex import __version__

    return str(__version__)


async def answer(request: Request, handler: Handler, auth_required: bool) -> Response:
    index: MusicIndex = request.app.state.index
    state = request.app.state.subsonic
    if not await run_in_threadpool(
        request.app.state.limits.cached, "subsonic-logins", LOGINS_TTL, index.users.has_logins
    ):
        return PlainTextResponse(
            "the Subsonic API is served once an account exists: musicindex user add NAME --password-stdin",
            status_code=404,
        )
    version = server_version()
    fmt = Format(request.query_params.get("f"), request.query_params.get("callback"))
    try:
        params = await read_params(request)
        fmt = Format.of(params)
        if fmt.problem:
            raise SubsonicError(GENERIC, fmt.problem)
        auth.check_version(params)
        address = request.client.host if request.client else "unknown"

        def run() -> dict[str, Any] | Response:  # authentication and the handler in one worker thread
            user = auth.authenticate(index, params, address) if auth_required else None
            return handler(Call(request, index, params, user, state))

        result = await run_in_threadpool(run)
    except SubsonicError as exc:
        return error_response(exc.code, exc.message, fmt, version)
    except E.TranscodeBusyError as exc:  # a stream beyond the cap: turned away at once, never a stall
        busy = error_response(GENERIC, str(exc), fmt, version)
        busy.status_code = 429
        busy.headers["Retry-After"] = str(exc.retry_after)
        return busy
    except Exception as exc:  # noqa: BLE001 - every failure is a Subsonic error answer, never a 500
        code, message = error_of(exc)
        return error_response(code, message, fmt, version)
    if isinstance(result, Response):
        return result
    return render(result, fmt, version)


def error_of(exc: BaseException) -> tuple[int, str]:
    """(Subsonic error code, message) of a library error; unexpected ones are logged and answered as code 0.

    Players get short messages: no server paths, SQL or admin advice (the CLI's messages keep theirs)."""
    if isinstance(exc, E.TrackFileError):  # the detail names server paths: logged, not told to the client
        log.warning("subsonic: a file is not served: %s", exc)
        return NOT_FOUND, "the file of this song cannot be served now (the server log says why)"
    if isinstance(exc, E.TrackNotFoundError):
        return NOT_FOUND, "song not found"
    if isinstance(exc, E.ItemNotFoundError):
        return NOT_FOUND, player_message(str(exc))
    if isinstance(exc, E.ModelNotTrainedError):
        return GENERIC, "the sonic index of this server is not ready yet"
    if isinstance(exc, E.PermissionDeniedError):
        return NOT_AUTHORIZED, str(exc)
    if isinstance(exc, E.MusicIndexError):
        return GENERIC, player_message(str(exc))
    if isinstance(exc, OperationalError):
        return GENERIC, "the database does not answer; try again in a moment"
    log.exception("subsonic: unexpected error")
    return GENERIC, f"internal error ({type(exc).__name__}); the server log has the details"


_ADVICE = re.compile(r"\s*(?:;|\(|\. )\s*(?=[^;(]*(?:`|SELECT |musicindex |MUSICINDEX_))")


def player_message(message: str) -> str:
    """``message`` up to any advice for the server's admin (a command, a setting, SQL), at most 300 characters."""
    m = _ADVICE.search(message)
    return (message[: m.start()] if m else message)[:300].strip() or "not found"


async def not_offered(request: Request) -> Response:
    """Any ``/rest/NAME`` this server does not offer: the protocol's error 0 (HTTP 200, in the requested format)."""
    name = request.path_params.get("name", "")[:60].removesuffix(".view")

    def handler(call: Call) -> dict[str, Any]:
        raise SubsonicError(GENERIC, f"{name!r} is not offered by this server (docs/subsonic.md lists what is)")

    return await answer(request, handler, False)


async def read_params(request: Request) -> Params:
    """The query string's parameters, then the form body's (urlencoded or multipart; no files), bounded (the
    request guard of ``web/security.py`` has capped the body before: 64 KiB)."""
    items = list(request.query_params.multi_items())
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            length = request.headers.get("content-length")  # the request guard caps every body (and counts
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):  # a chunked one)
                raise SubsonicError(GENERIC, f"a form body is at most {MAX_BODY_BYTES} bytes")
            try:
                form = await request.form(max_files=0, max_fields=MAX_VALUES)
            except Exception:  # noqa: BLE001 - a malformed body (or a file part) is the client's error
                raise SubsonicError(
                    GENERIC, f"the form body cannot be read (at most {MAX_VALUES} fields, no files)"
                ) from None
            items += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return Params(items)


def missing(name: str) -> SubsonicError:
    return SubsonicError(MISSING, f"required parameter {name!r} is missing")


class Scanner:
    """The re-ingest ``startScan`` begins: one at a time, in a thread (the call does not wait for it)."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, index: MusicIndex) -> bool:
        """Start re-ingesting the known folders unless a scan runs; whether one was started."""
        with self._lock:
            if self.running:
                return False
            self._thread = threading.Thread(target=self._scan, args=(index,), name="subsonic-scan", daemon=True)
            self._thread.start()
            return True

    @staticmethod
    def _scan(index: MusicIndex) -> None:
        try:
            roots = index.known_roots()
            if roots:
                index.ingest(roots)
        except Exception:
            log.exception("subsonic: the scan started by startScan failed")


class SubsonicState:
    """What the Subsonic routes of one app share: the scan in progress and the transcodes (failed logins are
    limited by the users service, ``musicindex/users/limiter.py``)."""

    def __init__(self) -> None:
        self.scanner = Scanner()
        self._transcoder: Transcoder | None = None
        self._lock = threading.Lock()

    def transcoder(self, settings: Settings) -> Transcoder:
        """The transcodes of this app (made on first use, from the index's settings)."""
        with self._lock:
            if self._transcoder is None:
                from musicindex.media.transcode import Transcoder

                self._transcoder = Transcoder(settings)
            return self._transcoder
