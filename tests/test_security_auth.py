"""Issue 28, phase 1: the authentication and session holes, tried as an attacker on the same network would.

Every check goes through real sockets to the app served by uvicorn with ``serve``'s own configuration
(``server.server_config``: the guarded protocol, no forwarded headers unless trusted), over the INSERTed library of
tests/test_web.py with two accounts; the slow-header and log checks run the real ``musicindex serve`` command. Each
test builds its own ``MusicIndex`` (so its own attempt limiter) over the module's database.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import text

from musicindex.errors import ConfigError, ItemNotFoundError, TooManyAttemptsError
from musicindex.index import MusicIndex
from musicindex.localworker import settings_env
from musicindex.users import UserService
from musicindex.users.sessions import session_hash
from musicindex.web import create_app
from musicindex.web.security import check_bind
from musicindex.web.server import server_config
from tests.conftest import REPO, run_cli
from tests.subsonic_support import free_port
from tests.test_web import library_index

ALICE, BOB = "alice-Secret-1", "bob-Secret-2"
TOKEN = "t" * 32
SUBSONIC = {"v": "1.16.1", "c": "attacker", "f": "json"}


@pytest.fixture(scope="module")
def lib(base_settings, tmp_path_factory) -> Iterator[dict[str, Any]]:
    with library_index(base_settings, tmp_path_factory.mktemp("sec"), "mi_sec", n=12) as lib:
        lib["index"].users.add_user("alice", ALICE, admin=True)
        lib["index"].users.add_user("bob", BOB)
        yield lib


def fresh(lib: dict[str, Any], **changes: Any) -> MusicIndex:
    """A MusicIndex of its own over the module's database (its own limiter), with these settings changed."""
    return MusicIndex(lib["db"], lib["index"].settings.with_(**changes))


