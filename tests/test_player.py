"""The site's player in a real browser (Debian's Chromium driven by Playwright, as tests/test_browser.py does).

One ``musicindex serve`` and one browser for the module, over the test library of tests/test_web.py where nearly
every track has a playable file (hard links to the library's few real clips, so the files cost nothing; one clip is
40 s long, for playing across pages), two tracks without a file and one without a title. The tests: playing goes on
across three page swaps, back and forward; the queue (play now, next, add, reorder by keyboard and by mouse, remove,
shuffle, shortcuts, Media Session, kept across a reload); radio extends itself without repeats or artist runs;
a playlist built with the keyboard only; no horizontal scroll in a 400 px window on every page; dark mode; the
features panel does not overlap; a track without its file says so; the map's tip names an untitled track by its
file. It saves the README's screenshots docs/img/player.png and docs/img/phone.png.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from musicindex.sample.library import generate_library
from tests.test_browser import SCREENSHOTS, chromium, served_library, watched

NO_FILE = (50, 51)  # rows whose file is missing
NO_TITLE = 7  # a row without a title tag: the page names it by its file
LONG = 3  # a row whose clip is 40 s long


def _link_files(db: Any, lib: dict[str, Any], audio_dir: Path) -> None:
    """Give every row but NO_FILE a real file inside the ingested folder: hard links to the few real clips."""
    long_clip = generate_library(audio_dir / "long", per_genre=1, genres=["jazz"], duration=40.0, formats=("ogg",))[0]
    links = audio_dir / "links"
    links.mkdir()
    rows = lib["rows"]
    with db.engine.begin() as conn:
        for i, r in enumerate(rows):
            if i < len(lib["audio"]) or i in NO_FILE:
                continue
            source = Path(long_clip.path if i == LONG else lib["audio"][i % len(lib["audio"])].path)
            target = links / f"{i:03d}{source.suffix}"
            os.link(source, target)
            st = target.stat()
            r.update(path=str(target), size=st.st_size, mtime=st.st_mtime)
            conn.execute(
                text("UPDATE tracks SET path = :p, size = :s, mtime = :m WHERE id = :i"),
                {"p": r["path"], "s": r["size"], "m": r["mtime"], "i": r["id"]},
            )
        conn.execute(text("UPDATE tracks SET title = NULL WHERE id = :i"), {"i": rows[NO_TITLE]["id"]})
    rows[NO_TITLE]["title"] = None


@pytest.fixture(scope="module")
def site(base_settings, tmp_path_factory):
    with served_library(base_settings, tmp_path_factory.mktemp("player"), "mi_player", _link_files) as served:
        yield served


@pytest.fixture(scope="module")
def browser(site):
    with chromium("--autoplay-policy=no-user-gesture-required") as b:
        yield b


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = watched(context.new_page())
    pg.set_default_timeout(15_000)
    yield pg
    assert not pg.problems, pg.problems
    context.close()


def queue(page: Any) -> dict[str, Any]:
    return page.evaluate("() => window.musicindex.player.snapshot()")


def queued_ids(page: Any) -> list[int]:
    return [t["id"] for t in queue(page)["items"]]


def screenshot(page: Any, name: str) -> None:
    """A README screenshot, docs/img/NAME.png, small: the viewport, in at most 128 colours; only when
    MUSICINDEX_SCREENSHOTS is set (``make screenshots``), so a test run leaves the repository as it was."""
    if not os.environ.get("MUSICINDEX_SCREENSHOTS"):
        return
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def wait_h1(page: Any, start: str) -> None:
    """Until the page's heading starts with ``start`` (a swap is fetched after the URL changes)."""
    page.wait_for_function(f"() => document.querySelector('#content h1').textContent.startsWith({start!r})")


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


