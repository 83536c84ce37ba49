"""The page's sessions and CSRF tokens (docs/web.md, "Login and CSRF").

A session is the cookie ``mi_session``: ``base64url(payload) "." base64url(HMAC-SHA256(key, payload))`` where the
payload is JSON ``{"u": user id or null, "t": issued at, "n": the session id}`` and the key is
``keys.secret(settings, "session.key")`` (a random key in the data folder, private). The cookie is ``HttpOnly`` (no
script reads it), ``SameSite=Lax`` (another site's page cannot send it with a POST), ``Path=/``, ``Secure`` when the
page was served over https (directly, or behind a trusted proxy that says ``X-Forwarded-Proto: https``), and lasts
``MAX_AGE``.

A logged-in session lives on the server too (``index.users.open_session``: the ``sessions`` table keeps the sha256
of its id): it is accepted only while that row lives, so logout, a password change, the account's removal and "log
out everywhere" end it at once, whatever the browser kept. A session without an account (nobody logged in, or a
server without accounts) is the signed cookie alone: it only carries the CSRF token.

The CSRF token of a session is ``HMAC(key, "csrf:" + session id)``: bound to the session, unknown to another site
(it can neither read the cookie nor compute the token). Every form and every state-changing request of the page
carries it (the ``csrf`` field, or the ``X-CSRF-Token`` header set by the page's script); without it, or with
another, the request is refused (403). A server without accounts gives every browser a session of its own (user
None: the server's one local listener, for clients on this machine only), so the page's changes are CSRF-checked
all the same. Requests with today's bearer token (``Authorization`` header: scripts) need no CSRF token: no other
site can make a browser send that header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from musicindex import keys
from musicindex.config import Settings
from musicindex.users import sessions as session_store

COOKIE = "mi_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
MAX_AGE = session_store.MAX_AGE
"""Seconds a session lasts (then: log in again)."""
KEY_FILE = "session.key"


@dataclass(frozen=True)
class Session:
    """A verified cookie: whose (``user_id`` None: nobody logged in), when, its id (``nonce``: for a logged-in
    session, the id the server keeps the hash of)."""

    user_id: int | None
    issued_at: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(settings: Settings) -> bytes:
    return keys.secret(settings, KEY_FILE)


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def new_session(user_id: int | None, session_id: str | None = None) -> Session:
    """A session cookie of ``user_id`` naming ``session_id`` (a server-side session; None: a new random id)."""
    return Session(user_id, int(time.time()), session_id or secrets.token_urlsafe(16))


def encode(settings: Settings, session: Session) -> str:
    """The cookie value of ``session`` (signed)."""
    payload = json.dumps(
        {"u": session.user_id, "t": session.issued_at, "n": session.nonce}, separators=(",", ":")
    ).encode()
    return f"{_b64(payload)}.{_b64(_mac(_key(settings), payload))}"


def decode(settings: Settings, value: str | None, now: float | None = None) -> Session | None:
    """The session a cookie value holds, or None: no cookie, a wrong signature, a malformed or expired one."""
    if not value or len(value) > 1024 or value.count(".") != 1:
        return None
    body, sig = value.split(".")
    try:
        payload, mac = _unb64(body), _unb64(sig)
    except (ValueError, TypeError):
        return None
    if not hmac.compare_digest(mac, _mac(_key(settings), payload)):
        return None
    try:
        d: Any = json.loads(payload)
        session = Session(None if d["u"] is None else int(d["u"]), int(d["t"]), str(d["n"]))
    except (ValueError, TypeError, KeyError):
        return None
    age = (time.time() if now is None else now) - session.issued_at
    if age > MAX_AGE or age < -300:
        return None
    return session


def csrf_token(settings: Settings, session: Session) -> str:
    """The CSRF token of ``session``."""
    return _b64(_mac(_key(settings), f"csrf:{session.nonce}".encode()))


def csrf_ok(settings: Settings, session: Session | None, token: str | None) -> bool:
    """Whether ``token`` is ``session``'s CSRF token (constant-time)."""
    if session is None or not token:
        return False
    return hmac.compare_digest(token.encode(), csrf_token(settings, session).encode())