@contextlib.contextmanager
def served(index: MusicIndex) -> Iterator[str]:
    """``create_app(index)`` on a free loopback port with ``serve``'s uvicorn configuration; yields its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(server_config(create_app(index), index.settings, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def browser(url: str, **kw: Any) -> httpx2.Client:
    return httpx2.Client(base_url=url, timeout=30, **kw)


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, html[:300]
    return m.group(1)


def login(c: httpx2.Client, name: str, password: str, **headers: str) -> httpx2.Response:
    csrf = csrf_of(c.get("/login").text)
    return c.post("/login", data={"name": name, "password": password, "csrf": csrf, "next": "/"}, headers=headers)


def ping(c: httpx2.Client, headers: dict[str, str] | None = None, **params: str) -> dict[str, Any]:
    r = c.get("/rest/ping.view", params={**SUBSONIC, **params}, headers=headers or {})
    assert r.status_code == 200, r.text[:300]
    return dict(r.json()["subsonic-response"])


# --------------------------------------------------------------------------- items 1, 4, 5, 6: one limiter
def test_web_login_account_page_and_subsonic_share_one_limiter(lib):
    with served(fresh(lib)) as url, browser(url) as c:
        for _ in range(10):
            assert login(c, "bob", "wrong").status_code == 401
        r = login(c, "bob", BOB)  # the right password, while cooling down: not even checked
        assert r.status_code == 429 and "too many attempts, retry in" in r.text
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # the Subsonic API asks the same limiter: bob from this address is refused with its text
        answer = ping(c, u="bob", p=BOB)
        assert answer["error"]["code"] == 40 and answer["error"]["message"].startswith("too many attempts, retry in")
        # another account from the same address is free (one stale client does not lock out the house)
        assert login(c, "alice", ALICE).status_code == 303
        assert ping(c, u="alice", p=ALICE)["status"] == "ok"
        # the account page's current-password check counts too
        page = c.get("/account")
        form = {"new": "n-pass-1", "repeat": "n-pass-1", "csrf": csrf_of(page.text)}
        for _ in range(10):
            assert c.post("/account", data={**form, "current": "wrong"}).status_code == 422
        r = c.post("/account", data={**form, "current": ALICE})
        assert r.status_code == 429 and "too many attempts" in r.text and r.headers["retry-after"]
    assert lib["index"].users.authenticate_password("alice", ALICE) is not None  # the password did not change


def test_a_non_ascii_token_is_code_40_like_an_unknown_user_counted_and_quiet(lib, caplog):
    with served(fresh(lib)) as url, browser(url) as c, caplog.at_level(logging.INFO):
        for user in ("bob", "nobody"):
            for token in ("%C3%A9", "%FF", "%ED%B3%BF", "%EF%BD%81" * 32, "%25C3%25A9"):  # é, bad UTF-8, ...
                r = c.get(f"/rest/ping.view?u={user}&t={token}&s=x&v=1.16.1&c=a&f=json")
                answer = r.json()["subsonic-response"]
                assert answer["error"] == {"code": 40, "message": "wrong username or password"}, (user, token)
        for _ in range(5):  # 5 already: 10 failures in all for bob from here
            ping(c, u="bob", t="é", s="x")
        assert ping(c, u="bob", p=BOB)["error"]["message"].startswith("too many attempts")
    assert not [r for r in caplog.records if r.exc_info or "internal error" in r.getMessage()]


def test_a_unicode_spelling_of_a_name_gets_no_fresh_tries(lib):
    users = fresh(lib).users
    for _ in range(10):
        assert users.authenticate_password("bob", "wrong", address="192.0.2.1") is None
    for spelling in ("ｂｏｂ", "BOB", "Bob"):
        with pytest.raises(TooManyAttemptsError, match="too many attempts, retry in"):
            users.authenticate_password(spelling, BOB, address="192.0.2.1")
        salt = "s1"
        token = hashlib.md5((BOB + salt).encode()).hexdigest()
        with pytest.raises(TooManyAttemptsError):
            users.authenticate_token(spelling, token, salt, address="192.0.2.1")
    assert users.authenticate_password("bob", BOB, address="192.0.2.2") is not None


def test_only_a_trusted_proxy_names_the_client_and_the_scheme(lib):
    with served(fresh(lib, trusted_proxies="127.0.0.1")) as url, browser(url) as c:
        behind = {"X-Forwarded-For": "10.0.0.1"}
        for _ in range(10):
            assert ping(c, behind, u="bob", p="wrong")["error"]["code"] == 40
        assert ping(c, behind, u="bob", p=BOB)["error"]["message"].startswith("too many attempts")
        # another client behind the same proxy logs in: the house is not locked out
        assert ping(c, {"X-Forwarded-For": "10.0.0.2"}, u="bob", p=BOB)["status"] == "ok"
        r = login(c, "alice", ALICE, **{"X-Forwarded-Proto": "https"})
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()
    with served(fresh(lib)) as url, browser(url) as c:  # no trusted proxy: the forwarded headers are nobody's word
        for i in range(10):
            assert ping(c, {"X-Forwarded-For": f"10.9.0.{i}"}, u="bob", p="wrong")["error"]["code"] == 40
        answer = ping(c, {"X-Forwarded-For": "10.9.0.99"}, u="bob", p=BOB)
        assert answer["error"]["message"].startswith("too many attempts")
        r = login(c, "alice", ALICE, **{"X-Forwarded-Proto": "https"})
        assert r.status_code == 303 and "secure" not in r.headers["set-cookie"].lower()


def test_a_token_and_salt_replayed_from_another_address_is_refused(lib):
    users = fresh(lib).users
    salt = "f00dfeed"
    token = hashlib.md5((BOB + salt).encode()).hexdigest()
    assert users.authenticate_token("bob", token, salt, address="10.1.0.1") is not None
    assert users.authenticate_token("bob", token, salt, address="10.1.0.1") is not None  # the same client
    assert users.authenticate_token("bob", token, salt, address="10.1.0.2") is None  # a replay from elsewhere


# --------------------------------------------------------------------------- item 8: server-side sessions
def test_sessions_live_on_the_server_and_end_at_once(lib):
    index = fresh(lib)
    index.users.add_user("dave", "dave-pass-1")
    other = UserService(lib["db"], index.settings)  # what another process (the CLI) does
    with served(index) as url:

        def session_of() -> httpx2.Client:
            c = browser(url)
            assert login(c, "dave", "dave-pass-1").status_code == 303
            return c

        def works(cookie: str) -> bool:
            with browser(url, cookies={"mi_session": cookie}) as c:
                return c.get("/api/library/albums").status_code == 200

        c = session_of()
        saved = c.cookies["mi_session"]
        nonce = json.loads(_unb64(saved.split(".")[0]))["n"]
        with lib["db"].engine.connect() as conn:
            hashes = {r[0] for r in conn.execute(text("SELECT id_hash FROM sessions"))}
        assert session_hash(nonce) in hashes and nonce not in hashes  # only the hash is stored
        assert works(saved)
        csrf = csrf_of(c.get("/account").text)
        assert c.post("/logout", data={"csrf": csrf}).status_code == 303
        assert not works(saved)  # the saved cookie proves nothing after logout
        with browser(url, cookies={"mi_session": saved}) as replay:
            r = replay.get("/albums")
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
        a, b = session_of(), session_of()
        assert other.end_sessions("dave") == 2  # log out everywhere
        assert not works(a.cookies["mi_session"]) and not works(b.cookies["mi_session"])
        c = session_of()
        other.set_password("dave", "dave-pass-2")
        assert not works(c.cookies["mi_session"])
        c = session_of_pass = browser(url)
        assert login(session_of_pass, "dave", "dave-pass-2").status_code == 303
        other.remove_user("dave")
        assert not works(c.cookies["mi_session"])


def _unb64(s: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# --------------------------------------------------------------------------- item 7: the library needs a login
def test_every_library_read_needs_a_login_once_accounts_exist(lib):
    track = _a_track(lib)
    pages = ["/", "/albums", "/songs", f"/tracks/{track}", "/status", "/duplicates"]
    api = [
        "/api/tracks", f"/api/tracks/{track}", f"/api/tracks/{track}/audio", "/api/status", "/api/library/albums",
        "/api/library/covers/album/1", "/api/openapi.json", "/api/docs", f"/api/tracks/{track}/similar",
        "/api/duplicates",
    ]  # fmt: skip
    with served(fresh(lib, api_token=TOKEN)) as url, browser(url) as c:
        for path in pages:
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
        for path in api:
            r = c.get(path)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized", path
            assert c.head(path).status_code in (401, 405), path
        for path in ("/api/health", "/login", "/static/style.css", "/api/library/me"):
            assert c.get(path).status_code == 200, path
        with browser(url, headers={"Authorization": f"Bearer {TOKEN}"}) as script:
            assert script.get("/api/tracks?q=t").status_code == 200
            assert script.get(f"/api/tracks/{track}/audio").status_code == 200
        assert login(c, "bob", BOB).status_code == 303
        for path in [*pages, *api]:
            assert c.get(path).status_code not in (303, 401), path
        assert c.get(f"/api/tracks/{track}/audio").content[:4] == b"RIFF"


def _a_track(lib: dict[str, Any]) -> int:
    with lib["db"].engine.connect() as conn:
        return int(conn.execute(text("SELECT min(id) FROM tracks WHERE status = 'indexed'")).scalar_one())


def test_without_accounts_only_this_machine_is_the_local_listener(index):
    index.settings  # noqa: B018 - a fresh database: no account
    proxied = MusicIndex(index.db, index.settings.with_(trusted_proxies="127.0.0.1"))
    with served(proxied) as url, browser(url) as c:
        me = c.get("/api/library/me").json()
        assert me["user"]["local"] and not me["accounts"]
        csrf = {"X-CSRF-Token": csrf_of(c.get("/albums").text)}
        assert c.post("/api/library/playlists", json={"name": "mine"}, headers=csrf).status_code == 201
        lan = {"X-Forwarded-For": "192.0.2.9"}
        with browser(url, headers=lan) as stranger:
            assert stranger.get("/api/library/me").json()["user"] is None
            assert stranger.get("/api/library/albums").status_code == 200  # reading stays open without accounts
            token = {"X-CSRF-Token": csrf_of(stranger.get("/albums").text), **lan}
            r = stranger.post("/api/library/playlists", json={"name": "theirs"}, headers=token)
            assert r.status_code == 401  # but nobody on the network is the local listener


def test_no_database_query_runs_on_the_event_loop(lib, monkeypatch):
    import asyncio

    index = fresh(lib)
    on_loop: list[str] = []
    real = index.db.session

    def watched(*a: Any, **kw: Any) -> Any:
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop()
            on_loop.append(threading.current_thread().name)
        return real(*a, **kw)

    monkeypatch.setattr(index.db, "session", watched)
    with served(index) as url, browser(url) as c:
        ping(c, u="alice", p=ALICE)
        ping(c, u="alice", p="wrong")
        login(c, "alice", ALICE)
        for path in ("/", "/albums", "/api/tracks", "/api/library/me", "/api/status"):
            c.get(path)
    assert on_loop == []


# --------------------------------------------------------------------------- items 7 and 13: binding, Host
def test_off_loopback_needs_allowed_hosts_and_a_host_with_userinfo_is_refused(lib):
    settings = lib["index"].settings.with_(api_token=TOKEN)
    with pytest.raises(ConfigError, match="MUSICINDEX_ALLOWED_HOSTS"):
        check_bind("0.0.0.0", settings)
    check_bind("0.0.0.0", settings.with_(allowed_hosts="192.0.2.20,music.home"))
    env = {**settings_env(settings), "MUSICINDEX_API_TOKEN": TOKEN, "MUSICINDEX_ALLOWED_HOSTS": ""}
    r = run_cli("serve", "--host", "0.0.0.0", "--port", "1", env=env)
    assert r.returncode == 2 and "MUSICINDEX_ALLOWED_HOSTS" in r.stderr
    with served(fresh(lib)) as url:
        port = int(url.rsplit(":", 1)[1])
        for host in ("localhost:80@evil.example", "127.0.0.1@evil.example", "localhost:8x", "evil.example"):
            assert _raw(port, f"GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")[:12] == (
                b"HTTP/1.1 400"
            ), host
        assert _raw(port, "GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")[:12] == (
            b"HTTP/1.1 200"
        )


def _raw(port: int, request: str, source: str = "127.0.0.1") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(request.encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


# --------------------------------------------------------------------------- item 12: API keys
def test_api_keys_are_listed_revoked_and_die_with_the_password(lib):
    index = fresh(lib)
    env = settings_env(index.settings)
    key = index.users.new_api_key("bob")
    assert index.users.authenticate_api_key(key).name == "bob"
    listed = run_cli("user", "apikey", "bob", "--list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    ids = [k["id"] for k in json.loads(listed.stdout)]
    assert ids and key not in listed.stdout and all(k["user"] == "bob" for k in json.loads(listed.stdout))
    revoked = run_cli("user", "apikey", "bob", "--revoke", str(ids[-1]), env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert index.users.authenticate_api_key(key) is None  # at once: no login cache
    with pytest.raises(ItemNotFoundError, match="--list"):
        index.users.revoke_api_key("bob", ids[-1])
    second = index.users.new_api_key("bob")
    changed = run_cli("user", "passwd", "bob", "--password-stdin", env=env, input="bob-New-3\n")
    assert changed.returncode == 0 and "revoked" in changed.stdout
    try:
        assert index.users.authenticate_api_key(second) is None
        assert index.users.authenticate_password("bob", BOB) is None  # the old password, at once
        assert index.users.api_keys("bob") == []
    finally:
        index.users.set_password("bob", BOB)


# --------------------------------------------------------------------------- items 3 and 9: the real `serve`
def test_silent_connections_and_credentials_in_logs_against_the_real_serve(lib, tmp_path):
    port = free_port()
    env = {
        **settings_env(lib["index"].settings),
        "MUSICINDEX_HEADER_TIMEOUT": "3",
        "MUSICINDEX_MAX_CONNECTIONS_PER_ADDRESS": "16",
    }
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "musicindex", "serve", "--port", str(port), "--log-level", "info"],
            stdout=out, stderr=subprocess.STDOUT, env={**_os_env(), **env}, cwd=REPO,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_up(url, proc)
        # 260 connections that never finish their headers, 13 from each of 20 loopback addresses (under the cap)
        silent = []
        for i in range(260):
            s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(f"127.0.0.{2 + i % 20}", 0))
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            silent.append(s)
        with browser(url) as c:
            assert c.get("/api/health").status_code == 200
            assert ping(c, u="alice", p=ALICE)["status"] == "ok"
            assert c.get("/login").status_code == 200
        # one address over its cap: the connections past it are answered 503 and closed at once
        crowd = [
            socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.99", 0))
            for _ in range(20)
        ]
        refused = [s for s in crowd if _read_all(s, 2.0).startswith(b"HTTP/1.1 503")]
        assert len(refused) == 4
        # the header deadline: every silent connection gets 408 and is closed
        answers = [_read_all(s, 15.0) for s in silent]
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:20] for a in answers}
        for s in silent + crowd:
            s.close()
        # credentials in every form the access log would have written
        with browser(url) as c:
            ping(c, u="alice", p=ALICE)
            ping(c, u="alice", p="enc:" + ALICE.encode().hex())
            salt = "c0ffee42"
            ping(c, u="alice", t=hashlib.md5((ALICE + salt).encode()).hexdigest(), s=salt)
            ping(c, apiKey="mi_hunter2hunter2")
            c.get("/api/tracks", headers={"Authorization": "Bearer hunter2hunter2hunter2"})
    finally:
        proc.terminate()
        proc.wait(30)
    written = log.read_text(errors="replace")
    assert "/rest/ping.view" in written  # the access log was on
    for secret in (ALICE, ALICE.encode().hex(), "c0ffee42", "mi_hunter2hunter2", "hunter2hunter2hunter2"):
        assert secret not in written, secret
    assert "Traceback" not in written


def _os_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("MUSICINDEX_")}


def _wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve exited"
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(url + "/api/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise AssertionError("serve did not answer")


def _read_all(s: socket.socket, timeout: float) -> bytes:
    s.settimeout(timeout)
    chunks = []
    with contextlib.suppress(OSError):
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