# --------------------------------------------------------------------------- playing across pages
def test_playing_goes_on_across_page_swaps(site, page):
    url, lib = site
    long = lib["rows"][LONG]
    page.goto(f"{url}/tracks/{long['id']}")
    page.evaluate("() => { window.sameDocument = true }")  # gone if a page load happens
    page.click("button.play.big")
    page.wait_for_function(
        "() => !document.querySelector('#audio').paused && document.querySelector('#audio').currentTime > 0.2"
    )
    src = page.evaluate("() => document.querySelector('#audio').src")
    assert src.endswith(f"/api/tracks/{long['id']}/audio")
    assert page.inner_text("#now-title") == long["title"]
    heard = page.evaluate("() => document.querySelector('#audio').currentTime")
    for link, needle in (("Map", "Map of the library"), ("Status", "Status"), ("Tags", "Tags and moods")):
        page.click(f"header.top nav >> text={link}")
        wait_h1(page, needle)
        state = page.evaluate(
            "() => ({same: window.sameDocument === true, paused: document.querySelector('#audio').paused, "
            "src: document.querySelector('#audio').src, t: document.querySelector('#audio').currentTime})"
        )
        assert state["same"] and not state["paused"] and state["src"] == src, (link, state)
        assert state["t"] >= heard, (link, state)
        heard = state["t"]
        assert page.get_attribute(f"header.top nav >> text={link}", "aria-current") == "page"
    page.wait_for_function(f"() => document.querySelector('#audio').currentTime > {heard + 0.3}")
    # back and forward swap the pages again, still the same document and still playing
    page.go_back()
    wait_h1(page, "Status")
    page.go_back()
    wait_h1(page, "Map of the library")
    assert page.url.endswith("/map")
    page.go_forward()
    wait_h1(page, "Status")
    assert page.evaluate("() => window.sameDocument === true && !document.querySelector('#audio').paused")
    # a form is swapped in too: the header's search
    page.fill("#q", lib["rows"][10]["title"])
    page.press("#q", "Enter")
    page.wait_for_selector("section.list tr.track")
    assert "q=" in page.url and page.evaluate("() => window.sameDocument === true")
    # the track playing is marked in the lists and the Media Session knows it
    meta = page.evaluate("() => { const m = navigator.mediaSession.metadata; return [m.title, m.artist, m.album] }")
    assert meta == [long["title"], long["artist"], long["album"]]


# --------------------------------------------------------------------------- the queue
def test_queue_now_next_add_reorder_remove_shuffle_and_reload(site, page):
    url, lib = site
    rows = lib["rows"]
    page.goto(f"{url}/genres/jazz?k=12")
    # the server keeps the local listener's queue (an earlier test's, from another browser): start from none
    page.evaluate("() => window.musicindex.player.clear()")
    section = page.locator("section.list")
    listed = [int(x) for x in section.locator("tr.track").evaluate_all("rs => rs.map(r => r.dataset.id)")]
    a, b, c, d, e = listed[:5]
    section.locator(f'tr.track[data-id="{a}"] button.play').click()
    section.locator(f'tr.track[data-id="{b}"] button.play-next').click()
    section.locator(f'tr.track[data-id="{c}"] button.enqueue').click()
    section.locator(f'tr.track[data-id="{d}"] button.enqueue').click()
    assert queued_ids(page) == [a, b, c, d] and queue(page)["index"] == 0
    page.wait_for_selector(f'section.list tr.track.playing[data-id="{a}"]')
    # play next goes right after the current track
    section.locator(f'tr.track[data-id="{e}"] button.play-next').click()
    assert queued_ids(page) == [a, e, b, c, d]
    # the queue panel: reorder with the keyboard (Alt+arrows), remove with Delete
    page.click("#btn-queue")
    assert page.locator("#queue-panel").is_visible()
    assert page.locator("#queue-list li").count() == 5
    page.locator('#queue-list li[data-index="4"] .q-play').focus()
    page.keyboard.press("Alt+ArrowUp")
    assert queued_ids(page) == [a, e, b, d, c]
    assert page.evaluate("() => document.activeElement.closest('li').dataset.index") == "3"  # focus follows
    page.keyboard.press("Delete")
    assert queued_ids(page) == [a, e, b, c]
    # and with the mouse: drag the last track onto the second place
    page.locator('#queue-list li[data-index="3"]').drag_to(page.locator('#queue-list li[data-index="1"]'))
    assert queued_ids(page) == [a, c, e, b]
    # next and previous: buttons and shortcuts (not while typing in a field)
    page.click("#btn-next")
    assert queue(page)["index"] == 1
    page.locator("#content h1").click()  # focus leaves the player's buttons
    page.keyboard.press("n")
    assert queue(page)["index"] == 2
    page.keyboard.press("p")
    assert queue(page)["index"] == 1
    page.focus("#q")
    page.keyboard.press("n")
    assert queue(page)["index"] == 1 and page.input_value("#q").endswith("n")
    page.fill("#q", "")
    page.locator("#content h1").click()
    page.wait_for_function("() => !document.querySelector('#audio').paused")
    page.keyboard.press(" ")
    page.wait_for_function("() => document.querySelector('#audio').paused")
    page.keyboard.press(" ")
    page.wait_for_function("() => !document.querySelector('#audio').paused")
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "q"
    # Media Session: the track playing, and its actions drive the player
    assert page.evaluate("() => navigator.mediaSession.metadata.title") == next(
        r["title"] for r in rows if r["id"] == c
    )
    # play all replaces the queue with the list; shuffle mixes what comes after the current track
    section.locator("button.play-all").click()
    assert queued_ids(page) == listed and queue(page)["index"] == 0
    page.click("#btn-shuffle")
    after = queued_ids(page)
    assert after[0] == listed[0] and sorted(after) == sorted(listed) and after != listed
    # auto-advance: the end of a track plays the next one
    page.evaluate("() => { const a = document.querySelector('#audio'); a.currentTime = Math.max(0, a.duration - 0.3) }")
    page.wait_for_function("() => window.musicindex.player.snapshot().index === 1", timeout=10_000)
    # the queue survives a reload (kept by queue-store.js)
    page.reload()
    page.wait_for_function("() => window.musicindex && window.musicindex.player.snapshot().items.length > 0")
    assert queued_ids(page) == after and queue(page)["index"] == 1
    now = next(r for r in rows if r["id"] == after[1])
    assert page.inner_text("#now-title") == (now["title"] or Path(now["path"]).name)  # an untitled one: its file
    page.click("#btn-queue")
    page.set_viewport_size({"width": 1100, "height": 720})
    screenshot(page, "player")


