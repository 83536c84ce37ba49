"""The page's sessions and CSRF tokens (docs/web.md, "Login and CSRF").

A session is the cookie ``mi_session``: ``base64url(payload) "." base64url(HMAC-SHA256(key, payload))`` where the
payload is JSON ``{"u": user id or null, "e": the user's session epoch, "t": issued at, "n": a random nonce}`` and
the key is ``keys.secret(settings, "session.key")`` (a random key in the data folder, private). The cookie is
``HttpOnly`` (no script reads it), ``SameSite=Lax`` (another site's page cannot send it with a POST), ``Path=/``,
``Secure`` when the page was served over https, and lasts ``MAX_AGE``. A session is refused when its signature is
wrong, it is older than ``MAX_AGE``, or its epoch is not the user's any more: changing a password bumps the epoch
and ends every session signed before.

The CSRF token of a session is ``HMAC(key, "csrf:" + nonce)``: bound to the session, unknown to another site (it
can neither read the cookie nor compute the token). Every form and every state-changing request of the page carries
it (the ``csrf`` field, or the ``X-CSRF-Token`` header set by the page's script); without it, or with another, the
request is refused (403). A server without accounts gives every browser a session of its own (user None: the
server's one local listener), so the page's changes are CSRF-checked all the same. Requests with today's bearer
token (``Authorization`` header: scripts) need no CSRF token: no other site can make a browser send that header.
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

COOKIE = "mi_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
MAX_AGE = 30 * 24 * 3600
"""Seconds a session lasts (then: log in again)."""
KEY_FILE = "session.key"


@dataclass(frozen=True)
class Session:
    """A verified session: whose (``user_id`` None: the server has no accounts), its epoch, when, its nonce."""

    user_id: int | None
    epoch: int
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


def new_session(user_id: int | None, epoch: int = 0) -> Session:
    return Session(user_id, int(epoch), int(time.time()), secrets.token_urlsafe(16))


def encode(settings: Settings, session: Session) -> str:
    """The cookie value of ``session`` (signed)."""
    payload = json.dumps(
        {"u": session.user_id, "e": session.epoch, "t": session.issued_at, "n": session.nonce}, separators=(",", ":")
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
        session = Session(
            None if d["u"] is None else int(d["u"]), int(d["e"]), int(d["t"]), str(d["n"])
        )  # fmt: skip
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
    """The :class:`Viewer` of ``request`` (computed once per request): the session cookie verified (a new
    anonymous session when there is none or it is refused), the account it names looked up."""
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
        user = index.users.session_user(session.user_id, session.epoch) if accounts else None
        if user is None:  # the account is gone, or its password changed: a new anonymous session
            session, fresh = None, True
    if session is None:
        session = new_session(None)
    if not accounts:
        user = local_listener(request)
    found = Viewer(session, user, accounts, csrf_token(settings, session), fresh)
    request.state.viewer = found
    return found


def local_listener(request: Any) -> Any:
    """The system user (created once per app)."""
    app_state = request.app.state
    local = getattr(app_state, "local_listener", None)
    if local is None:
        local = app_state.local_listener = app_state.index.users.local_user()
    return local


def start(request: Any, response: Any, user: Any) -> Viewer:
    """Log ``user`` in (None: log out): a new session (new nonce, so a new CSRF token) set on ``response``."""
    index = request.app.state.index
    epoch = index.users.session_epoch(user.id) if user is not None else 0
    session = new_session(user.id if user is not None else None, epoch)
    response.set_cookie(value=encode(index.settings, session), **cookie_options(request.url.scheme == "https"))
    fresh = Viewer(session, user, index.users.has_logins(), csrf_token(index.settings, session), False)
    request.state.viewer = fresh
    return fresh


def attach(request: Any, response: Any) -> None:
    """Set the session cookie on ``response`` when the request's session is new."""
    v = getattr(request.state, "viewer", None)
    if v is not None and v.fresh:
        response.set_cookie(value=encode(request.app.state.index.settings, v.session),
                            **cookie_options(request.url.scheme == "https"))  # fmt: skip
