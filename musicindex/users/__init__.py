"""Listeners: accounts (``accounts``: names, encrypted passwords, hashed API keys, the system user) and what each
listener does (``state``: stars, ratings, plays, now playing, the play queue, playlists; ``playback``: bookmarks,
playback reports with their plays and skips, the index-based queue, a listener's maximum bitrate).

:class:`UserService` is ``index.users`` (and its methods are the index's, ``index.SERVICE_METHODS["users"]``).
Reading a listener's state back is the query layer's (``musicindex.query.catalog``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from musicindex.config import Settings
from musicindex.users import playback, state
from musicindex.users.accounts import Accounts, ApiKeyInfo, UserInfo, _user
from musicindex.users.playback import Bookmark, PlaybackReport
from musicindex.users.sessions import SessionStore
from musicindex.users.state import ItemRef

__all__ = ["ApiKeyInfo", "Bookmark", "ItemRef", "PlaybackReport", "UserInfo", "UserService"]


class UserService:
    """Accounts and the write side of each listener's state (one transaction per call)."""

    def __init__(self, db: Any, settings: Settings):
        self.db = db
        self._accounts = Accounts(db, settings)
        self._sessions = SessionStore(db)

    @property
    def settings(self) -> Settings:
        return self._accounts.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._accounts = Accounts(self.db, settings)

    # ------------------------------------------------------------------ accounts
    def add_user(self, name: str, password: str, admin: bool = False) -> UserInfo:
        """A new login account (names are unique in any case)."""
        return self._accounts.add_user(name, password, admin)

    def list_users(self) -> list[UserInfo]:
        """Every login account, by name (never the system user)."""
        return self._accounts.users()

    def user(self, name: str) -> UserInfo:
        """The login account called ``name``."""
        return self._accounts.user(name)

    def set_password(self, name: str, password: str) -> UserInfo:
        """Change the password of ``name``."""
        return self._accounts.set_password(name, password)

    def remove_user(self, name: str) -> UserInfo:
        """Delete ``name`` and everything that is theirs."""
        return self._accounts.remove_user(name)

    def new_api_key(self, name: str) -> str:
        """A new API key of ``name``, returned once (stored as its sha256)."""
        return self._accounts.new_api_key(name)

    def api_keys(self, name: str) -> list[ApiKeyInfo]:
        """The API keys of ``name`` (id, made, last used; never the keys)."""
        return self._accounts.api_keys(name)

    def revoke_api_key(self, name: str, key_id: int) -> None:
        """Revoke one API key of ``name`` (it stops working at once)."""
        self._accounts.revoke_api_key(name, key_id)

    def local_user(self) -> UserInfo:
        """The system user of a page served without accounts (created on first call; never a login)."""
        return self._accounts.local_user()

    def has_logins(self) -> bool:
        """Whether any login account exists (kept a moment; a change through this service drops it)."""
        return self._accounts.has_logins()

    def logins_known(self) -> bool | None:
        """What ``has_logins`` found a moment ago (None: not known now); never asks the database (safe on an event
        loop)."""
        return self._accounts.logins_known()

    # ------------------------------------------------------------------ web sessions (server-side)
    def open_session(self, user_id: int) -> str:
        """A new web session of ``user_id``: its id, returned once (the server keeps only its sha256)."""
        return self._sessions.open(user_id)

    def session_user(self, session_id: str) -> UserInfo | None:
        """The login account of a live web session, else None (ended, expired, unknown)."""
        row = self._sessions.user_row(session_id)
        return _user(row) if row is not None else None

    def end_session(self, session_id: str) -> bool:
        """End one web session (logout): its cookie proves nothing any more. Whether it was live."""
        return self._sessions.end(session_id)

    def end_sessions(self, name: str) -> int:
        """Log ``name`` out everywhere: every web session of theirs ends. How many were live."""
        return self._sessions.end_all(self._accounts.user(name).id)

    # ------------------------------------------------------------------ proofs (all under one attempt limiter)
    def authenticate_password(self, name: Any, password: Any, *, address: str | None = None) -> UserInfo | None:
        """The account if ``password`` is right, else None. Every proof is limited per (address, account) and per
        address (``users/limiter.py``): TooManyAttemptsError while cooling down. ``address``: the caller's
        network address (default: the request's, set by the web server; "local" in-process)."""
        return self._accounts.authenticate_password(name, password, address=address)

    def authenticate_token(self, name: Any, token: Any, salt: Any, *, address: str | None = None) -> UserInfo | None:
        """The account if ``token`` is md5(password + salt) and the pair is no replay from another address, else
        None (limited)."""
        return self._accounts.authenticate_token(name, token, salt, address=address)

    def authenticate_api_key(self, key: Any, *, address: str | None = None) -> UserInfo | None:
        """The account of an API key, else None (limited per address)."""
        return self._accounts.authenticate_api_key(key, address=address)

    # ------------------------------------------------------------------ a listener's state
    def star(self, user_id: int, items: Sequence[ItemRef]) -> int:
        """Star tracks, albums and artists (``(item_type, id)`` pairs)."""
        return state.set_starred(self.db, user_id, items, True)

    def unstar(self, user_id: int, items: Sequence[ItemRef]) -> int:
        """Unstar tracks, albums and artists."""
        return state.set_starred(self.db, user_id, items, False)

    def set_rating(self, user_id: int, item: ItemRef, rating: int) -> None:
        """Rate an item 1 to 5 (0 clears)."""
        state.set_rating(self.db, user_id, item, rating)

    def scrobble(
        self,
        user_id: int,
        track_ids: Sequence[int],
        times: Sequence[dt.datetime | None] = (),
        *,
        submission: bool = True,
        client: str = "",
    ) -> None:
        """Count plays (``submission``) or say what is playing now on ``client``."""
        state.scrobble(self.db, user_id, track_ids, times, submission=submission, client=client)

    def save_play_queue(
        self, user_id: int, track_ids: Sequence[int], current: int | None = None, position_ms: int = 0, client: str = ""
    ) -> None:
        """Replace the play queue (empty: delete it)."""
        state.save_play_queue(self.db, user_id, track_ids, current, position_ms, client)

    def create_playlist(
        self,
        user_id: int,
        name: str | None,
        track_ids: Sequence[int] = (),
        *,
        playlist_id: int | None = None,
        is_admin: bool = False,
    ) -> int:
        """A new playlist, or (``playlist_id``) that playlist's tracks replaced."""
        return state.create_playlist(self.db, user_id, name, track_ids, playlist_id=playlist_id, is_admin=is_admin)

    def update_playlist(self, user_id: int, playlist_id: int, **changes: Any) -> None:
        """Rename, comment, share, add and remove entries (``state.update_playlist``)."""
        state.update_playlist(self.db, user_id, playlist_id, **changes)

    def delete_playlist(self, user_id: int, playlist_id: int, *, is_admin: bool = False) -> None:
        """Delete a playlist (owner or admin)."""
        state.delete_playlist(self.db, user_id, playlist_id, is_admin=is_admin)

    # ------------------------------------------------------------------ phones: bookmarks, playback, bitrate
    def create_bookmark(self, user_id: int, track_id: int, position_ms: int, comment: str | None = None) -> None:
        """Keep a position in a song (replacing the user's bookmark of it)."""
        playback.create_bookmark(self.db, user_id, track_id, position_ms, comment)

    def bookmarks(self, user_id: int) -> list[Bookmark]:
        """The user's bookmarks, most recently changed first."""
        return playback.bookmarks(self.db, user_id)

    def delete_bookmark(self, user_id: int, track_id: int) -> None:
        """Delete the user's bookmark of a song."""
        playback.delete_bookmark(self.db, user_id, track_id)

    def report_playback(
        self,
        user_id: int,
        track_id: int,
        state_name: str,
        position_ms: int,
        *,
        rate: float = 1.0,
        ignore_scrobble: bool = False,
        client: str = "",
    ) -> PlaybackReport:
        """Record a playback report (starting, playing, paused, stopped): plays and skips (``users.playback``)."""
        return playback.report(self.db, user_id, track_id, state_name, position_ms, rate=rate,
                               ignore_scrobble=ignore_scrobble, client=client)  # fmt: skip

    def skipped_track_ids(self, user_id: int, *, min_skips: int = 2, days: int = 90) -> list[int]:
        """Songs the user keeps skipping (at least ``min_skips`` times in ``days`` days, more than played)."""
        return playback.skipped_track_ids(self.db, user_id, min_skips=min_skips, days=days)

    def save_play_queue_by_index(
        self, user_id: int, track_ids: Sequence[int], current_index: int | None = None, position_ms: int = 0,
        client: str = "",
    ) -> None:  # fmt: skip
        """Replace the play queue, its current entry named by position (empty: delete it)."""
        playback.save_play_queue_by_index(self.db, user_id, track_ids, current_index, position_ms, client)

    def play_queue_index(self, user_id: int, track_ids: Sequence[int], current: int | None) -> int | None:
        """The index of the current entry of the user's queue as read (``track_ids``, ``current``)."""
        return playback.play_queue_index(self.db, user_id, track_ids, current)

    def set_max_bit_rate(self, name: str, kbps: int) -> UserInfo:
        """The most kbps of the streams of ``name`` (0: no limit of their own)."""
        user = self.user(name)
        playback.set_max_bit_rate(self.db, user.id, kbps)
        return user

    def max_bit_rate(self, user_id: int) -> int | None:
        """The user's own maximum bitrate in kbps (None: none)."""
        return playback.max_bit_rate(self.db, user_id)