def test_a_track_that_cannot_be_played_is_skipped_with_its_reason(site, page):
    url, lib = site
    rows = lib["rows"]
    missing, after = rows[NO_FILE[0]], rows[NO_FILE[1] + 1]
    page.goto(f"{url}/tracks/{missing['id']}")
    assert "cannot be played" in page.inner_text("#file-problem") and "is gone" in page.inner_text("#file-problem")
    assert page.locator(".track-actions button.play").count() == 0 and page.locator("#track-audio").count() == 0
    # in a queue, it is skipped with the reason (the server's message)
    page.evaluate(
        "([m, n]) => window.musicindex.player.playAll([{id: m, title: 'gone'}, {id: n, title: 'here'}])",
        [missing["id"], after["id"]],
    )
    page.wait_for_function("() => window.musicindex.player.snapshot().index === 1")
    msg = page.inner_text("#player-msg")
    assert msg.startswith("Skipped “gone”: the file of track") and "is gone" in msg, msg


# --------------------------------------------------------------------------- radio
def _no_runs(items: list[dict[str, Any]], spacing: int = 3) -> bool:
    artists = [t["artist"] for t in items]
    return all(artists[i] not in artists[max(0, i - spacing) : i] for i in range(len(artists)))


def test_radio_extends_itself_without_repeats_or_artist_runs(site, page):
    url, lib = site
    seed = lib["rows"][LONG]
    page.goto(f"{url}/tracks/{seed['id']}")
    page.click("button.radio")
    page.wait_for_function("() => window.musicindex.player.snapshot().items.length > 5")
    q = queue(page)
    assert q["radio"]["label"] == f"from “{seed['title']}”" and q["items"][0]["id"] == seed["id"]
    first = len(q["items"])
    assert len({t["id"] for t in q["items"]}) == first and _no_runs(q["items"])
    # it extends itself as it plays: skip ahead until fewer than 3 are left
    for _ in range(first - 2):
        page.click("#btn-next")
    page.wait_for_function(f"() => window.musicindex.player.snapshot().items.length > {first}")
    q = queue(page)
    assert len({t["id"] for t in q["items"]}) == len(q["items"]), "a track came twice"
    assert _no_runs(q["items"]), [t["artist"] for t in q["items"]]
    assert "radio" in page.inner_text("#radio-state")
    # play all stops the radio
    page.goto(f"{url}/genres/rock?k=5")
    page.click("section.list button.play-all")
    assert queue(page)["radio"] is None
    # radio from the likes: like two tracks, start it on the Liked page
    rock = page.locator("section.list tr.track")
    rock.nth(0).locator("button.like").click()
    rock.nth(1).locator("button.like").click()
    liked = [int(rock.nth(i).get_attribute("data-id")) for i in (0, 1)]
    page.click("#nav-liked")
    page.wait_for_selector("text=Recommended for you")
    page.click("#radio-likes")
    page.wait_for_function("() => window.musicindex.player.snapshot().items.length >= 5")
    q = queue(page)
    assert q["radio"]["label"] == "your likes" and sorted(q["radio"]["liked"]) == sorted(liked)
    assert not {t["id"] for t in q["items"]} & set(liked) and _no_runs(q["items"])


