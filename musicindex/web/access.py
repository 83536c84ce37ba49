"""Who may read the library over HTTP: the login rule of the request guard (``security.RequestGuard``, step 5) and
the trusted proxies (docs/web.md, "Security"; docs/reliability.md, the threat model).

* Once a login account exists (on loopback too), every route outside :data:`PUBLIC` (pages, JSON, audio, covers,
  the API docs) needs a logged-in session, the bearer token (``MUSICINDEX_API_TOKEN``: scripts) or, under ``/rest``,
  a Subsonic credential (the Subsonic API checks its own). Without one a page is a redirect to ``/login`` and
  anything else a 401. The rule is one check in front of every route, so no route can forget it.
* With no account, a client of this machine is the server's one local listener; a client of the network may read
  but is nobody (``sessions.local_client``), so it cannot change that listener's likes or playlists.
* The session is looked up (database) in a worker thread, never on the event loop, once per request: the routes
  reuse it (``sessions.viewer``).
* Only a proxy listed in ``MUSICINDEX_TRUSTED_PROXIES`` may name the client (``X-Forwarded-For``) and the scheme
  (``X-Forwarded-Proto``): ``create_app`` puts uvicorn's ``ProxyHeadersMiddleware`` with that list in front of
  everything, so the limiter counts the real client and the cookie is ``Secure`` behind a TLS proxy.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Scope

from musicindex.config import Settings
from musicindex.web import sessions
from musicindex.web.errors import body

PUBLIC_PATHS = frozenset({"/login", "/logout", "/favicon.ico", "/api/health", "/api/library/me"})
PUBLIC_PREFIXES = ("/static/", "/rest/")
"""What anyone may call: the login page, the health check, who the page acts for (``/api/library/me``: logged in
or not, whether accounts exist), the static files (scripts, styles: no library data), and the Subsonic API (every
call authenticates itself)."""


def public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or path == "/rest"


def bearer_ok(authorization: str | None, settings: Settings) -> bool:
    """Whether ``Authorization: Bearer <MUSICINDEX_API_TOKEN>`` came with the request (constant-time)."""
    scheme, _, value = (authorization or "").partition(" ")
    if not settings.api_token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("utf-8", "replace"), settings.api_token.encode())


async def login_refusal(scope: Scope, headers: dict[str, str], settings: Settings) -> Response | None:
    """What to answer a request that may not read the library (None: go on). Looks the session up in a worker
    thread and leaves the viewer on the request's state for the route."""
    if public(scope["path"]) or bearer_ok(headers.get("authorization"), settings):
        return None
    request = Request(scope)
    if request.app.state.index.users.logins_known() is False:  # no account a moment ago: nothing to look up
        return None
    viewer = await run_in_threadpool(sessions.viewer, request)
    if not viewer.accounts or viewer.logged_in:
        return None
    return refusal(request)


def refusal(request: Request) -> Response:
    """A page: a redirect to the login page (back here after). Anything else: 401 in the API's error shape."""
    path = request.url.path
    if request.method in ("GET", "HEAD") and not path.startswith("/api/"):
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return JSONResponse(
        body("unauthorized", "log in first (the page's /login), or send 'Authorization: Bearer <token>'"),
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def first_line(exc: BaseException) -> str:
    """The first line of a database error (the driver's message), for the 503 answer."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else "connection lost"
