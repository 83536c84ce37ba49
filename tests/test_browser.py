"""A real browser against a real ``musicindex serve``: Debian's Chromium driven by Playwright.

One server (a ``musicindex serve`` subprocess on a free loopback port, over a test library) and one
browser session for the module. The browser searches, opens a track (its audio loads through Range
requests), gets similar tracks, likes tracks and gets recommendations, builds a playlist from A to B,
exports it as M3U8, draws the map and opens a track from it, and watches the status page refresh.
With MUSICINDEX_SCREENSHOTS set (``make screenshots``) it saves the README's docs/img/track.png and map.png.

Needs /usr/bin/chromium (``apt-get install -y chromium``; ``.ci/run`` installs it) and the
``playwright`` package (test extra; it never downloads a browser here: ``executable_path`` points at
Debian's). Without them the tests are skipped with a loud reason; under ``CI=true`` that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from musicindex.config import Settings
from musicindex.db.scratch import scratch_database
from musicindex.localworker import settings_env
from tests.conftest import REPO
from tests.test_web import build_library

CHROMIUM = os.environ.get("MUSICINDEX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / "docs" / "img"


def _missing() -> str | None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no browser at {CHROMIUM}: `apt-get install -y chromium` (the CI script installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[test]'"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def skip_without_browser() -> None:
    missing = _missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"BROWSER TESTS CANNOT RUN under CI=true: {missing}")
        pytest.skip(f"BROWSER TESTS SKIPPED: {missing}")


@contextlib.contextmanager
def running_server(settings: Settings, tmp: Path) -> Iterator[str]:
    """``musicindex serve`` (a subprocess) on a free loopback port with ``settings``; yields its base URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MUSICINDEX_API_TOKEN"}
    env.update(settings_env(settings))
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicindex", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"musicindex serve did not start: {(tmp / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def watched(page: Any) -> Any:
    """``page`` with ``page.problems``: script errors and console errors (not the 404 of a track without a file)."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text} ({m.location.get('url')})")
            if m.type == "error" and not str(m.location.get("url", "")).endswith("/audio")
            else None
        ),
    )
    page.problems = problems
    return page


@contextlib.contextmanager
def served_library(
    settings: Settings, tmp: Path, prefix: str, prepare: Callable[[Any, dict[str, Any], Path], None] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """A fresh test library (with a musicnn space; ``prepare(db, library, audio folder)`` changes it) served by
    ``musicindex serve``; yields (base URL, library). Skips (fails under CI=true) without the browser."""
    skip_without_browser()
    with scratch_database(settings.database_url, prefix=prefix) as db:
        lib = build_library(db, tmp / "audio", musicnn=True)
        if prepare is not None:
            prepare(db, lib, tmp / "audio")
        with running_server(settings.with_(database_url=db.url), tmp) as url:
            yield url, lib


@pytest.fixture(scope="module")
def server(base_settings, tmp_path_factory):
    """``musicindex serve`` on a free port over a fresh test library; yields (base URL, library)."""
    with served_library(base_settings, tmp_path_factory.mktemp("browser"), "mi_browser") as served:
        yield served


@contextlib.contextmanager
def chromium(*flags: str) -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser), with extra ``flags``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_FLAGS[1:], *flags])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(server):
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
        pg = watched(context.new_page())
        pg.set_default_timeout(20_000)
        pg.browser_version = browser.version
        yield pg
        context.close()


def test_search_track_similar_like_recommend_playlist_m3u(server, page, tmp_path):
    url, lib = server
    rows = lib["rows"]
    first = rows[0]  # has a real audio file (wav)
    print(f"browser: Chromium {page.browser_version} at {CHROMIUM}")

    # search from the header box
    page.goto(url + "/")
    page.fill("#q", first["title"])
    page.press("#q", "Enter")
    page.wait_for_selector("table.tracks tr.track")
    assert page.locator("table.tracks tr.track").count() >= 1
    # open the track
    page.click(f'a.track-link[href="/tracks/{first["id"]}"]')
    page.wait_for_url(f"**/tracks/{first['id']}")
    assert page.inner_text("h1") == first["title"]
    # it plays in the player bar (the audio element reads the metadata through Range requests)
    page.click("button.play.big")
    page.wait_for_function("() => document.querySelector('#audio').readyState >= 1")
    duration = page.evaluate("() => document.querySelector('#audio').duration")
    assert 5.5 < duration < 6.5
    # genre with probabilities, pretrained tags, similar tracks (in the default space: musicnn here)
    assert page.locator("table.probs:not(.tags-table) tr").count() == 6
    assert page.locator("table.tags-table tr").count() >= 5
    similar = page.locator("section.similar table.tracks tr.track")
    assert similar.count() == 10
    # like this track and two similar ones, dislike a third
    page.click("button.like.big")
    assert "liked" in (page.get_attribute("button.like.big", "class") or "")
    similar.nth(0).locator("button.like").click()
    similar.nth(1).locator("button.like").click()
    similar.nth(5).locator("button.dislike").click()
    assert page.inner_text("#liked-count") == "3"
    if os.environ.get("MUSICINDEX_SCREENSHOTS"):  # the README's, only when asked for (make screenshots)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "track.png"), full_page=True)

    # the liked tracks feed recommend
    page.click("#nav-liked")
    page.wait_for_selector("text=Recommended for you")
    assert "liked=" in page.url and "disliked=" in page.url
    assert page.locator("#liked-list li").count() == 3 and page.locator("#disliked-list li").count() == 1
    recommended = page.locator("section.list[data-list=recommended] tr.track")
    assert recommended.count() >= 5

    # a playlist from A to B, picked with the live search
    page.goto(url + "/playlist")
    start, end = rows[1], rows[4]
    for which, track in (("start", start), ("end", end)):
        box = page.locator(f'.picker[data-for="{which}"]')
        box.locator(".pick-q").fill(track["title"])
        box.locator(f'.pick-results li[data-id="{track["id"]}"]').click()
        assert box.locator("input[type=hidden]").input_value() == str(track["id"])
    page.fill("input[name=n]", "8")
    page.click("#build-playlist")
    page.wait_for_selector("section.list tr.track")
    ids = [int(x) for x in page.locator("section.list tr.track").evaluate_all("rs => rs.map(r => r.dataset.id)")]
    assert ids[0] == start["id"] and ids[-1] == end["id"] and 2 <= len(ids) <= 8

    # export it as M3U8 with paths relative to a chosen folder
    page.fill(".m3u-base", "/music")
    with page.expect_download() as dl:
        page.click("a.m3u-link")
    saved = tmp_path / "playlist.m3u8"
    dl.value.save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    by_id = {r["id"]: r for r in rows}
    assert lines[0] == "#EXTM3U"
    assert [ln for ln in lines if not ln.startswith("#")] == [os.path.relpath(by_id[i]["path"], "/music") for i in ids]

    # the status page refreshes by itself
    page.goto(url + "/status")
    page.wait_for_function("() => document.querySelector('#status-updated').textContent.startsWith('updated')")
    assert "indexed" in page.inner_text("#status-counts")
    assert not page.problems, page.problems


def test_map_draws_and_opens_a_track(server, page):
    url, lib = server
    page.goto(url + "/map?space=ann")
    page.wait_for_selector("#map[data-drawn=true]")
    assert int(page.get_attribute("#map", "data-points") or 0) == len(lib["rows"])
    assert page.locator("#map-legend li").count() == 6
    # something was drawn: the canvas is not blank
    coloured = page.evaluate(
        """() => { const c = document.querySelector('#map'); const d = c.getContext('2d')
               .getImageData(0, 0, c.width, c.height).data; let n = 0;
               for (let i = 0; i < d.length; i += 4) if (d[i] !== 255 || d[i + 1] !== 255 || d[i + 2] !== 255) n++;
               return n; }"""
    )
    assert coloured > 500
    if os.environ.get("MUSICINDEX_SCREENSHOTS"):
        page.screenshot(path=str(SCREENSHOTS / "map.png"), full_page=True)
    # hovering shows the track, clicking opens it
    first_point = "() => { const s = document.querySelector('#map').mapPoints[7]; return [s.x, s.y, s.p.id] }"
    x, y, tid = page.evaluate(first_point)
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + x, box["y"] + y)
    assert page.locator("#map-tip").is_visible()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url(f"**/tracks/{tid}")
    assert not page.problems, page.problems
