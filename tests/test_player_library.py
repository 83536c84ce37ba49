"""The page as a music player over the library (phase 2): browse pages, the listener's state on the server, users.

Two servers: the tiny real library of the Subsonic tests (``tests/subsonic_support.serve_library``: ingested
files with covers, users alice and bob, a musicnn space) served on a loopback port, for the API tests and a real
browser (Debian's Chromium through Playwright, as tests/test_browser.py); and, for the single-user mode, the
INSERTed library of tests/test_web.py without accounts (in-process). What the page changes is checked through the
Subsonic API with the independent client py-opensonic where it matters (stars, playlists, the play queue).

Browser tests are marked ``slow``; the whole module stays within ~90 s of browser time.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from musicindex.web import create_app
from tests.subsonic_support import PASSWORDS, Served, serve_library
from tests.test_browser import chromium, skip_without_browser, watched
from tests.test_web import client_of, library_index


@pytest.fixture(scope="module")
def served(base_settings, tmp_path_factory) -> Iterator[Served]:
    with serve_library(base_settings, tmp_path_factory.mktemp("plib")) as s:
        yield s


def logged_in(served: Served, user: str = "alice") -> TestClient:
    """A client of ``served``'s app logged in as ``user`` through the login form."""
    c = client_of(create_app(served.index))
    page = c.get("/login")
    assert page.status_code == 200
    r = c.post(
        "/login",
        data={"name": user, "password": PASSWORDS[user], "csrf": csrf_of(page.text), "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    return c


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def token(c: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": csrf_of(c.get("/albums").text)}


def sid(value: str) -> int:
    """The number of a Subsonic id (``tr-12``, ``pl-3``)."""
    return int(str(value).rsplit("-", 1)[-1])


def first_album(served: Served) -> Any:
    return served.index.catalog.album_list("alphabeticalByName", 1)[0]


# --------------------------------------------------------------------------- the JSON API (fast)
def test_browse_routes_and_their_argument_errors(served):
    c = logged_in(served, "alice")  # accounts exist: reading needs a login (issue 28)
    groups = c.get("/api/library/artists").json()
    assert groups and all(g["artists"] for g in groups)
    albums = c.get("/api/library/albums?size=2").json()["albums"]
    assert len(albums) == 2 and albums[0]["cover"].startswith("/api/library/covers/album/")
    a = c.get(f"/api/library/albums/{albums[0]['id']}").json()
    assert a["album"]["id"] == albums[0]["id"] and a["songs"]
    order = [(s["disc"] or 0, s["track"] or 0, s["id"]) for s in a["songs"]]
    assert order == sorted(order)
    cover = c.get(albums[0]["cover"] + "?size=64")
    assert cover.status_code == 200 and cover.headers["content-type"].startswith("image/")
    artist = c.get(f"/api/library/artists/{albums[0]['artist_id']}").json()
    assert albums[0]["id"] in [x["id"] for x in artist["albums"]]
    assert len(c.get(f"/api/library/tracks-of/album/{albums[0]['id']}").json()) == len(a["songs"])
    assert {g["name"] for g in c.get("/api/library/genres").json()} >= {"rock", "jazz", "techno"}
    titles = [s["title"].lower() for s in c.get("/api/library/songs?sort=title&size=500").json()["songs"]]
    assert titles == sorted(titles) and len(titles) == 9
    desc = c.get("/api/library/songs?sort=title&order=desc&size=3&offset=1").json()["songs"]
    assert [s["title"].lower() for s in desc] == sorted(titles, reverse=True)[1:4]
    assert c.get("/api/library/search?q=wésnoth").json()["songs"][0]["title"] == "Wesnoth Théme"
    # argument errors are specific
    r = c.get("/api/library/albums/999999")
    assert r.status_code == 404 and "no album with id 999999" in r.json()["message"]
    assert c.get("/api/library/artists/999999").status_code == 404
    for bad in ("size=0", "size=501", "offset=-1", "sort=bogus", "size=ten"):
        r = c.get(f"/api/library/albums?{bad}")
        assert r.status_code == 422 and r.json()["error"] == "bad_argument" and r.json()["message"], (bad, r.text)
    r = c.get("/api/library/songs?sort=nope")
    assert r.status_code == 422 and "sort" in r.json()["message"]
    assert c.get("/api/library/covers/album/999999").status_code == 404
    # pages: 404 for an unknown album is the HTML error page, bad paging a message (never a traceback)
    r = c.get("/albums/999999")
    assert r.status_code == 404 and "no album with id 999999" in r.text
    r = c.get("/songs?offset=-5")
    assert r.status_code == 422 and "offset" in r.text


def test_with_accounts_state_needs_a_login_and_changes_need_the_csrf_token(served):
    anon = client_of(create_app(served.index))
    r = anon.get("/api/library/starred")
    assert r.status_code == 401 and "log in" in r.json()["message"]
    assert anon.get("/playlists", follow_redirects=False).headers["location"].startswith("/login?next=")
    assert anon.get("/api/library/me").json() == {"accounts": True, "logged_in": False, "user": None}
    c = logged_in(served, "bob")
    assert c.get("/api/library/me").json()["user"]["name"] == "bob"
    song = served.index.catalog.song_list("title", size=1)[0]
    # a change without the token, or with another session's, is refused with a clear 403
    r = c.post("/api/library/star", json={"ids": [song.id]})
    assert r.status_code == 403 and r.json()["error"] == "csrf" and "X-CSRF-Token" in r.json()["message"]
    r = c.post("/api/library/star", json={"ids": [song.id]}, headers=token(anon))
    assert r.status_code == 403
    r = c.post("/playlists", data={"name": "x"})
    assert r.status_code == 403 and "CSRF" in r.text
    h = token(c)
    assert c.post("/api/library/star", json={"ids": [song.id]}, headers=h).json() == {"starred": 1}
    assert [s["id"] for s in c.get("/api/library/starred").json()["songs"]] == [song.id]
    assert sid(served.call("getStarred2", user="bob")["starred2"]["song"][0]["id"]) == song.id
    assert c.post("/api/library/unstar", json={"ids": [song.id]}, headers=h).status_code == 200
    assert c.post("/api/library/star", json={"ids": [999999]}, headers=h).status_code == 404
    assert c.post("/api/library/rating", json={"id": song.id, "rating": 6}, headers=h).status_code == 422
    assert c.post("/api/library/rating", json={"id": song.id, "rating": 4}, headers=h).status_code == 200
    assert c.post("/api/library/scrobble", json={"id": song.id}, headers=h).status_code == 200
    assert c.get("/api/library/songs?sort=plays").json()["songs"][0]["play_count"] == 1
    # playlists: create, reorder, rename, delete; the same as Subsonic getPlaylist
    ids = [s.id for s in served.index.catalog.song_list("title", size=3)]
    p = c.post("/api/library/playlists", json={"name": "mine", "track_ids": ids}, headers=h)
    assert p.status_code == 201
    pid = p.json()["id"]
    c.put(f"/api/library/playlists/{pid}", json={"track_ids": ids[::-1]}, headers=h).raise_for_status()
    c.put(f"/api/library/playlists/{pid}", json={"name": "renamed"}, headers=h).raise_for_status()
    sub = served.call("getPlaylist", user="bob", id=f"pl-{pid}")["playlist"]
    assert sub["name"] == "renamed" and [sid(e["id"]) for e in sub["entry"]] == ids[::-1]
    assert c.get(f"/api/library/playlists/{pid + 1000}").status_code == 404
    assert c.delete(f"/api/library/playlists/{pid}", headers=h).status_code == 200
    assert c.get(f"/api/library/playlists/{pid}").status_code == 404
    # the queue: what getPlayQueue reads
    c.put("/api/library/queue", json={"track_ids": ids, "current": ids[1], "position_ms": 1500}, headers=h)
    q = served.call("getPlayQueue", user="bob")["playQueue"]
    assert [sid(e["id"]) for e in q["entry"]] == ids and sid(q["current"]) == ids[1]
    r = c.put("/api/library/queue", json={"track_ids": ids, "current": 999999}, headers=h)
    assert r.status_code == 422 and "current" in r.json()["message"]
    c.put("/api/library/queue", json={"track_ids": []}, headers=h).raise_for_status()
    # a cross-site change is refused before anything else (the origin rule)
    r = c.post("/api/library/star", json={"ids": [song.id]}, headers={**h, "Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["message"]


def test_for_you_from_likes_and_plays(served):
    served.index.users.add_user("dora", "dora-pass-1")
    PASSWORDS["dora"] = "dora-pass-1"
    try:
        _for_you(served)
    finally:
        served.index.users.remove_user("dora")
        PASSWORDS.pop("dora")


def _for_you(served: Served) -> None:
    c = logged_in(served, "dora")
    h = token(c)
    assert c.get("/api/library/for-you").json()["items"] == []
    assert "Nothing yet" in c.get("/for-you").text
    jazz = [s.id for s in served.index.catalog.songs_by_genre("jazz", 3)]
    c.post("/api/library/star", json={"ids": jazz[:2]}, headers=h).raise_for_status()
    c.post("/api/library/scrobble", json={"id": jazz[2]}, headers=h).raise_for_status()
    answer = c.get("/api/library/for-you?k=3").json()
    assert answer["seeds"]["liked"] and answer["seeds"]["played"] == [jazz[2]]
    assert answer["items"] and not {h_["id"] for h_ in answer["items"]} & set(jazz)
    assert "Recommended for you" in c.get("/for-you").text
    c.post("/api/library/unstar", json={"ids": jazz[:2]}, headers=h).raise_for_status()
    assert c.get("/api/library/for-you?k=0").status_code == 422


def test_login_logout_and_password_change_end_other_sessions(served):
    served.index.users.add_user("carol", "carol-pass-1")
    try:
        PASSWORDS["carol"] = "carol-pass-1"
        a, b = logged_in(served, "carol"), logged_in(served, "carol")
        page = a.get("/account")
        assert page.status_code == 200 and "Change the password" in page.text
        r = a.post(
            "/account", data={"current": "wrong", "new": "n1-pass", "repeat": "n1-pass", "csrf": csrf_of(page.text)}
        )
        assert r.status_code == 422 and "current password is wrong" in r.text
        r = a.post(
            "/account",
            data={
                "current": "carol-pass-1",
                "new": "carol-pass-2",
                "repeat": "carol-pass-2",
                "csrf": csrf_of(page.text),
            },
        )
        assert r.status_code == 200 and "Password changed" in r.text
        assert a.get("/api/library/me").json()["logged_in"]  # this browser stays in
        assert not b.get("/api/library/me").json()["logged_in"]  # the other session ended
        assert served.index.users.authenticate_password("carol", "carol-pass-2") is not None
        r = a.post("/logout", data={"csrf": csrf_of(a.get("/account").text)}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert not a.get("/api/library/me").json()["logged_in"]
        bad = a.post("/login", data={"name": "carol", "password": "nope", "csrf": csrf_of(a.get("/login").text)})
        assert bad.status_code == 401 and "Wrong name or password" in bad.text
        cookie = a.cookies.get("mi_session")
        assert cookie and "." in cookie
    finally:
        served.index.users.remove_user("carol")
        PASSWORDS.pop("carol", None)


def test_single_user_mode_keeps_the_local_listeners_state(base_settings, tmp_path):
    with library_index(base_settings, tmp_path, "mi_plib_local", n=12) as lib:
        c = client_of(create_app(lib["index"]))
        assert c.get("/api/library/me").json()["user"]["local"] is True
        home = c.get("/")
        set_cookie = home.headers.get("set-cookie", "")
        assert "mi_session=" in set_cookie and "HttpOnly" in set_cookie and "samesite=lax" in set_cookie.lower()
        ids = [r["id"] for r in lib["rows"][:3]]
        assert c.post("/api/library/star", json={"ids": ids}).status_code == 403  # CSRF-checked all the same
        h = {"X-CSRF-Token": csrf_of(home.text)}
        c.post("/api/library/star", json={"ids": ids}, headers=h).raise_for_status()
        # another browser on this machine is the same local listener
        other = client_of(create_app(lib["index"]))
        assert sorted(s["id"] for s in other.get("/api/library/starred").json()["songs"]) == sorted(ids)
        assert other.get("/playlists").status_code == 200 and other.get("/for-you").status_code == 200
        r = c.post("/login", data={"name": "x", "password": "y", "csrf": h["X-CSRF-Token"]})
        assert r.status_code == 400 and "no accounts" in r.text


# --------------------------------------------------------------------------- in a real browser
@pytest.fixture(scope="module")
def browser(served):
    skip_without_browser()
    with chromium("--autoplay-policy=no-user-gesture-required") as b:
        yield b


def new_page(browser: Any, width: int = 1280, **kw: Any) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 860}, **kw)
    pg = watched(context.new_page())
    pg.set_default_timeout(15_000)
    return pg


def log_in(pg: Any, served: Served, user: str = "alice") -> None:
    pg.goto(f"{served.url}/login")
    pg.fill("#login-name", user)
    pg.fill("#login-password", PASSWORDS[user])
    pg.press("#login-password", "Enter")
    pg.wait_for_selector("#nav-account")


def queued_ids(pg: Any) -> list[int]:
    return [t["id"] for t in pg.evaluate("() => window.musicindex.player.snapshot().items")]


def shot(pg: Any, name: str) -> None:
    """docs/img/NAME.png when MUSICINDEX_SCREENSHOTS is set (``make screenshots``)."""
    if os.environ.get("MUSICINDEX_SCREENSHOTS"):
        from tests.test_player import screenshot

        screenshot(pg, name)


@pytest.mark.slow
def test_find_an_album_play_it_like_tracks_and_get_for_you(served, browser):
    pg = new_page(browser)
    try:
        log_in(pg, served)
        album = first_album(served)
        # find it: the album grid, sorted by name; its cover is drawn
        pg.click("header.top nav >> text=Albums")
        pg.wait_for_selector(".album-grid .album-card")
        card = pg.locator(f'.album-card[data-item="{album.id}"]')
        pg.wait_for_function(
            f"() => {{ const i = document.querySelector('.album-card[data-item=\"{album.id}\"] img.cover'); "
            "return i && i.complete && i.naturalWidth > 0 }"
        )
        card.locator("a.album-link").click()
        pg.wait_for_function(f"() => document.querySelector('#content h1').textContent === {album.name!r}")
        songs = served.index.catalog.album(album.id).songs
        assert [int(x) for x in pg.locator("tr.track").evaluate_all("rs => rs.map(r => r.dataset.id)")] == [
            s.id for s in songs
        ]
        pg.click("#play-album")
        pg.wait_for_function("() => !document.querySelector('#audio').paused")
        assert queued_ids(pg) == [s.id for s in songs]
        shot(pg, "album")
        # like tracks on the page (the album's, and one on the Songs page): Subsonic's getStarred2 shows them
        pg.locator(f'tr.track[data-id="{songs[0].id}"] button.like').click()
        pg.click("header.top nav >> text=Songs")
        pg.wait_for_function("() => document.body.dataset.page === 'songs'")
        other = next(
            int(x)
            for x in pg.locator("tr.track").evaluate_all("rs => rs.map(r => r.dataset.id)")
            if int(x) != songs[0].id
        )
        pg.locator(f'tr.track[data-id="{other}"] button.like').click()
        pg.wait_for_function("() => document.querySelector('#liked-count').textContent === '2'")
        pg.wait_for_timeout(300)
        starred = served.call("getStarred2")["starred2"].get("song", [])
        assert sorted(sid(x["id"]) for x in starred) == sorted([songs[0].id, other])
        # another album after this one, from the grid's "add to queue"
        pg.click("header.top nav >> text=Albums")
        pg.wait_for_function("() => document.body.dataset.page === 'albums'")
        second = pg.locator(".album-card").nth(1)
        second.locator("button.item-add").click()
        pg.wait_for_function("() => window.musicindex.player.snapshot().items.length > 1")
        # a track that played to its end counts as played (scrobble) and the next one plays
        pg.evaluate(
            "() => { const a = document.querySelector('#audio'); a.currentTime = Math.max(0, a.duration - 0.2) }"
        )
        pg.wait_for_function("() => window.musicindex.player.snapshot().index === 1", timeout=10_000)
        pg.wait_for_timeout(300)
        alice = served.index.users.user("alice").id
        assert [s.id for s in served.index.catalog.song_list("plays", user_id=alice)] == [songs[0].id]
        # "for you" lists something after the likes
        pg.click("header.top nav >> text=For you")
        pg.wait_for_function("() => document.body.dataset.page === 'for_you'")
        pg.wait_for_selector("section.list[data-list=for-you] tr.track")
        assert pg.locator("section.list[data-list=for-you] tr.track").count() >= 1
        assert pg.locator("section.list[data-list=liked] tr.track").count() == 2
        # the queue survives a reload: the server's play queue (what getPlayQueue reads)
        before = queued_ids(pg)
        pg.reload()
        pg.wait_for_function("() => window.musicindex && window.musicindex.player.snapshot().items.length > 0")
        assert queued_ids(pg) == before and pg.evaluate("() => window.musicindex.player.snapshot().index") == 1
        q = served.call("getPlayQueue")["playQueue"]
        assert [sid(e["id"]) for e in q["entry"]] == before and sid(q["current"]) == before[1]
        served.index.users.unstar(alice, [("track", songs[0].id), ("track", other)])
        assert not pg.problems, pg.problems
    finally:
        pg.context.close()


@pytest.mark.slow
def test_playlist_built_and_reordered_with_the_keyboard_only(served, browser):
    pg = new_page(browser)
    try:
        log_in(pg, served)
        pg.goto(f"{served.url}/playlists")
        pg.focus("#new-playlist-name")
        pg.keyboard.type("Keyboard mix")
        pg.keyboard.press("Enter")
        pg.wait_for_selector("#pick-add")
        pid = int(pg.url.rstrip("/").rsplit("/", 1)[1])
        songs = served.index.catalog.song_list("title", size=9)
        wanted = [songs[0], songs[3], songs[6]]
        pg.focus("#pick-add")
        for s in wanted:  # type a name, Enter resolves it (or ↓ + Enter among several)
            pg.keyboard.type(s.title)
            pg.wait_for_selector("#pick-add-list li")
            pg.keyboard.press("ArrowDown")
            pg.keyboard.press("Enter")
            pg.wait_for_function(f"() => document.querySelectorAll('#pl-entries li').length === {wanted.index(s) + 1}")
        # a typed name that matches nothing says so (no 422 page)
        pg.keyboard.type("zzzz nothing like it")
        pg.keyboard.press("Enter")
        pg.wait_for_function("() => document.querySelector('#pick-add-msg').textContent.includes('no track matches')")
        # reorder: focus the last entry, Alt+↑ twice; then Delete the middle one... and put it back with Alt+↓
        pg.locator("#pl-entries li").nth(2).locator("a.track-link").focus()
        pg.keyboard.press("Alt+ArrowUp")
        pg.wait_for_function(
            f"() => document.querySelector('#pl-entries li').nextElementSibling.dataset.id === '{wanted[2].id}'"
        )
        pg.keyboard.press("Alt+ArrowUp")
        pg.wait_for_function(f"() => document.querySelector('#pl-entries li').dataset.id === '{wanted[2].id}'")
        assert pg.evaluate("() => document.activeElement.closest('li').dataset.index") == "0"  # focus follows
        order = [wanted[2].id, wanted[0].id, wanted[1].id]
        sub = served.call("getPlaylist", id=f"pl-{pid}")["playlist"]
        assert sub["name"] == "Keyboard mix" and [sid(e["id"]) for e in sub["entry"]] == order
        # M3U8 export of the saved playlist is that order
        href = pg.get_attribute("section.saved-playlist a.m3u-link", "href")
        assert [int(x) for x in urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)["ids"]] == order
        # rename and delete with the forms (keyboard: Enter in the field)
        pg.fill("#rename-playlist input[name=name]", "Renamed mix")
        pg.press("#rename-playlist input[name=name]", "Enter")
        pg.wait_for_function("() => document.querySelector('#content h1').textContent === 'Renamed mix'")
        assert served.call("getPlaylist", id=f"pl-{pid}")["playlist"]["name"] == "Renamed mix"
        pg.focus("#delete-playlist button")
        pg.keyboard.press("Enter")
        pg.wait_for_url("**/playlists")
        assert pid not in [sid(p["id"]) for p in served.call("getPlaylists")["playlists"].get("playlist", [])]
        pg.focus("#new-playlist-name")  # a focused field shows it (keyboard users see where they are)
        outline = pg.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
        assert pg.evaluate("() => document.activeElement.id") == "new-playlist-name" and outline != "none", outline
        assert not pg.problems, pg.problems
    finally:
        pg.context.close()


@pytest.mark.slow
def test_login_csrf_refusal_logout_and_no_horizontal_scroll_at_400px(served, browser):
    pg = new_page(browser, width=400, color_scheme="dark")
    try:
        pg.goto(f"{served.url}/playlists")
        pg.wait_for_url("**/login?next=*")  # accounts exist: a login first
        pg.fill("#login-name", "bob")
        pg.fill("#login-password", "not it")
        pg.press("#login-password", "Enter")
        pg.wait_for_selector("#login-error")
        assert "Wrong name or password" in pg.inner_text("#login-error")
        pg.problems[:] = [p for p in pg.problems if not p.rstrip(")").endswith("/login")]  # its 401 is the point
        pg.fill("#login-password", PASSWORDS["bob"])
        pg.press("#login-password", "Enter")
        pg.wait_for_selector("#new-playlist")  # back where it was going
        assert pg.inner_text("#nav-account") == "bob"
        # the browser's own POST without the token: a clear 403
        status = pg.evaluate(
            "async () => { const r = await fetch('/api/library/star', {method: 'POST', headers: "
            "{'Content-Type': 'application/json'}, body: JSON.stringify({ids: [1]})}); "
            "return [r.status, (await r.json()).message] }"
        )
        assert status[0] == 403 and "CSRF" in status[1], status
        pg.problems[:] = [p for p in pg.problems if "/api/library/star" not in p]  # that refusal was the point
        album = first_album(served)
        artist_id = album.artist_id
        pid = served.index.users.create_playlist(
            served.index.users.user("bob").id, "phone", [s.id for s in served.index.catalog.song_list("title", size=3)]
        )
        paths = [
            "/albums",
            f"/albums/{album.id}",
            "/artists",
            f"/artists/{artist_id}",
            "/genres",
            "/songs",
            "/songs?sort=artist&order=desc",
            "/for-you",
            "/playlists",
            f"/playlists/{pid}",
            "/account",
            "/",
        ]
        for path in paths:
            pg.goto(served.url + path)
            for width in (360, 400, 480):
                pg.set_viewport_size({"width": width, "height": 800})
                wide = pg.evaluate(
                    "() => [document.documentElement.scrollWidth, window.innerWidth, [...document.querySelectorAll("
                    "'body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && "
                    "!e.closest('.scroll-x')).slice(0, 3).map(e => e.tagName + '.' + e.className)]"
                )
                assert wide[0] <= wide[1], (path, width, wide)
            pg.set_viewport_size({"width": 400, "height": 800})
        served.index.users.delete_playlist(served.index.users.user("bob").id, pid)
        # log out: the page is anonymous again and state needs a login
        pg.click("#logout")
        pg.wait_for_selector("#login-form")
        assert pg.locator("#nav-login").count() == 1
        assert pg.evaluate("async () => (await fetch('/api/library/starred')).status") == 401
        pg.problems[:] = [p for p in pg.problems if "/api/library/starred" not in p]  # so was this one
        assert not pg.problems, pg.problems
    finally:
        pg.context.close()
