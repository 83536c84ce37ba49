"""The page's session cookies and CSRF tokens (musicindex/web/sessions.py): signed, bound, expiring."""

from __future__ import annotations

import time

from musicindex.config import Settings
from musicindex.web import sessions


def test_sessions_are_signed_bound_and_expire(tmp_path):
    settings = Settings.from_env(home=tmp_path)
    s = sessions.new_session(7, "server-side-id")
    value = sessions.encode(settings, s)
    assert sessions.decode(settings, value) == s
    # any change to the payload or the signature is refused
    body, sig = value.split(".")
    forged = sessions._b64(sessions._unb64(body).replace(b'"u":7', b'"u":1'))
    for bad in (f"{forged}.{sig}", f"{body}.{sig[:-2]}AA", body, "", None, "a.b.c", "!!.??", "x" * 2000):
        assert sessions.decode(settings, bad) is None, bad
    # another data folder has another key
    assert sessions.decode(Settings.from_env(home=tmp_path / "other"), value) is None
    # old sessions end
    assert sessions.decode(settings, value, now=time.time() + sessions.MAX_AGE + 1) is None
    # the CSRF token belongs to this session only
    token = sessions.csrf_token(settings, s)
    assert sessions.csrf_ok(settings, s, token)
    other = sessions.new_session(7)
    assert not sessions.csrf_ok(settings, other, token) and not sessions.csrf_ok(settings, s, "")
    assert not sessions.csrf_ok(settings, None, token) and not sessions.csrf_ok(settings, s, token[:-1] + "x")
    opts = sessions.cookie_options(secure=True)
    assert opts["httponly"] and opts["samesite"] == "lax" and opts["secure"]
    assert (tmp_path / "session.key").stat().st_mode & 0o077 == 0
