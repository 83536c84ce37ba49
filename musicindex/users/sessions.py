"""Web sessions kept by the server (table ``sessions``, migration 0010): a logged-in browser holds a random session
id (in its signed cookie, ``web/sessions.py``); the table keeps only the id's sha256, whose account it is and until
when. A session ends when the browser logs out, when the password changes, when the account is removed (the
foreign key cascades) or on "log out everywhere" (:meth:`SessionStore.end_all`): the saved cookie then proves
nothing. Expired rows are deleted when the account opens its next session.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import text

MAX_AGE = 30 * 24 * 3600
"""Seconds a session lasts (then: log in again)."""


def session_hash(session_id: str) -> str:
    """How a session id is stored: its sha256 (hex)."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


class SessionStore:
    def __init__(self, db: Any):
        self.db = db

    def open(self, user_id: int, max_age: int = MAX_AGE) -> str:
        """A new session of ``user_id``; its id is returned once (only its hash is stored)."""
        session_id = secrets.token_urlsafe(32)
        with self.db.session() as s:
            s.execute(text("DELETE FROM sessions WHERE user_id = :u AND expires_at <= now()"), {"u": int(user_id)})
            s.execute(
                text(
                    "INSERT INTO sessions (id_hash, user_id, expires_at) "
                    "VALUES (:h, :u, now() + make_interval(secs => :age))"
                ),
                {"h": session_hash(session_id), "u": int(user_id), "age": int(max_age)},
            )
        return session_id

    def user_row(self, session_id: str) -> Any:
        """(id, name, is_admin, is_system, created_at) of the account of a live session, or None."""
        if not isinstance(session_id, str) or not session_id or len(session_id) > 200:
            return None
        with self.db.session() as s:
            return s.execute(
                text(
                    "SELECT u.id, u.name, u.is_admin, u.is_system, u.created_at FROM sessions x "
                    "JOIN users u ON u.id = x.user_id "
                    "WHERE x.id_hash = :h AND x.expires_at > now() AND NOT u.is_system"
                ),
                {"h": session_hash(session_id)},
            ).first()

    def end(self, session_id: str) -> bool:
        """End one session (logout); whether it was live."""
        if not isinstance(session_id, str) or not session_id:
            return False
        with self.db.session() as s:
            gone = s.execute(
                text("DELETE FROM sessions WHERE id_hash = :h RETURNING user_id"), {"h": session_hash(session_id)}
            ).first()
        return gone is not None

    def end_all(self, user_id: int) -> int:
        """End every session of ``user_id`` ("log out everywhere"); how many were live."""
        with self.db.session() as s:
            rows = s.execute(
                text("DELETE FROM sessions WHERE user_id = :u AND expires_at > now() RETURNING 1"), {"u": int(user_id)}
            ).all()
            s.execute(text("DELETE FROM sessions WHERE user_id = :u"), {"u": int(user_id)})
        return len(rows)
