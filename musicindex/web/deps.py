"""What every router of the app shares, as FastAPI dependencies: the index it serves, the app's limits, who a
request acts for (the viewer, the listener, the listener of a change), the CSRF check of forms and the search
options of a query.

``create_app`` puts the index and the limits on ``app.state``; routers are module-level ``APIRouter`` objects
(FastAPI's documented layout, one per resource in ``web.routes``) whose routes declare what they need
(``index: IndexDep``, ``user: ChangerDep``, ``options: SearchDep``, ...), so the JSON API, the pages and the
Subsonic API are siblings over one ``MusicIndex`` and no route repeats a login or CSRF preamble.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from musicindex.query.options import SearchOptions, openapi_parameters
from musicindex.web import sessions
from musicindex.web.errors import ApiError

if TYPE_CHECKING:
    from musicindex.index import MusicIndex
    from musicindex.users import UserInfo


def get_index(request: Request) -> MusicIndex:
    """The ``MusicIndex`` this app serves."""
    index: MusicIndex = request.app.state.index
    return index


class Limits:
    """One heavy job of each kind at a time (audio analysis of an upload, evaluation), and answers shared by all
    callers: for a moment (``cached``), or kept and refreshed in the background (``background``: what the workers
    say, which takes up to a second to ask)."""

    def __init__(self) -> None:
        self.analysis = threading.BoundedSemaphore(1)
        self.evaluation = threading.BoundedSemaphore(1)
        self._cache: dict[str, tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()
        self._refreshing: dict[str, threading.Event] = {}

    @staticmethod
    @contextlib.contextmanager
    def try_slot(sem: threading.BoundedSemaphore, what: str) -> Iterator[None]:
        """Hold ``sem`` for the block, or ApiError 429 (with Retry-After) at once when it is taken: a request that
        cannot run now never waits holding a worker thread or the event loop."""
        if not sem.acquire(blocking=False):
            raise ApiError(429, "busy", f"another {what} is running; try again in a moment", {"Retry-After": "5"})
        try:
            yield
        finally:
            sem.release()

    def cached(self, key: str, ttl: float, make: Callable[[], Any]) -> Any:
        """``make()``, shared by every caller for ``ttl`` seconds."""
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1]
            value = make()
            self._cache[key] = (time.monotonic(), value)
            return value

    def background(self, key: str, ttl: float, make: Callable[[], Any], wait: float = 0.0) -> tuple[Any, float | None]:
        """(the latest value of ``make()``, its age in seconds), never computed in the caller's thread: a value older
        than ``ttl`` (or none yet) starts one refresh in a background thread and the caller gets the old value at
        once. Only when there is no value yet does the caller wait, at most ``wait`` seconds; then (None, None)."""
        with self._cache_lock:
            hit = self._cache.get(key)
            age = time.monotonic() - hit[0] if hit is not None else None
            done = self._refreshing.get(key)
            if (age is None or age >= ttl) and done is None:
                done = self._refreshing[key] = threading.Event()
                threading.Thread(
                    target=self._refresh, args=(key, make, done), name=f"refresh-{key}", daemon=True
                ).start()
        if hit is None and done is not None and wait > 0:
            done.wait(wait)
            with self._cache_lock:
                hit = self._cache.get(key)
                age = time.monotonic() - hit[0] if hit is not None else None
        return (hit[1], age) if hit is not None else (None, None)

    def _refresh(self, key: str, make: Callable[[], Any], done: threading.Event) -> None:
        try:
            value = make()
            with self._cache_lock:
                self._cache[key] = (time.monotonic(), value)
        finally:
            with self._cache_lock:
                self._refreshing.pop(key, None)
            done.set()


def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


IndexDep = Annotated["MusicIndex", Depends(get_index)]
LimitsDep = Annotated[Limits, Depends(get_limits)]


# --------------------------------------------------------------------------- who a request acts for
WEB_CLIENT = "web"
"""The client name of the page's plays and queue (what a Subsonic app's ``c`` parameter is)."""


def viewer(request: Request) -> sessions.Viewer:
    """The page's session and listener (``sessions.viewer``: computed once per request)."""
    return sessions.viewer(request)


