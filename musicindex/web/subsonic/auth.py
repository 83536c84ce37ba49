"""Who is calling: Subsonic authentication (``u`` + ``p``, ``u`` + ``t`` + ``s``, OpenSubsonic ``apiKey``), the
protocol version check, and the limit on failed attempts.

Mechanisms: ``p`` is the password in clear or ``enc:`` + its hex; ``t`` is md5(password + ``s``); ``apiKey`` is a
key made by ``musicindex user apikey NAME`` and comes without ``u``. Mixing them is error 43, a wrong key 44,
wrong credentials 40. The system user (``users.is_system``) and accounts without a password never log in.

Failures are limited by the one attempt limiter of every password and key (``musicindex/users/limiter.py``, in the
users service: the web login counts against the same budget): per (address, account) and per address. While a pair
or an address cools down, the call is refused without checking anything, with the failure's code (40, or 44 for an
API key) and the text "too many attempts, retry in N s". An unknown user and a wrong password or token answer the
same (40), and a token is compared as bytes whatever its characters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from musicindex.errors import TooManyAttemptsError
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


def authenticate(index: MusicIndex, params: Params, address: str) -> UserInfo:
    """The account a call authenticates as; SubsonicError otherwise."""
    name, password, token, salt, key = (params.get(k) for k in ("u", "p", "t", "s", "apiKey"))
    if key is not None:
        if name is not None or password is not None or token is not None:
            raise SubsonicError(CONFLICTING_AUTH, "give either apiKey or u with p or t, not both")
        try:
            user = index.users.authenticate_api_key(key, address=address)
        except TooManyAttemptsError as exc:
            raise SubsonicError(INVALID_API_KEY, str(exc)) from None
        if user is None:
            raise SubsonicError(INVALID_API_KEY, "invalid API key")
        return user
    if not name:
        raise SubsonicError(MISSING, "required parameter 'u' (or 'apiKey') is missing")
    if password is not None and token is not None:
        raise SubsonicError(CONFLICTING_AUTH, "give either p or t and s, not both")
    if password is None and (token is None or salt is None):
        raise SubsonicError(MISSING, "required parameter 'p' (or 't' and 's') is missing")
    try:
        if password is not None:
            user = index.users.authenticate_password(name, _plain(password), address=address)
        else:
            user = index.users.authenticate_token(name, token, salt, address=address)
    except TooManyAttemptsError as exc:
        raise SubsonicError(WRONG_CREDENTIALS, str(exc)) from None
    if user is None:
        raise SubsonicError(WRONG_CREDENTIALS, "wrong username or password")
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
