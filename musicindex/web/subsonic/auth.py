"""Who is calling: Subsonic authentication (``u`` + ``p``, ``u`` + ``t`` + ``s``, OpenSubsonic ``apiKey``), the
protocol version check, and the limit on failed attempts.

Mechanisms: ``p`` is the password in clear or ``enc:`` + its hex; ``t`` is md5(password + ``s``); ``apiKey`` is a
key made by ``musicindex user apikey NAME`` and comes without ``u``. Mixing them is error 43, a wrong key 44,
wrong credentials 40. The system user (``users.is_system``) and accounts without a password never log in.

Failures are limited per user name and per client address: after ``LIMIT`` failures within ``WINDOW`` seconds the
name (or address) is refused for ``COOLDOWN`` seconds with the failure's code at once, without checking anything
(one warning is logged when the cool-down starts; never a password). A success clears the name's failures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from musicindex.web.subsonic.protocol import (
    CLIENT_OLD,
    CONFLICTING_AUTH,
    INVALID_API_KEY,
    MISSING,
    SERVER_OLD,
    WRONG_CREDENTIALS,
    Params,
    SubsonicError,
)

if TYPE_CHECKING:
    from musicindex.index import MusicIndex
    from musicindex.users import UserInfo

log = logging.getLogger("musicindex.subsonic")

LIMIT = 10
WINDOW = 60.0
COOLDOWN = 60.0
MAX_TRACKED = 10_000
"""Most names and addresses whose failures are remembered (the oldest are forgotten first)."""


class FailureLimiter:
    """Failed attempts per key (``user:NAME``, ``addr:IP``) in a sliding window, and the keys cooling down."""

    def __init__(self, limit: int = LIMIT, window: float = WINDOW, cooldown: float = COOLDOWN):
        self.limit, self.window, self.cooldown = limit, window, cooldown
        self._failures: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}
        self._lock = threading.Lock()

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(self._blocked.get(k, 0.0) > now for k in keys)

    def fail(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                times = self._failures.setdefault(key, deque())
                times.append(now)
                while times and times[0] < now - self.window:
                    times.popleft()
                if len(times) >= self.limit and self._blocked.get(key, 0.0) <= now:
                    self._blocked[key] = now + self.cooldown
                    times.clear()
                    log.warning(
                        "subsonic: %d failed logins for %r within %.0f s; refusing it for %.0f s",
                        self.limit, key, self.window, self.cooldown,
                    )  # fmt: skip
            self._forget(now)

    def succeed(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _forget(self, now: float) -> None:
        for table in (self._failures, self._blocked):
            while len(table) > MAX_TRACKED:
                table.pop(next(iter(table)))
        for key in [k for k, until in self._blocked.items() if until <= now]:
            del self._blocked[key]


def check_version(params: Params) -> None:
    """Error 20 (client too old) or 30 (server too old) for a protocol version of another major number."""
    v = params.get("v")
    if not v:
        return
    try:
        major = int(v.strip().split(".")[0])
    except ValueError:
        raise SubsonicError(CLIENT_OLD, f"unknown protocol version {v[:20]!r}; this server speaks 1.16.1") from None
    if major < 1:
        raise SubsonicError(CLIENT_OLD, "incompatible Subsonic REST protocol version: the client must upgrade")
    if major > 1:
        raise SubsonicError(SERVER_OLD, "incompatible Subsonic REST protocol version: the server must upgrade")


def authenticate(index: MusicIndex, params: Params, address: str, limiter: FailureLimiter) -> UserInfo:
    """The account a call authenticates as; SubsonicError otherwise."""
    name, password, token, salt, key = (params.get(k) for k in ("u", "p", "t", "s", "apiKey"))
    addr = f"addr:{address}"
    if key is not None:
        if name is not None or password is not None or token is not None:
            raise SubsonicError(CONFLICTING_AUTH, "give either apiKey or u with p or t, not both")
        if limiter.blocked(addr):
            raise SubsonicError(INVALID_API_KEY, "too many failed attempts; wait a minute")
        user = index.users.authenticate_api_key(key)
        if user is None:
            limiter.fail(addr)
            raise SubsonicError(INVALID_API_KEY, "invalid API key")
        return user
    if not name:
        raise SubsonicError(MISSING, "required parameter 'u' (or 'apiKey') is missing")
    if password is not None and token is not None:
        raise SubsonicError(CONFLICTING_AUTH, "give either p or t and s, not both")
    if password is None and (token is None or salt is None):
        raise SubsonicError(MISSING, "required parameter 'p' (or 't' and 's') is missing")
    who = f"user:{name.casefold()[:100]}"
    if limiter.blocked(who, addr):
        raise SubsonicError(WRONG_CREDENTIALS, "wrong username or password")
    if password is not None:
        user = index.users.authenticate_password(name, _plain(password))
    else:
        user = index.users.authenticate_token(name, token, salt)
    if user is None:
        limiter.fail(who, addr)
        raise SubsonicError(WRONG_CREDENTIALS, "wrong username or password")
    limiter.succeed(who)
    return user


def _plain(password: str) -> str | None:
    """``p`` as given, or decoded from ``enc:HEX``: the hex of the UTF-8 bytes, else (as some clients write it) of
    Latin-1 ones; None when it is no hex."""
    if not password.startswith("enc:"):
        return password
    try:
        raw = bytes.fromhex(password[4:])
    except ValueError:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
