"""Security rules of the HTTP server (docs/web.md, "Security").

* ``serve`` binds to loopback by default; another address needs ``MUSICINDEX_API_TOKEN``.
* Requests that change anything (ingest, train, promote, rollback) need
  ``Authorization: Bearer <token>``; without a configured token they are refused. The token
  travels only in that header, set by the page's script from what the user typed (kept in the
  tab's sessionStorage): never a cookie, so another site cannot make a browser send it (CSRF).
* The ``Host`` header must name this server (loopback names by default), against DNS rebinding.
* Every answer carries a strict Content-Security-Policy (scripts and styles from this server only).
* :class:`RequestGuard`, one pure ASGI middleware in front of every route, decides before any body is read:
  cross-site requests that change something or cost much are refused (403, the origin rule); the token of
  token-protected routes is checked (401/403); a ``Content-Length`` over the route's cap is refused (413) and a
  body that grows past it is cut (413); a NUL character in the path or query is a 422. It also answers a client
  that went away with nothing (one log line, no traceback) and anything unexpected with the JSON error shape
  (or the HTML error page) and a logged traceback, never a plain-text 500.

Routes declare what they need with :func:`policy` (``token``, ``costly``, ``body``); ``create_app`` hands the
routers' routes to the guard. The Subsonic API under ``/rest/`` (its clients authenticate every request
themselves, and web players on other origins call it) is exempt from the origin and NUL rules.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from musicindex.config import Settings
from musicindex.errors import ConfigError, InvalidArgumentError, ServiceError
from musicindex.users.limiter import client_address
from musicindex.web import access
from musicindex.web.errors import ApiError, HtmlRenderer, body

log = logging.getLogger(__name__)

JSON_BODY_MAX = 64 * 1024
"""Largest request body of every route but the upload (JSON bodies of ingest and train are a few hundred bytes)."""
EXEMPT_PREFIXES = ("/rest/",)
"""Paths the origin and NUL rules leave alone: the Subsonic API (its clients authenticate every request)."""
CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is only reachable from this machine."""
    h = host.strip().strip("[]")
    if h.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        pass
    try:  # a name: loopback only if every address it resolves to is
        infos = socket.getaddrinfo(h, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def check_bind(host: str, settings: Settings) -> None:
    """Refuse a non-loopback bind without an API token, or without ``MUSICINDEX_ALLOWED_HOSTS``."""
    if is_loopback(host):
        return
    if not settings.api_token:
        raise ConfigError(
            f"refusing to listen on {host!r} without an API token: anyone who can reach it could use the API. "
            "Set MUSICINDEX_API_TOKEN (at least 16 characters, e.g. `openssl rand -hex 32`) or bind to 127.0.0.1"
        )
    if not settings.allowed_host_list:
        raise ConfigError(
            f"refusing to listen on {host!r} without MUSICINDEX_ALLOWED_HOSTS: set it to the names and addresses "
            "clients use to reach this server (e.g. MUSICINDEX_ALLOWED_HOSTS=192.168.1.20,music.home), so that "
            "another site's page cannot reach it through DNS rebinding"
        )


def allowed_hosts(host: str, settings: Settings) -> list[str]:
    """Host header values the server answers to (``check_bind`` refused a non-loopback bind without a list)."""
    configured = settings.allowed_host_list
    if configured:
        return configured
    check_bind(host, settings)
    return list(LOOPBACK_NAMES)


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RoutePolicy:
    """What :class:`RequestGuard` checks for a route before its body is read."""

    token: bool = False
    """The route changes something: ``Authorization: Bearer <MUSICINDEX_API_TOKEN>`` is required."""
    costly: bool = False
    """The route costs much (evaluate, map, exports, ...): a GET from another site is refused too."""
    body: Literal["small", "json", "upload"] = "small"
    """Its body: ``small`` (any, at most ``JSON_BODY_MAX``), ``json`` (the same cap, and a body sent must be
    ``application/json``: another type is a 415, never silently ignored) or ``upload`` (the file itself, at most
    ``MUSICINDEX_UPLOAD_MAX_BYTES``)."""


_POLICY_ATTR = "__musicindex_policy__"


def policy(
    *, token: bool = False, costly: bool = False, body: Literal["small", "json", "upload"] = "small"
) -> Callable[[F], F]:
    """Declare a route's :class:`RoutePolicy` (put it under the route decorator)."""

    def mark(fn: F) -> F:
        setattr(fn, _POLICY_ATTR, RoutePolicy(token=token, costly=costly, body=body))
        return fn

    return mark


def route_policies(routes: Iterable[BaseRoute]) -> list[tuple[Route, RoutePolicy]]:
    """The routes among ``routes`` that declared a policy, with it."""
    out = []
    for r in routes:
        p = getattr(getattr(r, "endpoint", None), _POLICY_ATTR, None)
        if isinstance(r, Route) and isinstance(p, RoutePolicy):
            out.append((r, p))
    return out


def check_token(authorization: str | None, settings: Settings) -> None:
    """Raise ApiError 403 (no token configured) or 401 (missing or wrong token)."""
    if not settings.api_token:
        raise ApiError(
            403,
            "forbidden",
            "changes over HTTP are disabled: set MUSICINDEX_API_TOKEN and restart `musicindex serve`, "
            "then send it as 'Authorization: Bearer <token>'",
        )
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(
            401, "unauthorized", "send the API token as 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(value.strip().encode(), settings.api_token.encode()):
        raise ApiError(401, "unauthorized", "wrong API token", {"WWW-Authenticate": "Bearer"})


class SecurityHeaders:
    """Pure ASGI middleware: security headers on every answer (cheaper than BaseHTTPMiddleware), and
    ``Server-Timing: app;dur=MS``: the server's time until the answer started (benchmarks/http_api.py)."""

    HEADERS = (
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", CSP.encode()),
        (b"cross-origin-opener-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in self.HEADERS if k not in present)
                headers.append((b"server-timing", f"app;dur={(time.perf_counter() - start) * 1000:.2f}".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --------------------------------------------------------------------------- the request guard
class BodyTooLarge(StarletteHTTPException):
    """A request body that grew past its route's cap while it was read (answered 413 ``too_large``)."""

    def __init__(self, cap: int):
        super().__init__(413, f"the request body is larger than the limit of {cap} bytes")


def host_allowed(host: str | None, allowed: Sequence[str]) -> bool:
    """Whether a ``Host`` header (``name[:port]``, ``[v6]:port``) is one of ``allowed`` (``*``: any; ``*.domain``:
    the domain's subdomains)."""
    if "*" in allowed:
        return True
    if not host:
        return False
    h = host.strip().lower()
    if any(c in h for c in "@/\\ ?#%"):  # userinfo, a path, a query: never part of a Host
        return False
    end = h.find("]") + 1 if h.startswith("[") else None  # [v6] or [v6]:port
    name = h[:end] if end is not None else h.rsplit(":", 1)[0]
    port = h[len(name) :]
    if not name or (port and not (port[0] == ":" and port[1:].isdigit() and len(port) <= 6)):
        return False
    bare = name.strip("[]")
    return any(bare == a.strip("[]") or (a.startswith("*.") and bare.endswith(a[1:])) for a in allowed)


def same_origin(origin: str, host: str | None) -> bool:
    """Whether ``Origin`` names this server: its ``host[:port]`` is the ``Host`` header (whatever the scheme, so a
    TLS proxy in front that passes ``Host`` on keeps the page working)."""
    if not host:
        return False
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.strip().lower()


class RequestGuard:
    """Pure ASGI middleware: every rule that must hold before a route reads its body (see the module docstring).

    ``routes``: the app's routes (those with a :func:`policy` are looked up per request); ``html``: renders the
    errors of pages (paths outside ``/api/``) as the app's HTML error page.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        routes: Sequence[BaseRoute] = (),
        html: HtmlRenderer | None = None,
        exempt: Sequence[str] = EXEMPT_PREFIXES,
        allowed_hosts: Sequence[str] = ("*",),
    ):
        self.app = app
        self.settings = settings
        self.allowed_hosts = [h.lower() for h in allowed_hosts]
        self.policies = route_policies(routes)
        self.html = html
        self.exempt = tuple(exempt)
        self.cors = {o.lower() for o in settings.cors_origin_list}

    # -- answers
    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        category: str,
        message: str,
        headers: dict[str, str] | None = None,
        exit_code: int | None = None,
    ) -> None:
        response: Response
        if self.html is not None and not scope["path"].startswith("/api/"):
            response = self.html(Request(scope), status, category, message)
            for k, v in (headers or {}).items():
                response.headers[k] = v
        else:
            response = JSONResponse(body(category, message, exit_code), status_code=status, headers=headers)
        await response(scope, receive, send)

    def _policy(self, scope: Scope) -> RoutePolicy:
        for route, pol in self.policies:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return pol
        return RoutePolicy()

    def _cross_site(self, scope: Scope, headers: dict[str, str]) -> str | None:
        """Why this request comes from another site (None: it does not, or it is from an allowed origin)."""
        origin = headers.get("origin")
        if origin is not None:
            if same_origin(origin, headers.get("host")) or origin.strip().lower().rstrip("/") in self.cors:
                return None
            return f"its Origin {origin[:100]!r} is not this server"
        site = headers.get("sec-fetch-site")
        if site is not None and site.strip().lower() in ("cross-site", "same-site"):
            return f"the browser says it comes from another site (Sec-Fetch-Site: {site[:20]})"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        reset = client_address.set(str(client[0]) if client else "unknown")  # the limiter's address (users/limiter)
        try:
            await self._guard(scope, receive, send)
        finally:
            client_address.reset(reset)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        exempt = path.startswith(self.exempt)
        pol = self._policy(scope)
        raw_query: bytes = scope.get("query_string", b"")

        # 0. the Host header names this server (against DNS rebinding)
        if not host_allowed(headers.get("host"), self.allowed_hosts):
            await self._refuse(
                scope, receive, send, 400, "bad_host",
                "the Host header does not name this server (MUSICINDEX_ALLOWED_HOSTS lists the names it answers to)",
            )  # fmt: skip
            return
        # 1. the origin rule: changes, and costly reads, only from this server's pages (or allowed origins)
        if not exempt and (method in CHANGING_METHODS or pol.costly):  # every route with an M3U8 export is costly
            why = self._cross_site(scope, headers)
            if why is not None:
                await self._refuse(
                    scope, receive, send, 403, "forbidden",
                    f"cross-site request refused: {why}. Use the page of this server, or list the calling page's "
                    "origin in MUSICINDEX_CORS_ORIGINS",
                )  # fmt: skip
                return
        # 2. the token, before any byte of the body is read
        if pol.token:
            try:
                check_token(headers.get("authorization"), self.settings)
            except ApiError as exc:
                await self._refuse(scope, receive, send, exc.status, exc.category, exc.message, exc.headers)
                return
        # 3. the body's size: a declared length over the cap at once, a streamed one while it is read
        cap = self.settings.upload_max_bytes if pol.body == "upload" else JSON_BODY_MAX
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit() or len(declared.strip()) > 18:
                await self._refuse(scope, receive, send, 400, "bad_request", "Content-Length must be a number")
                return
            if int(declared) > cap:
                await self._refuse(
                    scope, receive, send, 413, "too_large", f"the request body is larger than the limit of {cap} bytes"
                )
                return
        if pol.body == "json" and (declared not in (None, "0") or "transfer-encoding" in headers):
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json" and not ctype.endswith("+json"):
                await self._refuse(
                    scope, receive, send, 415, "unsupported_media_type",
                    f"send the body as JSON (Content-Type: application/json), not {ctype or 'without a type'}",
                )  # fmt: skip
                return
        # 4. NUL characters: no name, tag or setting can hold one
        if not exempt:
            bad = _nul_parameter(path, raw_query)
            if bad is not None:
                await self._refuse(
                    scope, receive, send, 422, "bad_argument",
                    f"{bad} contains a NUL character (\\x00), which no name, tag or parameter can hold",
                    exit_code=InvalidArgumentError.exit_code,
                )  # fmt: skip
                return

        # 5. the login rule: once accounts exist, the library is read with a session, the token or (/rest) a
        # Subsonic credential (access.py; the session is looked up in a worker thread, never on the event loop)
        try:
            refused = await access.login_refusal(scope, headers, self.settings)
        except OperationalError as exc:  # the database is down: say so, as the routes do (503)
            await self._refuse(
                scope, receive, send, 503, "server_unreachable",
                f"PostgreSQL does not answer: {access.first_line(exc)}", exit_code=ServiceError.exit_code,
            )  # fmt: skip
            return
        if refused is not None:
            await refused(scope, receive, send)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge(cap)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except ClientDisconnect:
            log.info("%s %s: the client went away before the answer was complete", method, path[:200])
        except BodyTooLarge as exc:
            if not started:
                await self._refuse(scope, receive, send, 413, "too_large", str(exc.detail))
        except Exception:
            log.exception("unexpected error answering %s %s", method, path[:200])
            if not started:
                await self._refuse(
                    scope, receive, send, 500, "error",
                    "unexpected server error (the server's log has the details)", exit_code=1,
                )  # fmt: skip


def _nul_parameter(path: str, raw_query: bytes) -> str | None:
    """What holds a NUL character: ``the path``, ``parameter NAME``, or None."""
    if "\x00" in path:
        return "the path"
    if b"%00" not in raw_query.lower() and b"\x00" not in raw_query:
        return None
    for name, value in parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True, encoding="utf-8"):
        if "\x00" in name or "\x00" in value:
            return f"parameter {name.replace(chr(0), '?')[:50]!r}"
    return "the query"