# --------------------------------------------------------------------------- keyboard only
def test_playlist_built_with_the_keyboard_only(site, page):
    url, lib = site
    rows = lib["rows"]
    start, end = rows[12], rows[40]
    page.goto(f"{url}/playlist")
    page.keyboard.press("/")  # the search box; then Tab, Tab: past its button into the page
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "pick-start"
    # type part of a title, pick it with the arrows and Enter
    page.keyboard.type(start["title"].split()[0] + " " + start["title"].split()[1][:3])
    page.wait_for_selector("#pick-start-list li")
    options = page.locator("#pick-start-list li").evaluate_all("ls => ls.map(l => l.dataset.id)")
    target = options.index(str(start["id"]))
    for _ in range(target + 1):
        page.keyboard.press("ArrowDown")
    assert page.get_attribute("#pick-start", "aria-activedescendant") == f"pick-start-list-{target}"
    page.keyboard.press("Enter")
    assert page.input_value('.picker[data-for="start"] input[type=hidden]') == str(start["id"])
    assert page.url.endswith("/playlist")  # Enter picked; it did not submit
    # the other end: a word that matches many tracks and Enter says so (no 422), then the exact title resolves
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "pick-end"
    page.keyboard.type("Blue")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#pick-end-msg').textContent.includes('pick one')")
    assert page.url.endswith("/playlist")
    page.keyboard.press("Control+a")
    page.keyboard.type(end["title"])
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => document.querySelector('.picker[data-for=end] input[type=hidden]').value === '{end['id']}'"
    )
    page.keyboard.press("Tab")  # the length
    page.keyboard.press("Control+a")
    page.keyboard.type("6")
    page.keyboard.press("Enter")
    page.wait_for_selector("section.list tr.track")
    ids = [int(x) for x in page.locator("section.list tr.track").evaluate_all("rs => rs.map(r => r.dataset.id)")]
    assert ids[0] == start["id"] and ids[-1] == end["id"]
    # and into the queue, from the keyboard: Tab to "Play all", Enter
    page.focus("section.list h2")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.classList.contains('play-all')"):
            break
    page.keyboard.press("Enter")
    assert queued_ids(page) == ids
    # focus is visible: the focused button has an outline
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


# --------------------------------------------------------------------------- layout
def _pages(lib: dict[str, Any]) -> list[str]:
    rows = lib["rows"]
    t = rows[LONG]
    return [
        "/", f"/?q={rows[10]['title'].split()[0]}", f"/tracks/{t['id']}", f"/tracks/{rows[NO_FILE[0]]['id']}",
        "/genres/jazz", f"/recommend?liked={t['id']}", "/recommend", "/playlist",
        f"/playlist?start={rows[0]['id']}&end={rows[5]['id']}&n=6", "/playlist?start_q=Blue", "/tags",
        "/tags?tag=rock", "/map", "/status", "/models", "/api/docs", "/tracks/999999",
    ]  # fmt: skip


