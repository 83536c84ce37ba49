"""Accounts: names, passwords kept encrypted under a key outside the database, API keys kept as hashes.

Subsonic's token authentication (``t = md5(password + salt)``) needs the server to know each password, so a
password cannot be stored as a one-way hash. It is encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key
kept in the data folder (``keys.secret(settings, "user.key")``: created atomically, private, never logged), so a
copy of the database alone does not reveal it. No message, log line or exception of this module holds a password
or an API key. API keys are shown once and stored as their sha256 only.

Names: 1 to 64 characters, no control or format characters, no ``:`` (HTTP Basic and Subsonic URLs use it), no
leading or trailing white space; unique without regard to case (``name_key``: NFKC, case-folded).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
import unicodedata
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from musicindex import keys
from musicindex.config import Settings
from musicindex.errors import InvalidArgumentError, ItemNotFoundError, UserNotFoundError
from musicindex.users.limiter import AttemptLimiter, client_address
from musicindex.users.replay import SaltCache

log = logging.getLogger(__name__)

KEY_FILE = "user.key"
MAX_NAME = 64
MAX_PASSWORD = 1024
SYSTEM_KEY = ":system"
"""``name_key`` of the system user (no login name can hold ``:``, so no account can take it)."""
SYSTEM_NAME = "local listener"
API_KEY_PREFIX = "mi_"
API_KEY_ACCOUNT = ":apikey"
"""The limiter's account of API-key attempts (a key names no account)."""
INVALID_ACCOUNT = ":invalid"

_USER_COLUMNS = "id, name, is_admin, is_system, created_at"


@dataclass(frozen=True)
class UserInfo:
    """An account (never its password)."""

    id: int
    name: str
    is_admin: bool
    is_system: bool
    created_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key of an account (never the key: it was shown once and is kept as its sha256)."""

    id: int
    user: str
    created_at: str | None
    last_used_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _user(row: Any) -> UserInfo:
    return UserInfo(int(row[0]), row[1], bool(row[2]), bool(row[3]), row[4].isoformat() if row[4] else None)


def check_name(name: Any) -> tuple[str, str]:
    """(name, name_key) of a valid account name; InvalidArgumentError saying what is wrong otherwise."""
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError("a user name must be a non-empty string")
    if len(name) > MAX_NAME:
        raise InvalidArgumentError(f"a user name has at most {MAX_NAME} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidArgumentError("a user name cannot hold control or invisible format characters")
    if ":" in name:
        raise InvalidArgumentError("a user name cannot hold ':'")
    if name != name.strip():
        raise InvalidArgumentError("a user name cannot start or end with white space")
    return name, name_key(name)


def name_key(name: str) -> str:
    """What makes two names the same account: NFKC, case-folded (the account lookup and the attempt limiter both
    use it, so no spelling of a name gets fresh tries)."""
    return unicodedata.normalize("NFKC", name).casefold()


def limit_key(name: Any) -> str:
    """The limiter's account of a login attempt under ``name`` (valid or not, existing or not)."""
    if not isinstance(name, str) or not name:
        return INVALID_ACCOUNT
    return name_key(name[: MAX_NAME + 1])


def check_password(password: Any) -> str:
    """A valid password (1 to 1024 characters, no NUL); the message never repeats it."""
    if not isinstance(password, str) or not password:
        raise InvalidArgumentError("a password must be a non-empty string")
    if len(password) > MAX_PASSWORD:
        raise InvalidArgumentError(f"a password has at most {MAX_PASSWORD} characters")
    if "\x00" in password or "\n" in password or "\r" in password:
        raise InvalidArgumentError("a password cannot hold NUL or line breaks")
    return password


def hash_key(key: str) -> str:
    """How an API key is stored: its sha256 (hex)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class PasswordBox:
    """Encrypts and decrypts stored passwords under the key in ``home/user.key`` (read on first use)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def _fernet(self) -> Any:
        from cryptography.fernet import Fernet

        raw = keys.secret(self.settings, KEY_FILE, nbytes=32)
        return Fernet(base64.urlsafe_b64encode(raw))

    def seal(self, password: str) -> bytes:
        return bytes(self._fernet.encrypt(password.encode("utf-8")))

    def open(self, sealed: bytes | None) -> str | None:
        """The password, or None when there is none or it cannot be decrypted (another key)."""
        if not sealed:
            return None
        from cryptography.fernet import InvalidToken

        try:
            return str(self._fernet.decrypt(bytes(sealed)).decode("utf-8"))
        except (InvalidToken, UnicodeDecodeError):
            log.warning("a stored password cannot be decrypted with %s (was the key file replaced?)", KEY_FILE)
            return None


