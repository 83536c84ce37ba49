"""Security rules of the HTTP server (docs/web.md, "Security").

* ``serve`` binds to loopback by default; another address needs ``MUSICINDEX_API_TOKEN``.
* Requests that change anything (ingest, train, promote, rollback) need
  ``Authorization: Bearer <token>``; without a configured token they are refused. The token
  travels only in that header, set by the page's script from what the user typed (kept in the
  tab's sessionStorage): never a cookie, so another site cannot make a browser send it (CSRF).
* The ``Host`` header must name this server (loopback names by default), against DNS rebinding.
* Every answer carries a strict Content-Security-Policy (scripts and styles from this server only).
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from musicindex.config import Settings
from musicindex.errors import ConfigError
from musicindex.web.errors import ApiError

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
    """Refuse a non-loopback bind without an API token."""
    if not is_loopback(host) and not settings.api_token:
        raise ConfigError(
            f"refusing to listen on {host!r} without an API token: anyone who can reach it could use the API. "
            "Set MUSICINDEX_API_TOKEN (at least 16 characters, e.g. `openssl rand -hex 32`) or bind to 127.0.0.1"
        )


def allowed_hosts(host: str, settings: Settings) -> list[str]:
    """Host header values the server answers to."""
    configured = settings.allowed_host_list
    if configured:
        return configured
    if is_loopback(host):
        return ["localhost", "127.0.0.1", "::1", "[::1]"]
    return ["*"]


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
