"""Issue 28, phase 2, at the routes: absolute paths only for the operator; "log out everywhere" on the account page.

Real sockets to the app served with ``serve``'s uvicorn configuration (``tests/test_security_auth.py``'s ``served``)
over the INSERTed library of tests/test_web.py with an admin (alice) and a listener (bob); the server without
accounts is the in-process app with the client's address set to one of the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from musicindex.web import create_app
from tests.test_security_auth import ALICE, BOB, TOKEN, browser, csrf_of, fresh, login, served
from tests.test_web import library_index


@pytest.fixture(scope="module")
def lib(base_settings, tmp_path_factory) -> Iterator[dict[str, Any]]:
    with library_index(base_settings, tmp_path_factory.mktemp("sec2"), "mi_sec2", n=12) as lib:
        lib["index"].users.add_user("alice", ALICE, admin=True)
        lib["index"].users.add_user("bob", BOB)
        yield lib


def path_reads(lib: dict[str, Any]) -> list[str]:
    """Every JSON read that lists tracks (or failures) with their files."""
    a, b = lib["rows"][0]["id"], lib["rows"][5]["id"]
    return [
        "/api/tracks?q=blue", f"/api/tracks/{a}", f"/api/tracks/{a}/similar?k=3&space=ann",
        f"/api/recommend?liked={a}&k=3&space=ann", "/api/genres/jazz/tracks?k=3",
        f"/api/playlist?start={a}&end={b}&n=4&space=ann", "/api/status", "/api/library/songs?size=5",
    ]  # fmt: skip


def folders_of(lib: dict[str, Any]) -> set[str]:
    """The folders of the library's files (what an absolute path gives away)."""
    return {r["path"].rsplit("/", 1)[0] for r in lib["rows"]}


def test_absolute_paths_are_shown_to_the_operator_only(lib):
    """Before: ``/api/tracks``, ``/api/tracks/{id}``, similar, recommend, a genre's tracks, a playlist and
    ``/api/status`` showed every track's absolute path to any listener; the track page printed it too."""
    a = lib["rows"][0]["id"]
    folders = folders_of(lib)
    with served(fresh(lib, api_token=TOKEN)) as url:
        with browser(url) as bob:
            assert login(bob, "bob", BOB).status_code in (200, 303)
            for path in path_reads(lib):
                r = bob.get(path)
                assert r.status_code == 200, (path, r.text[:200])
                assert '"path"' not in r.text and not any(f in r.text for f in folders), (path, r.text[:300])
            m3u = bob.get(f"/api/tracks/{a}/similar?k=5&space=ann&format=m3u8&base=/")  # a playlist: no folder
            assert m3u.status_code == 200 and "#EXTINF" in m3u.text and not any(f in m3u.text for f in folders)
            page = bob.get(f"/tracks/{a}")
            assert page.status_code == 200 and not any(f in page.text for f in folders)
            assert lib["rows"][0]["path"].rsplit("/", 1)[1] in page.text or lib["rows"][0]["title"] in page.text
        with browser(url) as alice:  # an admin account: the operator
            assert login(alice, "alice", ALICE).status_code in (200, 303)
            assert alice.get(f"/api/tracks/{a}").json()["path"] == lib["rows"][0]["path"]
            assert lib["rows"][0]["path"] in alice.get(f"/tracks/{a}").text
            assert lib["rows"][0]["path"] in alice.get(f"/api/m3u?ids={a}").text
        with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as script:  # the token
            assert script.get(f"/api/tracks/{a}").json()["path"] == lib["rows"][0]["path"]
            hits = script.get("/api/tracks?q=blue").json()
            assert all("path" in h for h in hits["items"]) and hits["items"]


def test_without_accounts_a_client_of_the_network_sees_no_paths(base_settings, tmp_path_factory):
    """Before: off loopback, ``/api/tracks`` and ``/api/status`` gave any client of the network absolute paths."""
    with library_index(base_settings, tmp_path_factory.mktemp("sec2-open"), "mi_sec2o", n=6) as lib:
        a = lib["rows"][0]["id"]
        app = create_app(lib["index"])
        folders = folders_of(lib)
        with TestClient(app, base_url="http://127.0.0.1", client=("192.0.2.9", 5000)) as lan:
            for path in (f"/api/tracks/{a}", "/api/tracks?q=blue", "/api/status", f"/tracks/{a}"):
                r = lan.get(path)
                assert r.status_code == 200 and not any(f in r.text for f in folders), (path, r.text[:300])
        with TestClient(app, base_url="http://127.0.0.1") as here:  # this machine: the system user, the operator
            assert here.get(f"/api/tracks/{a}").json()["path"] == lib["rows"][0]["path"]


def test_log_out_everywhere_ends_every_session_of_the_account_with_csrf(lib):
    """Before: only ``musicindex user logout NAME`` (the CLI) ended every session; the page had no way to. Now the
    account page's button does, with the session's CSRF token (without it: 403, nothing ends); bob's other browser
    is logged out, alice's session is not."""
    with served(fresh(lib)) as url, browser(url) as laptop, browser(url) as phone, browser(url) as alice:
        for c, name, password in ((laptop, "bob", BOB), (phone, "bob", BOB), (alice, "alice", ALICE)):
            assert login(c, name, password).status_code in (200, 303)
            assert c.get("/api/library/me").json()["logged_in"] is True
        page = laptop.get("/account")
        assert page.status_code == 200 and 'action="/account/sessions"' in page.text
        forged = laptop.post("/account/sessions", data={"csrf": "x" * 40})  # a form from another site: no token
        assert forged.status_code == 403 and phone.get("/api/library/me").json()["logged_in"] is True
        r = laptop.post("/account/sessions", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        for c in (laptop, phone):  # this browser and the other one
            assert c.get("/api/library/me").json()["logged_in"] is False
            assert c.get("/api/tracks?q=blue").status_code == 401
        assert alice.get("/api/library/me").json()["logged_in"] is True  # another account's session lives on