def test_no_horizontal_scroll_from_360_to_480px_and_dark_mode(site, browser):
    url, lib = site
    phone = browser.new_context(viewport={"width": 400, "height": 800}, color_scheme="dark")
    page = watched(phone.new_page())
    page.set_default_timeout(15_000)
    try:
        page.goto(url + "/")
        long = {k: lib["rows"][LONG][k] for k in ("id", "title", "artist", "album")}
        page.evaluate("t => window.musicindex.player.playAll([t])", long)
        for path in _pages(lib):
            page.goto(url + path)
            for d in page.locator("details").all():
                d.evaluate("d => d.open = true")
            if path == "/map":
                page.wait_for_selector("#map[data-drawn=true]")
            if path == "/tracks/999999":  # its 404 is the point, not a problem
                page.problems[:] = [p for p in page.problems if "/tracks/999999" not in p]
            for width in (360, 400, 480):  # phones, the small and the large
                page.set_viewport_size({"width": width, "height": 800})
                wide = page.evaluate(
                    "() => [document.documentElement.scrollWidth, window.innerWidth, [...document.querySelectorAll("
                    "'body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && "
                    "!e.closest('.scroll-x')).slice(0, 3).map(e => e.tagName + '.' + e.className)]"
                )
                assert wide[0] <= wide[1], (path, width, wide)
            page.set_viewport_size({"width": 400, "height": 800})
        page.click("#btn-queue")
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        # dark mode: dark background, light text, on the page and the panels
        colours = page.evaluate(
            "() => [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color, "
            "getComputedStyle(document.querySelector('.queue-panel')).backgroundColor]"
        )

        def lum(css: str) -> float:
            r, g, b = (int(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
            return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

        assert lum(colours[0]) < 0.2 and lum(colours[1]) > 0.7 and lum(colours[2]) < 0.2, colours
        page.click("#btn-queue")
        page.goto(f"{url}/tracks/{lib['rows'][LONG]['id']}")
        screenshot(page, "phone")
        assert not page.problems, page.problems
    finally:
        phone.close()


def test_features_panel_names_and_values_do_not_overlap(site, page):
    url, lib = site
    page.goto(f"{url}/tracks/{lib['rows'][LONG]['id']}")
    page.click("details.features summary")
    boxes = page.locator(".feature").evaluate_all(
        "fs => fs.map(f => { const n = f.querySelector('dt').getBoundingClientRect(), "
        "v = f.querySelector('dd').getBoundingClientRect(); return [n.right, v.left, f.textContent] })"
    )
    assert len(boxes) == 43
    assert all(right <= left + 0.5 for right, left, _ in boxes), [b for b in boxes if b[0] > b[1] + 0.5]
    assert not any("e-" in txt or "e+" in txt for _, _, txt in boxes)  # no scientific notation


def test_map_tip_names_an_untitled_track_by_its_file(site, page):
    url, lib = site
    untitled = lib["rows"][NO_TITLE]
    page.goto(f"{url}/map")
    page.wait_for_selector("#map[data-drawn=true]")
    x, y = page.evaluate(
        f"() => {{ const s = document.querySelector('#map').mapPoints.find(s => s.p.id === {untitled['id']}); "
        "return [s.x, s.y] }"
    )
    page.evaluate(f"() => window.scrollTo(0, document.querySelector('#map').getBoundingClientRect().top + {y} - 300)")
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    assert page.locator("#map-tip").is_visible()
    tip = page.inner_text("#map-tip")
    assert tip.startswith(Path(untitled["path"]).name), tip
    # from the keyboard: focus, an arrow goes to a point, Enter opens its track
    page.focus("#map")
    page.keyboard.press("ArrowRight")
    assert page.locator("#map-cursor").is_visible() and page.locator("#map-tip").is_visible()
    chosen = page.inner_text("#map-tip").split(" — ")[0]
    page.keyboard.press("Enter")
    page.wait_for_url("**/tracks/*")
    wait_h1(page, chosen)


def test_why_reads_in_words_on_the_page(site):
    url, lib = site
    seed = lib["rows"][LONG]
    res = fetch_json(f"{url}/api/tracks/{seed['id']}/similar?k=10")
    diffs = [d for h in res["items"] for d in h["why"]["feature_differences"]]
    assert diffs and all(d["text"] and "_" not in d["text"] and "e-" not in d["text"] for d in diffs)
    with urllib.request.urlopen(f"{url}/tracks/{seed['id']}", timeout=10) as r:
        html = r.read().decode()
    whys = [chunk.split("</span>")[0] for chunk in html.split('class="why-summary">')[1:]]
    assert len(whys) == 10
    for w in whys:
        assert "_mean" not in w and "_var" not in w and "e-0" not in w and " sd " not in w, w