ViewerDep = Annotated[sessions.Viewer, Depends(viewer)]


def user_id(request: Request) -> int | None:
    """The id of the listener whose annotations a list carries (None: accounts exist and nobody is logged in)."""
    user = sessions.viewer(request).user
    return user.id if user is not None else None


UserIdDep = Annotated["int | None", Depends(user_id)]


def _bearer_ok(request: Request) -> bool:
    token = request.app.state.index.settings.api_token
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def listener(request: Request) -> UserInfo:
    """The listener whose state a JSON request reads: 401 when accounts exist and nobody is logged in."""
    v = sessions.viewer(request)
    if v.user is None:
        raise ApiError(401, "unauthorized", "log in first: this server has accounts (the page's /login)")
    user: UserInfo = v.user
    return user


def check_csrf(request: Request) -> None:
    """403 unless the request carries the session's CSRF token (``X-CSRF-Token``) or the API token."""
    if _bearer_ok(request):
        return
    v = sessions.viewer(request)
    if not sessions.csrf_ok(request.app.state.index.settings, v.session, request.headers.get(sessions.CSRF_HEADER)):
        raise ApiError(
            403,
            "csrf",
            "missing or wrong CSRF token: changes from the page send the X-CSRF-Token header that the page's "
            "<meta name=csrf-token> holds (reload the page to get a fresh one)",
        )


def changer(request: Request) -> UserInfo:
    """The listener of a change: the CSRF token checked first, then the login."""
    check_csrf(request)
    return listener(request)


ListenerDep = Annotated["UserInfo", Depends(listener)]
ChangerDep = Annotated["UserInfo", Depends(changer)]


# --------------------------------------------------------------------------- the pages' forms and logins
CSRF_FORM_PROBLEM = (
    "this form was sent without the page's CSRF token (or with an old one): reload the page and send it again"
)


def form_csrf(request: Request, csrf: str = Form("", max_length=200)) -> None:
    """403 (the HTML error page) unless the form carries the session's CSRF token (its ``csrf`` field). Declared
    before any other dependency of a form's route, so it is checked first."""
    v = sessions.viewer(request)
    if not sessions.csrf_ok(request.app.state.index.settings, v.session, csrf):
        raise ApiError(403, "csrf", CSRF_FORM_PROBLEM)


class LoginRequired(Exception):
    """A page that needs a listener was asked for while accounts exist and nobody is logged in: the answer is a
    redirect to the login page (``login_redirect``, installed by ``create_app``), back here afterwards."""

    def __init__(self, target: str):
        super().__init__(target)
        self.target = target


def page_user(request: Request) -> UserInfo:
    """The page's listener, or LoginRequired."""
    user = sessions.viewer(request).user
    if user is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    found: UserInfo = user
    return found


async def login_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/login?next={quote(exc.target, safe='')}", status_code=303)


FormCsrfDep = Annotated[None, Depends(form_csrf)]
PageUserDep = Annotated["UserInfo", Depends(page_user)]


# --------------------------------------------------------------------------- the search options of a query
def search_options(defaults: Mapping[str, Any] | None = None) -> Any:
    """A dependency: the request's query parameters read by ``SearchOptions.parse`` (the one parser of every
    surface) with this route's ``defaults``; a wrong value is a 422 (``bad_argument``)."""
    fixed = dict(defaults or {})

    def read(request: Request) -> SearchOptions:
        return SearchOptions.parse(request.query_params, defaults=fixed)

    return Depends(read)


SearchDep = Annotated[SearchOptions, search_options()]
"""The search options of a JSON query route (the library's defaults)."""


def search_doc(defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads search options: their query parameters, described."""
    return {"parameters": openapi_parameters(defaults)}