def cookie_options(secure: bool) -> dict[str, Any]:
    """How the session cookie is set (``Response.set_cookie`` keywords)."""
    return {"key": COOKIE, "max_age": MAX_AGE, "path": "/", "httponly": True, "samesite": "lax", "secure": secure}


# --------------------------------------------------------------------------- the page's listener (wired)
@dataclass(frozen=True)
class Viewer:
    """Who a request of the page acts for.

    ``user``: the logged-in account; with no account on the server, the system user (``index.local_user()``: the
    server's one local listener); None when accounts exist and nobody is logged in. ``accounts``: whether login
    accounts exist. ``fresh``: the session is new (the answer sets the cookie)."""

    session: Session
    user: Any
    accounts: bool
    csrf: str
    fresh: bool

    @property
    def logged_in(self) -> bool:
        return self.user is not None and not self.user.is_system


def viewer(request: Any) -> Viewer:
    """The :class:`Viewer` of ``request`` (computed once per request, by the request guard in a worker thread: it
    queries the database): the session cookie verified (a new anonymous session when there is none or it is
    refused), the account of its server-side session looked up."""
    cached = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached
    index = request.app.state.index
    settings = index.settings
    session = decode(settings, request.cookies.get(COOKIE))
    fresh = session is None
    accounts = index.users.has_logins()
    user = None
    if session is not None and session.user_id is not None:
        user = index.users.session_user(session.nonce) if accounts else None
        if user is None or user.id != session.user_id:  # ended, expired, the account gone: a new anonymous one
            user, session, fresh = None, None, True
    if session is None:
        session = new_session(None)
    if not accounts and local_client(request):
        user = local_listener(request)
    found = Viewer(session, user, accounts, csrf_token(settings, session), fresh)
    request.state.viewer = found
    return found


def local_client(request: Any) -> bool:
    """Whether the request comes from this machine (a server without accounts lets only such clients be its local
    listener: a client of the network may read, never change that listener's state)."""
    import ipaddress

    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "testclient"  # Starlette's TestClient (in-process: this machine)


def local_listener(request: Any) -> Any:
    """The system user (created once per app)."""
    app_state = request.app.state
    local = getattr(app_state, "local_listener", None)
    if local is None:
        local = app_state.local_listener = app_state.index.users.local_user()
    return local


def start(request: Any, response: Any, user: Any) -> Viewer:
    """Log ``user`` in (None: log out): the browser's server-side session (if any) ends, a new session (new id, so
    a new CSRF token) is set on ``response``."""
    index = request.app.state.index
    old = getattr(request.state, "viewer", None)
    old_session = old.session if old is not None else decode(index.settings, request.cookies.get(COOKIE))
    if old_session is not None and old_session.user_id is not None:
        index.users.end_session(old_session.nonce)
    session = new_session(user.id, index.users.open_session(user.id)) if user is not None else new_session(None)
    response.set_cookie(value=encode(index.settings, session), **cookie_options(secure_request(request)))
    fresh = Viewer(session, user, index.users.has_logins(), csrf_token(index.settings, session), False)
    request.state.viewer = fresh
    return fresh


def secure_request(request: Any) -> bool:
    """Whether the page was served over https (the scheme a trusted proxy said, ``security.ProxyHeaders``)."""
    return bool(request.url.scheme == "https")


def attach(request: Any, response: Any) -> None:
    """Set the session cookie on ``response`` when the request's session is new."""
    v = getattr(request.state, "viewer", None)
    if v is not None and v.fresh:
        response.set_cookie(value=encode(request.app.state.index.settings, v.session),
                            **cookie_options(secure_request(request)))  # fmt: skip