class Accounts:
    """The account side of :class:`~musicindex.users.UserService` (each call one transaction).

    Nothing about an account is cached between calls (a password changed or an account removed by another process,
    the CLI, holds at the next call); only "is there any login account?" is kept for ``LOGINS_TTL`` seconds and
    dropped on every change made here."""

    LOGINS_TTL = 2.0

    def __init__(self, db: Any, settings: Settings):
        self.db = db
        self.settings = settings
        self.box = PasswordBox(settings)
        self.limiter = AttemptLimiter()
        self.salts = SaltCache()
        self._logins: tuple[float, bool] | None = None

    def _forget(self) -> None:
        self._logins = None

    # ------------------------------------------------------------------ administration
    def add_user(self, name: str, password: str, admin: bool = False) -> UserInfo:
        """A new account; InvalidArgumentError when the name is taken (in any case) or invalid."""
        name, key = check_name(name)
        sealed = self.box.seal(check_password(password))
        try:
            with self.db.session() as s:
                row = s.execute(
                    text(
                        "INSERT INTO users (name, name_key, is_admin, password_enc) VALUES (:n, :k, :a, :p) "
                        f"RETURNING {_USER_COLUMNS}"
                    ),
                    {"n": name, "k": key, "a": bool(admin), "p": sealed},
                ).one()
        except IntegrityError:
            raise InvalidArgumentError(f"a user named {name!r} exists already (names ignore case)") from None
        self._forget()
        return _user(row)

    def users(self) -> list[UserInfo]:
        """Every login account (the system user is none), by name."""
        with self.db.session() as s:
            rows = s.execute(text(f"SELECT {_USER_COLUMNS} FROM users WHERE NOT is_system ORDER BY name_key")).all()
        return [_user(r) for r in rows]

    def user(self, name: str) -> UserInfo:
        """The login account called ``name`` (any case); UserNotFoundError otherwise."""
        name, key = check_name(name)
        with self.db.session() as s:
            row = s.execute(
                text(f"SELECT {_USER_COLUMNS} FROM users WHERE name_key = :k AND NOT is_system"), {"k": key}
            ).first()
        if row is None:
            raise UserNotFoundError(f"no user named {name!r} (`musicindex user list` lists them)")
        return _user(row)

    def set_password(self, name: str, password: str) -> UserInfo:
        """A new password for ``name``: its API keys are revoked and its web sessions ended (every proof made with
        the old password stops working at once)."""
        user = self.user(name)
        sealed = self.box.seal(check_password(password))
        with self.db.session() as s:
            s.execute(
                text(
                    "UPDATE users SET password_enc = :p, session_epoch = session_epoch + 1, updated_at = now() "
                    "WHERE id = :u"
                ),
                {"p": sealed, "u": user.id},
            )
            s.execute(text("DELETE FROM api_keys WHERE user_id = :u"), {"u": user.id})
            s.execute(text("DELETE FROM sessions WHERE user_id = :u"), {"u": user.id})
        self.salts.forget(user.id)
        self._forget()
        return user

    def remove_user(self, name: str) -> UserInfo:
        """Delete ``name`` with its keys, sessions, stars, ratings, plays, queue and playlists (the foreign keys
        cascade)."""
        user = self.user(name)
        with self.db.session() as s:
            s.execute(text("DELETE FROM users WHERE id = :u"), {"u": user.id})
        self.salts.forget(user.id)
        self._forget()
        return user

    def new_api_key(self, name: str) -> str:
        """A new API key for ``name`` (OpenSubsonic ``apiKey``): returned once, stored as its sha256 only."""
        user = self.user(name)
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        with self.db.session() as s:
            s.execute(
                text("INSERT INTO api_keys (user_id, key_hash) VALUES (:u, :h)"), {"u": user.id, "h": hash_key(key)}
            )
        return key

    def api_keys(self, name: str) -> list[ApiKeyInfo]:
        """The API keys of ``name``: id, when made, when last used (never the keys)."""
        user = self.user(name)
        with self.db.session() as s:
            rows = s.execute(
                text("SELECT id, created_at, last_used_at FROM api_keys WHERE user_id = :u ORDER BY id"),
                {"u": user.id},
            ).all()
        return [
            ApiKeyInfo(int(r[0]), user.name, r[1].isoformat() if r[1] else None, r[2].isoformat() if r[2] else None)
            for r in rows
        ]

    def revoke_api_key(self, name: str, key_id: int) -> None:
        """Revoke the API key ``key_id`` of ``name`` (it stops working at once); ItemNotFoundError when ``name``
        has no key of that id."""
        user = self.user(name)
        with self.db.session() as s:
            gone = s.execute(
                text("DELETE FROM api_keys WHERE id = :i AND user_id = :u RETURNING id"),
                {"i": int(key_id), "u": user.id},
            ).first()
        if gone is None:
            raise ItemNotFoundError(
                f"{user.name!r} has no API key {key_id} (`musicindex user apikey {user.name} --list` lists them)"
            )

    def local_user(self) -> UserInfo:
        """The system user (created on first call): the listener of a web page served without accounts. It is no
        login: no password, never listed, never accepted by the Subsonic API."""
        with self.db.session() as s:
            s.execute(
                text(
                    "INSERT INTO users (name, name_key, is_system) VALUES (:n, :k, true) "
                    "ON CONFLICT (name_key) DO NOTHING"
                ),
                {"n": SYSTEM_NAME, "k": SYSTEM_KEY},
            )
            row = s.execute(text(f"SELECT {_USER_COLUMNS} FROM users WHERE name_key = :k"), {"k": SYSTEM_KEY}).one()
        return _user(row)

    def has_logins(self) -> bool:
        """Whether any login account exists (kept ``LOGINS_TTL`` seconds; a change made here drops it)."""
        now = time.monotonic()
        known = self._logins
        if known is not None and now - known[0] < self.LOGINS_TTL:
            return known[1]
        with self.db.session() as s:
            found = s.execute(text("SELECT 1 FROM users WHERE NOT is_system LIMIT 1")).first() is not None
        self._logins = (now, found)
        return found

    def logins_known(self) -> bool | None:
        """What ``has_logins`` last found, while it is fresh (None: not known now); never asks the database."""
        known = self._logins
        if known is not None and time.monotonic() - known[0] < self.LOGINS_TTL:
            return known[1]
        return None

    # ------------------------------------------------------------------ authentication
    def _login(self, name: Any) -> tuple[UserInfo, str] | None:
        """(account, its password) of the login ``name``, or None (unknown, invalid, system, no password)."""
        try:
            _, key = check_name(name)
        except InvalidArgumentError:
            return None
        with self.db.session() as s:
            row = s.execute(
                text(f"SELECT {_USER_COLUMNS}, password_enc FROM users WHERE name_key = :k AND NOT is_system"),
                {"k": key},
            ).first()
        if row is None:
            return None
        password = self.box.open(row[5])
        return (_user(row), password) if password is not None else None

    def _limited(self, account: str, address: str | None, prove: Any) -> UserInfo | None:
        """``prove()`` (the account, or None) under the attempt limiter: TooManyAttemptsError while ``account``
        from ``address`` (default: the caller's, ``limiter.client_address``) cools down, a failure counted."""
        where = address if address is not None else client_address.get()
        self.limiter.check(where, account)
        user: UserInfo | None = prove()
        if user is None:
            self.limiter.fail(where, account)
        else:
            self.limiter.succeed(where, account)
        return user

    def authenticate_password(self, name: Any, password: Any, *, address: str | None = None) -> UserInfo | None:
        """The account when ``password`` is its password, else None (limited: TooManyAttemptsError)."""

        def prove() -> UserInfo | None:
            found = self._login(name)
            if found is None or not isinstance(password, str):
                return None
            user, stored = found
            return user if _same(stored, password) else None

        return self._limited(limit_key(name), address, prove)

    def authenticate_token(self, name: Any, token: Any, salt: Any, *, address: str | None = None) -> UserInfo | None:
        """The account when ``token`` is md5(password + salt) (Subsonic token authentication) and the pair was not
        used from another address within ``SaltCache.TTL`` (a replay), else None (limited)."""
        where = address if address is not None else client_address.get()

        def prove() -> UserInfo | None:
            found = self._login(name)
            if found is None or not isinstance(token, str) or not isinstance(salt, str) or not salt:
                return None
            user, stored = found
            expected = hashlib.md5((stored + salt).encode("utf-8", "surrogatepass"), usedforsecurity=False)
            if not _same(expected.hexdigest(), token.strip().lower()):
                return None
            return user if self.salts.first_use(user.id, salt, where) else None

        return self._limited(limit_key(name), where, prove)

    def authenticate_api_key(self, key: Any, *, address: str | None = None) -> UserInfo | None:
        """The account an API key belongs to, else None (limited per address; ``last_used_at`` refreshed at most
        hourly)."""

        def prove() -> UserInfo | None:
            if not isinstance(key, str) or not key or len(key) > 200:
                return None
            with self.db.session() as s:
                row = s.execute(
                    text(
                        f"SELECT {', '.join('u.' + c for c in _USER_COLUMNS.split(', '))}, k.id, "
                        "k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 hour' "
                        "FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = :h AND NOT u.is_system"
                    ),
                    {"h": hash_key(key)},
                ).first()
                if row is not None and row[6]:
                    s.execute(text("UPDATE api_keys SET last_used_at = now() WHERE id = :i"), {"i": row[5]})
            return _user(row) if row is not None else None

        return self._limited(API_KEY_ACCOUNT, address, prove)


def _same(expected: str, given: str) -> bool:
    """Constant-time equality of two texts as UTF-8 bytes (any character, a lone surrogate too: never an error)."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))
